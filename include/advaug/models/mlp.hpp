// The bundled multi-layer perceptron: dense layers with ReLU between them, logits out.
//
//   mlp<float> net({784, 256, 256, 10}, seed);   // 784 inputs, two hidden layers, 10 classes
//
// A sequential<T, 2> (models/sequential.hpp) of dense, relu, dense, ..., dense, so it is the
// same network as torch.nn.Sequential(Linear, ReLU, Linear, ...) with the same parameter names
// ("0.weight", "0.bias", "2.weight", ...). Weights are drawn from the seed (He normal by default,
// or PyTorch's nn.Linear default), so the same widths, seed and initialization give the same
// network everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/layers/activations.hpp"
#include "advaug/layers/dense.hpp"
#include "advaug/models/sequential.hpp"

namespace advaug {

template <class T>
class mlp : public sequential<T, 2> {
public:
    /// No batch norm or dropout: forward() is the same in train and eval mode.
    static constexpr bool mode_independent = true;

    /// requires: at least two widths (inputs and classes), each >= 1.
    explicit mlp(std::vector<std::size_t> widths, std::uint64_t seed = 0,
                 weight_init init = weight_init::he_normal)
        : sequential<T, 2>({checked(widths).front()}), widths_(std::move(widths)) {
        rng gen(seed);
        for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
            if (l > 0) this->add(relu<T, 2>{});
            this->add(dense<T>(widths_[l], widths_[l + 1], gen, init));
        }
    }

    const std::vector<std::size_t>& widths() const { return widths_; }

    /// The i-th dense layer (layer 2i of the sequential).
    dense<T>& dense_layer(std::size_t i) { return this->template layer<dense<T>>(2 * i); }

private:
    static const std::vector<std::size_t>& checked(const std::vector<std::size_t>& widths) {
        if (widths.size() < 2) {
            detail::invalid("mlp", "widths needs at least 2 entries (inputs, classes), got ", widths.size());
        }
        for (std::size_t i = 0; i < widths.size(); ++i) {
            if (widths[i] == 0) detail::invalid("mlp", "widths[", i, "] must be >= 1, got 0");
        }
        return widths;
    }

    std::vector<std::size_t> widths_;
};

}  // namespace advaug
