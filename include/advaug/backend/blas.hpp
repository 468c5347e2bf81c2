// The BLAS backend: GEMM through xtensor-blas's cxxblas layer (any CBLAS; OpenBLAS unless
// the consumer chose another vendor), and what OpenBLAS says about itself.
//
// No advaug file includes <cblas.h>: Debian's xtensor-blas declares the CBLAS functions
// itself, and the two sets of declarations clash in one translation unit. OpenBLAS's own
// functions are declared here, weak, so they are null when the BLAS linked is another one.
#pragma once

#ifdef ADVAUG_NO_BLAS
#error "advaug: backend/blas.hpp needs a BLAS; ADVAUG_NO_BLAS is defined"
#endif

#include <cstddef>
#include <string>

#if __has_include(<xtensor-blas/xblas.hpp>)
#include <xtensor-blas/xblas.hpp>
#else
#error "advaug: xtensor-blas not found; install it, or configure with ADVAUG_BACKEND=none"
#endif

#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
extern "C" {
__attribute__((weak)) char* openblas_get_config(void);
__attribute__((weak)) char* openblas_get_corename(void);
}
#define ADVAUG_OPENBLAS_INFO 1
#endif

namespace advaug::backend {

/// C[m x n] = alpha * op(A) * op(B) + beta * C through the BLAS (its own threads, if any).
template <class T>
void blas_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
               const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
               std::size_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {  // a BLAS may reject lda = 0; C = beta C, ignoring C when beta == 0
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j)
                c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
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

/// What the linked BLAS says about itself: OpenBLAS's build configuration and the kernel it
/// picked for this CPU ("Cooperlake", "Prescott"); both empty for another BLAS.
struct blas_identity {
    std::string config;
    std::string core;
};

inline blas_identity identify_blas() {
    blas_identity id;
#ifdef ADVAUG_OPENBLAS_INFO
    if (&openblas_get_config != nullptr) id.config = openblas_get_config();
    if (&openblas_get_corename != nullptr) id.core = openblas_get_corename();
#endif
    return id;
}

}  // namespace advaug::backend
