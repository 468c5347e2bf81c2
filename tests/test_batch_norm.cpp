#include <doctest/doctest.h>

#include <advaug/layers/batch_norm.hpp>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_batch_norm {

using namespace advaug;

namespace {

template <class T, std::size_t Rank>
tensor<T, Rank> uniform_tensor(const std::array<std::size_t, Rank>& shape, std::uint64_t seed,
                               double lo, double hi) {
    auto x = tensor<T, Rank>::from_shape(shape);
    rng gen(seed);
    for (auto& v : x) v = static_cast<T>(gen.uniform(lo, hi));
    return x;
}

// Every value of feature c, read through x(i, c) or x(i, c, h, w): a second route to the
// layout that the layer walks with pointer arithmetic.
template <class T>
std::vector<double> feature_values(const tensor<T, 2>& x, std::size_t c) {
    std::vector<double> v;
    for (std::size_t i = 0; i < x.shape()[0]; ++i) v.push_back(x(i, c));
    return v;
}
template <class T>
std::vector<double> feature_values(const tensor<T, 4>& x, std::size_t c) {
    std::vector<double> v;
    for (std::size_t i = 0; i < x.shape()[0]; ++i)
        for (std::size_t h = 0; h < x.shape()[2]; ++h)
            for (std::size_t w = 0; w < x.shape()[3]; ++w) v.push_back(x(i, c, h, w));
    return v;
}

double mean_of(const std::vector<double>& v) {
    double s = 0;
    for (double a : v) s += a;
    return s / static_cast<double>(v.size());
}
double biased_var_of(const std::vector<double>& v) {
    const double m = mean_of(v);
    double s = 0;
    for (double a : v) s += (a - m) * (a - m);
    return s / static_cast<double>(v.size());
}

template <class T, std::size_t Rank>
void set_affine(batch_norm<T, Rank>& bn) {
    for (std::size_t c = 0; c < bn.features(); ++c) {
        bn.weight()(c) = static_cast<T>(0.5 + 0.4 * static_cast<double>(c));
        bn.bias()(c) = static_cast<T>(0.3 - 0.2 * static_cast<double>(c));
    }
}

template <class T, std::size_t Rank>
void set_running(batch_norm<T, Rank>& bn) {
    for (std::size_t c = 0; c < bn.features(); ++c) {
        bn.running_mean()(c) = static_cast<T>(0.1 - 0.15 * static_cast<double>(c));
        bn.running_var()(c) = static_cast<T>(0.6 + 0.7 * static_cast<double>(c));
    }
}

template <class T, std::size_t Rank>
std::vector<T> running_snapshot(const batch_norm<T, Rank>& bn) {
    std::vector<T> s(bn.running_mean().begin(), bn.running_mean().end());
    s.insert(s.end(), bn.running_var().begin(), bn.running_var().end());
    return s;
}

template <class T, std::size_t Rank>
void check_train_normalization(const tensor<T, Rank>& x, std::size_t features) {
    batch_norm<T, Rank> bn(features);
    typename batch_norm<T, Rank>::cache_type cache;
    tensor<T, Rank> y;
    bn.forward(x, cache, y);
    REQUIRE(y.shape() == x.shape());
    const double tol = std::is_same_v<T, double> ? 1e-12 : 1e-5;
    for (std::size_t c = 0; c < features; ++c) {
        const auto xv = feature_values(x, c);
        const auto yv = feature_values(y, c);
        // weight 1, bias 0: mean 0 and variance var / (var + eps), i.e. 1 up to eps.
        CHECK(std::abs(mean_of(yv)) < tol);
        const double var = biased_var_of(xv);
        CHECK(biased_var_of(yv) == doctest::Approx(var / (var + 1e-5)).epsilon(tol));
        CHECK(std::abs(biased_var_of(yv) - 1) < 1e-3);
        // the value itself, element by element
        const double mean = mean_of(xv), inv = 1 / std::sqrt(var + 1e-5);
        for (std::size_t k = 0; k < xv.size(); ++k) {
            CHECK(yv[k] == doctest::Approx((xv[k] - mean) * inv).epsilon(tol));
        }
        CHECK(cache.batch_mean(c) == doctest::Approx(mean).epsilon(tol));
        CHECK(cache.batch_var(c) == doctest::Approx(var).epsilon(tol));
    }
}

template <class T, std::size_t Rank>
void check_gradients(const std::array<std::size_t, Rank>& shape, mode m, std::uint64_t seed) {
    const auto opts = gradient_check_options().step(std::is_same_v<T, double> ? 1e-6 : 1e-2);
    const double tol = std::is_same_v<T, double> ? 1e-6 : 1e-2;
    INFO("rank ", Rank);
    batch_norm<T, Rank> bn(shape[1]);
    set_affine(bn);
    set_running(bn);
    bn.set_mode(m);
    const auto x = uniform_tensor<T, Rank>(shape, seed, -1, 2);
    const auto in = check_layer_input_gradient(bn, x, opts);
    const auto par = check_layer_parameter_gradient(bn, x, opts);
    CHECK(in.checked == x.size());
    CHECK(par.checked == 2 * shape[1]);
    CHECK(in.analytic_norm > 0.1);
    CHECK(par.analytic_norm > 0.1);
    CHECK(in.relative_error < tol);
    CHECK(par.relative_error < tol);
}

}  // namespace

