#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_pgd {

using namespace advaug;

namespace {
template <class M, class T>
tensor<T, 1> per_sample(const M& model, const tensor<T, 2>& x, const label_vector& y) {
    typename M::cache_type c;
    tensor<T, 2> logits;
    model.forward(x, c, logits);
    return cross_entropy_per_sample(logits, y);
}

template <class T>
double l2_norm_row(const tensor<T, 2>& a, const tensor<T, 2>& b, std::size_t n) {
    double s = 0;
    for (std::size_t d = 0; d < a.shape()[1]; ++d) {
        const double v = static_cast<double>(a(n, d)) - static_cast<double>(b(n, d));
        s += v * v;
    }
    return std::sqrt(s);
}

// A small MLP trained for a few steps so that its loss surface is not flat.
mlp<double> trained_mlp(const tensor<double, 2>& x, const label_vector& y) {
    mlp<double> net({16, 32, 4}, 5);
    typename mlp<double>::cache_type c;
    tensor<double, 2> logits, g;
    for (int step = 0; step < 100; ++step) {
        net.zero_grad();
        net.forward(x, c, logits);
        cross_entropy_gradient(logits, y, g);
        net.parameter_gradient(c, g);
        for (auto& p : net.parameters())
            for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= 0.5 * p.grad[i];
    }
    return net;
}
}  // namespace

TEST_CASE_TEMPLATE("L-inf pgd and bim stay within eps and inside the domain", T, float, double) {
    mlp<T> net({12, 16, 4}, 7);
    const auto x = testing::uniform_batch<T>(24, 12, 1);
    const auto y = testing::cyclic_labels(24, 4);
    for (double eps : {0.02, 0.2}) {
        const auto a = pgd(net, x, y, pgd_options{}.epsilon(eps).steps(5).restarts(2));
        const auto b = bim(net, x, y, pgd_options{}.epsilon(eps).steps(5));
        for (const auto* adv : {&a, &b}) {
            CHECK(testing::max_abs_diff(*adv, x) <= eps + 1e-6);
            CHECK(xt::amin(*adv)() >= T(0));
            CHECK(xt::amax(*adv)() <= T(1));
        }
    }
}

TEST_CASE("L2 pgd stays in the raw-unit L2 ball, also with per-feature normalization") {
    const auto domain = input_domain{}.normalization({0.5, 0.4, 0.3, 0.2, 0.1, 0.0},
                                                     {0.1, 0.2, 0.3, 0.4, 0.5, 1.0});
    mlp<double> net({6, 16, 3}, 2);
    const auto raw = testing::uniform_batch<double>(10, 6, 3);
    const auto y = testing::cyclic_labels(10, 3);
    const double eps = 0.3;
    const auto opts = pgd_options{}.norm(norm::l2).epsilon(eps).steps(10).step_size(0.1).domain(domain);
    const auto adv = domain.denormalize(pgd(net, domain.normalize(raw), y, opts));
    double largest = 0;
    for (std::size_t n = 0; n < 10; ++n) {
        const double r = l2_norm_row(adv, raw, n);
        CHECK(r <= eps + 1e-9);
        largest = std::max(largest, r);
    }
    CHECK(largest > 0.9 * eps);  // the attack uses the ball
    CHECK(xt::amin(adv)() >= -1e-12);
    CHECK(xt::amax(adv)() <= 1 + 1e-12);
}

TEST_CASE_TEMPLATE("eps = 0 returns x unchanged for pgd, bim and fgm", T, float, double) {
    mlp<T> net({5, 8, 3}, 1);
    const auto x = testing::uniform_batch<T>(10, 5, 2);
    const auto y = testing::cyclic_labels(10, 3);
    CHECK(pgd(net, x, y, pgd_options{}.epsilon(0).step_size(0.1)) == x);
    CHECK(pgd(net, x, y, pgd_options{}.epsilon(0).step_size(0.1).norm(norm::l2)) == x);
    CHECK(bim(net, x, y, pgd_options{}.epsilon(0).step_size(0.1)) == x);
    CHECK(fgm(net, x, y, fgm_options{}.epsilon(0)) == x);
}

TEST_CASE("pgd's loss is at least fgsm's on the same batch") {
    const auto x = testing::uniform_batch<double>(64, 16, 21);
    const auto y = testing::cyclic_labels(64, 4);
    const auto net = trained_mlp(x, y);
    for (double eps : {0.05, 0.1, 0.2}) {
        const auto l_fgsm = per_sample(net, fgsm(net, x, y, fgsm_options{}.epsilon(eps)), y);
        const auto l_pgd = per_sample(net, pgd(net, x, y, pgd_options{}.epsilon(eps).steps(20)), y);
        CHECK(xt::mean(l_pgd)() >= xt::mean(l_fgsm)());
    }
}

