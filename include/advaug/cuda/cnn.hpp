// The bundled CNN on a GPU, the network of advaug::cnn without batch norm:
//
//   conv 1->32 3x3 pad 1, ReLU, max-pool 2, conv 32->64 3x3 pad 1, ReLU, max-pool 2,
//   flatten, dense 3136->128, ReLU, dense 128->10
//
// satisfying the model contract with device tensors (input [N, 1, 28, 28], logits [N, 10]).
// Convolutions are im2col + one cuBLAS GEMM for the whole batch: im2col lays the samples side
// by side ([C*3*3, N*H*W]), so the forward product, the input gradient and the weight gradient
// are one GEMM each, and bias + ReLU + the layout change back to NCHW is one kernel.
// Parameters have advaug::cnn's names, shapes and order ("0.weight" [32, 1, 3, 3], "0.bias",
// "3.weight", "3.bias", "7.weight" [128, 3136], "7.bias", "9.weight", "9.bias").
#pragma once

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
#include "advaug/models/cnn.hpp"

namespace advaug::cuda {

template <class T>
class cnn {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 4;
    static constexpr bool mode_independent = true;
    using input_type = device_tensor<T, 4>;
    using logits_type = device_tensor<T, 2>;

    /// Activations of the forward pass and scratch of the backward passes, per batch size.
    struct cache_type {
        const input_type* x = nullptr;
        device_buffer<T> cols1, ych1, a1, p1, cols2, ych2, a2, p2, a3;
        device_buffer<std::int64_t> arg1, arg2;
        device_buffer<T> da3, dz3, dp2, da2, dych2, dcols2, dp1, da1, dych1, dcols1;
    };

    /// The host model's weights. requires: host.has_batch_norm() is false.
    /// throws: std::invalid_argument for the batch-norm variant, cuda_error without a device.
    explicit cnn(const advaug::cnn<T>& host) {
        const char* fn = "cuda::cnn";
        if (host.has_batch_norm()) {
            advaug::detail::invalid(fn,
                                    "the batch-norm variant of advaug::cnn has no device "
                                    "version; got a host model with batch norm");
        }
        params_ = detail::parameter_store<T>({{"0.weight", {32, 1, 3, 3}},
                                              {"0.bias", {32}},
                                              {"3.weight", {64, 32, 3, 3}},
                                              {"3.bias", {64}},
                                              {"7.weight", {128, 3136}},
                                              {"7.bias", {128}},
                                              {"9.weight", {10, 128}},
                                              {"9.bias", {10}}},
                                             fn);
        copy_from(host);
    }

    /// A new network with advaug::cnn's initial weights for this seed.
    explicit cnn(std::uint64_t seed = 0, weight_init init = weight_init::he_normal)
        : cnn(advaug::cnn<T>(seed, init, false)) {}

    void copy_from(const advaug::cnn<T>& host) {
        advaug::cnn<T> copy = host;  // parameters() is non-const
        params_.copy_from(copy.parameters(), "cuda::cnn::copy_from");
    }

    /// Downloads the weights into a host CNN without batch norm (waits for the device).
    void copy_to(advaug::cnn<T>& host) const {
        params_.copy_to(host.parameters(), "cuda::cnn::copy_to");
    }

    std::size_t num_classes() const { return 10; }

