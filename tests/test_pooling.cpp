// max_pool2d, avg_pool2d (layers/pooling.hpp) and flatten (layers/flatten.hpp).
#include <doctest/doctest.h>

#include <advaug/gradcheck/gradient_check.hpp>
#include <advaug/layers/activations.hpp>
#include <advaug/layers/flatten.hpp>
#include <advaug/layers/pooling.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_pooling {

using namespace advaug;

namespace {

/// Distinct values spaced 0.05 apart in random order: no ties or near-ties within 10 h for
/// the finite-difference steps used here (h <= 1e-3), so max pooling is smooth around them.
template <class T>
tensor<T, 4> distinct4(std::array<std::size_t, 4> shape, std::uint64_t seed) {
    auto x = tensor<T, 4>::from_shape(shape);
    std::vector<std::size_t> order(x.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    rng gen(seed);
    for (std::size_t i = order.size(); i > 1; --i) {
        const auto j = std::min(i - 1, static_cast<std::size_t>(gen.uniform() * double(i)));
        std::swap(order[i - 1], order[j]);
    }
    const double mid = 0.5 * double(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
        x.data()[i] = static_cast<T>(0.05 * (double(order[i]) - mid));
    return x;
}

template <class T, std::size_t N>
std::vector<double> values(const tensor<T, N>& t) {
    return std::vector<double>(t.begin(), t.end());
}

struct pool_config {
    std::size_t kernel, stride;
};
// non-overlapping, overlapping (stride < kernel), and windows that leave rows/columns unused
const std::vector<pool_config> pool_configs = {{2, 2}, {3, 2}, {2, 1}, {3, 3}};

}  // namespace

TEST_CASE("max_pool2d and avg_pool2d: hand-computed 4x4 and a 5x7 input that does not divide") {
    const tensor<double, 4> x = {{{{1, 5, 2, 0}, {3, 4, 8, 6}, {-1, -2, 7, 7}, {-3, -4, 9, 7}}}};
    max_pool2d<double> mp(2);
    max_pool2d<double>::cache_type mc;
    tensor<double, 4> y;
    mp.forward(x, mc, y);
    CHECK(y.shape() == std::array<std::size_t, 4>{1, 1, 2, 2});
    CHECK(values(y) == std::vector<double>{5, 8, -1, 9});
    tensor<double, 4> dx;
    mp.backward_input(mc, tensor<double, 4>{{{{10, 20}, {30, 40}}}}, dx);
    CHECK(values(dx) == std::vector<double>{0, 10, 0, 0, 0, 0, 20, 0, 30, 0, 0, 0, 0, 0, 40, 0});

    avg_pool2d<double> ap(2);
    avg_pool2d<double>::cache_type ac;
    ap.forward(x, ac, y);
    CHECK(values(y) == std::vector<double>{3.25, 4, -2.5, 7.5});
    ap.backward_input(ac, tensor<double, 4>{{{{4, 8}, {12, 16}}}}, dx);
    CHECK(values(dx) == std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});

    // 5x7 with 2x2 windows, stride 2: floor((5 - 2) / 2) + 1 = 2 rows, 3 columns
    const auto big = distinct4<double>({2, 3, 5, 7}, 1);
    mp.forward(big, mc, y);
    CHECK(y.shape() == std::array<std::size_t, 4>{2, 3, 2, 3});
    CHECK(mp.output_shape({3, 5, 7}) == std::array<std::size_t, 3>{3, 2, 3});
    CHECK(y(1, 2, 1, 2) ==
          std::max({big(1, 2, 2, 4), big(1, 2, 2, 5), big(1, 2, 3, 4), big(1, 2, 3, 5)}));
    ap.forward(big, ac, y);
    CHECK(y(1, 2, 1, 2) ==
          doctest::Approx((big(1, 2, 2, 4) + big(1, 2, 2, 5) + big(1, 2, 3, 4) + big(1, 2, 3, 5)) /
                          4));
}

TEST_CASE("max_pool2d: among equal values the first in row-major order wins") {
    const tensor<float, 4> x = {{{{2, 2, 1}, {2, 2, 2}, {0, 2, 2}}}};
    max_pool2d<float> mp(2, 1);
    max_pool2d<float>::cache_type c;
    tensor<float, 4> y, dx;
    mp.forward(x, c, y);
    CHECK(c.argmax == std::vector<std::size_t>{0, 1, 3, 4});
    mp.backward_input(c, tensor<float, 4>{{{{1, 1}, {1, 1}}}}, dx);
    CHECK(values(dx) == std::vector<double>{1, 1, 0, 1, 1, 0, 0, 0, 0});
}

TEST_CASE("max_pool2d: the unrolled 2x2 window follows the general rule, and backward overwrites dx") {
    // Values from {0, 1, 2}: many ties, so the first-in-row-major rule is exercised everywhere.
    for (const auto& shape :
         {std::array<std::size_t, 3>{2, 6, 8}, {2, 7, 5}, {3, 6, 9}, {3, 7, 6}}) {
        // Not a structured binding: clang before 16 cannot capture one (CHECK and CAPTURE do).
        const std::size_t kernel = shape[0], h = shape[1], w = shape[2];
        CAPTURE(kernel);
        CAPTURE(h);
        CAPTURE(w);
        auto x = tensor<float, 4>::from_shape({2, 3, h, w});
        for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 7 + i / 5) % 3);
        max_pool2d<float> mp(kernel);
        max_pool2d<float>::cache_type c;
        tensor<float, 4> y, dx;
        mp.forward(x, c, y);
        auto dy = tensor<float, 4>::from_shape(y.shape());
        for (std::size_t i = 0; i < dy.size(); ++i) dy.data()[i] = static_cast<float>(i + 1);
        dx.resize(x.shape());
        dx.fill(123.0f);  // stale content must be overwritten
        mp.backward_input(c, dy, dx);
        std::vector<double> want_dx(x.size(), 0.0);
        for (std::size_t p = 0; p < 6; ++p)
            for (std::size_t oy = 0; oy < y.shape()[2]; ++oy)
                for (std::size_t ox = 0; ox < y.shape()[3]; ++ox) {
                    std::size_t best = p * h * w + oy * kernel * w + ox * kernel;
                    for (std::size_t ky = 0; ky < kernel; ++ky)
                        for (std::size_t kx = 0; kx < kernel; ++kx) {
                            const std::size_t at = p * h * w + (oy * kernel + ky) * w + ox * kernel + kx;
                            if (x.data()[at] > x.data()[best]) best = at;
                        }
                    const std::size_t j = (p * y.shape()[2] + oy) * y.shape()[3] + ox;
                    CHECK(y.data()[j] == x.data()[best]);
                    CHECK(c.argmax[j] == best);
                    want_dx[best] += dy.data()[j];
                }
        CHECK(values(dx) == want_dx);
    }
}

