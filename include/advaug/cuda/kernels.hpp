// The device building blocks of the models: row-major GEMM through cuBLAS and the kernels
// for bias, ReLU, im2col/col2im, max pooling and reductions. Internal to advaug/cuda/.
//
// Reductions are written without atomics (one block per output, a fixed tree in shared
// memory), so a result does not depend on thread scheduling: two runs on one GPU agree bitwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "advaug/backend/element_math.hpp"
#include "advaug/cuda/runtime.hpp"

namespace advaug::cuda::detail {

inline constexpr unsigned block_size = 256;

/// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(std::size_t n) {
    const std::size_t blocks = (n + block_size - 1) / block_size;
    return static_cast<unsigned>(blocks < 8192 ? (blocks ? blocks : 1) : 8192);
}

#define ADVAUG_GRID_STRIDE(i, n)                                                                   \
    for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < (n); \
         i += static_cast<std::size_t>(blockDim.x) * gridDim.x)

/// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major, with the arguments of
/// advaug::backend::gemm. cuBLAS is column-major: a row-major matrix is its transpose in
/// column-major order, so C^T = op(B)^T op(A)^T is computed with A and B swapped.
template <class T>
void gemm(const context& ctx, bool trans_a, bool trans_b, std::size_t m, std::size_t n,
          std::size_t k, T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta,
          T* c, std::size_t ldc) {
    const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    const auto i = [](std::size_t v) { return static_cast<int>(v); };
    if constexpr (std::is_same_v<T, float>) {
        ADVAUG_CUDA_CHECK("cuda::gemm",
                          cublasSgemm(ctx.blas(), op_b, op_a, i(n), i(m), i(k), &alpha, b, i(ldb),
                                      a, i(lda), &beta, c, i(ldc)));
    } else {
        ADVAUG_CUDA_CHECK("cuda::gemm",
                          cublasDgemm(ctx.blas(), op_b, op_a, i(n), i(m), i(k), &alpha, b, i(ldb),
                                      a, i(lda), &beta, c, i(ldc)));
    }
}

template <class T>
__global__ void fill_kernel(T* p, std::size_t n, T v) {
    ADVAUG_GRID_STRIDE(i, n) p[i] = v;
}

template <class T>
void fill(const context& ctx, T* p, std::size_t n, T v) {
    if (n == 0) return;
    fill_kernel<<<grid_for(n), block_size, 0, ctx.stream()>>>(p, n, v);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::fill", "fill_kernel");
}

/// y[r, j] += b[j] for a [rows, cols] matrix, then ReLU when `relu` (y > 0 ? y : 0, as
/// advaug::relu, which also maps NaN to 0).
template <class T>
__global__ void bias_act_kernel(T* y, const T* b, std::size_t total, std::size_t cols, bool relu) {
    ADVAUG_GRID_STRIDE(i, total) {
        const T v = y[i] + b[i % cols];
        y[i] = relu ? (v > T(0) ? v : T(0)) : v;
    }
}

template <class T>
void bias_act(const context& ctx, T* y, const T* b, std::size_t rows, std::size_t cols, bool relu) {
    const std::size_t total = rows * cols;
    bias_act_kernel<<<grid_for(total), block_size, 0, ctx.stream()>>>(y, b, total, cols, relu);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::bias_act", "bias_act_kernel");
}

/// Convolution output: ych [C, N*P] (channel-major, one GEMM for the batch) to y [N, C, P]
/// with bias and ReLU.
template <class T>
__global__ void conv_out_kernel(const T* ych, const T* b, T* y, std::size_t n, std::size_t c,
                                std::size_t p) {
    const std::size_t total = n * c * p;
    ADVAUG_GRID_STRIDE(i, total) {
        const std::size_t j = i % p, ch = (i / p) % c, s = i / (p * c);
        const T v = ych[ch * n * p + s * p + j] + b[ch];
        y[i] = v > T(0) ? v : T(0);
    }
}

template <class T>
void conv_out(const context& ctx, const T* ych, const T* b, T* y, std::size_t n, std::size_t c,
              std::size_t p) {
    conv_out_kernel<<<grid_for(n * c * p), block_size, 0, ctx.stream()>>>(ych, b, y, n, c, p);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::conv_out", "conv_out_kernel");
}

/// The adjoint of conv_out's ReLU and layout change: dych [C, N*P] = (a > 0 ? da : 0).
template <class T>
__global__ void conv_back_kernel(const T* da, const T* a, T* dych, std::size_t n, std::size_t c,
                                 std::size_t p) {
    const std::size_t total = n * c * p;
    ADVAUG_GRID_STRIDE(i, total) {
        const std::size_t j = i % p, ch = (i / p) % c, s = i / (p * c);
        dych[ch * n * p + s * p + j] = a[i] > T(0) ? da[i] : T(0);
    }
}

