// Distribution shifts of sensor and tabular data: what happens to a deployed model's inputs
// when the sensors drift, get noisy, stick, drop out or are read at a coarser resolution.
//
//   const auto stats = advaug::compute_feature_stats(train_raw);            // [N, F], raw units
//   const auto drift = advaug::tabular_shift::gain(0.05)                    // every feature +5 %
//                          .then(advaug::tabular_shift::noise(advaug::in_std_units(0.1, stats),
//                          7));
//   drift.apply(test_raw);                                                   // in place
//
// Every shift works on a raw-unit feature matrix [N, F] (rows are samples, columns are
// features or sensors), before any normalization, so its size means what it says in the
// units of the sensor. Where a parameter is per feature it is given either as one value for
// every feature or as one value per feature (checked against F when applied); in_std_units()
// turns "0.1 standard deviations" into per-feature raw values.
//
//   gain(g)                 x[:, f] *= 1 + g[f]                       (calibration gain drift)
//   offset(o)               x[:, f] += o[f]                           (offset / bias drift)
//   noise(sigma, seed)      x[:, f] += sigma[f] * N(0, 1)             (sensor noise)
//   stuck(features, v)      x[:, f] = v[f] for the chosen f           (a frozen reading)
//   stuck_at_first_reading  x[:, f] = x[0, f] for the chosen f        (frozen at row 0)
//   dropped(features, fill) x[:, f] = fill[f] for the chosen f        (a missing reading)
//   quantize(step)          x[:, f] = step[f] * round(x[:, f] / step[f])  (coarser resolution)
//
// stuck() and dropped() write the same kind of constant; they differ in intent (a sensor that
// still reports a plausible value versus a reading that is missing and was filled in, with 0,
// the training mean or NaN) and in describe(). "First reading" means row 0 of the matrix that
// apply() receives, so with batched evaluation it is the first row of each batch.
//
// Noise is seeded: apply(x, stream) draws from advaug::rng seeded by (seed, stream, position
// of the step in the chain), so the same shift, stream and input give the same result on every
// platform, and passing the batch index as the stream gives each batch its own noise.
// Arguments are checked when a shift is made (negative sigma, step <= 0, a feature listed
// twice) and when it is applied (a per-feature vector or a feature index that does not fit
// the matrix): each throws std::invalid_argument naming the function, the argument and the value.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// Per-feature statistics of a raw-unit matrix [N, F]: mean, population standard deviation
/// (divided by N, as numpy's std and scikit-learn's StandardScaler), minimum and maximum.
struct feature_stats {
    std::vector<double> mean, stddev, min, max;
    std::size_t features() const { return mean.size(); }
};

/// requires: x has at least one row and one column, every value finite.
template <class T>
feature_stats compute_feature_stats(const tensor<T, 2>& x);

/// k * stats.stddev[f] for every feature f: a size given in standard deviations, as raw units.
/// requires: k finite.
inline std::vector<double> in_std_units(double k, const feature_stats& stats);

/// per_feature[features[0]], per_feature[features[1]], ...: e.g. the training means of the
/// sensors that a stuck() or dropped() shift freezes. requires: every index < per_feature.size().
inline std::vector<double> pick(const std::vector<double>& per_feature,
                                const std::vector<std::size_t>& features);

/// A shift of raw-unit feature matrices: a chain of the steps listed at the top of this
/// header, applied in order. A default-constructed shift is the identity.
class tabular_shift {
public:
    tabular_shift() = default;

    /// x[:, f] *= 1 + g[f]. requires: every g finite; 1 or F entries.
    static tabular_shift gain(std::vector<double> g);
    static tabular_shift gain(double g) { return gain(std::vector<double>{g}); }

    /// x[:, f] += o[f]. requires: every o finite; 1 or F entries.
    static tabular_shift offset(std::vector<double> o);
    static tabular_shift offset(double o) { return offset(std::vector<double>{o}); }

    /// x[:, f] += sigma[f] * z, z ~ N(0, 1) independent per element.
    /// requires: every sigma finite and >= 0; 1 or F entries.
    static tabular_shift noise(std::vector<double> sigma, std::uint64_t seed);
    static tabular_shift noise(double sigma, std::uint64_t seed) {
        return noise(std::vector<double>{sigma}, seed);
    }

    /// x[:, features[i]] = values[i] (or values[0] for all).
    /// requires: features non-empty without repeats, each < F; values finite, 1 entry or one
    ///           per chosen feature.
    static tabular_shift stuck(std::vector<std::size_t> features, std::vector<double> values);

    /// x[:, f] = x[0, f] for each chosen f. requires: as stuck(); a matrix with no rows is
    /// left as it is.
    static tabular_shift stuck_at_first_reading(std::vector<std::size_t> features);