TEST_CASE_TEMPLATE("max_pool2d's 2x2 row loop returns max_window's value and index, NaNs included",
                   T, float, double) {
    // Rows of 70 windows (more than the loop's block of 64) and an odd width and height, with
    // values from {0, 1, 2, NaN}: ties everywhere, and NaNs first, second and last in windows.
    const std::size_t h = 5, w = 141;
    auto x = tensor<T, 4>::from_shape({2, 3, h, w});
    rng gen(21);
    for (auto& v : x) {
        const auto r = static_cast<int>(gen.uniform() * 4.0);
        v = r >= 3 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(r);
    }
    max_pool2d<T> mp(2);
    typename max_pool2d<T>::cache_type c;
    tensor<T, 4> y;
    mp.forward(x, c, y);
    REQUIRE(y.shape() == std::array<std::size_t, 4>{2, 3, 2, 70});
    std::size_t mismatches = 0, nan_outputs = 0;
    for (std::size_t p = 0; p < 6; ++p)
        for (std::size_t oy = 0; oy < 2; ++oy)
            for (std::size_t ox = 0; ox < 70; ++ox) {
                T want;
                const std::size_t at = backend::element::max_window(
                    x.data(), p * h * w + 2 * oy * w + 2 * ox, w, std::size_t(2), want);
                const std::size_t j = (p * 2 + oy) * 70 + ox;
                const T got = y.data()[j];
                const bool same = std::isnan(want) ? std::isnan(got) : got == want;
                mismatches += !same || c.argmax[j] != at;
                nan_outputs += std::isnan(got);
            }
    CHECK(mismatches == 0);
    CHECK(nan_outputs > 0);  // the NaN rule was exercised
}

