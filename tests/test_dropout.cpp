#include <doctest/doctest.h>

#include <advaug/layers/dropout.hpp>
#include <array>
#include <cmath>
#include <type_traits>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_dropout {

using namespace advaug;

namespace {

template <class T, std::size_t Rank>
tensor<T, Rank> uniform_tensor(const std::array<std::size_t, Rank>& shape, std::uint64_t seed,
                               double lo, double hi) {
    auto x = tensor<T, Rank>::from_shape(shape);
    rng gen(seed);
    for (auto& v : x) v = static_cast<T>(gen.uniform(lo, hi));
    return x;
}

template <class T, std::size_t Rank>
std::size_t zeros(const tensor<T, Rank>& y) {
    std::size_t z = 0;
    for (auto v : y) z += v == T(0);
    return z;
}

}  // namespace

TEST_CASE_TEMPLATE("dropout is the identity in eval mode", T, float, double) {
    dropout<T, 4> layer(0.5, 1);
    layer.set_mode(mode::eval);
    const auto x = uniform_tensor<T, 4>({2, 3, 4, 4}, 1, -1, 1);
    typename dropout<T, 4>::cache_type cache;
    tensor<T, 4> y, dx;
    layer.forward(x, cache, y);
    CHECK(y == x);
    CHECK(cache.calls == 0);
    const auto dy = uniform_tensor<T, 4>({2, 3, 4, 4}, 2, -1, 1);
    layer.backward_input(cache, dy, dx);
    CHECK(dx == dy);
}

TEST_CASE_TEMPLATE("dropout in train mode zeroes a fraction p and scales the rest by 1/(1-p)", T,
                   float, double) {
    for (const double p : {0.1, 0.3, 0.75}) {
        INFO("p = ", p);
        dropout<T> layer(p, 7);
        // 100000 values: the fraction of zeros has a standard deviation below 0.0014.
        const auto x = uniform_tensor<T, 2>({200, 500}, 3, 0.5, 1.5);  // no zeros in x
        typename dropout<T>::cache_type cache;
        tensor<T, 2> y;
        layer.forward(x, cache, y);
        const double fraction = static_cast<double>(zeros(y)) / static_cast<double>(y.size());
        CHECK(std::abs(fraction - p) < 0.01);
        const T scale = static_cast<T>(1.0 / (1.0 - p));
        std::size_t bad = 0;
        double sum_x = 0, sum_y = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const T yi = y.data()[i];
            bad += !(yi == T(0) || yi == x.data()[i] * scale);
            sum_x += x.data()[i];
            sum_y += yi;
        }
        CHECK(bad == 0);
        // inverted dropout keeps the expected value
        CHECK(sum_y / sum_x == doctest::Approx(1.0).epsilon(0.03));
        CHECK(cache.calls == 1);
    }
}

TEST_CASE("dropout with p = 0 is the identity in train mode too") {
    dropout<double> layer(0.0, 1);
    const auto x = uniform_tensor<double, 2>({10, 10}, 4, -1, 1);
    typename dropout<double>::cache_type cache;
    tensor<double, 2> y;
    layer.forward(x, cache, y);
    CHECK(y == x);
}

TEST_CASE("dropout masks are a function of the seed, the cache's stream and its call count") {
    const auto x = uniform_tensor<float, 2>({16, 32}, 5, 0.5, 1.5);
    dropout<float> a(0.5, 42), b(0.5, 42), other_seed(0.5, 43);
    typename dropout<float>::cache_type ca, cb, cc;
    tensor<float, 2> ya1, ya2, yb1, yb2, yc;

    // The same seed and call sequence give the same masks, call after call.
    a.forward(x, ca, ya1);
    a.forward(x, ca, ya2);
    b.forward(x, cb, yb1);
    b.forward(x, cb, yb2);
    CHECK(ya1 == yb1);
    CHECK(ya2 == yb2);
    CHECK(ca.calls == 2);
    // Successive calls on one cache draw new masks.
    CHECK(ya1 != ya2);
    // Another seed, other masks.
    other_seed.forward(x, cc, yc);
    CHECK(yc != ya1);

    // Two fresh caches used in turn start at calls = 0: the same mask ...
    typename dropout<float>::cache_type clean, adversarial;
    tensor<float, 2> y_clean, y_adv;
    a.forward(x, clean, y_clean);
    a.forward(x, adversarial, y_adv);
    CHECK(y_clean == y_adv);
    CHECK(y_clean == ya1);
    // ... unless their owner gives them different streams.
    typename dropout<float>::cache_type separate;
    separate.stream = 1;
    a.forward(x, separate, y_adv);
    CHECK(y_clean != y_adv);

    // Eval-mode passes draw nothing and do not advance the counter.
    typename dropout<float>::cache_type mixed;
    tensor<float, 2> y;
    a.set_mode(mode::eval);
    a.forward(x, mixed, y);
    a.set_mode(mode::train);
    a.forward(x, mixed, y);
    CHECK(y == ya1);
    CHECK(mixed.calls == 1);
}

