// One batch's gradient for each training method: what trainer::compute_gradient() does.
//
// The batch is trained on (1 - alpha) * CE(x) + alpha * CE(x_adv), and the parameter gradient
// is exactly (1 - alpha) * grad CE(x) + alpha * grad CE(x_adv): the attack goes through the
// attacks' gradient oracle (forward() and input_gradient(), which never touch parameter
// gradients), and the two halves reach the parameters through parameter_gradient() with their
// dlogits scaled by (1 - alpha) and alpha. The seed's code ran loss.backward() inside its
// attack, which added one more grad CE(x) to every step (docs/training.md measures the cost).
//
// Host and device models share every line: element-wise work and checks are the
// customization points of backend/host.hpp, found by argument-dependent lookup. The family
// method (family_step.hpp) works on host models only.
#pragma once

#include <concepts>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/training/consistency_step.hpp"
#include "advaug/training/family_step.hpp"
#include "advaug/training/method.hpp"
#include "advaug/training/reports.hpp"
#include "advaug/training/train_options.hpp"

namespace advaug::detail {

/// An optional model member (sequential has it): the input gradient and `scale` times the
/// parameter gradient of one dlogits in one backward pass.
template <class M>
concept combined_backward = requires(M& m, typename M::cache_type& c, const model_logits_t<M>& g,
                                     model_input_t<M>& dx, typename M::value_type s) {
    m.input_and_parameter_gradient(c, g, dx, s);
};

/// Names `fn` and both value types when options' family or consistency mixture is not of T.
template <class T>
void check_value_types(const char* fn, const train_options& options) {
    if (options.family()) training_family<T>(fn, *options.family());
    if (options.consistency()) consistency_mixture<T>(fn, *options.consistency());
}

/// The gradient of one batch, with the buffers it reuses from batch to batch: after the first
/// batch of a shape it allocates nothing.
template <class M>
class batch_gradient {
public:
    using T = typename M::value_type;
    using input_type = model_input_t<M>;
    using labels_type = labels_t<input_type>;

    /// requires: the model outlives this object.
    explicit batch_gradient(M& model) : model_(model) {
        // dropout masks: the three passes of a batch draw from different streams
        if constexpr (requires { clean_cache_.stream = 0; }) {
            clean_cache_.stream = 0;
            adv_cache_.stream = 1;
            workspace_.model_cache().stream = 2;
        }
    }

    /// zero_grad(), then the gradient of options.method() at `epsilon` (raw units; for method
    /// family the fraction of the family's budget, in [0, 1]); `fn` names the caller in errors.
    /// See trainer::compute_gradient().
    batch_losses operator()(const char* fn, const train_options& options, const input_type& x,
                            const labels_type& y, double epsilon, std::uint64_t batch_seed,
                            bool clean_loss_wanted);