    /// requires: x is [N, 1, 28, 28] with N > 0. ensures: logits is [N, 10].
    void forward(const input_type& x, cache_type& c, logits_type& logits) const {
        const char* fn = "cuda::cnn::forward";
        const auto& s = x.shape();
        if (s[0] == 0 || s[1] != 1 || s[2] != 28 || s[3] != 28) {
            advaug::detail::invalid(fn, "inputs have shape ", advaug::detail::shape_string(s),
                                    ", expected [N, 1, 28, 28] with N > 0");
        }
        const context& ctx = context::get(fn);
        const std::size_t n = s[0];
        c.x = &x;
        logits.resize({n, 10});
        const detail::conv_shape g1{n, 1, 28, 28, 3, 3, 1}, g2{n, 32, 14, 14, 3, 3, 1};
        const std::size_t np1 = n * 784, np2 = n * 196;

        detail::im2col(ctx, x.data(), detail::reserve(c.cols1, 9 * np1, fn), g1);
        detail::gemm<T>(ctx, false, false, 32, np1, 9, T(1), params_.value(0), 9, c.cols1.data(),
                        np1, T(0), detail::reserve(c.ych1, 32 * np1, fn), np1);
        detail::conv_out(ctx, c.ych1.data(), params_.value(1), detail::reserve(c.a1, 32 * np1, fn),
                         n, 32, 784);
        detail::max_pool(ctx, c.a1.data(), detail::reserve(c.p1, 32 * np2, fn),
                         detail::reserve(c.arg1, 32 * np2, fn), n * 32, 28, 28, 2);

        detail::im2col(ctx, c.p1.data(), detail::reserve(c.cols2, 288 * np2, fn), g2);
        detail::gemm<T>(ctx, false, false, 64, np2, 288, T(1), params_.value(2), 288,
                        c.cols2.data(), np2, T(0), detail::reserve(c.ych2, 64 * np2, fn), np2);
        detail::conv_out(ctx, c.ych2.data(), params_.value(3), detail::reserve(c.a2, 64 * np2, fn),
                         n, 64, 196);
        detail::max_pool(ctx, c.a2.data(), detail::reserve(c.p2, n * 3136, fn),
                         detail::reserve(c.arg2, n * 3136, fn), n * 64, 14, 14, 2);

        detail::gemm<T>(ctx, false, true, n, 128, 3136, T(1), c.p2.data(), 3136, params_.value(4),
                        3136, T(0), detail::reserve(c.a3, n * 128, fn), 128);
        detail::bias_act(ctx, c.a3.data(), params_.value(5), n, 128, true);
        detail::gemm<T>(ctx, false, true, n, 10, 128, T(1), c.a3.data(), 128, params_.value(6), 128,
                        T(0), logits.data(), 10);
        detail::bias_act(ctx, logits.data(), params_.value(7), n, 10, false);
    }

    /// dx = dL/dx for dlogits = dL/dlogits. Parameter gradients are unchanged.
    void input_gradient(cache_type& c, const logits_type& dlogits, input_type& dx) const {
        const std::size_t n = checked_rows("cuda::cnn::input_gradient", c, dlogits);
        dx.resize({n, 1, 28, 28});
        backward("cuda::cnn::input_gradient", c, dlogits, dx.data(), nullptr);
    }

    /// Adds dL/dparameter to every parameter's gradient.
    void parameter_gradient(cache_type& c, const logits_type& dlogits) {
        checked_rows("cuda::cnn::parameter_gradient", c, dlogits);
        backward("cuda::cnn::parameter_gradient", c, dlogits, nullptr, &params_);
    }

    void zero_grad() { params_.zero_grad("cuda::cnn::zero_grad"); }

    /// Views of device memory (see cuda/parameters.hpp).
    std::vector<parameter_view<T>> parameters() { return params_.views(); }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

private:
    std::size_t checked_rows(const char* fn, const cache_type& c,
                             const logits_type& dlogits) const {
        if (!c.x) advaug::detail::invalid(fn, "the cache was not filled by forward()");
        const std::size_t n = c.x->shape()[0];
        if (dlogits.shape()[0] != n || dlogits.shape()[1] != 10) {
            advaug::detail::invalid(fn, "dlogits has shape ",
                                    advaug::detail::shape_string(dlogits.shape()), ", expected [",
                                    n, ", 10]");
        }
        return n;
    }

