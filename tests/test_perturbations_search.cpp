// The worst-case search in a family's parameters (include/advaug/perturbations/search.hpp) on
// the bundled MLP: properties that hold for every seed, never one trajectory's last bits.
#include <doctest/doctest.h>

#include <advaug/perturbations/perturbations.hpp>
#include <limits>
#include <numeric>
#include <string>

#include "support/check_throws.hpp"
#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_perturbations_search {

using namespace advaug;

namespace {

const image_shape tiny_image{1, 6, 6};

/// An MLP fitted for a few steps to random data, so that its loss surface is not flat.
template <class T>
mlp<T> fitted_mlp(const tensor<T, 2>& x, const label_vector& y) {
    mlp<T> net({x.shape()[1], 24, 3}, 5);
    typename mlp<T>::cache_type c;
    tensor<T, 2> logits, g;
    for (int step = 0; step < 60; ++step) {
        net.zero_grad();
        net.forward(x, c, logits);
        cross_entropy_gradient(logits, y, g);
        net.parameter_gradient(c, g);
        for (auto& p : net.parameters())
            for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= T(0.3) * p.grad[i];
    }
    return net;
}

template <class M, class T>
tensor<T, 1> losses_at(const M& model, const tensor<T, 2>& x, const label_vector& y) {
    typename M::cache_type c;
    tensor<T, 2> logits;
    model.forward(x, c, logits);
    return cross_entropy_per_sample(logits, y);
}

template <class M, class F, class T>
tensor<T, 1> losses_at(const M& model, const F& family, const tensor<T, 2>& x,
                       const label_vector& y, const tensor<T, 2>& theta) {
    tensor<T, 2> out;
    family.apply(x, theta, out);
    return losses_at(model, out, y);
}

template <class T>
double mean(const tensor<T, 1>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

/// Checks that hold for any family searched by gradient from the identity and from random
/// starts: theta in the budget, the reported loss is the model's, no result below its start,
/// and the search finds more loss than the clean input on average.
template <class M, class F, class T>
void check_gradient_search(const M& model, const F& family, const tensor<T, 2>& x,
                           const label_vector& y, const std::string& what,
                           bool identity_is_stationary = false) {
    INFO(what);
    const auto clean = losses_at(model, x, y);
    const auto from_identity =
        worst_case(model, family, x, y, worst_case_options{}.steps(8).random_start(false));
    CHECK(family.contains(from_identity.theta));
    const auto reported = losses_at(model, from_identity.perturbed, y);
    for (std::size_t i = 0; i < x.shape()[0]; ++i) {
        CHECK(from_identity.loss(i) >= clean(i));  // the identity is the start
        CHECK(reported(i) == doctest::Approx(from_identity.loss(i)).epsilon(1e-5));
    }
    if (!identity_is_stationary) CHECK(mean(from_identity.loss) > mean(clean) + 0.1);

    const auto opts = worst_case_options{}.steps(4).restarts(2).seed(9);
    const auto from_random = worst_case(model, family, x, y, opts);
    CHECK(family.contains(from_random.theta));
    for (std::uint64_t r = 0; r < 2; ++r) {
        tensor<T, 2> start;
        family.sample(x.shape()[0], perturbation_start_key(9, r), start);
        family.project(start);
        const auto at_start = losses_at(model, family, x, y, start);
        for (std::size_t i = 0; i < x.shape()[0]; ++i) CHECK(from_random.loss(i) >= at_start(i));
    }
    CHECK(mean(from_random.loss) > mean(clean) + 0.1);
}

}  // namespace

TEST_CASE_TEMPLATE("gradient search never ends below its start and finds a worse case", T, float,
                   double) {
    const auto x = testing::uniform_batch<T>(12, tiny_image.size(), 3, 0.2, 0.8);
    const auto y = testing::cyclic_labels(12, 3);
    const auto net = fitted_mlp(x, y);
    const auto snapshot = [&] {
        auto copy = net;
        return testing::snapshot(copy);
    }();

    check_gradient_search(net,
                          photometric<T>(tiny_image, {.brightness = symmetric(0.2),
                                                      .contrast = symmetric(0.3),
                                                      .log_gamma = symmetric(0.3)}),
                          x, y, "photometric");
    check_gradient_search(net,
                          affine<T>(tiny_image, {.rotation = symmetric(20),
                                                 .scale_x = symmetric(0.1),
                                                 .translate_x = symmetric(1),
                                                 .translate_y = symmetric(1)}),
                          x, y, "affine");
    check_gradient_search(net,
                          displacement_field<T>(tiny_image, {.grid = 3, .max_displacement = 1}), x,
                          y, "displacement_field");
    // Blur is even in sigma: its derivative at sigma = 0 vanishes, so only random starts move.
    check_gradient_search(net, gaussian_blur<T>(tiny_image, {0, 1.5}), x, y, "gaussian_blur", true);
    check_gradient_search(net, linf_ball<T>(tiny_image, 0.05), x, y, "linf_ball");
    check_gradient_search(net, l2_ball<T>(tiny_image, 0.5), x, y, "l2_ball");
    check_gradient_search(net,
                          chain(photometric<T>(tiny_image, {.brightness = symmetric(0.1)}),
                                affine<T>(tiny_image, {.rotation = symmetric(10)})),
                          x, y, "chain");

    auto after = net;
    CHECK(testing::snapshot(after) == snapshot);  // the search leaves the model alone
}

TEST_CASE_TEMPLATE("worst-of-k never finds a lower loss than its own best sample", T, float,
                   double) {
    const auto x = testing::uniform_batch<T>(10, tiny_image.size(), 4, 0.2, 0.8);
    const auto y = testing::cyclic_labels(10, 3);
    const auto net = fitted_mlp(x, y);
    const affine<T> warp(
        tiny_image,
        {.rotation = symmetric(30), .translate_x = symmetric(2), .translate_y = symmetric(2)});
    const auto opts = worst_case_options{}.method(search_method::random).samples(6).seed(21);
    const auto worst = worst_case(net, warp, x, y, opts);
    CHECK(warp.contains(worst.theta));
    tensor<T, 1> best_sample = xt::zeros<T>({10});
    for (std::uint64_t s = 0; s < 6; ++s) {
        tensor<T, 2> theta;
        warp.sample(10, perturbation_start_key(21, s), theta);
        const auto l = losses_at(net, warp, x, y, theta);
        for (std::size_t i = 0; i < 10; ++i) best_sample(i) = std::max(best_sample(i), l(i));
    }
    for (std::size_t i = 0; i < 10; ++i) {
        CHECK(worst.loss(i) >= best_sample(i));
        CHECK(worst.loss(i) ==
              doctest::Approx(best_sample(i)).epsilon(1e-6));  // and is one of them
    }

    // `both` refines the same draws: never below worst-of-k with the same seed.
    const auto refined =
        worst_case(net, warp, x, y, worst_case_options{opts}.method(search_method::both).steps(3));
    CHECK(warp.contains(refined.theta));
    for (std::size_t i = 0; i < 10; ++i) CHECK(refined.loss(i) >= worst.loss(i));
}

TEST_CASE("dropped sensors: greedy by the gradient, sampled, and exhaustive") {
    const auto x = testing::uniform_batch<double>(16, 6, 5, 0.2, 0.8);
    const auto y = testing::cyclic_labels(16, 3);
    const auto net = fitted_mlp(x, y);
    const dropped_sensors<double> dropped(6, 2, {0.0});
    const auto clean = losses_at(net, x, y);

    const auto greedy = worst_case(net, dropped, x, y, worst_case_options{});
    const auto sampled = worst_case(net, dropped, x, y,
                                    worst_case_options{}.method(search_method::random).samples(5));
    const auto all =
        worst_case(net, dropped, x, y, worst_case_options{}.method(search_method::exhaustive));
    for (const auto* r : {&greedy, &sampled, &all}) CHECK(dropped.contains(r->theta));
    for (std::size_t i = 0; i < 16; ++i) {
        CHECK(greedy.loss(i) >= clean(i));     // the empty mask is its start
        CHECK(all.loss(i) >= greedy.loss(i));  // exhaustive is the true worst case
        CHECK(all.loss(i) >= sampled.loss(i));
    }
    CHECK(mean(all.loss) > mean(clean) + 0.1);
    // 1 + 6 + 15 = 22 masks; a limit below that is refused.
    testing::check_throws<std::invalid_argument>(
        [&] {
            worst_case(net, dropped, x, y,
                       worst_case_options{}.method(search_method::exhaustive).max_candidates(21));
        },
        {"worst_case()", "max_candidates = 21", "up to 2 of 6"});
}

TEST_CASE("quantization is searched by sampling only") {
    const auto x = testing::uniform_batch<double>(8, 6, 6, 0.2, 0.8);
    const auto y = testing::cyclic_labels(8, 3);
    const auto net = fitted_mlp(x, y);
    const quantize<double> coarse(6, {{0.05, 0.4}});
    const auto r = worst_case(net, coarse, x, y,
                              worst_case_options{}.method(search_method::random).samples(4));
    CHECK(coarse.contains(r.theta));
    for (auto method : {search_method::gradient, search_method::both}) {
        testing::check_throws<std::invalid_argument>(
            [&] { worst_case(net, coarse, x, y, worst_case_options{}.method(method)); },
            {"worst_case()", "gradient-free", "search_method::random"});
    }
}

TEST_CASE("the search is seeded: the same seed gives the same bits whatever the thread count") {
    const auto x = testing::uniform_batch<double>(20, tiny_image.size(), 7, 0.2, 0.8);
    const auto y = testing::cyclic_labels(20, 3);
    const auto net = fitted_mlp(x, y);
    const auto family = chain(photometric<double>(tiny_image, {.contrast = symmetric(0.3)}),
                              displacement_field<double>(tiny_image, {.grid = 3}));
    const auto opts = worst_case_options{}.method(search_method::both).samples(3).steps(3).seed(5);
    const std::size_t threads = num_threads();
    set_num_threads(1);
    const auto one = worst_case(net, family, x, y, opts);
    set_num_threads(2);
    const auto two = worst_case(net, family, x, y, opts);
    set_num_threads(threads);
    CHECK(one.theta == two.theta);
    CHECK(one.loss == two.loss);
    const auto again = worst_case(net, family, x, y, opts);
    CHECK(again.theta == one.theta);
    const auto other = worst_case(net, family, x, y, worst_case_options{opts}.seed(6));
    CHECK(other.theta != one.theta);
}

TEST_CASE("bad options and inputs get one clear error") {
    using testing::check_throws;
    check_throws<std::invalid_argument>([] { worst_case_options{}.steps(0); },
                                        {"worst_case_options::steps()", "steps", "0"});
    check_throws<std::invalid_argument>([] { worst_case_options{}.restarts(0); },
                                        {"worst_case_options::restarts()", "0"});
    check_throws<std::invalid_argument>([] { worst_case_options{}.samples(0); },
                                        {"worst_case_options::samples()", "0"});
    check_throws<std::invalid_argument>(
        [] { worst_case_options{}.step_fraction(std::numeric_limits<double>::quiet_NaN()); },
        {"worst_case_options::step_fraction()", "nan"});
    check_throws<std::invalid_argument>([] { worst_case_options{}.max_candidates(0); },
                                        {"worst_case_options::max_candidates()", "0"});

    const auto x = testing::uniform_batch<double>(4, 36, 1);
    const auto y = testing::cyclic_labels(4, 3);
    const mlp<double> net({36, 8, 3}, 1);
    check_throws<std::invalid_argument>(
        [&] { worst_case(net, linf_ball<double>(35, 0.1), x, y, worst_case_options{}); },
        {"worst_case()", "[4, 36]", "the family takes 35"});
    check_throws<std::invalid_argument>(
        [&] {
            worst_case(net, linf_ball<double>(36, 0.1), x, y,
                       worst_case_options{}.method(search_method::exhaustive));
        },
        {"worst_case()", "exhaustive needs a discrete family"});
    check_throws<std::invalid_argument>(
        [&] {
            worst_case(net, linf_ball<double>(36, 0.1), x, testing::cyclic_labels(3, 3),
                       worst_case_options{});
        },
        {"worst_case()", "labels has 3 entries"});
    auto bad = x;
    bad(2, 5) = std::numeric_limits<double>::quiet_NaN();
    check_throws<std::invalid_argument>(
        [&] { worst_case(net, linf_ball<double>(36, 0.1), bad, y, worst_case_options{}); },
        {"worst_case()", "x must be finite", "nan"});
}

TEST_CASE("a rank-4 model is searched through its flat rows") {
    // The bundled CNN takes [N, 1, 28, 28]; the family reads each image as 784 features.
    cnn<double> net(3);
    net.set_mode(mode::eval);
    auto x = tensor<double, 4>::from_shape({3, 1, 28, 28});
    rng gen(4);
    for (auto& v : x) v = gen.uniform(0.2, 0.8);
    const auto y = testing::cyclic_labels(3, 10);
    const affine<double> warp({1, 28, 28},
                              {.rotation = symmetric(15), .translate_x = symmetric(2)});
    const auto r = worst_case(net, warp, x, y, worst_case_options{}.steps(2).random_start(false));
    CHECK(r.perturbed.shape() == x.shape());
    CHECK(warp.contains(r.theta));
    typename cnn<double>::cache_type c;
    tensor<double, 2> logits;
    net.forward(x, c, logits);
    const auto clean = cross_entropy_per_sample(logits, y);
    net.forward(r.perturbed, c, logits);
    const auto reported = cross_entropy_per_sample(logits, y);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(r.loss(i) >= clean(i));
        CHECK(reported(i) == doctest::Approx(r.loss(i)).epsilon(1e-9));
    }
}

}  // namespace test_perturbations_search
