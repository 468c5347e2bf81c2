// The per-sample losses of APGD and Square on one row of logits, with their gradients, and
// the row gathering that lets an attack work on the samples it has not broken yet.
// Internal: users call apgd(), apgd_t(), square(), autoattack().
//
// Every loss here is per sample and un-averaged (the batch loss is their sum, as in the
// reference implementation), so a sample's gradient does not depend on how many samples share
// its batch. Sums are taken in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug::detail {

/// True for the host tensors (advaug::tensor). APGD, Square and AutoAttack run on the host
/// only so far; the CUDA backend has no kernels for them.
template <class X>
inline constexpr bool is_host_tensor_v = false;
template <class T, std::size_t N>
inline constexpr bool is_host_tensor_v<tensor<T, N>> = true;

/// The classes of one row in descending order of logit (ties: the lower class first).
template <class T>
void sorted_classes(const T* z, std::size_t c, std::vector<std::size_t>& order) {
    order.resize(c);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [z](std::size_t a, std::size_t b) { return z[a] > z[b]; });
}

/// The predicted class: the first largest logit.
template <class T>
std::size_t predicted_class(const T* z, std::size_t c) {
    return static_cast<std::size_t>(std::max_element(z, z + c) - z);
}

/// z_y - max_{j != y} z_j: positive while y is predicted, <= 0 once the sample is broken.
template <class T>
double margin_row(const T* z, std::size_t c, std::size_t y) {
    double other = -INFINITY;
    for (std::size_t j = 0; j < c; ++j)
        if (j != y) other = std::max(other, static_cast<double>(z[j]));
    return static_cast<double>(z[y]) - other;
}

/// Cross-entropy of one row; g (if not null) gets dCE/dz = softmax(z) - onehot(y).
template <class T>
double ce_row(const T* z, std::size_t c, std::size_t y, T* g) {
    const double zmax = static_cast<double>(*std::max_element(z, z + c));
    double sum = 0;
    for (std::size_t j = 0; j < c; ++j) sum += std::exp(static_cast<double>(z[j]) - zmax);
    const double log_sum = std::log(sum);
    if (g != nullptr) {
        for (std::size_t j = 0; j < c; ++j) {
            const double log_p = static_cast<double>(z[j]) - zmax - log_sum;
            g[j] = static_cast<T>(j == y ? std::expm1(log_p) : std::exp(log_p));
        }
    }
    return log_sum - (static_cast<double>(z[y]) - zmax);
}

/// The DLR loss (Croce and Hein 2020, eq. 5): -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3),
/// with pi the classes sorted by logit; invariant to shifting and scaling the logits.
/// requires: c >= 3. The 1e-12 is the reference implementation's guard.
template <class T>
double dlr_row(const T* z, std::size_t c, std::size_t y, const std::vector<std::size_t>& order,
               T* g) {
    const std::size_t top = order[0], third = order[2];
    const std::size_t other = top == y ? order[1] : top;
    const double num = static_cast<double>(z[y]) - static_cast<double>(z[other]);
    const double den = static_cast<double>(z[top]) - static_cast<double>(z[third]) + 1e-12;
    if (g != nullptr) {
        std::fill(g, g + c, T(0));
        const double dden = num / (den * den);  // dL/dden
        g[y] = static_cast<T>(-1.0 / den);
        g[other] = static_cast<T>(static_cast<double>(g[other]) + 1.0 / den);
        g[top] = static_cast<T>(static_cast<double>(g[top]) + dden);
        g[third] = static_cast<T>(static_cast<double>(g[third]) - dden);
    }
    return -num / den;
}

/// The targeted DLR loss (Croce and Hein 2020, eq. 6):
/// -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2). requires: c >= 4, t != y.
template <class T>
double dlr_targeted_row(const T* z, std::size_t c, std::size_t y, std::size_t t,
                        const std::vector<std::size_t>& order, T* g) {
    const std::size_t p1 = order[0], p3 = order[2], p4 = order[3];
    const double num = static_cast<double>(z[y]) - static_cast<double>(z[t]);
    const double den = static_cast<double>(z[p1]) -
                       0.5 * (static_cast<double>(z[p3]) + static_cast<double>(z[p4])) + 1e-12;
    if (g != nullptr) {
        std::fill(g, g + c, T(0));
        const double dden = num / (den * den);
        g[y] = static_cast<T>(-1.0 / den);
        g[t] = static_cast<T>(static_cast<double>(g[t]) + 1.0 / den);
        g[p1] = static_cast<T>(static_cast<double>(g[p1]) + dden);
        g[p3] = static_cast<T>(static_cast<double>(g[p3]) - 0.5 * dden);
        g[p4] = static_cast<T>(static_cast<double>(g[p4]) - 0.5 * dden);
    }
    return -num / den;
}

// --- rows ---------------------------------------------------------------------------------------

/// out = the rows `idx` of x, in that order (out's storage is reused when its shape fits).
template <class T, std::size_t R>
void gather_rows(const tensor<T, R>& x, const std::vector<std::size_t>& idx, tensor<T, R>& out) {
    auto shape = x.shape();
    const std::size_t d_size = shape[0] ? x.size() / shape[0] : 0;
    shape[0] = idx.size();
    if (out.shape() != shape) out.resize(shape);
    for (std::size_t i = 0; i < idx.size(); ++i)
        std::copy_n(x.data() + idx[i] * d_size, d_size, out.data() + i * d_size);
}

template <class T, std::size_t R>
tensor<T, R> gather_rows(const tensor<T, R>& x, const std::vector<std::size_t>& idx) {
    tensor<T, R> out;
    gather_rows(x, idx, out);
    return out;
}

inline label_vector gather_labels(const label_vector& y, const std::vector<std::size_t>& idx) {
    label_vector out = label_vector::from_shape({idx.size()});
    for (std::size_t i = 0; i < idx.size(); ++i) out(i) = y(idx[i]);
    return out;
}

/// Row i of src becomes row idx[i] of dst.
template <class T, std::size_t R>
void scatter_rows(tensor<T, R>& dst, const tensor<T, R>& src, const std::vector<std::size_t>& idx) {
    const std::size_t d_size = dst.shape()[0] ? dst.size() / dst.shape()[0] : 0;
    for (std::size_t i = 0; i < idx.size(); ++i)
        std::copy_n(src.data() + i * d_size, d_size, dst.data() + idx[i] * d_size);
}

/// A standard normal for element i of the stream `key` (Box-Muller on elements 2i and 2i+1):
/// counter-based like counter_uniform, so any thread may draw any element.
inline double counter_normal(std::uint64_t key, std::uint64_t i) {
    double u1 = counter_uniform(key, 2 * i, 0.0, 1.0);
    if (u1 <= 0.0) u1 = 0x1.0p-53;
    const double u2 = counter_uniform(key, 2 * i + 1, 0.0, 1.0);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.14159265358979323846 * u2);
}

}  // namespace advaug::detail
