#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_fgsm {

using namespace advaug;
using testing::linear_model;

namespace {
template <class T>
double mean_loss(const auto& model, const tensor<T, 2>& x, const label_vector& y) {
    typename std::decay_t<decltype(model)>::cache_type c;
    tensor<T, 2> logits;
    model.forward(x, c, logits);
    return cross_entropy(logits, y);
}
}  // namespace

TEST_CASE_TEMPLATE("fgsm stays within eps and inside the domain", T, float, double) {
    mlp<T> net({12, 16, 4}, 7);
    const auto x = testing::uniform_batch<T>(32, 12, 1);
    const auto y = testing::cyclic_labels(32, 4);
    for (double eps : {0.01, 0.1, 0.3}) {
        const auto adv = fgsm(net, x, y, fgsm_options{}.epsilon(eps));
        CHECK(adv.shape() == x.shape());
        CHECK(testing::max_abs_diff(adv, x) <= eps + 1e-6);
        CHECK(xt::amin(adv)() >= T(0));
        CHECK(xt::amax(adv)() <= T(1));
    }
}

TEST_CASE("fgsm is the seed's formula: clip(x + eps * sign(grad), 0, 1), sign(0) = 0") {
    linear_model<double> model(6, 3, 2);
    // input 5 is ignored by the model: its input gradient is exactly zero
    for (std::size_t k = 0; k < 3; ++k) model.w(k, 5) = 0.0;
    const auto x = testing::uniform_batch<double>(8, 6, 3);
    const auto y = testing::cyclic_labels(8, 3);
    const double eps = 0.05;
    const auto adv = fgsm(model, x, y, fgsm_options{}.epsilon(eps));

    typename linear_model<double>::cache_type c;
    tensor<double, 2> logits, g, dx;
    model.forward(x, c, logits);
    cross_entropy_gradient(logits, y, g);
    model.input_gradient(c, g, dx);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double s = (dx.data()[i] > 0) - (dx.data()[i] < 0);
        const double expected = std::clamp(x.data()[i] + eps * s, 0.0, 1.0);
        CHECK(adv.data()[i] == doctest::Approx(expected).epsilon(1e-15));
    }
    for (std::size_t n = 0; n < 8; ++n) CHECK(adv(n, 5) == x(n, 5));
}

TEST_CASE_TEMPLATE("eps = 0 returns x unchanged", T, float, double) {
    mlp<T> net({5, 8, 3}, 1);
    const auto x = testing::uniform_batch<T>(10, 5, 2);
    const auto y = testing::cyclic_labels(10, 3);
    CHECK(fgsm(net, x, y, fgsm_options{}.epsilon(0.0)) == x);
    CHECK(fgsm(net, x, y, fgsm_options{}.epsilon(0.0).targeted(true)) == x);
}

TEST_CASE("fgsm exactly maximizes the linearized loss of a linear model and raises its loss") {
    linear_model<double> model(20, 5, 11);
    const auto x = testing::uniform_batch<double>(16, 20, 4, 0.3, 0.7);
    const auto y = testing::cyclic_labels(16, 5);
    const double eps = 0.01;
    const auto unbounded = fgsm_options{}.epsilon(eps).domain(input_domain::unbounded());
    const auto adv = fgsm(model, x, y, unbounded);

    // gradient of the mean loss at x
    typename linear_model<double>::cache_type c;
    tensor<double, 2> logits, g, dx;
    model.forward(x, c, logits);
    const double loss0 = cross_entropy_gradient(logits, y, g);
    model.input_gradient(c, g, dx);
    // first-order gain of FGSM = eps * ||grad||_1, the maximum over the L-inf ball
    double gain = 0, l1 = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        gain += dx.data()[i] * (adv.data()[i] - x.data()[i]);
        l1 += std::abs(dx.data()[i]);
    }
    CHECK(gain == doctest::Approx(eps * l1).epsilon(1e-12));
    // no other corner of the ball does better to first order
    rng gen(5);
    for (int trial = 0; trial < 50; ++trial) {
        double other = 0;
        for (std::size_t i = 0; i < x.size(); ++i) other += dx.data()[i] * eps * (gen.uniform() < 0.5 ? -1 : 1);
        CHECK(other <= gain);
    }
    CHECK(mean_loss<double>(model, adv, y) > loss0);
}

