#include <doctest/doctest.h>

#include <advaug/evaluation/robustness.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/fashion_mnist.hpp"
#include "support/models.hpp"
#include "support/ten_samples.hpp"
#include "support/skip.hpp"
#include "support/striped_images.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_robustness {

using namespace advaug;
using testing::fashion_mnist_skip_message;
using testing::fashion_mnist_test_set;
using testing::identity_model;
using testing::labels_of;
using testing::linear_model;
using testing::ten_features;
using testing::ten_labels;
using testing::ten_samples;
using testing::striped_images;
using testing::train_linear;

namespace {

/// A linear model that counts forward() calls made outside eval mode (from any thread).
struct mode_spy {
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    using cache_type = linear_model<float>::cache_type;
    std::size_t num_classes() const { return inner.num_classes(); }
    void forward(const tensor<float, 2>& x, cache_type& c, tensor<float, 2>& logits) const {
        if (inner.mode() != mode::eval) ++wrong_mode;
        inner.forward(x, c, logits);
    }
    void input_gradient(cache_type& c, const tensor<float, 2>& g, tensor<float, 2>& dx) const {
        inner.input_gradient(c, g, dx);
    }
    advaug::mode mode() const { return inner.mode(); }
    void set_mode(advaug::mode m) { inner.set_mode(m); }

    linear_model<float> inner;
    mutable std::atomic<int> wrong_mode{0};
};

/// A linear model behind a rank-4 interface: [N, 1, H, W] inputs are flattened.
struct image_model {
    using value_type = float;
    static constexpr std::size_t input_rank = 4;
    struct cache_type {
        tensor<float, 2> flat;
        linear_model<float>::cache_type inner;
    };
    std::size_t num_classes() const { return inner.num_classes(); }
    void forward(const tensor<float, 4>& x, cache_type& c, tensor<float, 2>& logits) const {
        c.flat = xt::reshape_view(x, {x.shape()[0], x.size() / x.shape()[0]});
        inner.forward(c.flat, c.inner, logits);
    }
    void input_gradient(cache_type& c, const tensor<float, 2>& g, tensor<float, 4>& dx) const {
        tensor<float, 2> flat;
        inner.input_gradient(c.inner, g, flat);
        const std::size_t side = 8;
        dx = xt::reshape_view(flat, {flat.shape()[0], std::size_t{1}, side, side});
    }
    advaug::mode mode() const { return inner.mode(); }
    void set_mode(advaug::mode m) { inner.set_mode(m); }

    linear_model<float> inner;
};

/// Every field, doubles compared bitwise (NaN equals NaN).
bool same_bits(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](double x, double y) { return same_bits(x, y); });
}

bool identical(const model_evaluation& a, const model_evaluation& b) {
    bool same = a.model == b.model && a.samples == b.samples &&
                same_bits(a.clean_accuracy, b.clean_accuracy) &&
                same_bits(a.per_class_accuracy, b.per_class_accuracy) &&
                a.confusion == b.confusion && a.curves.size() == b.curves.size() &&
                a.corruptions.size() == b.corruptions.size() &&
                same_bits(a.mean_corruption_accuracy, b.mean_corruption_accuracy) &&
                same_bits(a.relative_mce, b.relative_mce);
    for (std::size_t i = 0; same && i < a.curves.size(); ++i) {
        same = a.curves[i].attack == b.curves[i].attack && a.curves[i].samples == b.curves[i].samples &&
               same_bits(a.curves[i].epsilon, b.curves[i].epsilon) &&
               same_bits(a.curves[i].accuracy, b.curves[i].accuracy) &&
               a.curves[i].members == b.curves[i].members &&
               a.curves[i].per_class_accuracy.size() == b.curves[i].per_class_accuracy.size() &&
               a.curves[i].broken_by.size() == b.curves[i].broken_by.size();
        for (std::size_t e = 0; same && e < a.curves[i].per_class_accuracy.size(); ++e)
            same = same_bits(a.curves[i].per_class_accuracy[e], b.curves[i].per_class_accuracy[e]);
        for (std::size_t e = 0; same && e < a.curves[i].broken_by.size(); ++e)
            same = same_bits(a.curves[i].broken_by[e], b.curves[i].broken_by[e]);
    }
    for (std::size_t i = 0; same && i < a.corruptions.size(); ++i) {
        same = a.corruptions[i].name == b.corruptions[i].name &&
               same_bits(a.corruptions[i].accuracy, b.corruptions[i].accuracy) &&
               same_bits(a.corruptions[i].mean_accuracy, b.corruptions[i].mean_accuracy);
    }
    return same;
}

