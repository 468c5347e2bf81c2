#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_mode {

using namespace advaug;

TEST_CASE("mode_guard sets a mode and restores the previous one, also on exceptions") {
    mlp<float> net({3, 4, 2}, 0);
    net.set_mode(mode::train);
    {
        mode_guard guard(net, mode::eval);
        CHECK(net.mode() == mode::eval);
    }
    CHECK(net.mode() == mode::train);
    try {
        mode_guard guard(net, mode::eval);
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK(net.mode() == mode::train);
}

namespace {

/// linear_model that records the mode it was in at its last forward pass.
struct mode_recorder : testing::linear_model<double> {
    mode_recorder() : linear_model(3, 2, 7) {}
    void forward(const tensor<double, 2>& x, cache_type& c, tensor<double, 2>& logits) const {
        seen = m;
        linear_model::forward(x, c, logits);
    }
    mutable advaug::mode seen = advaug::mode::train;
};

/// Calls each attack the same way: `call(attack)` with attack one of fgsm, fgm, pgd, bim.
template <class Model, class Options>
auto attack_with(const char* name, Model& model, const tensor<double, 2>& x, const label_vector& y,
                 Options options) {
    const std::string n = name;
    if constexpr (std::is_same_v<Options, pgd_options>) {
        return n == "pgd" ? pgd(model, x, y, options) : bim(model, x, y, options);
    } else if constexpr (std::is_same_v<Options, fgsm_options>) {
        return fgsm(model, x, y, options);
    } else {
        return fgm(model, x, y, options);
    }
}

template <class Options>
void check_attack_modes(const char* name, Options options) {
    CAPTURE(name);
    const auto x = testing::uniform_batch<double>(4, 3, 1);
    const auto y = testing::cyclic_labels(4, 2);

    // A non-const model in train mode is attacked in eval mode and left in train mode.
    mode_recorder model;
    model.set_mode(mode::train);
    attack_with(name, model, x, y, options);
    CHECK(model.seen == mode::eval);
    CHECK(model.mode() == mode::train);

    // attack_mode(train) opts out: the attack runs in train mode, and the mode stays.
    model.seen = mode::eval;
    attack_with(name, model, x, y, Options(options).attack_mode(mode::train));
    CHECK(model.seen == mode::train);
    CHECK(model.mode() == mode::train);
    model.set_mode(mode::eval);
    attack_with(name, model, x, y, Options(options).attack_mode(mode::train));
    CHECK(model.seen == mode::train);
    CHECK(model.mode() == mode::eval);

    // The mode is restored when the attack throws (one label too few).
    model.set_mode(mode::train);
    const label_vector short_y = testing::cyclic_labels(3, 2);
    CHECK_THROWS_AS(attack_with(name, model, x, short_y, options), std::invalid_argument);
    CHECK(model.mode() == mode::train);

    // A const model cannot be switched: in another mode it is refused, never attacked silently.
    const mode_recorder& frozen = model;
    model.seen = mode::eval;
    CHECK_THROWS_WITH_AS(attack_with(name, frozen, x, y, options),
                         doctest::Contains("the model is in train mode, but the options attack it in eval mode"),
                         std::invalid_argument);
    CHECK(model.seen == mode::eval);  // no forward pass ran
    attack_with(name, frozen, x, y, Options(options).attack_mode(mode::train));
    CHECK(model.seen == mode::train);
    model.set_mode(mode::eval);
    attack_with(name, frozen, x, y, options);
    CHECK(model.seen == mode::eval);
}

}  // namespace

TEST_CASE("attacks run in attack_mode(): a non-const model is switched and restored, a const one is checked") {
    check_attack_modes("fgsm", fgsm_options{}.epsilon(0.1));
    check_attack_modes("fgm", fgm_options{}.epsilon(0.1));
    check_attack_modes("pgd", pgd_options{}.epsilon(0.1).steps(2));
    check_attack_modes("bim", pgd_options{}.epsilon(0.1).steps(2));
}

TEST_CASE("an attack on a model with dropout in train mode gives the eval-mode result") {
    advaug::rng gen(3);
    auto net = sequential<float, 2>({4}).add(dense<float>(4, 8, gen)).add(dropout<float, 2>(0.5, 1))
                   .add(dense<float>(8, 3, gen));
    const auto x = testing::uniform_batch<float>(6, 4, 2);
    const auto y = testing::cyclic_labels(6, 3);
    const auto options = pgd_options{}.epsilon(0.1).steps(3).seed(5);

    net.set_mode(mode::eval);
    const auto in_eval = pgd(net, x, y, options);
    net.set_mode(mode::train);  // as the bundled models start
    const auto from_train = pgd(net, x, y, options);
    CHECK(net.mode() == mode::train);
    CHECK(from_train == in_eval);
    // In train mode, dropout changes the gradient and so the example.
    const auto in_train = pgd(net, x, y, pgd_options(options).attack_mode(mode::train));
    CHECK_FALSE(in_train == in_eval);
}

}  // namespace test_mode
