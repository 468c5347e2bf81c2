// The valid range of inputs and how raw units map to what the model sees.
//
// Users give epsilon in raw units (pixel intensities, sensor readings) and bounds in raw units.
// The model sees normalized input z = (x - mean) / std. Attacks take and return inputs in the
// model's units (what forward() receives) and use this description to turn a raw-unit epsilon
// and raw-unit bounds into per-element limits in model units. The seed clipped normalized
// input to [0, 1], which is wrong as soon as mean != 0 or std != 1; here the clip always
// happens in raw units.
//
// Bounds, mean and std are given either as one value or as one value per entry of axis 1 of
// the input: per feature for [N, F] tables, per channel for [N, C, H, W] images.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "advaug/backend/element_math.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/parallel/threads.hpp"

namespace advaug {

class input_domain {
public:
    /// [0, 1] with no normalization, as in the seed.
    input_domain() = default;

    /// All of R: no clipping at all (for features without natural bounds).
    static input_domain unbounded() {
        const double inf = std::numeric_limits<double>::infinity();
        return input_domain{}.bounds(-inf, inf);
    }

    /// The same raw-unit bounds for every entry. requires: lo <= hi, neither is NaN.
    input_domain& bounds(double lo, double hi) { return bounds(std::vector{lo}, std::vector{hi}); }

    /// Raw-unit bounds per feature or channel. requires: equal non-zero lengths, lo[i] <= hi[i].
    input_domain& bounds(std::vector<double> lo, std::vector<double> hi) {
        const char* fn = "input_domain::bounds";
        if (lo.empty() || lo.size() != hi.size()) {
            detail::invalid(fn, "lo has ", lo.size(), " entries and hi has ", hi.size(),
                            "; they must have the same non-zero length");
        }
        for (std::size_t i = 0; i < lo.size(); ++i) {
            if (std::isnan(lo[i]) || std::isnan(hi[i]) || lo[i] > hi[i]) {
                detail::invalid(fn, "lo[", i, "] = ", lo[i], " and hi[", i, "] = ", hi[i],
                                " do not form an interval (need lo <= hi)");
            }
        }
        lo_ = std::move(lo);
        hi_ = std::move(hi);
        return *this;
    }

    /// The model sees (x - mean) / std. requires: std > 0 and finite, mean finite.
    input_domain& normalization(double mean, double std) {
        return normalization(std::vector{mean}, std::vector{std});
    }

    /// Per-feature or per-channel normalization. requires: equal non-zero lengths.
    input_domain& normalization(std::vector<double> mean, std::vector<double> std) {
        const char* fn = "input_domain::normalization";
        if (mean.empty() || mean.size() != std.size()) {
            detail::invalid(fn, "mean has ", mean.size(), " entries and std has ", std.size(),
                            "; they must have the same non-zero length");
        }
        for (std::size_t i = 0; i < mean.size(); ++i) {
            if (!std::isfinite(mean[i])) detail::invalid(fn, "mean[", i, "] must be finite, got ", mean[i]);
            if (!std::isfinite(std[i]) || std[i] <= 0) {
                detail::invalid(fn, "std[", i, "] must be finite and > 0, got ", std[i]);
            }
        }
        mean_ = std::move(mean);
        std_ = std::move(std);
        return *this;
    }

    const std::vector<double>& lo() const { return lo_; }
    const std::vector<double>& hi() const { return hi_; }
    const std::vector<double>& mean() const { return mean_; }
    const std::vector<double>& stddev() const { return std_; }

    /// Raw units to model units, (x - mean) / std.
    template <class T, std::size_t N>
    tensor<T, N> normalize(const tensor<T, N>& raw) const {
        return map<T, N>("input_domain::normalize", raw, true);
    }

    /// Model units to raw units, z * std + mean.
    template <class T, std::size_t N>
    tensor<T, N> denormalize(const tensor<T, N>& z) const {
        return map<T, N>("input_domain::denormalize", z, false);
    }

private:
    template <class T, std::size_t N>
    tensor<T, N> map(const char* fn, const tensor<T, N>& in, bool forward) const;

