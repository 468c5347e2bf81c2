// FGM, the fast gradient method under the L2 norm (Miyato et al. 2017):
//   x' = clip_domain(x + epsilon * g / ||g||_2),  g = grad_x CE in raw units, per sample.
// A sample whose gradient is exactly zero is returned unchanged.
#pragma once

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/options.hpp"

namespace advaug {

/// requires: as fgsm().
/// ensures:  the result has x's shape, the raw-unit L2 norm of x' - x per sample is at most
///           epsilon, every value lies in the domain, epsilon == 0 returns x exactly.
template <class M, class T, std::size_t R>
tensor<T, R> fgm(const M& model, const tensor<T, R>& x, const label_vector& y,
                 const fgm_options& options) {
    if constexpr (detail::check_attack_model<M, T, R>()) {
        const char* fn = "fgm";
        const double eps = options.epsilon();
        const auto dom = detail::check_attack_inputs(fn, model, x, y, options.domain());
        detail::loss_gradient<M> oracle(fn, model);
        oracle(x, y);
        tensor<T, R> out = x;
        detail::l2_step(fn, out, x, oracle.grad, dom, static_cast<T>(eps), static_cast<T>(eps),
                        options.targeted() ? T(-1) : T(1));
        return out;
    } else {
        return x;
    }
}

}  // namespace advaug
