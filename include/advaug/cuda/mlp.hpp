// The bundled MLP on a GPU: dense layers with ReLU between them, as advaug::mlp, satisfying
// the model contract with device tensors (input_type = logits_type = device_tensor<T, 2>).
//
//   advaug::mlp<float> host({784, 256, 256, 10}, seed);
//   advaug::cuda::mlp<float> gpu(host);            // the same weights, on the device
//   gpu.copy_to(host);                             // and back, e.g. after training
//
// Parameters have advaug::mlp's names, shapes and order ("0.weight" [256, 784], "0.bias", ...).
// Matrix products go through cuBLAS; bias and ReLU are one fused kernel per layer.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "advaug/cuda/kernels.hpp"
#include "advaug/cuda/parameters.hpp"
#include "advaug/cuda/tensor.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/models/mlp.hpp"

namespace advaug::cuda {

template <class T>
class mlp {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 2;
    static constexpr bool mode_independent = true;
    using input_type = device_tensor<T, 2>;
    using logits_type = device_tensor<T, 2>;

    /// What the backward passes read (the input and the hidden activations after ReLU) and
    /// their scratch. The input must stay alive and unchanged until the last backward call.
    struct cache_type {
        const input_type* x = nullptr;
        std::vector<device_buffer<T>> act;
        device_buffer<T> da, dz;
    };

    /// The host model's architecture and weights. throws: cuda_error without a device.
    explicit mlp(const advaug::mlp<T>& host) : widths_(host.widths()) {
        const char* fn = "cuda::mlp";
        std::vector<std::pair<std::string, std::vector<std::size_t>>> layout;
        for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
            const std::string prefix = std::to_string(2 * l) + ".";
            layout.push_back({prefix + "weight", {widths_[l + 1], widths_[l]}});
            layout.push_back({prefix + "bias", {widths_[l + 1]}});
        }
        params_ = detail::parameter_store<T>(std::move(layout), fn);
        copy_from(host);
    }

    /// A new network with advaug::mlp's initial weights for these widths and seed.
    explicit mlp(std::vector<std::size_t> widths, std::uint64_t seed = 0,
                 weight_init init = weight_init::he_normal)
        : mlp(advaug::mlp<T>(std::move(widths), seed, init)) {}

    /// Uploads the weights of a host MLP of the same widths.
    void copy_from(const advaug::mlp<T>& host) {
        advaug::mlp<T> copy = host;  // parameters() is non-const
        params_.copy_from(copy.parameters(), "cuda::mlp::copy_from");
    }

    /// Downloads the weights into a host MLP of the same widths (waits for the device).
    void copy_to(advaug::mlp<T>& host) const {
        params_.copy_to(host.parameters(), "cuda::mlp::copy_to");
    }

    const std::vector<std::size_t>& widths() const { return widths_; }
    std::size_t num_classes() const { return widths_.back(); }

    /// requires: x is [N, widths().front()] with N > 0. ensures: logits is [N, num_classes()].
    void forward(const input_type& x, cache_type& cache, logits_type& logits) const {
        const char* fn = "cuda::mlp::forward";
        const std::size_t n = x.shape()[0], layers = widths_.size() - 1;
        if (n == 0 || x.shape()[1] != widths_[0]) {
            advaug::detail::invalid(fn, "inputs have shape ",
                                    advaug::detail::shape_string(x.shape()), ", expected [N, ",
                                    widths_[0], "] with N > 0");
        }
        const context& ctx = context::get(fn);
        cache.x = &x;
        cache.act.resize(layers - 1);
        logits.resize({n, num_classes()});
        const T* in = x.data();
        for (std::size_t l = 0; l < layers; ++l) {
            const std::size_t fan_in = widths_[l], fan_out = widths_[l + 1];
            const bool last = l + 1 == layers;
            T* out = last ? logits.data() : detail::reserve(cache.act[l], n * fan_out, fn);
            detail::gemm<T>(ctx, false, true, n, fan_out, fan_in, T(1), in, fan_in,
                            params_.value(2 * l), fan_in, T(0), out, fan_out);
            detail::bias_act(ctx, out, params_.value(2 * l + 1), n, fan_out, !last);
            in = out;
        }
    }

