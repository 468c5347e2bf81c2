// Flatten [N, C, H, W] to [N, C*H*W] in row-major order, as torch.nn.Flatten(), so a dense
// layer after it sees features in PyTorch's order and its weights transfer unchanged.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <iterator>
#include <string>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/layer.hpp"
#include "advaug/layers/parameterless.hpp"

namespace advaug {

template <class T>
class flatten : public parameterless_layer<T> {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 4;
    static constexpr std::size_t output_rank = 2;
    static constexpr bool mode_independent = true;
    static constexpr optional_member optional_members =
        optional_member::output_shape | optional_member::describe;

    struct cache_type {
        std::array<std::size_t, 4> input_shape{};  // [N, C, H, W] of forward's input
        bool filled = false;
    };

    /// The feature count C*H*W of one image [C, H, W].
    std::array<std::size_t, 1> output_shape(std::array<std::size_t, 3> in_chw) const {
        return {in_chw[0] * in_chw[1] * in_chw[2]};
    }
    /// The same for a sample shape in any sized range, such as a std::vector.
    template <class Shape>
    std::array<std::size_t, 1> output_shape(const Shape& in_chw) const {
        if (std::size(in_chw) != 3) {
            detail::invalid("flatten::output_shape", "input shape ", detail::shape_string(in_chw),
                            ", ", describe(), " expects [C, H, W]");
        }
        const auto it = std::begin(in_chw);
        return output_shape(std::array<std::size_t, 3>{it[0], it[1], it[2]});
    }
    std::string describe() const { return "flatten"; }

    /// y = x as [N, C*H*W] (a copy).
    void forward(const tensor<T, 4>& x, cache_type& cache, tensor<T, 2>& y) const {
        const auto& s = x.shape();
        const std::array<std::size_t, 2> out{s[0], s[1] * s[2] * s[3]};
        if (y.shape() != out) y.resize(out);
        std::copy(x.data(), x.data() + x.size(), y.data());
        cache.input_shape = s;
        cache.filled = true;
    }

    /// dx = dy as [N, C, H, W].
    void backward_input(const cache_type& cache, const tensor<T, 2>& dy, tensor<T, 4>& dx) const {
        if (!cache.filled) {
            detail::invalid("flatten::backward_input", "the cache was not filled by forward()");
        }
        const auto& s = cache.input_shape;
        const std::array<std::size_t, 2> out{s[0], s[1] * s[2] * s[3]};
        if (dy.shape() != out) {
            detail::invalid("flatten::backward_input", "the output gradient has shape ",
                            detail::shape_string(dy.shape()), ", the layer's output is ",
                            detail::shape_string(out));
        }
        if (dx.shape() != s) dx.resize(s);
        std::copy(dy.data(), dy.data() + dy.size(), dx.data());
    }
};

}  // namespace advaug
