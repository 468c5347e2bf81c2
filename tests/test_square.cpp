#include <doctest/doctest.h>

#include <advaug/attacks/square.hpp>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "support/attack_fixtures.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_square {

using namespace advaug;
using testing::count;

namespace {

/// The wrapped model with its input gradient hidden: zero everywhere, the extreme of gradient
/// masking. Gradient attacks see a flat loss; Square does not need the gradient.
template <class M>
struct masked {
    using value_type = typename M::value_type;
    static constexpr std::size_t input_rank = M::input_rank;
    using cache_type = typename M::cache_type;
    const M& inner;
    std::size_t num_classes() const { return inner.num_classes(); }
    void forward(const input_t<M>& x, cache_type& c, logits_t<M>& logits) const {
        inner.forward(x, c, logits);
    }
    void input_gradient(cache_type& c, const logits_t<M>& g, input_t<M>& dx) const {
        if (forbid) throw std::logic_error("square() asked for an input gradient");
        inner.input_gradient(c, g, dx);  // for dx's shape
        dx.fill(value_type(0));
    }
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
    bool forbid = false;
};

/// A bundled-CNN batch with labels set to the untrained network's own predictions.
struct cnn_batch {
    cnn<float> net{4};
    tensor<float, 4> x = tensor<float, 4>::from_shape({3, 1, 28, 28});
    label_vector y;
    cnn_batch() {
        rng gen(8);
        for (auto& v : x) v = static_cast<float>(gen.uniform(0.1, 0.9));
        const auto z = testing::logits_of(net, x);
        y = xt::argmax(z, 1);
    }
};

}  // namespace

TEST_CASE("square's p schedule and L2 window follow the reference") {
    // p_selection without rescaling: p_init until query 10, halved after 10, 50, 200, ...
    CHECK(detail::square_p(0.8, 10, 5000, false) == 0.8);
    CHECK(detail::square_p(0.8, 11, 5000, false) == 0.4);
    CHECK(detail::square_p(0.8, 51, 5000, false) == 0.2);
    CHECK(detail::square_p(0.8, 1001, 5000, false) == 0.8 / 32);
    CHECK(detail::square_p(0.8, 9000, 10000, false) == 0.8 / 512);
    // rescaled: 1000 queries stretch the 10,000-query schedule tenfold
    CHECK(detail::square_p(0.8, 1, 1000, true) == 0.8);
    CHECK(detail::square_p(0.8, 2, 1000, true) == 0.4);
    for (std::size_t s : {3u, 5u, 8u}) {
        const auto eta = detail::square_eta(s);
        double norm = 0;
        for (double v : eta) norm += v * v;
        CHECK(std::sqrt(norm) == doctest::Approx(1.0));
        CHECK(eta[s / 2] > 0);                // top row: positive
        CHECK(eta[(s - 1) * s + s / 2] < 0);  // bottom row: negative
    }
}

TEST_CASE_TEMPLATE("square stays in the ball and the domain, L-inf and L2", T, float, double) {
    const testing::blob_problem<T> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    for (double eps : {0.05, 0.2}) {
        CAPTURE(eps);
        const auto base = square_options{}.epsilon(eps).n_queries(200).image_shape(1, 4, 5);
        const auto linf = square(p.net, x, y, base);
        CHECK(testing::max_abs_diff(linf, x) <= eps + 1e-6);
        CHECK(testing::in_unit_box(linf));
        const auto l2 = square(p.net, x, y, square_options(base).norm(norm::l2).epsilon(3 * eps));
        CHECK(testing::max_l2_distance(l2, x) <= 3 * eps * (1 + 1e-6));
        CHECK(testing::in_unit_box(l2));
    }
    // images of rank 4 need no image_shape
    const cnn_batch b;
    const auto adv = square(b.net, b.x, b.y, square_options{}.epsilon(0.05).n_queries(20));
    CHECK(testing::max_abs_diff(adv, b.x) <= 0.05 + 1e-6);
    CHECK(testing::max_abs_diff(adv, b.x) >= 0.05 - 1e-6);
    const auto adv2 =
        square(b.net, b.x, b.y, square_options{}.epsilon(1).norm(norm::l2).n_queries(20));
    CHECK(testing::max_l2_distance(adv2, b.x) <= 1 + 1e-6);
    CHECK(testing::max_l2_distance(adv2, b.x) > 0.9);
}

