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

/// requires: as fgsm().
/// ensures:  the result has x's shape and stays in the epsilon-ball of the chosen norm (raw
///           units) and in the domain; epsilon == 0 returns x; the same seed gives the same
///           result.
template <class M, class T, std::size_t R>
tensor<T, R> pgd(const M& model, const tensor<T, R>& x, const label_vector& y,
                 const pgd_options& options);

/// BIM / I-FGSM: pgd() started at x itself (random_start(false)); the other options,
/// including the L2 norm if chosen, are used as given.
template <class M, class T, std::size_t R>
tensor<T, R> bim(const M& model, const tensor<T, R>& x, const label_vector& y,
                 pgd_options options) {
    return pgd(model, x, y, options.random_start(false));
}

namespace detail {

/// A uniform random point of the epsilon-ball around x0, clipped into the domain.
template <class T, std::size_t R>
void random_start(tensor<T, R>& x, const tensor<T, R>& x0, const resolved_domain<T>& dom,
                  advaug::norm n, double eps, rng& gen) {
    const std::size_t d_size = dom.sample_size, samples = x.shape()[0];
    for (std::size_t s = 0; s < samples; ++s) {
        T* xs = x.data() + s * d_size;
        const T* x0s = x0.data() + s * d_size;
        if (n == advaug::norm::linf) {
            for (std::size_t d = 0; d < d_size; ++d) {
                const double delta = gen.uniform(-eps, eps);
                xs[d] = std::clamp(x0s[d] + static_cast<T>(delta * dom.model_per_raw[d]),
                                   dom.lo[d], dom.hi[d]);
            }
        } else {
            // Uniform in the L2 ball: a Gaussian direction and radius eps * U^(1/d).
            double norm2 = 0;
            for (std::size_t d = 0; d < d_size; ++d) {
                const double g = gen.normal();
                xs[d] = static_cast<T>(g);
                norm2 += g * g;
            }
            const double radius = eps * std::pow(gen.uniform(), 1.0 / static_cast<double>(d_size));
            const double scale = norm2 > 0 ? radius / std::sqrt(norm2) : 0.0;
            for (std::size_t d = 0; d < d_size; ++d) {
                const double delta = scale * static_cast<double>(xs[d]);
                xs[d] = std::clamp(x0s[d] + static_cast<T>(delta * dom.model_per_raw[d]),
                                   dom.lo[d], dom.hi[d]);
            }
        }
    }
}

}  // namespace detail

template <class M, class T, std::size_t R>
tensor<T, R> pgd(const M& model, const tensor<T, R>& x, const label_vector& y,
                 const pgd_options& options) {
    if constexpr (detail::check_attack_model<M, T, R>()) {
        const char* fn = "pgd";
        const double eps = options.epsilon();
        const auto dom = detail::check_attack_inputs(fn, model, x, y, options.domain());
        const T direction = options.targeted() ? T(-1) : T(1);
        const T step = static_cast<T>(options.step_size());
        const std::size_t n = x.shape()[0], d_size = dom.sample_size;

        detail::loss_gradient<M> oracle(fn, model);
        detail::rng gen(options.seed());
        tensor<T, R> current(x.shape()), best;
        tensor<T, 1> best_loss;
        for (std::size_t r = 0; r < options.restarts(); ++r) {
            if (options.random_start()) {
                detail::random_start(current, x, dom, options.norm(), eps, gen);
            } else {
                current = x;
            }
            for (std::size_t k = 0; k < options.steps(); ++k) {
                oracle(current, y);
                if (options.norm() == norm::linf) {
                    detail::linf_step(fn, current, x, oracle.grad, dom, step, static_cast<T>(eps),
                                      direction);
                } else {
                    detail::l2_step(fn, current, x, oracle.grad, dom, step, static_cast<T>(eps),
                                    direction);
                }
            }
            if (options.restarts() == 1) return current;
            const auto& loss = oracle.per_sample_loss(current, y);
            if (r == 0) {
                best = current;
                best_loss = loss;
                continue;
            }
            for (std::size_t s = 0; s < n; ++s) {
                const bool better = direction > 0 ? loss(s) > best_loss(s) : loss(s) < best_loss(s);
                if (!better) continue;
                best_loss(s) = loss(s);
                std::copy_n(current.data() + s * d_size, d_size, best.data() + s * d_size);
            }
        }
        return best;
    } else {
        return x;
    }
}

}  // namespace advaug
