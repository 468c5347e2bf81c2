#include <doctest/doctest.h>

#include <limits>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_input_domain {

using namespace advaug;

TEST_CASE("the default domain is [0, 1] without normalization, as in the seed") {
    const input_domain d;
    CHECK(d.lo() == std::vector{0.0});
    CHECK(d.hi() == std::vector{1.0});
    CHECK(d.mean() == std::vector{0.0});
    CHECK(d.stddev() == std::vector{1.0});
}

TEST_CASE("normalize and denormalize are inverse, per channel of an image batch") {
    auto d = input_domain{}.normalization({0.5, 0.25}, {0.2, 0.5});
    auto raw = tensor<double, 4>::from_shape({2, 2, 3, 3});
    rng gen(1);
    for (auto& v : raw) v = gen.uniform();
    const auto z = d.normalize(raw);
    CHECK(z(1, 0, 2, 1) == doctest::Approx((raw(1, 0, 2, 1) - 0.5) / 0.2));
    CHECK(z(0, 1, 0, 0) == doctest::Approx((raw(0, 1, 0, 0) - 0.25) / 0.5));
    CHECK(testing::max_abs_diff(d.denormalize(z), raw) < 1e-12);
}

TEST_CASE("bounds resolve into model units") {
    auto d = input_domain{}.bounds({0.0, -10.0}, {1.0, 10.0}).normalization({0.5, 0.0}, {0.5, 5.0});
    const auto r = detail::resolve<double>("test", d, std::array<std::size_t, 2>{4, 2});
    CHECK(r.sample_size == 2);
    CHECK(r.lo[0] == doctest::Approx(-1.0));
    CHECK(r.hi[0] == doctest::Approx(1.0));
    CHECK(r.lo[1] == doctest::Approx(-2.0));
    CHECK(r.model_per_raw[1] == doctest::Approx(0.2));
    CHECK_FALSE(r.unit_scale);
}

TEST_CASE("bad domains are refused with the argument and the value") {
    CHECK_THROWS_WITH_AS(input_domain{}.bounds(1.0, 0.0),
                         "input_domain::bounds(): lo[0] = 1 and hi[0] = 0 do not form an interval "
                         "(need lo <= hi)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(input_domain{}.bounds({0.0, 0.0}, {1.0}),
                         doctest::Contains("lo has 2 entries and hi has 1"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(input_domain{}.normalization(0.0, 0.0),
                         "input_domain::normalization(): std[0] must be finite and > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(input_domain{}.normalization({0.0, 1.0}, {1.0}),
                         doctest::Contains("mean has 2 entries and std has 1"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        input_domain{}.normalization(std::numeric_limits<double>::quiet_NaN(), 1.0),
        doctest::Contains("mean[0] must be finite"), std::invalid_argument);
    // a per-feature domain of the wrong length for the data
    auto d = input_domain{}.bounds({0.0, 0.0, 0.0}, {1.0, 1.0, 1.0});
    CHECK_THROWS_WITH_AS(detail::resolve<double>("fgsm", d, std::array<std::size_t, 2>{4, 2}),
                         "fgsm(): the input domain's bounds has 3 entries; inputs of shape [4, 2] "
                         "need 1 or one per entry of axis 1",
                         std::invalid_argument);
}

TEST_CASE("standardized data in the default [0, 1] domain is refused with the fix: bounds() or unbounded()") {
    mlp<float> net({2, 2}, 0);
    auto x = tensor<float, 2>::from_shape({2, 2});
    x(0, 0) = -1.25f;  // a z-score
    x(0, 1) = 0.3f;
    x(1, 0) = 0.5f;
    x(1, 1) = 1.7f;
    const label_vector y = {0, 1};
    CHECK_THROWS_WITH_AS(fgsm(net, x, y, fgsm_options{}.epsilon(0.1)),
                         "fgsm(): inputs[0] element 0 = -1.25 lies outside the input domain [0, 1] (model "
                         "units); the options' input_domain must hold the data: bounds(lo, hi) or "
                         "unbounded() for raw values outside the default [0, 1] (standardized tables), "
                         "and normalization(mean, std) only where the model sees (raw - mean) / std",
                         std::invalid_argument);
    const auto adv = fgsm(net, x, y, fgsm_options{}.epsilon(0.1).domain(input_domain::unbounded()));
    CHECK(adv(0, 0) == doctest::Approx(-1.25f).epsilon(0.1));
}

}  // namespace test_input_domain
