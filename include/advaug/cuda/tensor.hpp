// Device memory: an RAII buffer and a dense row-major tensor with a compile-time rank, and the
// copies between host and device.
//
//   auto x = cuda::to_device(host_batch);      // advaug::tensor<float, 2> -> device_tensor
//   auto y = cuda::to_device(host_labels);     // label_vector -> device_labels
//   advaug::tensor<float, 2> back = cuda::to_host(x);
//
// Allocation is stream-ordered (cudaMallocAsync on the context's stream) where the device has
// memory pools, and cudaMalloc otherwise; either way freeing a buffer that queued kernels still
// read is safe (cudaFreeAsync is ordered after them; the fallback waits for the stream). An empty
// tensor owns no memory and needs no device, which keeps the model contract's default-constructed
// caches and buffers free of CUDA calls.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "advaug/cuda/runtime.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug::cuda {

namespace detail {

/// `bytes` of device memory for work on stream s: stream-ordered from the device's memory pool
/// when `pooled`, else cudaMalloc.
inline void* allocate_bytes(const char* fn, std::size_t bytes, cudaStream_t s, bool pooled) {
    void* p = nullptr;
    if (pooled) {
        ADVAUG_CUDA_CHECK(fn, cudaMallocAsync(&p, bytes, s));
    } else {
        ADVAUG_CUDA_CHECK(fn, cudaMalloc(&p, bytes));
    }
    return p;
}

/// Frees what allocate_bytes gave, after the work queued on s (errors are dropped: this runs in
/// destructors, and a failed free cannot be acted on).
inline void free_bytes(void* p, cudaStream_t s, bool pooled) noexcept {
    if (!p) return;
    if (pooled) {
        cudaFreeAsync(p, s);
    } else {
        cudaStreamSynchronize(s);
        cudaFree(p);
    }
}

}  // namespace detail

/// n elements of T in device memory, uninitialized. Move-only.
template <class T>
class device_buffer {
public:
    device_buffer() = default;
    /// throws: cuda_error without a device or when the allocation fails.
    explicit device_buffer(std::size_t n, const char* fn = "cuda::device_buffer") {
        allocate(n, fn);
    }
    ~device_buffer() { release(); }
    device_buffer(device_buffer&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)),
          n_(std::exchange(o.n_, 0)),
          s_(o.s_),
          pooled_(o.pooled_) {}
    device_buffer& operator=(device_buffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
            s_ = o.s_;
            pooled_ = o.pooled_;
        }
        return *this;
    }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;

    T* data() { return p_; }
    const T* data() const { return p_; }
    std::size_t size() const { return n_; }

    /// Replaces the content by n uninitialized elements (no allocation when n == size()).
    void allocate(std::size_t n, const char* fn = "cuda::device_buffer") {
        if (n == n_) return;
        release();
        if (n == 0) return;
        const context& ctx = context::get(fn);
        p_ = static_cast<T*>(
            detail::allocate_bytes(fn, n * sizeof(T), ctx.stream(), ctx.memory_pools()));
        n_ = n;
        s_ = ctx.stream();
        pooled_ = ctx.memory_pools();
    }

private:
    void release() noexcept {
        detail::free_bytes(p_, s_, pooled_);
        p_ = nullptr;
        n_ = 0;
    }

    T* p_ = nullptr;
    std::size_t n_ = 0;
    cudaStream_t s_ = nullptr;
    bool pooled_ = false;
};

/// A dense row-major tensor of rank N in device memory. The device counterpart of
/// advaug::tensor<T, N>: shape(), size(), data(), resize(). Copying copies the device data.
template <class T, std::size_t N>
class device_tensor {
public:
    using value_type = T;
    using shape_type = std::array<std::size_t, N>;
    static constexpr std::size_t rank = N;

    device_tensor() = default;
    /// Uninitialized values. throws: cuda_error without a device (unless the shape is empty).
    explicit device_tensor(const shape_type& shape) { resize(shape); }

