#include <doctest/doctest.h>

#include <advaug/evaluation/accuracy.hpp>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "support/models.hpp"
#include "support/ten_samples.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_accuracy {

using namespace advaug;
using testing::identity_model;
using testing::labels_of;
using testing::linear_model;
using testing::ten_features;
using testing::ten_labels;
using testing::ten_samples;

namespace {

/// The linear model behind a rank-4 interface: [N, 1, 1, 2] inputs are flattened.
struct rank4_model {
    using value_type = double;
    static constexpr std::size_t input_rank = 4;
    struct cache_type {
        tensor<double, 2> flat;
        linear_model<double>::cache_type inner;
    };
    std::size_t num_classes() const { return inner.num_classes(); }
    void forward(const tensor<double, 4>& x, cache_type& c, tensor<double, 2>& logits) const {
        c.flat = xt::reshape_view(x, {x.shape()[0], std::size_t{2}});
        inner.forward(c.flat, c.inner, logits);
    }
    void input_gradient(cache_type& c, const tensor<double, 2>& g, tensor<double, 4>& dx) const {
        tensor<double, 2> flat;
        inner.input_gradient(c.inner, g, flat);
        dx = xt::reshape_view(flat,
                              {flat.shape()[0], std::size_t{1}, std::size_t{1}, std::size_t{2}});
    }
    advaug::mode mode() const { return inner.mode(); }
    void set_mode(advaug::mode m) { inner.set_mode(m); }

    linear_model<double> inner = identity_model();
};

/// 300 pixel samples of 10 features in 3 classes: a class pattern plus noise.
dataset<std::uint8_t> blobs() {
    const std::size_t n = 300, d = 10, k = 3;
    rng gen(5);
    std::vector<double> means(k * d);
    for (auto& m : means) m = gen.uniform(60, 195);
    std::vector<std::uint8_t> f(n * d);
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        y(i) = static_cast<std::int64_t>(i % k);
        for (std::size_t j = 0; j < d; ++j) {
            const double v = means[(i % k) * d + j] + 30.0 * gen.normal();
            f[i * d + j] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
        }
    }
    return dataset<std::uint8_t>(std::move(f), {d}, y, k, 1.0 / 255.0);
}

/// Full-batch gradient descent on the cross-entropy; leaves the model in train mode.
linear_model<float> trained_on(const dataset<std::uint8_t>& data) {
    linear_model<float> model(data.sample_size(), data.num_classes(), 3);
    model.set_mode(mode::train);
    const auto [x, y] = data.slice<float, 2>(0, data.size());
    linear_model<float>::cache_type cache;
    tensor<float, 2> logits, g;
    for (int step = 0; step < 100; ++step) {
        model.zero_grad();
        model.forward(x, cache, logits);
        cross_entropy_gradient(logits, y, g);
        model.parameter_gradient(cache, g);
        model.w -= 2.0f * model.dw;
        model.b -= 2.0f * model.db;
    }
    return model;
}

}  // namespace

TEST_CASE("count_correct: argmax per row, the first maximum wins") {
    const tensor<double, 2> logits{{1, 2, 3}, {3, 3, 1}, {0, 5, 5}};
    CHECK(count_correct(logits, labels_of({2, 0, 1})) == 3);
    CHECK(count_correct(logits, labels_of({2, 1, 2})) == 1);
    CHECK(count_correct(logits, labels_of({0, 2, 0})) == 0);
    CHECK(count_correct(tensor<float, 2>::from_shape({0, 3}), label_vector::from_shape({0})) == 0);

    CHECK_THROWS_WITH_AS(count_correct(logits, labels_of({2, 0})),
                         "count_correct(): labels has 2 entries, the batch has 3 rows",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(count_correct(logits, labels_of({3, 0, 0})),
                         "count_correct(): labels[0] = 3 is outside [0, 3)", std::invalid_argument);
    tensor<double, 2> bad = logits;
    bad(1, 2) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(count_correct(bad, labels_of({2, 0, 1})),
                         "count_correct(): logit 2 of sample 1 is nan; the model produced a "
                         "non-finite value",
                         numeric_error);
}

TEST_CASE("accuracy: a hand-built model on hand-built data, for every batch size") {
    auto model = identity_model();
    const auto data = ten_samples();
    for (std::size_t batch : {1, 3, 4, 7, 10, 500}) {
        CHECK(accuracy(model, data, batch) == doctest::Approx(0.7));
    }

    // Exact: 7 of 10 in every batching.
    CHECK(accuracy(model, data, 3) == 0.7);

    // More logits than the dataset has classes is fine; a third class never wins here.
    auto three = identity_model(3);
    three.b(2) = -100.0;
    CHECK(accuracy(three, data) == 0.7);

    // Rank-4 inputs go through the same path.
    rank4_model m4;
    CHECK(accuracy(m4, ten_samples({1, 1, 2}), 4) == 0.7);
}

TEST_CASE("accuracy: argument errors") {
    auto model = identity_model();
    const auto data = ten_samples();
    CHECK_THROWS_WITH_AS(accuracy(model, data, 0), "accuracy(): batch_size must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(accuracy(model, ten_samples({1, 1, 2})),
                         "accuracy(): the model takes inputs of rank 2, but the dataset's "
                         "samples of shape [1, 1, 2] make batches of rank 4",
                         std::invalid_argument);
    rank4_model m4;
    CHECK_THROWS_WITH_AS(accuracy(m4, data),
                         "accuracy(): the model takes inputs of rank 4, but the dataset's "
                         "samples of shape [2] make batches of rank 2",
                         std::invalid_argument);
    const dataset<float> three_classes(ten_features, {2}, labels_of(ten_labels), 3);
    CHECK_THROWS_WITH_AS(accuracy(model, three_classes),
                         "accuracy(): the dataset has 3 classes but the model only 2 logits",
                         std::invalid_argument);
    const auto identity = [](const auto&, const auto& x, const auto&) { return x; };
    CHECK_THROWS_WITH_AS(robust_accuracy(model, data, identity, 0),
                         "robust_accuracy(): batch_size must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(transformed_accuracy(
                             model, data, [](auto&, std::size_t) {}, 0),
                         "transformed_accuracy(): batch_size must be >= 1, got 0",
                         std::invalid_argument);
}

