// Training on a perturbation family (training_method::family, training/family_step.hpp).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_family_step {

using namespace advaug;
namespace fs = std::filesystem;

namespace {

constexpr image_shape small_image{1, 4, 4};

template <class T>
affine<T> small_affine() {
    return affine<T>(small_image, affine_budget{.rotation = symmetric(20),
                                                .scale_x = symmetric(0.1),
                                                .translate_x = symmetric(1),
                                                .translate_y = symmetric(1)});
}

template <class T>
chain<linf_ball<T>, affine<T>> linf_then_affine() {
    return chain<linf_ball<T>, affine<T>>(linf_ball<T>(small_image, 0.05), small_affine<T>());
}

train_options quiet() {
    static std::ostringstream sink;
    return train_options{}
        .method(training_method::family)
        .learning_rate(lr_schedule::constant(0.1))
        .batch_size(16)
        .seed(3)
        .progress(progress_style::none)
        .output(sink);
}

// CE of the trained objective with x_adv held fixed.
template <class M>
double objective(M& net, const tensor<double, 2>& x, const tensor<double, 2>& x_adv,
                 const label_vector& y, double alpha) {
    typename M::cache_type c;
    tensor<double, 2> logits;
    net.forward(x, c, logits);
    double loss = (1 - alpha) * cross_entropy(logits, y);
    net.forward(x_adv, c, logits);
    return loss + alpha * cross_entropy(logits, y);
}

// Images of 4 x 4 pixels, class k brighter in its own quadrant.
dataset<float> quadrant_images(std::size_t n, std::uint64_t seed) {
    rng gen(seed);
    std::vector<float> x(n * 16);
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = i % 3;
        y(i) = static_cast<std::int64_t>(k);
        for (std::size_t p = 0; p < 16; ++p) {
            const bool lit = (p / 8 == k / 2) && ((p % 4) / 2 == k % 2);
            x[i * 16 + p] =
                std::clamp(static_cast<float>((lit ? 0.7 : 0.3) + 0.1 * gen.normal()), 0.0f, 1.0f);
        }
    }
    return dataset<float>(std::move(x), {16}, std::move(y), 3);
}

std::vector<std::vector<float>> weights(mlp<float>& net) {
    std::vector<std::vector<float>> out;
    for (auto& p : net.parameters()) out.emplace_back(p.value.begin(), p.value.end());
    return out;
}

}  // namespace

TEST_CASE(
    "the family method's parameter gradient is (1 - alpha) grad CE(x) + alpha grad CE(x_adv)") {
    const auto x = testing::uniform_batch<double>(16, 16, 1, 0.2, 0.8);
    const auto y = testing::cyclic_labels(16, 3);
    struct setting {
        const char* name;
        train_options options;
        double fraction;
    };
    const auto identity_start = worst_case_options{}.steps(1).random_start(false);
    const setting settings[] = {
        {"affine, one step from the identity (the clean pass shared)",
         quiet().family(small_affine<double>(), identity_start), 1.0},
        {"affine, 3 steps from a random start, alpha 1",
         quiet().family(small_affine<double>(), worst_case_options{}.steps(3)).alpha(1), 1.0},
        {"affine, worst of 4 draws, alpha 0.3",
         quiet()
             .family(small_affine<double>(),
                     worst_case_options{}.method(search_method::random).samples(4))
             .alpha(0.3),
         1.0},
        {"photometric, both, at half the budget",
         quiet().family(
             photometric<double>(
                 small_image, photometric_budget{symmetric(0.1), symmetric(0.2), symmetric(0.3)}),
             worst_case_options{}.method(search_method::both).samples(2).steps(2)),
         0.5},
        {"L-inf ball then affine, 2 restarts, attack in train mode",
         quiet()
             .family(linf_then_affine<double>(), worst_case_options{}.steps(2).restarts(2))
             .attack_mode(mode::train),
         1.0},
    };
    for (const auto& s : settings) {
        CAPTURE(s.name);
        mlp<double> net({16, 10, 3}, 5);
        sgd<double> opt;
        trainer tr(net, opt, s.options);
        net.set_mode(mode::train);
        const auto losses = tr.compute_gradient(x, y, s.fraction, 77);
        const tensor<double, 2> x_adv = tr.adversarial_batch();
        CHECK(testing::max_abs_diff(x_adv, x) > 0.01);
        const double alpha = s.options.alpha();
        CHECK(losses.loss == doctest::Approx(objective(net, x, x_adv, y, alpha)).epsilon(1e-12));
        auto params = net.parameters();
        const auto r = detail::compare_parameters(
            params, [&] { return objective(net, x, x_adv, y, alpha); }, gradient_check_options{});
        CHECK(r.checked == 16 * 10 + 10 + 10 * 3 + 3);
        CHECK(r.relative_error < 1e-6);
    }
}