TEST_CASE_TEMPLATE("square: eps = 0 returns x, misclassified samples stay, seeds reproduce", T,
                   float, double) {
    const testing::blob_problem<T> p;
    const auto& x = p.data.x;
    auto y = p.data.y;
    const auto o = square_options{}.epsilon(0.1).n_queries(100).image_shape(1, 1, 20);
    CHECK(square(p.net, x, y, square_options(o).epsilon(0)) == x);
    for (auto n : {norm::linf, norm::l2}) {
        const auto on = square_options(o).norm(n);
        const auto a = square(p.net, x, y, square_options(on).seed(3));
        CHECK(a == square(p.net, x, y, square_options(on).seed(3)));
        CHECK_FALSE(a == square(p.net, x, y, square_options(on).seed(4)));
    }
    for (std::size_t n = 0; n < y.size(); n += 3) y(n) = (y(n) + 1) % 10;
    const auto clean = testing::correct(p.net, x, y);
    const auto adv = square(p.net, x, y, o);
    for (std::size_t n = 0; n < y.size(); ++n) {
        if (clean[n]) continue;
        CAPTURE(n);
        CHECK(xt::view(adv, n, xt::all()) == xt::view(x, n, xt::all()));
    }
}

TEST_CASE("square needs no gradient and breaks a model whose gradient is masked") {
    const testing::blob_problem<double> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    masked<mlp<double>> hidden{p.net};
    const double eps = 0.12;
    const auto r_fgsm =
        count(testing::correct(hidden, fgsm(hidden, x, y, fgsm_options{}.epsilon(eps)), y));
    const auto r_apgd = count(
        testing::correct(hidden, apgd(hidden, x, y, apgd_options{}.epsilon(eps).n_iter(20)), y));
    hidden.forbid = true;
    const auto r_square = count(testing::correct(
        hidden,
        square(hidden, x, y, square_options{}.epsilon(eps).n_queries(1000).image_shape(1, 4, 5)),
        y));
    CAPTURE(r_fgsm);
    CAPTURE(r_apgd);
    CAPTURE(r_square);
    CHECK(r_fgsm == count(testing::correct(p.net, x, y)));  // the mask holds against fgsm
    CHECK(r_square < r_apgd);
    CHECK(r_square + 50 < r_apgd);  // square breaks many; the gradient attacks see nothing
    // more queries and restarts only add broken samples: the first run is the same run
    const auto o = square_options{}.epsilon(eps).n_queries(30).image_shape(1, 4, 5).seed(2);
    const auto one = testing::correct(p.net, square(p.net, x, y, o), y);
    const auto three =
        testing::correct(p.net, square(p.net, x, y, square_options(o).restarts(3)), y);
    for (std::size_t n = 0; n < y.size(); ++n) CHECK((!three[n] || one[n]));
}

TEST_CASE("square options and arguments refuse bad values with the function, option and value") {
    CHECK_THROWS_WITH_AS(square_options{}.epsilon(-1),
                         "square_options::epsilon(): epsilon must be finite and >= 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(square_options{}.n_queries(0),
                         "square_options::n_queries(): n_queries must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(square_options{}.p_init(0),
                         "square_options::p_init(): p_init must be in (0, 1], got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(square_options{}.p_init(1.5),
                         "square_options::p_init(): p_init must be in (0, 1], got 1.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(square_options{}.restarts(0),
                         "square_options::restarts(): restarts must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(square_options{}.image_shape(1, 0, 5),
                         "square_options::image_shape(): every extent must be >= 1, got 1 x 0 x 5",
                         std::invalid_argument);
    const testing::blob_problem<double> p;
    const auto& x = p.data.x;
    const auto& y = p.data.y;
    CHECK_THROWS_WITH_AS(square(p.net, x, y, square_options{}.image_shape(1, 4, 5)),
                         "square(): epsilon was not set; call .epsilon(value) on the options",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(square(p.net, x, y, square_options{}.epsilon(0.1)),
                         "square(): inputs of rank 2 need square_options::image_shape(channels, "
                         "height, width) (tabular data: image_shape(1, 1, features))",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        square(p.net, x, y, square_options{}.epsilon(0.1).image_shape(1, 4, 4)),
        "square(): image_shape 1 x 4 x 4 holds 16 values, the inputs have 20 per sample",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(square(p.net, x, testing::cyclic_labels(3, 10),
                                square_options{}.epsilon(0.1).image_shape(1, 4, 5)),
                         "square(): labels has 3 entries, the batch has 200 rows",
                         std::invalid_argument);
}

}  // namespace test_square
