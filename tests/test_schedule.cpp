#include <doctest/doctest.h>

#include <advaug/training/schedule.hpp>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_schedule {

using namespace advaug;

namespace {
constexpr double infinity = std::numeric_limits<double>::infinity();
constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("lr_schedule::constant is the same at every epoch") {
    const auto s = lr_schedule::constant(0.1);
    CHECK(s.at(0) == 0.1);
    CHECK(s.at(3.5) == 0.1);
    CHECK(s.at(1e6) == 0.1);
    CHECK(s.describe() == "constant(lr=0.1)");
}

TEST_CASE("lr_schedule::step multiplies by gamma every step_epochs") {
    const auto s = lr_schedule::step(0.1, 10, 0.5);
    CHECK(s.at(0) == 0.1);
    CHECK(s.at(9.999) == 0.1);
    CHECK(s.at(10) == doctest::Approx(0.05));
    CHECK(s.at(19.5) == doctest::Approx(0.05));
    CHECK(s.at(25) == doctest::Approx(0.025));
    CHECK(s.describe() == "step(lr=0.1, step_epochs=10, gamma=0.5)");
    CHECK(lr_schedule::step(0.1, 2.5, 1).at(100) == 0.1);  // gamma 1: constant
    CHECK(lr_schedule::step(1, 2.5, 0.1).at(5) == doctest::Approx(0.01));
}

TEST_CASE("lr_schedule::cosine anneals from lr to min_lr and stays there") {
    const auto s = lr_schedule::cosine(0.1, 5);
    CHECK(s.at(0) == 0.1);
    CHECK(s.at(2.5) == doctest::Approx(0.05));
    CHECK(s.at(5) == doctest::Approx(0).epsilon(1e-15));
    CHECK(s.at(7) == doctest::Approx(0).epsilon(1e-15));
    CHECK(s.describe() == "cosine(lr=0.1, epochs=5, min_lr=0)");

    const auto m = lr_schedule::cosine(0.1, 10, 0.02);
    CHECK(m.at(0) == doctest::Approx(0.1));
    CHECK(m.at(2.5) == doctest::Approx(0.02 + 0.04 * (1 + std::sqrt(0.5))));
    CHECK(m.at(5) == doctest::Approx(0.06));
    CHECK(m.at(10) == doctest::Approx(0.02));
    CHECK(m.at(11) == doctest::Approx(0.02));
    double previous = m.at(0);
    for (double e = 0.1; e <= 12; e += 0.1) {
        CHECK(m.at(e) <= previous);
        previous = m.at(e);
    }
    CHECK(lr_schedule::cosine(0.1, 10, 0.1).at(4) == doctest::Approx(0.1));  // min_lr == lr
}

TEST_CASE("lr_schedule::one_cycle rises to max_lr at the peak and falls to 0 at the end") {
    // Wong, Rice and Kolter 2020: lr_max 0.2 over 15 epochs, peak at 2/5 (epoch 6).
    const auto s = lr_schedule::one_cycle(0.2, 15);
    CHECK(s.at(0) == 0);
    CHECK(s.at(3) == doctest::Approx(0.1));
    CHECK(s.at(6) == doctest::Approx(0.2));
    CHECK(s.at(10.5) == doctest::Approx(0.1));
    CHECK(s.at(15) == 0);
    CHECK(s.at(20) == 0);
    CHECK(s.at(0.5) < s.at(1));  // moves within an epoch
    for (double e = 0; e <= 16; e += 0.25) CHECK(s.at(e) <= 0.2);
    CHECK(s.describe() == "one_cycle(max_lr=0.2, epochs=15, peak_fraction=0.4)");

    const auto half = lr_schedule::one_cycle(1, 10, 0.5);
    CHECK(half.at(5) == 1);
    CHECK(half.at(2.5) == doctest::Approx(0.5));
    CHECK(half.at(7.5) == doctest::Approx(0.5));
    CHECK(half.at(9.9) == doctest::Approx(0.02));
}

TEST_CASE("lr_schedule factories validate, naming the function, the argument and the value") {
    CHECK_THROWS_WITH_AS(lr_schedule::constant(0), "lr_schedule::constant(): lr must be > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::constant(not_a_number),
                         "lr_schedule::constant(): lr must be finite, got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::step(-0.1, 10, 0.1),
                         "lr_schedule::step(): lr must be > 0, got -0.1", std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::step(0.1, 0, 0.1),
                         "lr_schedule::step(): step_epochs must be > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::step(0.1, 10, 0),
                         "lr_schedule::step(): gamma must be in (0, 1], got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::step(0.1, 10, 1.5),
                         "lr_schedule::step(): gamma must be in (0, 1], got 1.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::cosine(0.1, -1),
                         "lr_schedule::cosine(): total_epochs must be > 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::cosine(0.1, infinity),
                         "lr_schedule::cosine(): total_epochs must be finite, got inf",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::cosine(0.1, 5, 0.2),
                         "lr_schedule::cosine(): min_lr must be in [0, lr] = [0, 0.1], got 0.2",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::cosine(0.1, 5, -0.01),
                         "lr_schedule::cosine(): min_lr must be in [0, lr] = [0, 0.1], got -0.01",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::one_cycle(0, 15),
                         "lr_schedule::one_cycle(): max_lr must be > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::one_cycle(0.2, 0),
                         "lr_schedule::one_cycle(): total_epochs must be > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::one_cycle(0.2, 15, 0),
                         "lr_schedule::one_cycle(): peak_fraction must be in (0, 1), got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(lr_schedule::one_cycle(0.2, 15, 1),
                         "lr_schedule::one_cycle(): peak_fraction must be in (0, 1), got 1",
                         std::invalid_argument);
}

TEST_CASE("lr_schedule::at refuses a negative or non-finite epoch") {
    const auto s = lr_schedule::cosine(0.1, 5);
    CHECK_THROWS_WITH_AS(s.at(-1), "lr_schedule::at(): epoch must be finite and >= 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(s.at(not_a_number),
                         "lr_schedule::at(): epoch must be finite and >= 0, got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(s.at(infinity),
                         "lr_schedule::at(): epoch must be finite and >= 0, got inf",
                         std::invalid_argument);
}

TEST_CASE("epsilon_schedule: constant, and linear warmup to eps") {
    const auto c = epsilon_schedule::constant(8.0 / 255);
    CHECK(c.at(0) == 8.0 / 255);
    CHECK(c.at(40) == 8.0 / 255);
    CHECK(epsilon_schedule::constant(0).at(1) == 0);  // standard training
    CHECK(epsilon_schedule::constant(0.25).describe() == "constant(eps=0.25)");

    const auto w = epsilon_schedule::warmup(0.03, 5);
    CHECK(w.at(0) == 0);
    CHECK(w.at(2.5) == doctest::Approx(0.015));
    CHECK(w.at(4.99) < 0.03);
    CHECK(w.at(5) == 0.03);
    CHECK(w.at(10) == 0.03);
    CHECK(w.describe() == "warmup(eps=0.03, warmup_epochs=5)");

    CHECK_THROWS_WITH_AS(epsilon_schedule::constant(-0.1),
                         "epsilon_schedule::constant(): eps must be finite and >= 0, got -0.1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(epsilon_schedule::warmup(infinity, 5),
                         "epsilon_schedule::warmup(): eps must be finite and >= 0, got inf",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(epsilon_schedule::warmup(0.03, 0),
                         "epsilon_schedule::warmup(): warmup_epochs must be > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(w.at(-0.5),
                         "epsilon_schedule::at(): epoch must be finite and >= 0, got -0.5",
                         std::invalid_argument);
}

TEST_CASE("parse_lr_schedule builds each schedule by name and lists the names on a typo") {
    CHECK(parse_lr_schedule("constant", 0.1, 10) == lr_schedule::constant(0.1));
    CHECK(parse_lr_schedule("cosine", 0.1, 10) == lr_schedule::cosine(0.1, 10));
    CHECK(parse_lr_schedule("one-cycle", 0.2, 15) == lr_schedule::one_cycle(0.2, 15));
    // step: gamma 0.1 every ceil(total / 3) epochs
    CHECK(parse_lr_schedule("step", 0.1, 10).describe() ==
          "step(lr=0.1, step_epochs=4, gamma=0.1)");
    CHECK(parse_lr_schedule("step", 0.1, 30).describe() ==
          "step(lr=0.1, step_epochs=10, gamma=0.1)");
    CHECK(parse_lr_schedule("step", 0.1, 1).describe() == "step(lr=0.1, step_epochs=1, gamma=0.1)");

    CHECK_THROWS_WITH_AS(
        parse_lr_schedule("cosin", 0.1, 10),
        "parse_lr_schedule(): unknown schedule 'cosin'; expected one of: constant, "
        "step, cosine, one-cycle",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        parse_lr_schedule("one_cycle", 0.1, 10),
        "parse_lr_schedule(): unknown schedule 'one_cycle'; expected one of: constant, "
        "step, cosine, one-cycle",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_lr_schedule("step", 0.1, -1),
                         "parse_lr_schedule(): total_epochs must be > 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_lr_schedule("cosine", 0, 10),
                         "lr_schedule::cosine(): lr must be > 0, got 0", std::invalid_argument);
}

}  // namespace test_schedule
