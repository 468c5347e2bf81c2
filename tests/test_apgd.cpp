#include <doctest/doctest.h>

#include <advaug/attacks/apgd.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "support/attack_fixtures.hpp"
#include "support/skip.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_apgd {

using namespace advaug;
using testing::count;

namespace {

/// d loss / d z by central differences, against the analytic gradient of a row loss.
template <class F>
void check_row_gradient(F loss, std::vector<double> z) {
    std::vector<double> g(z.size());
    loss(z.data(), g.data());
    for (std::size_t j = 0; j < z.size(); ++j) {
        const double h = 1e-6;
        auto zp = z, zm = z;
        zp[j] += h;
        zm[j] -= h;
        std::vector<double> unused(z.size());
        const double fd =
            (loss(zp.data(), unused.data()) - loss(zm.data(), unused.data())) / (2 * h);
        CAPTURE(j);
        CHECK(g[j] == doctest::Approx(fd).epsilon(1e-5).scale(1));
    }
}

/// The MLP with every input gradient replaced by NaN.
struct nan_gradient {
    using value_type = double;
    static constexpr std::size_t input_rank = 2;
    using cache_type = mlp<double>::cache_type;
    const mlp<double>& inner;
    std::size_t num_classes() const { return inner.num_classes(); }
    void forward(const tensor<double, 2>& x, cache_type& c, tensor<double, 2>& z) const {
        inner.forward(x, c, z);
    }
    void input_gradient(cache_type& c, const tensor<double, 2>& g, tensor<double, 2>& dx) const {
        inner.input_gradient(c, g, dx);
        dx.fill(std::numeric_limits<double>::quiet_NaN());
    }
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

}  // namespace

TEST_CASE("the CE, DLR and targeted DLR row losses have the gradients of their values") {
    // distinct logits, so the sort (and with it the loss) is smooth around them
    const std::vector<double> z{0.3, 2.1, -0.7, 1.4, 0.9, -1.8};
    std::vector<std::size_t> order;
    for (std::size_t y : {1u, 3u}) {  // the label on top, and below it
        CAPTURE(y);
        check_row_gradient([&](const double* v, double* g) { return detail::ce_row(v, 6, y, g); },
                           z);
        check_row_gradient(
            [&](const double* v, double* g) {
                detail::sorted_classes(v, 6, order);
                return detail::dlr_row(v, 6, y, order, g);
            },
            z);
        for (std::size_t t : {0u, 4u}) {
            check_row_gradient(
                [&](const double* v, double* g) {
                    detail::sorted_classes(v, 6, order);
                    return detail::dlr_targeted_row(v, 6, y, t, order, g);
                },
                z);
        }
    }
    // DLR is invariant to shifting and positive scaling of the logits
    std::vector<double> scaled(z.size());
    for (std::size_t j = 0; j < z.size(); ++j) scaled[j] = 3 * z[j] - 5;
    detail::sorted_classes(z.data(), 6, order);
    const double a = detail::dlr_row<double>(z.data(), 6, 3, order, nullptr);
    detail::sorted_classes(scaled.data(), 6, order);
    CHECK(detail::dlr_row<double>(scaled.data(), 6, 3, order, nullptr) == doctest::Approx(a));
}

TEST_CASE("apgd's checkpoints follow the paper: 22, then 19, 16, ... down to 6 of 100") {
    const detail::apgd_checkpoints c(100);
    std::vector<std::size_t> at;
    std::size_t k = c.first, w = 0;
    while (w + k <= 100) {
        w += k;
        at.push_back(w);
        k = c.next(k);
    }
    // p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)
    CHECK(at == std::vector<std::size_t>{22, 41, 57, 70, 80, 87, 93, 99});
    const detail::apgd_checkpoints tiny(3);
    CHECK(tiny.first == 1);
    CHECK(tiny.next(1) == 1);
}

TEST_CASE_TEMPLATE("apgd and apgd_t stay in the ball and the domain", T, float, double) {
    const testing::blob_problem<T> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    for (double eps : {0.03, 0.3}) {
        CAPTURE(eps);
        const auto linf = apgd(p.net, x, y, apgd_options{}.epsilon(eps).n_iter(20));
        const auto dlr =
            apgd(p.net, x, y, apgd_options{}.epsilon(eps).n_iter(20).loss(apgd_loss::dlr));
        const auto targeted =
            apgd_t(p.net, x, y, apgd_t_options{}.epsilon(eps).n_iter(10).n_target_classes(3));
        for (const auto* adv : {&linf, &dlr, &targeted}) {
            CHECK(testing::max_abs_diff(*adv, x) <= eps + 1e-6);
            CHECK(testing::in_unit_box(*adv));
        }
        const auto l2 =
            apgd(p.net, x, y, apgd_options{}.epsilon(3 * eps).norm(norm::l2).n_iter(20));
        const auto l2t =
            apgd_t(p.net, x, y,
                   apgd_t_options{}.epsilon(3 * eps).norm(norm::l2).n_iter(10).n_target_classes(2));
        for (const auto* adv : {&l2, &l2t}) {
            CHECK(testing::max_l2_distance(*adv, x) <= 3 * eps * (1 + 1e-6));
            CHECK(testing::in_unit_box(*adv));
        }
    }
}

TEST_CASE("apgd attacks images of rank 4, and a workspace changes nothing but the buffers") {
    cnn<float> net(4);
    auto x = tensor<float, 4>::from_shape({3, 1, 28, 28});
    rng gen(8);
    for (auto& v : x) v = static_cast<float>(gen.uniform(0.1, 0.9));
    const label_vector y = xt::argmax(testing::logits_of(net, x), 1);
    const auto o = apgd_options{}.epsilon(0.02).n_iter(5);
    const auto adv = apgd(net, x, y, o);
    CHECK(testing::max_abs_diff(adv, x) <= 0.02 + 1e-6);
    CHECK(testing::max_abs_diff(adv, x) > 0.01);
    attack_workspace<cnn<float>> ws;
    CHECK(apgd(net, x, y, o, ws) == adv);
    CHECK(apgd(net, x, y, o, ws) == adv);
}

TEST_CASE("a non-finite input gradient stops apgd, naming the sample in the caller's batch") {
    const testing::blob_problem<double> p;
    auto y = p.data.y;
    y(0) = (y(0) + 1) % 10;  // misclassified: not attacked, so row 1 is the first attacked
    REQUIRE(testing::correct(p.net, p.data.x, y)[1]);
    const nan_gradient broken{p.net};
    CHECK_THROWS_WITH_AS(
        apgd(broken, p.data.x, y, apgd_options{}.epsilon(0.1)),
        doctest::Contains("apgd(): the input gradient is nan at sample 1, element 0"),
        numeric_error);
}

TEST_CASE("L2 apgd measures epsilon in raw units under per-feature normalization") {
    const testing::blob_problem<double> p;
    std::vector<double> mean(20), sd(20);
    for (std::size_t d = 0; d < 20; ++d) {
        mean[d] = 0.3 + 0.01 * static_cast<double>(d);
        sd[d] = 0.1 + 0.02 * static_cast<double>(d);
    }
    const auto domain = input_domain{}.normalization(mean, sd);
    // the network sees normalized inputs: train it on them
    const auto z = domain.normalize(p.data.x);
    const auto net = testing::train_mlp<double>(z, p.data.y, {20, 32, 10}, 300, 0.2);
    const double eps = 0.5;
    const auto adv = domain.denormalize(apgd(
        net, z, p.data.y, apgd_options{}.epsilon(eps).norm(norm::l2).n_iter(20).domain(domain)));
    CHECK(testing::max_l2_distance(adv, p.data.x) <= eps * (1 + 1e-9));
    CHECK(testing::max_l2_distance(adv, p.data.x) > 0.5 * eps);
    CHECK(xt::amin(adv)() >= -1e-12);
    CHECK(xt::amax(adv)() <= 1 + 1e-12);
}

TEST_CASE_TEMPLATE("eps = 0 returns x, and misclassified samples are returned unchanged", T, float,
                   double) {
    const testing::blob_problem<T> p;
    const auto& x = p.data.x;
    auto y = p.data.y;
    CHECK(apgd(p.net, x, y, apgd_options{}.epsilon(0).n_iter(5)) == x);
    CHECK(apgd_t(p.net, x, y, apgd_t_options{}.epsilon(0).n_iter(5).n_target_classes(2)) == x);
    // relabel every third sample: those are misclassified at x and must not move
    for (std::size_t n = 0; n < y.size(); n += 3) y(n) = (y(n) + 1) % 10;
    const auto clean = testing::correct(p.net, x, y);
    const auto adv = apgd(p.net, x, y, apgd_options{}.epsilon(0.1).n_iter(10));
    const std::size_t d = x.shape()[1];
    for (std::size_t n = 0; n < y.size(); ++n) {
        if (clean[n]) continue;
        CAPTURE(n);
        CHECK(xt::view(adv, n, xt::all()) == xt::view(x, n, xt::all()));
        (void)d;
    }
}

TEST_CASE_TEMPLATE("apgd-ce breaks at least as many samples as fgsm and as pgd-10", T, float,
                   double) {
    const testing::blob_problem<T> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    REQUIRE(count(testing::correct(p.net, x, y)) > 180);  // the fixture learned its problem
    for (double eps : {0.08, 0.12}) {
        CAPTURE(eps);
        const auto r_fgsm =
            count(testing::correct(p.net, fgsm(p.net, x, y, fgsm_options{}.epsilon(eps)), y));
        const auto r_pgd =
            count(testing::correct(p.net, pgd(p.net, x, y, pgd_options{}.epsilon(eps)), y));
        const auto r_apgd =
            count(testing::correct(p.net, apgd(p.net, x, y, apgd_options{}.epsilon(eps)), y));
        const auto r_dlr = count(testing::correct(
            p.net, apgd(p.net, x, y, apgd_options{}.epsilon(eps).loss(apgd_loss::dlr)), y));
        CAPTURE(r_fgsm);
        CAPTURE(r_pgd);
        CAPTURE(r_apgd);
        CAPTURE(r_dlr);
        CHECK(r_apgd <= r_fgsm);
        CHECK(r_apgd <= r_pgd);
        CHECK(r_dlr <= r_fgsm);
        CHECK(r_apgd < 150);  // the attack does break samples at these radii
    }
}

TEST_CASE("restarts and further target classes only add broken samples") {
    const testing::blob_problem<double> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    // the first run of both calls is the same run: later ones attack only its survivors
    const auto base = apgd_options{}.epsilon(0.1).n_iter(10).seed(4);
    const auto one = testing::correct(p.net, apgd(p.net, x, y, base), y);
    const auto four = testing::correct(p.net, apgd(p.net, x, y, apgd_options(base).restarts(4)), y);
    const auto tbase = apgd_t_options{}.epsilon(0.1).n_iter(10).seed(4);
    const auto t1 =
        testing::correct(p.net, apgd_t(p.net, x, y, apgd_t_options(tbase).n_target_classes(1)), y);
    const auto t9 =
        testing::correct(p.net, apgd_t(p.net, x, y, apgd_t_options(tbase).n_target_classes(9)), y);
    for (std::size_t n = 0; n < y.size(); ++n) {
        CAPTURE(n);
        CHECK((!four[n] || one[n]));
        CHECK((!t9[n] || t1[n]));
    }
    CHECK(count(four) < count(one));
    CHECK(count(t9) < count(t1));
}

TEST_CASE("apgd_t lowers the margin of the target over the true class") {
    const testing::blob_problem<double> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    const auto clean = testing::logits_of(p.net, x);
    const auto adv = testing::logits_of(
        p.net, apgd_t(p.net, x, y, apgd_t_options{}.epsilon(0.03).n_iter(30).n_target_classes(1)));
    // the target: the second class by the clean logits
    std::vector<std::size_t> order;
    std::size_t lowered = 0;
    double before = 0, after = 0;
    for (std::size_t n = 0; n < y.size(); ++n) {
        detail::sorted_classes(&clean(n, 0), 10, order);
        const auto yn = static_cast<std::size_t>(y(n));
        const std::size_t t = order[0] == yn ? order[1] : order[0];
        const double b = clean(n, yn) - clean(n, t), a = adv(n, yn) - adv(n, t);
        before += b;
        after += a;
        if (a < b) ++lowered;
    }
    CHECK(after < before - 0.5 * static_cast<double>(y.size()) * 0.03);
    CHECK(lowered >= y.size() * 9 / 10);
}

TEST_CASE(
    "apgd is deterministic for a seed, differs across seeds, and a sample's result does "
    "not depend on the samples after it") {
    const testing::blob_problem<float> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    for (auto n : {norm::linf, norm::l2}) {
        const auto o = apgd_options{}.epsilon(n == norm::linf ? 0.05 : 0.3).norm(n).n_iter(10);
        const auto a = apgd(p.net, x, y, apgd_options(o).seed(1));
        CHECK(a == apgd(p.net, x, y, apgd_options(o).seed(1)));
        CHECK_FALSE(a == apgd(p.net, x, y, apgd_options(o).seed(2)));
        const auto t = apgd_t_options{}.epsilon(0.05).norm(n).n_iter(5).n_target_classes(2);
        CHECK(apgd_t(p.net, x, y, t) == apgd_t(p.net, x, y, t));
    }
    // a linear model computes each row on its own, bit for bit: the first 40 samples attacked
    // alone get exactly the results they get among 200
    const testing::linear_model<double> lin(20, 10, 5);
    const auto xd = testing::make_blobs<double>(200, 20, 10, 11);
    for (auto n : {norm::linf, norm::l2}) {
        const auto o =
            apgd_options{}.epsilon(n == norm::linf ? 0.1 : 0.5).norm(n).n_iter(15).restarts(2);
        const auto all = apgd(lin, xd.x, xd.y, o);
        const tensor<double, 2> x40 = xt::view(xd.x, xt::range(0, 40), xt::all());
        const label_vector y40 = xt::view(xd.y, xt::range(0, 40));
        const tensor<double, 2> all40 = xt::view(all, xt::range(0, 40), xt::all());
        CHECK(apgd(lin, x40, y40, o) == all40);
        CHECK_FALSE(all40 == x40);
    }
}

TEST_CASE("apgd-ce on Fashion-MNIST: robust accuracy at most fgsm's and pgd's") {
    const auto prob = testing::load_fashion_problem(2000, 200);
    if (!prob) {
        testing::skip(testing::fashion_mnist_skip_message());
        return;
    }
    const auto& net = prob->net;
    const auto& x = prob->x_test;
    const auto& y = prob->y_test;
    const auto clean = count(testing::correct(net, x, y));
    CHECK(clean > 140);
    const double eps = 0.03;
    const auto r_fgsm =
        count(testing::correct(net, fgsm(net, x, y, fgsm_options{}.epsilon(eps)), y));
    const auto r_pgd =
        count(testing::correct(net, pgd(net, x, y, pgd_options{}.epsilon(eps).steps(20)), y));
    const auto r_apgd =
        count(testing::correct(net, apgd(net, x, y, apgd_options{}.epsilon(eps)), y));
    const auto r_t =
        count(testing::correct(net, apgd_t(net, x, y, apgd_t_options{}.epsilon(eps)), y));
    MESSAGE("Fashion-MNIST, 200 images, eps 0.03: clean "
            << clean << ", fgsm " << r_fgsm << ", pgd-20 " << r_pgd << ", apgd-ce " << r_apgd
            << ", apgd-t " << r_t);
    CHECK(r_apgd <= r_fgsm);
    CHECK(r_apgd <= r_pgd);
    CHECK(r_t <= r_fgsm);
    CHECK(r_apgd < clean);
}

TEST_CASE("apgd options and arguments refuse bad values with the function, option and value") {
    CHECK_THROWS_WITH_AS(apgd_options{}.epsilon(-1),
                         "apgd_options::epsilon(): epsilon must be finite and >= 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_options{}.n_iter(0),
                         "apgd_options::n_iter(): n_iter must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_options{}.restarts(0),
                         "apgd_options::restarts(): restarts must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_options{}.rho(1), "apgd_options::rho(): rho must be in (0, 1), got 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_options{}.rho(std::numeric_limits<double>::quiet_NaN()),
                         "apgd_options::rho(): rho must be in (0, 1), got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_options{}.eot_iter(0),
                         "apgd_options::eot_iter(): eot_iter must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_t_options{}.n_iter(0),
                         "apgd_t_options::n_iter(): n_iter must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_t_options{}.epsilon(-0.5),
                         "apgd_t_options::epsilon(): epsilon must be finite and >= 0, got -0.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_t_options{}.n_target_classes(0),
                         "apgd_t_options::n_target_classes(): n_target_classes must be >= 1, got 0",
                         std::invalid_argument);

    const testing::blob_problem<double> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    CHECK_THROWS_WITH_AS(apgd(p.net, x, y, apgd_options{}),
                         "apgd(): epsilon was not set; call .epsilon(value) on the options",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_t(p.net, x, y, apgd_t_options{}),
                         "apgd_t(): epsilon was not set; call .epsilon(value) on the options",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd_t(p.net, x, y, apgd_t_options{}.epsilon(0.1).n_target_classes(10)),
                         "apgd_t(): n_target_classes = 10 needs more classes than the model's 10 "
                         "(at most num_classes - 1 = 9)",
                         std::invalid_argument);
    label_vector bad = y;
    bad(3) = 10;
    CHECK_THROWS_WITH_AS(apgd(p.net, x, bad, apgd_options{}.epsilon(0.1)),
                         "apgd(): labels[3] = 10 is outside [0, 10)", std::invalid_argument);
    mlp<double> three({20, 8, 3}, 0), two({20, 8, 2}, 0);
    const auto y3 = testing::cyclic_labels(200, 3);
    CHECK_THROWS_WITH_AS(
        apgd_t(three, x, y3, apgd_t_options{}.epsilon(0.1).n_target_classes(2)),
        "apgd_t(): the targeted DLR loss needs at least 4 classes, the model has 3",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(apgd(two, x, testing::cyclic_labels(200, 2),
                              apgd_options{}.epsilon(0.1).loss(apgd_loss::dlr)),
                         "apgd(): the DLR loss needs at least 3 classes, the model has 2",
                         std::invalid_argument);
    auto outside = x;
    outside(0, 0) = 1.5;
    CHECK_THROWS_WITH_AS(apgd(p.net, outside, y, apgd_options{}.epsilon(0.1)),
                         doctest::Contains("apgd(): inputs[0] element 0 = 1.5 lies outside"),
                         std::invalid_argument);
}

}  // namespace test_apgd