TEST_CASE(
    "a model with a fused backward pass takes the clean half from the search's first pass, "
    "exactly") {
    const auto x = testing::uniform_batch<double>(16, 16, 2, 0.2, 0.8);
    const auto y = testing::cyclic_labels(16, 3);
    rng gen(4);
    auto net = sequential<double, 2>({16})
                   .add(dense<double>(16, 8, gen))
                   .add(relu<double, 2>{})
                   .add(dense<double>(8, 3, gen));
    static_assert(detail::combined_backward<decltype(net)>);
    sgd<double> opt;
    trainer tr(
        net, opt,
        quiet()
            .family(small_affine<double>(), worst_case_options{}.steps(2).random_start(false))
            .alpha(0.25));
    tr.compute_gradient(x, y, 1.0, 9);
    const tensor<double, 2> x_adv = tr.adversarial_batch();
    auto params = net.parameters();
    const auto r = detail::compare_parameters(
        params, [&] { return objective(net, x, x_adv, y, 0.25); }, gradient_check_options{});
    CHECK(r.relative_error < 1e-6);
}

TEST_CASE("one clean forward pass serves the clean loss and the search's first gradient") {
    struct counting : mlp<double> {
        using mlp<double>::mlp;
        mutable int forwards = 0;
        void forward(const tensor<double, 2>& x, cache_type& c, tensor<double, 2>& l) const {
            ++forwards;
            mlp<double>::forward(x, c, l);
        }
    };
    const auto x = testing::uniform_batch<double>(16, 16, 3, 0.2, 0.8);
    const auto y = testing::cyclic_labels(16, 3);
    auto forwards = [&](bool random_start, advaug::mode attack_mode) {
        counting net({16, 6, 3}, 1);
        net.set_mode(mode::train);
        sgd<double> opt;
        trainer tr(net, opt,
                   quiet()
                       .family(small_affine<double>(),
                               worst_case_options{}.steps(1).random_start(random_start))
                       .attack_mode(attack_mode));
        const auto losses = tr.compute_gradient(x, y, 1.0, 5);
        CHECK(std::isfinite(losses.clean));
        return net.forwards;
    };
    // the step at the start, the search's look at its end, the adversarial half; plus the
    // clean half where the start is not x itself
    CHECK(forwards(false, mode::train) == 3);
    CHECK(forwards(true, mode::train) == 4);
    // an mlp without dropout is the same in both modes, so eval mode shares the pass too
    CHECK(forwards(false, mode::eval) == 3);
}

TEST_CASE(
    "the trainer's adversarial batch is worst_case()'s, with the batch's seed mixed into the "
    "search's") {
    const auto x = testing::uniform_batch<double>(16, 16, 4, 0.2, 0.8);
    const auto y = testing::cyclic_labels(16, 3);
    for (const auto& search :
         {worst_case_options{}.steps(3).seed(8), worst_case_options{}.steps(1).random_start(false),
          worst_case_options{}.method(search_method::both).samples(3).steps(2)}) {
        mlp<double> net({16, 10, 3}, 6);
        net.set_mode(mode::eval);
        sgd<double> opt;
        trainer tr(net, opt, quiet().family(small_affine<double>(), search));
        tr.compute_gradient(x, y, 1.0, 1234);
        const auto expected =
            worst_case(net, small_affine<double>(), x, y,
                       worst_case_options(search).seed(detail::mix_seed(1234, search.seed())));
        CHECK(tr.adversarial_batch() == expected.perturbed);
    }
}

