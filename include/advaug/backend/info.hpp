// What runs advaug's kernels: the backend chosen at configure time (ADVAUG_BACKEND), its
// version and the instruction set it dispatched to, for the benchmark header,
// `advaug-eval --version` and the trainer's first line.
//
//   std::cout << advaug::backend::describe().summary() << '\n';
//   // oneDNN 2.6.3 (avx512_core_amx); double: OpenBLAS 0.3.21 (Prescott)
//
// With the BLAS backend, warn_once_about_slow_kernels() prints one warning when OpenBLAS runs
// a kernel without AVX2 (its generic Prescott kernel, for a CPU model it does not know) on a
// CPU that has AVX2 or AVX-512; backend::gemm calls it on first use.
#pragma once

#include <array>
#include <iostream>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>

#include "advaug/backend/cpu.hpp"
#include "advaug/detail/error.hpp"

#ifndef ADVAUG_NO_BLAS
#include "advaug/backend/blas.hpp"
#endif
#ifdef ADVAUG_BACKEND_ONEDNN
#include "advaug/backend/onednn.hpp"
#endif

namespace advaug::backend {

/// One kernel library, as it describes itself.
struct kernel_library {
    std::string name;     ///< "oneDNN", "OpenBLAS", "BLAS" (another CBLAS), "advaug loop"
    std::string version;  ///< "2.6.3", "0.3.21"; empty when the library does not say
    std::string isa;      ///< oneDNN's instruction set, OpenBLAS's kernel; empty if unknown

    /// "oneDNN 2.6.3 (avx512_core_amx)".
    std::string summary() const {
        std::string s = name;
        if (!version.empty()) s += " " + version;
        if (!isa.empty()) s += " (" + isa + ")";
        return s;
    }
};

/// The backend of this build: which library multiplies float and double matrices.
struct backend_info {
    std::string backend;  ///< "onednn", "blas" or "none": the ADVAUG_BACKEND it was built with
    kernel_library float_gemm;
    kernel_library double_gemm;
    std::string blas_config;  ///< openblas_get_config(), when OpenBLAS is linked
    std::string warning;      ///< non-empty when the kernels run far below what the CPU can do

    /// "oneDNN 2.6.3 (avx512_core_amx); double: OpenBLAS 0.3.21 (Prescott)", or one library
    /// when both precisions use it.
    std::string summary() const {
        const std::string f = float_gemm.summary(), d = double_gemm.summary();
        return f == d ? f : f + "; double: " + d;
    }
};

/// True for the OpenBLAS x86 kernels without AVX2 (core names as openblas_get_corename()
/// returns them, any case).
inline bool openblas_kernel_lacks_avx2(std::string_view core) {
    static constexpr std::array<std::string_view, 17> old_kernels{
        "generic",      "prescott",   "katmai",  "coppermine", "northwood",   "core2",
        "penryn",       "dunnington", "nehalem", "atom",       "sandybridge", "opteron",
        "opteron_sse3", "barcelona",  "bobcat",  "bulldozer",  "unknown"};
    std::string lower(core);
    for (auto& ch : lower) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    for (auto k : old_kernels)
        if (lower == k) return true;
    return false;
}

/// The warning for OpenBLAS kernel `core` on a CPU with `cpu`, or "" when there is nothing to
/// say (a kernel that uses AVX2, a CPU without it, or not OpenBLAS: core empty).
inline std::string slow_blas_warning(std::string_view core, cpu_features cpu) {
    if (core.empty() || !(cpu.avx2 || cpu.avx512f) || !openblas_kernel_lacks_avx2(core)) return {};
    return advaug::detail::concat(
        "advaug: warning: OpenBLAS runs its ", core, " kernel, which has no AVX2, on a CPU with ",
        cpu.avx512f ? "AVX-512" : "AVX2",
        ": its GEMMs run 2 to 3 times below what this CPU can do. Configure advaug with "
        "ADVAUG_BACKEND=onednn, or set OPENBLAS_CORETYPE=",
        cpu.avx512f ? "SkylakeX" : "Haswell", " (docs/design.md, \"Kernel backends\")");
}

/// The backend of this build, asked of the libraries at run time.
inline backend_info describe() {
    backend_info info;
    kernel_library loop{"advaug loop", "", ""};
#ifndef ADVAUG_NO_BLAS
    const blas_identity blas = identify_blas();
    kernel_library blas_lib{"BLAS", "", ""};
    if (!blas.config.empty()) {
        blas_lib.name = "OpenBLAS";
        // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...": the version is the second word.
        std::istringstream words(blas.config);
        std::string first, second;
        if (words >> first >> second && first == "OpenBLAS") blas_lib.version = second;
        blas_lib.isa = blas.core;
        info.blas_config = blas.config;
    }
    info.double_gemm = blas_lib;
#else
    info.double_gemm = loop;
#endif
#ifdef ADVAUG_BACKEND_ONEDNN
    info.backend = "onednn";
    info.float_gemm = {"oneDNN", onednn_version(), onednn_isa()};
#elif !defined(ADVAUG_NO_BLAS)
    info.backend = "blas";
    info.float_gemm = blas_lib;
    info.warning = slow_blas_warning(blas.core, host_cpu());
#else
    info.backend = "none";
    info.float_gemm = loop;
#endif
    return info;
}

namespace detail {

/// Prints warning() (a callable returning the text) to `os` on the first call with `flag`, if
/// the text is not empty; later calls with the same flag do nothing.
template <class Warning>
void warn_once(std::once_flag& flag, std::ostream& os, const Warning& warning) {
    std::call_once(flag, [&] {
        const std::string w = warning();
        if (!w.empty()) os << w << '\n' << std::flush;
    });
}

}  // namespace detail

/// Prints describe().warning to `os` the first time it is called in the program, if there is
/// one; later calls do nothing.
inline void warn_once_about_slow_kernels(std::ostream& os = std::cerr) {
    static std::once_flag once;
    detail::warn_once(once, os, [] { return describe().warning; });
}

}  // namespace advaug::backend