/// Properties every evaluation has, whatever the model.
void check_consistent(const model_evaluation& r, const label_vector& labels) {
    const std::size_t k = r.confusion.size();
    REQUIRE(r.per_class_accuracy.size() == k);
    std::uint64_t diagonal = 0, all = 0;
    for (std::size_t t = 0; t < k; ++t) {
        REQUIRE(r.confusion[t].size() == k);
        const auto row =
            std::accumulate(r.confusion[t].begin(), r.confusion[t].end(), std::uint64_t{0});
        const auto in_class = static_cast<std::uint64_t>(
            std::count(labels.begin(), labels.end(), static_cast<std::int64_t>(t)));
        CHECK(row == in_class);
        if (row > 0) {
            CHECK(r.per_class_accuracy[t] ==
                  static_cast<double>(r.confusion[t][t]) / static_cast<double>(row));
        } else {
            CHECK(std::isnan(r.per_class_accuracy[t]));
        }
        diagonal += r.confusion[t][t];
        all += row;
    }
    CHECK(all == r.samples);
    CHECK(r.clean_accuracy == static_cast<double>(diagonal) / static_cast<double>(r.samples));
    // Each curve's per-class robust accuracies average, weighted by the classes' sizes among the
    // samples it attacked, to its accuracy; an ensemble's shares broken by each member plus what
    // survived is the clean accuracy (of the samples attacked).
    for (const auto& c : r.curves) {
        CAPTURE(c.attack);
        REQUIRE(c.per_class_accuracy.size() == c.epsilon.size());
        const std::size_t attacked = attacked_samples(r, c);
        REQUIRE(attacked <= r.samples);
        for (std::size_t e = 0; e < c.epsilon.size(); ++e) {
            double weighted = 0;
            for (std::size_t t = 0; t < k; ++t) {
                const auto row = static_cast<std::uint64_t>(std::count(
                    labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(attacked), static_cast<std::int64_t>(t)));
                if (row > 0) weighted += c.per_class_accuracy[e][t] * static_cast<double>(row);
            }
            CHECK(weighted / static_cast<double>(attacked) == doctest::Approx(c.accuracy[e]));
            if (c.epsilon[e] == 0 && attacked == r.samples) CHECK(c.per_class_accuracy[e] == r.per_class_accuracy);
        }
        if (c.members.empty()) {
            CHECK(c.broken_by.empty());
            continue;
        }
        REQUIRE(c.broken_by.size() == c.epsilon.size());
        for (std::size_t e = 0; e < c.epsilon.size(); ++e) {
            double broken = 0;
            for (double b : c.broken_by[e]) broken += b;
            if (attacked == r.samples) CHECK(broken + c.accuracy[e] == doctest::Approx(r.clean_accuracy));
            if (c.epsilon[e] == 0) CHECK(broken == 0);
        }
    }
    double sum = 0;
    for (const auto& c : r.corruptions) {
        REQUIRE(c.accuracy.size() == 5);
        CHECK(c.mean_accuracy ==
              doctest::Approx(std::accumulate(c.accuracy.begin(), c.accuracy.end(), 0.0) / 5));
        sum += c.mean_accuracy;
    }
    if (!r.corruptions.empty()) {
        CHECK(r.mean_corruption_accuracy ==
              doctest::Approx(sum / static_cast<double>(r.corruptions.size())));
    } else {
        CHECK(std::isnan(r.mean_corruption_accuracy));
    }
}

corruption_result corruption_of(std::string name, std::vector<double> accuracy) {
    corruption_result r;
    r.name = std::move(name);
    r.accuracy = std::move(accuracy);
    r.mean_accuracy = std::accumulate(r.accuracy.begin(), r.accuracy.end(), 0.0) /
                      static_cast<double>(r.accuracy.size());
    return r;
}

}  // namespace

