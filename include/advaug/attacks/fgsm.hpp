// FGSM, the fast gradient sign method (Goodfellow, Shlens and Szegedy 2015).
//
//   x' = clip_domain(x + epsilon * sign(grad_x CE(model(x), y)))      untargeted
//   x' = clip_domain(x - epsilon * sign(grad_x CE(model(x), t)))      targeted, t = target labels
//
// with sign(0) = 0 and epsilon in raw units (see input_domain). This is the seed's attack,
// computed through the model contract: it needs one forward and one input gradient, and it
// leaves the model's parameter gradients and state untouched.
#pragma once

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/options.hpp"

namespace advaug {

/// The model is attacked in options.attack_mode() (default eval): a non-const model is
/// switched to it for the call and restored after; a const model must already be in it.
/// requires: M is a classifier (model/classifier.hpp) with value_type T and input_rank R;
///           x is a non-empty batch in the options' domain, finite; y holds one label per row
///           in [0, num_classes); options.epsilon() was set.
///           X is the model's input type: advaug::tensor<T, R> for a host model, or
///           cuda::device_tensor<T, R> with device labels for a model of advaug/cuda/.
/// ensures:  the result has x's shape, |x' - x| <= epsilon (raw units) elementwise, every
///           value lies in the domain, and epsilon == 0 returns x exactly.
/// throws:   std::invalid_argument for bad arguments, numeric_error for a non-finite gradient.
template <class M, class X>
    requires detail::attack_tensor<X>
X fgsm(const M& model, const X& x, const detail::labels_t<X>& y, const fgsm_options& options,
       attack_workspace<M>& workspace) {
    if constexpr (detail::check_attack_model<M, X>()) {
        detail::check_attack_mode("fgsm", model, options.attack_mode());
        return detail::single_step_attack("fgsm", model, x, y, options.epsilon(),
                                          options.targeted(), options.domain(), norm::linf,
                                          &workspace);
    } else {
        return x;
    }
}

/// The same with buffers of its own (built and freed by this call).
template <class M, class X>
    requires detail::attack_tensor<X>
X fgsm(const M& model, const X& x, const detail::labels_t<X>& y, const fgsm_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return fgsm(model, x, y, options, workspace);
    } else {
        return x;
    }
}

/// A non-const model: switched to options.attack_mode() for the call, then restored.
template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X fgsm(M& model, const X& x, const detail::labels_t<X>& y, const fgsm_options& options,
       attack_workspace<M>& workspace) {
    if constexpr (detail::check_attack_model<M, X>()) {
        return detail::in_attack_mode(model, options.attack_mode(), [&](const M& m) {
            return fgsm(m, x, y, options, workspace);
        });
    } else {
        return x;
    }
}

template <class M, class X>
    requires detail::attack_tensor<X> && (!std::is_const_v<M>)
X fgsm(M& model, const X& x, const detail::labels_t<X>& y, const fgsm_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return fgsm(model, x, y, options, workspace);
    } else {
        return x;
    }
}

}  // namespace advaug
