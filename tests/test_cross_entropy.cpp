#include <doctest/doctest.h>

#include <cmath>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_cross_entropy {

using namespace advaug;

TEST_CASE_TEMPLATE("cross_entropy matches the definition on a hand-computed batch", T, float, double) {
    const tensor<T, 2> logits = {{1, 2, 3}, {0, 0, 0}};
    const label_vector y = {2, 1};
    const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
    const double l1 = std::log(3.0);
    CHECK(cross_entropy(logits, y) == doctest::Approx((l0 + l1) / 2).epsilon(1e-6));
    const auto per = cross_entropy_per_sample(logits, y);
    CHECK(per(0) == doctest::Approx(l0).epsilon(1e-6));
    CHECK(per(1) == doctest::Approx(l1).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("cross_entropy is stable for large logits", T, float, double) {
    const tensor<T, 2> logits = {{1000, -1000, 0}, {-5000, 5000, 4990}};
    const label_vector y = {1, 2};
    tensor<T, 2> g;
    const T loss = cross_entropy_gradient(logits, y, g);
    CHECK(std::isfinite(loss));
    CHECK(loss == doctest::Approx((2000.0 + 10.0) / 2).epsilon(1e-5));
    for (auto v : g) CHECK(std::isfinite(v));
    // each gradient row sums to zero: softmax minus a one-hot, scaled by 1/N
    CHECK(g(0, 0) + g(0, 1) + g(0, 2) == doctest::Approx(0).epsilon(1e-6));
    CHECK(g(0, 1) == doctest::Approx(-0.5).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("on a confident row (margin above 20) the label's gradient is -(sum of the others), not 0", T,
                   float, double) {
    // p_y = 1 - e^-margin rounds to 1 in float: p_y - 1 must be formed before that rounding,
    // else the label's entry is 0, the row no longer sums to zero and an input gradient
    // W^T dlogits points the wrong way.
    for (const double margin : {20.0, 25.0, 30.0, 45.0}) {
        CAPTURE(margin);
        const tensor<T, 2> logits = {{static_cast<T>(margin), 0, -1, 2}};
        const label_vector y = {0};
        tensor<T, 2> g;
        cross_entropy_gradient(logits, y, g);
        double others = 0, exact_others = 0;
        for (std::size_t j = 1; j < 4; ++j) {
            others += static_cast<double>(g(0, j));
            exact_others += std::exp(static_cast<double>(logits(0, j)) - margin);
        }
        CHECK(others > 0);
        CHECK(g(0, 0) < 0);
        // every entry to T's relative precision, tiny as they are
        CHECK(static_cast<double>(g(0, 0)) == doctest::Approx(-exact_others).epsilon(1e-6));
        CHECK(others == doctest::Approx(exact_others).epsilon(1e-6));
        // the same through the label's input: a two-class row whose true class wins by `margin`
        const tensor<T, 2> two = {{0, static_cast<T>(-margin)}};
        tensor<T, 2> g2;
        cross_entropy_gradient(two, label_vector{0}, g2);
        CHECK(static_cast<double>(g2(0, 0)) == doctest::Approx(-std::exp(-margin)).epsilon(1e-6));
        CHECK(static_cast<double>(g2(0, 0)) == doctest::Approx(-static_cast<double>(g2(0, 1))).epsilon(1e-6));
    }
}

TEST_CASE("cross_entropy gradient passes the finite-difference check in double") {
    auto logits = testing::uniform_batch<double>(6, 5, 3, -4, 4);
    const label_vector y = {0, 1, 2, 3, 4, 0};
    const auto r = check_cross_entropy_gradient(logits, y);
    CHECK(r.checked == 30);
    CHECK(r.relative_error < 1e-6);
}

TEST_CASE("weights scale samples and keep the division by N") {
    const tensor<double, 2> logits = {{1, 2, 3}, {3, 2, 1}};
    const label_vector y = {0, 0};
    const tensor<double, 1> w = {0.25, 0.75};
    const auto per = cross_entropy_per_sample(logits, y);
    CHECK(cross_entropy(logits, y, w) == doctest::Approx((0.25 * per(0) + 0.75 * per(1)) / 2));
    tensor<double, 2> gw, g;
    cross_entropy_gradient(logits, y, w, gw);
    cross_entropy_gradient(logits, y, g);
    CHECK(gw(0, 1) == doctest::Approx(0.25 * g(0, 1)));
    CHECK(gw(1, 2) == doctest::Approx(0.75 * g(1, 2)));
    // scale multiplies the gradient exactly: what alpha-mixing relies on
    tensor<double, 2> gs;
    cross_entropy_gradient(logits, y, gs, 0.5);
    CHECK(testing::max_abs_diff(gs, tensor<double, 2>(0.5 * g)) < 1e-15);
}

TEST_CASE("cross_entropy refuses bad labels and shapes, naming them") {
    const tensor<double, 2> logits = {{1, 2, 3}, {0, 0, 0}};
    CHECK_THROWS_WITH_AS(cross_entropy(logits, label_vector{0, 3}),
                         "cross_entropy(): labels[1] = 3 is outside [0, 3)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(cross_entropy(logits, label_vector{-1, 0}),
                         "cross_entropy(): labels[0] = -1 is outside [0, 3)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(cross_entropy(logits, label_vector{0}),
                         "cross_entropy(): labels has 1 entries, the batch has 2 rows",
                         std::invalid_argument);
    tensor<double, 2> g;
    CHECK_THROWS_WITH_AS(cross_entropy_gradient(logits, label_vector{0, 1}, tensor<double, 1>{1.0}, g),
                         "cross_entropy_gradient(): weights has 1 entries, logits have 2 rows",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(cross_entropy(tensor<double, 2>::from_shape({0, 3}), label_vector{}),
                         doctest::Contains("cross_entropy(): logits is an empty batch"),
                         std::invalid_argument);
}

}  // namespace test_cross_entropy