TEST_CASE(
    "gradient-free and discrete families: the adversarial batch is worst_case()'s and the "
    "parameter gradient is exact") {
    const auto x = testing::uniform_batch<double>(16, 6, 11, 0.2, 0.8);
    const auto y = testing::cyclic_labels(16, 3);
    const auto quantized = quantize<double>(6, {{0.1, 0.4}});
    const auto dropped = dropped_sensors<double>(6, 2, {0.0});
    struct setting {
        const char* name;
        any_family<double> family;
        worst_case_options search;
        std::size_t changed;  // at least this many rows moved by the worst case
    };
    const setting settings[] = {
        {"quantize, worst of 5 draws", quantized,
         worst_case_options{}.method(search_method::random).samples(5), 8},
        {"dropped sensors, greedy by the relaxed gradient", dropped, worst_case_options{}, 16},
        {"dropped sensors, random masks then greedy", dropped,
         worst_case_options{}.method(search_method::both).samples(3), 16},
        {"dropped sensors, every mask", dropped,
         worst_case_options{}.method(search_method::exhaustive), 16},
    };
    for (const auto& s : settings) {
        CAPTURE(s.name);
        mlp<double> net({6, 8, 3}, 12);
        net.set_mode(mode::eval);
        sgd<double> opt;
        trainer tr(net, opt, quiet().family(s.family, s.search).alpha(0.4));
        const auto losses = tr.compute_gradient(x, y, 1.0, 321);
        const tensor<double, 2> x_adv = tr.adversarial_batch();
        const auto expected =
            worst_case(net, s.family, x, y,
                       worst_case_options(s.search).seed(detail::mix_seed(321, s.search.seed())));
        CHECK(x_adv == expected.perturbed);
        std::size_t moved = 0;
        for (std::size_t i = 0; i < 16; ++i) {
            bool row_moved = false;
            for (std::size_t j = 0; j < 6; ++j) row_moved = row_moved || x_adv(i, j) != x(i, j);
            moved += row_moved ? 1 : 0;
        }
        CHECK(moved >= s.changed);
        CHECK(losses.loss == doctest::Approx(objective(net, x, x_adv, y, 0.4)).epsilon(1e-12));
        auto params = net.parameters();
        const auto r = detail::compare_parameters(
            params, [&] { return objective(net, x, x_adv, y, 0.4); }, gradient_check_options{});
        CHECK(r.checked == 6 * 8 + 8 + 8 * 3 + 3);
        CHECK(r.relative_error < 1e-6);
    }
}

TEST_CASE("a gradient-free or discrete family refuses the searches and warm-up it cannot take") {
    mlp<double> net({6, 3}, 0);
    sgd<double> opt;
    for (auto m : {search_method::gradient, search_method::both}) {
        const std::string expected = "train_options::family(): search method " +
                                     std::string(to_string(m)) +
                                     " needs gradients, and the family is gradient-free";
        CHECK_THROWS_WITH_AS(
            quiet().family(quantize<double>(6, {{0.1, 0.4}}), worst_case_options{}.method(m)),
            doctest::Contains(expected.c_str()), std::invalid_argument);
    }
    CHECK_THROWS_WITH_AS(
        trainer(net, opt, quiet().family(dropped_sensors<double>(6, 1)).epsilon_warmup(1)),
        doctest::Contains("trainer(): epsilon_warmup is set but the family is discrete"),
        std::invalid_argument);
    // a gradient-free family's box scales like any other
    CHECK_NOTHROW(trainer(net, opt,
                          quiet()
                              .family(quantize<double>(6, {{0.1, 0.4}}),
                                      worst_case_options{}.method(search_method::random))
                              .epsilon_warmup(1)));
}

TEST_CASE("training on dropped sensors makes a model robust to the worst dropped sensor") {
    // Four features, each a noisy copy of the class (0.3 or 0.7); a dead sensor reads 0. A
    // model trained plainly leans on the cleanest sensors, and the worst single dead sensor
    // costs it accuracy; trained on that worst case it must keep its accuracy.
    rng gen(21);
    const std::size_t n = 400;
    std::vector<float> values(n * 4);
    auto labels = label_vector::from_shape({n});
    const double noise[] = {0.05, 0.08, 0.15, 0.15};
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = i % 2;
        labels(i) = static_cast<std::int64_t>(k);
        for (std::size_t j = 0; j < 4; ++j) {
            const double v = (k ? 0.7 : 0.3) + noise[j] * gen.normal();
            values[i * 4 + j] = std::clamp(static_cast<float>(v), 0.05f, 1.0f);
        }
    }
    const dataset<float> data(std::move(values), {4}, std::move(labels), 2);
    const auto family = dropped_sensors<float>(4, 1, {0.0});
    const auto search = worst_case_options{}.method(search_method::exhaustive);
    // Not a structured binding: clang before 16 cannot capture one in a lambda.
    const auto batch = data.slice<float, 2>(0, n);
    const auto& x = batch.first;
    const auto& y = batch.second;
    const auto robust_accuracy = [&](training_method method) {
        mlp<float> net({4, 8, 2}, 3);
        sgd<float> opt;
        auto options = quiet().method(method).learning_rate(lr_schedule::constant(0.2)).epochs(30);
        if (method == training_method::family) options.family(family, search).alpha(0.5);
        trainer tr(net, opt, options);
        tr.fit(data);
        net.set_mode(mode::eval);
        const auto worst = worst_case(net, family, x, y, search);
        typename mlp<float>::cache_type c;
        tensor<float, 2> logits;
        net.forward(worst.perturbed, c, logits);
        return static_cast<double>(count_correct(logits, y)) / static_cast<double>(n);
    };
    const double plain = robust_accuracy(training_method::plain);
    const double trained = robust_accuracy(training_method::family);
    MESSAGE("accuracy under the worst dead sensor: plain ", plain, ", trained on it ", trained);
    CHECK(trained >= 0.9);
    CHECK(trained > plain + 0.1);
}

