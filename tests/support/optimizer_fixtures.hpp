// Shared by the optimizer tests: a heap-allocation counter and a quadratic to minimize.
// Include it from one translation unit per executable (it replaces the global operator new).
#pragma once

#include <doctest/doctest.h>

#include <advaug/io/binary.hpp>
#include <advaug/optim/adam.hpp>
#include <advaug/optim/optimizer.hpp>
#include <advaug/optim/sgd.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

// Counts heap allocations, so a test can check that step() allocates nothing after the first.
// GCC flags the malloc/free pair behind operator new/delete once they are inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace advaug::testing {
inline std::size_t allocations = 0;
}
void* operator new(std::size_t n) {
    ++advaug::testing::allocations;
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace advaug::testing {

/// f(w) = 0.5 * ||w - target||^2 over two parameters, "weight" (n1) and "bias" (n2);
/// grad = w - target. Each w moves away from 0 towards its target, so relative comparisons
/// stay meaningful.
template <class T>
struct quadratic {
    std::vector<T> w1, w2, g1, g2;
    std::vector<double> t1, t2;

    explicit quadratic(std::size_t n1 = 6, std::size_t n2 = 3) : g1(n1), g2(n2) {
        for (std::size_t i = 0; i < n1; ++i) {
            w1.push_back(static_cast<T>(1.0 + 0.25 * double(i)));
            t1.push_back(3.0 + 0.1 * double(i));
        }
        for (std::size_t i = 0; i < n2; ++i) {
            w2.push_back(static_cast<T>(-2.0 + 0.5 * double(i)));
            t2.push_back(-3.5 - 0.2 * double(i));
        }
    }
    void gradient() {
        for (std::size_t i = 0; i < w1.size(); ++i) g1[i] = static_cast<T>(w1[i] - t1[i]);
        for (std::size_t i = 0; i < w2.size(); ++i) g2[i] = static_cast<T>(w2[i] - t2[i]);
    }
    std::vector<parameter_view<T>> params() {
        return {{"weight", {w1.size()}, w1, g1}, {"bias", {w2.size()}, w2, g2}};
    }
    std::vector<double> values() const {
        std::vector<double> v(w1.begin(), w1.end());
        v.insert(v.end(), w2.begin(), w2.end());
        return v;
    }
    std::vector<double> targets() const {
        std::vector<double> v = t1;
        v.insert(v.end(), t2.begin(), t2.end());
        return v;
    }
};

/// Every element within `rel` (relative) of the reference.
void check_close(const std::vector<double>& got, const std::vector<double>& want, double rel) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO("element ", i, ": got ", got[i], ", want ", want[i]);
        CHECK(std::abs(got[i] - want[i]) <= rel * std::abs(want[i]));
    }
}

template <class O>
std::vector<std::uint8_t> saved(const O& opt) {
    advaug::io::binary_writer out;
    opt.save_state(out);
    return out.bytes();
}

template <class O, class T>
void load(O& opt, const std::vector<std::uint8_t>& bytes,
          const std::vector<advaug::parameter_view<T>>& params) {
    advaug::io::binary_reader in(bytes.data(), bytes.size(), "optimizer state");
    opt.load_state(in, params);
}

}  // namespace advaug::testing