    void backward(const char* fn, cache_type& c, const logits_type& dlogits, T* dx,
                  detail::parameter_store<T>* grads) const {
        const context& ctx = context::get(fn);
        const std::size_t n = c.x->shape()[0], np1 = n * 784, np2 = n * 196;
        const detail::conv_shape g1{n, 1, 28, 28, 3, 3, 1}, g2{n, 32, 14, 14, 3, 3, 1};
        const T* d = dlogits.data();

        // dense 128 -> 10
        if (grads) {
            detail::gemm<T>(ctx, true, false, 10, 128, n, T(1), d, 10, c.a3.data(), 128, T(1),
                            grads->grad(6), 128);
            detail::add_column_sums(ctx, d, n, 10, grads->grad(7));
        }
        T* da3 = detail::reserve(c.da3, n * 128, fn);
        T* dz3 = detail::reserve(c.dz3, n * 128, fn);
        detail::gemm<T>(ctx, false, false, n, 128, 10, T(1), d, 10, params_.value(6), 128, T(0),
                        da3, 128);
        detail::relu_back(ctx, da3, c.a3.data(), dz3, n * 128);

        // dense 3136 -> 128 (its input is the flattened second pooling output)
        if (grads) {
            detail::gemm<T>(ctx, true, false, 128, 3136, n, T(1), dz3, 128, c.p2.data(), 3136, T(1),
                            grads->grad(4), 3136);
            detail::add_column_sums(ctx, dz3, n, 128, grads->grad(5));
        }
        T* dp2 = detail::reserve(c.dp2, n * 3136, fn);
        detail::gemm<T>(ctx, false, false, n, 3136, 128, T(1), dz3, 128, params_.value(4), 3136,
                        T(0), dp2, 3136);

        // pool, ReLU, conv 32 -> 64
        T* da2 = detail::reserve(c.da2, 64 * np2, fn);
        detail::max_pool_back(ctx, dp2, c.arg2.data(), da2, n * 64, 14, 14, 2);
        T* dych2 = detail::reserve(c.dych2, 64 * np2, fn);
        detail::conv_back(ctx, da2, c.a2.data(), dych2, n, 64, 196);
        if (grads) {
            detail::gemm<T>(ctx, false, true, 64, 288, np2, T(1), dych2, np2, c.cols2.data(), np2,
                            T(1), grads->grad(2), 288);
            detail::add_row_sums(ctx, dych2, 64, np2, grads->grad(3));
        }
        T* dcols2 = detail::reserve(c.dcols2, 288 * np2, fn);
        detail::gemm<T>(ctx, true, false, 288, np2, 64, T(1), params_.value(2), 288, dych2, np2,
                        T(0), dcols2, np2);
        T* dp1 = detail::reserve(c.dp1, 32 * np2, fn);
        detail::col2im(ctx, dcols2, dp1, g2);

        // pool, ReLU, conv 1 -> 32
        T* da1 = detail::reserve(c.da1, 32 * np1, fn);
        detail::max_pool_back(ctx, dp1, c.arg1.data(), da1, n * 32, 28, 28, 2);
        T* dych1 = detail::reserve(c.dych1, 32 * np1, fn);
        detail::conv_back(ctx, da1, c.a1.data(), dych1, n, 32, 784);
        if (grads) {
            detail::gemm<T>(ctx, false, true, 32, 9, np1, T(1), dych1, np1, c.cols1.data(), np1,
                            T(1), grads->grad(0), 9);
            detail::add_row_sums(ctx, dych1, 32, np1, grads->grad(1));
        }
        if (dx) {
            T* dcols1 = detail::reserve(c.dcols1, 9 * np1, fn);
            detail::gemm<T>(ctx, true, false, 9, np1, 32, T(1), params_.value(0), 9, dych1, np1,
                            T(0), dcols1, np1);
            detail::col2im(ctx, dcols1, dx, g1);
        }
    }

    detail::parameter_store<T> params_;
    advaug::mode mode_ = advaug::mode::train;
};

/// The customization points for copying parameter values (backend/host.hpp): this
/// model's parameter views point to device memory.
template <class T>
void read_parameter(const cnn<T>&, const parameter_view<T>& p, std::span<T> out) {
    detail::read_device_parameter(p, out);
}
template <class T>
void write_parameter(cnn<T>&, const parameter_view<T>& p, std::span<const T> in) {
    detail::write_device_parameter(p, in);
}

}  // namespace advaug::cuda