TEST_CASE_TEMPLATE("pooling input gradients pass the finite-difference check", T, float, double) {
    const bool is_double = std::is_same_v<T, double>;
    const auto opts = gradient_check_options().step(is_double ? 1e-6 : 1e-3);
    const double tol = is_double ? 1e-6 : 1e-2;
    const auto x = distinct4<T>({2, 3, 5, 7}, 2);
    for (const auto& cfg : pool_configs) {
        CAPTURE(cfg.kernel);
        CAPTURE(cfg.stride);
        const max_pool2d<T> mp(cfg.kernel, cfg.stride);
        const auto rm = check_layer_input_gradient(mp, x, opts);
        CHECK(rm.checked == x.size());
        CHECK(rm.analytic_norm > 0);
        CHECK(rm.relative_error < tol);
        const avg_pool2d<T> ap(cfg.kernel, cfg.stride);
        const auto ra = check_layer_input_gradient(ap, x, opts);
        CHECK(ra.analytic_norm > 0);
        CHECK(ra.relative_error < tol);
    }
}

TEST_CASE_TEMPLATE("max_pool2d::forward_relu and backward_input_relu are a ReLU then the pool, bit for bit", T, float,
                   double) {
    // Small integers, many of them equal and many <= 0: ties among positive maxima, windows
    // whose maximum is 0 or negative, and overlapping windows that share a maximum.
    for (const auto& config : pool_configs) {
        CAPTURE(config.kernel);
        CAPTURE(config.stride);
        const max_pool2d<T> pool(config.kernel, config.stride);
        const relu<T, 4> act;
        auto x = tensor<T, 4>::from_shape({3, 2, 7, 6});
        rng gen(config.kernel * 10 + config.stride);
        for (auto& v : x) v = static_cast<T>(std::floor(gen.uniform() * 6) - 4);  // -4 .. 1
        typename relu<T, 4>::cache_type relu_cache;
        typename max_pool2d<T>::cache_type split_cache, fused_cache;
        tensor<T, 4> r, y_split, y_fused;
        act.forward(x, relu_cache, r);
        pool.forward(r, split_cache, y_split);
        pool.forward_relu(x, fused_cache, y_fused);
        REQUIRE(y_split.shape() == y_fused.shape());
        CHECK(values(y_split) == values(y_fused));

        auto dy = tensor<T, 4>::from_shape(y_split.shape());
        for (auto& v : dy) v = static_cast<T>(gen.uniform() * 2 - 1);
        tensor<T, 4> dr, dx_split, dx_fused;
        pool.backward_input(split_cache, dy, dr);
        act.backward_input(relu_cache, dr, dx_split);
        pool.backward_input_relu(fused_cache, y_fused, dy, dx_fused);
        REQUIRE(dx_split.shape() == dx_fused.shape());
        CHECK(values(dx_split) == values(dx_fused));
        // It can fail: without the mask the windows whose maximum is <= 0 pass a gradient on.
        tensor<T, 4> dx_unmasked;
        pool.backward_input(fused_cache, dy, dx_unmasked);
        CHECK(values(dx_unmasked) != values(dx_fused));
    }
    const max_pool2d<T> pool(2);
    typename max_pool2d<T>::cache_type cache;
    tensor<T, 4> y, dx;
    CHECK_THROWS_WITH_AS(pool.backward_input_relu(cache, y, tensor<T, 4>::from_shape({1, 1, 1, 1}), dx),
                         "max_pool2d::backward_input_relu(): the cache was not filled by forward() of this layer",
                         std::invalid_argument);
    pool.forward_relu(tensor<T, 4>::from_shape({1, 2, 4, 4}), cache, y);
    CHECK_THROWS_WITH_AS(pool.backward_input_relu(cache, tensor<T, 4>::from_shape({1, 2, 1, 2}),
                                                  tensor<T, 4>::from_shape({1, 2, 2, 2}), dx),
                         "max_pool2d::backward_input_relu(): the outputs have shape [1, 2, 1, 2], the output "
                         "gradient [1, 2, 2, 2]",
                         std::invalid_argument);
}

