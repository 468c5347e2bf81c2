// ReLU, y = max(x, 0), elementwise on any rank. The derivative at 0 is taken as 0.
#pragma once

#include <cstddef>
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

/// y = max(x, 0); in place when x and y are the same buffer.
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
}  // namespace detail

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
        if (dy.shape() != cache.y->shape()) {
            detail::invalid("relu::backward_input", "the output gradient has shape ",
                            detail::shape_string(dy.shape()), ", the layer's output is ",
                            detail::shape_string(cache.y->shape()));
        }
        if (dx.shape() != dy.shape()) dx.resize(dy.shape());
        detail::parallel_for(dy.size(), detail::elementwise_grain,
                             [&](std::size_t begin, std::size_t end, std::size_t) {
                                 detail::relu_backward(cache.y->data() + begin, dy.data() + begin,
                                                       dx.data() + begin, end - begin);
                             });
    }
    std::string describe() const { return "relu"; }
};

}  // namespace advaug