TEST_CASE("restarts keep the worst example per sample") {
    const auto x = testing::uniform_batch<double>(32, 16, 4);
    const auto y = testing::cyclic_labels(32, 4);
    const auto net = trained_mlp(x, y);
    const auto base = pgd_options{}.epsilon(0.1).steps(3).seed(9);
    // restart 0 of both runs draws the same start, so more restarts can only raise each loss
    const auto one = per_sample(net, pgd(net, x, y, base), y);
    const auto five = per_sample(net, pgd(net, x, y, pgd_options(base).restarts(5)), y);
    for (std::size_t n = 0; n < 32; ++n) CHECK(five(n) >= one(n));
    CHECK(xt::sum(five)() > xt::sum(one)());
}

TEST_CASE("a targeted pgd lowers the target's loss more than one fgsm step") {
    const auto x = testing::uniform_batch<double>(32, 16, 6);
    const auto y = testing::cyclic_labels(32, 4);
    const auto net = trained_mlp(x, y);
    label_vector target = y;
    for (auto& t : target) t = (t + 1) % 4;
    const double before = xt::mean(per_sample(net, x, target))();
    const auto opts = pgd_options{}.epsilon(0.1).steps(10).targeted(true);
    const double after_pgd = xt::mean(per_sample(net, pgd(net, x, target, opts), target))();
    const double after_fgsm = xt::mean(
        per_sample(net, fgsm(net, x, target, fgsm_options{}.epsilon(0.1).targeted(true)), target))();
    CHECK(after_fgsm < before);
    CHECK(after_pgd <= after_fgsm);
}

TEST_CASE("pgd is deterministic for a seed and differs across seeds") {
    mlp<float> net({8, 8, 3}, 3);
    const auto x = testing::uniform_batch<float>(6, 8, 1);
    const auto y = testing::cyclic_labels(6, 3);
    const auto o = pgd_options{}.epsilon(0.1).steps(2);
    CHECK(pgd(net, x, y, pgd_options(o).seed(1)) == pgd(net, x, y, pgd_options(o).seed(1)));
    CHECK_FALSE(pgd(net, x, y, pgd_options(o).seed(1)) == pgd(net, x, y, pgd_options(o).seed(2)));
}

TEST_CASE("fgm moves each sample by exactly eps in raw-unit L2 when the domain allows") {
    mlp<double> net({10, 12, 3}, 8);
    const auto x = testing::uniform_batch<double>(8, 10, 2, 0.3, 0.7);
    const auto y = testing::cyclic_labels(8, 3);
    const auto adv = fgm(net, x, y, fgm_options{}.epsilon(0.2));
    for (std::size_t n = 0; n < 8; ++n) CHECK(l2_norm_row(adv, x, n) == doctest::Approx(0.2));
    CHECK(xt::mean(per_sample(net, adv, y))() > xt::mean(per_sample(net, x, y))());
}

TEST_CASE("pgd options refuse bad values with the option and the value") {
    CHECK_THROWS_WITH_AS(pgd_options{}.steps(0), "pgd_options::steps(): steps must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(pgd_options{}.step_size(0),
                         "pgd_options::step_size(): step_size must be finite and > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(pgd_options{}.step_size(-0.5),
                         "pgd_options::step_size(): step_size must be finite and > 0, got -0.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(pgd_options{}.step_size(std::numeric_limits<double>::infinity()),
                         doctest::Contains("step_size must be finite and > 0, got inf"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(pgd_options{}.restarts(0),
                         "pgd_options::restarts(): restarts must be >= 1, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(pgd_options{}.epsilon(-1),
                         "pgd_options::epsilon(): epsilon must be finite and >= 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgm_options{}.epsilon(-2),
                         "fgm_options::epsilon(): epsilon must be finite and >= 0, got -2",
                         std::invalid_argument);
    mlp<double> net({4, 4, 2}, 0);
    const auto x = testing::uniform_batch<double>(2, 4, 0);
    CHECK_THROWS_WITH_AS(pgd(net, x, label_vector{0, 2}, pgd_options{}.epsilon(0.1)),
                         "pgd(): labels[1] = 2 is outside [0, 2)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(pgd(net, x, label_vector{0, 1}, pgd_options{}),
                         "pgd(): epsilon was not set; call .epsilon(value) on the options",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgm(net, x, label_vector{0}, fgm_options{}.epsilon(1)),
                         "fgm(): labels has 1 entries, the batch has 2 rows", std::invalid_argument);
}

}  // namespace test_pgd