    /// x[:, features[i]] = fill[i] (or fill[0] for all). NaN is a valid fill (a missing value
    /// left missing; a model will then fail with numeric_error rather than guess).
    /// requires: features as stuck(); every fill finite or NaN, 1 entry or one per feature.
    static tabular_shift dropped(std::vector<std::size_t> features, std::vector<double> fill);

    /// x[:, f] = step[f] * round(x[:, f] / step[f]) (halves away from zero).
    /// requires: every step finite and > 0; 1 or F entries.
    static tabular_shift quantize(std::vector<double> step);
    static tabular_shift quantize(double step) { return quantize(std::vector<double>{step}); }

    /// This shift, then `next`.
    tabular_shift then(const tabular_shift& next) const;

    /// Applies the chain to x [N, F] in place; `stream` selects the noise (e.g. a batch index).
    /// requires: per-feature vectors of 1 or F entries, feature indices < F.
    /// ensures:  x keeps its shape; the same (shift, stream, x) gives the same result.
    /// throws:   std::invalid_argument naming "tabular_shift::apply"; x is unchanged then.
    template <class T>
    void apply(tensor<T, 2>& x, std::uint64_t stream = 0) const;

    /// A shifted copy of x.
    template <class T>
    tensor<T, 2> applied(const tensor<T, 2>& x, std::uint64_t stream = 0) const {
        tensor<T, 2> out = x;
        apply(out, stream);
        return out;
    }

    /// One line, e.g. "gain drift x * (1 + g), g = 0.05; then Gaussian noise, sigma per
    /// feature in [0.0003, 35] (seed 7)". The identity is "no shift".
    std::string describe() const;

    /// True for the identity (no steps).
    bool empty() const { return steps_.empty(); }

private:
    enum class kind { gain, offset, noise, stuck, stuck_first, dropped, quantize };
    struct step {
        kind what;
        std::vector<double> values;         // g, o, sigma, step, stuck values or fill
        std::vector<std::size_t> features;  // stuck and dropped only
        std::uint64_t seed = 0;             // noise only
    };

    static tabular_shift single(step s) {
        tabular_shift out;
        out.steps_.push_back(std::move(s));
        return out;
    }
    static const char* name_of(kind k);
    template <class T>
    static void check_fits(const step& s, const tensor<T, 2>& x);

    std::vector<step> steps_;
};

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail::tabular {

inline std::string short_number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

/// "= 0.05" for one value (or equal values), "per feature in [lo, hi]" otherwise.
inline std::string describe_values(const char* symbol, const std::vector<double>& v) {
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    if (v.size() == 1 || *lo == *hi) return concat(symbol, " = ", short_number(v.front()));
    return concat(symbol, " per feature in [", short_number(*lo), ", ", short_number(*hi), "]");
}

template <class V>
std::string brace_list(const std::vector<V>& v) {
    std::string out = "{";
    for (std::size_t i = 0; i < v.size(); ++i) {
        if constexpr (std::is_floating_point_v<V>) {
            out += (i ? ", " : "") + short_number(v[i]);
        } else {
            out += (i ? ", " : "") + std::to_string(v[i]);
        }
    }
    return out + "}";
}

/// Every entry passes `ok`; otherwise "<fn>(): <arg>[i] <rule>, got <value>".
template <class Ok>
void check_each(const char* fn, const char* arg, const std::vector<double>& v, const char* rule,
                Ok ok) {
    if (v.empty()) invalid(fn, arg, " must have 1 entry or one per feature, got 0 entries");
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (!ok(v[i])) invalid(fn, arg, "[", i, "] ", rule, ", got ", v[i]);
    }
}

inline void check_feature_list(const char* fn, const std::vector<std::size_t>& features) {
    if (features.empty()) invalid(fn, "features must list at least one feature, got none");
    for (std::size_t i = 0; i < features.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (features[j] == features[i]) {
                invalid(fn, "features lists feature ", features[i], " twice (at positions ", j,
                        " and ", i, ")");
            }
        }
    }
}

inline void check_per_chosen(const char* fn, const char* arg, const std::vector<double>& v,
                             std::size_t chosen) {
    if (v.size() != 1 && v.size() != chosen) {
        invalid(fn, arg, " has ", v.size(), " entries; expected 1 or one per chosen feature (",
                chosen, ")");
    }
}

}  // namespace detail::tabular

