#include <doctest/doctest.h>

#include <advaug/attacks/autoattack.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/attack_fixtures.hpp"
#include "support/skip.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_autoattack {

using namespace advaug;
using testing::count;

namespace {

/// The checks every result must pass, whatever the model: the counts agree with broken_by,
/// every broken sample is misclassified at its example, every other sample keeps x.
template <class M, class T>
void check_consistent(const M& model, const tensor<T, 2>& x, const label_vector& y,
                      const autoattack_result<tensor<T, 2>>& r, double eps) {
    using result = autoattack_result<tensor<T, 2>>;
    REQUIRE(r.broken_by.size() == y.size());
    REQUIRE(r.correct_after.size() == r.attacks.size() + 1);
    const auto clean = testing::correct(model, x, y);
    const auto at_adv = testing::correct(model, r.adversarial, y);
    CHECK(r.clean_correct() == count(clean));
    for (std::size_t k = 0; k + 1 < r.correct_after.size(); ++k) {
        CHECK(r.correct_after[k + 1] <= r.correct_after[k]);
        const auto by_k = static_cast<std::size_t>(
            std::count(r.broken_by.begin(), r.broken_by.end(), static_cast<int>(k)));
        CHECK(r.correct_after[k] - r.correct_after[k + 1] == by_k);
    }
    for (std::size_t s = 0; s < y.size(); ++s) {
        CAPTURE(s);
        CHECK((r.broken_by[s] == result::misclassified) == !clean[s]);
        if (r.broken_by[s] >= 0) {
            CHECK_FALSE(at_adv[s]);
        } else {
            CHECK(xt::view(r.adversarial, s, xt::all()) == xt::view(x, s, xt::all()));
        }
    }
    CHECK(count(at_adv) == r.robust());
    CHECK(testing::max_abs_diff(r.adversarial, x) <= eps + 1e-6);
    CHECK(testing::in_unit_box(r.adversarial));
}

/// A linear model computes each row on its own, bit for bit, so every member attacks each
/// sample along the same trajectory whatever else is in its batch.
struct linear_problem {
    testing::linear_model<double> model{20, 10, 5};
    testing::blobs<double> data = testing::make_blobs<double>(120, 20, 10, 11);
    label_vector y;
    linear_problem() {
        // the model's own predictions, except every fourth: a few clean errors
        y = xt::argmax(testing::logits_of(model, data.x), 1);
        for (std::size_t n = 0; n < y.size(); n += 4) y(n) = (y(n) + 1) % 10;
    }
};

}  // namespace

TEST_CASE("autoattack's per-sample result is the worst case over its members") {
    const linear_problem p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    const double eps = 0.03;
    const auto o =
        autoattack_options{}.epsilon(eps).n_iter(20).n_queries(100).image_shape(1, 4, 5).seed(7);
    const auto r = autoattack(p.model, x, y, o);
    REQUIRE(r.attacks == std::vector<std::string>{"apgd-ce", "apgd-t", "fab-t", "square"});
    check_consistent(p.model, x, y, r, eps);

    // each member alone, on the whole batch, with the ensemble's settings
    const auto ce = testing::correct(
        p.model, apgd(p.model, x, y, apgd_options{}.epsilon(eps).n_iter(20).seed(7)), y);
    const auto t = testing::correct(
        p.model, apgd_t(p.model, x, y, apgd_t_options{}.epsilon(eps).n_iter(20).seed(7)), y);
    const auto fb = testing::correct(
        p.model, fab_t(p.model, x, y, fab_t_options{}.epsilon(eps).n_iter(20).seed(7)), y);
    const auto sq = testing::correct(p.model,
                                     square(p.model, x, y,
                                            square_options{}
                                                .epsilon(eps)
                                                .n_queries(100)
                                                .image_shape(1, 4, 5)
                                                .rescale_schedule(false)
                                                .seed(7)),
                                     y);
    for (std::size_t s = 0; s < y.size(); ++s) {
        CAPTURE(s);
        const bool robust = r.broken_by[s] == autoattack_result<tensor<double, 2>>::not_broken;
        CHECK(robust == (ce[s] && t[s] && fb[s] && sq[s]));
        if (r.broken_by[s] == 0) CHECK_FALSE(ce[s]);
        if (r.broken_by[s] == 1) CHECK((ce[s] && !t[s]));
        if (r.broken_by[s] == 2) CHECK((ce[s] && t[s] && !fb[s]));
        if (r.broken_by[s] == 3) CHECK((ce[s] && t[s] && fb[s] && !sq[s]));
    }
    // the test means something: every member has work to do
    CHECK(r.correct_after[1] < r.correct_after[0]);
    CHECK(r.robust() > 0);
}

TEST_CASE_TEMPLATE("autoattack on an MLP: consistent, at most apgd-ce's, reproducible", T, float,
                   double) {
    const testing::blob_problem<T> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    const double eps = 0.08;
    const auto o = autoattack_options{}.epsilon(eps).n_iter(20).n_queries(100).image_shape(1, 4, 5);
    const auto r = autoattack(p.net, x, y, o);
    check_consistent(p.net, x, y, r, eps);
    // apgd-ce runs first on the same samples with the same streams: the same run exactly
    const auto ce =
        testing::correct(p.net, apgd(p.net, x, y, apgd_options{}.epsilon(eps).n_iter(20)), y);
    for (std::size_t s = 0; s < y.size(); ++s) {
        CAPTURE(s);
        if (r.broken_by[s] == autoattack_result<tensor<T, 2>>::not_broken) CHECK(ce[s]);
        if (r.broken_by[s] == 0) CHECK_FALSE(ce[s]);
    }
    CHECK(r.robust() <= count(ce));
    const auto again = autoattack(p.net, x, y, o);
    CHECK(again.adversarial == r.adversarial);
    CHECK(again.broken_by == r.broken_by);
    // L2 as well
    const auto l2 = autoattack(p.net, x, y, autoattack_options(o).norm(norm::l2).epsilon(0.3));
    CHECK(testing::max_l2_distance(l2.adversarial, x) <= 0.3 * (1 + 1e-6));
    CHECK(testing::in_unit_box(l2.adversarial));
    CHECK(l2.robust() < l2.clean_correct());
}

