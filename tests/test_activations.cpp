#include <doctest/doctest.h>

#include <advaug/gradcheck/gradient_check.hpp>
#include <advaug/layers/activations.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_activations {

using namespace advaug;

namespace {

/// Uniform values in [-2, 2] at least 0.1 away from 0 (the kink of leaky ReLU).
template <class T, std::size_t N>
tensor<T, N> away_from_zero(std::array<std::size_t, N> shape, std::uint64_t seed) {
    auto x = tensor<T, N>::from_shape(shape);
    rng gen(seed);
    for (auto& v : x)
        v = static_cast<T>(gen.uniform() < 0.5 ? gen.uniform(-2, -0.1) : gen.uniform(0.1, 2));
    return x;
}

}  // namespace

TEST_CASE_TEMPLATE("relu forward and its gradient check, rank 2 and rank 4", T, float, double) {
    const auto opts = gradient_check_options().step(std::is_same_v<T, double> ? 1e-6 : 1e-3);
    const double tol = std::is_same_v<T, double> ? 1e-6 : 1e-3;
    // inputs away from the kink at 0, where finite differences are meaningless
    const auto x = away_from_zero<T, 2>({5, 6}, 4);
    relu<T, 2> layer;
    typename relu<T, 2>::cache_type c;
    tensor<T, 2> y;
    layer.forward(x, c, y);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(y.data()[i] == std::max(x.data()[i], T(0)));
    CHECK(check_layer_input_gradient(layer, x, opts).relative_error < tol);

    const auto x4 = away_from_zero<T, 4>({2, 3, 2, 2}, 3);
    relu<T, 4> layer4;
    const auto r = check_layer_input_gradient(layer4, x4, opts);
    CHECK(r.checked == 24);
    CHECK(r.relative_error < tol);
    CHECK(layer4.parameters().empty());
    CHECK(layer4.describe() == "relu");
}

TEST_CASE("relu: in place, and a wrong output gradient is refused") {
    auto x = away_from_zero<float, 2>({3, 4}, 5);
    const auto expected = x;
    relu<float, 2> layer;
    typename relu<float, 2>::cache_type c;
    layer.forward(x, c, x);  // y aliases x
    for (std::size_t i = 0; i < x.size(); ++i) {
        CHECK(x.data()[i] == std::max(expected.data()[i], 0.0f));
    }
    tensor<float, 2> dx;
    CHECK_THROWS_WITH_AS(layer.backward_input(c, tensor<float, 2>::from_shape({3, 5}), dx),
                         "relu::backward_input(): the output gradient has shape [3, 5], the "
                         "layer's output is [3, 4]",
                         std::invalid_argument);
    typename relu<float, 2>::cache_type empty;
    CHECK_THROWS_WITH_AS(layer.backward_input(empty, x, dx),
                         "relu::backward_input(): the cache was not filled by forward()",
                         std::invalid_argument);
}

TEST_CASE_TEMPLATE(
    "leaky_relu and tanh_layer: forward values and finite-difference gradients, rank 2 "
    "and rank 4",
    T, float, double) {
    const bool is_double = std::is_same_v<T, double>;
    const auto opts = gradient_check_options().step(is_double ? 1e-6 : 1e-2);
    const double tol = is_double ? 1e-6 : 1e-2;
    const auto x2 = away_from_zero<T, 2>({5, 6}, 1);
    const auto x4 = away_from_zero<T, 4>({2, 3, 2, 2}, 2);

    leaky_relu<T, 2> leaky(0.1);
    typename leaky_relu<T, 2>::cache_type lc;
    tensor<T, 2> y;
    leaky.forward(x2, lc, y);
    for (std::size_t i = 0; i < x2.size(); ++i) {
        const T v = x2.data()[i];
        CHECK(y.data()[i] == (v > 0 ? v : T(0.1) * v));
    }
    tanh_layer<T, 2> th;
    typename tanh_layer<T, 2>::cache_type tc;
    th.forward(x2, tc, y);
    for (std::size_t i = 0; i < x2.size(); ++i) CHECK(y.data()[i] == std::tanh(x2.data()[i]));

    for (const auto& r :
         {check_layer_input_gradient(leaky, x2, opts), check_layer_input_gradient(th, x2, opts),
          check_layer_input_gradient(leaky_relu<T, 4>(), x4, opts),
          check_layer_input_gradient(tanh_layer<T, 4>(), x4, opts)}) {
        CHECK(r.checked > 0);
        CHECK(r.analytic_norm > 0);
        CHECK(r.relative_error < tol);
    }
}

