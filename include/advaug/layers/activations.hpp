// Elementwise activations on any rank: ReLU, leaky ReLU and tanh, as torch.nn.ReLU, LeakyReLU
// and Tanh. Each keeps a pointer to its output in the cache (the derivative is a function of
// it), so forward may run in place and the output must outlive the backward call. None has
// parameters: they inherit parameterless_layer (layers/parameterless.hpp).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/layer.hpp"
#include "advaug/layers/parameterless.hpp"
#include "advaug/parallel/threads.hpp"

namespace advaug {

namespace detail {
// Both loads happen unconditionally so that the compiler turns the select into a vector blend;
// a conditional load compiles to a branch per element that mispredicts on ReLU's ~50% zeros.

/// y = max(x, 0); in place when x and y are the same buffer. The derivative at 0 is taken as 0.
template <class T>
void relu_forward(const T* x, T* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const T v = x[i];
        y[i] = v > T(0) ? v : T(0);
    }
}
/// dx = dy where the layer's output y > 0, else 0 (y > 0 exactly when x > 0).
template <class T>
void relu_backward(const T* y, const T* dy, T* dx, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const T g = dy[i];
        dx[i] = y[i] > T(0) ? g : T(0);
    }
}
/// y = x for x > 0, slope * x otherwise; in place when x and y are the same buffer.
template <class T>
void leaky_relu_forward(const T* x, T* y, std::size_t n, T slope) {
    for (std::size_t i = 0; i < n; ++i) {
        const T v = x[i];  // one unconditional load: a vector blend, not a branch
        y[i] = v > T(0) ? v : slope * v;
    }
}
/// dx = dy where the output y > 0, slope * dy elsewhere (for slope >= 0, y > 0 exactly when
/// x > 0; the derivative at 0 is slope, as in PyTorch).
template <class T>
void leaky_relu_backward(const T* y, const T* dy, T* dx, std::size_t n, T slope) {
    for (std::size_t i = 0; i < n; ++i) {
        const T g = dy[i];
        dx[i] = y[i] > T(0) ? g : slope * g;
    }
}
/// y = tanh(x); in place when x and y are the same buffer.
template <class T>
void tanh_forward(const T* x, T* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}
/// dx = dy (1 - y^2) for the output y = tanh(x).
template <class T>
void tanh_backward(const T* y, const T* dy, T* dx, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
}

template <class T, std::size_t Rank>
void check_activation_gradient(const char* fn, const tensor<T, Rank>* y,
                               const tensor<T, Rank>& dy) {
    if (y == nullptr) invalid(fn, "the cache was not filled by forward()");
    if (dy.shape() != y->shape()) {
        invalid(fn, "the output gradient has shape ", shape_string(dy.shape()),
                ", the layer's output is ", shape_string(y->shape()));
    }
}
}  // namespace detail

/// ReLU, y = max(x, 0). Runs on advaug's threads (the bundled models' hottest element loop).
template <class T, std::size_t Rank = 2>
class relu : public parameterless_layer<T> {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = Rank;
    static constexpr std::size_t output_rank = Rank;
    static constexpr bool mode_independent = true;
    static constexpr optional_member optional_members = optional_member::describe;
    struct cache_type {
        const tensor<T, Rank>* y = nullptr;  // the layer's output
    };

    std::string describe() const { return "relu"; }

    void forward(const tensor<T, Rank>& x, cache_type& cache, tensor<T, Rank>& y) const {
        if (y.shape() != x.shape()) y.resize(x.shape());
        detail::parallel_for(x.size(), detail::elementwise_grain,
                             [&](std::size_t begin, std::size_t end, std::size_t) {
                                 detail::relu_forward(x.data() + begin, y.data() + begin,
                                                      end - begin);
                             });
        cache.y = &y;
    }
    void backward_input(const cache_type& cache, const tensor<T, Rank>& dy,
                        tensor<T, Rank>& dx) const {
        detail::check_activation_gradient("relu::backward_input", cache.y, dy);
        if (dx.shape() != dy.shape()) dx.resize(dy.shape());
        detail::parallel_for(dy.size(), detail::elementwise_grain,
                             [&](std::size_t begin, std::size_t end, std::size_t) {
                                 detail::relu_backward(cache.y->data() + begin, dy.data() + begin,
                                                       dx.data() + begin, end - begin);
                             });
    }
};

