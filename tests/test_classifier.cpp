// The model contract as traits: what satisfies it and what each missing member breaks.
#include <doctest/doctest.h>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_classifier {

using namespace advaug;

namespace {

// A complete classifier (not trainable): the minimum an attack needs.
struct minimal {
    using value_type = double;
    static constexpr std::size_t input_rank = 4;
    struct cache_type {};
    std::size_t num_classes() const { return 2; }
    void forward(const tensor<double, 4>&, cache_type&, tensor<double, 2>&) const {}
    void input_gradient(cache_type&, const tensor<double, 2>&, tensor<double, 4>&) const {}
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

struct no_input_gradient {
    using value_type = double;
    static constexpr std::size_t input_rank = 2;
    struct cache_type {};
    std::size_t num_classes() const { return 2; }
    void forward(const tensor<double, 2>&, cache_type&, tensor<double, 2>&) const {}
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

struct no_mode {
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    struct cache_type {};
    std::size_t num_classes() const { return 2; }
    void forward(const tensor<float, 2>&, cache_type&, tensor<float, 2>&) const {}
    void input_gradient(cache_type&, const tensor<float, 2>&, tensor<float, 2>&) const {}
};

struct integer_values {
    using value_type = int;
    static constexpr std::size_t input_rank = 2;
};

struct rank_three {
    using value_type = float;
    static constexpr std::size_t input_rank = 3;
};

// forward must be const: an attack may not change the model.
struct mutating_forward {
    using value_type = double;
    static constexpr std::size_t input_rank = 2;
    struct cache_type {};
    std::size_t num_classes() const { return 2; }
    void forward(const tensor<double, 2>&, cache_type&, tensor<double, 2>&) {}
    void input_gradient(cache_type&, const tensor<double, 2>&, tensor<double, 2>&) const {}
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

}  // namespace

namespace c = advaug::detail::contract;

TEST_CASE("the bundled models and the test model satisfy the contract in float and double") {
    CHECK(trainable_classifier<mlp<float>>);
    CHECK(trainable_classifier<mlp<double>>);
    CHECK(trainable_classifier<testing::linear_model<double>>);
    CHECK(classifier<minimal>);
    CHECK_FALSE(trainable_classifier<minimal>);
    CHECK(check_classifier<minimal>());
    CHECK(check_trainable_classifier<mlp<float>>());
}

TEST_CASE("each missing member is detected on its own") {
    CHECK_FALSE(classifier<no_input_gradient>);
    CHECK(c::has_forward<no_input_gradient>);
    CHECK_FALSE(c::has_input_gradient<no_input_gradient>);

    CHECK_FALSE(classifier<no_mode>);
    CHECK(c::has_input_gradient<no_mode>);
    CHECK_FALSE(c::has_mode<no_mode>);

    CHECK_FALSE(c::has_value_type<integer_values>);
    CHECK_FALSE(c::has_input_rank<rank_three>);
    CHECK_FALSE(c::has_forward<mutating_forward>);
    CHECK_FALSE(classifier<mutating_forward>);
}

}  // namespace test_classifier