TEST_CASE("the budget warm-up scales the family's budget about the identity") {
    const auto x = testing::uniform_batch<double>(16, 16, 5, 0.2, 0.8);
    const auto y = testing::cyclic_labels(16, 3);
    mlp<double> net({16, 10, 3}, 7);
    net.set_mode(mode::eval);
    sgd<double> opt;
    SUBCASE("an L-inf ball of radius eps becomes one of radius s eps") {
        trainer tr(
            net, opt,
            quiet().family(linf_ball<double>(small_image, 0.2), worst_case_options{}.steps(2)));
        for (double s : {0.0, 0.25, 0.5, 1.0}) {
            CAPTURE(s);
            tr.compute_gradient(x, y, s, 3);
            const double moved = testing::max_abs_diff(tr.adversarial_batch(), x);
            CHECK(moved <= 0.2 * s + 1e-12);
            CHECK(moved >= 0.9 * 0.2 * s);  // a sign step of a quarter radius from a random start
        }
    }
    SUBCASE("an affine box [lo, hi] about the identity 0 becomes [s lo, s hi]") {
        const auto search = worst_case_options{}.steps(3);
        trainer tr(net, opt, quiet().family(small_affine<double>(), search));
        tr.compute_gradient(x, y, 0.5, 3);
        const affine<double> half(small_image, affine_budget{.rotation = symmetric(10),
                                                             .scale_x = symmetric(0.05),
                                                             .translate_x = symmetric(0.5),
                                                             .translate_y = symmetric(0.5)});
        const auto expected =
            worst_case(net, half, x, y, worst_case_options(search).seed(detail::mix_seed(3, 0)));
        // the same search, up to the rounding of s (theta' - id) against s lo + u (s hi - s lo)
        CHECK(testing::max_abs_diff(tr.adversarial_batch(), expected.perturbed) < 1e-9);
    }
    SUBCASE("at fraction 0 every sample is left as it is; beyond 1 is refused") {
        trainer tr(net, opt, quiet().family(linf_then_affine<double>()));
        tr.compute_gradient(x, y, 0.0, 3);
        CHECK(tr.adversarial_batch() == x);
        CHECK_THROWS_WITH_AS(
            tr.compute_gradient(x, y, 1.5, 3),
            "trainer::compute_gradient(): method family takes a budget fraction in [0, 1], got 1.5",
            std::invalid_argument);
    }
}

TEST_CASE("fit() ramps the budget fraction from 0 to 1 over the warm-up") {
    const auto data = quadrant_images(64, 1);
    mlp<float> net({16, 8, 3}, 1);
    sgd<float> opt;
    std::vector<batch_report> seen;
    trainer tr(net, opt,
               quiet()
                   .family(small_affine<float>(), worst_case_options{}.steps(1))
                   .epochs(3)
                   .epsilon_warmup(2)
                   .log_every(1)
                   .on_batch([&](const batch_report& r) { seen.push_back(r); }));
    tr.fit(data);
    REQUIRE(seen.size() == 12);
    for (const auto& r : seen) {
        CHECK(r.epsilon ==
              doctest::Approx(std::min(1.0, (static_cast<double>(r.epoch) + r.batch / 4.0) / 2.0)));
    }
}

