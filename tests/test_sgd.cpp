#include <doctest/doctest.h>

#include <advaug/optim/adam.hpp>
#include <advaug/optim/optimizer.hpp>
#include <advaug/optim/sgd.hpp>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

using namespace advaug;

#include "support/optimizer_fixtures.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_sgd {

using advaug::testing::allocations;
using advaug::testing::quadratic;
using advaug::testing::check_close;
using advaug::testing::load;
using advaug::testing::saved;

namespace {

/// torch.optim.SGD, element by element in double, on the concatenated parameters.
struct reference_sgd {
    double momentum, weight_decay;
    bool nesterov;
    std::vector<double> buf;

    void step(std::vector<double>& w, const std::vector<double>& target, double lr) {
        const bool first = buf.empty();
        buf.resize(w.size());
        for (std::size_t i = 0; i < w.size(); ++i) {
            double g = w[i] - target[i];
            g = g + weight_decay * w[i];
            if (momentum != 0) {
                buf[i] = first ? g : momentum * buf[i] + g;
                g = nesterov ? g + momentum * buf[i] : buf[i];
            }
            w[i] = w[i] - lr * g;
        }
    }
};

}  // namespace

TEST_CASE("sgd_options validates every value, naming the option and the value") {
    CHECK_THROWS_WITH_AS(sgd_options{}.momentum(-0.5),
                         "sgd_options::momentum(): momentum must be in [0, 1), got -0.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(sgd_options{}.momentum(1),
                         "sgd_options::momentum(): momentum must be in [0, 1), got 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(sgd_options{}.momentum(std::nan("")),
                         "sgd_options::momentum(): momentum must be in [0, 1), got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        sgd_options{}.weight_decay(-1),
        "sgd_options::weight_decay(): weight_decay must be finite and >= 0, got -1",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        sgd_options{}.weight_decay(std::numeric_limits<double>::infinity()),
        "sgd_options::weight_decay(): weight_decay must be finite and >= 0, got inf",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(sgd<float>(sgd_options{}.nesterov(true)),
                         "sgd(): nesterov requires momentum > 0, got momentum 0",
                         std::invalid_argument);

    const auto o = sgd_options{}.momentum(0.9).nesterov(true).weight_decay(5e-4);
    CHECK(o.momentum() == 0.9);
    CHECK(o.nesterov());
    CHECK(o.weight_decay() == 5e-4);
    CHECK(sgd<double>(o).options() == o);
    CHECK(sgd_options{}.momentum() == 0);  // defaults: plain SGD
    CHECK_FALSE(sgd_options{}.nesterov());
    CHECK(sgd_options{}.weight_decay() == 0);
}

TEST_CASE("sgd with momentum 0.9 matches hand-computed values on w = 1, grad = w") {
    // buf: 1, 1.8, 2.34; w: 0.9, 0.72, 0.486. Nesterov: g + 0.9 * buf with buf 1, 1.71, 2.1141.
    for (bool nesterov : {false, true}) {
        std::vector<double> w{1.0}, g{0.0};
        std::vector<parameter_view<double>> params{{"w", {1}, w, g}};
        sgd<double> opt(sgd_options{}.momentum(0.9).nesterov(nesterov));
        std::vector<double> got;
        for (int k = 0; k < 3; ++k) {
            g[0] = w[0];
            opt.step(params, 0.1);
            got.push_back(w[0]);
        }
        const std::vector<double> want = nesterov ? std::vector<double>{0.81, 0.5751, 0.327321}
                                                  : std::vector<double>{0.9, 0.72, 0.486};
        check_close(got, want, 1e-12);
        CHECK(opt.step_count() == 3);
    }
}

TEST_CASE_TEMPLATE("sgd follows torch.optim.SGD over 3 steps", T, float, double) {
    struct config {
        std::string name;
        sgd_options options;
        double lr;
    };
    const config configs[] = {
        {"plain", sgd_options{}, 0.1},
        {"momentum", sgd_options{}.momentum(0.9), 0.05},
        {"nesterov", sgd_options{}.momentum(0.9).nesterov(true), 0.05},
        {"weight decay", sgd_options{}.weight_decay(0.01), 0.1},
        {"all", sgd_options{}.momentum(0.5).nesterov(true).weight_decay(0.1), 0.2},
        {"momentum and decay", sgd_options{}.momentum(0.8).weight_decay(0.05), 0.1},
    };
    for (const auto& c : configs) {
        CAPTURE(c.name);
        quadratic<T> q;
        auto params = q.params();
        sgd<T> opt(c.options);
        reference_sgd ref{c.options.momentum(), c.options.weight_decay(), c.options.nesterov(), {}};
        auto w = q.values();
        // lr changes between steps: buffers must not absorb it.
        for (double scale : {1.0, 0.5, 2.0}) {
            q.gradient();
            opt.step(params, c.lr * scale);
            ref.step(w, q.targets(), c.lr * scale);
            check_close(q.values(), w, 1e-6);
        }
    }
}

TEST_CASE_TEMPLATE("sgd minimizes a quadratic", T, float, double) {
    for (const auto& o :
         {sgd_options{}, sgd_options{}.momentum(0.9), sgd_options{}.momentum(0.9).nesterov(true)}) {
        quadratic<T> q;
        auto params = q.params();
        sgd<T> opt(o);
        for (int k = 0; k < 300; ++k) {
            q.gradient();
            opt.step(params, 0.05);
        }
        const auto w = q.values(), t = q.targets();
        for (std::size_t i = 0; i < w.size(); ++i) CHECK(std::abs(w[i] - t[i]) < 1e-4);
    }
}

TEST_CASE("sgd::step refuses a bad lr and parameters that differ from the first step") {
    quadratic<double> q;
    auto params = q.params();
    sgd<double> opt(sgd_options{}.momentum(0.9));
    q.gradient();
    CHECK_THROWS_WITH_AS(opt.step(params, -0.5),
                         "sgd::step(): lr must be finite and >= 0, got -0.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(opt.step(params, std::numeric_limits<double>::quiet_NaN()),
                         "sgd::step(): lr must be finite and >= 0, got nan", std::invalid_argument);
    CHECK(opt.step_count() == 0);
    CHECK(q.w1[0] == 1.0);  // nothing moved

    auto mismatched = params;
    mismatched[1].grad = mismatched[1].grad.first(2);
    CHECK_THROWS_WITH_AS(
        opt.step(mismatched, 0.1),
        "sgd::step(): parameter 'bias' has a value of 3 elements and a gradient of 2",
        std::invalid_argument);

    opt.step(params, 0.1);
    const auto after_one = q.values();

    quadratic<double> bigger(7, 3);
    auto other = bigger.params();
    CHECK_THROWS_WITH_AS(
        opt.step(other, 0.1),
        "sgd::step(): parameter 'weight' has 7 elements, its optimizer state has 6 "
        "(built for 'weight' at the first step)",
        std::invalid_argument);
    auto fewer = params;
    fewer.pop_back();
    CHECK_THROWS_WITH_AS(
        opt.step(fewer, 0.1),
        "sgd::step(): got 1 parameters, the optimizer state was built for 2 at the "
        "first step",
        std::invalid_argument);
    CHECK(q.values() == after_one);
    CHECK(opt.step_count() == 1);
}

TEST_CASE_TEMPLATE("sgd::step allocates nothing after the first step", T, float, double) {
    quadratic<T> q(64, 8);
    auto params = q.params();
    sgd<T> opt(sgd_options{}.momentum(0.9).nesterov(true).weight_decay(1e-3));
    q.gradient();
    opt.step(params, 0.1);
    const auto before = allocations;
    for (int k = 0; k < 10; ++k) opt.step(params, 0.1);
    CHECK(allocations == before);
}

TEST_CASE_TEMPLATE("sgd state round trip continues bitwise identically", T, float, double) {
    for (const auto& o : {sgd_options{}.momentum(0.9).weight_decay(1e-2), sgd_options{}}) {
        quadratic<T> a, b;
        auto pa = a.params();
        auto pb = b.params();
        sgd<T> uninterrupted(o), first_half(o);
        for (int k = 0; k < 3; ++k) {
            a.gradient();
            uninterrupted.step(pa, 0.1);
            b.gradient();
            first_half.step(pb, 0.1);
        }
        sgd<T> resumed(o);
        load(resumed, saved(first_half), pb);
        CHECK(resumed.step_count() == 3);
        for (int k = 0; k < 3; ++k) {
            a.gradient();
            uninterrupted.step(pa, 0.05);
            b.gradient();
            resumed.step(pb, 0.05);
        }
        CHECK(a.w1 == b.w1);  // bitwise: exact equality
        CHECK(a.w2 == b.w2);
        CHECK(saved(uninterrupted) == saved(resumed));
    }
}

TEST_CASE("sgd state saved before the first step loads as a fresh optimizer") {
    quadratic<double> a, b;
    auto pa = a.params();
    auto pb = b.params();
    const auto o = sgd_options{}.momentum(0.9);
    sgd<double> fresh(o), loaded(o), used(o);
    b.gradient();
    used.step(pb, 0.1);  // loading must also discard this state
    b = quadratic<double>();
    pb = b.params();
    load(used, saved(fresh), pb);
    CHECK(used.step_count() == 0);
    for (int k = 0; k < 3; ++k) {
        a.gradient();
        fresh.step(pa, 0.1);
        b.gradient();
        used.step(pb, 0.1);
    }
    CHECK(a.w1 == b.w1);
    CHECK(a.w2 == b.w2);
}

TEST_CASE("sgd::load_state refuses a state that does not fit, and leaves the optimizer unchanged") {
    const auto o = sgd_options{}.momentum(0.9);
    quadratic<double> q;
    auto params = q.params();
    sgd<double> source(o);
    q.gradient();
    source.step(params, 0.1);
    const auto bytes = saved(source);

    sgd<double> target(o);
    quadratic<double> t;
    auto tp = t.params();
    t.gradient();
    target.step(tp, 0.1);
    target.step(tp, 0.1);
    const auto before = saved(target);

    SUBCASE("another architecture: a parameter of another size") {
        quadratic<double> other(5, 3);
        CHECK_THROWS_WITH_AS(
            load(target, bytes, other.params()),
            "sgd::load_state(): parameter 'weight' has 5 elements, the saved state "
            "has 6 for 'weight' (a state from another architecture?)",
            std::invalid_argument);
    }
    SUBCASE("another architecture: another parameter count") {
        auto fewer = params;
        fewer.pop_back();
        CHECK_THROWS_WITH_AS(load(target, bytes, fewer),
                             "sgd::load_state(): the model has 1 parameters, the saved state has 2 "
                             "(a state from another architecture?)",
                             std::invalid_argument);
    }
    SUBCASE("a truncated buffer") {
        auto cut = bytes;
        cut.resize(cut.size() - 5);
        CHECK_THROWS_WITH_AS(load(target, cut, params),
                             doctest::Contains("optimizer state: momentum buffer is truncated"),
                             io_error);
    }
    SUBCASE("other options") {
        sgd<double> plain(sgd_options{}.momentum(0.5));
        CHECK_THROWS_WITH_AS(load(plain, bytes, params),
                             "sgd::load_state(): the saved state has momentum 0.90000000000000002, "
                             "this optimizer has 0.5",
                             std::invalid_argument);
        sgd<double> nesterov(sgd_options{}.momentum(0.9).nesterov(true));
        CHECK_THROWS_WITH_AS(
            load(nesterov, bytes, params),
            "sgd::load_state(): the saved state has nesterov false, this optimizer "
            "has true",
            std::invalid_argument);
    }
    SUBCASE("another value type") {
        std::vector<float> w(6), g(6), b(3), gb(3);
        std::vector<parameter_view<float>> fp{{"weight", {6}, w, g}, {"bias", {3}, b, gb}};
        sgd<float> single(o);
        CHECK_THROWS_WITH_AS(
            load(single, bytes, fp),
            "sgd::load_state(): the saved state holds 8-byte values, this optimizer "
            "4-byte values (float and double states do not mix)",
            std::invalid_argument);
    }
    SUBCASE("another optimizer's state") {
        io::binary_writer out;
        adam<double>().save_state(out);
        CHECK_THROWS_WITH_AS(
            load(target, out.bytes(), params),
            "optimizer state: optimizer tag is 'adam', expected 'sgd' (at byte 12)", io_error);
    }
    CHECK(saved(target) == before);
}

}  // namespace test_sgd
