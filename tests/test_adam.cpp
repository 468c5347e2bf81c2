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
namespace test_adam {

using advaug::testing::allocations;
using advaug::testing::quadratic;
using advaug::testing::check_close;
using advaug::testing::load;
using advaug::testing::saved;

namespace {

/// torch.optim.Adam / AdamW, element by element in double, on the concatenated parameters,
/// in the paper's form: bias-corrected moments m_hat and v_hat.
struct reference_adam {
    double beta1, beta2, eps, weight_decay;
    bool decoupled;
    std::vector<double> m, v;
    int t = 0;

    void step(std::vector<double>& w, const std::vector<double>& target, double lr) {
        m.resize(w.size());
        v.resize(w.size());
        ++t;
        for (std::size_t i = 0; i < w.size(); ++i) {
            double g = w[i] - target[i];
            if (decoupled) {
                w[i] = w[i] - lr * weight_decay * w[i];
            } else {
                g = g + weight_decay * w[i];
            }
            m[i] = beta1 * m[i] + (1 - beta1) * g;
            v[i] = beta2 * v[i] + (1 - beta2) * g * g;
            const double m_hat = m[i] / (1 - std::pow(beta1, t));
            const double v_hat = v[i] / (1 - std::pow(beta2, t));
            w[i] = w[i] - lr * m_hat / (std::sqrt(v_hat) + eps);
        }
    }
};

}  // namespace

TEST_CASE("adam_options validates every value, naming the option and the value") {
    CHECK_THROWS_WITH_AS(adam_options{}.beta1(1),
                         "adam_options::beta1(): beta1 must be in [0, 1), got 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(adam_options{}.beta1(-0.5),
                         "adam_options::beta1(): beta1 must be in [0, 1), got -0.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(adam_options{}.beta2(1.5),
                         "adam_options::beta2(): beta2 must be in [0, 1), got 1.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(adam_options{}.beta2(std::nan("")),
                         "adam_options::beta2(): beta2 must be in [0, 1), got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(adam_options{}.eps(0),
                         "adam_options::eps(): eps must be finite and > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(adam_options{}.eps(std::numeric_limits<double>::infinity()),
                         "adam_options::eps(): eps must be finite and > 0, got inf",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        adam_options{}.weight_decay(-0.5),
        "adam_options::weight_decay(): weight_decay must be finite and >= 0, got -0.5",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        adamw_options(-1),
        "adam_options::weight_decay(): weight_decay must be finite and >= 0, got -1",
        std::invalid_argument);

    const adam_options d;  // PyTorch's defaults
    CHECK(d.beta1() == 0.9);
    CHECK(d.beta2() == 0.999);
    CHECK(d.eps() == 1e-8);
    CHECK(d.weight_decay() == 0);
    CHECK_FALSE(d.decoupled());
    CHECK(adamw_options().weight_decay() == 0.01);
    CHECK(adamw_options().decoupled());
    CHECK(adamw_options(0.05).weight_decay() == 0.05);
    const auto o = adam_options{}.beta1(0).beta2(0.5).eps(1e-3).weight_decay(0.1).decoupled(true);
    CHECK(adam<float>(o).options() == o);
}

TEST_CASE("adam matches hand-computed values on w = 1, grad = w, lr = 0.1") {
    // Step 1 moves by lr * g / (|g| + eps): m_hat = g and v_hat = g^2 after bias correction.
    // AdamW first shrinks w by 1 - lr * wd; Adam with L2 uses g = 1.1 w instead.
    struct config {
        std::string name;
        adam_options options;
        std::vector<double> want;
    };
    const config configs[] = {
        {"adam", adam_options{}, {0.900000001, 0.8004122297123382, 0.701586274504415}},
        {"adamw", adamw_options(0.1), {0.890000001, 0.7815718569541611, 0.6751012231892007}},
        {"adam l2",
         adam_options{}.weight_decay(0.1),
         {0.9000000009090909, 0.8004122295267845, 0.7015862742210723}},
    };
    for (const auto& c : configs) {
        CAPTURE(c.name);
        std::vector<double> w{1.0}, g{0.0};
        std::vector<parameter_view<double>> params{{"w", {1}, w, g}};
        adam<double> opt(c.options);
        std::vector<double> got;
        for (int k = 0; k < 3; ++k) {
            g[0] = w[0];
            opt.step(params, 0.1);
            got.push_back(w[0]);
        }
        check_close(got, c.want, 1e-12);
        CHECK(opt.step_count() == 3);
    }
}

TEST_CASE_TEMPLATE("adam and adamw follow torch.optim over 3 steps", T, float, double) {
    struct config {
        std::string name;
        adam_options options;
        double lr;
    };
    const config configs[] = {
        {"adam", adam_options{}, 0.1},
        {"adam betas", adam_options{}.beta1(0.5).beta2(0.9).eps(1e-3), 0.2},
        {"adam l2", adam_options{}.weight_decay(0.1), 0.1},
        {"adamw", adamw_options(0.1), 0.1},
        {"adamw default", adamw_options(), 0.05},
    };
    for (const auto& c : configs) {
        CAPTURE(c.name);
        quadratic<T> q;
        auto params = q.params();
        adam<T> opt(c.options);
        const auto& o = c.options;
        reference_adam ref{o.beta1(), o.beta2(), o.eps(), o.weight_decay(), o.decoupled(), {}, {}};
        auto w = q.values();
        // lr changes between steps: the moments must not absorb it.
        for (double scale : {1.0, 0.5, 2.0}) {
            q.gradient();
            opt.step(params, c.lr * scale);
            ref.step(w, q.targets(), c.lr * scale);
            check_close(q.values(), w, 1e-6);
        }
    }
}

TEST_CASE_TEMPLATE("adam minimizes a quadratic", T, float, double) {
    for (const auto& o : {adam_options{}, adamw_options(1e-4)}) {
        quadratic<T> q;
        auto params = q.params();
        adam<T> opt(o);
        for (int k = 0; k < 400; ++k) {
            q.gradient();
            opt.step(params, 0.1);
        }
        const auto w = q.values(), t = q.targets();
        for (std::size_t i = 0; i < w.size(); ++i) CHECK(std::abs(w[i] - t[i]) < 1e-3);
    }
}

TEST_CASE("adam::step refuses a bad lr and parameters that differ from the first step") {
    quadratic<double> q;
    auto params = q.params();
    adam<double> opt;
    q.gradient();
    CHECK_THROWS_WITH_AS(opt.step(params, std::numeric_limits<double>::infinity()),
                         "adam::step(): lr must be finite and >= 0, got inf",
                         std::invalid_argument);
    CHECK(opt.step_count() == 0);
    opt.step(params, 0.1);
    const auto after_one = q.values();
    quadratic<double> other(6, 4);
    auto op = other.params();
    CHECK_THROWS_WITH_AS(opt.step(op, 0.1),
                         "adam::step(): parameter 'bias' has 4 elements, its optimizer state has 3 "
                         "(built for 'bias' at the first step)",
                         std::invalid_argument);
    auto more = params;
    more.push_back(params[0]);
    CHECK_THROWS_WITH_AS(
        opt.step(more, 0.1),
        "adam::step(): got 3 parameters, the optimizer state was built for 2 at the "
        "first step",
        std::invalid_argument);
    CHECK(q.values() == after_one);
    CHECK(opt.step_count() == 1);
}

TEST_CASE_TEMPLATE("adam::step allocates nothing after the first step", T, float, double) {
    for (const auto& o : {adam_options{}.weight_decay(1e-3), adamw_options()}) {
        quadratic<T> q(64, 8);
        auto params = q.params();
        adam<T> opt(o);
        q.gradient();
        opt.step(params, 0.1);
        const auto before = allocations;
        for (int k = 0; k < 10; ++k) opt.step(params, 0.1);
        CHECK(allocations == before);
    }
}

TEST_CASE_TEMPLATE("adam state round trip continues bitwise identically", T, float, double) {
    for (const auto& o : {adam_options{}, adamw_options(0.05)}) {
        quadratic<T> a, b;
        auto pa = a.params();
        auto pb = b.params();
        adam<T> uninterrupted(o), first_half(o);
        for (int k = 0; k < 3; ++k) {
            a.gradient();
            uninterrupted.step(pa, 0.1);
            b.gradient();
            first_half.step(pb, 0.1);
        }
        adam<T> resumed(o);
        load(resumed, saved(first_half), pb);
        CHECK(resumed.step_count() == 3);  // t drives the bias correction
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

TEST_CASE(
    "adam::load_state refuses a state that does not fit, and leaves the optimizer unchanged") {
    quadratic<double> q;
    auto params = q.params();
    adam<double> source;
    q.gradient();
    source.step(params, 0.1);
    const auto bytes = saved(source);

    adam<double> target;
    quadratic<double> t;
    auto tp = t.params();
    t.gradient();
    target.step(tp, 0.1);
    target.step(tp, 0.1);
    const auto before = saved(target);

    SUBCASE("another architecture: a parameter of another size") {
        quadratic<double> other(6, 2);
        CHECK_THROWS_WITH_AS(load(target, bytes, other.params()),
                             "adam::load_state(): parameter 'bias' has 2 elements, the saved state "
                             "has 3 for 'bias' (a state from another architecture?)",
                             std::invalid_argument);
    }
    SUBCASE("another architecture: another parameter count") {
        auto more = params;
        more.push_back(params[1]);
        CHECK_THROWS_WITH_AS(
            load(target, bytes, more),
            "adam::load_state(): the model has 3 parameters, the saved state has 2 "
            "(a state from another architecture?)",
            std::invalid_argument);
    }
    SUBCASE("a truncated buffer") {
        auto cut = bytes;
        cut.resize(cut.size() - 1);
        CHECK_THROWS_WITH_AS(load(target, cut, params),
                             doctest::Contains("optimizer state: adam second moment is truncated"),
                             io_error);
    }
    SUBCASE("a state cut inside the parameter table") {
        auto cut = bytes;
        cut.resize(100);
        CHECK_THROWS_AS(load(target, cut, params), io_error);
    }
    SUBCASE("other options") {
        adam<double> adamw(adamw_options(0));
        CHECK_THROWS_WITH_AS(
            load(adamw, bytes, params),
            "adam::load_state(): the saved state has decoupled false, this optimizer "
            "has true",
            std::invalid_argument);
        adam<double> other_beta(adam_options{}.beta2(0.5));
        CHECK_THROWS_WITH_AS(
            load(other_beta, bytes, params),
            "adam::load_state(): the saved state has beta2 0.999, this optimizer has 0.5",
            std::invalid_argument);
    }
    SUBCASE("another optimizer's state") {
        io::binary_writer out;
        sgd<double>().save_state(out);
        CHECK_THROWS_WITH_AS(
            load(target, out.bytes(), params),
            "optimizer state: optimizer tag is 'sgd', expected 'adam' (at byte 11)", io_error);
    }
    CHECK(saved(target) == before);
}

}  // namespace test_adam