TEST_CASE_TEMPLATE("batch_norm normalizes each feature with the batch statistics in train mode", T,
                   float, double) {
    SUBCASE("rank 2, statistics over N") {
        check_train_normalization<T, 2>(uniform_tensor<T, 2>({8, 3}, 1, -2, 5), 3);
    }
    SUBCASE("rank 4, statistics over N*H*W") {
        check_train_normalization<T, 4>(uniform_tensor<T, 4>({3, 2, 4, 5}, 2, -1, 3), 2);
    }
}

TEST_CASE(
    "batch_norm applies weight and bias after normalizing, and uses running statistics "
    "in eval mode") {
    batch_norm<double, 4> bn(2);
    set_affine(bn);   // weight {0.5, 0.9}, bias {0.3, 0.1}
    set_running(bn);  // running_mean {0.1, -0.05}, running_var {0.6, 1.3}
    const auto x = uniform_tensor<double, 4>({2, 2, 3, 3}, 3, -1, 1);
    typename batch_norm<double, 4>::cache_type cache;
    tensor<double, 4> y;

    bn.forward(x, cache, y);  // train mode
    for (std::size_t c = 0; c < 2; ++c) {
        const auto xv = feature_values(x, c), yv = feature_values(y, c);
        const double m = mean_of(xv), inv = 1 / std::sqrt(biased_var_of(xv) + 1e-5);
        for (std::size_t k = 0; k < xv.size(); ++k) {
            CHECK(yv[k] == doctest::Approx(bn.weight()(c) * (xv[k] - m) * inv + bn.bias()(c)));
        }
    }

    bn.set_mode(mode::eval);
    bn.forward(x, cache, y);
    for (std::size_t c = 0; c < 2; ++c) {
        const auto xv = feature_values(x, c), yv = feature_values(y, c);
        const double m = bn.running_mean()(c), inv = 1 / std::sqrt(bn.running_var()(c) + 1e-5);
        for (std::size_t k = 0; k < xv.size(); ++k) {
            CHECK(yv[k] == doctest::Approx(bn.weight()(c) * (xv[k] - m) * inv + bn.bias()(c)));
        }
    }
    // Eval mode is per sample: one sample gives what it gives inside the batch.
    tensor<double, 4> one = xt::view(x, xt::range(1, 2), xt::all(), xt::all(), xt::all());
    tensor<double, 4> y1;
    bn.forward(one, cache, y1);
    CHECK(testing::max_abs_diff(y1, tensor<double, 4>(xt::view(y, xt::range(1, 2), xt::all(),
                                                               xt::all(), xt::all()))) < 1e-15);
}

TEST_CASE_TEMPLATE("batch_norm gradients pass the finite-difference check in train and eval mode",
                   T, float, double) {
    // In train mode each probe forward pass of the checker recomputes the batch statistics,
    // which is exactly the function whose gradient backward_input() computes.
    for (const mode m : {mode::train, mode::eval}) {
        const std::string name = m == mode::train ? "train mode" : "eval mode";
        INFO(name);
        check_gradients<T, 2>({6, 3}, m, 4);
        check_gradients<T, 4>({3, 2, 3, 2}, m, 5);
    }
}

