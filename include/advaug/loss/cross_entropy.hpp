// Softmax cross-entropy on logits, mean-reduced, with its gradient.
//
// For logits z (one row per sample) and labels y:
//   loss_i = logsumexp(z_i) - z_i[y_i]            (computed with the row maximum subtracted,
//                                                   so large logits do not overflow)
//   loss   = (1/N) * sum_i w_i * loss_i            (w_i = 1 without weights)
//   dloss/dz_i = (w_i / N) * (softmax(z_i) - onehot(y_i))
// The weights scale samples and the sum is still divided by N (not by sum w), so a weight of
// 0.5 on every sample halves the loss. This is what makes alpha-mixing exact.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "advaug/detail/check.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug {

/// Mean cross-entropy. requires: labels.size() == rows, labels in [0, classes).
template <class T>
T cross_entropy(const tensor<T, 2>& logits, const label_vector& labels);

/// Weighted mean cross-entropy, (1/N) sum_i w_i loss_i. requires: weights.size() == rows.
template <class T>
T cross_entropy(const tensor<T, 2>& logits, const label_vector& labels,
                const tensor<T, 1>& weights);

/// Mean cross-entropy; writes scale * dloss/dlogits into `dlogits` (resized to logits' shape).
template <class T>
T cross_entropy_gradient(const tensor<T, 2>& logits, const label_vector& labels,
                         tensor<T, 2>& dlogits, T scale = T(1));

/// Weighted variant of cross_entropy_gradient.
template <class T>
T cross_entropy_gradient(const tensor<T, 2>& logits, const label_vector& labels,
                         const tensor<T, 1>& weights, tensor<T, 2>& dlogits, T scale = T(1));

/// The unreduced loss_i of every sample.
template <class T>
tensor<T, 1> cross_entropy_per_sample(const tensor<T, 2>& logits, const label_vector& labels);

// ---------------------------------------------------------------------------------------------

namespace detail {

/// The one implementation behind the functions above. Null pointers switch parts off.
template <class T>
T cross_entropy_kernel(const char* function, const tensor<T, 2>& logits,
                       const label_vector& labels, const tensor<T, 1>* weights,
                       tensor<T, 2>* dlogits, T scale, tensor<T, 1>* per_sample) {
    const std::size_t n = logits.shape()[0], c = logits.shape()[1];
    check_nonempty_batch(function, "logits", logits);
    if (c == 0) invalid(function, "logits has no classes (shape ", shape_string(logits.shape()), ")");
    check_labels(function, labels, n, c);
    if (weights && weights->size() != n) {
        invalid(function, "weights has ", weights->size(), " entries, logits have ", n, " rows");
    }
    if (dlogits) dlogits->resize({n, c});
    if (per_sample) per_sample->resize({n});

    double total = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const T* z = logits.data() + i * c;
        const std::size_t top = static_cast<std::size_t>(std::max_element(z, z + c) - z);
        const double zmax = static_cast<double>(z[top]);
        // log sum_j exp(z_j - zmax) = log1p(sum over j != top), accurate however confident the
        // row is; in double, so p - onehot is formed before any rounding to T (for a margin
        // above ~17, a float p_y rounds to 1 and the label's gradient would vanish).
        double rest = 0.0;
        for (std::size_t j = 0; j < c; ++j)
            if (j != top) rest += std::exp(static_cast<double>(z[j]) - zmax);
        const double log_sum = std::log1p(rest);
        const auto y = static_cast<std::size_t>(labels(i));
        const double loss_i = log_sum - (static_cast<double>(z[y]) - zmax);
        const T w = weights ? (*weights)(i) : T(1);
        total += static_cast<double>(w) * loss_i;
        if (per_sample) (*per_sample)(i) = static_cast<T>(loss_i);
        if (dlogits) {
            T* g = dlogits->data() + i * c;
            const double factor = static_cast<double>(scale) * static_cast<double>(w) / static_cast<double>(n);
            for (std::size_t j = 0; j < c; ++j) {
                const double log_p = static_cast<double>(z[j]) - zmax - log_sum;
                // p_y - 1 = expm1(log p_y) without cancellation
                const double d = j == y ? std::expm1(log_p) : std::exp(log_p);
                g[j] = static_cast<T>(factor * d);
            }
        }
    }
    return static_cast<T>(total / static_cast<double>(n));
}

}  // namespace detail

template <class T>
T cross_entropy(const tensor<T, 2>& logits, const label_vector& labels) {
    return detail::cross_entropy_kernel<T>("cross_entropy", logits, labels, nullptr, nullptr,
                                           T(1), nullptr);
}

template <class T>
T cross_entropy(const tensor<T, 2>& logits, const label_vector& labels,
                const tensor<T, 1>& weights) {
    return detail::cross_entropy_kernel<T>("cross_entropy", logits, labels, &weights, nullptr,
                                           T(1), nullptr);
}

template <class T>
T cross_entropy_gradient(const tensor<T, 2>& logits, const label_vector& labels,
                         tensor<T, 2>& dlogits, T scale) {
    return detail::cross_entropy_kernel<T>("cross_entropy_gradient", logits, labels, nullptr,
                                           &dlogits, scale, nullptr);
}

template <class T>
T cross_entropy_gradient(const tensor<T, 2>& logits, const label_vector& labels,
                         const tensor<T, 1>& weights, tensor<T, 2>& dlogits, T scale) {
    return detail::cross_entropy_kernel<T>("cross_entropy_gradient", logits, labels, &weights,
                                           &dlogits, scale, nullptr);
}

template <class T>
tensor<T, 1> cross_entropy_per_sample(const tensor<T, 2>& logits, const label_vector& labels) {
    tensor<T, 1> out;
    detail::cross_entropy_kernel<T>("cross_entropy_per_sample", logits, labels, nullptr, nullptr,
                                    T(1), &out);
    return out;
}

}  // namespace advaug
