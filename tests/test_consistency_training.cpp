// The consistency methods, augmix and augmax (training/consistency_step.hpp): the exact gradient
// of CE(x) + lambda JS over the views, AugMax's view as hard as the draw it starts from, and the
// options' checks.
#include <doctest/doctest.h>

#include <advaug/perturbations/perturbations.hpp>
#include <array>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_consistency_training {

using namespace advaug;

namespace {

const image_shape small_image{1, 6, 6};

augment_and_mix<double> small_mixture() {
    return augment_and_mix<double>(
        {any_family<double>(photometric<double>(small_image, {.brightness = symmetric(0.2), .contrast = symmetric(0.4)})),
         any_family<double>(affine<double>(small_image, {.rotation = symmetric(20), .translate_x = symmetric(1.5)})),
         any_family<double>(gaussian_blur<double>(small_image, {0.3, 1.2}))});
}

train_options quiet(training_method m) {
    static std::ostringstream sink;
    return train_options{}
        .method(m)
        .consistency(small_mixture(), 12)
        .learning_rate(lr_schedule::constant(0.1))
        .batch_size(12)
        .progress(progress_style::none)
        .output(sink);
}

}  // namespace

TEST_CASE("the parameter gradient is exactly that of CE(x) + lambda JS(x, v1, v2), views held fixed") {
    const auto x = testing::uniform_batch<double>(12, small_image.size(), 1, 0.2, 0.8);
    const auto y = testing::cyclic_labels(12, 3);
    for (auto method : {training_method::augmix, training_method::augmax}) {
        CAPTURE(to_string(method));
        mlp<double> net({small_image.size(), 10, 3}, 5);
        net.set_mode(mode::train);
        const train_options options = quiet(method);
        detail::batch_gradient<mlp<double>> gradient(net);
        const batch_losses losses = gradient("test", options, x, y, 0.0, 77, false);
        const tensor<double, 2> v1 = gradient.adversarial_batch(), v2 = gradient.second_view();
        CHECK(testing::max_abs_diff(v1, x) > 0);
        CHECK(testing::max_abs_diff(v2, x) > 0);
        CHECK(testing::max_abs_diff(v1, v2) > 0);

        auto objective = [&] {
            std::array<typename mlp<double>::cache_type, 3> c;
            std::array<tensor<double, 2>, 3> z;
            net.forward(x, c[0], z[0]);
            net.forward(v1, c[1], z[1]);
            net.forward(v2, c[2], z[2]);
            const std::array<const tensor<double, 2>*, 3> views{&z[0], &z[1], &z[2]};
            return cross_entropy(z[0], y) + 12 * jensen_shannon<double>(views);
        };
        CHECK(losses.loss == doctest::Approx(objective()).epsilon(1e-12));
        CHECK(losses.clean < losses.loss);
        auto params = net.parameters();
        const auto r = detail::compare_parameters(params, objective, gradient_check_options{});
        CHECK(r.checked == small_image.size() * 10 + 10 + 10 * 3 + 3);
        CHECK(r.relative_error < 1e-6);
    }
}

TEST_CASE("augmax's view is at least as hard as the AugMix draw its search starts from, sample by sample") {
    const auto x = testing::uniform_batch<double>(12, small_image.size(), 2, 0.2, 0.8);
    const auto y = testing::cyclic_labels(12, 3);
    mlp<double> net({small_image.size(), 16, 3}, 9);
    net.set_mode(mode::train);
    const train_options options = quiet(training_method::augmax);
    detail::batch_gradient<mlp<double>> gradient(net);
    const std::uint64_t batch_seed = 5;
    gradient("test", options, x, y, 0.0, batch_seed, false);
    const tensor<double, 2> hard = gradient.adversarial_batch();

    // the search's first start, as family_step draws it
    const auto& settings = *options.consistency();
    const auto key = perturbation_start_key(detail::mix_seed(batch_seed, settings.search.seed()), 0);
    tensor<double, 2> theta, start;
    small_mixture().sample(12, key, theta);
    small_mixture().apply(x, theta, start);
    net.set_mode(mode::eval);  // the attack's mode
    typename mlp<double>::cache_type c;
    tensor<double, 2> z;
    net.forward(hard, c, z);
    const auto hard_loss = cross_entropy_per_sample(z, y);
    net.forward(start, c, z);
    const auto start_loss = cross_entropy_per_sample(z, y);
    std::size_t harder = 0;
    for (std::size_t i = 0; i < 12; ++i) {
        CHECK(hard_loss(i) >= start_loss(i));
        harder += hard_loss(i) > start_loss(i) + 1e-9;
    }
    CHECK(harder > 6);  // the ascent moved most samples
}

