// AugMix's mixtures as a perturbation family (perturbations/augment_and_mix.hpp): derivatives
// against finite differences, the identity, the budget with its integer codes, the random draw
// (AugMix's distribution), and bad input.
#include <doctest/doctest.h>

#include <advaug/perturbations/perturbations.hpp>
#include <cmath>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_augment_and_mix {

using namespace advaug;

namespace {

const image_shape small_image{1, 6, 6};

template <class T>
std::vector<any_family<T>> small_operations() {
    return {any_family<T>(photometric<T>(small_image, {.brightness = symmetric(0.1), .contrast = symmetric(0.3)})),
            any_family<T>(affine<T>(small_image, {.rotation = symmetric(15), .translate_x = symmetric(1)})),
            any_family<T>(gaussian_blur<T>(small_image, {0.5, 1.2}))};
}

template <class T>
augment_and_mix<T> small_mixture(mixture_options o = {}) {
    return augment_and_mix<T>(small_operations<T>(), o);
}

}  // namespace

static_assert(perturbation_family<augment_and_mix<float>>);
static_assert(perturbation_family<augment_and_mix<double>>);

TEST_CASE("the parameter layout: mixing weights, depth and operation codes, scaled operation parameters") {
    const auto f = small_mixture<double>(mixture_options{}.width(2).max_depth(3));
    // m, v1 v2, d1 d2, then 2 chains x 3 positions x (code + 6 parameters: affine's 6)
    CHECK(f.num_params() == 1 + 2 + 2 + 2 * 3 * (1 + 6));
    CHECK(f.input_size() == small_image.size());
    const auto s = f.param_scale();
    CHECK(s.size() == f.num_params());
    CHECK(s[0] == 0.5);
    CHECK(s[1] == doctest::Approx(0.495));
}

TEST_CASE_TEMPLATE("derivatives in theta and x match finite differences", T, float, double) {
    const auto f = small_mixture<T>();
    const auto x = testing::uniform_batch<T>(8, small_image.size(), 3, 0.2, 0.8);
    tensor<T, 2> theta;
    f.sample(8, 41, theta);
    const auto r = check_perturbation_gradients(
        f, x, theta, gradient_check_options().step(std::is_same_v<T, float> ? 1e-3 : 1e-6));
    INFO("theta relative error " << r.theta.relative_error << ", input " << r.input.relative_error);
    CHECK(r.passed(std::is_same_v<T, float> ? 5e-3 : 1e-6));
    CHECK(r.theta.analytic_norm > 0);
    CHECK(r.input.analytic_norm > 0);
}

TEST_CASE("the codes have zero derivative and a gradient step leaves them as drawn") {
    const auto f = small_mixture<double>();
    const auto x = testing::uniform_batch<double>(6, small_image.size(), 5, 0.2, 0.8);
    tensor<double, 2> theta, dtheta;
    f.sample(6, 7, theta);
    const auto dout = testing::uniform_batch<double>(6, small_image.size(), 9, -1, 1);
    f.vjp_theta(x, theta, dout, dtheta);
    const auto scale = f.param_scale();
    const std::size_t k = f.options().width(), depth = f.options().max_depth(), slot = 1 + 6;
    for (std::size_t i = 0; i < 6; ++i) {
        for (std::size_t c = 0; c < k; ++c) {
            CHECK(dtheta(i, 1 + k + c) == 0);
            for (std::size_t j = 0; j < depth; ++j) CHECK(dtheta(i, 1 + 2 * k + (c * depth + j) * slot) == 0);
        }
    }
    // a sign step as the search takes it, then the projection: the structure is unchanged
    tensor<double, 2> stepped = theta;
    for (std::size_t e = 0; e < theta.size(); ++e) {
        const double g = dtheta.data()[e];
        stepped.data()[e] += (g > 0 ? 0.25 : g < 0 ? -0.25 : 0.0) * scale[e % f.num_params()];
    }
    f.project(stepped);
    CHECK(f.contains(stepped));
    for (std::size_t i = 0; i < 6; ++i) {
        for (std::size_t c = 0; c < k; ++c) {
            for (std::size_t j = 0; j < depth; ++j) CHECK(f.operation_at(stepped, i, c, j) == f.operation_at(theta, i, c, j));
        }
    }
}

