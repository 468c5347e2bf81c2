// The Jensen-Shannon divergence between the predictions on several views of each sample, the
// consistency loss of AugMix (Hendrycks et al., ICLR 2020) and AugMax (Wang et al., 2021).
//
// For k views with logits z_v (one row per sample), p_v = softmax(z_v) and M = (1/k) sum_v p_v:
//   JS_i  = (1/k) sum_v KL(p_v,i || M_i) = (1/k) sum_v sum_c p_vc (log p_vc - log M_c)
//   loss  = (1/N) sum_i JS_i
//   dJS_i/dz_vj = p_vj (g_vj - sum_c p_vc g_vc),   g_vc = (1/k) (log p_vc - log M_c)
// (the derivative of the mixture's log cancels: sum_v p_vc / (k M_c) = 1). log p comes from
// the log-softmax and log M from a log-sum-exp over the views, in double, so the loss is finite
// however confident a view is (log p_vc - log M_c <= log k); AugMix's code clamps M at 1e-7
// instead, which changes the loss only where a class has probability under 1e-7 in every view.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug {

/// Mean Jensen-Shannon divergence between the softmax of each view's logits.
/// requires: at least 2 views, all of one non-empty shape [N, C].
template <class T>
T jensen_shannon(std::span<const tensor<T, 2>* const> logits);

/// As jensen_shannon(), and ADDS scale * dloss/dlogits[v] into dlogits[v] (which must have the
/// logits' shape), so that it can follow a cross-entropy gradient of the same logits.
template <class T>
T jensen_shannon_gradient(std::span<const tensor<T, 2>* const> logits,
                          std::span<tensor<T, 2>* const> dlogits, T scale = T(1));

// ---------------------------------------------------------------------------------------------

namespace detail {

template <class T>
T jensen_shannon_kernel(const char* fn, std::span<const tensor<T, 2>* const> logits,
                        std::span<tensor<T, 2>* const>* dlogits, T scale) {
    const std::size_t k = logits.size();
    if (k < 2) invalid(fn, "needs at least 2 views, got ", k);
    for (std::size_t v = 0; v < k; ++v) {
        if (!logits[v]) invalid(fn, "view ", v, " is null");
    }
    const tensor<T, 2>& first = *logits[0];
    check_nonempty_batch(fn, "logits", first);
    const std::size_t n = first.shape()[0], c = first.shape()[1];
    if (c == 0) invalid(fn, "logits has no classes (shape ", shape_string(first.shape()), ")");
    for (std::size_t v = 1; v < k; ++v) {
        if (logits[v]->shape() != first.shape()) {
            invalid(fn, "view ", v, " has logits of shape ", shape_string(logits[v]->shape()), ", view 0 has ",
                    shape_string(first.shape()));
        }
    }
    if (dlogits) {
        if (dlogits->size() != k) invalid(fn, "dlogits has ", dlogits->size(), " views, logits has ", k);
        for (std::size_t v = 0; v < k; ++v) {
            if (!(*dlogits)[v] || (*dlogits)[v]->shape() != first.shape()) {
                invalid(fn, "dlogits of view ", v, " must have the logits' shape ", shape_string(first.shape()));
            }
        }
    }
    std::vector<double> logp(k * c), logm(c), g(c);
    double total = 0;
    const double inv_k = 1.0 / static_cast<double>(k), log_k = std::log(static_cast<double>(k));
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t v = 0; v < k; ++v) {
            const T* z = logits[v]->data() + i * c;
            const double zmax = static_cast<double>(*std::max_element(z, z + c));
            double s = 0;
            for (std::size_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(z[j]) - zmax);
            const double lse = zmax + std::log(s);
            for (std::size_t j = 0; j < c; ++j) logp[v * c + j] = static_cast<double>(z[j]) - lse;
        }
        for (std::size_t j = 0; j < c; ++j) {
            double top = logp[j];
            for (std::size_t v = 1; v < k; ++v) top = std::max(top, logp[v * c + j]);
            double s = 0;
            for (std::size_t v = 0; v < k; ++v) s += std::exp(logp[v * c + j] - top);
            logm[j] = top + std::log(s) - log_k;
        }
        double js = 0;
        for (std::size_t v = 0; v < k; ++v) {
            const double* lp = logp.data() + v * c;
            double inner = 0;  // sum_c p g
            for (std::size_t j = 0; j < c; ++j) {
                const double p = std::exp(lp[j]);
                g[j] = inv_k * (lp[j] - logm[j]);
                js += p * g[j];
                inner += p * g[j];
            }
            if (dlogits) {
                T* d = (*dlogits)[v]->data() + i * c;
                const double factor = static_cast<double>(scale) / static_cast<double>(n);
                for (std::size_t j = 0; j < c; ++j) {
                    d[j] += static_cast<T>(factor * std::exp(lp[j]) * (g[j] - inner));
                }
            }
        }
        total += js;
    }
    return static_cast<T>(total / static_cast<double>(n));
}

}  // namespace detail

template <class T>
T jensen_shannon(std::span<const tensor<T, 2>* const> logits) {
    return detail::jensen_shannon_kernel<T>("jensen_shannon", logits, nullptr, T(1));
}

template <class T>
T jensen_shannon_gradient(std::span<const tensor<T, 2>* const> logits,
                          std::span<tensor<T, 2>* const> dlogits, T scale) {
    return detail::jensen_shannon_kernel<T>("jensen_shannon_gradient", logits, &dlogits, scale);
}

}  // namespace advaug
