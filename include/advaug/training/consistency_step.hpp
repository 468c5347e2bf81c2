// The consistency methods' batch gradient (training_method::augmix and augmax): the gradient of
//   CE(x) + lambda * JS(p(x), p(v1), p(v2))
// where v1 and v2 are augmented views of the batch drawn from train_options::consistency's
// mixture family (perturbations/augment_and_mix.hpp). AugMix (Hendrycks et al. 2020) draws both
// at random; AugMax (Wang et al. 2021) replaces v1 by the worst mixture the search finds from a
// random draw, with the model in the attack's mode, through the family method's own search
// (family_step.hpp). The views are then held fixed, as an adversarial example is (Danskin), and
// the three forward passes, in the model's current mode, reach the parameters through
// parameter_gradient() with their dlogits: exactly the gradient of the objective above.
//
// Each view has its own forward pass (and batch statistics, for batch norm); AugMix's code
// concatenates the three views into one batch instead.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <variant>

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/loss/jensen_shannon.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/perturbations/augment_and_mix.hpp"
#include "advaug/perturbations/perturb.hpp"
#include "advaug/training/family_step.hpp"
#include "advaug/training/reports.hpp"
#include "advaug/training/train_options.hpp"

namespace advaug::detail {

/// The mixture of `settings` as an augment_and_mix<T>; names `fn` and both value types otherwise.
template <class T>
const augment_and_mix<T>& consistency_mixture(const char* fn, const train_options::consistency_settings& settings) {
    return of_model_value_type<augment_and_mix<T>>(fn, "the consistency mixture", settings.mixture);
}

/// The buffers of the consistency methods, reused from batch to batch.
template <class M>
class consistency_step {
public:
    using T = typename M::value_type;
    using input_type = model_input_t<M>;
    using labels_type = labels_t<input_type>;

    explicit consistency_step(M& model) : model_(model) {
        if constexpr (requires { caches_[0].stream = 0; }) {
            for (std::size_t v = 0; v < 3; ++v) caches_[v].stream = 3 + v;  // dropout: own streams
        }
    }

    /// zero_grad() done by the caller; adds the method's gradient and returns its losses: loss
    /// CE(x) + lambda JS, clean CE(x), adversarial the mean CE over the two augmented views.
    /// The augmented views land in view1 (the worst one, for augmax) and views()[1].
    batch_losses operator()(const char* fn, const train_options& options, const input_type& x, const labels_type& y,
                            std::uint64_t batch_seed, loss_gradient<M>& oracle, input_type& view1);

    /// The second view of the last call.
    const input_type& second_view() const { return view2_; }

private:
    M& model_;
    std::array<typename M::cache_type, 3> caches_;
    std::array<model_logits_t<M>, 3> logits_, dlogits_;
    input_type view2_;
    tensor<T, 2> flat_, theta_, rows_;
    std::optional<train_options::family_settings> search_;  // augmax: the mixture as a family
    const train_options::consistency_settings* search_of_ = nullptr;  // ... of these settings
    family_step<M> family_;
};

template <class M>
batch_losses consistency_step<M>::operator()(const char* fn, const train_options& options, const input_type& x,
                                             const labels_type& y, std::uint64_t batch_seed,
                                             loss_gradient<M>& oracle, input_type& view1) {
    batch_losses out;
    if constexpr (!is_host_tensor<input_type>) {
        invalid(fn, "method ", to_string(options.method()), " needs a host model; a mixture works on host tensors");
    } else {
        const auto& settings = *options.consistency();
        const augment_and_mix<T>& mixture = consistency_mixture<T>(fn, settings);
        const std::size_t n = x.shape()[0], d = x.size() / n;
        if (d != mixture.input_size()) {
            invalid(fn, "the batch has ", d, " features per sample; the mixture takes ", mixture.input_size());
        }
        to_rows(x, flat_);
        auto draw = [&](std::uint64_t stream, input_type& view) {
            sample_shard_rows(mixture, n, mix_seed(batch_seed, 0xa3c5, stream), theta_);
            mixture.apply(flat_, theta_, rows_);
            from_rows(rows_, x.shape(), view);
        };
        // 1. The views: AugMax searches v1 in the attack's mode, AugMix draws it.
        if (options.method() == training_method::augmax) {
            if (search_of_ != &settings) {  // built once per options object, not per batch
                search_ = train_options::family_settings{any_family<T>(mixture), settings.search};
                search_of_ = &settings;
            }
            std::optional<mode_guard<M>> guard;
            if (model_.mode() != options.attack_mode()) guard.emplace(model_, options.attack_mode());
            auto pass = [&](const input_type& at, bool) { oracle(at, y); };
            family_(fn, *search_, x, y, 1.0, batch_seed, false, oracle, pass, view1);
        } else {
            draw(1, view1);
        }
        draw(2, view2_);

        // 2. The three forward passes and the objective's dlogits.
        const std::array<const input_type*, 3> views{&x, &view1, &view2_};
        for (std::size_t v = 0; v < 3; ++v) model_.forward(*views[v], caches_[v], logits_[v]);
        out.clean = cross_entropy_gradient(logits_[0], y, dlogits_[0], T(1));
        for (std::size_t v = 1; v < 3; ++v) {
            dlogits_[v].resize(logits_[v].shape());
            std::fill(dlogits_[v].begin(), dlogits_[v].end(), T(0));
        }
        const std::array<const tensor<T, 2>*, 3> l{&logits_[0], &logits_[1], &logits_[2]};
        const std::array<tensor<T, 2>*, 3> g{&dlogits_[0], &dlogits_[1], &dlogits_[2]};
        const double weight = settings.weight;
        const double js = jensen_shannon_gradient<T>(std::span<const tensor<T, 2>* const>(l),
                                                     std::span<tensor<T, 2>* const>(g), static_cast<T>(weight));
        for (std::size_t v = 0; v < 3; ++v) model_.parameter_gradient(caches_[v], dlogits_[v]);
        out.adversarial = 0.5 * (static_cast<double>(cross_entropy(logits_[1], y)) +
                                 static_cast<double>(cross_entropy(logits_[2], y)));
        out.loss = out.clean + weight * js;
    }
    return out;
}

}  // namespace advaug::detail