TEST_CASE("batch_norm's train-mode input gradient goes through the batch statistics") {
    // The affine (eval-style) gradient would fail the check: the batch mean moves with x.
    // Here its consequence: the input gradient of a constant output gradient is 0, since
    // adding a constant to a feature's dy is cancelled by the mean subtraction.
    batch_norm<double> bn(2);
    set_affine(bn);
    const auto x = uniform_tensor<double, 2>({5, 2}, 6, -1, 1);
    typename batch_norm<double>::cache_type cache;
    tensor<double, 2> y, dx;
    bn.forward(x, cache, y);
    bn.backward_input(cache, xt::ones<double>({5, 2}), dx);
    CHECK(xt::amax(xt::abs(dx))() < 1e-12);
    bn.set_mode(mode::eval);
    bn.forward(x, cache, y);
    bn.backward_input(cache, xt::ones<double>({5, 2}), dx);
    CHECK(dx(0, 0) == doctest::Approx(0.5 / std::sqrt(1 + 1e-5)));
    CHECK(dx(4, 1) == doctest::Approx(0.9 / std::sqrt(1 + 1e-5)));
}

TEST_CASE("batch_norm updates the running statistics in accumulate_gradient only, as PyTorch") {
    // Feature 0: {1, 2, 3, 6}, mean 3, biased var 3.5, unbiased 14/3.
    // Feature 1: {0, 0, 2, 2}, mean 1, biased var 1, unbiased 4/3.
    // torch.nn.BatchNorm1d(2) on this batch in train mode leaves running_mean [0.3, 0.1] and
    // running_var [0.9 + 0.1 * 14/3, 0.9 + 0.1 * 4/3] = [1.366667, 1.033333].
    const tensor<double, 2> x{{1, 0}, {2, 0}, {3, 2}, {6, 2}};
    batch_norm<double> bn(2);
    typename batch_norm<double>::cache_type cache;
    tensor<double, 2> y, dx;
    const tensor<double, 2> dy = uniform_tensor<double, 2>({4, 2}, 7, -1, 1);
    const auto initial = running_snapshot(bn);
    CHECK(initial == std::vector<double>{0, 0, 1, 1});

    SUBCASE("forward and backward_input (an attack) change nothing") {
        for (int i = 0; i < 3; ++i) {
            bn.forward(x, cache, y);
            bn.backward_input(cache, dy, dx);
        }
        CHECK(running_snapshot(bn) == initial);
        CHECK(bn.num_batches_tracked() == 0);
    }
    SUBCASE("accumulate_gradient applies the momentum formula, once per forward pass") {
        bn.forward(x, cache, y);
        bn.backward_input(cache, dy, dx);
        bn.accumulate_gradient(cache, dy);
        CHECK(bn.running_mean()(0) == doctest::Approx(0.3));
        CHECK(bn.running_mean()(1) == doctest::Approx(0.1));
        CHECK(bn.running_var()(0) == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0));
        CHECK(bn.running_var()(1) == doctest::Approx(0.9 + 0.1 * 4.0 / 3.0));
        CHECK(bn.num_batches_tracked() == 1);
        // A second call on the same cache (a split dlogits) adds gradients, not statistics.
        const auto once = running_snapshot(bn);
        bn.accumulate_gradient(cache, dy);
        CHECK(running_snapshot(bn) == once);
        CHECK(bn.num_batches_tracked() == 1);
        // A second forward pass is a second batch: the running values compound.
        bn.forward(x, cache, y);
        bn.accumulate_gradient(cache, dy);
        CHECK(bn.running_mean()(0) == doctest::Approx(0.9 * 0.3 + 0.1 * 3));
        CHECK(bn.running_var()(1) == doctest::Approx(0.9 * (0.9 + 0.4 / 3) + 0.1 * 4.0 / 3.0));
        CHECK(bn.num_batches_tracked() == 2);
    }
    SUBCASE("the momentum option") {
        batch_norm<double> half(2, batch_norm_options{}.momentum(0.5));
        half.forward(x, cache, y);
        half.accumulate_gradient(cache, dy);
        CHECK(half.running_mean()(0) == doctest::Approx(1.5));
        CHECK(half.running_var()(0) == doctest::Approx(0.5 + 0.5 * 14.0 / 3.0));
        batch_norm<double> frozen(2, batch_norm_options{}.momentum(0));
        frozen.forward(x, cache, y);
        frozen.accumulate_gradient(cache, dy);
        CHECK(running_snapshot(frozen) == initial);
    }
    SUBCASE("eval mode changes nothing, whatever is called") {
        bn.set_mode(mode::eval);
        bn.forward(x, cache, y);
        bn.backward_input(cache, dy, dx);
        bn.accumulate_gradient(cache, dy);
        CHECK(running_snapshot(bn) == initial);
        CHECK(bn.num_batches_tracked() == 0);
        // ... but the parameter gradients are accumulated as usual.
        CHECK(std::abs(bn.parameters()[1].grad[0] - (dy(0, 0) + dy(1, 0) + dy(2, 0) + dy(3, 0))) <
              1e-12);
    }
    SUBCASE("an eval-mode pass on a cache cancels the statistics of an earlier train pass") {
        bn.forward(x, cache, y);
        bn.set_mode(mode::eval);
        bn.forward(x, cache, y);
        bn.accumulate_gradient(cache, dy);
        CHECK(running_snapshot(bn) == initial);
    }
}

