// The built-in blocked GEMM used with ADVAUG_NO_BLAS (this file's own executable).
#define ADVAUG_NO_BLAS
#include <doctest/doctest.h>

#include "support/gemm_reference.hpp"

TEST_CASE_TEMPLATE("the built-in gemm matches the reference for all transposes", T, float, double) {
    advaug::testing::check_gemm_against_reference<T>();
}