TEST_CASE("leaky_relu: default slope, slope 0 is ReLU, and the slope is validated") {
    CHECK(leaky_relu<float>().negative_slope() == doctest::Approx(0.01));
    CHECK(leaky_relu<float>().describe() == "leaky_relu(0.01)");
    CHECK(leaky_relu<double, 4>(0.2).describe() == "leaky_relu(0.2)");
    const tensor<double, 2> x = {{-2, -0.5, 0, 0.5, 2}};
    leaky_relu<double> relu_like(0);
    leaky_relu<double>::cache_type c;
    tensor<double, 2> y, dx;
    relu_like.forward(x, c, y);
    CHECK(std::vector<double>(y.begin(), y.end()) == std::vector<double>{0, 0, 0, 0.5, 2});
    // the derivative at 0 is the slope, as in PyTorch
    leaky_relu<double> leaky(0.25);
    leaky.forward(x, c, y);
    leaky.backward_input(c, tensor<double, 2>{{1, 1, 1, 1, 1}}, dx);
    CHECK(std::vector<double>(dx.begin(), dx.end()) == std::vector<double>{0.25, 0.25, 0.25, 1, 1});

    CHECK_THROWS_WITH_AS(
        leaky_relu<float>(-0.1),
        "leaky_relu(): negative_slope must be finite and >= 0, got -0.10000000000000001",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(leaky_relu<float>(std::nan("")),
                         "leaky_relu(): negative_slope must be finite and >= 0, got nan",
                         std::invalid_argument);
}

TEST_CASE("activations: shapes, storage reuse, parameters and errors") {
    leaky_relu<float, 4> leaky;
    tanh_layer<float, 4> th;
    CHECK(leaky.output_shape({3, 4, 5}) == std::array<std::size_t, 3>{3, 4, 5});
    CHECK(th.output_shape({3, 4, 5}) == std::array<std::size_t, 3>{3, 4, 5});
    CHECK(th.output_shape(std::vector<std::size_t>{3, 4, 5}) == std::vector<std::size_t>{3, 4, 5});
    CHECK(th.describe() == "tanh");
    CHECK(leaky.parameters().empty());
    CHECK(th.parameters().empty());

    const auto x = away_from_zero<float, 4>({2, 3, 4, 5}, 3);
    typename leaky_relu<float, 4>::cache_type lc;
    typename tanh_layer<float, 4>::cache_type tc;
    tensor<float, 4> yl, yt, dxl, dxt;
    leaky.forward(x, lc, yl);
    leaky.backward_input(lc, x, dxl);
    th.forward(x, tc, yt);
    th.backward_input(tc, x, dxt);
    const float *p1 = yl.data(), *p2 = dxl.data(), *p3 = yt.data(), *p4 = dxt.data();
    leaky.forward(x, lc, yl);
    leaky.backward_input(lc, x, dxl);
    th.forward(x, tc, yt);
    th.backward_input(tc, x, dxt);
    CHECK(yl.data() == p1);
    CHECK(dxl.data() == p2);
    CHECK(yt.data() == p3);
    CHECK(dxt.data() == p4);

    CHECK_THROWS_WITH_AS(
        th.backward_input(tc, tensor<float, 4>::from_shape({2, 3, 4, 4}), dxt),
        "tanh_layer::backward_input(): the output gradient has shape [2, 3, 4, 4], the "
        "layer's output is [2, 3, 4, 5]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        leaky.backward_input(lc, tensor<float, 4>::from_shape({1, 3, 4, 5}), dxl),
        "leaky_relu::backward_input(): the output gradient has shape [1, 3, 4, 5], the "
        "layer's output is [2, 3, 4, 5]",
        std::invalid_argument);
    typename tanh_layer<float, 4>::cache_type empty;
    CHECK_THROWS_WITH_AS(th.backward_input(empty, x, dxt),
                         "tanh_layer::backward_input(): the cache was not filled by forward()",
                         std::invalid_argument);
}

}  // namespace test_activations