TEST_CASE("pooling reuses its output and input-gradient storage for repeated shapes") {
    const auto x = distinct4<float>({4, 3, 6, 6}, 3);
    const auto dy = distinct4<float>({4, 3, 3, 3}, 4);
    max_pool2d<float> mp(2);
    max_pool2d<float>::cache_type mc;
    avg_pool2d<float> ap(2);
    avg_pool2d<float>::cache_type ac;
    tensor<float, 4> y, dx, ya, dxa;
    mp.forward(x, mc, y);
    mp.backward_input(mc, dy, dx);
    ap.forward(x, ac, ya);
    ap.backward_input(ac, dy, dxa);
    const float *yp = y.data(), *dxp = dx.data(), *yap = ya.data(), *dxap = dxa.data();
    const std::size_t* argp = mc.argmax.data();
    const auto dx1 = values(dx), dxa1 = values(dxa);
    mp.forward(x, mc, y);
    mp.backward_input(mc, dy, dx);
    ap.forward(x, ac, ya);
    ap.backward_input(ac, dy, dxa);
    CHECK(y.data() == yp);
    CHECK(dx.data() == dxp);
    CHECK(mc.argmax.data() == argp);
    CHECK(ya.data() == yap);
    CHECK(dxa.data() == dxap);
    CHECK(values(dx) == dx1);  // overwritten, not accumulated
    CHECK(values(dxa) == dxa1);
}