TEST_CASE("accuracy: the model runs in eval mode and gets its mode back") {
    auto model = identity_model();
    const auto data = ten_samples();
    model.set_mode(mode::train);
    std::vector<mode> seen;
    const auto spy = [&](auto&, std::size_t) { seen.push_back(model.mode()); };
    CHECK(transformed_accuracy(model, data, spy, 4) == 0.7);
    CHECK(seen == std::vector<mode>{mode::eval, mode::eval, mode::eval});
    CHECK(model.mode() == mode::train);

    const auto boom = [](auto&, std::size_t) { throw std::runtime_error("boom"); };
    CHECK_THROWS_AS(transformed_accuracy(model, data, boom), std::runtime_error);
    CHECK(model.mode() == mode::train);
}

TEST_CASE("transformed_accuracy: batches in order, buffers reused, transform applied") {
    auto model = identity_model();
    const auto data = ten_samples();
    std::vector<std::size_t> indices, rows;
    std::vector<const double*> buffers;
    const auto record = [&](tensor<double, 2>& x, std::size_t b) {
        indices.push_back(b);
        rows.push_back(x.shape()[0]);
        buffers.push_back(x.data());
    };
    CHECK(transformed_accuracy(model, data, record, 3) == 0.7);
    CHECK(indices == std::vector<std::size_t>{0, 1, 2, 3});
    CHECK(rows == std::vector<std::size_t>{3, 3, 3, 1});
    CHECK(buffers[1] == buffers[0]);
    CHECK(buffers[2] == buffers[0]);

    // All-zero inputs give all-zero logits: class 0 everywhere, and 5 of 10 labels are 0.
    const auto blank = [](tensor<double, 2>& x, std::size_t) { x.fill(0.0); };
    CHECK(transformed_accuracy(model, data, blank, 4) == 0.5);
    // Swapping the features flips every prediction except the ties.
    const auto swap = [](tensor<double, 2>& x, std::size_t) {
        for (std::size_t i = 0; i < x.shape()[0]; ++i) std::swap(x(i, 0), x(i, 1));
    };
    CHECK(transformed_accuracy(model, data, swap) == 0.3);

    const auto shrink = [](tensor<double, 2>& x, std::size_t) { x.resize({x.shape()[0], 1}); };
    CHECK_THROWS_WITH_AS(transformed_accuracy(model, data, shrink, 3),
                         "transformed_accuracy(): the transform changed the batch's shape from "
                         "[3, 2] to [3, 1]",
                         std::invalid_argument);
}

TEST_CASE("robust_accuracy: identity attack, bad attack, FGSM and PGD on a trained model") {
    auto model = identity_model();
    const auto data = ten_samples();
    std::size_t calls = 0;
    const auto identity = [&](const auto& m, const tensor<double, 2>& x, const label_vector& y) {
        ++calls;
        CHECK(m.mode() == mode::eval);
        CHECK(y.size() == x.shape()[0]);
        return x;
    };
    CHECK(robust_accuracy(model, data, identity, 4) == accuracy(model, data, 4));
    CHECK(calls == 3);

    const auto bad = [](const auto&, const tensor<double, 2>&, const label_vector&) {
        return tensor<double, 2>::from_shape({1, 2});
    };
    CHECK_THROWS_WITH_AS(robust_accuracy(model, data, bad, 3),
                         "robust_accuracy(): the attack's result has shape [1, 2], the batch has "
                         "shape [3, 2]",
                         std::invalid_argument);

    const auto pixels = blobs();
    auto trained = trained_on(pixels);
    const double clean = accuracy(trained, pixels, 64);
    CHECK(trained.mode() == mode::train);
    CHECK(clean > 0.9);

    const auto fgsm_at = [](double eps) {
        return [eps](const auto& m, const auto& x, const auto& y) {
            return fgsm(m, x, y, fgsm_options{}.epsilon(eps));
        };
    };
    CHECK(robust_accuracy(trained, pixels, fgsm_at(0.0), 64) == clean);
    const double weak = robust_accuracy(trained, pixels, fgsm_at(0.02), 64);
    const double strong = robust_accuracy(trained, pixels, fgsm_at(0.3), 64);
    CHECK(weak <= clean);
    CHECK(strong < clean - 0.5);
    CHECK(strong <= weak);

    const double pgd_acc = robust_accuracy(
        trained, pixels,
        [](const auto& m, const auto& x, const auto& y) {
            return pgd(m, x, y, pgd_options{}.epsilon(0.3).steps(5).seed(1));
        },
        100);
    CHECK(pgd_acc < clean - 0.5);
}

}  // namespace test_accuracy