TEST_CASE_TEMPLATE("the identity returns x bit for bit, and m = 1 whatever the chains", T, float, double) {
    const auto f = small_mixture<T>();
    const auto x = testing::uniform_batch<T>(4, small_image.size(), 2);
    tensor<T, 2> theta, out;
    f.identity(4, theta);
    CHECK(f.contains(theta));
    f.apply(x, theta, out);
    CHECK(std::memcmp(out.data(), x.data(), x.size() * sizeof(T)) == 0);
    f.sample(4, 3, theta);
    for (std::size_t i = 0; i < 4; ++i) theta(i, 0) = 1;
    f.apply(x, theta, out);
    CHECK(std::memcmp(out.data(), x.data(), x.size() * sizeof(T)) == 0);
}

TEST_CASE("a random draw is AugMix's: m uniform, Dirichlet(1) weights, every depth and operation, in the budget") {
    const auto f = small_mixture<double>();
    const std::size_t n = 3000, k = 3, depth = 3;
    tensor<double, 2> theta;
    f.sample(n, 17, theta);
    CHECK(f.contains(theta));
    double m_mean = 0, w_mean = 0, w_sq = 0;
    std::vector<std::size_t> depths(depth, 0), ops(3, 0);
    for (std::size_t i = 0; i < n; ++i) {
        m_mean += theta(i, 0) / n;
        double sum = 0;
        for (std::size_t c = 0; c < k; ++c) sum += theta(i, 1 + c);
        const double w = theta(i, 1) / sum;  // Dirichlet(1,1,1): mean 1/3, variance 1/18
        w_mean += w / n;
        w_sq += w * w / n;
        for (std::size_t c = 0; c < k; ++c) {
            std::size_t d = 0;
            while (d < depth && f.operation_at(theta, i, c, d) < 3) ++ops[f.operation_at(theta, i, c, d++)];
            CHECK(d >= 1);
            ++depths[d - 1];
        }
    }
    CHECK(m_mean == doctest::Approx(0.5).epsilon(0.05));
    CHECK(w_mean == doctest::Approx(1.0 / 3).epsilon(0.05));
    CHECK(w_sq - w_mean * w_mean == doctest::Approx(1.0 / 18).epsilon(0.15));
    for (std::size_t d : depths) CHECK(d == doctest::Approx(n * k / 3.0).epsilon(0.1));
    for (std::size_t c : ops) CHECK(c > n);  // about 2 n each
    // row i depends on the key and i only: a larger batch shares its first rows
    tensor<double, 2> more;
    f.sample(n + 5, 17, more);
    CHECK(std::memcmp(more.data(), theta.data(), theta.size() * sizeof(double)) == 0);
    // and another key gives other draws
    f.sample(n, 18, more);
    CHECK(std::memcmp(more.data(), theta.data(), theta.size() * sizeof(double)) != 0);
}

TEST_CASE("project maps any theta into the budget, and is the identity there") {
    const auto f = small_mixture<double>();
    tensor<double, 2> theta;
    f.sample(5, 1, theta);
    tensor<double, 2> again = theta;
    f.project(again);
    CHECK(std::memcmp(again.data(), theta.data(), theta.size() * sizeof(double)) == 0);
    for (std::size_t e = 0; e < theta.size(); ++e) theta.data()[e] = e % 3 == 0 ? 40.0 : e % 3 == 1 ? -40.0 : 0.3;
    CHECK_FALSE(f.contains(theta));
    f.project(theta);
    CHECK(f.contains(theta));
}

TEST_CASE("rows are independent: a row's output does not depend on the other rows") {
    const auto f = small_mixture<double>();
    const auto x = testing::uniform_batch<double>(6, small_image.size(), 8);
    tensor<double, 2> theta, out, one_out;
    f.sample(6, 4, theta);
    f.apply(x, theta, out);
    for (std::size_t i = 0; i < 6; ++i) {
        const tensor<double, 2> xi = xt::view(x, xt::range(i, i + 1), xt::all());
        const tensor<double, 2> ti = xt::view(theta, xt::range(i, i + 1), xt::all());
        f.apply(xi, ti, one_out);
        for (std::size_t e = 0; e < x.shape()[1]; ++e) CHECK(one_out(0, e) == out(i, e));
    }
}

