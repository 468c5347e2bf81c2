// Perturbations of tabular and sensor data, per feature, in the raw units of the input domain
// (the worst-case counterparts of shifts/tabular_shifts.hpp). Rows are [N, F]; the domain gives
// one value or one per feature; every output is clipped to the domain's bounds.
//
//   tabular_drift    x'_f = x_f * (1 + gain_f) + offset_f   calibration gain and offset drift
//                    theta = (gain_1..F, offset_1..F); identity 0. Continuous.
//   common_drift     x'_f = x_f * (1 + gain) + offset * scale_f  one drift shared by every
//                    feature (a common reference or temperature); theta = (gain, offset), offset
//                    in units of scale_f (e.g. each feature's std); identity 0. Continuous.
//   quantize         x'_f = step_f * round(x_f / step_f)     a coarser resolution
//                    theta = (step_1..F), step 0 keeps the feature; identity 0. Gradient-free:
//                    the output is piecewise constant in step and x, so vjp_theta is 0 and
//                    vjp_input is 0 for a quantized feature (x passes where step is 0); the
//                    search refuses gradient methods for it and samples instead.
//   common_quantize  x'_f = s scale_f * round(x_f / (s scale_f))  one resolution loss shared by
//                    every feature; theta = (s), in units of scale_f; s = 0 keeps x. Gradient-
//                    free, as quantize.
//   dropped_sensors  x'_f = fill_f where mask_f = 1              missing readings, filled in
//                    theta = mask (F entries in {0, 1}, at most k ones); identity all 0.
//                    Discrete. For the derivative the mask is relaxed to
//                    x'_f = x_f + mask_f (fill_f - x_f), so vjp_theta is the first-order gain of
//                    dropping each feature; the search adds features greedily by it, samples
//                    masks, or tries every mask when there are few.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "advaug/detail/random.hpp"
#include "advaug/perturbations/budget.hpp"
#include "advaug/perturbations/detail/raw_family.hpp"
#include "advaug/perturbations/family.hpp"

namespace advaug {

namespace detail {

/// One entry for every feature, or one per feature.
template <class V>
std::vector<V> per_feature(const char* function, const char* argument, const std::vector<V>& v,
                           std::size_t features) {
    if (v.size() == features) return v;
    if (v.size() == 1) return std::vector<V>(features, v[0]);
    invalid(function, argument, " has ", v.size(), " entries; need 1 or ", features,
            " (one per feature)");
}

inline std::size_t checked_features(const char* function, std::size_t f) {
    if (f == 0) invalid(function, "features must be >= 1, got 0");
    return f;
}

/// c ? a : b on the values' bits. The same value as the conditional, but both operands are
/// then used unconditionally: under GCC's default -ftrapping-math a conditional's arithmetic
/// operand is not computed speculatively, so a loop of them does not vectorize.
template <class T>
T select_bits(bool c, T a, T b) {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    static_assert(sizeof(T) == sizeof(U), "select_bits: float or double");
    const U m = U{0} - static_cast<U>(c);
    return std::bit_cast<T>((std::bit_cast<U>(a) & m) | (std::bit_cast<U>(b) & ~m));
}

/// std::round(q) (halves away from zero, the sign of zero kept), bit for bit, without the
/// library call that keeps a loop of std::round scalar: truncation by conversion to an integer
/// where |q| < 2^(digits - 1), where a float is otherwise an integer already (or not finite).
template <class T>
T round_half_away(T q) {
    using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    constexpr T integral = T(1) / std::numeric_limits<T>::epsilon();  // 2^23 or 2^52
    const bool small = std::abs(q) < integral;                          // false for inf, NaN
    const T qs = select_bits(small, q, T(0));  // no conversion of an out-of-range value
    const T t = static_cast<T>(static_cast<I>(qs));
    const T up = select_bits(std::abs(qs - t) >= T(0.5), std::copysign(T(1), qs), T(0));
    return select_bits(small, std::copysign(t + up, qs), q);
}

}  // namespace detail

struct drift_budget {
    std::vector<interval> gain{interval{}};    // relative: [-0.05, 0.05] is +-5 %
    std::vector<interval> offset{interval{}};  // raw units
};

template <class T>
class tabular_drift : public detail::raw_family<tabular_drift<T>, T>, public box_budgeted<T> {
    using base = detail::raw_family<tabular_drift<T>, T>;
    friend base;

public:
    tabular_drift(std::size_t features, drift_budget budget, input_domain domain = {})
        : base("tabular_drift", std::move(domain),
               detail::checked_features("tabular_drift", features), 1,
               std::vector<T>(2 * features, T(0))),
          box_budgeted<T>(make_budget(features, budget)) {}

private:
    static box_budget<T> make_budget(std::size_t f, const drift_budget& b) {
        const char* fn = "tabular_drift";
        auto all = detail::per_feature(fn, "gain", b.gain, f);
        const auto offset = detail::per_feature(fn, "offset", b.offset, f);
        all.insert(all.end(), offset.begin(), offset.end());
        std::vector<std::string> names;
        for (std::size_t j = 0; j < f; ++j) names.push_back("gain[" + std::to_string(j) + "]");
        for (std::size_t j = 0; j < f; ++j) names.push_back("offset[" + std::to_string(j) + "]");
        return box_budget<T>(fn, all, names);
    }

