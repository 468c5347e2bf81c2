// Tests for advaug/shifts/tabular_shifts.hpp: each shift's exact effect on small matrices,
// determinism of the noise, composition, the statistics helpers and every argument check.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "advaug/shifts/tabular_shifts.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_tabular_shifts {

using advaug::tabular_shift;
template <class T>
using matrix = advaug::tensor<T, 2>;

namespace {

/// [[1, 2, 3], [4, 5, 6]] as T: two rows (samples), three features.
template <class T>
matrix<T> small() {
    matrix<T> x = matrix<T>::from_shape({2, 3});
    for (std::size_t i = 0; i < 6; ++i) x.data()[i] = static_cast<T>(i + 1);
    return x;
}

template <class T>
std::vector<double> values(const matrix<T>& x) {
    return std::vector<double>(x.data(), x.data() + x.size());
}

}  // namespace

TEST_CASE_TEMPLATE("tabular_shift: gain multiplies each feature by 1 + g", T, float, double) {
    auto x = small<T>();
    tabular_shift::gain(0.5).apply(x);
    CHECK(values(x) == std::vector<double>{1.5, 3, 4.5, 6, 7.5, 9});

    x = small<T>();
    tabular_shift::gain({0, -1, 1}).apply(x);
    CHECK(values(x) == std::vector<double>{1, 0, 6, 4, 0, 12});
}

TEST_CASE_TEMPLATE("tabular_shift: offset adds o per feature", T, float, double) {
    auto x = small<T>();
    tabular_shift::offset({10, -2, 0.5}).apply(x);
    CHECK(values(x) == std::vector<double>{11, 0, 3.5, 14, 3, 6.5});
    x = small<T>();
    tabular_shift::offset(-1).apply(x);
    CHECK(values(x) == std::vector<double>{0, 1, 2, 3, 4, 5});
}

TEST_CASE_TEMPLATE("tabular_shift: stuck, stuck at the first reading, dropped", T, float, double) {
    auto x = small<T>();
    tabular_shift::stuck({2, 0}, {9, 8}).apply(x);  // values follow the order of `features`
    CHECK(values(x) == std::vector<double>{8, 2, 9, 8, 5, 9});

    x = small<T>();
    tabular_shift::stuck_at_first_reading({1}).apply(x);
    CHECK(values(x) == std::vector<double>{1, 2, 3, 4, 2, 6});

    x = small<T>();
    tabular_shift::dropped({0, 1}, {0}).apply(x);  // one fill for every chosen feature
    CHECK(values(x) == std::vector<double>{0, 0, 3, 0, 0, 6});

    x = small<T>();
    tabular_shift::dropped({1}, {std::numeric_limits<double>::quiet_NaN()}).apply(x);
    CHECK(std::isnan(x(0, 1)));
    CHECK(std::isnan(x(1, 1)));
    CHECK(x(1, 2) == 6);

    // no rows: nothing to freeze, nothing to check but the features
    matrix<T> none = matrix<T>::from_shape({0, 3});
    tabular_shift::stuck_at_first_reading({2}).apply(none);
    CHECK(none.size() == 0);
}

TEST_CASE_TEMPLATE("tabular_shift: quantize rounds to the nearest step, halves away from zero", T,
                   float, double) {
    matrix<T> x = matrix<T>::from_shape({1, 4});
    const std::vector<double> in = {1.3, 1.2, -0.3, 0.25};
    for (std::size_t i = 0; i < 4; ++i) x.data()[i] = static_cast<T>(in[i]);
    tabular_shift::quantize({0.5, 0.5, 0.5, 0.5}).apply(x);
    CHECK(values(x) == std::vector<double>{1.5, 1.0, -0.5, 0.5});

    auto y = small<T>();
    tabular_shift::quantize({4, 1, 10}).apply(y);
    CHECK(values(y) == std::vector<double>{0, 2, 0, 4, 5, 10});
}

