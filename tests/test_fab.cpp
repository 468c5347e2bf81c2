// FAB and FAB-T (attacks/fab.hpp): the projections against a solution found by bisection, and
// the attack's properties.
#include <doctest/doctest.h>

#include <advaug/attacks/fab.hpp>
#include <advaug/attacks/pgd.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "support/attack_fixtures.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_fab {

using namespace advaug;
using testing::count;

namespace {

struct hyperplane_problem {
    std::vector<double> t, w, lo, hi;
    double b;
};

/// A random point in a random box and a random hyperplane; some problems are reachable within
/// the box, some not.
hyperplane_problem random_problem(rng& gen, std::size_t n) {
    hyperplane_problem p;
    p.t.resize(n);
    p.w.resize(n);
    p.lo.resize(n);
    p.hi.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        p.lo[i] = gen.uniform(-1, 0);
        p.hi[i] = p.lo[i] + gen.uniform(0.2, 2);
        p.t[i] = gen.uniform(p.lo[i], p.hi[i]);
        p.w[i] = gen.uniform() < 0.15 ? 0.0 : gen.normal();
    }
    double wt = 0;
    for (std::size_t i = 0; i < n; ++i) wt += p.w[i] * p.t[i];
    p.b = wt + gen.normal() * 2;
    return p;
}

/// The box's extreme value of w.z in the direction of b, and whether b is within reach.
bool reachable(const hyperplane_problem& p) {
    double lo = 0, hi = 0;
    for (std::size_t i = 0; i < p.t.size(); ++i) {
        lo += std::min(p.w[i] * p.lo[i], p.w[i] * p.hi[i]);
        hi += std::max(p.w[i] * p.lo[i], p.w[i] * p.hi[i]);
    }
    return p.b >= lo && p.b <= hi;
}

