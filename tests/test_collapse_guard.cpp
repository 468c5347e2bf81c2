// Tests for training/collapse_guard.hpp: the guard's decision on scripted readings. What the
// trainer does with each verdict (warn, or stop and restore the snapshot) is tested in
// test_trainer.cpp with a collapse made on purpose.
#include <doctest/doctest.h>

#include <limits>
#include <stdexcept>
#include <vector>

#include "advaug/training/collapse_guard.hpp"
#include "support/check_throws.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_collapse_guard {

using advaug::collapse_detector;
using advaug::guard_verdict;

TEST_CASE("the first reading is the best so far; each later one is a new best, within the drop, or a collapse") {
    collapse_detector d(0.25);
    CHECK(d.best() == -1);
    CHECK(d.observe(0.5) == guard_verdict::new_best);
    CHECK(d.observe(0.5) == guard_verdict::within_drop);  // equal is not better
    CHECK(d.observe(0.25) == guard_verdict::within_drop);  // a drop of exactly `drop` is allowed
    CHECK_FALSE(d.collapsed());
    CHECK(d.observe(0.75) == guard_verdict::new_best);
    CHECK(d.best() == 0.75);
    CHECK(d.observe(0.4375) == guard_verdict::collapsed);  // 0.3125 below the best
    CHECK(d.collapsed());
    CHECK(d.best() == 0.75);  // a collapse does not lower the best
    // the flag stays: later readings that recover do not clear it
    CHECK(d.observe(0.625) == guard_verdict::within_drop);
    CHECK(d.collapsed());
}

TEST_CASE("a slow decline is a collapse only once the total drop from the best exceeds `drop`") {
    collapse_detector d(0.25);
    const std::vector<double> readings = {0.125, 0.5, 0.4375, 0.375, 0.3125, 0.25, 0.1875};
    std::vector<guard_verdict> seen;
    for (double r : readings) seen.push_back(d.observe(r));
    CHECK(seen == std::vector<guard_verdict>{guard_verdict::new_best, guard_verdict::new_best,
                                             guard_verdict::within_drop, guard_verdict::within_drop,
                                             guard_verdict::within_drop, guard_verdict::within_drop,
                                             guard_verdict::collapsed});
}

TEST_CASE("restore() puts back a checkpoint's state") {
    collapse_detector d(0.5);
    d.restore(0.75, true);
    CHECK(d.best() == 0.75);
    CHECK(d.collapsed());
    CHECK(d.observe(0.5) == guard_verdict::within_drop);
    CHECK(d.observe(0.125) == guard_verdict::collapsed);
    d.restore(-1, false);
    CHECK(d.observe(0) == guard_verdict::new_best);
}

TEST_CASE("bad drops, readings and restored states are refused, naming the value") {
    using advaug::testing::check_throws;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    check_throws<std::invalid_argument>([] { collapse_detector(0); }, {"collapse_detector()", "drop", "0"});
    check_throws<std::invalid_argument>([] { collapse_detector(1.5); }, {"collapse_detector()", "1.5"});
    check_throws<std::invalid_argument>([&] { collapse_detector{nan}; }, {"collapse_detector()", "nan"});
    collapse_detector d(0.2);
    check_throws<std::invalid_argument>([&] { d.observe(nan); }, {"collapse_detector::observe()", "nan"});
    check_throws<std::invalid_argument>([&] { d.observe(1.25); }, {"collapse_detector::observe()", "1.25"});
    check_throws<std::invalid_argument>([&] { d.observe(-0.5); }, {"collapse_detector::observe()", "-0.5"});
    check_throws<std::invalid_argument>([&] { d.restore(2, false); }, {"collapse_detector::restore()", "2"});
    CHECK(d.best() == -1);  // nothing observed or restored
}

}  // namespace test_collapse_guard
