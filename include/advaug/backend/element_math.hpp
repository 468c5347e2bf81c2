// The element arithmetic that host loops and device kernels share: the attacks' steps and
// random starts, the SGD update, the max-pooling window and the input-domain test. Each is
// defined here once; backend/host.hpp, optim/sgd.hpp, layers/pooling.hpp and
// domain/input_domain.hpp loop over them on the host, the kernels of advaug/cuda/ on a device,
// so the two backends compute the same formulae (and, for the steps and the L-inf start, the
// same bits). The functions are ADVAUG_HOST_DEVICE; without nvcc they are ordinary inline
// functions and this header needs no CUDA toolkit.
#pragma once

#include <cmath>
#include <cstddef>

#include "advaug/detail/host_device.hpp"

namespace advaug::backend::element {

/// std::clamp's result: lo if v < lo, hi if hi < v, else v (NaN stays NaN). Both comparisons
/// are made whatever their outcome, so that a loop over it is two selects and vectorizes: GCC
/// does not if-convert `v < lo ? lo : (hi < v ? hi : v)`, whose second comparison is
/// conditional (it may raise a floating-point exception), and the branches it keeps are
/// mispredicted wherever the clip is data-dependent (black pixels): on an AMD EPYC the MLP's
/// FGSM attack and FGSM-RS training step ran at half their speed.
template <class T>
ADVAUG_HOST_DEVICE inline T clamp(T v, T lo, T hi) {
    const T below_hi = hi < v ? hi : v;
    return v < lo ? lo : below_hi;
}

/// -1, 0 or +1; sign(0) = sign(-0) = 0.
template <class T>
ADVAUG_HOST_DEVICE constexpr T sign(T v) {
    return static_cast<T>((T(0) < v) - (v < T(0)));
}

// --- the attacks' steps, in model units; eps and step are in raw units ------------------------

/// One L-infinity step of one element:
/// x' = clip_domain(clip_ball(x + direction * step * sign(g))), with the raw-unit step and eps
/// scaled by model_per_raw. `direction` is +1 to raise the loss, -1 to lower it.
template <class T>
ADVAUG_HOST_DEVICE inline T linf_step(T x, T x0, T g, T lo, T hi, T model_per_raw, T step, T eps,
                                      T direction) {
    const T e = eps * model_per_raw;
    T v = x + direction * step * model_per_raw * sign(g);
    v = clamp(v, x0 - e, x0 + e);
    return clamp(v, lo, hi);
}

// One L2 step of a sample is three passes over its elements: the squared raw-unit gradient
// norm (sum of raw_gradient^2), the squared norm of the stepped perturbation (sum of
// l2_delta_raw^2), then l2_step for each element.

/// The raw-unit gradient of one element, as a double.
template <class T>
ADVAUG_HOST_DEVICE inline double raw_gradient(T g, T model_per_raw) {
    return static_cast<double>(g) * model_per_raw;
}

/// The factor turning the raw gradient into the step: direction * step / ||g_raw||, 0 for a
/// zero gradient.
template <class T>
ADVAUG_HOST_DEVICE inline double l2_gradient_scale(double gnorm2, T step, T direction) {
    return gnorm2 > 0 ? static_cast<double>(direction * step) / sqrt(gnorm2) : 0.0;
}

/// The raw-unit perturbation of one element after the step, before the projection.
template <class T>
ADVAUG_HOST_DEVICE inline double l2_delta_raw(T x, T x0, T g, T raw_per_model, T model_per_raw,
                                              double gscale) {
    return static_cast<double>(x - x0) * raw_per_model + gscale * raw_gradient(g, model_per_raw);
}

/// The projection onto the raw-unit L2 ball of radius eps: the factor applied to every delta.
template <class T>
ADVAUG_HOST_DEVICE inline double l2_shrink(double dnorm2, T eps) {
    const double e = static_cast<double>(eps);
    return dnorm2 > e * e ? e / sqrt(dnorm2) : 1.0;
}

/// The element after the projected L2 step, clipped into the domain.
template <class T>
ADVAUG_HOST_DEVICE inline T l2_step(T x0, double delta_raw, double shrink, T model_per_raw, T lo,
                                    T hi) {
    const T v = x0 + static_cast<T>(shrink * delta_raw * model_per_raw);
    return clamp(v, lo, hi);
}

/// a * b, rounded on its own. nvcc would otherwise fuse the multiplication with a following
/// addition into one fma, which rounds once where the host rounds twice.
ADVAUG_HOST_DEVICE inline double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

/// The L-infinity random start of one element from a uniform u in [0, 1): x0 + U(-eps, eps)
/// in raw units, clipped. With u = detail::counter_uniform(key, i, 0, 1) the delta is
/// counter_uniform(key, i, -eps, eps), bit for bit (the same operations in the same order).
template <class T>
ADVAUG_HOST_DEVICE inline T linf_start(T x0, double u, double eps, T model_per_raw, T lo, T hi) {
    const double delta = -eps + mul_rn(eps - -eps, u);
    return clamp(x0 + static_cast<T>(mul_rn(delta, model_per_raw)), lo, hi);
}

/// The L2 random start of one element from its Gaussian coordinate and the per-sample scale
/// radius / ||gaussian||.
template <class T>
ADVAUG_HOST_DEVICE inline T l2_start(T x0, double gaussian, double scale, T model_per_raw, T lo,
                                     T hi) {
    const double delta = scale * gaussian;
    return clamp(x0 + static_cast<T>(delta * model_per_raw), lo, hi);
}

// --- SGD ----------------------------------------------------------------------------------------

/// A weight and its momentum buffer after one SGD step.
template <class T>
struct sgd_result {
    T weight, buffer;
};

/// The update of torch.optim.SGD (dampening 0) for one element, as optim/sgd.hpp states it:
///   g = grad + weight_decay * w (decay); b = first ? g : mu * b + g (momentum);
///   g = nesterov ? g + mu * b : b (momentum); w' = w + neg_lr * g.
/// Without momentum the buffer is neither read nor meaningful. The flags are constants in the
/// host's loops (one vectorized loop per configuration) and kernel arguments on a device.
template <class T>
ADVAUG_HOST_DEVICE inline sgd_result<T> sgd(T w, T grad, T buffer, T weight_decay, T mu, T neg_lr,
                                            bool decay, bool momentum, bool nesterov, bool first) {
    T g = grad;
    if (decay) g += weight_decay * w;
    if (momentum) {
        buffer = first ? g : mu * buffer + g;
        g = nesterov ? g + mu * buffer : buffer;
    }
    return {w + neg_lr * g, buffer};
}

// --- max pooling --------------------------------------------------------------------------------

/// The maximum of the k x k window whose top-left element is x[first], in rows `row_stride`
/// apart; returns its flat index and stores its value in `max`. On ties the first in row
/// order wins, and a NaN is the maximum only where it comes first (comparisons with it are
/// false). Branch-free: the comparisons of ReLU outputs are unpredictable. The backward pass
/// routes each output's gradient to the index returned here.
template <class T>
ADVAUG_HOST_DEVICE inline std::size_t max_window(const T* x, std::size_t first,
                                                 std::size_t row_stride, std::size_t k, T& max) {
    std::size_t best = first;
    T best_value = x[first];
    // One flat loop over the other k * k - 1 elements: nested loops, or comparing x[first]
    // with itself, took twice as long. The value's select compiles to a max instruction (maxss
    // keeps its second operand on a NaN, as the select does); the index's is a mask, because
    // written as a select GCC 12 compiled the pair into a compare and a jump, which
    // mispredicted on half the windows (perf: max-pool forward 35 % of Square on the CNN, 15 %
    // with the mask). The host's 2 x 2 windows take max_pool2d's row loop, which makes the
    // same comparisons in the same order.
    for (std::size_t j = 1; j < k * k; ++j) {
        const std::size_t i = first + (j / k) * row_stride + j % k;
        const T v = x[i];
        const std::size_t take = std::size_t{0} - static_cast<std::size_t>(v > best_value);
        best_value = v > best_value ? v : best_value;
        best = (best & ~take) | (i & take);
    }
    max = best_value;
    return best;
}

// --- input checks -------------------------------------------------------------------------------

/// v is finite and lies in [lo, hi] up to a relative tolerance of 1e-5 (what a round trip
/// through normalization can move a value by); false for NaN and +-inf, whatever the bounds.
template <class T>
ADVAUG_HOST_DEVICE inline bool inside_domain(T v, T lo, T hi) {
    const T magnitude = v < T(0) ? -v : v;  // |v| in T, with or without nvcc
    const T tol = T(1e-5) * (T(1) + magnitude);
    // v - v is 0 for a finite v and NaN otherwise; without it an infinite v would pass, its
    // tolerance being infinite too.
    // & rather than &&: no branch, so that a scan over it vectorizes.
    return (v - v == T(0)) & (v >= lo - tol) & (v <= hi + tol);
}

}  // namespace advaug::backend::element
