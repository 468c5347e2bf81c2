// FGM, the fast gradient method under the L2 norm (Miyato et al. 2017):
//   x' = clip_domain(x + epsilon * g / ||g||_2),  g = grad_x CE in raw units, per sample.
// A sample whose gradient is exactly zero is returned unchanged.
#pragma once

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/options.hpp"

namespace advaug {

/// requires: as fgsm(); the model's mode is handled as there.
/// ensures:  the result has x's shape, the raw-unit L2 norm of x' - x per sample is at most
///           epsilon, every value lies in the domain, epsilon == 0 returns x exactly.
template <class M, class X>
    requires detail::attack_tensor<X>
X fgm(const M& model, const X& x, const detail::labels_t<X>& y, const fgm_options& options,
       attack_workspace<M>& workspace) {
    if constexpr (detail::check_attack_model<M, X>()) {
        detail::check_attack_mode("fgm", model, options.attack_mode());
        return detail::single_step_attack("fgm", model, x, y, options.epsilon(),
                                          options.targeted(), options.domain(), norm::l2,
                                          &workspace);
    } else {
        return x;
    }
}

/// The same with buffers of its own (built and freed by this call).
template <class M, class X>
    requires detail::attack_tensor<X>
X fgm(const M& model, const X& x, const detail::labels_t<X>& y, const fgm_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return fgm(model, x, y, options, workspace);
    } else {
        return x;
    }
}

/// A non-const model: switched to options.attack_mode() for the call, then restored.
template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X fgm(M& model, const X& x, const detail::labels_t<X>& y, const fgm_options& options,
      attack_workspace<M>& workspace) {
    if constexpr (detail::check_attack_model<M, X>()) {
        return detail::in_attack_mode(model, options.attack_mode(), [&](const M& m) {
            return fgm(m, x, y, options, workspace);
        });
    } else {
        return x;
    }
}

template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X fgm(M& model, const X& x, const detail::labels_t<X>& y, const fgm_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return fgm(model, x, y, options, workspace);
    } else {
        return x;
    }
}

}  // namespace advaug
