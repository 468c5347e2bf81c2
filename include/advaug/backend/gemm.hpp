// Row-major GEMM, C = alpha * op(A) * op(B) + beta * C, on raw pointers: the one place the
// layers' matrix products go through, whichever kernel library runs them.
//
// The kernel library is chosen at configure time (ADVAUG_BACKEND, carried to every
// translation unit by the advaug targets as a compile definition):
//   ADVAUG_BACKEND_ONEDNN   float through oneDNN (onednn.hpp), double through the BLAS, or
//                           the loop when ADVAUG_NO_BLAS is defined too;
//   neither                 both through the BLAS (blas.hpp);
//   ADVAUG_NO_BLAS          both through advaug's blocked loop (loop_gemm.hpp).
// info.hpp says at run time which one this build uses.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "advaug/backend/info.hpp"
#include "advaug/backend/loop_gemm.hpp"
#ifndef ADVAUG_NO_BLAS
#include "advaug/backend/blas.hpp"
#endif
#ifdef ADVAUG_BACKEND_ONEDNN
#include "advaug/backend/onednn.hpp"
#endif
#include "advaug/parallel/threads.hpp"

namespace advaug::backend {

/// gemm on the calling thread. The kernel library may use threads of its own (BLAS's, or
/// oneDNN's OpenMP team) only when called outside advaug's parallel work with advaug on one
/// thread; see gemm below.
template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
                 const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
                 std::size_t ldc) {
#ifdef ADVAUG_BACKEND_ONEDNN
    if constexpr (std::is_same_v<T, float>) {
        if (advaug::detail::thread_pool::inside() || advaug::detail::parallel_slots() > 1) {
            detail::openmp_single_thread one;
            onednn_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        } else {
            onednn_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
        return;
    }
#endif
#ifdef ADVAUG_NO_BLAS
    loop_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

/// OpenBLAS's own thread count, for a program that sets it (as OPENBLAS_NUM_THREADS would);
/// 0 where the linked BLAS is not OpenBLAS or is not loaded (the oneDNN and loop backends
/// need none for float), and then set_blas_threads does nothing. advaug itself holds it at 1
/// inside its parallel work (parallel/threads.hpp).
inline int blas_threads() { return advaug::detail::blas_threads::get(); }
inline void set_blas_threads(int threads) { advaug::detail::blas_threads::set(threads); }

/// Products with at least this many multiply-adds are split across advaug's threads.
inline constexpr std::size_t gemm_split_macs = std::size_t(1) << 18;

/// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major.
///   op(A) is m x k (A is k x m when trans_a), op(B) is k x n (B is n x k when trans_b).
///   With beta == 0, C's previous content is ignored (NaNs in it do not propagate).
/// With more than one advaug thread (parallel/threads.hpp), the kernel library runs on one
/// thread and a large product is split into blocks of C's rows or columns, one per advaug
/// thread. The sums over k are not split, but a block may take another kernel than the whole
/// product, so C can differ in the last bits between thread counts.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
#if !defined(ADVAUG_NO_BLAS) && !defined(ADVAUG_BACKEND_ONEDNN)
    static const bool warned = (warn_once_about_slow_kernels(), true);
    (void)warned;
#endif
    if (advaug::detail::thread_pool::inside() || advaug::detail::parallel_slots() == 1) {
        gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    advaug::detail::single_threaded_blas blas;
    if (m * n * k < gemm_split_macs) {
        gemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    // Blocks of 16 rows or columns (the kernels' unit), split along the longer side.
    constexpr std::size_t unit = 16;
    const bool by_rows = m >= n;
    const std::size_t units = ((by_rows ? m : n) + unit - 1) / unit;
    advaug::detail::parallel_for(units, 1, [&](std::size_t first, std::size_t last, std::size_t) {
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
