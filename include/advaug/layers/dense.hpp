// Dense (fully connected) layer: y = x W^T + b.
//
// Layout follows PyTorch's nn.Linear: weight is [out, in], bias is [out], so weights move
// between advaug and PyTorch without transposition.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/backend/gemm.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/layer.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug {

/// How dense layers draw their initial weights.
enum class weight_init {
    he_normal,        ///< weights N(0, 2 / in), biases 0 (He et al. 2015)
    pytorch_default,  ///< weights and biases U(-1/sqrt(in), 1/sqrt(in)), as torch.nn.Linear
};

template <class T>
class dense {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 2;
    static constexpr std::size_t output_rank = 2;
    static constexpr bool mode_independent = true;
    static constexpr optional_member optional_members =
        optional_member::output_shape | optional_member::describe |
        optional_member::append_parameters;

    /// What backward needs: the layer's input (not copied; it must outlive the backward call).
    struct cache_type {
        const tensor<T, 2>* x = nullptr;
    };

    /// Weights drawn from `gen` as `init` says. requires: in, out >= 1.
    dense(std::size_t in, std::size_t out, rng& gen, weight_init init = weight_init::he_normal)
        : weight_(tensor<T, 2>::from_shape({out, in})),
          bias_(tensor<T, 1>::from_shape({out})),
          weight_grad_(tensor<T, 2>::from_shape({out, in})),
          bias_grad_(tensor<T, 1>::from_shape({out})) {
        if (in == 0 || out == 0) {
            detail::invalid("dense", "in and out must be >= 1, got in = ", in, ", out = ", out);
        }
        const double fan_in = static_cast<double>(in);
        if (init == weight_init::he_normal) {
            const double sd = std::sqrt(2.0 / fan_in);
            for (auto& w : weight_) w = static_cast<T>(sd * gen.normal());
            bias_.fill(T(0));
        } else {
            const double bound = 1.0 / std::sqrt(fan_in);
            for (auto& w : weight_) w = static_cast<T>(gen.uniform(-bound, bound));
            for (auto& b : bias_) b = static_cast<T>(gen.uniform(-bound, bound));
        }
        zero_grad();
    }

    /// [in] -> [out]. throws std::invalid_argument when the sample shape is not [in].
    std::vector<std::size_t> output_shape(const std::vector<std::size_t>& in) const {
        if (in.size() != 1 || in[0] != in_features()) {
            detail::invalid("dense::output_shape", describe(), " expects samples of shape [", in_features(),
                            "], got ", detail::shape_string(in));
        }
        return {out_features()};
    }
    std::string describe() const {
        return "dense(" + std::to_string(in_features()) + "->" + std::to_string(out_features()) + ")";
    }

    std::size_t in_features() const { return weight_.shape()[1]; }
    std::size_t out_features() const { return weight_.shape()[0]; }

    /// y = x W^T + b. requires: x is [N, in].
    void forward(const tensor<T, 2>& x, cache_type& cache, tensor<T, 2>& y) const {
        check_input("dense::forward", x);
        const std::size_t n = x.shape()[0], in = in_features(), out = out_features();
        if (y.shape()[0] != n || y.shape()[1] != out) y.resize({n, out});
        for (std::size_t i = 0; i < n; ++i) std::copy_n(bias_.data(), out, y.data() + i * out);
        backend::gemm<T>(false, true, n, out, in, T(1), x.data(), in, weight_.data(), in, T(1),
                        y.data(), out);
        cache.x = &x;
    }

    /// dx = dy W.
    void backward_input(const cache_type& cache, const tensor<T, 2>& dy, tensor<T, 2>& dx) const {
        const std::size_t n = cache.x->shape()[0], in = in_features(), out = out_features();
        check_output_gradient("dense::backward_input", dy, n);
        if (dx.shape()[0] != n || dx.shape()[1] != in) dx.resize({n, in});
        backend::gemm<T>(false, false, n, in, out, T(1), dy.data(), out, weight_.data(), in, T(0),
                        dx.data(), in);
    }

    /// dW += scale dy^T x, db += scale * column sums of dy.
    void accumulate_gradient(const cache_type& cache, const tensor<T, 2>& dy, T scale = T(1)) {
        const std::size_t n = cache.x->shape()[0], in = in_features(), out = out_features();
        check_output_gradient("dense::accumulate_gradient", dy, n);
        backend::gemm<T>(true, false, out, in, n, scale, dy.data(), out, cache.x->data(), in, T(1),
                        weight_grad_.data(), in);
        T* db = bias_grad_.data();
        for (std::size_t i = 0; i < n; ++i) {
            const T* row = dy.data() + i * out;
            if (scale == T(1)) {
                for (std::size_t j = 0; j < out; ++j) db[j] += row[j];
            } else {
                for (std::size_t j = 0; j < out; ++j) db[j] += scale * row[j];
            }
        }
    }

    void zero_grad() {
        weight_grad_.fill(T(0));
        bias_grad_.fill(T(0));
    }

    /// "<prefix>weight" [out, in] and "<prefix>bias" [out].
    void append_parameters(std::vector<parameter_view<T>>& out, const std::string& prefix) {
        out.push_back({prefix + "weight", {out_features(), in_features()},
                       {weight_.data(), weight_.size()}, {weight_grad_.data(), weight_grad_.size()}});
        out.push_back({prefix + "bias", {out_features()}, {bias_.data(), bias_.size()},
                       {bias_grad_.data(), bias_grad_.size()}});
    }

    std::vector<parameter_view<T>> parameters() {
        std::vector<parameter_view<T>> out;
        append_parameters(out, "");
        return out;
    }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

    tensor<T, 2>& weight() { return weight_; }
    const tensor<T, 2>& weight() const { return weight_; }
    tensor<T, 1>& bias() { return bias_; }
    const tensor<T, 1>& bias() const { return bias_; }

private:
    void check_input(const char* fn, const tensor<T, 2>& x) const {
        if (x.shape()[1] != in_features()) {
            detail::invalid(fn, "inputs have shape ", detail::shape_string(x.shape()),
                            ", the layer expects [N, ", in_features(), "]");
        }
    }
    void check_output_gradient(const char* fn, const tensor<T, 2>& dy, std::size_t n) const {
        if (dy.shape()[0] != n || dy.shape()[1] != out_features()) {
            detail::invalid(fn, "the output gradient has shape ", detail::shape_string(dy.shape()),
                            ", the layer's output is [", n, ", ", out_features(), "]");
        }
    }

    tensor<T, 2> weight_;
    tensor<T, 1> bias_;
    tensor<T, 2> weight_grad_;
    tensor<T, 1> bias_grad_;
    advaug::mode mode_ = advaug::mode::train;
};

}  // namespace advaug
