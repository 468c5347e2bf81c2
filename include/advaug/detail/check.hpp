// Argument checks shared by the public entry points. Each names the calling function,
// the argument and the offending value or shapes.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug::detail {

/// Whether v[0, n) are all finite, in one pass without an early exit, which vectorizes (a
/// loop that stops at the first bad value does not: it took 45 % of the L-inf ball family's
/// step in perf). The checks below search for the bad value only when this fails.
template <class T>
bool all_finite(const T* v, std::size_t n) {
    // v - v is 0 for a finite v and NaN for an infinite or NaN one; GCC 12 does not vectorize
    // the same reduction over std::isfinite.
    unsigned bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const T z = v[i] - v[i];
        bad |= static_cast<unsigned>(z != z);
    }
    return bad == 0;
}

/// Every element of `t` is finite; otherwise names the first bad element by its flat index.
template <class T, std::size_t N>
void check_finite(const char* function, const char* argument, const tensor<T, N>& t) {
    const T* p = t.data();
    if (all_finite(p, t.size())) return;
    for (std::size_t i = 0, n = t.size(); i < n; ++i) {
        if (!std::isfinite(p[i])) {
            invalid(function, argument, " must be finite, got ", p[i], " at flat index ", i,
                    " (shape ", shape_string(t.shape()), ")");
        }
    }
}

/// `t` has at least one sample.
template <class T, std::size_t N>
void check_nonempty_batch(const char* function, const char* argument, const tensor<T, N>& t) {
    if (t.shape()[0] == 0) {
        invalid(function, argument, " is an empty batch (shape ", shape_string(t.shape()), ")");
    }
}

/// One label per row of the batch, each in [0, classes).
inline void check_labels(const char* function, const label_vector& labels, std::size_t rows,
                         std::size_t classes) {
    if (labels.size() != rows) {
        invalid(function, "labels has ", labels.size(), " entries, the batch has ", rows,
                " rows");
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const std::int64_t y = labels(i);
        if (y < 0 || static_cast<std::uint64_t>(y) >= classes) {
            invalid(function, "labels[", i, "] = ", y, " is outside [0, ", classes, ")");
        }
    }
}

}  // namespace advaug::detail
