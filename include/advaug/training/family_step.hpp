// The family method's adversarial batch (training_method::family): per sample, the worst case
// of a perturbation family in its budget, found by the very search worst_case() runs
// (perturbations/search.hpp, search_theta), driven through the trainer's own passes.
//
// The budget warm-up scales the budget about the identity: at fraction s in [0, 1] the family
// is applied at theta = id + s (theta' - id), with theta' searched in the whole budget. A box
// [lo, hi] becomes [id + s (lo - id), id + s (hi - id)], an L-inf or L2 ball of radius eps one
// of radius s eps, a chain each member's. At s = 1 theta is theta' itself, bit for bit; at
// s = 0 every sample is left as it is.
//
// When the search's first evaluation is a gradient at the identity (search.random_start(false),
// method gradient), it runs at x itself, so that pass is the clean forward pass too: the trainer
// takes the clean loss and (1 - alpha) grad CE(x) from it, as it does for the seed's FGSM.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/detail/batch_shard.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/perturbations/any_family.hpp"
#include "advaug/perturbations/perturb.hpp"
#include "advaug/perturbations/search.hpp"
#include "advaug/training/train_options.hpp"

namespace advaug::detail {

/// Whether X is a host tensor (a family works on host rows only).
template <class X>
inline constexpr bool is_host_tensor = false;
template <class T, std::size_t R>
inline constexpr bool is_host_tensor<tensor<T, R>> = true;

/// The alternative of `held` (a float or a double one) of the model's value type, Wanted; names
/// `fn`, `what` and both value types otherwise.
template <class Wanted, class... Alternatives>
const Wanted& of_model_value_type(const char* fn, const char* what, const std::variant<Alternatives...>& held) {
    const auto* f = std::get_if<Wanted>(&held);
    if (!f) {
        constexpr bool single = std::is_same_v<typename Wanted::value_type, float>;
        invalid(fn, what, "'s value_type is ", single ? "double" : "float", ", the model's is ",
                single ? "float" : "double");
    }
    return *f;
}

/// The family of `settings` as an any_family<T>; names `fn` and both value types otherwise.
template <class T>
const any_family<T>& training_family(const char* fn,
                                     const train_options::family_settings& settings) {
    return of_model_value_type<any_family<T>>(fn, "the family", settings.family);
}

/// family.sample(n, key, theta); in a data-parallel step (detail/batch_shard.hpp), this
/// process's rows [offset, offset + n) of family.sample(global, key): the draws one process
/// makes for the global batch. The whole batch is drawn, since a family's row may depend on
/// the batch size (the L2 ball's radii do).
template <class F, class T>
void sample_shard_rows(const F& family, std::size_t n, std::uint64_t key, tensor<T, 2>& theta) {
    const batch_shard* shard = current_batch_shard();
    if (!shard || shard->global == n) {
        family.sample(n, key, theta);
        return;
    }
    if (shard->offset + n > shard->global) {
        invalid("sample_shard_rows", "the shard's rows [", shard->offset, ", ", shard->offset + n,
                ") do not fit in its global batch of ", shard->global);
    }
    tensor<T, 2> all;
    family.sample(shard->global, key, all);
    const std::size_t p = all.shape()[1];
    theta.resize({n, p});
    std::copy(all.data() + shard->offset * p, all.data() + (shard->offset + n) * p, theta.data());
}

/// `family` whose sample() is sample_shard_rows(): the family method's starts and random draws
/// in a data-parallel step.
template <class T>
struct global_batch_rows {
    using value_type = T;
    using batch = tensor<T, 2>;
    any_family<T> family;