TEST_CASE("autoattack's versions run their members in the reference's order") {
    const testing::blob_problem<double> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    const auto o =
        autoattack_options{}.epsilon(0.08).n_iter(10).n_queries(50).image_shape(1, 4, 5).eot_iter(
            2);
    const auto plus =
        autoattack(p.net, x, y, autoattack_options(o).version(autoattack_version::plus));
    CHECK(plus.attacks ==
          std::vector<std::string>{"apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"});
    check_consistent(p.net, x, y, plus, 0.08);
    const auto rand =
        autoattack(p.net, x, y, autoattack_options(o).version(autoattack_version::rand));
    CHECK(rand.attacks == std::vector<std::string>{"apgd-ce", "apgd-dlr"});
    check_consistent(p.net, x, y, rand, 0.08);
    // the rand version runs no Square: rank-2 inputs need no image_shape
    const auto no_shape =
        autoattack_options{}.epsilon(0.08).n_iter(5).eot_iter(1).version(autoattack_version::rand);
    CHECK(autoattack(p.net, x, y, no_shape).attacks.size() == 2);
    // eps = 0: the clean accuracy
    const auto zero = autoattack(p.net, x, y, autoattack_options(o).epsilon(0));
    CHECK(zero.robust() == zero.clean_correct());
    CHECK(zero.adversarial == x);
}

TEST_CASE("autoattack on Fashion-MNIST: at most apgd-ce's robust accuracy, square in the mix") {
    const auto prob = testing::load_fashion_problem(2000, 100);
    if (!prob) {
        testing::skip(testing::fashion_mnist_skip_message());
        return;
    }
    const auto& net = prob->net;
    const auto& x = prob->x_test;
    const auto& y = prob->y_test;
    const double eps = 0.03;
    const auto r = autoattack(net, x, y, autoattack_options{}.epsilon(eps).image_shape(1, 28, 28));
    check_consistent(net, x, y, r, eps);
    const auto ce = count(testing::correct(net, apgd(net, x, y, apgd_options{}.epsilon(eps)), y));
    const auto sq = count(testing::correct(
        net,
        square(net, x, y, square_options{}.epsilon(eps).image_shape(1, 28, 28).n_queries(1000)),
        y));
    MESSAGE("Fashion-MNIST, 100 images, eps 0.03: clean "
            << r.clean_correct() << ", apgd-ce " << ce << ", square-1000 " << sq << ", autoattack "
            << r.robust() << " (after each member: " << r.correct_after[1] << ", "
            << r.correct_after[2] << ", " << r.correct_after[3] << ")");
    CHECK(r.robust() <= ce);
    CHECK(r.robust() < r.clean_correct());
    CHECK(sq < r.clean_correct());  // the score-based attack alone breaks images too
}

TEST_CASE(
    "autoattack options and arguments refuse bad values with the function, option and value") {
    CHECK_THROWS_WITH_AS(autoattack_options{}.epsilon(-1),
                         "autoattack_options::epsilon(): epsilon must be finite and >= 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(autoattack_options{}.n_iter(0),
                         "autoattack_options::n_iter(): n_iter must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        autoattack_options{}.n_target_classes(0),
        "autoattack_options::n_target_classes(): n_target_classes must be >= 1, got 0",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(autoattack_options{}.n_queries(0),
                         "autoattack_options::n_queries(): n_queries must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(autoattack_options{}.eot_iter(0),
                         "autoattack_options::eot_iter(): eot_iter must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(autoattack_options{}.image_shape(0, 4, 5),
                         "square_options::image_shape(): every extent must be >= 1, got 0 x 4 x 5",
                         std::invalid_argument);
    const testing::blob_problem<double> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    CHECK_THROWS_WITH_AS(autoattack(p.net, x, y, autoattack_options{}),
                         "autoattack(): epsilon was not set; call .epsilon(value) on the options",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        autoattack(p.net, x, y, autoattack_options{}.epsilon(0.1)),
        "autoattack(): inputs of rank 2 need autoattack_options::image_shape(channels, "
        "height, width) for Square (tabular data: image_shape(1, 1, features))",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        autoattack(p.net, x, y,
                   autoattack_options{}.epsilon(0.1).image_shape(1, 4, 5).n_target_classes(10)),
        "autoattack(): n_target_classes = 10 needs more classes than the model's 10 (at most "
        "num_classes - 1 = 9)",
        std::invalid_argument);
    mlp<double> four({20, 8, 4}, 0);
    CHECK_THROWS_WITH_AS(
        autoattack(four, x, testing::cyclic_labels(200, 4),
                   autoattack_options{}.epsilon(0.1).image_shape(1, 4, 5)),
        "autoattack(): n_target_classes = 9 needs more classes than the model's 4 (at most "
        "num_classes - 1 = 3)",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        autoattack(p.net, x, y, autoattack_options{}.epsilon(0.1).image_shape(1, 5, 5)),
        "autoattack(): image_shape 1 x 5 x 5 holds 25 values, the inputs have 20 per sample",
        std::invalid_argument);
}

}  // namespace test_autoattack
