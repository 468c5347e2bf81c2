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

/// requires: M is a classifier (model/classifier.hpp) with value_type T and input_rank R;
///           x is a non-empty batch in the options' domain, finite; y holds one label per row
///           in [0, num_classes); options.epsilon() was set.
/// ensures:  the result has x's shape, |x' - x| <= epsilon (raw units) elementwise, every
///           value lies in the domain, and epsilon == 0 returns x exactly.
/// throws:   std::invalid_argument for bad arguments, numeric_error for a non-finite gradient.
template <class M, class T, std::size_t R>
tensor<T, R> fgsm(const M& model, const tensor<T, R>& x, const label_vector& y,
                  const fgsm_options& options) {
    if constexpr (detail::check_attack_model<M, T, R>()) {
        const char* fn = "fgsm";
        const double eps = options.epsilon();
        const auto dom = detail::check_attack_inputs(fn, model, x, y, options.domain());
        detail::loss_gradient<M> oracle(fn, model);
        oracle(x, y);
        tensor<T, R> out = x;
        detail::linf_step(fn, out, x, oracle.grad, dom, static_cast<T>(eps), static_cast<T>(eps),
                          options.targeted() ? T(-1) : T(1));
        return out;
    } else {
        return x;
    }
}

}  // namespace advaug