TEST_CASE("family options are validated, naming the function, the option and the value") {
    mlp<double> net({16, 3}, 0);
    sgd<double> opt;
    CHECK_THROWS_WITH_AS(trainer(net, opt, quiet()),
                         "trainer(): method family needs a family; call .family(...)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        trainer(net, opt,
                quiet().method(training_method::fgsm).epsilon(0.1).family(small_affine<double>())),
        "trainer(): a family is set but the method is fgsm, not family", std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        trainer(net, opt, quiet().family(small_affine<double>()).epsilon(0.1)),
        doctest::Contains(
            "trainer(): epsilon is set (0.1) but method family takes its budget from the family"),
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(trainer(net, opt, quiet().family(small_affine<float>())),
                         "trainer(): the family's value_type is float, the model's is double",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        quiet().family(small_affine<double>(),
                       worst_case_options{}.method(search_method::exhaustive)),
        doctest::Contains(
            "train_options::family(): search method exhaustive needs a discrete family"),
        std::invalid_argument);
    CHECK(parse_training_method("family") == training_method::family);
    CHECK(default_alpha(training_method::family) == 0.5);
    // a family and a model that disagree on the sample size: named at the first batch
    mlp<double> wide({25, 3}, 0);
    trainer tr(wide, opt, quiet().family(small_affine<double>()));
    CHECK_THROWS_WITH_AS(
        tr.compute_gradient(testing::uniform_batch<double>(4, 25, 1), testing::cyclic_labels(4, 3),
                            1.0, 0),
        "trainer::compute_gradient(): the batch has 25 features per sample; the family takes 16",
        std::invalid_argument);
    const auto o = quiet().family(small_affine<double>(), worst_case_options{}.steps(4));
    REQUIRE(o.family());
    CHECK(o.family()->search.steps() == 4);
    CHECK(std::get<any_family<double>>(o.family()->family).target<affine<double>>() != nullptr);
}

TEST_CASE("family training: the same seed gives bitwise identical weights; another seed does not") {
    const auto data = quadrant_images(96, 2);
    auto run = [&](std::uint64_t seed) {
        mlp<float> net({16, 12, 3}, 7);
        sgd<float> opt(sgd_options{}.momentum(0.9));
        trainer tr(net, opt,
                   quiet()
                       .family(linf_then_affine<float>(), worst_case_options{}.steps(2))
                       .epochs(2)
                       .seed(seed));
        tr.fit(data);
        return weights(net);
    };
    const auto a = run(11), b = run(11), c = run(12);
    CHECK(a == b);
    CHECK_FALSE(a == c);
}