template <class T>
feature_stats compute_feature_stats(const tensor<T, 2>& x) {
    const char* fn = "compute_feature_stats";
    const std::size_t n = x.shape(0), f = x.shape(1);
    if (n == 0 || f == 0) {
        detail::invalid(fn, "x must have at least one row and one column, got shape ",
                        detail::shape_string(x.shape()));
    }
    detail::check_finite(fn, "x", x);
    feature_stats s;
    s.mean.assign(f, 0.0);
    s.stddev.assign(f, 0.0);
    s.min.assign(f, 0.0);
    s.max.assign(f, 0.0);
    for (std::size_t j = 0; j < f; ++j) {
        double sum = 0, lo = static_cast<double>(x(0, j)), hi = lo;
        for (std::size_t i = 0; i < n; ++i) {
            const double v = static_cast<double>(x(i, j));
            sum += v;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        const double mean = sum / static_cast<double>(n);
        double squares = 0;  // two passes: no cancellation for large means
        for (std::size_t i = 0; i < n; ++i) {
            const double d = static_cast<double>(x(i, j)) - mean;
            squares += d * d;
        }
        s.mean[j] = mean;
        s.stddev[j] = std::sqrt(squares / static_cast<double>(n));
        s.min[j] = lo;
        s.max[j] = hi;
    }
    return s;
}

inline std::vector<double> in_std_units(double k, const feature_stats& stats) {
    if (!std::isfinite(k)) detail::invalid("in_std_units", "k must be finite, got ", k);
    std::vector<double> out(stats.stddev.size());
    for (std::size_t f = 0; f < out.size(); ++f) out[f] = k * stats.stddev[f];
    return out;
}

inline std::vector<double> pick(const std::vector<double>& per_feature,
                                const std::vector<std::size_t>& features) {
    std::vector<double> out;
    out.reserve(features.size());
    for (std::size_t i = 0; i < features.size(); ++i) {
        if (features[i] >= per_feature.size()) {
            detail::invalid("pick", "features[", i, "] = ", features[i], " is out of range for ",
                            per_feature.size(), " per-feature values");
        }
        out.push_back(per_feature[features[i]]);
    }
    return out;
}

inline tabular_shift tabular_shift::gain(std::vector<double> g) {
    detail::tabular::check_each("tabular_shift::gain", "g", g, "must be finite",
                                [](double v) { return std::isfinite(v); });
    return single({kind::gain, std::move(g), {}, 0});
}

inline tabular_shift tabular_shift::offset(std::vector<double> o) {
    detail::tabular::check_each("tabular_shift::offset", "o", o, "must be finite",
                                [](double v) { return std::isfinite(v); });
    return single({kind::offset, std::move(o), {}, 0});
}

inline tabular_shift tabular_shift::noise(std::vector<double> sigma, std::uint64_t seed) {
    detail::tabular::check_each("tabular_shift::noise", "sigma", sigma, "must be finite and >= 0",
                                [](double v) { return std::isfinite(v) && v >= 0; });
    return single({kind::noise, std::move(sigma), {}, seed});
}

inline tabular_shift tabular_shift::stuck(std::vector<std::size_t> features,
                                          std::vector<double> values) {
    const char* fn = "tabular_shift::stuck";
    detail::tabular::check_feature_list(fn, features);
    detail::tabular::check_each(fn, "values", values, "must be finite",
                                [](double v) { return std::isfinite(v); });
    detail::tabular::check_per_chosen(fn, "values", values, features.size());
    return single({kind::stuck, std::move(values), std::move(features), 0});
}

inline tabular_shift tabular_shift::stuck_at_first_reading(std::vector<std::size_t> features) {
    detail::tabular::check_feature_list("tabular_shift::stuck_at_first_reading", features);
    return single({kind::stuck_first, {}, std::move(features), 0});
}

inline tabular_shift tabular_shift::dropped(std::vector<std::size_t> features,
                                            std::vector<double> fill) {
    const char* fn = "tabular_shift::dropped";
    detail::tabular::check_feature_list(fn, features);
    detail::tabular::check_each(fn, "fill", fill, "must be finite or NaN",
                                [](double v) { return !std::isinf(v); });
    detail::tabular::check_per_chosen(fn, "fill", fill, features.size());
    return single({kind::dropped, std::move(fill), std::move(features), 0});
}

inline tabular_shift tabular_shift::quantize(std::vector<double> step) {
    detail::tabular::check_each("tabular_shift::quantize", "step", step, "must be finite and > 0",
                                [](double v) { return std::isfinite(v) && v > 0; });
    return single({kind::quantize, std::move(step), {}, 0});
}

inline tabular_shift tabular_shift::then(const tabular_shift& next) const {
    tabular_shift out = *this;
    out.steps_.insert(out.steps_.end(), next.steps_.begin(), next.steps_.end());
    return out;
}

inline const char* tabular_shift::name_of(kind k) {
    switch (k) {
        case kind::gain:
            return "gain g";
        case kind::offset:
            return "offset o";
        case kind::noise:
            return "noise sigma";
        case kind::stuck:
            return "stuck";
        case kind::stuck_first:
            return "stuck_at_first_reading";
        case kind::dropped:
            return "dropped";
        case kind::quantize:
            return "quantize step";
    }
    return "?";
}

template <class T>
void tabular_shift::check_fits(const step& s, const tensor<T, 2>& x) {
    const char* fn = "tabular_shift::apply";
    const std::size_t f = x.shape(1);
    if (s.features.empty()) {  // a per-feature vector
        if (s.values.size() != 1 && s.values.size() != f) {
            detail::invalid(fn, name_of(s.what), " has ", s.values.size(),
                            " entries, the matrix has ", f, " features (need 1 or ", f, ")");
        }
        return;
    }
    for (std::size_t i = 0; i < s.features.size(); ++i) {
        if (s.features[i] >= f) {
            detail::invalid(fn, name_of(s.what), " feature ", s.features[i], " (features[", i,
                            "]) is out of range for a matrix of ", f, " features (shape ",
                            detail::shape_string(x.shape()), ")");
        }
    }
}

template <class T>
void tabular_shift::apply(tensor<T, 2>& x, std::uint64_t stream) const {
    for (const step& s : steps_) check_fits(s, x);  // all checks first: x unchanged on error
    const std::size_t n = x.shape(0), f = x.shape(1);
    T* const p = x.data();
    const auto per_feature = [](const std::vector<double>& v, std::size_t j) {
        return v.size() == 1 ? v[0] : v[j];
    };
    for (std::size_t k = 0; k < steps_.size(); ++k) {
        const step& s = steps_[k];
        switch (s.what) {
            case kind::gain:
            case kind::offset:
            case kind::quantize:
                for (std::size_t i = 0; i < n; ++i) {
                    for (std::size_t j = 0; j < f; ++j) {
                        const double v = static_cast<double>(p[i * f + j]);
                        const double a = per_feature(s.values, j);
                        const double r = s.what == kind::gain     ? v * (1.0 + a)
                                         : s.what == kind::offset ? v + a
                                                                  : a * std::round(v / a);
                        p[i * f + j] = static_cast<T>(r);
                    }
                }
                break;
            case kind::noise: {
                rng gen(detail::mix_seed(s.seed, stream, k));
                for (std::size_t i = 0; i < n; ++i) {
                    for (std::size_t j = 0; j < f; ++j) {
                        const double v = static_cast<double>(p[i * f + j]);
                        p[i * f + j] = static_cast<T>(v + per_feature(s.values, j) * gen.normal());
                    }
                }
                break;
            }
            case kind::stuck:
            case kind::dropped:
            case kind::stuck_first:
                for (std::size_t c = 0; c < s.features.size(); ++c) {
                    const std::size_t j = s.features[c];
                    if (n == 0) break;
                    const T value = s.what == kind::stuck_first
                                        ? p[j]
                                        : static_cast<T>(per_feature(s.values, c));
                    for (std::size_t i = 0; i < n; ++i) p[i * f + j] = value;
                }
                break;
        }
    }
}

inline std::string tabular_shift::describe() const {
    if (steps_.empty()) return "no shift";
    std::string out;
    for (const step& s : steps_) {
        if (!out.empty()) out += "; then ";
        switch (s.what) {
            case kind::gain:
                out += "gain drift x * (1 + g), " + detail::tabular::describe_values("g", s.values);
                break;
            case kind::offset:
                out += "offset drift x + o, " + detail::tabular::describe_values("o", s.values);
                break;
            case kind::noise:
                out += "Gaussian noise, " + detail::tabular::describe_values("sigma", s.values) +
                       " (seed " + std::to_string(s.seed) + ")";
                break;
            case kind::stuck:
                out += "stuck sensors " + detail::tabular::brace_list(s.features) + " at " +
                       (s.values.size() == 1 ? detail::tabular::short_number(s.values[0])
                                             : detail::tabular::brace_list(s.values));
                break;
            case kind::stuck_first:
                out += "stuck sensors " + detail::tabular::brace_list(s.features) +
                       " at their first reading (row 0)";
                break;
            case kind::dropped:
                out += "dropped sensors " + detail::tabular::brace_list(s.features) +
                       " filled with " +
                       (s.values.size() == 1 ? detail::tabular::short_number(s.values[0])
                                             : detail::tabular::brace_list(s.values));
                break;
            case kind::quantize:
                out +=
                    "quantization to a step, " + detail::tabular::describe_values("step", s.values);
                break;
        }
    }
    return out;
}

}  // namespace advaug