/// The smallest norm that reaches the hyperplane within the box, by bisection on the radius (L-inf)
/// or on the multiplier (L2), where each coordinate moves by the clipped step towards b.
double reference_norm(const hyperplane_problem& p, norm n) {
    const std::size_t d = p.t.size();
    double c = -p.b;
    for (std::size_t i = 0; i < d; ++i) c += p.w[i] * p.t[i];
    const double sign = c >= 0 ? -1 : 1;  // the direction of w in which to move
    auto step = [&](double lambda, std::size_t i) {
        const double want = n == norm::linf ? (p.w[i] == 0 ? 0 : (sign * p.w[i] > 0 ? lambda : -lambda))
                                            : sign * lambda * p.w[i];
        return std::clamp(want, p.lo[i] - p.t[i], p.hi[i] - p.t[i]);
    };
    auto change = [&](double lambda) {
        double v = 0;
        for (std::size_t i = 0; i < d; ++i) v += p.w[i] * step(lambda, i);
        return v;
    };
    double lo = 0, hi = 1e3;
    for (int it = 0; it < 200; ++it) {
        const double mid = 0.5 * (lo + hi);
        if (std::abs(change(mid)) < std::abs(c)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    std::vector<double> delta(d);
    for (std::size_t i = 0; i < d; ++i) delta[i] = step(hi, i);
    return detail::fab_norm(n, delta);
}

}  // namespace

TEST_CASE("FAB's projections reach the hyperplane inside the box with the smallest norm") {
    rng gen(5);
    detail::fab_projection_scratch scratch;  // reused across problems, as the attack does
    std::size_t reached = 0, checked = 0;
    for (int trial = 0; trial < 400; ++trial) {
        // small problems, and image-sized ones where many points sit on a side of the box (as
        // black pixels do), so that many distances to the box tie
        const bool large = trial % 4 == 3;
        const std::size_t n = large ? 200 + static_cast<std::size_t>(gen.uniform() * 600)
                                    : 1 + static_cast<std::size_t>(gen.uniform() * 12);
        auto p = random_problem(gen, n);
        if (large) {
            for (std::size_t i = 0; i < n; ++i) {
                const double u = gen.uniform();
                if (u < 0.3) p.t[i] = p.lo[i];
                else if (u < 0.4) p.t[i] = p.hi[i];
            }
        }
        for (norm nm : {norm::linf, norm::l2}) {
            CAPTURE(trial);
            CAPTURE(static_cast<int>(nm));
            std::vector<double> d;
            if (nm == norm::linf) {
                detail::fab_projection_linf(p.t, p.w, p.b, p.lo, p.hi, d, scratch);
            } else {
                detail::fab_projection_l2(p.t, p.w, p.b, p.lo, p.hi, d);
            }
            REQUIRE(d.size() == n);
            double wz = 0;
            for (std::size_t i = 0; i < n; ++i) {
                CHECK(p.t[i] + d[i] >= p.lo[i] - 1e-9);
                CHECK(p.t[i] + d[i] <= p.hi[i] + 1e-9);
                wz += p.w[i] * (p.t[i] + d[i]);
            }
            ++checked;
            if (!reachable(p)) continue;
            ++reached;
            CHECK(wz == doctest::Approx(p.b).epsilon(1e-7).scale(1));
            CHECK(detail::fab_norm(nm, d) == doctest::Approx(reference_norm(p, nm)).epsilon(1e-6).scale(1));
        }
    }
    CHECK(reached > checked / 3);
}

TEST_CASE_TEMPLATE("fab and fab_t stay in the ball and the domain, and only keep misclassified points",
                   T, float, double) {
    const testing::blob_problem<T> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    const auto clean = testing::correct(p.net, x, y);
    for (double eps : {0.05, 0.3}) {
        CAPTURE(eps);
        const auto untargeted = fab(p.net, x, y, fab_options{}.epsilon(eps).n_iter(20));
        const auto targeted = fab_t(p.net, x, y, fab_t_options{}.epsilon(eps).n_iter(20).n_target_classes(3));
        const auto l2 = fab_t(p.net, x, y, fab_t_options{}.epsilon(3 * eps).norm(norm::l2).n_iter(20).n_target_classes(3));
        for (const auto* adv : {&untargeted, &targeted, &l2}) {
            CHECK(testing::in_unit_box(*adv));
            const auto at_adv = testing::correct(p.net, *adv, y);
            for (std::size_t s = 0; s < y.size(); ++s) {
                CAPTURE(s);
                // a sample moves only where the result is misclassified, and only if it was
                // classified correctly at x
                if (!(xt::view(*adv, s, xt::all()) == xt::view(x, s, xt::all()))) {
                    CHECK(clean[s]);
                    CHECK_FALSE(at_adv[s]);
                }
            }
        }
        CHECK(testing::max_abs_diff(untargeted, x) <= eps + 1e-6);
        CHECK(testing::max_abs_diff(targeted, x) <= eps + 1e-6);
        CHECK(testing::max_l2_distance(l2, x) <= 3 * eps * (1 + 1e-6));
        if (eps == 0.3) {
            // a large budget breaks most samples
            CHECK(count(testing::correct(p.net, targeted, y)) < count(clean) / 2);
        }
    }
}

TEST_CASE("fab-t is as strong as pgd at the same radius, and finds every sample pgd breaks "
          "within twice that radius") {
    // FAB minimizes the norm: it breaks a sample when its boundary lies within eps, so at the
    // same eps it should break about what PGD-20 breaks, and at 2 eps everything PGD breaks at eps.
    const testing::blob_problem<double> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    const double eps = 0.08;
    const auto by_pgd = testing::correct(p.net, pgd(p.net, x, y, pgd_options{}.epsilon(eps).steps(20)), y);
    const auto by_fab = testing::correct(p.net, fab_t(p.net, x, y, fab_t_options{}.epsilon(eps)), y);
    const auto by_fab2 = testing::correct(p.net, fab_t(p.net, x, y, fab_t_options{}.epsilon(2 * eps)), y);
    const std::size_t broken_pgd = y.size() - count(by_pgd), broken_fab = y.size() - count(by_fab);
    std::size_t missed = 0;
    for (std::size_t s = 0; s < y.size(); ++s) missed += (!by_pgd[s] && by_fab2[s]) ? 1 : 0;
    MESSAGE("broken at eps: pgd-20 ", broken_pgd, ", fab-t ", broken_fab,
            "; broken by pgd at eps but not by fab-t at 2 eps: ", missed);
    REQUIRE(broken_pgd >= 20);
    CHECK(static_cast<double>(broken_fab) >= 0.9 * static_cast<double>(broken_pgd));
    // FAB's linearization may stop short on a few samples; allow 5 % of PGD's
    CHECK(static_cast<double>(missed) <= 0.05 * static_cast<double>(broken_pgd));
}

TEST_CASE("fab: the same seed gives the same result; restarts and further targets only add") {
    const testing::blob_problem<float> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    const auto o = fab_t_options{}.epsilon(0.06).n_iter(15).n_target_classes(2).seed(4);
    const auto a = fab_t(p.net, x, y, o);
    CHECK(fab_t(p.net, x, y, o) == a);
    attack_workspace<mlp<float>> ws;
    CHECK(fab_t(p.net, x, y, o, ws) == a);
    const auto more = fab_t(p.net, x, y, fab_t_options(o).n_target_classes(4).restarts(2));
    const auto at_a = testing::correct(p.net, a, y);
    const auto at_more = testing::correct(p.net, more, y);
    for (std::size_t s = 0; s < y.size(); ++s) {
        if (!at_a[s]) CHECK_FALSE(at_more[s]);
    }
    // untargeted, with restarts
    const auto u = fab(p.net, x, y, fab_options{}.epsilon(0.06).n_iter(15).restarts(3).seed(2));
    CHECK(fab(p.net, x, y, fab_options{}.epsilon(0.06).n_iter(15).restarts(3).seed(2)) == u);
}

TEST_CASE("fab: eps 0 returns x; L2 under per-feature normalization measures raw units") {
    const testing::blob_problem<double> p;
    CHECK(fab(p.net, p.data.x, p.data.y, fab_options{}.epsilon(0)) == p.data.x);
    std::vector<double> mean(20), sd(20);
    for (std::size_t d = 0; d < 20; ++d) {
        mean[d] = 0.3 + 0.01 * static_cast<double>(d);
        sd[d] = 0.1 + 0.02 * static_cast<double>(d);
    }
    const auto domain = input_domain{}.normalization(mean, sd);
    const auto z = domain.normalize(p.data.x);
    const auto net = testing::train_mlp<double>(z, p.data.y, {20, 32, 10}, 300, 0.2);
    const double eps = 0.5;
    const auto adv = domain.denormalize(
        fab_t(net, z, p.data.y, fab_t_options{}.epsilon(eps).norm(norm::l2).n_iter(30).domain(domain)));
    CHECK(testing::max_l2_distance(adv, p.data.x) <= eps * (1 + 1e-9));
    CHECK(testing::max_l2_distance(adv, p.data.x) > 0.2 * eps);
    CHECK(xt::amin(adv)() >= -1e-12);
    CHECK(xt::amax(adv)() <= 1 + 1e-12);
}

TEST_CASE("fab on an unbounded domain: a side without a bound does not stop the projection") {
    // A linear model whose class 1 lies below the box [0, 1]: logit 1 - logit 0 =
    // -(x_0 + x_1 + x_2 + x_3) - 0.05, so no point of the box is misclassified and the boxed
    // attack can break nothing. Without the lower bound the boundary lies (0.05 + sum x) / 4 away
    // in L-inf, under eps here, and FAB's first step, exact on a linear model, crosses it.
    mlp<double> net({4, 2}, 1);
    for (auto& prm : net.parameters()) {
        const bool weight = prm.shape.size() == 2;
        for (std::size_t i = 0; i < prm.value.size(); ++i) {
            // weight [2, 4]: row 0 zeros, row 1 -1; bias {0.05, 0}
            prm.value[i] = weight ? (i < 4 ? 0.0 : -1.0) : (i == 0 ? 0.05 : 0.0);
        }
    }
    tensor<double, 2> x = xt::zeros<double>({6, 4});
    for (std::size_t s = 0; s < 6; ++s) x(s, s % 4) = 0.01 * static_cast<double>(s);
    const label_vector y = xt::zeros<std::int64_t>({6});
    REQUIRE(count(testing::correct(net, x, y)) == 6);
    const double eps = 0.08;
    const auto o = fab_t_options{}.epsilon(eps).n_iter(10).n_target_classes(1);
    const auto open = fab_t(net, x, y, fab_t_options(o).domain(input_domain::unbounded()));
    CHECK(count(testing::correct(net, open, y)) == 0);
    CHECK(testing::max_abs_diff(open, x) <= eps + 1e-12);
    CHECK(xt::amin(open)() < 0);
    const auto boxed = fab_t(net, x, y, fab_t_options(o).domain(input_domain{}));
    CHECK(boxed == x);
}

TEST_CASE("fab options and arguments refuse bad values with the function, option and value") {
    CHECK_THROWS_WITH_AS(fab_options{}.n_iter(0), "fab_options::n_iter(): n_iter must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fab_t_options{}.restarts(0),
                         "fab_t_options::restarts(): restarts must be >= 1, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(fab_options{}.alpha_max(1.5),
                         "fab_options::alpha_max(): alpha_max must be in [0, 1], got 1.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fab_options{}.eta(0.5), "fab_options::eta(): eta must be finite and >= 1, got 0.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fab_options{}.beta(1), "fab_options::beta(): beta must be in (0, 1), got 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fab_t_options{}.n_target_classes(0),
                         "fab_t_options::n_target_classes(): n_target_classes must be >= 1, got 0",
                         std::invalid_argument);
    const testing::blob_problem<double> p;
    CHECK_THROWS_WITH_AS(fab_t(p.net, p.data.x, p.data.y, fab_t_options{}.epsilon(0.1).n_target_classes(10)),
                         doctest::Contains("fab_t(): n_target_classes = 10 needs more classes than the model's 10"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fab(p.net, p.data.x, p.data.y, fab_options{}),
                         doctest::Contains("fab"), std::invalid_argument);
}

}  // namespace test_fab
