// backend::gemm against a naive triple loop, every transpose combination and odd sizes.
// tests/test_gemm_noblas.cpp runs the same checks on the built-in GEMM.
#include <doctest/doctest.h>

#include "support/gemm_reference.hpp"

TEST_CASE_TEMPLATE("gemm matches the reference for all transposes", T, float, double) {
    advaug::testing::check_gemm_against_reference<T>();
}
