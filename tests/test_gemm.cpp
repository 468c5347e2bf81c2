// backend::gemm and every kernel library this build links, each against a naive triple loop
// (every transpose combination, odd sizes, padded leading dimensions), and against each other
// on one thread and on several. tests/test_gemm_noblas.cpp runs the checks on the loop alone.
#include <doctest/doctest.h>

#include <advaug/parallel/threads.hpp>

#include "support/gemm_reference.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_gemm {

namespace {

struct thread_count_guard {
    std::size_t saved = advaug::num_threads();
    ~thread_count_guard() { advaug::set_num_threads(saved); }
};

}  // namespace

TEST_CASE_TEMPLATE("gemm matches the reference for all transposes", T, float, double) {
    advaug::testing::check_gemm_against_reference<T>();
}

TEST_CASE_TEMPLATE("gemm matches the reference on one thread and on three", T, float, double) {
    thread_count_guard guard;
    for (std::size_t threads : {1, 3}) {
        CAPTURE(threads);
        advaug::set_num_threads(threads);
        advaug::testing::check_gemm_against_reference<T>();
    }
}

TEST_CASE_TEMPLATE("advaug's loop matches the reference", T, float, double) {
    advaug::testing::check_gemm_kernel<T>(
        [](auto... args) { advaug::backend::loop_gemm<T>(args...); });
}

#ifndef ADVAUG_NO_BLAS
TEST_CASE_TEMPLATE("the BLAS matches the reference", T, float, double) {
    advaug::testing::check_gemm_kernel<T>(
        [](auto... args) { advaug::backend::blas_gemm<T>(args...); });
}
#endif

#ifdef ADVAUG_BACKEND_ONEDNN
TEST_CASE("oneDNN matches the reference, on its own threads and inside advaug's") {
    advaug::testing::check_gemm_kernel<float>(
        [](auto... args) { advaug::backend::onednn_gemm(args...); });
    advaug::backend::detail::openmp_single_thread one;
    advaug::testing::check_gemm_kernel<float>(
        [](auto... args) { advaug::backend::onednn_gemm(args...); });
}

TEST_CASE("openmp_single_thread sets OpenMP's thread count on this thread and restores it") {
    const auto& omp = advaug::backend::detail::openmp_api::get();
    const bool found = omp.get_max_threads != nullptr;
    REQUIRE_MESSAGE(found, "libdnnl loads an OpenMP runtime (libgomp)");
    const int before = omp.get_max_threads();
    omp.set_num_threads(3);
    {
        advaug::backend::detail::openmp_single_thread one;
        CHECK(omp.get_max_threads() == 1);
    }
    CHECK(omp.get_max_threads() == 3);
    omp.set_num_threads(before);
}

TEST_CASE("set_onednn_threads sets OpenMP's count on this thread and refuses fewer than one") {
    const auto& omp = advaug::backend::detail::openmp_api::get();
    const bool found = omp.get_max_threads != nullptr;
    REQUIRE_MESSAGE(found, "libdnnl loads an OpenMP runtime (libgomp)");
    const int before = omp.get_max_threads();
    CHECK(advaug::backend::set_onednn_threads(before == 2 ? 3 : 2));
    CHECK(omp.get_max_threads() == (before == 2 ? 3 : 2));
    CHECK_THROWS_WITH(advaug::backend::set_onednn_threads(0),
                      "backend::set_onednn_threads(): threads must be at least 1, got 0");
    CHECK(omp.get_max_threads() == (before == 2 ? 3 : 2));
    advaug::backend::set_onednn_threads(before);
}

TEST_CASE("oneDNN, BLAS and the loop agree on the layers' shapes") {
    // The dense layers' and the CNN's GEMMs, each kernel against the loop in float.
    advaug::rng gen(7);
    for (const auto& shape : {std::array<std::size_t, 3>{128, 256, 784},
                              {64, 196, 288},
                              {288, 196, 64},
                              {64, 288, 196}}) {
        // Not a structured binding: clang before 16 cannot capture one (CHECK and CAPTURE do).
        const std::size_t m = shape[0], n = shape[1], k = shape[2];
        std::vector<float> a(m * k), b(k * n), c_loop(m * n), c_dnnl(m * n), c_blas(m * n);
        for (auto& v : a) v = static_cast<float>(gen.uniform(-1, 1));
        for (auto& v : b) v = static_cast<float>(gen.uniform(-1, 1));
        advaug::backend::loop_gemm<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n,
                                          0.0f, c_loop.data(), n);
        advaug::backend::onednn_gemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
                                     c_dnnl.data(), n);
#ifndef ADVAUG_NO_BLAS
        advaug::backend::blas_gemm<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n,
                                          0.0f, c_blas.data(), n);
#else
        c_blas = c_loop;
#endif
        double worst = 0;
        for (std::size_t i = 0; i < m * n; ++i) {
            worst = std::max({worst, std::abs(double(c_dnnl[i]) - c_loop[i]),
                              std::abs(double(c_blas[i]) - c_loop[i])});
        }
        CHECK_MESSAGE(worst <= 1e-5 * k, "m=", m, " n=", n, " k=", k, " worst=", worst);
    }
}
#endif

}  // namespace test_gemm
