// Feature-space adversarial data augmentation (training/feature_ada.hpp) and the contract's
// optional feature members (sequential::features, input_gradient_with_features).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_feature_ada {

using namespace advaug;

static_assert(feature_classifier<mlp<float>>);
static_assert(feature_classifier<cnn<float>>);

TEST_CASE("features are the last layer's input, and the input gradient with features matches finite differences") {
    mlp<double> net({6, 7, 5, 3}, 2);
    const auto x = testing::uniform_batch<double>(4, 6, 1, 0.1, 0.9);
    typename mlp<double>::cache_type cache;
    tensor<double, 2> logits;
    net.forward(x, cache, logits);
    const tensor<double, 2> f = net.features(cache);
    REQUIRE((f.shape()[0] == 4 && f.shape()[1] == 5));
    // logits = f W^T + b of the last dense layer
    const auto& last = net.dense_layer(2);
    for (std::size_t i = 0; i < 4; ++i) {
        for (std::size_t k = 0; k < 3; ++k) {
            double z = last.bias()(k);
            for (std::size_t j = 0; j < 5; ++j) z += f(i, j) * last.weight()(k, j);
            CHECK(logits(i, k) == doctest::Approx(z).epsilon(1e-12));
        }
    }
    const auto g = testing::uniform_batch<double>(4, 3, 2, -1, 1);
    const auto h = testing::uniform_batch<double>(4, 5, 3, -1, 1);
    tensor<double, 2> dx;
    net.input_gradient_with_features(cache, g, h, dx);
    tensor<double, 2> probe = x;
    auto objective = [&] {
        typename mlp<double>::cache_type c;
        tensor<double, 2> z;
        net.forward(probe, c, z);
        return detail::dot(z, g) + detail::dot(net.features(c), h);
    };
    detail::fd_accumulator acc;
    detail::compare_finite_differences(acc, probe.data(), probe.size(), detail::to_doubles(dx), objective,
                                       gradient_check_options{});
    const auto r = acc.finish();
    CHECK(r.checked == 24);
    CHECK(r.relative_error < 1e-7);
    // without dfeatures it is the input gradient
    tensor<double, 2> zero = xt::zeros<double>({4, 5}), plain_dx;
    net.input_gradient_with_features(cache, g, zero, dx);
    net.input_gradient(cache, g, plain_dx);
    CHECK(testing::max_abs_diff(dx, plain_dx) == 0);
    CHECK_THROWS_WITH_AS(net.input_gradient_with_features(cache, g, g, dx),
                         "sequential::input_gradient_with_features(): dfeatures has shape [4, 3], the features have [4, 5]",
                         std::invalid_argument);
}

TEST_CASE("the ADA objective's input gradient matches finite differences, with and without the entropy term") {
    mlp<double> net({6, 8, 3}, 4);
    const auto x = testing::uniform_batch<double>(5, 6, 5, 0.2, 0.8);
    const auto y = testing::cyclic_labels(5, 3);
    typename mlp<double>::cache_type cache;
    tensor<double, 2> logits;
    net.forward(testing::uniform_batch<double>(5, 6, 6, 0.2, 0.8), cache, logits);
    const tensor<double, 2> anchor = net.features(cache);  // phi(x0) of other points
    for (double eta : {0.0, 2.0}) {
        CAPTURE(eta);
        const auto options = ada_options{}.gamma(0.7).entropy_weight(eta);
        tensor<double, 2> dx;
        const auto value = ada_objective_gradient(net, x, y, anchor, options, dx);
        tensor<double, 2> probe = x;
        auto objective = [&] {
            tensor<double, 2> unused;
            const auto v = ada_objective_gradient(net, probe, y, anchor, options, unused);
            return static_cast<double>(xt::sum(v)());
        };
        // the value: CE - gamma |phi - phi0|^2 + eta H, by hand for sample 0
        typename mlp<double>::cache_type c;
        tensor<double, 2> z;
        net.forward(x, c, z);
        const auto& f = net.features(c);
        double d2 = 0, s = 0, h = 0;
        for (std::size_t j = 0; j < f.shape()[1]; ++j) d2 += (f(0, j) - anchor(0, j)) * (f(0, j) - anchor(0, j));
        for (std::size_t k = 0; k < 3; ++k) s += std::exp(z(0, k));
        for (std::size_t k = 0; k < 3; ++k) h -= std::exp(z(0, k)) / s * std::log(std::exp(z(0, k)) / s);
        const double ce = std::log(s) - z(0, static_cast<std::size_t>(y(0)));
        CHECK(value(0) == doctest::Approx(ce - 0.7 * d2 + eta * h).epsilon(1e-10));
        detail::fd_accumulator acc;
        detail::compare_finite_differences(acc, probe.data(), probe.size(), detail::to_doubles(dx), objective,
                                           gradient_check_options{});
        const auto r = acc.finish();
        CHECK(r.relative_error < 1e-6);
        CHECK(r.analytic_norm > 0);
    }
}

