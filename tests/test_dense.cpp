#include <doctest/doctest.h>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_dense {

using namespace advaug;

TEST_CASE("dense computes x W^T + b with PyTorch's weight layout [out, in]") {
    rng gen(1);
    dense<double> layer(3, 2, gen);
    layer.weight() = tensor<double, 2>{{1, 2, 3}, {4, 5, 6}};
    layer.bias() = tensor<double, 1>{0.5, -0.5};
    typename dense<double>::cache_type c;
    tensor<double, 2> y;
    layer.forward(tensor<double, 2>{{1, 0, -1}, {2, 1, 0}}, c, y);
    CHECK(y == tensor<double, 2>{{-1.5, -2.5}, {4.5, 12.5}});
}

TEST_CASE_TEMPLATE("dense gradients pass the finite-difference check", T, float, double) {
    rng gen(2);
    dense<T> layer(7, 5, gen);
    const auto x = testing::uniform_batch<T>(4, 7, 3, -1, 1);
    const auto opts = gradient_check_options().step(std::is_same_v<T, double> ? 1e-6 : 1e-2);
    const double tol = std::is_same_v<T, double> ? 1e-6 : 1e-3;
    const auto in = check_layer_input_gradient(layer, x, opts);
    const auto par = check_layer_parameter_gradient(layer, x, opts);
    CHECK(in.checked == 28);
    CHECK(par.checked == 7 * 5 + 5);
    CHECK(in.relative_error < tol);
    CHECK(par.relative_error < tol);
}

TEST_CASE("dense refuses inputs and gradients of the wrong shape") {
    rng gen(2);
    dense<float> layer(3, 2, gen);
    typename dense<float>::cache_type c;
    tensor<float, 2> y;
    CHECK_THROWS_WITH_AS(layer.forward(tensor<float, 2>::from_shape({4, 5}), c, y),
                         "dense::forward(): inputs have shape [4, 5], the layer expects [N, 3]",
                         std::invalid_argument);
    const auto x = tensor<float, 2>::from_shape({4, 3});
    layer.forward(x, c, y);
    tensor<float, 2> dx;
    CHECK_THROWS_WITH_AS(layer.backward_input(c, tensor<float, 2>::from_shape({4, 3}), dx),
                         "dense::backward_input(): the output gradient has shape [4, 3], the "
                         "layer's output is [4, 2]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(dense<float>(0, 2, gen), "dense(): in and out must be >= 1, got in = 0, out = 2",
                         std::invalid_argument);
}

}  // namespace test_dense