TEST_CASE("batch_norm rank 4 takes running statistics over N*H*W") {
    // channel 0 holds 0..7 over [2, 2, 2, 2] (mean 3.5, unbiased var 6), channel 1 holds 1s.
    auto x = tensor<float, 4>::from_shape({2, 2, 2, 2});
    float v = 0;
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t h = 0; h < 2; ++h)
            for (std::size_t w = 0; w < 2; ++w) {
                x(i, 0, h, w) = v++;
                x(i, 1, h, w) = 1;
            }
    batch_norm<float, 4> bn(2);
    typename batch_norm<float, 4>::cache_type cache;
    tensor<float, 4> y;
    bn.forward(x, cache, y);
    bn.accumulate_gradient(cache, xt::zeros<float>({2, 2, 2, 2}));
    CHECK(bn.running_mean()(0) == doctest::Approx(0.35));
    CHECK(bn.running_var()(0) == doctest::Approx(0.9 + 0.6));
    CHECK(bn.running_mean()(1) == doctest::Approx(0.1));
    CHECK(bn.running_var()(1) == doctest::Approx(0.9));
    // A constant feature has variance 0: normalized to 0, not to NaN.
    CHECK(xt::amax(xt::abs(xt::view(y, xt::all(), 1)))() == 0.0f);
}

TEST_CASE("batch_norm exposes weight and bias as parameters and keeps the buffers out") {
    batch_norm<float, 4> bn(5);
    auto params = bn.parameters();
    REQUIRE(params.size() == 2);
    CHECK(params[0].name == "weight");
    CHECK(params[1].name == "bias");
    CHECK(params[0].shape == std::vector<std::size_t>{5});
    CHECK(params[1].shape == std::vector<std::size_t>{5});
    CHECK(params[0].value.data() == bn.weight().data());
    CHECK(bn.weight() == xt::ones<float>({5}));
    CHECK(bn.bias() == xt::zeros<float>({5}));
    CHECK(bn.running_mean() == xt::zeros<float>({5}));
    CHECK(bn.running_var() == xt::ones<float>({5}));
    std::vector<parameter_view<float>> named;
    bn.append_parameters(named, "1.");
    CHECK(named[0].name == "1.weight");
    CHECK(named[1].name == "1.bias");
    CHECK(bn.describe() == "batch_norm2d(5)");
    CHECK(batch_norm<double>(3).describe() == "batch_norm1d(3)");
    CHECK(bn.output_shape({5, 7, 9}) == std::vector<std::size_t>{5, 7, 9});
    CHECK_THROWS_WITH_AS(bn.output_shape({4, 7, 9}),
                         "batch_norm::output_shape(): batch_norm2d(5) expects samples of shape "
                         "[5, H, W], got [4, 7, 9]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(batch_norm<float>(5).output_shape({5, 2}),
                         "batch_norm::output_shape(): batch_norm1d(5) expects samples of shape "
                         "[5], got [5, 2]",
                         std::invalid_argument);
    CHECK(bn.eps() == 1e-5);
    CHECK(bn.momentum() == 0.1);
    CHECK(bn.mode() == mode::train);
}

