// Finite-difference gradient checks for users' own models and layers (the habit of dlib's
// test_layer and mlpack's JacobianTest).
//
// Each check picks a fixed random direction r (seeded) for the output and compares the
// analytic vector-Jacobian product J^T r with central differences of <r, f(x)>:
//   numeric_i = (<r, f(x + h e_i)> - <r, f(x - h e_i)>) / (2 h),
// accumulated in double precision. The result reports the largest absolute difference and
// the relative error ||analytic - numeric||_2 / max(||analytic||_2, ||numeric||_2). For a
// double model 1e-6 is a good bound; float models need h around 1e-2 and a bound near 1e-2.
// Keep inputs away from kinks (ReLU at 0, max-pool ties), where finite differences lie.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/static_checks.hpp"

namespace advaug {

struct gradient_check_result {
    double max_abs_error = 0;    // max_i |analytic_i - numeric_i|
    double relative_error = 0;   // ||analytic - numeric|| / max(||analytic||, ||numeric||)
    std::size_t worst_index = 0; // flat index of the largest absolute difference
    std::size_t checked = 0;     // number of entries compared
    double analytic_norm = 0;    // ||analytic||_2 and ||numeric||_2: both 0 means the check
    double numeric_norm = 0;     // compared zeros with zeros and proves little

    /// Within tolerance, and something was compared.
    bool passed(double tolerance) const { return checked > 0 && relative_error <= tolerance; }
};

/// How a check differentiates: gradient_check_options().step(1e-2).max_entries(500).
class gradient_check_options {
public:
    /// The finite-difference step h (default 1e-6; use about 1e-2 for float).
    gradient_check_options& step(double h) {
        if (!std::isfinite(h) || h <= 0) {
            detail::invalid("gradient_check_options::step", "step must be finite and > 0, got ", h);
        }
        step_ = h;
        return *this;
    }
    /// 0 (the default) checks every entry, else a seeded random subset of n entries.
    gradient_check_options& max_entries(std::size_t n) {
        max_entries_ = n;
        return *this;
    }
    /// Seeds the output direction r and the subset.
    gradient_check_options& seed(std::uint64_t s) {
        seed_ = s;
        return *this;
    }

    double step() const { return step_; }
    std::size_t max_entries() const { return max_entries_; }
    std::uint64_t seed() const { return seed_; }

private:
    double step_ = 1e-6;
    std::size_t max_entries_ = 0;
    std::uint64_t seed_ = 0;
};

/// Input gradient of a classifier: compares input_gradient() with finite differences of
/// <r, forward(x)>. Leaves x unchanged.
template <class M>
gradient_check_result check_input_gradient(const M& model, const input_t<M>& x,
                                           const gradient_check_options& options = {});

/// Parameter gradients of a trainable classifier: compares what parameter_gradient() adds
/// with finite differences over every parameter (or a random subset). Restores the weights
/// and leaves the gradients as they were.
template <class M>
gradient_check_result check_parameter_gradient(M& model, const input_t<M>& x,
                                               const gradient_check_options& options = {});

/// Gradient of the mean cross-entropy with respect to the logits.
template <class T>
gradient_check_result check_cross_entropy_gradient(const tensor<T, 2>& logits,
                                                   const label_vector& labels,
                                                   const gradient_check_options& options = {});

/// Layer input gradient: a layer has forward(x, cache, y) const, backward_input(cache, dy, dx)
/// const and a cache_type (the layer contract of layers/layer.hpp).
template <class L, class X>
gradient_check_result check_layer_input_gradient(const L& layer, const X& x,
                                                 const gradient_check_options& options = {});

/// Layer parameter gradients: accumulate_gradient(cache, dy) and parameters().
template <class L, class X>
gradient_check_result check_layer_parameter_gradient(L& layer, const X& x,
                                                     const gradient_check_options& options = {});

// ---------------------------------------------------------------------------------------------

namespace detail {

/// Random direction with the shape of `like`.
template <class Tensor>
Tensor random_direction(const Tensor& like, std::uint64_t seed) {
    Tensor r(like.shape());
    rng gen(seed ^ 0x9e3779b97f4a7c15ULL);
    for (auto& v : r) v = static_cast<typename Tensor::value_type>(gen.uniform(-1.0, 1.0));
    return r;
}

template <class A, class B>
double dot(const A& a, const B& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        s += static_cast<double>(a.data()[i]) * static_cast<double>(b.data()[i]);
    }
    return s;
}

/// Sums from which the reported errors are computed; parts of one check add up.
struct fd_accumulator {
    gradient_check_result result;
    double diff2 = 0, analytic2 = 0, numeric2 = 0;

