// The checker itself: it must pass correct gradients and catch wrong ones.
#include <doctest/doctest.h>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_gradient_check {

using namespace advaug;

namespace {
// The linear model with a deliberately wrong input gradient (one weight's contribution doubled)
// and a wrong bias gradient.
struct wrong_gradients : testing::linear_model<double> {
    using linear_model::linear_model;
    void input_gradient(cache_type& c, const tensor<double, 2>& g, tensor<double, 2>& dx) const {
        linear_model::input_gradient(c, g, dx);
        for (std::size_t n = 0; n < g.shape()[0]; ++n) dx(n, 1) += g(n, 0) * w(0, 1);
    }
    void parameter_gradient(cache_type& c, const tensor<double, 2>& g) {
        linear_model::parameter_gradient(c, g);
        db(2) += 0.01;
    }
};
}  // namespace

TEST_CASE("a correct model passes and a wrong gradient is caught, with its location") {
    const auto x = testing::uniform_batch<double>(5, 4, 1);
    testing::linear_model<double> good(4, 3, 2);
    CHECK(check_input_gradient(good, x).relative_error < 1e-8);
    CHECK(check_parameter_gradient(good, x).relative_error < 1e-8);

    wrong_gradients bad(4, 3, 2);
    const auto in = check_input_gradient(bad, x);
    CHECK(in.relative_error > 1e-3);
    CHECK(in.worst_index % 4 == 1);  // column 1 of some sample
    const auto par = check_parameter_gradient(bad, x);
    CHECK_FALSE(par.passed(1e-6));
    CHECK(par.worst_index == 3 * 4 + 2);  // after the 12 weights: bias entry 2
}

TEST_CASE("max_entries checks a seeded subset") {
    mlp<double> net({30, 20, 5}, 1);
    const auto x = testing::uniform_batch<double>(3, 30, 2);
    const auto r =
        check_parameter_gradient(net, x, gradient_check_options().max_entries(10).seed(4));
    CHECK(r.checked == 10 * 3 + 5);  // 10 from each parameter tensor, all 5 of the last bias
    CHECK(r.relative_error < 1e-6);
}

TEST_CASE("gradient_check_options refuses a step that cannot differentiate") {
    CHECK(gradient_check_options().step() == 1e-6);
    CHECK(gradient_check_options().step(1e-2).max_entries(7).seed(3).max_entries() == 7);
    CHECK_THROWS_WITH_AS(gradient_check_options().step(0),
                         "gradient_check_options::step(): step must be finite and > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_AS(gradient_check_options().step(std::nan("")), std::invalid_argument);
}

}  // namespace test_gradient_check
