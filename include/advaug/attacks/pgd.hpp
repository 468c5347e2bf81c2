// PGD, projected gradient descent on the loss (Madry et al. 2018), under L-infinity or L2,
// and BIM / I-FGSM (Kurakin, Goodfellow and Bengio 2017), which is PGD without random start.
//
// Each restart starts at x (or at a uniform random point of the epsilon-ball intersected with
// the domain), then takes `steps` steps: L-infinity steps of step_size * sign(g), L2 steps of
// step_size * g / ||g||_2, each projected onto the epsilon-ball around x and into the domain.
// With several restarts the example with the highest loss (lowest for targeted attacks) is
// kept per sample.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/options.hpp"
#include "advaug/detail/random.hpp"

namespace advaug {

/// requires: as fgsm(); the model's mode is handled as there (a non-const model is switched to
///           options.attack_mode() for the call, a const one must already be in it).
/// ensures:  the result has x's shape and stays in the epsilon-ball of the chosen norm (raw
///           units) and in the domain; epsilon == 0 returns x; the same seed gives the same
///           result (on the host; a device backend draws its own seeded stream).
template <class M, class X>
    requires detail::attack_tensor<X>
X pgd(const M& model, const X& x, const detail::labels_t<X>& y, const pgd_options& options);

/// The same, reusing the buffers of `workspace` across calls (see attack_workspace).
template <class M, class X>
    requires detail::attack_tensor<X>
X pgd(const M& model, const X& x, const detail::labels_t<X>& y, const pgd_options& options,
      attack_workspace<M>& workspace);

/// pgd() on a non-const model: switched to options.attack_mode() for the call, then restored.
template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X pgd(M& model, const X& x, const detail::labels_t<X>& y, const pgd_options& options,
      attack_workspace<M>& workspace);

template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X pgd(M& model, const X& x, const detail::labels_t<X>& y, const pgd_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return pgd(model, x, y, options, workspace);
    } else {
        return x;
    }
}

/// BIM / I-FGSM: pgd() started at x itself (random_start(false)); the other options,
/// including the L2 norm if chosen, are used as given.
template <class M, class X>
    requires detail::attack_tensor<X>
X bim(const M& model, const X& x, const detail::labels_t<X>& y, pgd_options options) {
    return pgd(model, x, y, options.random_start(false));
}

/// bim() reusing the buffers of `workspace` across calls (see attack_workspace).
template <class M, class X>
    requires detail::attack_tensor<X>
X bim(const M& model, const X& x, const detail::labels_t<X>& y, pgd_options options,
      attack_workspace<M>& workspace) {
    return pgd(model, x, y, options.random_start(false), workspace);
}

template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X bim(M& model, const X& x, const detail::labels_t<X>& y, pgd_options options) {
    return pgd(model, x, y, options.random_start(false));
}

template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X bim(M& model, const X& x, const detail::labels_t<X>& y, pgd_options options,
      attack_workspace<M>& workspace) {
    return pgd(model, x, y, options.random_start(false), workspace);
}

namespace detail {

template <class M, class X>
X pgd_attack(const M& model, const X& x, const labels_t<X>& y, const pgd_options& options,
             attack_workspace<M>& workspace) {
    using T = typename tensor_traits<X>::value_type;
    const char* fn = "pgd";
    const double eps = options.epsilon();
    const auto dom = check_attack_inputs(fn, model, x, y, options.domain());
    const T direction = options.targeted() ? T(-1) : T(1);
    const T step = static_cast<T>(options.step_size());

    loss_gradient<M> oracle(fn, model, &workspace);
    auto gen = attack_rng(x, options.seed());
    X current, best;
    typename tensor_traits<X>::vector_type best_loss;
    for (std::size_t r = 0; r < options.restarts(); ++r) {
        if (options.random_start()) {
            resize_like(current, x);  // random_start writes every value
            random_start(current, x, dom, options.norm(), eps, gen);
        } else {
            copy_tensor(current, x);
        }
        for (std::size_t k = 0; k < options.steps(); ++k) {
            oracle(current, y);
            if (options.norm() == norm::linf) {
                linf_step(fn, current, x, oracle.grad, dom, step, static_cast<T>(eps), direction);
            } else {
                l2_step(fn, current, x, oracle.grad, dom, step, static_cast<T>(eps), direction);
            }
        }
        check_gradients_finite(fn, dom);
        if (options.restarts() == 1) return current;
        const auto& loss = oracle.per_sample_loss(current, y);
        if (r == 0) {
            copy_tensor(best, current);
            copy_tensor(best_loss, loss);
            continue;
        }
        keep_better_restart(best, best_loss, current, loss, direction);
    }
    return best;
}

}  // namespace detail

template <class M, class X>
    requires detail::attack_tensor<X>
X pgd(const M& model, const X& x, const detail::labels_t<X>& y, const pgd_options& options,
      attack_workspace<M>& workspace) {
    if constexpr (detail::check_attack_model<M, X>()) {
        detail::check_attack_mode("pgd", model, options.attack_mode());
        return detail::pgd_attack(model, x, y, options, workspace);
    } else {
        return x;
    }
}

template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X pgd(M& model, const X& x, const detail::labels_t<X>& y, const pgd_options& options,
      attack_workspace<M>& workspace) {
    if constexpr (detail::check_attack_model<M, X>()) {
        return detail::in_attack_mode(model, options.attack_mode(), [&](const M& m) {
            return pgd(m, x, y, options, workspace);
        });
    } else {
        return x;
    }
}

template <class M, class X>
    requires detail::attack_tensor<X>
X pgd(const M& model, const X& x, const detail::labels_t<X>& y, const pgd_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return pgd(model, x, y, options, workspace);
    } else {
        return x;
    }
}

}  // namespace advaug
