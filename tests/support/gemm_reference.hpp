#pragma once

#include <doctest/doctest.h>

#include <advaug/backend/gemm.hpp>
#include <advaug/detail/random.hpp>

#include <array>
#include <cmath>
#include <vector>

namespace advaug::testing {

template <class T>
void check_gemm_against_reference() {
    rng gen(1);
    // sizes straddle the built-in GEMM's blocks (256 along k, 512 along n)
    for (auto [m, n, k] : {std::array<std::size_t, 3>{1, 1, 1}, {7, 5, 3}, {33, 517, 260}, {4, 3, 0}}) {
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                std::vector<T> a(m * k), b(k * n), c(m * n), ref(m * n);
                for (auto& v : a) v = static_cast<T>(gen.uniform(-1, 1));
                for (auto& v : b) v = static_cast<T>(gen.uniform(-1, 1));
                for (auto& v : c) v = static_cast<T>(gen.uniform(-1, 1));
                const T alpha = T(0.5), beta = T(2);
                for (std::size_t i = 0; i < m; ++i)
                    for (std::size_t j = 0; j < n; ++j) {
                        double s = 0;
                        for (std::size_t p = 0; p < k; ++p) {
                            const T av = ta ? a[p * m + i] : a[i * k + p];
                            const T bv = tb ? b[j * k + p] : b[p * n + j];
                            s += static_cast<double>(av) * static_cast<double>(bv);
                        }
                        ref[i * n + j] = static_cast<T>(alpha * s + beta * c[i * n + j]);
                    }
                backend::gemm<T>(ta, tb, m, n, k, alpha, a.data(), ta ? m : k, b.data(), tb ? k : n,
                                beta, c.data(), n);
                const double tol = std::is_same_v<T, float> ? 1e-4 * (1.0 + k) : 1e-12 * (1.0 + k);
                double worst = 0;
                for (std::size_t i = 0; i < m * n; ++i) worst = std::max(worst, std::abs(double(c[i] - ref[i])));
                CHECK_MESSAGE(worst <= tol, "m=", m, " n=", n, " k=", k, " ta=", ta, " tb=", tb);
            }
        }
    }
    // beta = 0 ignores what C held, even NaN
    std::vector<T> a{1, 2}, b{3, 4}, c{std::nan("")};
    backend::gemm<T>(false, false, 1, 1, 2, T(1), a.data(), 2, b.data(), 1, T(0), c.data(), 1);
    CHECK(c[0] == T(11));
}

}  // namespace advaug::testing