    std::size_t input_size() const { return family.input_size(); }
    std::size_t num_params() const { return family.num_params(); }
    void apply(const batch& x, const batch& th, batch& out) const { family.apply(x, th, out); }
    void vjp_theta(const batch& x, const batch& th, const batch& g, batch& d) const {
        family.vjp_theta(x, th, g, d);
    }
    void vjp_input(const batch& x, const batch& th, const batch& g, batch& d) const {
        family.vjp_input(x, th, g, d);
    }
    void apply(const batch& x, const batch& th, batch& out, family_tape& tape) const {
        family.apply(x, th, out, tape);
    }
    void vjp(const batch& x, const batch& th, const batch& g, batch* dth, batch* dx,
             family_tape& tape) const {
        family.vjp(x, th, g, dth, dx, tape);
    }
    void identity(std::size_t n, batch& th) const { family.identity(n, th); }
    void sample(std::size_t n, std::uint64_t key, batch& th) const {
        sample_shard_rows(family, n, key, th);
    }
    void project(batch& th) const { family.project(th); }
    bool contains(const batch& th) const { return family.contains(th); }
    std::vector<double> param_scale() const { return family.param_scale(); }
    perturbation_kind held_kind() const { return family.held_kind(); }
    std::size_t max_active() const { return family.max_active(); }
};

/// The buffers of the family method's batches, reused from batch to batch.
template <class M>
class family_step {
public:
    using T = typename M::value_type;
    using input_type = model_input_t<M>;
    using labels_type = labels_t<input_type>;

    /// Writes into x_adv, per sample, family.apply(x, theta) at the worst theta the search of
    /// `settings` met at budget fraction `fraction`, its starts drawn from the stream of
    /// `batch_seed` mixed with the search's seed (in a data-parallel step, this process's rows of
    /// the global batch's starts). `pass(at, clean)` is the trainer's attack pass:
    /// oracle's logits, dlogits and input gradient at `at`; with `clean` (only where
    /// `clean_allowed`) `at` is x itself and the pass also takes the clean half.
    /// Returns whether it did. requires: a host model; 0 <= fraction <= 1.
    template <class Pass>
    bool operator()(const char* fn, const train_options::family_settings& settings,
                    const input_type& x, const labels_type& y, double fraction,
                    std::uint64_t batch_seed, bool clean_allowed, loss_gradient<M>& oracle,
                    Pass&& pass, input_type& x_adv);

private:
    // theta = id + s (theta' - id), or theta' itself at s = 1
    void scaled(const tensor<T, 2>& searched, T s) {
        if (s == T(1)) {
            theta_ = searched;
            return;
        }
        theta_.resize(searched.shape());
        for (std::size_t i = 0; i < searched.size(); ++i) {
            const T id = identity_.data()[i];
            theta_.data()[i] = id + s * (searched.data()[i] - id);
        }
    }

