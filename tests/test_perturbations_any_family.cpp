// any_family<T> (perturbations/any_family.hpp): the family it holds, behind one type.
#include <doctest/doctest.h>

#include "support/models.hpp"

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