template <class T>
void conv_back(const context& ctx, const T* da, const T* a, T* dych, std::size_t n, std::size_t c,
               std::size_t p) {
    conv_back_kernel<<<grid_for(n * c * p), block_size, 0, ctx.stream()>>>(da, a, dych, n, c, p);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::conv_back", "conv_back_kernel");
}

/// dz = a > 0 ? da : 0 (ReLU backward through its output, as advaug::relu).
template <class T>
__global__ void relu_back_kernel(const T* da, const T* a, T* dz, std::size_t n) {
    ADVAUG_GRID_STRIDE(i, n) dz[i] = a[i] > T(0) ? da[i] : T(0);
}

template <class T>
void relu_back(const context& ctx, const T* da, const T* a, T* dz, std::size_t n) {
    relu_back_kernel<<<grid_for(n), block_size, 0, ctx.stream()>>>(da, a, dz, n);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::relu_back", "relu_back_kernel");
}

/// out[r] += sum_k a[r * outer_stride + k * inner_stride], k < count: one block per r.
template <class T>
__global__ void strided_sums_kernel(const T* a, T* out, std::size_t count, std::size_t outer_stride,
                                    std::size_t inner_stride) {
    __shared__ T part[block_size];
    const std::size_t r = blockIdx.x;
    T sum = 0;
    for (std::size_t k = threadIdx.x; k < count; k += blockDim.x) {
        sum += a[r * outer_stride + k * inner_stride];
    }
    part[threadIdx.x] = sum;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[r] += part[0];
}

/// out[j] += sum_r a[r, j] for a [rows, cols] matrix (the bias gradient of a dense layer).
template <class T>
void add_column_sums(const context& ctx, const T* a, std::size_t rows, std::size_t cols, T* out) {
    strided_sums_kernel<<<static_cast<unsigned>(cols), block_size, 0, ctx.stream()>>>(a, out, rows,
                                                                                      1, cols);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::add_column_sums", "strided_sums_kernel");
}

/// out[r] += sum_j a[r, j] for a [rows, cols] matrix (a convolution's bias gradient).
template <class T>
void add_row_sums(const context& ctx, const T* a, std::size_t rows, std::size_t cols, T* out) {
    strided_sums_kernel<<<static_cast<unsigned>(rows), block_size, 0, ctx.stream()>>>(a, out, cols,
                                                                                      cols, 1);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::add_row_sums", "strided_sums_kernel");
}

/// Geometry of a square-kernel convolution with stride 1 and zero padding `pad`, as the
/// bundled CNN uses it.
struct conv_shape {
    std::size_t n, c, h, w;  // input
    std::size_t kh, kw, pad;
    __host__ __device__ std::size_t oh() const { return h + 2 * pad - kh + 1; }
    __host__ __device__ std::size_t ow() const { return w + 2 * pad - kw + 1; }
    __host__ __device__ std::size_t patch() const { return c * kh * kw; }
    __host__ __device__ std::size_t pixels() const { return oh() * ow(); }
};

/// cols [C*KH*KW, N*P]: row (c, ky, kx), column (sample, output pixel); 0 in the padding.
/// The same entries as advaug::detail::im2col, with the samples side by side so that one
/// GEMM covers the batch.
template <class T>
__global__ void im2col_kernel(const T* x, T* cols, conv_shape g) {
    const std::size_t oh = g.oh(), ow = g.ow(), p = oh * ow, np = g.n * p;
    const std::size_t total = g.patch() * np;
    ADVAUG_GRID_STRIDE(i, total) {
        const std::size_t col = i % np, row = i / np;
        const std::size_t s = col / p, pix = col % p, oy = pix / ow, ox = pix % ow;
        const std::size_t kx = row % g.kw, ky = (row / g.kw) % g.kh, c = row / (g.kw * g.kh);
        const std::ptrdiff_t iy =
            static_cast<std::ptrdiff_t>(oy + ky) - static_cast<std::ptrdiff_t>(g.pad);
        const std::ptrdiff_t ix =
            static_cast<std::ptrdiff_t>(ox + kx) - static_cast<std::ptrdiff_t>(g.pad);
        const bool inside = iy >= 0 && ix >= 0 && iy < static_cast<std::ptrdiff_t>(g.h) &&
                            ix < static_cast<std::ptrdiff_t>(g.w);
        cols[i] = inside ? x[((s * g.c + c) * g.h + iy) * g.w + ix] : T(0);
    }
}

