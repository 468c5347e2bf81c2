// advaug's own GEMM: a blocked loop nest with no dependency. It is the whole GEMM under
// ADVAUG_NO_BLAS (ADVAUG_BACKEND=none), the double-precision GEMM of the oneDNN backend when
// no BLAS is linked, and the reference the backends are compared with in the tests.
#pragma once

#include <algorithm>
#include <cstddef>

namespace advaug::backend {

/// C[m x n] = alpha * op(A) * op(B) + beta * C, row-major, on the calling thread (the
/// contract of backend::gemm in gemm.hpp).
template <class T>
void loop_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
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
                        // No skip of a zero aip: 0 * NaN must give NaN, as in BLAS and oneDNN,
                        // so that a diverged weight shows in every backend alike.
                        const T aip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
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

}  // namespace advaug::backend
