// The Jensen-Shannon consistency loss (loss/jensen_shannon.hpp).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <span>
#include <stdexcept>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_jensen_shannon {

using namespace advaug;

namespace {

template <class T>
using views3 = std::array<const tensor<T, 2>*, 3>;

// JS written out from its definition: the entropy of the mixture minus the mean entropy.
double js_by_entropies(const std::vector<tensor<double, 2>>& logits) {
    const std::size_t n = logits[0].shape()[0], c = logits[0].shape()[1], k = logits.size();
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<double> mixture(c, 0.0);
        double mean_entropy = 0;
        for (const auto& z : logits) {
            double s = 0;
            for (std::size_t j = 0; j < c; ++j) s += std::exp(z(i, j));
            for (std::size_t j = 0; j < c; ++j) {
                const double p = std::exp(z(i, j)) / s;
                mixture[j] += p / static_cast<double>(k);
                mean_entropy -= p * std::log(p) / static_cast<double>(k);
            }
        }
        double h = 0;
        for (double m : mixture) h -= m * std::log(m);
        total += h - mean_entropy;
    }
    return total / static_cast<double>(n);
}

}  // namespace

TEST_CASE("jensen_shannon equals the mixture's entropy minus the views' mean entropy") {
    const std::vector<tensor<double, 2>> z = {{{1, 2, 0.5, -1}, {0, 0, 0, 3}},
                                              {{0.2, -1, 2, 0}, {1, 1, -2, 0}},
                                              {{3, 0, 0, 0}, {-1, 0.5, 0.5, 2}}};
    const views3<double> v{&z[0], &z[1], &z[2]};
    CHECK(jensen_shannon<double>(v) == doctest::Approx(js_by_entropies(z)).epsilon(1e-12));
    // two views
    const std::array<const tensor<double, 2>*, 2> two{&z[0], &z[2]};
    CHECK(jensen_shannon<double>(two) == doctest::Approx(js_by_entropies({z[0], z[2]})).epsilon(1e-12));
}

TEST_CASE_TEMPLATE("jensen_shannon is 0 for equal views, symmetric in their order, at most log k, and finite "
                   "however confident",
                   T, float, double) {
    const tensor<T, 2> a = {{1, 2, 3}, {0, 0, 0}}, b = {{3, 2, 1}, {5, -5, 0}}, c = {{0, 0, 9}, {1, 0, 0}};
    CHECK(jensen_shannon<T>(views3<T>{&a, &a, &a}) == doctest::Approx(0).epsilon(1e-6));
    const T abc = jensen_shannon<T>(views3<T>{&a, &b, &c});
    CHECK(abc > 0);
    CHECK(jensen_shannon<T>(views3<T>{&c, &a, &b}) == doctest::Approx(abc).epsilon(1e-6));
    const tensor<T, 2> x = {{1000, -1000, 0}}, y = {{-1000, 1000, 0}}, z = {{0, -1000, 1000}};
    const T extreme = jensen_shannon<T>(views3<T>{&x, &y, &z});
    CHECK(std::isfinite(extreme));
    CHECK(extreme == doctest::Approx(std::log(3.0)).epsilon(1e-5));  // disjoint certainties
    CHECK(extreme <= std::log(3.0) + 1e-6);
}

TEST_CASE("jensen_shannon_gradient adds scale times the finite-difference gradient into every view's dlogits") {
    std::vector<tensor<double, 2>> z = {{{1, 2, 0.5, -1}, {0, 0, 0, 3}, {2, -2, 1, 1}},
                                        {{0.2, -1, 2, 0}, {1, 1, -2, 0}, {0, 0, 0, 0}},
                                        {{3, 0, 0, 0}, {-1, 0.5, 0.5, 2}, {5, 4, -3, 1}}};
    std::vector<tensor<double, 2>> g(3, tensor<double, 2>({3, 4}, 0.25));  // added to, not overwritten
    const views3<double> v{&z[0], &z[1], &z[2]};
    const std::array<tensor<double, 2>*, 3> gv{&g[0], &g[1], &g[2]};
    const double scale = 12;
    const double loss = jensen_shannon_gradient<double>(v, gv, scale);
    CHECK(loss == doctest::Approx(js_by_entropies(z)).epsilon(1e-12));
    detail::fd_accumulator acc;
    auto objective = [&] { return scale * jensen_shannon<double>(v); };
    for (std::size_t w = 0; w < 3; ++w) {
        std::vector<double> analytic;
        for (double e : g[w]) analytic.push_back(e - 0.25);
        detail::compare_finite_differences(acc, z[w].data(), z[w].size(), analytic, objective,
                                           gradient_check_options{}, w * 12);
    }
    const auto r = acc.finish();
    CHECK(r.checked == 36);
    CHECK(r.relative_error < 1e-7);
    // each view's gradient row sums to 0 (softmax's Jacobian)
    for (std::size_t w = 0; w < 3; ++w) {
        for (std::size_t i = 0; i < 3; ++i) {
            double s = 0;
            for (std::size_t j = 0; j < 4; ++j) s += g[w](i, j) - 0.25;
            CHECK(s == doctest::Approx(0).epsilon(1e-12));
        }
    }
}

TEST_CASE("jensen_shannon refuses one view, different shapes, and dlogits of the wrong shape") {
    const tensor<double, 2> a = {{1, 2}}, b = {{1, 2, 3}};
    const std::array<const tensor<double, 2>*, 1> one{&a};
    CHECK_THROWS_WITH_AS(jensen_shannon<double>(one), "jensen_shannon(): needs at least 2 views, got 1",
                         std::invalid_argument);
    const std::array<const tensor<double, 2>*, 2> mixed{&a, &b};
    CHECK_THROWS_WITH_AS(jensen_shannon<double>(mixed),
                         "jensen_shannon(): view 1 has logits of shape [1, 3], view 0 has [1, 2]",
                         std::invalid_argument);
    tensor<double, 2> g0({1, 2}, 0.0), g1;
    const std::array<const tensor<double, 2>*, 2> same{&a, &a};
    const std::array<tensor<double, 2>*, 2> g{&g0, &g1};
    CHECK_THROWS_WITH_AS(jensen_shannon_gradient<double>(same, g),
                         "jensen_shannon_gradient(): dlogits of view 1 must have the logits' shape [1, 2]",
                         std::invalid_argument);
}

}  // namespace test_jensen_shannon
