// Budgets: the sets a family's parameters range over. Most families use a box, one interval per
// parameter; box_budget holds it with its projection, membership test and seeded sampling, and
// a user's own family may use it too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug {

/// A closed interval [lo, hi] of one parameter. Checked where a family receives it.
struct interval {
    double lo = 0;
    double hi = 0;
};

/// [-r, r].
inline interval symmetric(double r) { return {-r, r}; }

namespace detail {

/// lo <= hi, both finite; otherwise names the function, the argument and both values.
inline interval checked_interval(const char* function, const std::string& argument, interval i) {
    if (!std::isfinite(i.lo) || !std::isfinite(i.hi) || i.lo > i.hi) {
        invalid(function, argument, " must be an interval of finite numbers with lo <= hi, got [",
                i.lo, ", ", i.hi, "]");
    }
    return i;
}

/// Shapes of a batch and its parameters: x [N, D], theta [N, P].
template <class T>
void check_batch_shapes(const char* function, const tensor<T, 2>& x, const tensor<T, 2>& theta,
                        std::size_t d, std::size_t p) {
    if (x.shape()[1] != d) {
        invalid(function, "x has shape ", shape_string(x.shape()), "; the family takes ", d,
                " features per sample");
    }
    if (theta.shape()[0] != x.shape()[0] || theta.shape()[1] != p) {
        invalid(function, "theta has shape ", shape_string(theta.shape()), ", expected [",
                x.shape()[0], ", ", p, "] for x of shape ", shape_string(x.shape()));
    }
}

/// theta and x finite; otherwise names the first bad entry of theta, else of x.
template <class T>
void check_batch_values(const char* function, const tensor<T, 2>& x, const tensor<T, 2>& theta,
                        std::size_t d, std::size_t p) {
    const T* t = theta.data();
    if (!all_finite(t, theta.size())) {
        for (std::size_t i = 0; i < theta.size(); ++i) {
            if (!std::isfinite(t[i])) {
                invalid(function, "theta must be finite, got ", t[i], " at row ", i / p,
                        ", parameter ", i % p);
            }
        }
    }
    const T* v = x.data();
    if (!all_finite(v, x.size())) {
        for (std::size_t i = 0; i < x.size(); ++i) {
            if (!std::isfinite(v[i])) {
                invalid(function, "x must be finite, got ", v[i], " at row ", i / d, ", feature ",
                        i % d);
            }
        }
    }
}

/// dout has the shape of x.
template <class T>
void check_upstream(const char* function, const tensor<T, 2>& x, const tensor<T, 2>& dout) {
    if (dout.shape() != x.shape()) {
        invalid(function, "dout has shape ", shape_string(dout.shape()), ", x has shape ",
                shape_string(x.shape()));
    }
}

}  // namespace detail

/// One interval per parameter.
template <class T>
class box_budget {
public:
    box_budget() = default;

    /// requires: every interval finite with lo <= hi (checked, named after `function`).
    box_budget(const char* function, const std::vector<interval>& intervals,
               const std::vector<std::string>& names) {
        for (std::size_t j = 0; j < intervals.size(); ++j) {
            const auto i = detail::checked_interval(
                function, j < names.size() ? names[j] : "budget[" + std::to_string(j) + "]",
                intervals[j]);
            lo_.push_back(static_cast<T>(i.lo));
            hi_.push_back(static_cast<T>(i.hi));
        }
    }

    std::size_t size() const { return lo_.size(); }
    const std::vector<T>& lo() const { return lo_; }
    const std::vector<T>& hi() const { return hi_; }

    /// Clamps every parameter into its interval.
    void project(tensor<T, 2>& theta) const {
        const std::size_t p = lo_.size();
        T* t = theta.data();
        for (std::size_t i = 0; i < theta.size(); ++i) {
            t[i] = std::clamp(t[i], lo_[i % p], hi_[i % p]);
        }
    }

    bool contains(const tensor<T, 2>& theta) const {
        const std::size_t p = lo_.size();
        const T* t = theta.data();
        for (std::size_t i = 0; i < theta.size(); ++i) {
            const T tol = T(1e-6) * (T(1) + std::abs(t[i]));
            if (!(t[i] >= lo_[i % p] - tol && t[i] <= hi_[i % p] + tol)) return false;
        }
        return true;
    }

    /// Uniform in the box; element (i, j) is output i * P + j of the stream `key`.
    void sample(std::size_t n, std::uint64_t key, tensor<T, 2>& theta) const {
        const std::size_t p = lo_.size();
        theta.resize({n, p});
        for (std::size_t i = 0; i < n * p; ++i) {
            theta.data()[i] = static_cast<T>(detail::counter_uniform(
                key, i, static_cast<double>(lo_[i % p]), static_cast<double>(hi_[i % p])));
            theta.data()[i] = std::clamp(theta.data()[i], lo_[i % p], hi_[i % p]);
        }
    }

    /// Half the width of every interval.
    std::vector<double> half_widths() const {
        std::vector<double> s(lo_.size());
        for (std::size_t j = 0; j < s.size(); ++j) {
            s[j] = 0.5 * (static_cast<double>(hi_[j]) - static_cast<double>(lo_[j]));
        }
        return s;
    }

private:
    std::vector<T> lo_, hi_;
};

/// The budget members of a family whose parameters range over a box: budget(), sample(),
/// project(), contains() and param_scale(), each forwarded to the box_budget it holds.
template <class T>
class box_budgeted {
public:
    explicit box_budgeted(box_budget<T> budget) : budget_(std::move(budget)) {}

    const box_budget<T>& budget() const { return budget_; }
    void sample(std::size_t n, std::uint64_t key, tensor<T, 2>& theta) const {
        budget_.sample(n, key, theta);
    }
    void project(tensor<T, 2>& theta) const { budget_.project(theta); }
    bool contains(const tensor<T, 2>& theta) const { return budget_.contains(theta); }
    std::vector<double> param_scale() const { return budget_.half_widths(); }

private:
    box_budget<T> budget_;
};

}  // namespace advaug
