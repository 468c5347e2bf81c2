// Row-major GEMM, C = alpha * op(A) * op(B) + beta * C, on raw pointers.
//
// With BLAS (the default) it calls OpenBLAS through xtensor-blas's cxxblas layer, so that
// no file has to include <cblas.h> next to xtensor-blas (Debian's xtensor-blas declares the
// CBLAS functions itself). With ADVAUG_NO_BLAS defined it uses the blocked loop nest below,
// so the same headers build in code that has no BLAS at all.
#pragma once

#include <algorithm>
#include <cstddef>

#ifndef ADVAUG_NO_BLAS
#if __has_include(<xtensor-blas/xblas.hpp>)
#include <xtensor-blas/xblas.hpp>
#else
#error "advaug: xtensor-blas not found; install it or define ADVAUG_NO_BLAS"
#endif
#endif

#include "advaug/parallel/threads.hpp"

namespace advaug::backend {

/// gemm on the calling thread (BLAS may still use its own threads; see gemm below).
template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
                 const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
                 std::size_t ldc);

#ifdef ADVAUG_NO_BLAS

template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
                 const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
                 std::size_t ldc) {
    for (std::size_t i = 0; i < m; ++i) {
        T* ci = c + i * ldc;
        if (beta == T(0)) {
            std::fill(ci, ci + n, T(0));
        } else if (beta != T(1)) {
            for (std::size_t j = 0; j < n; ++j) ci[j] *= beta;
        }
    }
    if (m == 0 || n == 0 || k == 0) return;
    // Blocks of k and n keep a panel of B in L2 while rows of C stream through it.
    constexpr std::size_t kb = 256, nb = 512;
    if (!trans_b) {
        for (std::size_t p0 = 0; p0 < k; p0 += kb) {
            const std::size_t p1 = std::min(k, p0 + kb);
            for (std::size_t j0 = 0; j0 < n; j0 += nb) {
                const std::size_t j1 = std::min(n, j0 + nb);
                for (std::size_t i = 0; i < m; ++i) {
                    T* ci = c + i * ldc;
                    for (std::size_t p = p0; p < p1; ++p) {
                        const T aip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
                        if (aip == T(0)) continue;
                        const T* bp = b + p * ldb;
                        for (std::size_t j = j0; j < j1; ++j) ci[j] += aip * bp[j];
                    }
                }
            }
        }
    } else {
        // op(B)[p, j] = B[j, p]: rows of B are contiguous along k, so take dot products.
        for (std::size_t i = 0; i < m; ++i) {
            T* ci = c + i * ldc;
            for (std::size_t j = 0; j < n; ++j) {
                const T* bj = b + j * ldb;
                T sum = 0;
                if (!trans_a) {
                    const T* ai = a + i * lda;
                    for (std::size_t p = 0; p < k; ++p) sum += ai[p] * bj[p];
                } else {
                    for (std::size_t p = 0; p < k; ++p) sum += a[p * lda + i] * bj[p];
                }
                ci[j] += alpha * sum;
            }
        }
    }
}

#else

template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
                 const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
                 std::size_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
        return;
    }
    using index = xt::blas_index_t;
    cxxblas::gemm<index>(cxxblas::StorageOrder::RowMajor,
                         trans_a ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                         trans_b ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                         static_cast<index>(m), static_cast<index>(n), static_cast<index>(k), alpha,
                         a, static_cast<index>(lda), b, static_cast<index>(ldb), beta, c,
                         static_cast<index>(ldc));
}

#endif

/// Products with at least this many multiply-adds are split across advaug's threads.
inline constexpr std::size_t gemm_split_macs = std::size_t(1) << 18;

/// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major.
///   op(A) is m x k (A is k x m when trans_a), op(B) is k x n (B is n x k when trans_b).
///   With beta == 0, C's previous content is ignored (NaNs in it do not propagate).
/// With more than one advaug thread (parallel/threads.hpp), BLAS runs on one thread and a large
/// product is split into blocks of C's rows or columns, one per advaug thread. The sums over k
/// are not split, but a block may take another BLAS kernel than the whole product, so C can
/// differ in the last bits between thread counts.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
    if (detail::thread_pool::inside() || detail::parallel_slots() == 1) {
        gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    detail::single_threaded_blas blas;
    if (m * n * k < gemm_split_macs) {
        gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    // Blocks of 16 rows or columns (the BLAS kernels' unit), split along the longer side.
    constexpr std::size_t unit = 16;
    const bool by_rows = m >= n;
    const std::size_t units = ((by_rows ? m : n) + unit - 1) / unit;
    detail::parallel_for(units, 1, [&](std::size_t first, std::size_t last, std::size_t) {
        if (by_rows) {
            const std::size_t r0 = first * unit, r1 = std::min(m, last * unit);
            gemm_serial(trans_a, trans_b, r1 - r0, n, k, alpha, trans_a ? a + r0 : a + r0 * lda,
                        lda, b, ldb, beta, c + r0 * ldc, ldc);
        } else {
            const std::size_t c0 = first * unit, c1 = std::min(n, last * unit);
            gemm_serial(trans_a, trans_b, m, c1 - c0, k, alpha, a, lda,
                        trans_b ? b + c0 * ldb : b + c0, ldb, beta, c + c0, ldc);
        }
    });
}

}  // namespace advaug::backend
