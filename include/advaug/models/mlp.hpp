// The bundled multi-layer perceptron: dense layers with ReLU between them, logits out.
//
//   mlp<float> net({784, 256, 256, 10}, seed);   // 784 inputs, two hidden layers, 10 classes
//
// Satisfies trainable_classifier (model/classifier.hpp) with input_rank 2. Weights are drawn
// from the seed (He normal by default, or PyTorch's nn.Linear default), so the same widths,
// seed and initialization give the same network everywhere.
// An attack step calls forward() and input_gradient() only: no weight gradient is formed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/dense.hpp"
#include "advaug/layers/relu.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug {

template <class T>
class mlp {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 2;
    /// No batch norm or dropout: forward() is the same in train and eval mode.
    static constexpr bool mode_independent = true;

    /// Activations kept by forward() for the backward passes, and the backward buffers.
    struct cache_type {
        std::vector<typename dense<T>::cache_type> layers;
        std::vector<tensor<T, 2>> hidden;  // post-ReLU output of each hidden layer
        std::array<tensor<T, 2>, 2> delta; // ping-pong buffers for dL/d(hidden)
    };

    /// requires: at least two widths (inputs and classes), each >= 1.
    explicit mlp(std::vector<std::size_t> widths, std::uint64_t seed = 0,
                 weight_init init = weight_init::he_normal)
        : widths_(widths) {
        if (widths_.size() < 2) {
            detail::invalid("mlp", "widths needs at least 2 entries (inputs, classes), got ",
                            widths_.size());
        }
        for (std::size_t i = 0; i < widths_.size(); ++i) {
            if (widths_[i] == 0) detail::invalid("mlp", "widths[", i, "] must be >= 1, got 0");
        }
        detail::rng gen(seed);
        for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
            layers_.emplace_back(widths_[l], widths_[l + 1], gen, init);
        }
    }

    const std::vector<std::size_t>& widths() const { return widths_; }
    std::size_t num_classes() const { return widths_.back(); }
    std::vector<dense<T>>& layers() { return layers_; }
    const std::vector<dense<T>>& layers() const { return layers_; }

    /// requires: x is [N, widths()[0]], N >= 1. ensures: logits is [N, num_classes()].
    void forward(const tensor<T, 2>& x, cache_type& cache, tensor<T, 2>& logits) const {
        if (x.shape()[1] != widths_.front() || x.shape()[0] == 0) {
            detail::invalid("mlp::forward", "inputs have shape ", detail::shape_string(x.shape()),
                            ", the model expects [N >= 1, ", widths_.front(), "]");
        }
        const std::size_t count = layers_.size();
        cache.layers.resize(count);
        cache.hidden.resize(count - 1);
        const tensor<T, 2>* in = &x;
        for (std::size_t l = 0; l < count; ++l) {
            tensor<T, 2>& out = l + 1 < count ? cache.hidden[l] : logits;
            layers_[l].forward(*in, cache.layers[l], out);
            if (l + 1 < count) detail::relu_forward(out.data(), out.data(), out.size());
            in = &out;
        }
    }

    /// dx = dL/dx for dL/dlogits; no parameter gradient is touched.
    void input_gradient(cache_type& cache, const tensor<T, 2>& dlogits, tensor<T, 2>& dx) const {
        backward(cache, dlogits, &dx, nullptr);
    }

    /// Adds dL/dparameter to every parameter's gradient.
    void parameter_gradient(cache_type& cache, const tensor<T, 2>& dlogits) {
        backward(cache, dlogits, nullptr, this);
    }

    void zero_grad() {
        for (auto& layer : layers_) layer.zero_grad();
    }

    /// "0.weight", "0.bias", "1.weight", ...: the numbering of the dense layers.
    std::vector<parameter_view<T>> parameters() {
        std::vector<parameter_view<T>> out;
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            layers_[l].append_parameters(out, std::to_string(l) + ".");
        }
        return out;
    }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

private:
    /// One backward pass; `dx` and `trainee` switch the input and the parameter gradients on.
    void backward(cache_type& cache, const tensor<T, 2>& dlogits, tensor<T, 2>* dx,
                  mlp* trainee) const {
        const std::size_t count = layers_.size();
        if (cache.layers.size() != count || cache.layers.front().x == nullptr) {
            detail::invalid("mlp::backward", "the cache was not filled by forward() of this model");
        }
        const tensor<T, 2>* grad = &dlogits;
        for (std::size_t l = count; l-- > 0;) {
            if (trainee) trainee->layers_[l].accumulate_gradient(cache.layers[l], *grad);
            if (l == 0) {
                if (dx) layers_[0].backward_input(cache.layers[0], *grad, *dx);
                break;
            }
            tensor<T, 2>& next = cache.delta[l % 2];
            layers_[l].backward_input(cache.layers[l], *grad, next);
            const tensor<T, 2>& h = cache.hidden[l - 1];
            detail::relu_backward(h.data(), next.data(), next.data(), next.size());
            grad = &next;
        }
    }

    std::vector<std::size_t> widths_;
    std::vector<dense<T>> layers_;
    advaug::mode mode_ = advaug::mode::train;
};

}  // namespace advaug