    tensor<T, 2> flat_, rows_, dflat_, identity_, theta_;
    input_type shaped_;
    family_tape tape_;  // the family's record between its apply and vjp_theta
};

template <class M>
template <class Pass>
bool family_step<M>::operator()(const char* fn, const train_options::family_settings& settings,
                                const input_type& x, const labels_type& y, double fraction,
                                std::uint64_t batch_seed, bool clean_allowed,
                                loss_gradient<M>& oracle, Pass&& pass, input_type& x_adv) {
    const std::size_t n = x.shape()[0], d = x.size() / n;
    const batch_shard* shard = current_batch_shard();
    std::optional<any_family<T>> sharded;
    if (shard && shard->global != n) {
        sharded.emplace(global_batch_rows<T>{training_family<T>(fn, settings)});
    }
    const any_family<T>& family = sharded ? *sharded : training_family<T>(fn, settings);
    if (d != family.input_size()) {
        invalid(fn, "the batch has ", d, " features per sample; the family takes ",
                family.input_size());
    }
    const T s = static_cast<T>(fraction);
    to_rows(x, flat_);
    family.identity(n, identity_);
    bool clean_pending = clean_allowed, clean_taken = false;

    // The search's oracle: the model's per-sample loss at the family's output, and its gradient
    // in theta' (the chain rule through the family's vjp_theta and the scaling by s).
    struct oracle_type {
        family_step& step;
        const any_family<T>& family;
        const input_type& x;
        const labels_type& y;
        T s;
        loss_gradient<M>& model_pass;
        Pass& pass;
        bool& clean_pending;
        bool& clean_taken;
        const char* fn;
        tensor<T, 1> loss;
        tensor<T, 2> dtheta;
        bool at_clean = false;

        // The family's output at the last evaluate()'s theta: x itself after the clean pass (the
        // identity returns x bit for bit), else the rows applied.
        const tensor<T, 2>& outputs() const { return at_clean ? step.flat_ : step.rows_; }

        void evaluate(const tensor<T, 2>& searched, bool gradient) {
            step.scaled(searched, s);
            // Only the first pass can serve as the clean one; its cache must refer to x itself.
            const bool clean = clean_pending && gradient &&
                               std::equal(searched.begin(), searched.end(), step.identity_.begin());
            clean_pending = false;
            at_clean = clean;
            const input_type* at = &x;
            if (!clean) {
                if (gradient) {  // recorded for vjp_theta below (family.hpp)
                    apply_recorded(family, step.flat_, step.theta_, step.rows_, step.tape_);
                } else {
                    family.apply(step.flat_, step.theta_, step.rows_);
                }
                from_rows(step.rows_, x.shape(), step.shaped_);
                at = &step.shaped_;
            }
            if (!gradient) {
                loss = model_pass.per_sample_loss(*at, y);
                return;
            }
            pass(*at, clean);
            clean_taken = clean_taken || clean;
            loss = cross_entropy_per_sample(model_pass.logits, y);
            to_rows(model_pass.grad, step.dflat_);
            // At the clean pass apply was not called: the plain product (the identity rows
            // take their forward pass there either way).
            if (clean) {
                family.vjp_theta(step.flat_, step.theta_, step.dflat_, dtheta);
            } else {
                vjp_recorded(family, step.flat_, step.theta_, step.dflat_, &dtheta,
                             static_cast<tensor<T, 2>*>(nullptr), step.tape_);
            }
            for (std::size_t i = 0; i < dtheta.size(); ++i) {
                T& g = dtheta.data()[i];
                if (!std::isfinite(g)) {
                    throw numeric_error(
                        concat(fn, "(): the loss gradient in the family's theta is not finite (", g,
                               " at row ", i / dtheta.shape()[1], ", parameter ",
                               i % dtheta.shape()[1], ")"));
                }
                if (s != T(1)) g *= s;
            }
        }
    } search_oracle{*this, family, x, y, s, oracle, pass, clean_pending, clean_taken, fn, {}, {}};

    worst_case_options search = settings.search;
    search.seed(mix_seed(batch_seed, settings.search.seed()));
    worst_so_far<T> worst;
    search_theta(fn, search_oracle, n, family.param_scale(), search, worst);

    // Every candidate came with the family's output at it: the search's worst rows are the
    // perturbed batch, without applying the family once more.
    from_rows(worst.rows, x.shape(), x_adv);
    return clean_taken;
}

/// The method as a checkpoint records it: its name, and for method family the family's
/// parameter and feature counts, so that a checkpoint of another family is refused.
inline std::string checkpoint_method(const train_options& options) {
    std::string method(to_string(options.method()));
    if (const auto& f = options.family()) {
        std::visit(
            [&](const auto& g) {
                method +=
                    concat(" (", g.num_params(), " parameters, ", g.input_size(), " features)");
            },
            f->family);
    }
    if (const auto& c = options.consistency()) {
        std::visit(
            [&](const auto& m) {
                method += concat(" (mixture of ", m.operations().size(), " operations, ", m.num_params(),
                                 " parameters, ", m.input_size(), " features)");
            },
            c->mixture);
    }
    return method;
}

/// The family's worst case of (x, y) for the epoch summary and the collapse guard: worst_case()
/// with the training search, `steps` gradient steps and `seed`, at the whole budget.
template <class M, class X, class Y>
X family_worst_case(const char* fn, const M& model, const train_options::family_settings& settings,
                    const X& x, const Y& y, std::size_t steps, std::uint64_t seed) {
    if constexpr (is_host_tensor<X>) {
        using T = typename M::value_type;
        return worst_case(model, training_family<T>(fn, settings), x, y,
                          worst_case_options(settings.search).steps(steps).seed(seed))
            .perturbed;
    } else {
        invalid(fn, "method family needs a host model; a family works on host tensors");
    }
}

}  // namespace advaug::detail