    void add(std::size_t index, double analytic, double numeric) {
        const double d = std::abs(analytic - numeric);
        if (result.checked == 0 || d > result.max_abs_error) {
            result.max_abs_error = d;
            result.worst_index = index;
        }
        diff2 += (analytic - numeric) * (analytic - numeric);
        analytic2 += analytic * analytic;
        numeric2 += numeric * numeric;
        ++result.checked;
    }

    gradient_check_result finish() {
        result.analytic_norm = std::sqrt(analytic2);
        result.numeric_norm = std::sqrt(numeric2);
        const double denom = std::max(result.analytic_norm, result.numeric_norm);
        result.relative_error = denom > 0 ? std::sqrt(diff2) / denom : std::sqrt(diff2);
        return result;
    }
};

/// The shared core: perturbs values[i] (every i, or a seeded random subset), evaluates
/// `objective`, and adds the comparison with analytic[i] to `acc`.
template <class T, class Objective>
void compare_finite_differences(fd_accumulator& acc, T* values, std::size_t size,
                                const std::vector<double>& analytic, Objective&& objective,
                                const gradient_check_options& options,
                                std::size_t index_offset = 0) {
    std::vector<std::size_t> indices(size);
    for (std::size_t i = 0; i < size; ++i) indices[i] = i;
    if (options.max_entries() != 0 && options.max_entries() < size) {
        rng gen(options.seed() + index_offset + 1);
        for (std::size_t i = 0; i < options.max_entries(); ++i) {
            const auto j = i + static_cast<std::size_t>(gen.uniform() * static_cast<double>(size - i));
            std::swap(indices[i], indices[std::min(j, size - 1)]);
        }
        indices.resize(options.max_entries());
    }
    for (std::size_t i : indices) {
        const T saved = values[i];
        values[i] = static_cast<T>(static_cast<double>(saved) + options.step());
        const double plus_point = static_cast<double>(values[i]);
        const double plus = objective();
        values[i] = static_cast<T>(static_cast<double>(saved) - options.step());
        const double minus_point = static_cast<double>(values[i]);
        const double minus = objective();
        values[i] = saved;
        // Divide by the step actually taken: in float, x + h is rounded.
        acc.add(index_offset + i, analytic[i], (plus - minus) / (plus_point - minus_point));
    }
}

/// Compares the gradients of every parameter view with finite differences of `objective`.
template <class T, class Objective>
gradient_check_result compare_parameters(std::vector<parameter_view<T>>& params,
                                         Objective&& objective,
                                         const gradient_check_options& options) {
    fd_accumulator acc;
    std::size_t offset = 0;
    for (auto& p : params) {
        std::vector<double> analytic(p.grad.begin(), p.grad.end());
        compare_finite_differences(acc, p.value.data(), p.value.size(), analytic, objective,
                                   options, offset);
        offset += p.value.size();
    }
    return acc.finish();
}

template <class Tensor>
std::vector<double> to_doubles(const Tensor& t) {
    return std::vector<double>(t.data(), t.data() + t.size());
}

}  // namespace detail