TEST_CASE_TEMPLATE("a targeted fgsm step lowers the loss of the target label", T, float, double) {
    mlp<T> net({10, 32, 5}, 3);
    const auto x = testing::uniform_batch<T>(20, 10, 8);
    label_vector target = testing::cyclic_labels(20, 5);
    const double before = mean_loss<T>(net, x, target);
    const auto adv = fgsm(net, x, target, fgsm_options{}.epsilon(0.01).targeted(true));
    CHECK(mean_loss<T>(net, adv, target) < before);
    const auto away = fgsm(net, x, target, fgsm_options{}.epsilon(0.01));
    CHECK(mean_loss<T>(net, away, target) > before);
}

TEST_CASE("fgsm with a normalized domain: eps in raw units, clipping in raw units") {
    // the model sees (x - 0.5) / 0.25: raw [0, 1] is [-2, 2] in model units
    const auto domain = input_domain{}.normalization(0.5, 0.25);
    mlp<double> net({6, 8, 3}, 2);
    const auto raw = testing::uniform_batch<double>(12, 6, 9);
    const auto z = domain.normalize(raw);
    const auto y = testing::cyclic_labels(12, 3);
    const double eps = 0.1;
    const auto adv = domain.denormalize(fgsm(net, z, y, fgsm_options{}.epsilon(eps).domain(domain)));
    CHECK(testing::max_abs_diff(adv, raw) <= eps + 1e-12);
    CHECK(testing::max_abs_diff(adv, raw) >= eps - 1e-12);  // the full eps, not eps * std
    CHECK(xt::amin(adv)() >= -1e-12);
    CHECK(xt::amax(adv)() <= 1 + 1e-12);
}

TEST_CASE("an attack leaves the parameter gradients and the weights untouched") {
    mlp<double> net({6, 8, 3}, 4);
    const auto x = testing::uniform_batch<double>(9, 6, 1);
    const auto y = testing::cyclic_labels(9, 3);
    // a training step's gradient is pending, as between backward() and optimizer.step()
    typename mlp<double>::cache_type c;
    tensor<double, 2> logits, g;
    net.forward(x, c, logits);
    cross_entropy_gradient(logits, y, g);
    net.parameter_gradient(c, g);
    const auto before = testing::snapshot(net);
    fgsm(net, x, y, fgsm_options{}.epsilon(0.1));
    fgm(net, x, y, fgm_options{}.epsilon(0.5));
    pgd(net, x, y, pgd_options{}.epsilon(0.1).steps(3).restarts(2));
    CHECK(testing::snapshot(net) == before);
}