template <class T>
void im2col(const context& ctx, const T* x, T* cols, const conv_shape& g) {
    im2col_kernel<<<grid_for(g.patch() * g.n * g.pixels()), block_size, 0, ctx.stream()>>>(x, cols,
                                                                                           g);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::im2col", "im2col_kernel");
}

/// The adjoint of im2col, as a gather (no atomics): every input pixel sums the cols entries
/// that read it.
template <class T>
__global__ void col2im_kernel(const T* cols, T* dx, conv_shape g) {
    const std::size_t oh = g.oh(), ow = g.ow(), p = oh * ow, np = g.n * p;
    const std::size_t total = g.n * g.c * g.h * g.w;
    ADVAUG_GRID_STRIDE(i, total) {
        const std::size_t ix = i % g.w, iy = (i / g.w) % g.h, c = (i / (g.w * g.h)) % g.c,
                          s = i / (g.w * g.h * g.c);
        T sum = 0;
        for (std::size_t ky = 0; ky < g.kh; ++ky) {
            const std::ptrdiff_t oy =
                static_cast<std::ptrdiff_t>(iy + g.pad) - static_cast<std::ptrdiff_t>(ky);
            if (oy < 0 || oy >= static_cast<std::ptrdiff_t>(oh)) continue;
            for (std::size_t kx = 0; kx < g.kw; ++kx) {
                const std::ptrdiff_t ox =
                    static_cast<std::ptrdiff_t>(ix + g.pad) - static_cast<std::ptrdiff_t>(kx);
                if (ox < 0 || ox >= static_cast<std::ptrdiff_t>(ow)) continue;
                const std::size_t row = (c * g.kh + ky) * g.kw + kx;
                sum += cols[row * np + s * p + static_cast<std::size_t>(oy) * ow +
                            static_cast<std::size_t>(ox)];
            }
        }
        dx[i] = sum;
    }
}

template <class T>
void col2im(const context& ctx, const T* cols, T* dx, const conv_shape& g) {
    col2im_kernel<<<grid_for(g.n * g.c * g.h * g.w), block_size, 0, ctx.stream()>>>(cols, dx, g);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::col2im", "col2im_kernel");
}

/// Max pooling with window k and stride k over [planes, h, w]: backend::element::max_window
/// per output, as advaug::max_pool2d; argmax holds the flat input index of each maximum.
template <class T>
__global__ void max_pool_kernel(const T* x, T* y, std::int64_t* argmax, std::size_t planes,
                                std::size_t h, std::size_t w, std::size_t k) {
    const std::size_t oh = h / k, ow = w / k, total = planes * oh * ow;
    ADVAUG_GRID_STRIDE(i, total) {
        const std::size_t ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
        const std::size_t first = plane * h * w + oy * k * w + ox * k;
        argmax[i] = static_cast<std::int64_t>(backend::element::max_window(x, first, w, k, y[i]));
    }
}

template <class T>
void max_pool(const context& ctx, const T* x, T* y, std::int64_t* argmax, std::size_t planes,
              std::size_t h, std::size_t w, std::size_t k) {
    max_pool_kernel<<<grid_for(planes * (h / k) * (w / k)), block_size, 0, ctx.stream()>>>(
        x, y, argmax, planes, h, w, k);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::max_pool", "max_pool_kernel");
}

/// dx[j] = dy[o] if input j is the maximum of its window o, else 0. Windows do not overlap
/// (stride == kernel), so each input has at most one window: a gather without atomics.
template <class T>
__global__ void max_pool_back_kernel(const T* dy, const std::int64_t* argmax, T* dx,
                                     std::size_t planes, std::size_t h, std::size_t w,
                                     std::size_t k) {
    const std::size_t oh = h / k, ow = w / k, total = planes * h * w;
    ADVAUG_GRID_STRIDE(i, total) {
        const std::size_t ix = i % w, iy = (i / w) % h, plane = i / (w * h);
        const std::size_t oy = iy / k, ox = ix / k;
        T v = 0;
        if (oy < oh && ox < ow) {
            const std::size_t o = (plane * oh + oy) * ow + ox;
            if (argmax[o] == static_cast<std::int64_t>(i)) v = dy[o];
        }
        dx[i] = v;
    }
}

template <class T>
void max_pool_back(const context& ctx, const T* dy, const std::int64_t* argmax, T* dx,
                   std::size_t planes, std::size_t h, std::size_t w, std::size_t k) {
    max_pool_back_kernel<<<grid_for(planes * h * w), block_size, 0, ctx.stream()>>>(
        dy, argmax, dx, planes, h, w, k);
    ADVAUG_CUDA_CHECK_LAUNCH("cuda::max_pool_back", "max_pool_back_kernel");
}

}  // namespace advaug::cuda::detail
