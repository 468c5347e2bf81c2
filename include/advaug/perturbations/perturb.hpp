// A family applied to a batch of any rank: a [N, C, H, W] batch is read as the [N, C*H*W] rows
// a family takes (channel-major) and the result has x's shape again.
#pragma once

#include <algorithm>
#include <cstddef>

#include "advaug/detail/check.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/static_checks.hpp"

namespace advaug {

namespace detail {

/// x [N, ...] as rows [N, D] (a copy).
template <class T, std::size_t R>
void to_rows(const tensor<T, R>& x, tensor<T, 2>& rows) {
    const std::size_t n = x.shape()[0];
    rows.resize({n, n == 0 ? 0 : x.size() / n});
    std::copy(x.data(), x.data() + x.size(), rows.data());
}

/// rows [N, D] back into `out`, shaped like `shape`.
template <class T, std::size_t R, class Shape>
void from_rows(const tensor<T, 2>& rows, const Shape& shape, tensor<T, R>& out) {
    out.resize(shape);
    std::copy(rows.data(), rows.data() + rows.size(), out.data());
}

}  // namespace detail

/// family.apply(x, theta) for x of any rank. requires: as apply, with x [N, ...] holding
/// input_size() values per sample. ensures: the result has x's shape.
template <class F, class T, std::size_t R>
tensor<T, R> perturb(const F& family, const tensor<T, R>& x, const tensor<T, 2>& theta) {
    tensor<T, R> result;
    if constexpr (check_perturbation_family<F>()) {
        detail::check_nonempty_batch("perturb", "x", x);
        tensor<T, 2> rows, out;
        detail::to_rows(x, rows);
        family.apply(rows, theta, out);
        detail::from_rows(out, x.shape(), result);
    }
    return result;
}

}  // namespace advaug
