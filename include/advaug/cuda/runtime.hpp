// The CUDA runtime as advaug uses it: errors, the device check, RAII streams and the context.
//
// Every failed CUDA or cuBLAS call throws advaug::cuda::cuda_error naming the advaug
// function, the library call and the library's own error string:
//   cuda::device_buffer(): cudaMallocAsync(&p, bytes, stream) failed: out of memory
//   (cudaErrorMemoryAllocation)
// On a machine without a device, the first call that needs one throws cuda_error
// "<function>(): no CUDA device"; with a driver that cannot run (too old, broken), cuda_error
// with CUDA's error string. Nothing crashes and nothing is silently run on the CPU.
//
// Threading: one process-wide context (one stream, one cuBLAS handle) orders all of advaug's
// device work. Device objects may be used from one host thread at a time.
#pragma once

#ifndef __CUDACC__
#error "advaug/cuda/ headers contain CUDA kernels: compile the including file with nvcc (.cu)"
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "advaug/detail/error.hpp"

namespace advaug::cuda {

/// A failed CUDA runtime or library call, or no device to run on.
class cuda_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

[[noreturn]] inline void fail(const char* fn, const char* call, const char* what,
                              const char* name) {
    throw cuda_error(advaug::detail::concat(fn, "(): ", call, " failed: ", what, " (", name, ")"));
}

inline void check(cudaError_t e, const char* fn, const char* call) {
    if (e != cudaSuccess) {
        // Clear a non-sticky error so the next call does not report it again.
        cudaGetLastError();
        fail(fn, call, cudaGetErrorString(e), cudaGetErrorName(e));
    }
}

inline void check(cublasStatus_t s, const char* fn, const char* call) {
    if (s != CUBLAS_STATUS_SUCCESS)
        fail(fn, call, cublasGetStatusString(s), cublasGetStatusName(s));
}

}  // namespace detail

/// Checks a CUDA or cuBLAS call and throws cuda_error naming `fn` and the call's text.
#define ADVAUG_CUDA_CHECK(fn, call) ::advaug::cuda::detail::check((call), (fn), #call)

/// Kernel launches report configuration errors only through cudaGetLastError().
#define ADVAUG_CUDA_CHECK_LAUNCH(fn, kernel) \
    ::advaug::cuda::detail::check(cudaGetLastError(), (fn), "launch of " kernel)

namespace detail {

/// What cudaGetDeviceCount's answer means: the number of devices, 0 on a machine without any
/// (cudaErrorNoDevice, or no driver installed at all: cudaErrorInsufficientDriver while
/// cudaDriverGetVersion reports 0). Every other error, such as a driver too old for this
/// runtime or a broken installation, throws cuda_error with CUDA's error string: a GPU machine
/// that cannot run must fail, not look like one without a GPU.
inline int interpret_device_count(const char* fn, cudaError_t e, int n, int driver_version) {
    if (e == cudaSuccess) return n;
    if (e == cudaErrorNoDevice) return 0;
    if (e == cudaErrorInsufficientDriver && driver_version == 0) return 0;
    fail(fn, "cudaGetDeviceCount(&n)", cudaGetErrorString(e), cudaGetErrorName(e));
}

}  // namespace detail

/// Number of CUDA devices; 0 when the machine has none (or no CUDA driver at all).
/// throws: cuda_error when a driver is installed but unusable (see interpret_device_count).
inline int device_count(const char* fn = "cuda::device_count") {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess) return n;
    cudaGetLastError();
    int driver = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = -1;  // unknown: not "none"
    return detail::interpret_device_count(fn, e, n, driver);
}

/// True when a CUDA device can be used, false when the machine has none.
/// throws: cuda_error when a driver is installed but unusable.
inline bool device_available(const char* fn = "cuda::device_available") {
    return device_count(fn) > 0;
}

/// Throws cuda_error "<fn>(): no CUDA device" when the machine has none, and cuda_error with
/// CUDA's error string when its driver is unusable.
inline void require_device(const char* fn) {
    if (device_count(fn) == 0) throw cuda_error(advaug::detail::concat(fn, "(): no CUDA device"));
}

/// An owned CUDA stream (non-blocking with respect to the legacy default stream).
class stream {
public:
    explicit stream(const char* fn = "cuda::stream") {
        require_device(fn);
        ADVAUG_CUDA_CHECK(fn, cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    }
    ~stream() {
        if (s_) cudaStreamDestroy(s_);
    }
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    cudaStream_t get() const { return s_; }

    /// Waits for all work queued on the stream; throws what the work raised.
    void synchronize(const char* fn) const { ADVAUG_CUDA_CHECK(fn, cudaStreamSynchronize(s_)); }

private:
    cudaStream_t s_ = nullptr;
};

/// The stream and library handles all device work is queued on.
class context {
public:
    explicit context(const char* fn) : stream_(fn) {
        int device = 0, pools = 0;
        ADVAUG_CUDA_CHECK(fn, cudaGetDevice(&device));
        ADVAUG_CUDA_CHECK(fn,
                          cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device));
        memory_pools_ = pools != 0;
        ADVAUG_CUDA_CHECK(fn, cublasCreate(&blas_));
        const cublasStatus_t s = cublasSetStream(blas_, stream_.get());
        if (s != CUBLAS_STATUS_SUCCESS) {
            cublasDestroy(blas_);
            detail::check(s, fn, "cublasSetStream(blas_, stream)");
        }
    }
    ~context() {
        if (blas_) cublasDestroy(blas_);
    }
    context(const context&) = delete;
    context& operator=(const context&) = delete;

    cudaStream_t stream() const { return stream_.get(); }
    cublasHandle_t blas() const { return blas_; }
    /// Whether the device has stream-ordered memory pools (cudaMallocAsync); some virtualized
    /// and older setups do not, and device_buffer then falls back to cudaMalloc.
    bool memory_pools() const { return memory_pools_; }
    void synchronize(const char* fn) const { stream_.synchronize(fn); }

    /// The process-wide context, created on first use; safe to call from several threads (a
    /// function-local static: one thread creates it, the others wait). throws: cuda_error
    /// without a device (and again on every later call, since a static whose initializer
    /// threw is initialized afresh next time, so a missing device is never cached as success).
    /// Deliberately never destroyed: at exit the CUDA runtime may be torn down before static
    /// destructors run, and destroying a stream or cuBLAS handle then is undefined.
    static context& get(const char* fn) {
        static context* const instance = new context(fn);
        return *instance;
    }

private:
    cuda::stream stream_;
    cublasHandle_t blas_ = nullptr;
    bool memory_pools_ = false;
};

}  // namespace advaug::cuda
