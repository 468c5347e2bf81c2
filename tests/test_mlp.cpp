#include <doctest/doctest.h>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_mlp {

using namespace advaug;

TEST_CASE("mlp input and parameter gradients pass the finite-difference check in double") {
    mlp<double> net({9, 13, 11, 4}, 3);
    const auto x = testing::uniform_batch<double>(6, 9, 4);
    const auto in = check_input_gradient(net, x);
    const auto par = check_parameter_gradient(net, x);
    CHECK(in.checked == 54);
    CHECK(par.checked == 9 * 13 + 13 + 13 * 11 + 11 + 11 * 4 + 4);
    CHECK(in.relative_error < 1e-6);
    CHECK(par.relative_error < 1e-6);
}

TEST_CASE("mlp gradients in float agree with finite differences to float precision") {
    mlp<float> net({9, 13, 4}, 3);
    const auto x = testing::uniform_batch<float>(6, 9, 4);
    CHECK(check_input_gradient(net, x, gradient_check_options().step(1e-2)).relative_error < 1e-2);
    CHECK(check_parameter_gradient(net, x, gradient_check_options().step(1e-2)).relative_error < 1e-2);
}

TEST_CASE("the gradient check restores weights and pending gradients") {
    mlp<double> net({4, 6, 3}, 1);
    const auto x = testing::uniform_batch<double>(3, 4, 1);
    typename mlp<double>::cache_type c;
    tensor<double, 2> logits;
    net.forward(x, c, logits);
    net.parameter_gradient(c, testing::uniform_batch<double>(3, 3, 2));
    const auto before = testing::snapshot(net);
    check_parameter_gradient(net, x);
    CHECK(testing::snapshot(net) == before);
}

TEST_CASE("mlp parameter gradients accumulate and are linear in dlogits") {
    // what lets a trainer weight a clean and an adversarial batch exactly
    mlp<double> net({5, 7, 3}, 2);
    const auto x = testing::uniform_batch<double>(4, 5, 1);
    const auto g = testing::uniform_batch<double>(4, 3, 2, -1, 1);
    typename mlp<double>::cache_type c;
    tensor<double, 2> logits;
    net.forward(x, c, logits);
    net.parameter_gradient(c, g);
    std::vector<double> once;
    for (auto& p : net.parameters()) once.insert(once.end(), p.grad.begin(), p.grad.end());
    net.zero_grad();
    net.parameter_gradient(c, tensor<double, 2>(0.25 * g));
    net.parameter_gradient(c, tensor<double, 2>(0.75 * g));
    std::size_t i = 0;
    for (auto& p : net.parameters())
        for (double v : p.grad) CHECK(v == doctest::Approx(once[i++]).epsilon(1e-14));
}

TEST_CASE("the same widths and seed give the same network; another seed another") {
    mlp<float> a({20, 10, 5}, 42), b({20, 10, 5}, 42), c({20, 10, 5}, 43);
    CHECK(a.dense_layer(0).weight() == b.dense_layer(0).weight());
    CHECK_FALSE(a.dense_layer(0).weight() == c.dense_layer(0).weight());
    // He initialization: weight variance 2 / fan_in
    mlp<double> big({1000, 500, 2}, 1);
    const auto& w = big.dense_layer(0).weight();
    const double var = xt::variance(w)();
    CHECK(var == doctest::Approx(2.0 / 1000).epsilon(0.02));
    CHECK(xt::amax(xt::abs(big.dense_layer(0).bias()))() == 0.0);
    // PyTorch's nn.Linear default: U(-1/sqrt(in), 1/sqrt(in)) for weights and biases
    mlp<double> torch_like({1000, 500, 2}, 1, weight_init::pytorch_default);
    const auto& wt = torch_like.dense_layer(0).weight();
    CHECK(xt::variance(wt)() == doctest::Approx(1.0 / (3 * 1000)).epsilon(0.02));
    CHECK(xt::amax(xt::abs(wt))() <= 1 / std::sqrt(1000.0));
    CHECK(xt::amax(xt::abs(torch_like.dense_layer(0).bias()))() > 0.0);
}

TEST_CASE("parameters() names and shapes follow PyTorch's nn.Sequential of Linear layers") {
    mlp<float> net({784, 256, 10}, 0);
    const auto ps = net.parameters();
    REQUIRE(ps.size() == 4);
    CHECK(ps[0].name == "0.weight");
    CHECK(ps[0].shape == std::vector<std::size_t>{256, 784});
    CHECK(ps[1].name == "0.bias");
    CHECK(ps[2].name == "2.weight");  // index 1 is the ReLU, as in nn.Sequential
    CHECK(ps[3].name == "2.bias");
    CHECK(ps[3].shape == std::vector<std::size_t>{10});
    CHECK(net.num_classes() == 10);
}

TEST_CASE("mlp refuses bad widths and bad inputs") {
    CHECK_THROWS_WITH_AS(mlp<float>({10}), "mlp(): widths needs at least 2 entries (inputs, classes), got 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(mlp<float>({10, 0, 3}), "mlp(): widths[1] must be >= 1, got 0",
                         std::invalid_argument);
    mlp<float> net({3, 2}, 0);
    typename mlp<float>::cache_type c;
    tensor<float, 2> logits, dx;
    CHECK_THROWS_WITH_AS(net.input_gradient(c, tensor<float, 2>::from_shape({1, 2}), dx),
                         "sequential::backward(): the cache was not filled by forward() of this model",
                         std::invalid_argument);
}

}  // namespace test_mlp
