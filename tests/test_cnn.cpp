#include <doctest/doctest.h>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_cnn {

using namespace advaug;

namespace {
tensor<double, 4> images(std::size_t n, std::uint64_t seed) {
    auto x = tensor<double, 4>::from_shape({n, 1, 28, 28});
    rng gen(seed);
    for (auto& v : x) v = gen.uniform();
    return x;
}
std::vector<std::string> names(std::vector<parameter_view<double>> ps) {
    std::vector<std::string> out;
    for (auto& p : ps) out.push_back(p.name);
    return out;
}
}  // namespace

TEST_CASE("the bundled CNN is the PyTorch anchor's network, with its parameter names") {
    cnn<double> net(1);
    CHECK(net.describe() ==
          "sequential [1, 28, 28] -> conv2d(1->32, 3x3, stride 1, padding 1) -> relu -> max_pool2d(2x2, stride 2) -> "
          "conv2d(32->64, 3x3, stride 1, padding 1) -> relu -> max_pool2d(2x2, stride 2) -> flatten -> "
          "dense(3136->128) -> relu -> dense(128->10)");
    CHECK(names(net.parameters()) ==
          std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"});
    CHECK(net.output_shape(5) == std::vector<std::size_t>{64, 7, 7});
    CHECK(net.num_classes() == 10);
    static_assert(trainable_classifier<cnn<float>>);

    cnn<double> bn(1, weight_init::pytorch_default, true);
    CHECK(names(bn.state()) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "4.weight",
                                                        "4.bias", "5.weight", "5.bias", "9.weight", "9.bias",
                                                        "11.weight", "11.bias", "1.running_mean", "1.running_var",
                                                        "5.running_mean", "5.running_var"});
}

TEST_CASE("CNN input and parameter gradients pass the finite-difference check in double") {
    cnn<double> net(2);
    const auto x = images(2, 3);
    const auto in = check_input_gradient(net, x, gradient_check_options().max_entries(150).seed(1));
    CHECK(in.relative_error < 1e-6);
    const auto par = check_parameter_gradient(net, x, gradient_check_options().max_entries(40).seed(2));
    CHECK(par.checked == 40 * 6 + 32 + 10);  // 40 per tensor, all of the two small biases
    CHECK(par.relative_error < 1e-6);
}

TEST_CASE("the batch-norm CNN's gradients check in train and eval mode, and attacks leave its statistics alone") {
    cnn<double> net(2, weight_init::he_normal, true);
    const auto x = images(3, 4);
    for (auto m : {mode::train, mode::eval}) {
        net.set_mode(m);
        CHECK(check_input_gradient(net, x, gradient_check_options().max_entries(100).seed(1)).relative_error < 1e-6);
        CHECK(check_parameter_gradient(net, x, gradient_check_options().max_entries(20).seed(2)).relative_error < 1e-6);
    }
    net.set_mode(mode::train);
    auto before = net.state();
    std::vector<double> stats(before[12].value.begin(), before[12].value.end());
    const auto y = testing::cyclic_labels(3, 10);
    pgd(net, x, y, pgd_options{}.epsilon(0.1).steps(2));
    auto after = net.state();
    CHECK(std::vector<double>(after[12].value.begin(), after[12].value.end()) == stats);
}

}  // namespace test_cnn