TEST_CASE("the same batch seed gives the same views; another seed others") {
    const auto x = testing::uniform_batch<double>(12, small_image.size(), 3, 0.2, 0.8);
    const auto y = testing::cyclic_labels(12, 3);
    mlp<double> net({small_image.size(), 10, 3}, 5);
    detail::batch_gradient<mlp<double>> a(net), b(net);
    const train_options options = quiet(training_method::augmix);
    a("test", options, x, y, 0.0, 8, false);
    b("test", options, x, y, 0.0, 8, false);
    CHECK(testing::max_abs_diff(a.adversarial_batch(), b.adversarial_batch()) == 0);
    CHECK(testing::max_abs_diff(a.second_view(), b.second_view()) == 0);
    b("test", options, x, y, 0.0, 9, false);
    CHECK(testing::max_abs_diff(a.adversarial_batch(), b.adversarial_batch()) > 0);
}

TEST_CASE("consistency training learns, and logs CE(x) + lambda JS with the views' mean CE") {
    // Left half brighter or darker than the right: a rule the mixture's operations keep.
    auto x = testing::uniform_batch<double>(96, small_image.size(), 4, 0.35, 0.65);
    label_vector y = xt::zeros<std::int64_t>({x.shape()[0]});
    for (std::size_t i = 0; i < y.size(); ++i) {
        y(i) = static_cast<std::int64_t>(i % 2);
        for (std::size_t e = 0; e < small_image.size(); ++e) {
            if (e % 6 < 3) x(i, e) += i % 2 ? 0.3 : -0.3;
        }
    }
    const dataset<double> data(std::vector<double>(x.begin(), x.end()), {small_image.size()}, y, 2);
    for (auto method : {training_method::augmix, training_method::augmax}) {
        CAPTURE(to_string(method));
        mlp<double> net({small_image.size(), 16, 2}, 1);
        sgd<double> opt;
        std::vector<batch_report> logged;
        trainer tr(net, opt,
                   quiet(method).epochs(20).learning_rate(lr_schedule::constant(0.3)).log_every(1).on_batch(
                       [&](const batch_report& r) { logged.push_back(r); }));
        const auto result = tr.fit(data);
        REQUIRE(logged.size() == 20 * 8);
        CHECK(result.epochs.back().clean_loss < result.epochs.front().clean_loss);
        net.set_mode(mode::eval);  // half the samples of each class: 0.5 before training
        CHECK(accuracy(net, data) >= 0.95);
        for (const auto& r : logged) {
            CHECK(r.loss > r.clean_loss);  // the JS term is positive
            CHECK(std::isfinite(r.adversarial_loss));
        }
    }
}

TEST_CASE("the options are checked when the trainer is built") {
    mlp<double> net({small_image.size(), 4, 3}, 1);
    sgd<double> opt;
    auto build = [&](const train_options& o) { trainer tr(net, opt, o); };
    CHECK_THROWS_WITH_AS(build(train_options{}.method(training_method::augmix).learning_rate(lr_schedule::constant(0.1))),
                         "trainer(): method augmix needs a mixture; call .consistency(...)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(build(quiet(training_method::pgd).epsilon(0.1)),
                         "trainer(): a consistency mixture is set but the method is pgd, not augmix or augmax",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(build(quiet(training_method::augmax).alpha(0.5)),
                         "trainer(): alpha is set (0.5) but method augmax trains on CE(x) + weight * JS; set the "
                         "weight with .consistency(...)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(build(quiet(training_method::augmix).epsilon_warmup(1)),
                         "trainer(): epsilon_warmup is set but method augmix has no epsilon to ramp",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_options{}.consistency(small_mixture(), 0),
                         "train_options::consistency(): consistency weight must be finite and > 0, got 0",
                         std::invalid_argument);
    mlp<float> single({small_image.size(), 4, 3}, 1);
    sgd<float> opt_f;
    CHECK_THROWS_WITH_AS((trainer(single, opt_f, quiet(training_method::augmix))),
                         "trainer(): the consistency mixture's value_type is double, the model's is float",
                         std::invalid_argument);
    // epsilon is optional: it only sets the epoch summary's PGD attack
    build(quiet(training_method::augmix));
    build(quiet(training_method::augmix).epsilon(0.1));
}

}  // namespace test_consistency_training
