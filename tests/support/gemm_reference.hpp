#pragma once

#include <doctest/doctest.h>

#include <advaug/backend/gemm.hpp>
#include <advaug/detail/random.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

namespace advaug::testing {

/// Checks gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) against a triple loop in
/// double, for every transpose combination, sizes that straddle the kernels' blocks (the
/// loop's 256 along k and 512 along n, vector widths of 8 and 16), and leading dimensions
/// larger than the rows (views into a bigger matrix). Tolerance: float rounding of a k-term
/// sum.
template <class T, class Gemm>
void check_gemm_kernel(Gemm gemm) {
    rng gen(1);
    for (const auto& shape : {std::array<std::size_t, 3>{1, 1, 1},
                              {7, 5, 3},
                              {17, 33, 9},
                              {33, 517, 260},
                              {128, 256, 784},
                              {4, 3, 0}}) {
        // Not a structured binding: clang before 16 cannot capture one (CHECK and CAPTURE do).
        const std::size_t m = shape[0], n = shape[1], k = shape[2];
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                for (std::size_t pad : {std::size_t(0), std::size_t(3)}) {
                    const std::size_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad,
                                      ldc = n + pad;
                    std::vector<T> a((ta ? k : m) * lda), b((tb ? n : k) * ldb), c(m * ldc);
                    for (auto& v : a) v = static_cast<T>(gen.uniform(-1, 1));
                    for (auto& v : b) v = static_cast<T>(gen.uniform(-1, 1));
                    for (auto& v : c) v = static_cast<T>(gen.uniform(-1, 1));
                    std::vector<T> ref = c;
                    const T alpha = T(0.5), beta = T(2);
                    for (std::size_t i = 0; i < m; ++i)
                        for (std::size_t j = 0; j < n; ++j) {
                            double s = 0;
                            for (std::size_t p = 0; p < k; ++p) {
                                const T av = ta ? a[p * lda + i] : a[i * lda + p];
                                const T bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                                s += static_cast<double>(av) * static_cast<double>(bv);
                            }
                            ref[i * ldc + j] = static_cast<T>(alpha * s + beta * c[i * ldc + j]);
                        }
                    gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
                    const double tol =
                        std::is_same_v<T, float> ? 1e-5 * (8.0 + k) : 1e-13 * (8.0 + k);
                    double worst = 0;
                    for (std::size_t i = 0; i < m; ++i)
                        for (std::size_t j = 0; j < ldc; ++j) {
                            // ref holds C's padding columns unchanged: gemm must not touch them
                            worst = std::max(
                                worst, std::abs(double(c[i * ldc + j]) - double(ref[i * ldc + j])));
                        }
                    CHECK_MESSAGE(worst <= tol, "m=", m, " n=", n, " k=", k, " ta=", ta, " tb=", tb,
                                  " pad=", pad, " worst=", worst);
                }
            }
        }
    }
    // A NaN or infinity in B reaches C through a zero in A, as IEEE arithmetic says
    for (bool tb : {false, true}) {
        std::vector<T> za{0, 0}, nb{T(std::nan("")), 1, 1, 1}, zc{5, 5};
        gemm(false, tb, 1, 2, 2, T(1), za.data(), 2, nb.data(), 2, T(0), zc.data(), 2);
        CHECK_MESSAGE(std::isnan(zc[0]), "tb=", tb);
        CHECK(zc[1] == T(0));
    }
    // beta = 0 ignores what C held, even NaN; also with k = 0
    std::vector<T> a{1, 2}, b{3, 4}, c{T(std::nan(""))};
    gemm(false, false, 1, 1, 2, T(1), a.data(), 2, b.data(), 1, T(0), c.data(), 1);
    CHECK(c[0] == T(11));
    c[0] = std::nan("");
    gemm(false, false, 1, 1, 0, T(1), a.data(), 1, b.data(), 1, T(0), c.data(), 1);
    CHECK(c[0] == T(0));
}

/// backend::gemm, the entry point the layers use, against the reference.
template <class T>
void check_gemm_against_reference() {
    check_gemm_kernel<T>([](auto... args) { backend::gemm<T>(args...); });
}

}  // namespace advaug::testing
