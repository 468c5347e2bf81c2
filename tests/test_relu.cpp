#include <doctest/doctest.h>

#include "support/models.hpp"

using namespace advaug;

TEST_CASE_TEMPLATE("relu forward and its gradient check, rank 2 and rank 4", T, float, double) {
    const auto opts = gradient_check_options().step(std::is_same_v<T, double> ? 1e-6 : 1e-3);
    const double tol = std::is_same_v<T, double> ? 1e-6 : 1e-3;
    // inputs away from the kink at 0, where finite differences are meaningless
    auto x = testing::uniform_batch<T>(5, 6, 1, -1, 1);
    for (auto& v : x) v = v < 0 ? v - T(0.1) : v + T(0.1);
    relu<T, 2> layer;
    typename relu<T, 2>::cache_type c;
    tensor<T, 2> y;
    layer.forward(x, c, y);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(y.data()[i] == std::max(x.data()[i], T(0)));
    CHECK(check_layer_input_gradient(layer, x, opts).relative_error < tol);

    auto x4 = tensor<T, 4>::from_shape({2, 3, 2, 2});
    rng gen(3);
    for (auto& v : x4) v = static_cast<T>(gen.uniform() < 0.5 ? gen.uniform(-1, -0.1) : gen.uniform(0.1, 1));
    relu<T, 4> layer4;
    const auto r = check_layer_input_gradient(layer4, x4, opts);
    CHECK(r.checked == 24);
    CHECK(r.relative_error < tol);
    CHECK(layer4.parameters().empty());
}