TEST_CASE("fgsm refuses bad arguments with the function, the argument and the value") {
    mlp<float> net({4, 5, 3}, 0);
    const auto x = testing::uniform_batch<float>(3, 4, 0);
    const label_vector y = {0, 1, 2};
    const auto ok = fgsm_options{}.epsilon(0.1);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();

    CHECK_THROWS_WITH_AS(fgsm_options{}.epsilon(-0.1),
                         "fgsm_options::epsilon(): epsilon must be finite and >= 0, got -0.10000000000000001",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgsm_options{}.epsilon(nan), doctest::Contains("epsilon must be finite and >= 0, got nan"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgsm_options{}.epsilon(inf), doctest::Contains("epsilon must be finite and >= 0, got inf"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgsm(net, x, y, fgsm_options{}),
                         "fgsm(): epsilon was not set; call .epsilon(value) on the options",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgsm(net, x, label_vector{0, 1, 3}, ok),
                         "fgsm(): labels[2] = 3 is outside [0, 3)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgsm(net, x, label_vector{0, -1, 2}, ok),
                         "fgsm(): labels[1] = -1 is outside [0, 3)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgsm(net, x, label_vector{0, 1}, ok),
                         "fgsm(): labels has 2 entries, the batch has 3 rows", std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgsm(net, testing::uniform_batch<float>(3, 5, 0), y, ok),
                         "fgsm(): sequential::forward(): inputs have shape [3, 5], the model expects [N >= 1, 4]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fgsm(net, tensor<float, 2>::from_shape({0, 4}), label_vector{}, ok),
                         "fgsm(): inputs is an empty batch (shape [0, 4])", std::invalid_argument);
    auto bad = x;
    bad(1, 2) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(fgsm(net, bad, y, ok),
                         "fgsm(): inputs must be finite, got nan at flat index 6 (shape [3, 4])",
                         std::invalid_argument);
    auto outside = x;
    outside(0, 0) = 1.5f;
    CHECK_THROWS_WITH_AS(fgsm(net, outside, y, ok),
                         doctest::Contains("fgsm(): inputs[0] element 0 = 1.5 lies outside the input domain [0, 1]"),
                         std::invalid_argument);
}

namespace {
// forward works, but the backward pass produces NaN (a diverged model)
struct nan_gradient_model : linear_model<double> {
    using linear_model<double>::linear_model;
    void input_gradient(cache_type& c, const tensor<double, 2>& g, tensor<double, 2>& dx) const {
        linear_model<double>::input_gradient(c, g, dx);
        dx(1, 3) = std::numeric_limits<double>::quiet_NaN();
    }
};
}  // namespace

TEST_CASE("a NaN input gradient stops the attack with numeric_error naming where") {
    nan_gradient_model model(5, 3, 1);
    const auto x = testing::uniform_batch<double>(4, 5, 2);
    const auto y = testing::cyclic_labels(4, 3);
    CHECK_THROWS_WITH_AS(fgsm(model, x, y, fgsm_options{}.epsilon(0.1)),
                         doctest::Contains("fgsm(): the input gradient is nan at sample 1, element 3"),
                         numeric_error);
    CHECK_THROWS_WITH_AS(pgd(model, x, y, pgd_options{}.epsilon(0.1)),
                         doctest::Contains("pgd(): the input gradient is nan at sample 1, element 3"),
                         numeric_error);
    CHECK_THROWS_AS(fgm(model, x, y, fgm_options{}.epsilon(0.1)), numeric_error);
}

TEST_CASE("an attack_workspace reused across calls, batch sizes and attacks changes no result") {
    mlp<float> net({12, 16, 4}, 7);
    net.set_mode(mode::eval);
    attack_workspace<mlp<float>> ws;
    for (std::size_t rows : {32, 5, 32}) {  // the buffers shrink and grow again
        CAPTURE(rows);
        const auto x = testing::uniform_batch<float>(rows, 12, rows);
        const auto y = testing::cyclic_labels(rows, 4);
        const auto f = fgsm_options{}.epsilon(0.1);
        const auto p = pgd_options{}.epsilon(0.1).steps(3).seed(5);
        CHECK(fgsm(net, x, y, f, ws) == fgsm(net, x, y, f));
        CHECK(fgm(net, x, y, fgm_options{}.epsilon(0.5), ws) == fgm(net, x, y, fgm_options{}.epsilon(0.5)));
        CHECK(pgd(net, x, y, p, ws) == pgd(net, x, y, p));
        CHECK(pgd(net, x, y, pgd_options(p).restarts(2), ws) == pgd(net, x, y, pgd_options(p).restarts(2)));
        CHECK(bim(net, x, y, p, ws) == bim(net, x, y, p));
    }
}

}  // namespace test_fgsm
