// What every attack shares: argument checks, the loss-gradient oracle and the projections.
// Internal: users call fgsm(), fgm(), pgd(), bim().
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <type_traits>

#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/static_checks.hpp"

namespace advaug::detail {

/// Compile-time: M is a classifier whose input type is tensor<T, R>. One error otherwise.
template <class M, class T, std::size_t R>
consteval bool check_attack_model() {
    if constexpr (!check_classifier<M>()) {
        return false;
    } else {
        static_assert(std::is_same_v<typename M::value_type, T>,
                      "advaug: the inputs' value type differs from the model's value_type");
        static_assert(M::input_rank == R,
                      "advaug: the inputs' rank differs from the model's input_rank");
        return std::is_same_v<typename M::value_type, T> && M::input_rank == R;
    }
}

/// Run-time checks common to all attacks; returns the domain resolved for x.
template <class M, class T, std::size_t R>
resolved_domain<T> check_attack_inputs(const char* fn, const M& model, const tensor<T, R>& x,
                                       const label_vector& y, const input_domain& dom) {
    check_nonempty_batch(fn, "inputs", x);
    check_labels(fn, y, x.shape()[0], model.num_classes());
    check_finite(fn, "inputs", x);
    auto r = resolve<T>(fn, dom, x.shape());
    check_in_domain(fn, x, r);
    return r;
}

/// The gradient of the attack's loss with respect to the input, through the model contract.
/// Owns the buffers, so repeated calls (PGD steps) allocate nothing after the first.
template <class M>
struct loss_gradient {
    using T = typename M::value_type;

    loss_gradient(const char* function, const M& m) : fn(function), model(m) {}

    /// grad = dCE(model(x), y)/dx; returns the mean loss. Leaves the model untouched.
    T operator()(const input_t<M>& x, const label_vector& y) {
        forward(x);
        const T loss = cross_entropy_kernel<T>(fn, logits, y, nullptr, &dlogits, T(1), nullptr);
        model.input_gradient(cache, dlogits, grad);
        return loss;
    }

    /// Per-sample loss at x (for keeping the worst restart).
    const tensor<T, 1>& per_sample_loss(const input_t<M>& x, const label_vector& y) {
        forward(x);
        cross_entropy_kernel<T>(fn, logits, y, nullptr, nullptr, T(1), &losses);
        return losses;
    }

    /// The model's own argument errors (an input of the wrong shape) get the attack's name.
    void forward(const input_t<M>& x) {
        try {
            model.forward(x, cache, logits);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(concat(fn, "(): ", e.what()));
        }
    }

    const char* fn;
    const M& model;
    typename M::cache_type cache;
    logits_t<M> logits, dlogits;
    input_t<M> grad;
    tensor<T, 1> losses;
};

/// A non-finite input gradient means the model produced NaN/inf; attacks refuse to go on
/// rather than write NaN into the adversarial example (documented in docs/attacks.md).
template <class T>
[[noreturn]] void non_finite_gradient(const char* fn, std::size_t flat, std::size_t sample_size,
                                      T value) {
    throw numeric_error(concat(fn, "(): the input gradient is ", value, " at sample ",
                               flat / sample_size, ", element ", flat % sample_size,
                               "; the model's forward or input_gradient produced a non-finite "
                               "value"));
}

template <class T>
constexpr T sign(T v) {
    return static_cast<T>((T(0) < v) - (v < T(0)));
}

/// One L-infinity step in model units, fused: x = clip_domain(clip_ball(x + step*sign(g))).
/// `direction` is +1 to raise the loss, -1 to lower it (targeted).
template <class T, std::size_t R>
void linf_step(const char* fn, tensor<T, R>& x, const tensor<T, R>& x0, const tensor<T, R>& g,
               const resolved_domain<T>& dom, T step, T eps, T direction) {
    const std::size_t d_size = dom.sample_size, total = x.size();
    T* xp = x.data();
    const T* x0p = x0.data();
    const T* gp = g.data();
    for (std::size_t i = 0; i < total; ++i) {
        const std::size_t d = i % d_size;
        if (!std::isfinite(gp[i])) non_finite_gradient(fn, i, d_size, gp[i]);
        const T scale = dom.model_per_raw[d];
        const T e = eps * scale;
        T v = xp[i] + direction * step * scale * sign(gp[i]);
        v = std::clamp(v, x0p[i] - e, x0p[i] + e);
        xp[i] = std::clamp(v, dom.lo[d], dom.hi[d]);
    }
}

/// One L2 step: the gradient is taken in raw units, normalized per sample, and the
/// perturbation is projected onto the raw-unit L2 ball of radius eps, then into the domain.
template <class T, std::size_t R>
void l2_step(const char* fn, tensor<T, R>& x, const tensor<T, R>& x0, const tensor<T, R>& g,
             const resolved_domain<T>& dom, T step, T eps, T direction) {
    const std::size_t d_size = dom.sample_size, n = x.shape()[0];
    for (std::size_t s = 0; s < n; ++s) {
        T* xs = x.data() + s * d_size;
        const T* x0s = x0.data() + s * d_size;
        const T* gs = g.data() + s * d_size;
        double gnorm2 = 0;
        for (std::size_t d = 0; d < d_size; ++d) {
            if (!std::isfinite(gs[d])) non_finite_gradient(fn, s * d_size + d, d_size, gs[d]);
            const double graw = static_cast<double>(gs[d]) * dom.model_per_raw[d];
            gnorm2 += graw * graw;
        }
        const double gscale =
            gnorm2 > 0 ? static_cast<double>(direction * step) / std::sqrt(gnorm2) : 0.0;
        // The raw-unit perturbation after the step, first its norm, then projected.
        auto delta_raw = [&](std::size_t d) {
            const double graw = static_cast<double>(gs[d]) * dom.model_per_raw[d];
            return static_cast<double>(xs[d] - x0s[d]) * dom.raw_per_model[d] + gscale * graw;
        };
        double dnorm2 = 0;
        for (std::size_t d = 0; d < d_size; ++d) dnorm2 += delta_raw(d) * delta_raw(d);
        const double e = static_cast<double>(eps);
        const double shrink = dnorm2 > e * e ? e / std::sqrt(dnorm2) : 1.0;
        for (std::size_t d = 0; d < d_size; ++d) {
            const T v = x0s[d] + static_cast<T>(shrink * delta_raw(d) * dom.model_per_raw[d]);
            xs[d] = std::clamp(v, dom.lo[d], dom.hi[d]);
        }
    }
}

}  // namespace advaug::detail