template <class M>
gradient_check_result check_input_gradient(const M& model, const input_t<M>& x,
                                           const gradient_check_options& options) {
    if constexpr (check_classifier<M>()) {
        typename M::cache_type cache;
        logits_t<M> logits;
        model.forward(x, cache, logits);
        const logits_t<M> r = detail::random_direction(logits, options.seed());
        input_t<M> dx;
        model.input_gradient(cache, r, dx);
        input_t<M> probe = x;
        auto objective = [&] {
            typename M::cache_type c;
            logits_t<M> out;
            model.forward(probe, c, out);
            return detail::dot(out, r);
        };
        detail::fd_accumulator acc;
        detail::compare_finite_differences(acc, probe.data(), probe.size(),
                                           detail::to_doubles(dx), objective, options);
        return acc.finish();
    } else {
        return {};
    }
}

template <class M>
gradient_check_result check_parameter_gradient(M& model, const input_t<M>& x,
                                               const gradient_check_options& options) {
    if constexpr (check_trainable_classifier<M>()) {
        using T = typename M::value_type;
        auto params = model.parameters();
        // Save the gradients, then measure what one parameter_gradient() call adds.
        std::vector<std::vector<T>> saved;
        for (auto& p : params) saved.emplace_back(p.grad.begin(), p.grad.end());
        model.zero_grad();
        typename M::cache_type cache;
        logits_t<M> logits;
        model.forward(x, cache, logits);
        const logits_t<M> r = detail::random_direction(logits, options.seed());
        model.parameter_gradient(cache, r);
        auto objective = [&] {
            typename M::cache_type c;
            logits_t<M> out;
            model.forward(x, c, out);
            return detail::dot(out, r);
        };
        const auto result = detail::compare_parameters(params, objective, options);
        for (std::size_t i = 0; i < params.size(); ++i) {
            std::copy(saved[i].begin(), saved[i].end(), params[i].grad.begin());
        }
        return result;
    } else {
        return {};
    }
}

template <class T>
gradient_check_result check_cross_entropy_gradient(const tensor<T, 2>& logits,
                                                   const label_vector& labels,
                                                   const gradient_check_options& options) {
    tensor<T, 2> grad;
    cross_entropy_gradient(logits, labels, grad);
    tensor<T, 2> probe = logits;
    auto objective = [&] { return static_cast<double>(cross_entropy(probe, labels)); };
    detail::fd_accumulator acc;
    detail::compare_finite_differences(acc, probe.data(), probe.size(), detail::to_doubles(grad),
                                       objective, options);
    return acc.finish();
}

template <class L, class X>
gradient_check_result check_layer_input_gradient(const L& layer, const X& x,
                                                 const gradient_check_options& options) {
    using Y = tensor<typename L::value_type, L::output_rank>;
    typename L::cache_type cache;
    Y y;
    layer.forward(x, cache, y);
    const Y r = detail::random_direction(y, options.seed());
    X dx;
    layer.backward_input(cache, r, dx);
    X probe = x;
    auto objective = [&] {
        typename L::cache_type c;
        Y out;
        layer.forward(probe, c, out);
        return detail::dot(out, r);
    };
    detail::fd_accumulator acc;
    detail::compare_finite_differences(acc, probe.data(), probe.size(), detail::to_doubles(dx),
                                       objective, options);
    return acc.finish();
}

template <class L, class X>
gradient_check_result check_layer_parameter_gradient(L& layer, const X& x,
                                                     const gradient_check_options& options) {
    using Y = tensor<typename L::value_type, L::output_rank>;
    layer.zero_grad();
    typename L::cache_type cache;
    Y y;
    layer.forward(x, cache, y);
    const Y r = detail::random_direction(y, options.seed());
    layer.accumulate_gradient(cache, r);
    auto objective = [&] {
        typename L::cache_type c;
        Y out;
        layer.forward(x, c, out);
        return detail::dot(out, r);
    };
    auto params = layer.parameters();
    const auto result = detail::compare_parameters(params, objective, options);
    layer.zero_grad();
    return result;
}

}  // namespace advaug