TEST_CASE(
    "family training resumed from a checkpoint mid-epoch ends bit-identical, warm-up and guard "
    "included") {
    const auto data = quadrant_images(80, 3);  // 5 batches per epoch
    const auto dir =
        fs::temp_directory_path() / ("advaug_test_family_step_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string checkpoint = (dir / "state.ckpt").string();
    auto options = [&] {
        return quiet()
            .family(small_affine<float>(), worst_case_options{}.steps(2))
            .epochs(3)
            .epsilon_warmup(1.5)
            .collapse_guard(3, 0.5, collapse_action::warn, 32, 2);
    };
    std::vector<std::vector<float>> expected;
    {
        mlp<float> net({16, 12, 3}, 2);
        adam<float> opt;
        trainer tr(net, opt, options());
        tr.fit(data);
        expected = weights(net);
    }
    struct interrupted {};
    {
        mlp<float> net({16, 12, 3}, 2);
        adam<float> opt;
        // checkpoints after batches 2 and 4 of each epoch; stopped during epoch 2, batch 4
        trainer tr(
            net, opt,
            options().checkpoint(checkpoint, 2).log_every(1).on_batch([](const batch_report& r) {
                if (r.epoch == 1 && r.batch == 3) throw interrupted{};
            }));
        CHECK_THROWS_AS(tr.fit(data), interrupted);
    }
    mlp<float> net({16, 12, 3}, 99);  // other initial weights: all must come from the file
    adam<float> opt;
    trainer tr(net, opt, options().checkpoint(checkpoint, 2));
    tr.resume(checkpoint);
    CHECK(tr.next_epoch() == 1);
    CHECK(tr.next_batch() == 2);
    tr.fit(data);
    CHECK(weights(net) == expected);

    // a checkpoint of another family is refused
    trainer other(net, opt,
                  quiet()
                      .family(photometric<float>(small_image,
                                                 photometric_budget{.brightness = symmetric(0.1)}))
                      .epochs(3));
    CHECK_THROWS_WITH_AS(
        other.resume(checkpoint),
        doctest::Contains(
            "was written with method family (6 parameters, 16 features), this trainer "
            "has family (3 parameters, 16 features)"),
        std::invalid_argument);
    fs::remove_all(dir);
}

TEST_CASE("the epoch summary and the collapse guard measure the family's worst case") {
    const auto data = quadrant_images(64, 4);
    const auto validation = quadrant_images(40, 5);
    const auto search = worst_case_options{}.steps(1);
    mlp<float> net({16, 12, 3}, 3);
    sgd<float> opt;
    std::ostringstream log;
    auto o = quiet()
                 .family(small_affine<float>(), search)
                 .epochs(10)
                 .evaluation(40, 3)
                 .collapse_guard(0, 0.5, collapse_action::warn, 24, 2)
                 .progress(progress_style::lines)
                 .output(log);
    trainer tr(net, opt, o);
    const auto result = tr.fit(data, &validation);
    REQUIRE(result.epochs.size() == 10);
    const auto& r = result.epochs.back();

    // what fit() measured, measured again on the trained model
    mode_guard<mlp<float>> eval(net, mode::eval);
    auto worst_case_accuracy = [&](const dataset<float>& d, std::span<const std::size_t> indices,
                                   std::size_t steps) {
        tensor<float, 2> x;
        label_vector y;
        d.batch(indices, x, y);
        const auto adv = worst_case(net, small_affine<float>(), x, y,
                                    worst_case_options(search).steps(steps).seed(3 ^ 0x5eed));
        typename mlp<float>::cache_type c;
        tensor<float, 2> logits;
        net.forward(adv.perturbed, c, logits);
        return static_cast<double>(count_correct(logits, y)) / static_cast<double>(y.size());
    };
    std::vector<std::size_t> first(40);
    for (std::size_t i = 0; i < 40; ++i) first[i] = i;
    CHECK(r.pgd_accuracy == worst_case_accuracy(validation, first, 3));
    auto guard = shuffled_indices(64, detail::mix_seed(3, 0x9a4d));
    guard.resize(24);
    CHECK(r.guard_pgd_accuracy == worst_case_accuracy(data, guard, 2));
    CHECK(r.pgd_accuracy < r.clean_accuracy);  // a budget of 20 degrees does cost accuracy
    CHECK(log.str().find("val worst case") != std::string::npos);
    CHECK(log.str().find("guard worst case") != std::string::npos);
    CHECK(log.str().find("advaug: training family on 64 samples") != std::string::npos);
}

TEST_CASE("the adversarial batch is the search's worst case, as worst_case() finds it, bit for bit") {
    // The batch is taken from the rows each candidate produced, the clean pass's included,
    // instead of applying the family once more: a row taken from another candidate, or from
    // x where it was not the clean pass, changes it.
    const auto x = testing::uniform_batch<double>(16, 16, 2, 0.2, 0.8);
    const auto y = testing::cyclic_labels(16, 3);
    const struct {
        const char* name;
        worst_case_options search;
    } searches[] = {
        {"3 steps from the identity (the first pass is the clean one)", worst_case_options{}.steps(3).random_start(false)},
        {"2 steps from a random start, 2 restarts", worst_case_options{}.steps(2).restarts(2).seed(5)},
        {"worst of 4 draws", worst_case_options{}.method(search_method::random).samples(4)},
        {"both", worst_case_options{}.method(search_method::both).samples(2).steps(2)},
    };
    for (const auto& s : searches) {
        CAPTURE(s.name);
        rng gen(4);
        auto net = sequential<double, 2>({16})
                       .add(dense<double>(16, 8, gen))
                       .add(relu<double, 2>{})
                       .add(dense<double>(8, 3, gen));
        sgd<double> opt;
        trainer tr(net, opt, quiet().family(small_affine<double>(), s.search).alpha(0.5));
        tr.compute_gradient(x, y, 1.0, 9);
        const tensor<double, 2> x_adv = tr.adversarial_batch();
        net.set_mode(mode::eval);  // the attack mode the trainer searched in
        const auto r = worst_case(net, small_affine<double>(), x, y,
                                  worst_case_options(s.search).seed(detail::mix_seed(9, s.search.seed())));
        tensor<double, 2> applied;
        small_affine<double>().apply(x, r.theta, applied);
        REQUIRE(r.perturbed.shape() == x.shape());
        CHECK(std::equal(r.perturbed.begin(), r.perturbed.end(), applied.begin()));
        CHECK(std::equal(x_adv.begin(), x_adv.end(), r.perturbed.begin()));
        CHECK(testing::max_abs_diff(x_adv, x) > 0.01);
    }
}

}  // namespace test_family_step
