// The oneDNN backend (ADVAUG_BACKEND=onednn): float GEMM through dnnl_sgemm, whose kernels
// oneDNN generates at run time for the instruction set the CPU has (AVX2, AVX-512, AMX), not
// for a CPU model it recognises.
//
// Threads. Debian's libdnnl runs its parallel loops on OpenMP (libgomp). advaug keeps the
// parallelism to itself (parallel/threads.hpp): inside advaug's parallel work oneDNN runs on
// the calling thread alone, as BLAS does, so OpenMP's team never competes with advaug's
// workers; only when advaug has one thread (set_num_threads(1)) does oneDNN use OpenMP's
// threads (OMP_NUM_THREADS, else every core). The OpenMP thread count is per thread in
// libgomp, so openmp_single_thread sets it on the calling thread only and restores it; the
// two functions are looked up at run time (libgomp is loaded with libdnnl), so advaug needs
// neither -fopenmp nor a link to libgomp of its own.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#else
#error "advaug: oneDNN not found (Debian: libdnnl-dev); configure with ADVAUG_BACKEND=blas or none"
#endif

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define ADVAUG_OPENMP_LOOKUP 1
#endif

#include "advaug/detail/error.hpp"

namespace advaug::backend {

namespace detail {

/// omp_get_max_threads / omp_set_num_threads of the OpenMP runtime libdnnl loaded (null
/// where there is none: oneDNN built for another threading runtime).
struct openmp_api {
    int (*get_max_threads)() = nullptr;
    void (*set_num_threads)(int) = nullptr;

    static const openmp_api& get() {
        static const openmp_api api = [] {
            openmp_api a;
#ifdef ADVAUG_OPENMP_LOOKUP
            a.get_max_threads =
                reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
            a.set_num_threads =
                reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
            if (a.get_max_threads == nullptr || a.set_num_threads == nullptr) a = openmp_api{};
#endif
            return a;
        }();
        return api;
    }
};

/// While alive, OpenMP regions started by this thread (oneDNN's) run on this thread alone.
class openmp_single_thread {
public:
    openmp_single_thread() {
        const auto& omp = openmp_api::get();
        if (omp.set_num_threads == nullptr) return;
        saved_ = omp.get_max_threads();
        if (saved_ > 1) omp.set_num_threads(1);
    }
    ~openmp_single_thread() {
        if (saved_ > 1) openmp_api::get().set_num_threads(saved_);
    }
    openmp_single_thread(const openmp_single_thread&) = delete;
    openmp_single_thread& operator=(const openmp_single_thread&) = delete;

private:
    int saved_ = 0;
};

}  // namespace detail

/// Sets the number of OpenMP threads that oneDNN's calls from this thread run on (libgomp's
/// count is per thread), as omp_set_num_threads would; for a program that times oneDNN on its
/// own threads. Returns false, changing nothing, where oneDNN runs without OpenMP.
/// throws std::invalid_argument when threads < 1.
inline bool set_onednn_threads(int threads) {
    if (threads < 1) {
        throw std::invalid_argument(advaug::detail::concat(
            "backend::set_onednn_threads(): threads must be at least 1, got ", threads));
    }
    const auto& omp = detail::openmp_api::get();
    if (omp.set_num_threads == nullptr) return false;
    omp.set_num_threads(threads);
    return true;
}

/// C[m x n] = alpha * op(A) * op(B) + beta * C through dnnl_sgemm (row-major), on OpenMP's
/// threads unless called inside an openmp_single_thread scope.
/// throws std::runtime_error when oneDNN refuses the call (it cannot for valid arguments).
inline void onednn_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                        float alpha, const float* a, std::size_t lda, const float* b,
                        std::size_t ldb, float beta, float* c, std::size_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {  // oneDNN rejects lda = 0; C = beta C, ignoring C when beta == 0
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = 0; j < n; ++j)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    const auto d = [](std::size_t v) { return static_cast<dnnl_dim_t>(v); };
    const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', d(m), d(n), d(k),
                                        alpha, a, d(lda), b, d(ldb), beta, c, d(ldc));
    if (st != dnnl_success) {
        throw std::runtime_error(advaug::detail::concat(
            "backend::gemm(): dnnl_sgemm failed with status ", static_cast<int>(st), " for m = ", m,
            ", n = ", n, ", k = ", k, ", lda = ", lda, ", ldb = ", ldb, ", ldc = ", ldc));
    }
}

/// "2.6.3".
inline std::string onednn_version() {
    const dnnl_version_t* v = dnnl_version();
    return advaug::detail::concat(v->major, ".", v->minor, ".", v->patch);
}

/// The most capable instruction set oneDNN dispatches to on this CPU ("avx512_core_amx").
inline std::string onednn_isa() {
    switch (dnnl_get_effective_cpu_isa()) {
        case dnnl_cpu_isa_sse41:
            return "sse41";
        case dnnl_cpu_isa_avx:
            return "avx";
        case dnnl_cpu_isa_avx2:
            return "avx2";
        case dnnl_cpu_isa_avx2_vnni:
            return "avx2_vnni";
        case dnnl_cpu_isa_avx512_mic:
            return "avx512_mic";
        case dnnl_cpu_isa_avx512_mic_4ops:
            return "avx512_mic_4ops";
        case dnnl_cpu_isa_avx512_core:
            return "avx512_core";
        case dnnl_cpu_isa_avx512_core_vnni:
            return "avx512_core_vnni";
        case dnnl_cpu_isa_avx512_core_bf16:
            return "avx512_core_bf16";
        case dnnl_cpu_isa_avx512_core_amx:
            return "avx512_core_amx";
        case dnnl_cpu_isa_all:
            return "all";
        default:
            return "unknown";
    }
}

}  // namespace advaug::backend