TEST_CASE("batch_norm refuses a train-mode batch with one value per feature, as PyTorch") {
    batch_norm<float> bn(3);
    typename batch_norm<float>::cache_type cache;
    tensor<float, 2> y;
    const auto one = tensor<float, 2>::from_shape({1, 3});
    CHECK_THROWS_WITH_AS(bn.forward(one, cache, y),
                         "batch_norm::forward(): train mode needs more than 1 value per feature, "
                         "got input shape [1, 3] (use eval mode for single samples)",
                         std::invalid_argument);
    bn.set_mode(mode::eval);
    CHECK_NOTHROW(bn.forward(one, cache, y));

    batch_norm<float, 4> bn4(2);
    typename batch_norm<float, 4>::cache_type cache4;
    tensor<float, 4> y4;
    CHECK_THROWS_WITH_AS(bn4.forward(tensor<float, 4>::from_shape({1, 2, 1, 1}), cache4, y4),
                         "batch_norm::forward(): train mode needs more than 1 value per feature, "
                         "got input shape [1, 2, 1, 1] (use eval mode for single samples)",
                         std::invalid_argument);
    // One image with several pixels is a valid train-mode batch (as in PyTorch).
    CHECK_NOTHROW(bn4.forward(uniform_tensor<float, 4>({1, 2, 2, 1}, 8, 0, 1), cache4, y4));
}

TEST_CASE("batch_norm refuses bad options, shapes and caches") {
    CHECK_THROWS_WITH_AS(batch_norm_options{}.eps(0),
                         "batch_norm_options::eps(): eps must be finite and > 0, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(batch_norm_options{}.eps(-0.5),
                         "batch_norm_options::eps(): eps must be finite and > 0, got -0.5",
                         std::invalid_argument);
    CHECK_THROWS_AS(batch_norm_options{}.eps(std::numeric_limits<double>::infinity()),
                    std::invalid_argument);
    CHECK_THROWS_WITH_AS(batch_norm_options{}.momentum(1.5),
                         "batch_norm_options::momentum(): momentum must be in [0, 1], got 1.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(batch_norm_options{}.momentum(-0.25),
                         "batch_norm_options::momentum(): momentum must be in [0, 1], got -0.25",
                         std::invalid_argument);
    CHECK_THROWS_AS(batch_norm_options{}.momentum(std::nan("")), std::invalid_argument);
    CHECK_THROWS_WITH_AS(batch_norm<double>(0), "batch_norm(): features must be >= 1, got 0",
                         std::invalid_argument);
    const auto opts = batch_norm_options{}.eps(1e-3).momentum(0.25);
    batch_norm<double> custom(2, opts);
    CHECK(custom.eps() == 1e-3);
    CHECK(custom.momentum() == 0.25);

    batch_norm<float> bn(3);
    typename batch_norm<float>::cache_type cache;
    tensor<float, 2> y, dx;
    CHECK_THROWS_WITH_AS(
        bn.forward(tensor<float, 2>::from_shape({4, 5}), cache, y),
        "batch_norm::forward(): inputs have shape [4, 5], the layer expects [N, 3]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(bn.backward_input(cache, tensor<float, 2>::from_shape({4, 3}), dx),
                         "batch_norm::backward_input(): the cache was not filled by forward()",
                         std::invalid_argument);
    const auto x = uniform_tensor<float, 2>({4, 3}, 9, 0, 1);
    bn.forward(x, cache, y);
    CHECK_THROWS_WITH_AS(bn.accumulate_gradient(cache, tensor<float, 2>::from_shape({4, 2})),
                         "batch_norm::accumulate_gradient(): the output gradient has shape [4, 2], "
                         "the layer's output is [4, 3]",
                         std::invalid_argument);

    batch_norm<float, 4> bn4(3);
    typename batch_norm<float, 4>::cache_type cache4;
    tensor<float, 4> y4;
    CHECK_THROWS_WITH_AS(bn4.forward(tensor<float, 4>::from_shape({2, 1, 4, 4}), cache4, y4),
                         "batch_norm::forward(): inputs have shape [2, 1, 4, 4], the layer expects "
                         "[N, 3, H, W]",
                         std::invalid_argument);
}

}  // namespace test_batch_norm