    void forward_row(const T* u, const T* th, T* v) const {
        const std::size_t f = this->input_size();
        for (std::size_t d = 0; d < f; ++d) v[d] = u[d] * (T(1) + th[d]) + th[f + d];
    }
    void backward_row(const T* u, const T* th, const T* g, T* dth, T* du) const {
        const std::size_t f = this->input_size();
        if (dth) {
            for (std::size_t d = 0; d < f; ++d) dth[d] = g[d] * u[d];
            std::copy(g, g + f, dth + f);
        }
        if (du) {
            for (std::size_t d = 0; d < f; ++d) du[d] = g[d] * (T(1) + th[d]);
        }
    }
};

struct common_drift_budget {
    interval gain{};    // relative: [-0.05, 0.05] is +-5 %
    interval offset{};  // in units of each feature's scale
};

template <class T>
class common_drift : public detail::raw_family<common_drift<T>, T>, public box_budgeted<T> {
    using base = detail::raw_family<common_drift<T>, T>;
    friend base;

public:
    /// scale: the raw size of one offset unit, one value or one per feature (e.g. the training
    /// standard deviations). requires: every scale finite and > 0.
    common_drift(std::size_t features, common_drift_budget budget, std::vector<double> scale = {1.0},
                 input_domain domain = {})
        : base("common_drift", std::move(domain), detail::checked_features("common_drift", features),
               1, std::vector<T>(2, T(0))),
          box_budgeted<T>(box_budget<T>("common_drift", {budget.gain, budget.offset},
                                        {"gain", "offset"})) {
        for (double v : detail::per_feature("common_drift", "scale", scale, features)) {
            if (!(std::isfinite(v) && v > 0)) {
                detail::invalid("common_drift", "scale must be finite and > 0, got ", v);
            }
            scale_.push_back(static_cast<T>(v));
        }
    }

private:
    void forward_row(const T* u, const T* th, T* v) const {
        for (std::size_t d = 0; d < this->input_size(); ++d) {
            v[d] = u[d] * (T(1) + th[0]) + th[1] * scale_[d];
        }
    }
    void backward_row(const T* u, const T* th, const T* g, T* dth, T* du) const {
        if (dth) dth[0] = dth[1] = T(0);
        for (std::size_t d = 0; d < this->input_size(); ++d) {
            if (dth) {
                dth[0] += g[d] * u[d];
                dth[1] += g[d] * scale_[d];
            }
            if (du) du[d] = g[d] * (T(1) + th[0]);
        }
    }

    std::vector<T> scale_;
};

template <class T>
class quantize : public detail::raw_family<quantize<T>, T>, public box_budgeted<T> {
    using base = detail::raw_family<quantize<T>, T>;
    friend base;

public:
    static constexpr perturbation_kind kind = perturbation_kind::gradient_free;

