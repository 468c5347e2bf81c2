// backend::gemm built as ADVAUG_BACKEND=none builds it (advaug::advaug_noblas: the loop for
// both precisions), in its own executable.
#include <doctest/doctest.h>

#include "support/gemm_reference.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_gemm_noblas {

#ifndef ADVAUG_NO_BLAS
#error "test_gemm_noblas links advaug::advaug_noblas, which defines ADVAUG_NO_BLAS"
#endif

TEST_CASE_TEMPLATE("the built-in gemm matches the reference for all transposes", T, float, double) {
    CHECK(advaug::backend::describe().backend == "none");
    advaug::testing::check_gemm_against_reference<T>();
}

}  // namespace test_gemm_noblas