    /// The adversarial batch of the last call (empty for plain training); for augmix and augmax
    /// the first augmented view.
    const input_type& adversarial_batch() const { return x_adv_; }
    /// augmix and augmax: the second augmented view of the last call.
    const input_type& second_view() const { return consistency_.second_view(); }

private:
    M& model_;
    input_type x_adv_;
    attack_workspace<M> workspace_;  // the attack's cache, logits and input gradient
    typename M::cache_type clean_cache_, adv_cache_;
    typename tensor_traits<input_type>::domain_type domain_;
    family_step<M> family_;
    consistency_step<M> consistency_{model_};
};

template <class M>
batch_losses batch_gradient<M>::operator()(const char* fn, const train_options& options,
                                           const input_type& x, const labels_type& y,
                                           double epsilon, std::uint64_t batch_seed,
                                           bool clean_loss_wanted) {
    check_training_inputs(fn, model_, x, y, options.domain(), domain_);
    if (!std::isfinite(epsilon) || epsilon < 0) {
        invalid(fn, "epsilon must be finite and >= 0, got ", epsilon);
    }

    const training_method method = options.method();
    const T alpha = static_cast<T>(options.alpha());
    model_.zero_grad();
    batch_losses out;
    const bool same_in_both_modes = mode_independent(model_);
    // The attack's gradients, in the workspace's buffers, which the other passes reuse.
    loss_gradient<M> oracle(fn, model_, &workspace_, /*one_pass=*/true);
    auto& attack_cache = workspace_.model_cache();
    auto& logits = oracle.logits;
    auto& dlogits = oracle.dlogits;

    if (method == training_method::plain) {
        model_.forward(x, clean_cache_, logits);
        out.clean = cross_entropy_gradient(logits, y, dlogits, T(1));
        model_.parameter_gradient(clean_cache_, dlogits);
        out.loss = out.clean;
        return out;
    }
    if (is_consistency(method)) return consistency_(fn, options, x, y, batch_seed, oracle, x_adv_);

    // 1. The adversarial example, with the model in the attack's mode.
    const bool attack_is_training_mode = options.attack_mode() == model_.mode() || same_in_both_modes;
    // The seed's FGSM starts at x itself: its forward pass is the clean forward pass (so may a
    // family's search be, family_step.hpp) ...
    bool reuse_clean = method == training_method::fgsm && attack_is_training_mode;
    // ... and its backward pass is the clean half's: one pass gives the attack's input gradient
    // and (1 - alpha) grad CE(x), where the model has that member.
    const bool fuse_clean = combined_backward<M> && alpha < 1;
    // The attack's pass at `at`; with `clean`, `at` is x and the pass also takes the clean half.
    auto attack_pass = [&](const input_type& at, bool clean) {
        if constexpr (combined_backward<M>) {
            if (clean && fuse_clean) {
                oracle.logits_gradient(at, y);
                model_.input_and_parameter_gradient(attack_cache, dlogits, oracle.grad, T(1) - alpha);
            } else {
                oracle(at, y);
            }
        } else {
            oracle(at, y);
        }
        if (!clean) return;
        out.clean = cross_entropy(logits, y);
        if (alpha < 1 && !fuse_clean) {
            scale_in_place(dlogits, T(1) - alpha);
            model_.parameter_gradient(attack_cache, dlogits);
        }
    };
    const T eps = static_cast<T>(epsilon);
    {
        std::optional<mode_guard<M>> guard;
        if (model_.mode() != options.attack_mode()) guard.emplace(model_, options.attack_mode());
        if (method == training_method::family) {
            if (epsilon > 1) invalid(fn, "method family takes a budget fraction in [0, 1], got ", epsilon);
            if constexpr (is_host_tensor<input_type>) {
                reuse_clean = family_(fn, *options.family(), x, y, epsilon, batch_seed, attack_is_training_mode,
                                      oracle, attack_pass, x_adv_);
            } else {
                invalid(fn, "method family needs a host model; a family works on host tensors");
            }
        }
        auto gen = attack_rng(x, batch_seed);
        T step = eps, ball = eps;
        std::size_t steps = method == training_method::family ? 0 : 1;
        switch (method) {
            case training_method::fgsm:
                copy_tensor(x_adv_, x);
                break;
            case training_method::fgsm_rs:
                resize_like(x_adv_, x);
                random_start(x_adv_, x, domain_, norm::linf, epsilon, gen);
                step = T(1.25) * eps;
                break;
            case training_method::n_fgsm:
                resize_like(x_adv_, x);
                random_start(x_adv_, x, domain_, norm::linf, 2 * epsilon, gen);
                ball = std::numeric_limits<T>::infinity();
                break;
            case training_method::pgd: {
                resize_like(x_adv_, x);
                random_start(x_adv_, x, domain_, norm::linf, epsilon, gen);
                steps = options.pgd_steps();
                // the step size follows epsilon during a warm-up
                const double full = options.epsilon().value_or(epsilon);
                step = static_cast<T>(options.pgd_step_size() * (full > 0 ? epsilon / full : 1.0));
                break;
            }
            case training_method::plain:
            case training_method::family:
            case training_method::augmix:
            case training_method::augmax:
                break;
        }
        for (std::size_t k = 0; k < steps; ++k) {
            // The seed's FGSM takes its gradient at x itself; the cache must refer to x, not
            // to x_adv_, which the step below changes in place.
            attack_pass(method == training_method::fgsm ? x : x_adv_, reuse_clean);
            linf_step(fn, x_adv_, x, oracle.grad, domain_, step, ball, T(1));
        }
        check_gradients_finite(fn, domain_);  // what a device model's step kernels recorded
    }

    // 2. The clean half: (1 - alpha) * grad CE(x), unless the attack's pass at x took it. Without
    // dropout the passes need no separate random streams, so they share the attack's cache: a
    // batch of activations less (tens of MB for a CNN).
    auto& clean_cache = same_in_both_modes ? attack_cache : clean_cache_;
    if (!reuse_clean && alpha < 1) {
        model_.forward(x, clean_cache, logits);
        out.clean = cross_entropy_gradient(logits, y, dlogits, T(1) - alpha);
        model_.parameter_gradient(clean_cache, dlogits);
    } else if (!reuse_clean && clean_loss_wanted) {
        model_.forward(x, clean_cache, logits);
        out.clean = cross_entropy(logits, y);
    }

    // 3. The adversarial half: alpha * grad CE(x_adv).
    if (alpha > 0) {
        auto& cache = same_in_both_modes ? attack_cache : adv_cache_;
        model_.forward(x_adv_, cache, logits);
        out.adversarial = cross_entropy_gradient(logits, y, dlogits, alpha);
        model_.parameter_gradient(cache, dlogits);
    }
    const double a = static_cast<double>(alpha);
    out.loss = (a < 1 ? (1 - a) * out.clean : 0.0) + (a > 0 ? a * out.adversarial : 0.0);
    return out;
}

}  // namespace advaug::detail