    /// step: one interval or one per feature, raw units, 0 <= lo <= hi.
    quantize(std::size_t features, std::vector<interval> step, input_domain domain = {})
        : base("quantize", std::move(domain), detail::checked_features("quantize", features), 1,
               std::vector<T>(features, T(0))),
          box_budgeted<T>(box_budget<T>(
              "quantize", detail::per_feature("quantize", "step", step, features), {})) {
        for (std::size_t j = 0; j < features; ++j) {
            if (this->budget().lo()[j] < T(0)) {
                detail::invalid("quantize", "step[", j, "].lo must be >= 0, got ",
                                this->budget().lo()[j]);
            }
        }
    }

private:
    // The row kernels read the size once: in the loop condition it is reloaded after every
    // store (v might alias the family), which keeps the loops from vectorizing; the rounding
    // and the select are detail::round_half_away and select_bits for the same reason.
    void forward_row(const T* u, const T* th, T* v) const {
        const std::size_t n = this->input_size();
        for (std::size_t d = 0; d < n; ++d) {
            const bool on = th[d] > T(0);
            const T step = detail::select_bits(on, th[d], T(1));  // no division by 0
            v[d] = detail::select_bits(on, step * detail::round_half_away(u[d] / step), u[d]);
        }
    }
    void backward_row(const T*, const T* th, const T* g, T* dth, T* du) const {
        const std::size_t n = this->input_size();
        if (dth) std::fill(dth, dth + n, T(0));
        if (du) {
            for (std::size_t d = 0; d < n; ++d) du[d] = th[d] > T(0) ? T(0) : g[d];
        }
    }
};

template <class T>
class common_quantize : public detail::raw_family<common_quantize<T>, T>, public box_budgeted<T> {
    using base = detail::raw_family<common_quantize<T>, T>;
    friend base;

public:
    static constexpr perturbation_kind kind = perturbation_kind::gradient_free;

    /// step: the shared step s in units of scale, 0 <= lo <= hi; scale: one value or one per
    /// feature (e.g. the training standard deviations), finite and > 0.
    common_quantize(std::size_t features, interval step, std::vector<double> scale = {1.0},
                    input_domain domain = {})
        : base("common_quantize", std::move(domain),
               detail::checked_features("common_quantize", features), 1, std::vector<T>(1, T(0))),
          box_budgeted<T>(box_budget<T>("common_quantize", {step}, {"step"})) {
        if (step.lo < 0) detail::invalid("common_quantize", "step.lo must be >= 0, got ", step.lo);
        for (double v : detail::per_feature("common_quantize", "scale", scale, features)) {
            if (!(std::isfinite(v) && v > 0)) {
                detail::invalid("common_quantize", "scale must be finite and > 0, got ", v);
            }
            scale_.push_back(static_cast<T>(v));
        }
    }

private:
    // As quantize's kernels: the size read once, the rounding and the select branch-free.
    void forward_row(const T* u, const T* th, T* v) const {
        const std::size_t n = this->input_size();
        for (std::size_t d = 0; d < n; ++d) {
            const T raw = th[0] * scale_[d];
            const bool on = raw > T(0);
            const T step = detail::select_bits(on, raw, T(1));  // no division by 0
            v[d] = detail::select_bits(on, step * detail::round_half_away(u[d] / step), u[d]);
        }
    }
    void backward_row(const T*, const T* th, const T* g, T* dth, T* du) const {
        if (dth) dth[0] = T(0);
        if (!du) return;
        const std::size_t n = this->input_size();
        const bool on = th[0] > T(0);
        for (std::size_t d = 0; d < n; ++d) du[d] = on ? T(0) : g[d];
    }

    std::vector<T> scale_;
};

template <class T>
class dropped_sensors : public detail::raw_family<dropped_sensors<T>, T> {
    using base = detail::raw_family<dropped_sensors<T>, T>;
    friend base;

public:
    static constexpr perturbation_kind kind = perturbation_kind::discrete;