TEST_CASE("ada_perturb climbs the objective, stays in the domain, and leaves the model unchanged") {
    mlp<double> net({6, 8, 3}, 4);
    const auto x = testing::uniform_batch<double>(16, 6, 7, 0.1, 0.9);
    const auto y = testing::cyclic_labels(16, 3);
    const auto options = ada_options{}.gamma(0.5).entropy_weight(1).steps(10).step_size(0.05);
    const auto values = net.parameters()[0].value;
    const std::vector<double> weights(values.begin(), values.end());
    const auto moved = ada_perturb(net, x, y, options);
    CHECK(testing::max_abs_diff(moved, x) > 0.01);
    CHECK(xt::amin(moved)() >= 0);
    CHECK(xt::amax(moved)() <= 1);
    const auto after = net.parameters()[0].value;
    CHECK(std::equal(after.begin(), after.end(), weights.begin(), weights.end()));
    typename mlp<double>::cache_type cache;
    tensor<double, 2> logits, dx;
    net.forward(x, cache, logits);
    const tensor<double, 2> anchor = net.features(cache);
    const auto start = ada_objective_gradient(net, x, y, anchor, options, dx);
    const auto end = ada_objective_gradient(net, moved, y, anchor, options, dx);
    CHECK(xt::sum(end)() > xt::sum(start)());
    CHECK_THROWS_WITH_AS(ada_perturb(net, x, testing::cyclic_labels(3, 3), options),
                         "ada_perturb(): labels has 3 entries, x has 16 rows", std::invalid_argument);
}

TEST_CASE("fit_ada trains in stages on the growing set, and refuses what does not fit") {
    const auto x = testing::uniform_batch<float>(120, 6, 8, 0.1, 0.9);
    label_vector y = xt::zeros<std::int64_t>({120});
    for (std::size_t i = 0; i < 120; ++i) y(i) = x(i, 0) > x(i, 1) ? 1 : 0;
    const dataset<float> data(std::vector<float>(x.begin(), x.end()), {6}, y, 2);
    static std::ostringstream sink;
    const auto options = train_options{}
                             .learning_rate(lr_schedule::constant(0.5))
                             .epochs(6)
                             .batch_size(20)
                             .progress(progress_style::none)
                             .output(sink);
    const auto ada = ada_options{}.phases(2).samples(30).steps(3).step_size(0.05);
    mlp<float> net({6, 8, 2}, 1);
    sgd<float> opt;
    std::vector<std::size_t> seen;
    const auto results = fit_ada(net, opt, train_options(options).on_epoch([&](const epoch_report& r) {
        seen.push_back(r.batches);
    }), data, ada);
    REQUIRE(results.size() == 3);  // two phases, then the rest
    // 120 samples, then 150, then 180, in batches of 20: 6, 8 and 4 x 9 batches
    CHECK(seen == std::vector<std::size_t>{6, 8, 9, 9, 9, 9});
    CHECK(accuracy(net, data) > 0.8);

    CHECK_THROWS_WITH_AS(fit_ada(net, opt, train_options(options).method(training_method::pgd).epsilon(0.1), data, ada),
                         "fit_ada(): the method is pgd; ADA trains plainly on the growing set (use method plain)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fit_ada(net, opt, train_options(options).learning_rate(lr_schedule::cosine(0.1, 4)), data, ada),
                         "fit_ada(): the learning rate is cosine(lr=0.1, epochs=4, min_lr=0); a schedule would restart "
                         "at every stage, use lr_schedule::constant",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fit_ada(net, opt, train_options(options).learning_rate(lr_schedule::one_cycle(0.1, 4)), data, ada),
                         "fit_ada(): the learning rate is one_cycle(max_lr=0.1, epochs=4, peak_fraction=0.4); a "
                         "schedule would restart at every stage, use lr_schedule::constant",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(fit_ada(net, opt, train_options(options).epochs(2), data, ada),
                         "fit_ada(): epochs is 2; 2 phases after every 1 epoch(s) need more than 2",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ada_options{}.step_size(0), "ada_options::step_size(): step_size must be finite and > 0, got 0",
                         std::invalid_argument);
}

}  // namespace test_feature_ada