TEST_CASE("tabular_shift: noise has the asked sigma per feature and is deterministic per seed") {
    matrix<double> zeros = matrix<double>::from_shape({4000, 3});
    zeros.fill(0);
    const auto shift = tabular_shift::noise({0.0, 1.0, 10.0}, 7);
    const auto a = shift.applied(zeros);
    CHECK(values(a) == values(shift.applied(zeros)));     // same seed, same stream: bitwise equal
    CHECK(values(a) != values(shift.applied(zeros, 1)));  // another stream
    CHECK(values(a) != values(tabular_shift::noise({0.0, 1.0, 10.0}, 8).applied(zeros)));
    for (std::size_t j = 0; j < 3; ++j) {
        double sum = 0, squares = 0;
        for (std::size_t i = 0; i < 4000; ++i) {
            sum += a(i, j);
            squares += a(i, j) * a(i, j);
        }
        const double sigma = std::sqrt(squares / 4000);
        const double expected = j == 0 ? 0.0 : j == 1 ? 1.0 : 10.0;
        CHECK(sigma == doctest::Approx(expected).epsilon(0.05));  // 4000 draws: ~1.1% std error
        CHECK(std::abs(sum / 4000) <= 4 * expected / std::sqrt(4000.0) + 1e-12);
    }
    // sigma 0 leaves values exactly as they were
    auto x = small<double>();
    tabular_shift::noise(0.0, 3).apply(x);
    CHECK(values(x) == values(small<double>()));
}

TEST_CASE("tabular_shift: noise of float and double matrices uses the same draws") {
    auto xf = small<float>();
    auto xd = small<double>();
    const auto shift = tabular_shift::noise(0.5, 11);
    shift.apply(xf, 3);
    shift.apply(xd, 3);
    for (std::size_t i = 0; i < 6; ++i) CHECK(xf.data()[i] == static_cast<float>(xd.data()[i]));
}

TEST_CASE("tabular_shift: then() applies steps in order; the identity changes nothing") {
    auto x = small<double>();
    tabular_shift::gain(1.0).then(tabular_shift::offset(1)).apply(x);  // (x * 2) + 1
    CHECK(values(x) == std::vector<double>{3, 5, 7, 9, 11, 13});
    x = small<double>();
    tabular_shift::offset(1).then(tabular_shift::gain(1.0)).apply(x);  // (x + 1) * 2
    CHECK(values(x) == std::vector<double>{4, 6, 8, 10, 12, 14});

    const tabular_shift identity;
    CHECK(identity.empty());
    x = small<double>();
    identity.apply(x);
    CHECK(values(x) == values(small<double>()));
    CHECK(identity.describe() == "no shift");

    // two noise steps in one chain draw different noise
    matrix<double> z = matrix<double>::from_shape({1, 2});
    z.fill(0);
    const auto twice = tabular_shift::noise(1.0, 5).then(tabular_shift::noise(1.0, 5));
    const auto once = tabular_shift::noise(1.0, 5).applied(z);
    const auto both = twice.applied(z);
    CHECK(both(0, 0) != doctest::Approx(2 * once(0, 0)));
}

TEST_CASE("tabular_shift: describe() says what the shift does") {
    CHECK(tabular_shift::gain(0.05).describe() == "gain drift x * (1 + g), g = 0.05");
    CHECK(tabular_shift::offset({-1, 2}).describe() ==
          "offset drift x + o, o per feature in [-1, 2]");
    CHECK(tabular_shift::noise({0.1, 0.1}, 7).describe() == "Gaussian noise, sigma = 0.1 (seed 7)");
    CHECK(tabular_shift::stuck({0, 5, 9}, {1.5, 2, 3}).describe() ==
          "stuck sensors {0, 5, 9} at {1.5, 2, 3}");
    CHECK(tabular_shift::stuck_at_first_reading({3}).describe() ==
          "stuck sensors {3} at their first reading (row 0)");
    CHECK(tabular_shift::dropped({1, 2}, {0}).describe() == "dropped sensors {1, 2} filled with 0");
    CHECK(tabular_shift::quantize(0.25).then(tabular_shift::gain(-0.1)).describe() ==
          "quantization to a step, step = 0.25; then gain drift x * (1 + g), g = -0.1");
}