    /// Up to k of `features` readings replaced by fill (one value or one per feature, raw
    /// units). requires: 1 <= k <= features, fill finite.
    dropped_sensors(std::size_t features, std::size_t k, std::vector<double> fill = {0.0},
                    input_domain domain = {})
        : base("dropped_sensors", std::move(domain),
               detail::checked_features("dropped_sensors", features), 1,
               std::vector<T>(features, T(0))),
          k_(k) {
        if (k == 0 || k > features) {
            detail::invalid("dropped_sensors", "k must be in [1, ", features, "], got ", k);
        }
        for (double v : detail::per_feature("dropped_sensors", "fill", fill, features)) {
            if (!std::isfinite(v))
                detail::invalid("dropped_sensors", "fill must be finite, got ", v);
            fill_.push_back(static_cast<T>(v));
        }
    }

    std::size_t max_active() const { return k_; }

    /// Exactly k distinct features per row, uniformly (a partial Fisher-Yates shuffle on the
    /// counter-based stream: draw j of row i is output i * F + j).
    void sample(std::size_t n, std::uint64_t key, tensor<T, 2>& theta) const {
        const std::size_t f = this->input_size();
        theta.resize({n, f});
        theta.fill(T(0));
        std::vector<std::size_t> order(f);
        for (std::size_t i = 0; i < n; ++i) {
            std::iota(order.begin(), order.end(), std::size_t{0});
            for (std::size_t j = 0; j < k_; ++j) {
                const double u = detail::counter_uniform(key, i * f + j, 0, 1);
                const std::size_t pick =
                    std::min(f - 1, j + static_cast<std::size_t>(u * static_cast<double>(f - j)));
                std::swap(order[j], order[pick]);
                theta(i, order[j]) = T(1);
            }
        }
    }

    /// The nearest mask: 1 where theta > 0.5, keeping the k largest (lowest index on ties).
    void project(tensor<T, 2>& theta) const {
        const std::size_t f = this->input_size();
        std::vector<std::size_t> order(f);
        for (std::size_t i = 0; i < theta.shape()[0]; ++i) {
            T* row = theta.data() + i * f;
            std::iota(order.begin(), order.end(), std::size_t{0});
            std::stable_sort(order.begin(), order.end(),
                             [&](std::size_t a, std::size_t b) { return row[a] > row[b]; });
            std::vector<T> mask(f, T(0));
            for (std::size_t j = 0; j < k_ && row[order[j]] > T(0.5); ++j) mask[order[j]] = T(1);
            std::copy(mask.begin(), mask.end(), row);
        }
    }

    bool contains(const tensor<T, 2>& theta) const {
        const std::size_t f = this->input_size();
        for (std::size_t i = 0; i < theta.shape()[0]; ++i) {
            std::size_t ones = 0;
            for (std::size_t j = 0; j < f; ++j) {
                const T m = theta(i, j);
                if (m != T(0) && m != T(1)) return false;
                ones += m == T(1);
            }
            if (ones > k_) return false;
        }
        return true;
    }

    std::vector<double> param_scale() const { return std::vector<double>(this->input_size(), 1.0); }

private:
    // Sizes and the fill read once (see quantize), and the mask's cases selected by bits
    // (detail::select_bits), so that the loops vectorize.
    void forward_row(const T* u, const T* th, T* v) const {
        const std::size_t n = this->input_size();
        const T* fill = fill_.data();
        for (std::size_t d = 0; d < n; ++d) {
            const T ud = u[d], td = th[d], fd = fill[d];
            const T mixed = ud + td * (fd - ud);
            v[d] = detail::select_bits(td == T(1), fd, detail::select_bits(td == T(0), ud, mixed));
        }
    }
    void backward_row(const T* u, const T* th, const T* g, T* dth, T* du) const {
        const std::size_t n = this->input_size();
        const T* fill = fill_.data();
        if (dth) {
            for (std::size_t d = 0; d < n; ++d) dth[d] = g[d] * (fill[d] - u[d]);
        }
        if (du) {
            for (std::size_t d = 0; d < n; ++d) du[d] = g[d] * (T(1) - th[d]);
        }
    }

    std::size_t k_;
    std::vector<T> fill_;
};

}  // namespace advaug