/// Leaky ReLU, y = x for x > 0 and negative_slope * x otherwise.
template <class T, std::size_t Rank = 2>
class leaky_relu : public parameterless_layer<T> {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = Rank;
    static constexpr std::size_t output_rank = Rank;
    static constexpr bool mode_independent = true;
    static constexpr optional_member optional_members =
        optional_member::output_shape | optional_member::describe;
    struct cache_type {
        const tensor<T, Rank>* y = nullptr;  // the layer's output
    };

    /// requires: negative_slope finite and >= 0 (the backward pass reads the sign of x from
    /// the output, which a negative slope would flip).
    explicit leaky_relu(double negative_slope = 0.01) : slope_(static_cast<T>(negative_slope)) {
        if (!std::isfinite(negative_slope) || negative_slope < 0) {
            detail::invalid("leaky_relu", "negative_slope must be finite and >= 0, got ",
                            negative_slope);
        }
    }

    T negative_slope() const { return slope_; }
    /// The shape of one sample is unchanged.
    std::array<std::size_t, Rank - 1> output_shape(std::array<std::size_t, Rank - 1> in) const {
        return in;
    }
    template <class Shape>
    Shape output_shape(const Shape& in) const {
        return in;
    }
    /// "leaky_relu(0.01)".
    std::string describe() const {
        std::ostringstream out;
        out << "leaky_relu(" << slope_ << ")";
        return out.str();
    }

    void forward(const tensor<T, Rank>& x, cache_type& cache, tensor<T, Rank>& y) const {
        if (y.shape() != x.shape()) y.resize(x.shape());
        detail::leaky_relu_forward(x.data(), y.data(), x.size(), slope_);
        cache.y = &y;
    }
    void backward_input(const cache_type& cache, const tensor<T, Rank>& dy,
                        tensor<T, Rank>& dx) const {
        detail::check_activation_gradient("leaky_relu::backward_input", cache.y, dy);
        if (dx.shape() != dy.shape()) dx.resize(dy.shape());
        detail::leaky_relu_backward(cache.y->data(), dy.data(), dx.data(), dy.size(), slope_);
    }

private:
    T slope_;
};

/// y = tanh(x) (named tanh_layer so it does not hide std::tanh).
template <class T, std::size_t Rank = 2>
class tanh_layer : public parameterless_layer<T> {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = Rank;
    static constexpr std::size_t output_rank = Rank;
    static constexpr bool mode_independent = true;
    static constexpr optional_member optional_members =
        optional_member::output_shape | optional_member::describe;
    struct cache_type {
        const tensor<T, Rank>* y = nullptr;  // the layer's output
    };

    /// The shape of one sample is unchanged.
    std::array<std::size_t, Rank - 1> output_shape(std::array<std::size_t, Rank - 1> in) const {
        return in;
    }
    template <class Shape>
    Shape output_shape(const Shape& in) const {
        return in;
    }
    std::string describe() const { return "tanh"; }

    void forward(const tensor<T, Rank>& x, cache_type& cache, tensor<T, Rank>& y) const {
        if (y.shape() != x.shape()) y.resize(x.shape());
        detail::tanh_forward(x.data(), y.data(), x.size());
        cache.y = &y;
    }
    void backward_input(const cache_type& cache, const tensor<T, Rank>& dy,
                        tensor<T, Rank>& dx) const {
        detail::check_activation_gradient("tanh_layer::backward_input", cache.y, dy);
        if (dx.shape() != dy.shape()) dx.resize(dy.shape());
        detail::tanh_backward(cache.y->data(), dy.data(), dx.data(), dy.size());
    }
};

}  // namespace advaug