    /// dx = dL/dx for dlogits = dL/dlogits. Parameter gradients are unchanged.
    void input_gradient(cache_type& cache, const logits_type& dlogits, input_type& dx) const {
        dx.resize({checked_rows("cuda::mlp::input_gradient", cache, dlogits), widths_[0]});
        backward("cuda::mlp::input_gradient", cache, dlogits, dx.data(), nullptr);
    }

    /// Adds dL/dparameter to every parameter's gradient.
    void parameter_gradient(cache_type& cache, const logits_type& dlogits) {
        checked_rows("cuda::mlp::parameter_gradient", cache, dlogits);
        backward("cuda::mlp::parameter_gradient", cache, dlogits, nullptr, &params_);
    }

    void zero_grad() { params_.zero_grad("cuda::mlp::zero_grad"); }

    /// Views of device memory (see cuda/parameters.hpp).
    std::vector<parameter_view<T>> parameters() { return params_.views(); }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

private:
    std::size_t checked_rows(const char* fn, const cache_type& cache,
                             const logits_type& dlogits) const {
        if (!cache.x) advaug::detail::invalid(fn, "the cache was not filled by forward()");
        const std::size_t n = cache.x->shape()[0];
        if (dlogits.shape()[0] != n || dlogits.shape()[1] != num_classes()) {
            advaug::detail::invalid(fn, "dlogits has shape ",
                                    advaug::detail::shape_string(dlogits.shape()), ", expected [",
                                    n, ", ", num_classes(), "]");
        }
        return n;
    }

    /// Back through the layers; writes dx when given, accumulates into `grads` when given.
    void backward(const char* fn, cache_type& cache, const logits_type& dlogits, T* dx,
                  detail::parameter_store<T>* grads) const {
        const context& ctx = context::get(fn);
        const std::size_t n = cache.x->shape()[0], layers = widths_.size() - 1;
        // The scratch for every layer at once, before the loop: d points into dz from the
        // second layer on, so growing dz inside the loop would free what the next GEMM reads.
        std::size_t widest = 0;
        for (std::size_t l = 1; l < layers; ++l) widest = std::max(widest, widths_[l]);
        T* const da = detail::reserve(cache.da, n * widest, fn);
        T* const dz = detail::reserve(cache.dz, n * widest, fn);
        const T* d = dlogits.data();
        for (std::size_t l = layers; l-- > 0;) {
            const std::size_t fan_in = widths_[l], fan_out = widths_[l + 1];
            const T* in = l == 0 ? cache.x->data() : cache.act[l - 1].data();
            if (grads) {
                // dW += d^T in, db += column sums of d.
                detail::gemm<T>(ctx, true, false, fan_out, fan_in, n, T(1), d, fan_out, in, fan_in,
                                T(1), grads->grad(2 * l), fan_in);
                detail::add_column_sums(ctx, d, n, fan_out, grads->grad(2 * l + 1));
            }
            if (l == 0) {
                if (dx) {
                    detail::gemm<T>(ctx, false, false, n, fan_in, fan_out, T(1), d, fan_out,
                                    params_.value(0), fan_in, T(0), dx, fan_in);
                }
                break;
            }
            // d <- relu'(act) * (d W): the gradient at the previous layer's output.
            detail::gemm<T>(ctx, false, false, n, fan_in, fan_out, T(1), d, fan_out,
                            params_.value(2 * l), fan_in, T(0), da, fan_in);
            detail::relu_back(ctx, da, cache.act[l - 1].data(), dz, n * fan_in);
            d = dz;
        }
    }

    std::vector<std::size_t> widths_;
    detail::parameter_store<T> params_;
    advaug::mode mode_ = advaug::mode::train;
};

/// The customization points for copying parameter values (backend/host.hpp): this
/// model's parameter views point to device memory.
template <class T>
void read_parameter(const mlp<T>&, const parameter_view<T>& p, std::span<T> out) {
    detail::read_device_parameter(p, out);
}
template <class T>
void write_parameter(mlp<T>&, const parameter_view<T>& p, std::span<const T> in) {
    detail::write_device_parameter(p, in);
}

}  // namespace advaug::cuda
