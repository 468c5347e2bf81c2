// backend/info.hpp: what this build says about its kernel backend, and the warning about
// OpenBLAS's slow kernels, with injected core names so that it does not depend on this CPU.
#include <doctest/doctest.h>

#include <advaug/backend/gemm.hpp>
#include <advaug/backend/info.hpp>
#include <sstream>
#include <string>

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_backend_info {

using advaug::backend::cpu_features;
using advaug::backend::slow_blas_warning;

TEST_CASE("describe() names the backend, its libraries and versions") {
    // A product first, so that the kernel libraries are linked and loaded as in any program.
    float a = 2, b = 3, c = 0;
    advaug::backend::gemm<float>(false, false, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    double x = 2, y = 3, z = 0;
    advaug::backend::gemm<double>(false, false, 1, 1, 1, 1.0, &x, 1, &y, 1, 0.0, &z, 1);
    REQUIRE(c == 6.0f);
    REQUIRE(z == 6.0);
    const auto info = advaug::backend::describe();
#ifdef ADVAUG_TEST_EXPECTED_BACKEND
    CHECK(info.backend == ADVAUG_TEST_EXPECTED_BACKEND);
#endif
    CHECK(!info.backend.empty());
    CHECK(!info.float_gemm.name.empty());
    CHECK(!info.double_gemm.name.empty());
    CHECK(info.summary().find(info.float_gemm.name) == 0);
#ifdef ADVAUG_BACKEND_ONEDNN
    CHECK(info.backend == "onednn");
    CHECK(info.float_gemm.name == "oneDNN");
    CHECK(info.float_gemm.version.find('.') != std::string::npos);
    CHECK(!info.float_gemm.isa.empty());
    CHECK(info.float_gemm.isa != "unknown");
    CHECK(info.warning.empty());
#elif !defined(ADVAUG_NO_BLAS)
    CHECK(info.backend == "blas");
    if (!info.blas_config.empty()) {  // OpenBLAS
        CHECK(info.float_gemm.name == "OpenBLAS");
        CHECK(info.float_gemm.version.find('.') != std::string::npos);
        CHECK(!info.float_gemm.isa.empty());
    }
#else
    CHECK(info.backend == "none");
    CHECK(info.summary() == "advaug loop");
#endif
}

TEST_CASE("summary() names the double GEMM only when it is another library") {
    advaug::backend::backend_info info;
    info.float_gemm = {"oneDNN", "2.6.3", "avx512_core_amx"};
    info.double_gemm = {"OpenBLAS", "0.3.21", "Prescott"};
    CHECK(info.summary() == "oneDNN 2.6.3 (avx512_core_amx); double: OpenBLAS 0.3.21 (Prescott)");
    info.double_gemm = info.float_gemm;
    CHECK(info.summary() == "oneDNN 2.6.3 (avx512_core_amx)");
    info.float_gemm = info.double_gemm = {"advaug loop", "", ""};
    CHECK(info.summary() == "advaug loop");
}

TEST_CASE("OpenBLAS's kernels without AVX2 are warned about on a CPU with AVX2 or AVX-512") {
    const cpu_features avx512{true, true}, avx2{true, false}, sse{false, false};
    const std::string w = slow_blas_warning("Prescott", avx512);
    CHECK(w.find("Prescott") != std::string::npos);
    CHECK(w.find("AVX-512") != std::string::npos);
    CHECK(w.find("ADVAUG_BACKEND=onednn") != std::string::npos);
    CHECK(w.find("OPENBLAS_CORETYPE=SkylakeX") != std::string::npos);
    CHECK(slow_blas_warning("Core2", avx2).find("AVX2") != std::string::npos);
    CHECK(slow_blas_warning("Core2", avx2).find("OPENBLAS_CORETYPE=Haswell") != std::string::npos);
    CHECK(!slow_blas_warning("PRESCOTT", avx512).empty());
    CHECK(!slow_blas_warning("Sandybridge", avx2).empty());  // AVX, but no AVX2 or FMA
    // kernels that use the CPU
    for (const char* core : {"Haswell", "SkylakeX", "Cooperlake", "SapphireRapids", "Zen"}) {
        CAPTURE(core);
        CHECK(slow_blas_warning(core, avx512).empty());
    }
    // a CPU without AVX2 gains nothing from another kernel; not OpenBLAS: no core name
    CHECK(slow_blas_warning("Prescott", sse).empty());
    CHECK(slow_blas_warning("", avx512).empty());
}

TEST_CASE("the warning is printed once, and nothing when there is none") {
    std::once_flag flag;
    std::ostringstream out;
    int asked = 0;
    const auto warning = [&] {
        ++asked;
        return slow_blas_warning("Prescott", cpu_features{true, true});
    };
    advaug::backend::detail::warn_once(flag, out, warning);
    advaug::backend::detail::warn_once(flag, out, warning);
    CHECK(asked == 1);
    CHECK(out.str() == slow_blas_warning("Prescott", cpu_features{true, true}) + "\n");

    std::once_flag quiet_flag;
    std::ostringstream quiet;
    advaug::backend::detail::warn_once(quiet_flag, quiet, [] { return std::string(); });
    CHECK(quiet.str().empty());
}

}  // namespace test_backend_info
