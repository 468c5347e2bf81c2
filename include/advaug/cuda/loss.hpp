// Softmax cross-entropy on device logits: the same functions as loss/cross_entropy.hpp, found
// by argument-dependent lookup on cuda::device_tensor, with the same formula:
//   loss_i = logsumexp(z_i) - z_i[y_i], computed in double with the row maximum subtracted;
//   dloss/dz_i = (scale / N) * (softmax(z_i) - onehot(y_i)).
// The functions that return the mean loss wait for the device (they return a host number);
// the gradient-only and per-sample forms used inside attacks do not.
#pragma once

#include <cstddef>
#include <cstdint>

#include "advaug/cuda/kernels.hpp"
#include "advaug/cuda/tensor.hpp"
#include "advaug/detail/error.hpp"

namespace advaug::cuda {

namespace detail {

/// What the loss kernel reports back: the summed loss and the first label out of range.
struct loss_status {
    double total;
    long long bad_row;  // -1 when every label is in range
    long long bad_label;
};

/// One thread per row (rows are short: one logit per class). With `status`, the kernel runs
/// as one block and reduces the loss in a fixed order (no atomics).
template <class T>
__global__ void cross_entropy_kernel(const T* logits, const std::int64_t* labels, std::size_t n,
                                     std::size_t c, T* dlogits, T* per_sample, T scale,
                                     loss_status* status) {
    __shared__ double part[block_size];
    __shared__ long long bad[block_size];
    double total = 0;
    long long first_bad = -1;
    const T inv_n = T(1) / static_cast<T>(n);
    ADVAUG_GRID_STRIDE(i, n) {
        const T* z = logits + i * c;
        const std::int64_t y = labels[i];
        if (y < 0 || static_cast<std::uint64_t>(y) >= c) {
            if (first_bad < 0) first_bad = static_cast<long long>(i);
            continue;
        }
        T zmax = z[0];
        for (std::size_t j = 1; j < c; ++j) zmax = z[j] > zmax ? z[j] : zmax;
        double sum = 0;
        for (std::size_t j = 0; j < c; ++j) sum += exp(static_cast<double>(z[j] - zmax));
        const double log_sum = log(sum);
        const double loss_i = log_sum - static_cast<double>(z[y] - zmax);
        total += loss_i;
        if (per_sample) per_sample[i] = static_cast<T>(loss_i);
        if (dlogits) {
            T* g = dlogits + i * c;
            const T factor = scale * inv_n;
            for (std::size_t j = 0; j < c; ++j) {
                const T p = static_cast<T>(exp(static_cast<double>(z[j] - zmax) - log_sum));
                g[j] = factor * (p - (j == static_cast<std::size_t>(y) ? T(1) : T(0)));
            }
        }
    }
    if (!status) return;
    part[threadIdx.x] = total;
    bad[threadIdx.x] = first_bad;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) {
            part[threadIdx.x] += part[threadIdx.x + s];
            const long long o = bad[threadIdx.x + s];
            if (o >= 0 && (bad[threadIdx.x] < 0 || o < bad[threadIdx.x])) bad[threadIdx.x] = o;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        status->total = part[0];
        status->bad_row = bad[0];
        status->bad_label = bad[0] >= 0 ? static_cast<long long>(labels[bad[0]]) : 0;
    }
}

template <class T>
void check_loss_shapes(const char* fn, const device_tensor<T, 2>& logits, const device_labels& y) {
    if (logits.shape()[0] == 0) {
        advaug::detail::invalid(fn, "logits is an empty batch (shape ",
                                advaug::detail::shape_string(logits.shape()), ")");
    }
    if (logits.shape()[1] == 0) {
        advaug::detail::invalid(fn, "logits has no classes (shape ",
                                advaug::detail::shape_string(logits.shape()), ")");
    }
    if (y.size() != logits.shape()[0]) {
        advaug::detail::invalid(fn, "labels has ", y.size(), " entries, the batch has ",
                                logits.shape()[0], " rows");
    }
}

/// Queues the loss kernel without waiting. Labels must have been checked.
template <class T>
void cross_entropy_async(const char* fn, const device_tensor<T, 2>& logits, const device_labels& y,
                         T* dlogits, T* per_sample, T scale) {
    const context& ctx = context::get(fn);
    const std::size_t n = logits.shape()[0], c = logits.shape()[1];
    cross_entropy_kernel<T><<<grid_for(n), block_size, 0, ctx.stream()>>>(
        logits.data(), y.data(), n, c, dlogits, per_sample, scale, nullptr);
    ADVAUG_CUDA_CHECK_LAUNCH(fn, "cross_entropy_kernel");
}

/// Runs the loss kernel as one reducing block, waits, checks the labels; returns the mean loss.
template <class T>
T cross_entropy_sync(const char* fn, const device_tensor<T, 2>& logits, const device_labels& y,
                     T* dlogits, T scale) {
    check_loss_shapes(fn, logits, y);
    const context& ctx = context::get(fn);
    const std::size_t n = logits.shape()[0], c = logits.shape()[1];
    device_buffer<loss_status> status(1, fn);
    cross_entropy_kernel<T><<<1, block_size, 0, ctx.stream()>>>(
        logits.data(), y.data(), n, c, dlogits, nullptr, scale, status.data());
    ADVAUG_CUDA_CHECK_LAUNCH(fn, "cross_entropy_kernel");
    loss_status host{};
    download(fn, status.data(), &host, 1);
    if (host.bad_row >= 0) {
        advaug::detail::invalid(fn, "labels[", host.bad_row, "] = ", host.bad_label,
                                " is outside [0, ", c, ")");
    }
    return static_cast<T>(host.total / static_cast<double>(n));
}

}  // namespace detail

/// Mean cross-entropy. Waits for the device. requires: labels in [0, classes).
template <class T>
T cross_entropy(const device_tensor<T, 2>& logits, const device_labels& labels) {
    return detail::cross_entropy_sync<T>("cuda::cross_entropy", logits, labels, nullptr, T(1));
}

/// Mean cross-entropy; writes scale * dloss/dlogits into dlogits. Waits for the device.
template <class T>
T cross_entropy_gradient(const device_tensor<T, 2>& logits, const device_labels& labels,
                         device_tensor<T, 2>& dlogits, T scale = T(1)) {
    dlogits.resize(logits.shape());
    return detail::cross_entropy_sync<T>("cuda::cross_entropy_gradient", logits, labels,
                                         dlogits.data(), scale);
}

}  // namespace advaug::cuda