    std::vector<double> lo_{0.0}, hi_{1.0}, mean_{0.0}, std_{1.0};
};

namespace detail {

/// Index along axis 1 of an element at flat position d within one sample.
/// `inner` is the product of the axes after axis 1 (1 for [N, F]).
inline std::size_t domain_entry(const std::vector<double>& v, std::size_t axis1) {
    return v.size() == 1 ? 0 : axis1;
}

template <class Shape>
void check_domain_length(const char* function, const char* what, std::size_t length,
                         const Shape& shape) {
    if (length != 1 && (shape.size() < 2 || length != shape[1])) {
        invalid(function, "the input domain's ", what, " has ", length,
                " entries; inputs of shape ", shape_string(shape),
                " need 1 or one per entry of axis 1");
    }
}

/// An input_domain resolved against an input shape: per-element limits in model units.
template <class T>
struct resolved_domain {
    std::size_t sample_size = 0;  // elements per sample (product of axes 1..)
    std::vector<T> lo, hi;        // bounds in model units
    std::vector<T> raw_per_model; // std: raw units per model unit
    std::vector<T> model_per_raw; // 1 / std
    bool unit_scale = true;       // std == 1 everywhere
};

template <class T, class Shape>
resolved_domain<T> resolve(const char* function, const input_domain& dom, const Shape& shape) {
    check_domain_length(function, "bounds", dom.lo().size(), shape);
    check_domain_length(function, "normalization", dom.mean().size(), shape);
    resolved_domain<T> r;
    std::size_t inner = 1;
    for (std::size_t a = 2; a < shape.size(); ++a) inner *= shape[a];
    r.sample_size = (shape.size() < 2 ? 1 : shape[1]) * inner;
    r.lo.resize(r.sample_size);
    r.hi.resize(r.sample_size);
    r.raw_per_model.resize(r.sample_size);
    r.model_per_raw.resize(r.sample_size);
    for (std::size_t d = 0; d < r.sample_size; ++d) {
        const std::size_t c = d / inner;
        const double mean = dom.mean()[domain_entry(dom.mean(), c)];
        const double sd = dom.stddev()[domain_entry(dom.stddev(), c)];
        r.lo[d] = static_cast<T>((dom.lo()[domain_entry(dom.lo(), c)] - mean) / sd);
        r.hi[d] = static_cast<T>((dom.hi()[domain_entry(dom.hi(), c)] - mean) / sd);
        r.raw_per_model[d] = static_cast<T>(sd);
        r.model_per_raw[d] = static_cast<T>(1.0 / sd);
        if (sd != 1.0) r.unit_scale = false;
    }
    return r;
}

/// What to do about an input outside the domain; the default [0, 1] is the usual cause.
inline constexpr const char* domain_hint =
    " (model units); the options' input_domain must hold the data: bounds(lo, hi) or "
    "unbounded() for raw values outside the default [0, 1] (standardized tables), and "
    "normalization(mean, std) only where the model sees (raw - mean) / std";

/// Every element of x lies in the domain (with a rounding tolerance for normalized data).
template <class T, std::size_t N>
void check_in_domain(const char* function, const tensor<T, N>& x, const resolved_domain<T>& r) {
    const std::size_t n = x.shape()[0], d_size = r.sample_size;
    const T* p = x.data();
    auto inside = [&](T v, std::size_t d) {
        return backend::element::inside_domain(v, r.lo[d], r.hi[d]);
    };
    // A branch-free scan (it vectorizes) split across advaug's threads, then the search for the
    // message only on failure.
    std::atomic<bool> all{true};
    parallel_for(n, rows_per_chunk(d_size), [&](std::size_t first, std::size_t last, std::size_t) {
        const T* lo = r.lo.data();
        const T* hi = r.hi.data();
        unsigned outside = 0;  // not a bool &=, which GCC 12 does not vectorize
        for (std::size_t s = first; s < last; ++s) {
            const T* ps = p + s * d_size;
            for (std::size_t d = 0; d < d_size; ++d) {
                outside |= static_cast<unsigned>(!backend::element::inside_domain(ps[d], lo[d], hi[d]));
            }
        }
        if (outside != 0) all.store(false, std::memory_order_relaxed);
    });
    if (all.load(std::memory_order_relaxed)) return;
    for (std::size_t s = 0; s < n; ++s) {
        for (std::size_t d = 0; d < d_size; ++d) {
            const T v = p[s * d_size + d];
            if (!inside(v, d)) {
                invalid(function, "inputs[", s, "] element ", d, " = ", v,
                        " lies outside the input domain [", r.lo[d], ", ", r.hi[d], "]",
                        domain_hint);
            }
        }
    }
}

}  // namespace detail

template <class T, std::size_t N>
tensor<T, N> input_domain::map(const char* fn, const tensor<T, N>& in, bool forward) const {
    detail::check_domain_length(fn, "normalization", mean_.size(), in.shape());
    tensor<T, N> out(in.shape());
    std::size_t inner = 1;
    for (std::size_t a = 2; a < N; ++a) inner *= in.shape()[a];
    const std::size_t axis1 = N < 2 ? 1 : in.shape()[1];
    const std::size_t sample = axis1 * inner;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const std::size_t c = (i % sample) / inner;
        const T m = static_cast<T>(mean_[detail::domain_entry(mean_, c)]);
        const T s = static_cast<T>(std_[detail::domain_entry(std_, c)]);
        out.data()[i] = forward ? (in.data()[i] - m) / s : in.data()[i] * s + m;
    }
    return out;
}

}  // namespace advaug