TEST_CASE("evaluation_options: setters keep valid values and refuse the rest") {
    evaluation_options o;
    CHECK(o.batch_size() == 500);
    CHECK(o.threads() == 1);
    CHECK(o.seed() == 0);
    CHECK(o.epsilons().empty());
    CHECK(o.attacks().empty());
    CHECK(o.corruptions().empty());
    CHECK(o.image_size() == std::pair<std::size_t, std::size_t>{0, 0});

    o.epsilons({0.1, 0.0, 0.03}).batch_size(7).threads(3).seed(9).image_size(4, 5);
    CHECK(o.epsilons() == std::vector<double>{0.0, 0.03, 0.1});  // sorted
    CHECK(o.batch_size() == 7);
    CHECK(o.threads() == 3);
    CHECK(o.seed() == 9);
    CHECK(o.image_size() == std::pair<std::size_t, std::size_t>{4, 5});
    o.corruptions({corruption::fog, corruption::shot_noise});
    CHECK(o.corruptions() == std::vector<corruption>{corruption::fog, corruption::shot_noise});

    CHECK(attack_spec::fgsm().name() == "fgsm");
    CHECK(attack_spec::pgd().name() == "pgd-20");
    CHECK(attack_spec::pgd().steps() == 20);
    CHECK(attack_spec::pgd().step_factor() == 2.5);
    CHECK(attack_spec::pgd().random_start());
    CHECK(attack_spec::pgd(7).random_start(false).name() == "bim-7");
    CHECK(attack_spec::pgd(10).step_factor(1.5).name() == "pgd-10-step1.5");
    o.attacks({attack_spec::fgsm(), attack_spec::pgd(), attack_spec::pgd(20).random_start(false)});
    CHECK(o.attacks().size() == 3);

    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH_AS(o.epsilons({0.1, -0.2}),
                         "evaluation_options::epsilons(): epsilons[1] must be finite and >= 0, got "
                         "-0.20000000000000001",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        o.epsilons({nan}),
        "evaluation_options::epsilons(): epsilons[0] must be finite and >= 0, got nan",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(o.epsilons({0.5, 0.25, 0.5}),
                         "evaluation_options::epsilons(): epsilon 0.5 is given twice",
                         std::invalid_argument);
    CHECK(o.epsilons() == std::vector<double>{0.0, 0.03, 0.1});  // unchanged by the failures
    CHECK_THROWS_WITH_AS(o.batch_size(0),
                         "evaluation_options::batch_size(): batch_size must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(o.on_progress(nullptr),
                         "evaluation_options::on_progress(): the callback is empty",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(o.on_progress([](const evaluation_progress&) {}, -1.0),
                         "evaluation_options::on_progress(): every_seconds must be finite and >= 0, got -1",
                         std::invalid_argument);
    CHECK_FALSE(o.on_progress());
    CHECK(attack_spec::autoattack().name() == "autoattack");
    CHECK(attack_spec::autoattack(autoattack_version::plus).name() == "autoattack-plus");
    CHECK(attack_spec::autoattack(autoattack_version::rand).name() == "autoattack-rand");
    CHECK_THROWS_WITH_AS(attack_spec::autoattack().step_factor(2),
                         "attack_spec::step_factor(): only PGD has a step size; this attack is autoattack",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(o.threads(0), "evaluation_options::threads(): threads must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(o.image_size(28, 0),
                         "evaluation_options::image_size(): height and width must be >= 1, got "
                         "height 28 and width 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        o.corruptions({corruption::fog, static_cast<corruption>(99)}),
        "evaluation_options::corruptions(): corruptions[1] is not a corruption, got value 99",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        o.corruptions({corruption::fog, corruption::zigzag, corruption::fog}),
        "evaluation_options::corruptions(): corruptions[0] and corruptions[2] are both fog",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(o.attacks({attack_spec::pgd(20), attack_spec::fgsm(), attack_spec::pgd()}),
                         "evaluation_options::attacks(): attacks[0] and attacks[2] are both pgd-20",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(attack_spec::pgd(0), "attack_spec::pgd(): steps must be >= 1, got 0",
                         std::invalid_argument);
    CHECK(attack_spec::fgsm().samples() == 0);
    CHECK(attack_spec::autoattack().samples(1000).samples() == 1000);
    CHECK(attack_spec::autoattack().samples(1000).name() == "autoattack");
    CHECK_THROWS_WITH_AS(attack_spec::pgd().samples(0),
                         "attack_spec::samples(): n must be >= 1, got 0 (an attack runs on every sample "
                         "unless samples() is called)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(attack_spec::pgd().step_factor(0),
                         "attack_spec::step_factor(): step_factor must be finite and > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        attack_spec::fgsm().step_factor(1),
        "attack_spec::step_factor(): only PGD has a step size; this attack is fgsm",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        attack_spec::fgsm().random_start(false),
        "attack_spec::random_start(): only PGD has a random start; this attack is fgsm",
        std::invalid_argument);
}

TEST_CASE("evaluate_robustness: hand-computed clean numbers, confusion matrix and curves") {
    auto model = identity_model();
    const auto data = ten_samples();
    model.set_mode(mode::train);

    SUBCASE("clean only") {
        const auto r =
            evaluate_robustness(model, data, evaluation_options{}.batch_size(3), "identity");
        CHECK(r.model == "identity");
        CHECK(r.samples == 10);
        CHECK(r.clean_accuracy == 0.7);
        CHECK(r.clean_accuracy == accuracy(model, data, 3));
        // True class 0: samples 0, 2, 4, 7, 8 predicted 0, 0, 0, 1, 0.
        // True class 1: samples 1, 3, 5, 6, 9 predicted 1, 1, 0, 0, 1.
        CHECK(r.confusion == std::vector<std::vector<std::uint64_t>>{{4, 1}, {2, 3}});
        CHECK(r.per_class_accuracy == std::vector<double>{0.8, 0.6});
        CHECK(r.curves.empty());
        CHECK(r.corruptions.empty());
        CHECK(std::isnan(r.mean_corruption_accuracy));
        CHECK(std::isnan(r.relative_mce));
        check_consistent(r, data.labels());
        CHECK(model.mode() == mode::train);
    }

    SUBCASE("FGSM, and PGD reduced to FGSM, on a linear model") {
        // The gradient of CE at logits = x is softmax - onehot, so FGSM moves both features by
        // eps against the label: the margin shrinks by 2 eps (ties still go to class 0).
        //   eps 0.25: samples 4, 5, 6, 7 are wrong       -> 0.6
        //   eps 0.5:  samples 1, 4, 5, 6, 7, 9 are wrong -> 0.4
        // PGD with 1 step of size eps from x (step_factor 1, no random start) is FGSM.
        const auto options = evaluation_options{}
                                 .epsilons({0.5, 0.0, 0.25})
                                 .attacks({attack_spec::fgsm(),
                                           attack_spec::pgd(1).step_factor(1).random_start(false)})
                                 .domain(input_domain::unbounded())
                                 .batch_size(4);
        const auto r = evaluate_robustness(model, data, options, "identity");
        REQUIRE(r.curves.size() == 2);
        CHECK(r.curves[0].attack == "fgsm");
        CHECK(r.curves[1].attack == "bim-1-step1");
        for (const auto& c : r.curves) {
            CHECK(c.epsilon == std::vector<double>{0.0, 0.25, 0.5});
            CHECK(c.accuracy == std::vector<double>{0.7, 0.6, 0.4});
        }
        // The same on three threads.
        CHECK(identical(
            evaluate_robustness(model, data, evaluation_options(options).threads(3), "identity"),
            r));
        CHECK(model.mode() == mode::train);
    }

    SUBCASE("an attack on the first samples only") {
        // FGSM on samples 0-5: batches of 4 attack all of the first and the first two rows of
        // the second. Clean, 0-4 are right and 5 wrong; at eps 0.25 also 4; at eps 0.5 also 1.
        // Class 0 is samples 0, 2, 4 and class 1 samples 1, 3, 5.
        const auto options = evaluation_options{}
                                 .epsilons({0.0, 0.25, 0.5})
                                 .attacks({attack_spec::fgsm().samples(6),
                                           attack_spec::pgd(1).step_factor(1).random_start(false)})
                                 .domain(input_domain::unbounded())
                                 .batch_size(4);
        const auto r = evaluate_robustness(model, data, options, "identity");
        REQUIRE(r.curves.size() == 2);
        const eps_curve& part = r.curves[0];
        CHECK(part.samples == 6);
        CHECK(attacked_samples(r, part) == 6);
        CHECK(part.accuracy == std::vector<double>{5.0 / 6, 4.0 / 6, 3.0 / 6});
        REQUIRE(part.per_class_accuracy.size() == 3);
        CHECK(part.per_class_accuracy[0] == std::vector<double>{1.0, 2.0 / 3});
        CHECK(part.per_class_accuracy[1] == std::vector<double>{2.0 / 3, 2.0 / 3});
        CHECK(part.per_class_accuracy[2] == std::vector<double>{2.0 / 3, 1.0 / 3});
        // The other attack, and everything else, still sees all ten.
        CHECK(r.curves[1].samples == 10);
        CHECK(r.curves[1].accuracy == std::vector<double>{0.7, 0.6, 0.4});
        CHECK(r.clean_accuracy == 0.7);
        check_consistent(r, data.labels());
        // samples(10) is every sample: the same numbers as no limit.
        const auto all = evaluate_robustness(
            model, data,
            evaluation_options(options).attacks({attack_spec::fgsm().samples(10)}), "identity");
        CHECK(all.curves[0].accuracy == std::vector<double>{0.7, 0.6, 0.4});
        CHECK(all.curves[0].per_class_accuracy[0] == r.per_class_accuracy);
        // And any thread count gives the same.
        CHECK(identical(
            evaluate_robustness(model, data, evaluation_options(options).threads(3), "identity"),
            r));
    }
}

TEST_CASE("evaluate_robustness: argument errors name the function, the argument and the value") {
    auto model = identity_model();
    const auto data = ten_samples();
    const evaluation_options plain;
    CHECK_THROWS_WITH_AS(evaluate_robustness(model, data, plain, ""),
                         "evaluate_robustness(): label is empty; name the model, e.g. \"plain\"",
                         std::invalid_argument);
    auto three = identity_model(3);
    CHECK_THROWS_WITH_AS(evaluate_robustness(three, data, plain, "m"),
                         "evaluate_robustness(): the dataset has 2 classes but the model has 3 "
                         "logits; they must be equal",
                         std::invalid_argument);
    const dataset<float> rank4(ten_features, {1, 1, 2}, labels_of(ten_labels), 2);
    CHECK_THROWS_WITH_AS(evaluate_robustness(model, rank4, plain, "m"),
                         "evaluate_robustness(): the model takes inputs of rank 2, but the "
                         "dataset's samples of shape [1, 1, 2] make batches of rank 4",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        evaluate_robustness(model, data, evaluation_options{}.attacks({attack_spec::fgsm()}), "m"),
        "evaluate_robustness(): options has 1 attack(s) but no epsilons; set "
        "evaluation_options::epsilons()",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        evaluate_robustness(model, data,
                            evaluation_options{}.epsilons({0.1}).attacks({attack_spec::autoattack()}), "m"),
        "evaluate_robustness(): attack autoattack needs a model with at least 4 classes (its targeted "
        "members attack the 3 classes after the top one and more), the model has 2",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        evaluate_robustness(model, data,
                            evaluation_options{}.epsilons({0.1}).attacks({attack_spec::fgsm().samples(11)}), "m"),
        "evaluate_robustness(): attack fgsm runs on the first 11 samples (attack_spec::samples), but the "
        "dataset has only 10",
        std::invalid_argument);
    const auto fog = evaluation_options{}.corruptions({corruption::fog});
    CHECK_THROWS_WITH_AS(evaluate_robustness(model, data, fog, "m"),
                         "evaluate_robustness(): corruptions need the image size: set "
                         "evaluation_options::image_size() for samples of shape [2]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        evaluate_robustness(model, data, evaluation_options(fog).image_size(2, 2), "m"),
        "evaluate_robustness(): corruptions need samples of shape [4] or [1, 2, 2] "
        "for image_size 2 x 2, got samples of shape [2]",
        std::invalid_argument);
    // Features up to 4 are no pixels in [0, 1]: corrupt_batch's error, with the corruption.
    CHECK_THROWS_WITH_AS(
        evaluate_robustness(model, data, evaluation_options(fog).image_size(1, 2), "m"),
        "evaluate_robustness(): corruption fog at severity 1: corrupt_batch(): "
        "batch must have values in [0, 1], got 2 at sample 2, pixel (0, 0)",
        std::invalid_argument);
}

TEST_CASE("evaluate_robustness: bitwise the same for any thread count and on every run") {
    const auto data = striped_images();
    mode_spy model{linear_model<float>(64, 3, 4)};
    train_linear(model.inner, data, 60, 1.0f);
    const auto before = testing::snapshot(model.inner);
    const double clean = accuracy(model, data, 50);
    REQUIRE(clean > 0.9);
    REQUIRE(model.mode() == mode::train);

    const std::vector<corruption> noisy = {corruption::gaussian_noise, corruption::impulse_noise,
                                           corruption::contrast, corruption::shot_noise};
    const auto options = evaluation_options{}
                             .epsilons({0.0, 0.05, 0.1, 0.2})
                             .attacks({attack_spec::fgsm(), attack_spec::pgd(5)})
                             .corruptions(noisy)
                             .image_size(8, 8)
                             .batch_size(32)
                             .seed(3);
    const auto one = evaluate_robustness(model, data, options, "linear");
    CHECK(model.wrong_mode == 0);
    CHECK(model.mode() == mode::train);
    CHECK(testing::snapshot(model.inner) == before);  // weights and gradients untouched

    check_consistent(one, data.labels());
    CHECK(one.clean_accuracy == clean);
    for (const auto& c : one.curves) {
        CHECK(c.accuracy[0] == clean);
        CHECK(c.accuracy.back() < clean - 0.3);
    }
    CHECK(identical(evaluate_robustness(model, data, options, "linear"), one));
    for (std::size_t threads : {2, 3, 16}) {
        CAPTURE(threads);
        CHECK(identical(evaluate_robustness(model, data,
                                            evaluation_options(options).threads(threads), "linear"),
                        one));
    }
    CHECK(model.wrong_mode == 0);
    CHECK(testing::snapshot(model.inner) == before);

    // The seed matters: PGD's random start and the random corruptions change with it.
    const auto other =
        evaluate_robustness(model, data, evaluation_options(options).seed(4), "linear");
    CHECK(other.clean_accuracy == one.clean_accuracy);
    CHECK(other.curves[0].accuracy == one.curves[0].accuracy);            // FGSM is deterministic
    CHECK(other.corruptions[2].accuracy == one.corruptions[2].accuracy);  // so is contrast
    CHECK_FALSE(identical(other, one));

    // A failure inside a batch reaches the caller, the same one for any thread count: the
    // domain [0, 0.9] excludes the brightest pixels, so FGSM refuses the first batch.
    const auto narrow = evaluation_options(options).domain(input_domain{}.bounds(0.0, 0.9));
    std::string single, several;
    try {
        evaluate_robustness(model, data, narrow, "linear");
    } catch (const std::invalid_argument& e) {
        single = e.what();
    }
    try {
        evaluate_robustness(model, data, evaluation_options(narrow).threads(3), "linear");
    } catch (const std::invalid_argument& e) {
        several = e.what();
    }
    CHECK(single.rfind("fgsm(): inputs[", 0) == 0);
    CHECK(several == single);
    CHECK(model.mode() == mode::train);
}

TEST_CASE("evaluate_robustness: progress reports grow, end once at 1, and leave the results alone") {
    const auto data = striped_images(100);
    linear_model<float> model(64, 3, 4);
    train_linear(model, data, 30, 1.0f);
    const auto options = evaluation_options{}
                             .epsilons({0.0, 0.1})
                             .attacks({attack_spec::fgsm(), attack_spec::pgd(3)})
                             .corruptions({corruption::contrast, corruption::gaussian_noise})
                             .image_size(8, 8)
                             .batch_size(32)  // 4 batches, the last of 4 samples
                             .seed(5);
    const auto quiet = evaluate_robustness(model, data, options, "linear");

    for (std::size_t threads : {1, 3}) {
        CAPTURE(threads);
        std::vector<evaluation_progress> seen;
        // every_seconds 0: a report after every forward pass's work (clean 1, FGSM 2, PGD-3 4,
        // 2 corruptions x 5 severities), from one thread at a time.
        const auto watched = evaluate_robustness(
            model, data,
            evaluation_options(options).threads(threads).on_progress(
                [&](const evaluation_progress& p) { seen.push_back(p); }, 0.0),
            "linear");
        CHECK(identical(watched, quiet));
        // Per batch: 1 clean + 1 FGSM + 1 PGD (epsilon 0 is no work) + 10 corruption reports
        // + 1 at the batch's end = 14. Once all work is done (the last corruption of the batch
        // that finishes last) nothing more is reported until finish() reports fraction 1: on one
        // thread that skips that corruption and its batch's end; on three, up to 3 more ends of
        // batches that were still finishing.
        if (threads == 1) {
            REQUIRE(seen.size() == 4 * 14 - 2 + 1);
        } else {
            REQUIRE(seen.size() >= 4 * 14 - 5 + 1);
            REQUIRE(seen.size() <= 4 * 14 - 2 + 1);
        }
        for (std::size_t i = 0; i < seen.size(); ++i) {
            CAPTURE(i);
            CHECK(seen[i].model == "linear");
            CHECK(seen[i].batches == 4);
            CHECK(seen[i].samples == 100);
            CHECK(seen[i].fraction > 0);
            CHECK(seen[i].seconds_left >= 0);
            if (i > 0) {
                CHECK(seen[i].fraction >= seen[i - 1].fraction);
                CHECK(seen[i].batches_done >= seen[i - 1].batches_done);
                CHECK(seen[i].seconds >= seen[i - 1].seconds);
            }
            if (i + 1 < seen.size()) CHECK(seen[i].fraction < 1);
        }
        CHECK(seen.back().fraction == 1);
        CHECK(seen.back().batches_done == 4);
        CHECK(seen.back().seconds_left == 0);
    }

    // An exception from the callback ends the evaluation with that exception.
    CHECK_THROWS_WITH_AS(
        evaluate_robustness(model, data,
                            evaluation_options(options).on_progress(
                                [](const evaluation_progress&) { throw std::runtime_error("stop"); }, 0.0),
                            "linear"),
        "stop", std::runtime_error);
    // The printer writes one line per report.
    std::ostringstream lines;
    evaluate_robustness(model, data, evaluation_options(options).on_progress(progress_printer(lines), 0.0),
                        "linear");
    const std::string text = lines.str();
    CHECK(text.rfind("advaug: evaluating linear: ", 0) == 0);
    CHECK(text.find("samples/s, ") != std::string::npos);
    CHECK(text.find("\nadvaug: evaluated linear: 100 samples in ") != std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\n') == 55);
}

TEST_CASE("evaluate_robustness: [1, H, W] images give the numbers of flat rows") {
    const auto flat = striped_images(90);
    linear_model<float> model(64, 3, 4);
    train_linear(model, flat, 40, 1.0f);
    const dataset<std::uint8_t> images(
        std::vector<std::uint8_t>(flat.features().begin(), flat.features().end()), {1, 8, 8},
        flat.labels(), 3, 1.0 / 255.0);
    image_model wrapped{model};
    const auto options = evaluation_options{}
                             .epsilons({0.0, 0.1})
                             .attacks({attack_spec::pgd(3)})
                             .corruptions({corruption::shot_noise, corruption::translate})
                             .batch_size(40)
                             .threads(2);
    // The image size comes from the sample shape.
    const auto a = evaluate_robustness(wrapped, images, options, "m");
    const auto b =
        evaluate_robustness(model, flat, evaluation_options(options).image_size(8, 8), "m");
    CHECK(identical(a, b));
    CHECK(a.corruptions[1].accuracy[4] < a.clean_accuracy);
    CHECK_THROWS_WITH_AS(
        evaluate_robustness(wrapped, images, evaluation_options(options).image_size(4, 16), "m"),
        "evaluate_robustness(): corruptions need samples of shape [64] or [1, 4, 16] for "
        "image_size 4 x 16, got samples of shape [1, 8, 8]",
        std::invalid_argument);
}

TEST_CASE("evaluate_robustness: normalized inputs are corrupted in raw pixel units") {
    // The same pixels seen through a normalization (v - 0.5) / 0.25 by a model that undoes it
    // in its first layer: every number must match the unnormalized run.
    const auto raw = striped_images(60);
    linear_model<float> model(64, 3, 4);
    train_linear(model, raw, 40, 1.0f);
    const dataset<std::uint8_t> normalized(
        std::vector<std::uint8_t>(raw.features().begin(), raw.features().end()), raw.sample_shape(),
        raw.labels(), 3, 4.0 / 255.0, -2.0);
    linear_model<float> undo = model;  // logits = W (0.25 z + 0.5) + b
    for (std::size_t k = 0; k < 3; ++k) {
        float shift = 0;
        for (std::size_t d = 0; d < 64; ++d) {
            shift += 0.5f * model.w(k, d);
            undo.w(k, d) = 0.25f * model.w(k, d);
        }
        undo.b(k) += shift;
    }
    const auto options = evaluation_options{}
                             .corruptions({corruption::contrast, corruption::brightness})
                             .image_size(8, 8)
                             .batch_size(20);
    const auto a = evaluate_robustness(model, raw, options, "m");
    const auto b = evaluate_robustness(
        undo, normalized,
        evaluation_options(options).domain(input_domain{}.normalization(0.5, 0.25)), "m");
    CHECK(b.clean_accuracy == doctest::Approx(a.clean_accuracy).epsilon(0.04));
    for (std::size_t c = 0; c < 2; ++c) {
        CAPTURE(a.corruptions[c].name);
        for (std::size_t s = 0; s < 5; ++s) {
            CHECK(b.corruptions[c].accuracy[s] ==
                  doctest::Approx(a.corruptions[c].accuracy[s]).epsilon(0.04));
        }
    }
    CHECK(a.corruptions[1].accuracy[4] < a.clean_accuracy);  // brightness +0.5 hurts
}

TEST_CASE("set_absolute_mce and the covered / not-covered means: hand-computed") {
    model_evaluation base, model;
    base.model = "plain";
    model.model = "robust";
    base.clean_accuracy = 0.9;
    model.clean_accuracy = 0.95;
    // a: model errors sum 0.1+0.15+0.2+0.25+0.3 = 1.0, baseline 0.2+...+0.6 = 2.0 -> 0.5
    // b: model 5 * 0.05 = 0.25, baseline 5 * 0.15 = 0.75 -> 1/3
    // c: the baseline makes no error: left out
    base.corruptions = {corruption_of("a", {0.8, 0.7, 0.6, 0.5, 0.4}),
                        corruption_of("b", {0.85, 0.85, 0.85, 0.85, 0.85}),
                        corruption_of("c", {1, 1, 1, 1, 1})};
    model.corruptions = {corruption_of("c", {0.5, 0.5, 0.5, 0.5, 0.5}),
                         corruption_of("a", {0.9, 0.85, 0.8, 0.75, 0.7}),
                         corruption_of("b", {0.95, 0.95, 0.95, 0.95, 0.95})};
    set_absolute_mce(model, base);
    CHECK(model.absolute_mce == doctest::Approx((0.5 + 1.0 / 3) / 2));
    set_absolute_mce(base, base);
    CHECK(base.absolute_mce == doctest::Approx(1.0));
    model_evaluation renamed = model;
    renamed.corruptions[1].name = "z";
    renamed.absolute_mce = 7;
    CHECK_THROWS_WITH_AS(set_absolute_mce(renamed, base),
                         "set_absolute_mce(): corruption 'z' of model 'robust' is missing from baseline 'plain'",
                         std::invalid_argument);
    CHECK(renamed.absolute_mce == 7);  // unchanged after an error

    // Covered and not covered split the severities' mean by name.
    CHECK(std::isnan(mean_corruption_accuracy(model, true)));
    CHECK(mean_corruption_accuracy(model, false) == doctest::Approx((2.5 + 4.0 + 4.75) / 15));
    model.covered_corruptions = {"a", "b"};
    CHECK(mean_corruption_accuracy(model, true) == doctest::Approx((4.0 + 4.75) / 10));
    CHECK(mean_corruption_accuracy(model, false) == doctest::Approx(0.5));

    // The table of docs/shift_robustness.md.
    CHECK(covered_corruption_names({"affine", "photometric", "linf_ball"}) ==
          std::vector<std::string>{"shot_noise", "shear", "scale", "rotate", "brightness", "translate",
                                   "gaussian_noise", "contrast"});
    CHECK(covered_corruption_names({"displacement_field"}).empty());
    // named parts (a mixture's operations), alone and with families
    CHECK(covered_corruption_names({}, {natural_family::rotation, natural_family::gamma, natural_family::blur,
                                        natural_family::displacement}) ==
          std::vector<std::string>{"motion_blur", "rotate"});
    CHECK(covered_corruption_names({"linf_ball"}, {natural_family::translation, natural_family::contrast}) ==
          std::vector<std::string>{"shot_noise", "translate", "gaussian_noise", "contrast"});
    CHECK_THROWS_WITH_AS(corruptions_covered_by("rotation"),
                         "corruptions_covered_by(): unknown training family 'rotation'; known: photometric, "
                         "affine, displacement_field, gaussian_blur, linf_ball, l2_ball",
                         std::invalid_argument);
}

TEST_CASE("set_relative_mce: hand-computed, against itself, and mismatches") {
    model_evaluation base, model;
    base.model = "plain";
    model.model = "robust";
    base.clean_accuracy = 0.9;    // E_clean = 0.1
    model.clean_accuracy = 0.95;  // E_clean = 0.05
    // a: model sum_s (E - 0.05) = 1.0 - 0.25 = 0.75; baseline 2.0 - 0.5 = 1.5 -> 0.5
    // b: model loses nothing -> 0; baseline 5 * (0.15 - 0.1) = 0.25 -> 0
    // c: the baseline loses nothing: undefined, left out of the mean
    base.corruptions = {corruption_of("a", {0.8, 0.7, 0.6, 0.5, 0.4}),
                        corruption_of("b", {0.85, 0.85, 0.85, 0.85, 0.85}),
                        corruption_of("c", {0.9, 0.9, 0.9, 0.9, 0.9})};
    model.corruptions = {corruption_of("c", {0.5, 0.5, 0.5, 0.5, 0.5}),
                         corruption_of("a", {0.9, 0.85, 0.8, 0.75, 0.7}),
                         corruption_of("b", {0.95, 0.95, 0.95, 0.95, 0.95})};
    set_relative_mce(model, base);
    CHECK(model.relative_mce == doctest::Approx((0.5 + 0.0) / 2));

    set_relative_mce(base, base);
    CHECK(base.relative_mce == doctest::Approx(1.0));  // c is left out: 0 / 0

    model_evaluation flat = base;  // every denominator is 0
    for (auto& c : flat.corruptions) c = corruption_of(c.name, std::vector<double>(5, 0.9));
    set_relative_mce(flat, flat);
    CHECK(std::isnan(flat.relative_mce));

    model_evaluation renamed = model;
    renamed.corruptions[1].name = "z";
    renamed.relative_mce = 7;
    CHECK_THROWS_WITH_AS(
        set_relative_mce(renamed, base),
        "set_relative_mce(): corruption 'z' of model 'robust' is missing from baseline 'plain'",
        std::invalid_argument);
    CHECK(renamed.relative_mce == 7);
    model_evaluation shorter = model;
    shorter.corruptions.pop_back();
    CHECK_THROWS_WITH_AS(
        set_relative_mce(shorter, base),
        "set_relative_mce(): model 'robust' has 2 corruptions but baseline 'plain' has 3",
        std::invalid_argument);
    model_evaluation fewer = model;
    fewer.corruptions[0].accuracy.pop_back();
    CHECK_THROWS_WITH_AS(
        set_relative_mce(fewer, base),
        "set_relative_mce(): corruption 'c' has 4 severities in model 'robust' and 5 "
        "in baseline 'plain'; need the same number, >= 1",
        std::invalid_argument);
    model_evaluation none;
    none.model = "x";
    CHECK_THROWS_WITH_AS(set_relative_mce(none, base),
                         "set_relative_mce(): model 'x' has no corruption results",
                         std::invalid_argument);
}

TEST_CASE("evaluate_robustness: an MLP trained on Fashion-MNIST") {
    namespace fs = std::filesystem;
    const auto installed = fashion_mnist_test_set();
    if (!installed) {
        advaug::testing::skip(fashion_mnist_skip_message());
        return;
    }
    const fs::path dir = *installed;
    const auto all = dataset<std::uint8_t>::from_images(
        read_idx_images((dir / "t10k-images-idx3-ubyte.gz").string()),
        read_idx_labels((dir / "t10k-labels-idx1-ubyte.gz").string()), 10, false);
    std::vector<std::size_t> train_idx(2000), test_idx(300);
    std::iota(train_idx.begin(), train_idx.end(), 0);
    std::iota(test_idx.begin(), test_idx.end(), 5000);
    const auto train = all.subset(train_idx), test = all.subset(test_idx);

    // Plain SGD, batches of 100, 10 epochs.
    mlp<float> model({784, 32, 10}, 1);
    model.set_mode(mode::train);
    {
        mlp<float>::cache_type cache;
        tensor<float, 2> x, logits, g;
        label_vector y;
        std::vector<std::size_t> idx(100);
        for (int epoch = 0; epoch < 10; ++epoch) {
            for (std::size_t first = 0; first < train.size(); first += 100) {
                std::iota(idx.begin(), idx.end(), first);
                train.batch(std::span<const std::size_t>(idx), x, y);
                model.zero_grad();
                model.forward(x, cache, logits);
                cross_entropy_gradient(logits, y, g);
                model.parameter_gradient(cache, g);
                for (auto& p : model.parameters()) {
                    for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= 0.2f * p.grad[i];
                }
            }
        }
    }
    const auto before = testing::snapshot(model);

    const auto options =
        evaluation_options{}
            .epsilons({0.0, 0.01, 0.03, 0.1})
            .attacks({attack_spec::fgsm(), attack_spec::pgd(10)})
            .corruptions({corruption::gaussian_noise, corruption::impulse_noise,
                          corruption::contrast, corruption::fog, corruption::rotate})
            .image_size(28, 28)
            .batch_size(100)
            .seed(1);
    const auto r = evaluate_robustness(model, test, options, "mlp");
    CHECK(model.mode() == mode::train);
    CHECK(testing::snapshot(model) == before);

    const double n = static_cast<double>(test.size());
    CHECK(r.samples == 300);
    CHECK(r.clean_accuracy > 0.6);
    CHECK(r.clean_accuracy == accuracy(model, test, 64));
    check_consistent(r, test.labels());
    REQUIRE(r.curves.size() == 2);
    const auto& fgsm_curve = r.curves[0];
    const auto& pgd_curve = r.curves[1];
    CHECK(pgd_curve.attack == "pgd-10");
    for (std::size_t e = 0; e < 4; ++e) {
        CAPTURE(e);
        if (e > 0) CHECK(pgd_curve.accuracy[e] <= pgd_curve.accuracy[e - 1] + 2 / n);
        CHECK(pgd_curve.accuracy[e] <= fgsm_curve.accuracy[e] + 2 / n);  // PGD is the stronger
    }
    CHECK(fgsm_curve.accuracy[0] == r.clean_accuracy);
    CHECK(pgd_curve.accuracy[0] == r.clean_accuracy);
    CHECK(pgd_curve.accuracy[3] < 0.25);

    double mild = 0, severe = 0;
    for (const auto& c : r.corruptions) {
        mild += c.accuracy[0];
        severe += c.accuracy[4];
    }
    CHECK(severe < mild);
    CHECK(r.mean_corruption_accuracy < r.clean_accuracy);

    auto self = r;
    set_relative_mce(self, r);
    for (const auto& c : r.corruptions) {
        double den = 0;
        for (double a : c.accuracy) den += (1 - a) - (1 - r.clean_accuracy);
        REQUIRE(den != 0);
    }
    CHECK(self.relative_mce == doctest::Approx(1.0));

    // OpenBLAS inside each thread: the same numbers on two threads (attacks only, to be quick).
    const auto quick = evaluation_options(options).corruptions({}).batch_size(50);
    const auto base = evaluate_robustness(model, test, quick, "mlp");
    CHECK(identical(evaluate_robustness(model, test, evaluation_options(quick).threads(2), "mlp"),
                    base));

    // AutoAttack as an attack of the evaluation: its curve starts at the clean accuracy, is
    // no higher than PGD-10's (it contains a stronger APGD, and more), says which member broke
    // each sample, and is the same for one and two threads.
    std::vector<std::size_t> first(100);
    std::iota(first.begin(), first.end(), 0);
    const auto hundred = test.subset(first);
    const auto with_aa = evaluation_options{}
                             .epsilons({0.0, 0.03})
                             .attacks({attack_spec::pgd(10), attack_spec::autoattack()})
                             .image_size(28, 28)
                             .batch_size(50)
                             .seed(2);
    const auto aa = evaluate_robustness(model, hundred, with_aa, "mlp");
    check_consistent(aa, hundred.labels());
    REQUIRE(aa.curves.size() == 2);
    const auto& aa_curve = aa.curves[1];
    CHECK(aa_curve.attack == "autoattack");
    CHECK(aa_curve.members == std::vector<std::string>{"apgd-ce", "apgd-t", "fab-t", "square"});
    CHECK(aa_curve.accuracy[0] == aa.clean_accuracy);
    CHECK(aa_curve.accuracy[1] <= aa.curves[0].accuracy[1] + 2.0 / 100);
    CHECK(aa_curve.accuracy[1] < aa.clean_accuracy);
    CHECK(aa_curve.broken_by[1][0] > 0);  // APGD-CE breaks most
    CHECK(identical(evaluate_robustness(model, hundred, evaluation_options(with_aa).threads(2), "mlp"), aa));

    // AutoAttack on the first 50 of 150 samples (attack_spec::samples): a batch boundary, so
    // the same batches with the same seeds as an evaluation of those 50 alone, bit for bit.
    std::vector<std::size_t> first150(150);
    std::iota(first150.begin(), first150.end(), 0);
    const auto fifty = hundred.subset(std::vector<std::size_t>(first.begin(), first.begin() + 50));
    const auto aa50 = evaluate_robustness(
        model, test.subset(first150),
        evaluation_options(with_aa).attacks({attack_spec::autoattack().samples(50)}), "mlp");
    const auto alone = evaluate_robustness(
        model, fifty, evaluation_options(with_aa).attacks({attack_spec::autoattack()}), "mlp");
    REQUIRE(aa50.curves.size() == 1);
    CHECK(aa50.samples == 150);
    CHECK(aa50.curves[0].samples == 50);
    CHECK(same_bits(aa50.curves[0].accuracy, alone.curves[0].accuracy));
    CHECK(same_bits(aa50.curves[0].broken_by[1], alone.curves[0].broken_by[1]));
    CHECK(same_bits(aa50.curves[0].per_class_accuracy[1], alone.curves[0].per_class_accuracy[1]));
}

}  // namespace test_robustness