TEST_CASE("bad input is refused with the function, the argument and the value") {
    CHECK_THROWS_WITH_AS(augment_and_mix<double>(std::vector<any_family<double>>{}), "augment_and_mix(): operations is empty; give at least one family",
                         std::invalid_argument);
    std::vector<any_family<double>> ops = small_operations<double>();
    ops.push_back(any_family<double>(linf_ball<double>(image_shape{1, 5, 5}, 0.1)));
    CHECK_THROWS_WITH_AS(augment_and_mix<double>{ops}, "augment_and_mix(): operation 3 takes 25 features, operation 0 takes 36",
                         std::invalid_argument);
    ops.back() = any_family<double>(quantize<double>(small_image.size(), {interval{0.0, 0.1}}));
    CHECK_THROWS_WITH_AS(augment_and_mix<double>{ops},
                         doctest::Contains("augment_and_mix(): operation 3 is gradient-free; the mixture takes "
                                           "continuous families only"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(mixture_options{}.width(0), "mixture_options::width(): width must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(mixture_options{}.min_weight(0), "mixture_options::min_weight(): min_weight must be in (0, 1], got 0",
                         std::invalid_argument);
    const auto f = small_mixture<double>();
    const auto x = testing::uniform_batch<double>(2, small_image.size(), 8);
    tensor<double, 2> theta({2, 3}, 0.0), out;
    CHECK_THROWS_WITH_AS(f.apply(x, theta, out), "augment_and_mix::apply(): theta has shape [2, 3], expected [2, 70]",
                         std::invalid_argument);
}

TEST_CASE("the rows split over advaug's threads give the same bits on one, two and three threads") {
    // apply and the vjps run the whole mixture on each thread's rows; a part computed in the
    // wrong place, or with another row's theta, changes the bits
    const std::size_t saved = num_threads();
    struct restore {
        std::size_t n;
        ~restore() { set_num_threads(n); }
    } guard{saved};
    const auto f = small_mixture<float>();
    const auto x = testing::uniform_batch<float>(9, small_image.size(), 21, 0.1, 0.9);
    const auto dout = testing::uniform_batch<float>(9, small_image.size(), 22, -1, 1);
    tensor<float, 2> theta;
    f.sample(9, 23, theta);
    std::vector<std::vector<float>> results;
    for (std::size_t threads : {1, 2, 3}) {
        set_num_threads(threads);
        tensor<float, 2> out, dtheta, dx;
        f.apply(x, theta, out);
        f.vjp_theta(x, theta, dout, dtheta);
        f.vjp_input(x, theta, dout, dx);
        tensor<float, 2> both_theta, both_x;  // the optional vjp: both products in one pass
        f.vjp(x, theta, dout, &both_theta, &both_x);
        CHECK(std::memcmp(both_theta.data(), dtheta.data(), dtheta.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(both_x.data(), dx.data(), dx.size() * sizeof(float)) == 0);
        std::vector<float> all(out.begin(), out.end());
        all.insert(all.end(), dtheta.begin(), dtheta.end());
        all.insert(all.end(), dx.begin(), dx.end());
        results.push_back(std::move(all));
    }
    REQUIRE(results[0].size() == 9 * (2 * small_image.size() + f.num_params()));
    for (std::size_t t = 1; t < results.size(); ++t) {
        INFO("threads " << t + 1);
        CHECK(std::memcmp(results[0].data(), results[t].data(), results[0].size() * sizeof(float)) == 0);
    }
}

TEST_CASE("a non-finite theta or x is refused up front with the mixture's own row") {
    const auto f = small_mixture<double>();
    const auto x = testing::uniform_batch<double>(3, small_image.size(), 8);
    const auto dout = testing::uniform_batch<double>(3, small_image.size(), 9, -1, 1);
    tensor<double, 2> theta, out, dtheta;
    f.sample(3, 5, theta);
    theta(2, 0) = std::nan("");
    CHECK_THROWS_WITH_AS(f.apply(x, theta, out), "augment_and_mix::apply(): theta must be finite, got nan at row 2, parameter 0",
                         std::invalid_argument);
    f.sample(3, 5, theta);
    auto bad_x = x;
    bad_x(1, 4) = INFINITY;
    CHECK_THROWS_WITH_AS(f.vjp_theta(bad_x, theta, dout, dtheta),
                         "augment_and_mix::vjp_theta(): x must be finite, got inf at row 1, feature 4", std::invalid_argument);
}

}  // namespace test_augment_and_mix
