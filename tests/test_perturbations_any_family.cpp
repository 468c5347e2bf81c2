// any_family<T> (perturbations/any_family.hpp): the family it holds, behind one type.
#include <doctest/doctest.h>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_perturbations_any_family {

using namespace advaug;

namespace {
constexpr image_shape small_image{1, 4, 4};

template <class T>
chain<linf_ball<T>, affine<T>> linf_then_affine() {
    return chain<linf_ball<T>, affine<T>>(
        linf_ball<T>(small_image, 0.05),
        affine<T>(small_image,
                  affine_budget{.rotation = symmetric(20), .translate_x = symmetric(1)}));
}
}  // namespace

TEST_CASE_TEMPLATE("any_family gives the held family's results bit for bit", T, float, double) {
    const auto family = linf_then_affine<T>();
    const any_family<T> held = family;
    static_assert(perturbation_family<any_family<T>>);
    const auto x = testing::uniform_batch<T>(5, small_image.size(), 1, 0.2, 0.8);
    tensor<T, 2> a, b, theta, g = testing::uniform_batch<T>(5, small_image.size(), 2, -1, 1);
    CHECK(held.input_size() == family.input_size());
    CHECK(held.num_params() == family.num_params());
    CHECK(held.param_scale() == family.param_scale());
    family.sample(5, 42, a);
    held.sample(5, 42, theta);
    CHECK(theta == a);
    family.identity(5, a);
    held.identity(5, b);
    CHECK(a == b);
    family.apply(x, theta, a);
    held.apply(x, theta, b);
    CHECK(a == b);
    family.vjp_theta(x, theta, g, a);
    held.vjp_theta(x, theta, g, b);
    CHECK(a == b);
    family.vjp_input(x, theta, g, a);
    held.vjp_input(x, theta, g, b);
    CHECK(a == b);
    tensor<T, 2> far = theta * T(50), far2 = far;
    family.project(far);
    held.project(far2);
    CHECK(far == far2);
    CHECK(held.contains(far2));
    CHECK_FALSE(held.contains(theta * T(50)));
}

TEST_CASE("worst_case() searches an any_family as it searches the family it holds") {
    const auto x = testing::uniform_batch<double>(8, small_image.size(), 3, 0.2, 0.8);
    const auto y = testing::cyclic_labels(8, 3);
    mlp<double> net({16, 6, 3}, 1);
    const auto search =
        worst_case_options{}.method(search_method::both).samples(3).steps(2).seed(5);
    const auto direct = worst_case(net, linf_then_affine<double>(), x, y, search);
    const auto held = worst_case(net, any_family<double>(linf_then_affine<double>()), x, y, search);
    CHECK(held.theta == direct.theta);
    CHECK(held.perturbed == direct.perturbed);
}

TEST_CASE("target() gives the held family back by type; copies share it") {
    const any_family<double> held =
        affine<double>(small_image, affine_budget{.rotation = symmetric(5)});
    const any_family<double> copy = held;
    REQUIRE(held.target<affine<double>>() != nullptr);
    CHECK(held.target<affine<double>>() == copy.target<affine<double>>());
    CHECK(held.target<photometric<double>>() == nullptr);
}

TEST_CASE("any_family knows the kind of the family it holds, and the search follows it") {
    const any_family<double> q = quantize<double>(6, {{0.1, 0.4}});
    const any_family<double> d = dropped_sensors<double>(6, 2, {0.0});
    const any_family<double> a = affine<double>(small_image, affine_budget{.rotation = symmetric(20)});
    CHECK(q.held_kind() == perturbation_kind::gradient_free);
    CHECK(d.held_kind() == perturbation_kind::discrete);
    CHECK(a.held_kind() == perturbation_kind::continuous);
    CHECK(kind_of(d) == perturbation_kind::discrete);
    CHECK(d.max_active() == 2);
    CHECK(q.max_active() == 0);
    const auto x = testing::uniform_batch<double>(8, 6, 13, 0.2, 0.8);
    const auto y = testing::cyclic_labels(8, 3);
    mlp<double> net({6, 8, 3}, 14);
    // the same search through any_family and through the family's own type, bit for bit
    const auto search = worst_case_options{}.method(search_method::exhaustive);
    CHECK(worst_case(net, d, x, y, search).perturbed ==
          worst_case(net, dropped_sensors<double>(6, 2, {0.0}), x, y, search).perturbed);
    CHECK_THROWS_WITH_AS(worst_case(net, q, x, y, worst_case_options{}),
                         doctest::Contains("worst_case(): the family is gradient-free"),
                         std::invalid_argument);
    // the finite-difference check skips theta for a held gradient-free family, as for its type
    const auto theta = testing::uniform_batch<double>(8, 6, 15, 0.1, 0.4);
    CHECK_FALSE(check_perturbation_gradients(q, x, theta).theta_checked);
}

}  // namespace test_perturbations_any_family