    /// The moved-from tensor is empty: shape all zeros, size 0, no memory.
    device_tensor(device_tensor&& o) noexcept
        : buf_(std::move(o.buf_)),
          shape_(std::exchange(o.shape_, shape_type{})),
          size_(std::exchange(o.size_, 0)) {}
    device_tensor& operator=(device_tensor&& o) noexcept {
        if (this != &o) {
            buf_ = std::move(o.buf_);
            shape_ = std::exchange(o.shape_, shape_type{});
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    device_tensor(const device_tensor& o) : device_tensor(o.shape_) { copy_from(o); }
    device_tensor& operator=(const device_tensor& o) {
        if (this != &o) {
            resize(o.shape_);
            copy_from(o);
        }
        return *this;
    }

    const shape_type& shape() const { return shape_; }
    std::size_t size() const { return size_; }
    T* data() { return buf_.data(); }
    const T* data() const { return buf_.data(); }

    /// New shape, values unspecified. Keeps the allocation when it is large enough, so buffers
    /// reused across batches of one size allocate once.
    void resize(const shape_type& shape) {
        std::size_t n = 1;
        for (std::size_t d : shape) n *= d;
        if (n > buf_.size()) buf_.allocate(n, "cuda::device_tensor::resize");
        shape_ = shape;
        size_ = n;
    }

private:
    void copy_from(const device_tensor& o) {
        if (size_ == 0) return;
        const char* fn = "cuda::device_tensor";
        ADVAUG_CUDA_CHECK(fn, cudaMemcpyAsync(buf_.data(), o.data(), size_ * sizeof(T),
                                              cudaMemcpyDeviceToDevice, context::get(fn).stream()));
    }

    device_buffer<T> buf_;
    shape_type shape_{};
    std::size_t size_ = 0;
};

/// One label per sample, on the device (signed, like label_vector).
using device_labels = device_tensor<std::int64_t, 1>;

/// dst gets host's shape and values.
template <class T, std::size_t N>
void copy_to_device(const tensor<T, N>& host, device_tensor<T, N>& dst) {
    typename device_tensor<T, N>::shape_type shape;
    for (std::size_t a = 0; a < N; ++a) shape[a] = host.shape()[a];
    dst.resize(shape);
    if (dst.size() == 0) return;
    const char* fn = "cuda::copy_to_device";
    ADVAUG_CUDA_CHECK(fn, cudaMemcpyAsync(dst.data(), host.data(), dst.size() * sizeof(T),
                                          cudaMemcpyHostToDevice, context::get(fn).stream()));
}

template <class T, std::size_t N>
device_tensor<T, N> to_device(const tensor<T, N>& host) {
    device_tensor<T, N> out;
    copy_to_device(host, out);
    return out;
}

/// host gets src's shape and values; waits for the copy (and all earlier device work).
template <class T, std::size_t N>
void copy_to_host(const device_tensor<T, N>& src, tensor<T, N>& host) {
    if (host.shape() != src.shape()) host.resize(src.shape());
    if (src.size() == 0) return;
    const char* fn = "cuda::copy_to_host";
    const context& ctx = context::get(fn);
    ADVAUG_CUDA_CHECK(fn, cudaMemcpyAsync(host.data(), src.data(), src.size() * sizeof(T),
                                          cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize(fn);
}

template <class T, std::size_t N>
tensor<T, N> to_host(const device_tensor<T, N>& src) {
    tensor<T, N> out;
    copy_to_host(src, out);
    return out;
}

namespace detail {

/// Copies n elements device -> host and waits (small status words and scalars).
template <class T>
void download(const char* fn, const T* device, T* host, std::size_t n) {
    const context& ctx = context::get(fn);
    ADVAUG_CUDA_CHECK(
        fn, cudaMemcpyAsync(host, device, n * sizeof(T), cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize(fn);
}

/// Copies n elements host -> device (queued; host memory may be reused at once).
template <class T>
void upload(const char* fn, const T* host, T* device, std::size_t n) {
    if (n == 0) return;
    ADVAUG_CUDA_CHECK(fn, cudaMemcpyAsync(device, host, n * sizeof(T), cudaMemcpyHostToDevice,
                                          context::get(fn).stream()));
}

}  // namespace detail
}  // namespace advaug::cuda