TEST_CASE("tabular_shift: bad arguments throw when the shift is made") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH_AS(tabular_shift::noise({0.1, -0.5}, 1),
                         "tabular_shift::noise(): sigma[1] must be finite and >= 0, got -0.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::noise(nan, 1),
                         "tabular_shift::noise(): sigma[0] must be finite and >= 0, got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::quantize({1, 0}),
                         "tabular_shift::quantize(): step[1] must be finite and > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::quantize(-2),
                         "tabular_shift::quantize(): step[0] must be finite and > 0, got -2",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::gain(inf),
                         "tabular_shift::gain(): g[0] must be finite, got inf",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::offset(std::vector<double>{}),
                         "tabular_shift::offset(): o must have 1 entry or one per feature, got 0 "
                         "entries",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        tabular_shift::stuck({}, {1}),
        "tabular_shift::stuck(): features must list at least one feature, got none",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::stuck({1, 4, 1}, {0}),
                         "tabular_shift::stuck(): features lists feature 1 twice (at positions 0 "
                         "and 2)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::stuck({1, 2, 3}, {1, 2}),
                         "tabular_shift::stuck(): values has 2 entries; expected 1 or one per "
                         "chosen feature (3)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::stuck({1}, {nan}),
                         "tabular_shift::stuck(): values[0] must be finite, got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::dropped({1}, {-inf}),
                         "tabular_shift::dropped(): fill[0] must be finite or NaN, got -inf",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::stuck_at_first_reading({2, 2}),
                         "tabular_shift::stuck_at_first_reading(): features lists feature 2 twice "
                         "(at positions 0 and 1)",
                         std::invalid_argument);
}

TEST_CASE("tabular_shift: a shift that does not fit the matrix throws and leaves it unchanged") {
    auto x = small<double>();
    CHECK_THROWS_WITH_AS(tabular_shift::gain({0.1, 0.2}).apply(x),
                         "tabular_shift::apply(): gain g has 2 entries, the matrix has 3 features "
                         "(need 1 or 3)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(tabular_shift::stuck({0, 3}, {1}).apply(x),
                         "tabular_shift::apply(): stuck feature 3 (features[1]) is out of range "
                         "for a matrix of 3 features (shape [2, 3])",
                         std::invalid_argument);
    // the offending step is the last one: the earlier gain must not have run either
    CHECK_THROWS_WITH_AS(tabular_shift::gain(1.0).then(tabular_shift::dropped({7}, {0})).apply(x),
                         "tabular_shift::apply(): dropped feature 7 (features[0]) is out of range "
                         "for a matrix of 3 features (shape [2, 3])",
                         std::invalid_argument);
    CHECK(values(x) == values(small<double>()));
}

TEST_CASE("feature statistics, in_std_units and pick") {
    matrix<double> x = matrix<double>::from_shape({4, 2});
    const std::vector<double> in = {1, 10, 2, 10, 3, 10, 6, 10};
    std::copy(in.begin(), in.end(), x.data());
    const auto s = advaug::compute_feature_stats(x);
    CHECK(s.features() == 2);
    CHECK(s.mean == std::vector<double>{3, 10});
    CHECK(s.stddev[0] == doctest::Approx(std::sqrt(3.5)));  // population: (4+1+0+9)/4
    CHECK(s.stddev[1] == 0);
    CHECK(s.min == std::vector<double>{1, 10});
    CHECK(s.max == std::vector<double>{6, 10});
    CHECK(advaug::in_std_units(2, s) == std::vector<double>{2 * std::sqrt(3.5), 0});
    CHECK(advaug::pick(s.max, {1, 0}) == std::vector<double>{10, 6});

    CHECK_THROWS_WITH_AS(advaug::compute_feature_stats(matrix<double>::from_shape({0, 2})),
                         "compute_feature_stats(): x must have at least one row and one column, "
                         "got shape [0, 2]",
                         std::invalid_argument);
    x(2, 1) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH_AS(advaug::compute_feature_stats(x),
                         "compute_feature_stats(): x must be finite, got inf at flat index 5 "
                         "(shape [4, 2])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(advaug::pick(s.mean, {0, 2}),
                         "pick(): features[1] = 2 is out of range for 2 per-feature values",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(advaug::in_std_units(std::numeric_limits<double>::quiet_NaN(), s),
                         "in_std_units(): k must be finite, got nan", std::invalid_argument);
}

}  // namespace test_tabular_shifts