TEST_CASE_TEMPLATE("dropout's backward pass multiplies by the mask of its forward pass", T, float,
                   double) {
    dropout<T, 4> layer(0.4, 9);
    const auto x = uniform_tensor<T, 4>({2, 2, 5, 5}, 6, 0.5, 1.5);
    const auto dy = uniform_tensor<T, 4>({2, 2, 5, 5}, 7, -1, 1);
    typename dropout<T, 4>::cache_type cache;
    tensor<T, 4> y, dx;
    layer.forward(x, cache, y);
    // Switching to eval mode after the forward pass does not change what backward does.
    layer.set_mode(mode::eval);
    layer.backward_input(cache, dy, dx);
    const T scale = static_cast<T>(1.0 / 0.6);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < dy.size(); ++i) {
        const T expected = y.data()[i] == T(0) ? T(0) : dy.data()[i] * scale;
        bad += dx.data()[i] != expected;
    }
    CHECK(bad == 0);
    CHECK(zeros(dx) > 0);
    CHECK(zeros(dx) < dx.size());
}

TEST_CASE_TEMPLATE("dropout passes the finite-difference check in train mode", T, float, double) {
    // The checker runs the analytic pass on a fresh cache and each probe forward pass on
    // another fresh cache: all start at calls = 0 and draw the same mask, so the checker
    // differentiates one fixed linear map, x -> mask * x, as it should.
    const auto opts = gradient_check_options().step(std::is_same_v<T, double> ? 1e-6 : 1e-2);
    const double tol = std::is_same_v<T, double> ? 1e-6 : 1e-2;
    dropout<T> layer(0.5, 11);
    const auto x = uniform_tensor<T, 2>({6, 7}, 8, -1, 1);
    const auto in = check_layer_input_gradient(layer, x, opts);
    CHECK(in.checked == 42);
    CHECK(in.analytic_norm > 0.1);
    CHECK(in.relative_error < tol);
    const auto par = check_layer_parameter_gradient(layer, x, opts);
    CHECK(par.checked == 0);  // no parameters
    CHECK(layer.parameters().empty());
}

TEST_CASE("dropout refuses bad probabilities and mismatched gradients") {
    CHECK_THROWS_WITH_AS(dropout<float>(1.0, 0), "dropout(): p must be in [0, 1), got 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(dropout<float>(-0.25, 0), "dropout(): p must be in [0, 1), got -0.25",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(dropout<float>(std::nan(""), 0), "dropout(): p must be in [0, 1), got nan",
                         std::invalid_argument);
    dropout<float> layer(0.5, 0);
    CHECK(layer.p() == 0.5);
    CHECK(layer.seed() == 0);
    CHECK(layer.describe() == "dropout(p = 0.5)");
    CHECK(dropout<float>(0.3, 0).describe() == "dropout(p = 0.3)");
    typename dropout<float>::cache_type cache;
    tensor<float, 2> y, dx;
    CHECK_THROWS_WITH_AS(layer.backward_input(cache, tensor<float, 2>::from_shape({2, 3}), dx),
                         "dropout::backward_input(): the cache was not filled by forward()",
                         std::invalid_argument);
    layer.forward(tensor<float, 2>::from_shape({2, 3}), cache, y);
    CHECK_THROWS_WITH_AS(layer.backward_input(cache, tensor<float, 2>::from_shape({3, 2}), dx),
                         "dropout::backward_input(): the output gradient has shape [3, 2], the "
                         "layer's output is [2, 3]",
                         std::invalid_argument);
}

}  // namespace test_dropout