TEST_CASE("pooling: parameters, description and errors") {
    max_pool2d<float> mp(2);
    avg_pool2d<float> ap(3, 2);
    CHECK(mp.parameters().empty());
    CHECK(ap.parameters().empty());
    CHECK(mp.describe() == "max_pool2d(2x2, stride 2)");
    CHECK(ap.describe() == "avg_pool2d(3x3, stride 2)");
    CHECK(ap.output_shape({8, 28, 28}) == std::array<std::size_t, 3>{8, 13, 13});
    CHECK(mp.output_shape(std::vector<std::size_t>{8, 5, 4}) ==
          std::array<std::size_t, 3>{8, 2, 2});
    CHECK_THROWS_WITH_AS(
        ap.output_shape(std::vector<std::size_t>{2, 8, 8, 8}),
        "avg_pool2d::output_shape(): input shape [2, 8, 8, 8], avg_pool2d(3x3, stride 2) "
        "expects [C, H, W]",
        std::invalid_argument);
    CHECK(mp.kernel_size() == 2);
    CHECK(mp.stride() == 2);

    CHECK_THROWS_WITH_AS(max_pool2d<float>(0),
                         "max_pool2d(): kernel and stride must be >= 1, got kernel 0, stride 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(avg_pool2d<float>(2, 0),
                         "avg_pool2d(): kernel and stride must be >= 1, got kernel 2, stride 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        mp.output_shape({3, 1, 5}),
        "max_pool2d::output_shape(): input shape [3, 1, 5]: the 1x5 image is smaller than "
        "the 2x2 window of max_pool2d(2x2, stride 2)",
        std::invalid_argument);
    max_pool2d<float>::cache_type mc;
    avg_pool2d<float>::cache_type ac;
    tensor<float, 4> y, dx;
    CHECK_THROWS_WITH_AS(
        mp.backward_input(mc, tensor<float, 4>::from_shape({1, 1, 1, 1}), dx),
        "max_pool2d::backward_input(): the cache was not filled by forward() of this layer",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        ap.forward(tensor<float, 4>::from_shape({2, 3, 2, 4}), ac, y),
        "avg_pool2d::forward(): inputs have shape [2, 3, 2, 4]: the 2x4 image is smaller "
        "than the 3x3 window of avg_pool2d(3x3, stride 2)",
        std::invalid_argument);
    const auto x = tensor<float, 4>::from_shape({2, 3, 4, 4});
    mp.forward(x, mc, y);
    CHECK_THROWS_WITH_AS(
        mp.backward_input(mc, tensor<float, 4>::from_shape({2, 3, 4, 4}), dx),
        "max_pool2d::backward_input(): the output gradient has shape [2, 3, 4, 4], the "
        "layer's output is [2, 3, 2, 2]",
        std::invalid_argument);
    ap.forward(x, ac, y);
    CHECK_THROWS_WITH_AS(
        ap.backward_input(ac, tensor<float, 4>::from_shape({2, 1, 1, 1}), dx),
        "avg_pool2d::backward_input(): the output gradient has shape [2, 1, 1, 1], the "
        "layer's output is [2, 3, 1, 1]",
        std::invalid_argument);
}

TEST_CASE("flatten: [N, C, H, W] -> [N, C*H*W] in row-major order, and back") {
    flatten<double> layer;
    const auto x = distinct4<double>({2, 3, 2, 4}, 5);
    flatten<double>::cache_type c;
    tensor<double, 2> y;
    layer.forward(x, c, y);
    CHECK(y.shape() == std::array<std::size_t, 2>{2, 24});
    CHECK(y(1, 2 * 8 + 1 * 4 + 3) == x(1, 2, 1, 3));
    CHECK(layer.output_shape({3, 2, 4}) == std::array<std::size_t, 1>{24});
    CHECK(layer.output_shape(std::vector<std::size_t>{3, 2, 4}) == std::array<std::size_t, 1>{24});
    CHECK_THROWS_WITH_AS(layer.output_shape(std::vector<std::size_t>{24}),
                         "flatten::output_shape(): input shape [24], flatten expects [C, H, W]",
                         std::invalid_argument);
    CHECK(layer.describe() == "flatten");
    CHECK(layer.parameters().empty());

    tensor<double, 4> dx;
    layer.backward_input(c, y, dx);
    CHECK(dx.shape() == x.shape());
    CHECK(values(dx) == values(x));
    const double* yp = y.data();
    const double* dxp = dx.data();
    layer.forward(x, c, y);
    layer.backward_input(c, y, dx);
    CHECK(y.data() == yp);
    CHECK(dx.data() == dxp);

    const auto r = check_layer_input_gradient(layer, x, {});
    CHECK(r.checked == 48);
    CHECK(r.relative_error < 1e-9);

    CHECK_THROWS_WITH_AS(
        layer.backward_input(c, tensor<double, 2>::from_shape({2, 23}), dx),
        "flatten::backward_input(): the output gradient has shape [2, 23], the layer's "
        "output is [2, 24]",
        std::invalid_argument);
    flatten<double>::cache_type empty;
    CHECK_THROWS_WITH_AS(layer.backward_input(empty, y, dx),
                         "flatten::backward_input(): the cache was not filled by forward()",
                         std::invalid_argument);
}

}  // namespace test_pooling
