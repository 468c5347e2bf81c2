#include <doctest/doctest.h>

#include <advaug/gradcheck/gradient_check.hpp>
#include <advaug/layers/conv2d.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_conv2d {

using namespace advaug;

namespace {

template <class T>
tensor<T, 4> uniform4(std::array<std::size_t, 4> shape, std::uint64_t seed) {
    auto x = tensor<T, 4>::from_shape(shape);
    rng gen(seed);
    for (auto& v : x) v = static_cast<T>(gen.uniform(-1.0, 1.0));
    return x;
}

/// The textbook loop: y[n,o,i,j] = b[o] + sum_{c,ky,kx} w[o,c,ky,kx] x[n,c,i*sh+ky-ph,j*sw+kx-pw].
template <class T>
tensor<double, 4> naive_conv(const tensor<T, 4>& x, const tensor<T, 4>& w, const tensor<T, 1>& b,
                             std::array<std::size_t, 2> s, std::array<std::size_t, 2> p) {
    const std::size_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
    const std::size_t o = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3];
    const std::size_t oh = (h + 2 * p[0] - kh) / s[0] + 1, ow = (wd + 2 * p[1] - kw) / s[1] + 1;
    auto y = tensor<double, 4>::from_shape({n, o, oh, ow});
    for (std::size_t in = 0; in < n; ++in)
        for (std::size_t oc = 0; oc < o; ++oc)
            for (std::size_t i = 0; i < oh; ++i)
                for (std::size_t j = 0; j < ow; ++j) {
                    double sum = b(oc);
                    for (std::size_t ic = 0; ic < c; ++ic)
                        for (std::size_t ky = 0; ky < kh; ++ky)
                            for (std::size_t kx = 0; kx < kw; ++kx) {
                                const auto iy = static_cast<std::ptrdiff_t>(i * s[0] + ky) -
                                                static_cast<std::ptrdiff_t>(p[0]);
                                const auto ix = static_cast<std::ptrdiff_t>(j * s[1] + kx) -
                                                static_cast<std::ptrdiff_t>(p[1]);
                                if (iy < 0 || ix < 0 || iy >= static_cast<std::ptrdiff_t>(h) ||
                                    ix >= static_cast<std::ptrdiff_t>(wd))
                                    continue;
                                sum += double(w(oc, ic, ky, kx)) *
                                       double(x(in, ic, std::size_t(iy), std::size_t(ix)));
                            }
                    y(in, oc, i, j) = sum;
                }
    return y;
}

struct config {
    std::size_t n, in, out, kh, kw, sh, sw, ph, pw, h, w;
};

// Stride 1 and 2, padding 0 and 1, one and three input channels, kernels 3 and 2, a 5x7 input,
// rectangular kernel / stride / padding, and a kernel exactly as large as the padded input.
// Stride 1 takes the wide layout where the kernel is narrow next to the output
// (detail::wide_layout: the 2x2, 3x1, 1x1 and 12x10 configurations), im2col elsewhere.
const std::vector<config> configs = {
    {2, 1, 4, 3, 3, 1, 1, 0, 0, 5, 7}, {2, 3, 2, 3, 3, 1, 1, 1, 1, 5, 7},
    {2, 3, 4, 3, 3, 2, 2, 1, 1, 5, 7}, {2, 3, 2, 3, 3, 2, 2, 0, 0, 5, 7},
    {2, 1, 3, 2, 2, 2, 2, 0, 0, 5, 7}, {1, 3, 2, 2, 2, 1, 1, 1, 1, 5, 7},
    {2, 2, 3, 3, 2, 2, 1, 0, 1, 5, 7}, {1, 1, 2, 5, 5, 1, 1, 0, 1, 5, 3},
    {2, 3, 4, 3, 3, 1, 1, 1, 1, 12, 10}, {1, 2, 3, 3, 1, 1, 1, 2, 0, 6, 9},
    {2, 2, 3, 1, 1, 1, 1, 0, 0, 4, 5},
};

template <class T>
conv2d<T> make_conv(const config& c, rng& gen) {
    return conv2d<T>(c.in, c.out, {c.kh, c.kw}, gen,
                     conv2d_options{}
                         .stride(std::ptrdiff_t(c.sh), std::ptrdiff_t(c.sw))
                         .padding(std::ptrdiff_t(c.ph), std::ptrdiff_t(c.pw))
                         .init(weight_init::pytorch_default));  // nonzero biases
}

std::string describe(const config& c) {
    return detail::concat("n ", c.n, ", ", c.in, "->", c.out, ", kernel ", c.kh, "x", c.kw,
                          ", stride ", c.sh, "x", c.sw, ", padding ", c.ph, "x", c.pw, ", input ",
                          c.h, "x", c.w);
}

}  // namespace

TEST_CASE("conv2d: hand-computed 3x3 image, 2x2 kernel, with and without padding and stride") {
    rng gen(1);
    const tensor<double, 4> x = {{{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}};
    conv2d<double> plain(1, 1, 2, gen);
    plain.weight() = tensor<double, 4>{{{{1, 2}, {3, 4}}}};
    plain.bias() = tensor<double, 1>{0.5};
    conv2d<double>::cache_type c;
    tensor<double, 4> y;
    plain.forward(x, c, y);
    CHECK(y.shape() == std::array<std::size_t, 4>{1, 1, 2, 2});
    CHECK(std::vector<double>(y.begin(), y.end()) == std::vector<double>{37.5, 47.5, 67.5, 77.5});

    // padding 1, stride 2: the padded image is 5x5, the windows start at (0,0), (0,2), (2,0), (2,2)
    conv2d<double> strided(1, 1, 2, gen, conv2d_options{}.stride(2).padding(1));
    strided.weight() = tensor<double, 4>{{{{1, 2}, {3, 4}}}};
    strided.bias() = tensor<double, 1>{0.5};
    strided.forward(x, c, y);
    CHECK(y.shape() == std::array<std::size_t, 4>{1, 1, 2, 2});
    CHECK(std::vector<double>(y.begin(), y.end()) == std::vector<double>{4.5, 18.5, 36.5, 77.5});
}

TEST_CASE("the configurations cover both layouts of stride-1 convolutions") {
    std::size_t wide = 0, unit_stride = 0;
    for (const auto& cfg : configs) {
        const std::size_t oh = (cfg.h + 2 * cfg.ph - cfg.kh) / cfg.sh + 1,
                          ow = (cfg.w + 2 * cfg.pw - cfg.kw) / cfg.sw + 1;
        const detail::conv_geometry g{cfg.in, cfg.h,  cfg.w,  cfg.kh, cfg.kw, cfg.sh,
                                      cfg.sw, cfg.ph, cfg.pw, oh,     ow};
        unit_stride += cfg.sh == 1 && cfg.sw == 1;
        wide += detail::wide_layout(g);
    }
    CHECK(wide == 4);
    CHECK(unit_stride == 7);  // three stride-1 configurations take im2col
}

TEST_CASE("conv2d forward matches a direct convolution loop, weights in PyTorch's layout") {
    rng gen(2);
    for (const auto& cfg : configs) {
        CAPTURE(describe(cfg));
        const auto layer = make_conv<double>(cfg, gen);
        const auto x = uniform4<double>({cfg.n, cfg.in, cfg.h, cfg.w}, 3);
        conv2d<double>::cache_type c;
        tensor<double, 4> y;
        layer.forward(x, c, y);
        const auto ref =
            naive_conv(x, layer.weight(), layer.bias(), {cfg.sh, cfg.sw}, {cfg.ph, cfg.pw});
        REQUIRE(y.shape() == ref.shape());
        CHECK(layer.output_shape({cfg.in, cfg.h, cfg.w}) ==
              std::array<std::size_t, 3>{ref.shape()[1], ref.shape()[2], ref.shape()[3]});
        double err = 0;
        for (std::size_t i = 0; i < y.size(); ++i)
            err = std::max(err, std::abs(y.data()[i] - ref.data()[i]));
        CHECK(err < 1e-12);
    }
    // float takes the same path; one configuration is enough
    const auto layer = make_conv<float>(configs[2], gen);
    const auto x = uniform4<float>({2, 3, 5, 7}, 4);
    conv2d<float>::cache_type c;
    tensor<float, 4> y;
    layer.forward(x, c, y);
    const auto ref = naive_conv(x, layer.weight(), layer.bias(), {2, 2}, {1, 1});
    double err = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
        err = std::max(err, std::abs(double(y.data()[i]) - ref.data()[i]));
    CHECK(err < 1e-5);
}

TEST_CASE_TEMPLATE("conv2d input and parameter gradients pass the finite-difference check", T,
                   float, double) {
    const bool is_double = std::is_same_v<T, double>;
    const auto opts = gradient_check_options().step(is_double ? 1e-6 : 1e-2);
    const double tol = is_double ? 1e-6 : 1e-2;
    rng gen(5);
    for (const auto& cfg : configs) {
        CAPTURE(describe(cfg));
        auto layer = make_conv<T>(cfg, gen);
        const auto x = uniform4<T>({cfg.n, cfg.in, cfg.h, cfg.w}, 6);
        const auto in = check_layer_input_gradient(layer, x, opts);
        const auto par = check_layer_parameter_gradient(layer, x, opts);
        CHECK(in.checked == x.size());
        CHECK(par.checked == cfg.out * cfg.in * cfg.kh * cfg.kw + cfg.out);
        CHECK(in.analytic_norm > 0);
        CHECK(par.analytic_norm > 0);
        CHECK(in.relative_error < tol);
        CHECK(par.relative_error < tol);
    }
}

TEST_CASE("conv2d initialization: He normal and PyTorch's default, fan_in = in * kh * kw") {
    rng gen(7);
    const conv2d<double> he(16, 32, 3, gen);
    const double fan_in = 16 * 9;
    double sum2 = 0;
    for (double w : he.weight()) sum2 += w * w;
    const double sd = std::sqrt(sum2 / double(he.weight().size()));
    CHECK(sd == doctest::Approx(std::sqrt(2.0 / fan_in)).epsilon(0.05));
    for (double b : he.bias()) CHECK(b == 0);

    const conv2d<double> pt(16, 32, 3, gen, conv2d_options{}.init(weight_init::pytorch_default));
    const double bound = 1 / std::sqrt(fan_in);
    double wmax = 0, bmax = 0;
    for (double w : pt.weight()) wmax = std::max(wmax, std::abs(w));
    for (double b : pt.bias()) bmax = std::max(bmax, std::abs(b));
    CHECK(wmax <= bound);
    CHECK(wmax > 0.95 * bound);
    CHECK(bmax <= bound);
    CHECK(bmax > 0.5 * bound);
}

TEST_CASE("conv2d parameters, shapes and description") {
    rng gen(8);
    conv2d<float> layer(3, 8, {3, 5}, gen, conv2d_options{}.stride(2, 1).padding(1, 2));
    auto params = layer.parameters();
    REQUIRE(params.size() == 2);
    CHECK(params[0].name == "weight");
    CHECK(params[0].shape == std::vector<std::size_t>{8, 3, 3, 5});
    CHECK(params[0].value.data() == layer.weight().data());
    CHECK(params[1].name == "bias");
    CHECK(params[1].shape == std::vector<std::size_t>{8});
    std::vector<parameter_view<float>> prefixed;
    layer.append_parameters(prefixed, "0.");
    CHECK(prefixed[0].name == "0.weight");
    CHECK(prefixed[1].name == "0.bias");

    CHECK(layer.describe() == "conv2d(3->8, 3x5, stride (2, 1), padding (1, 2))");
    CHECK(conv2d<float>(1, 32, 3, gen, conv2d_options{}.padding(1)).describe() ==
          "conv2d(1->32, 3x3, stride 1, padding 1)");
    // 28x28: (28 + 2 - 3) / 2 + 1 = 14 rows, (28 + 4 - 5) / 1 + 1 = 28 columns
    CHECK(layer.output_shape({3, 28, 28}) == std::array<std::size_t, 3>{8, 14, 28});
    // a sample shape in a std::vector (as sequential passes it) works the same
    CHECK(layer.output_shape(std::vector<std::size_t>{3, 28, 28}) ==
          std::array<std::size_t, 3>{8, 14, 28});
    CHECK_THROWS_WITH_AS(
        layer.output_shape(std::vector<std::size_t>{784}),
        "conv2d::output_shape(): input shape [784], conv2d(3->8, 3x5, stride (2, 1), "
        "padding (1, 2)) expects [3, H, W]",
        std::invalid_argument);
    CHECK(layer.in_channels() == 3);
    CHECK(layer.out_channels() == 8);
    CHECK(layer.kernel_size() == std::array<std::size_t, 2>{3, 5});
    CHECK(layer.stride() == std::array<std::size_t, 2>{2, 1});
    CHECK(layer.padding() == std::array<std::size_t, 2>{1, 2});
}

TEST_CASE("conv2d reuses its output, input-gradient and cache storage for repeated shapes") {
    rng gen(9);
    conv2d<float> layer(3, 4, 3, gen, conv2d_options{}.padding(1));
    const auto x = uniform4<float>({2, 3, 6, 6}, 10);
    const auto dy = uniform4<float>({2, 4, 6, 6}, 11);
    conv2d<float>::cache_type c;
    tensor<float, 4> y, dx;
    layer.forward(x, c, y);
    layer.backward_input(c, dy, dx);
    layer.accumulate_gradient(c, dy);
    const float* yp = y.data();
    const float* dxp = dx.data();
    const float* colsp = c.cols.data();
    const float* dcolsp = c.dcols.data();
    const tensor<float, 4> dx1 = dx;
    const std::vector<float> grad1(layer.parameters()[0].grad.begin(),
                                   layer.parameters()[0].grad.end());

    layer.forward(x, c, y);
    layer.backward_input(c, dy, dx);
    layer.accumulate_gradient(c, dy);
    CHECK(y.data() == yp);
    CHECK(dx.data() == dxp);
    CHECK(c.cols.data() == colsp);
    CHECK(c.dcols.data() == dcolsp);
    CHECK(std::equal(dx.begin(), dx.end(), dx1.begin()));  // overwritten, not accumulated
    const auto grad2 = layer.parameters()[0].grad;
    for (std::size_t i = 0; i < grad1.size(); ++i) CHECK(grad2[i] == doctest::Approx(2 * grad1[i]));
    layer.zero_grad();
    const auto params = layer.parameters();
    for (const auto& p : params)
        for (float g : p.grad) CHECK(g == 0);
}

TEST_CASE("conv2d refuses bad options, inputs and gradients, naming the function and the shapes") {
    rng gen(12);
    CHECK_THROWS_WITH_AS(conv2d_options{}.stride(0),
                         "conv2d_options::stride(): stride must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d_options{}.stride(2, -1),
                         "conv2d_options::stride(): stride must be >= 1, got (2, -1)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d_options{}.padding(-1),
                         "conv2d_options::padding(): padding must be >= 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d_options{}.padding(0, -2),
                         "conv2d_options::padding(): padding must be >= 0, got (0, -2)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        conv2d<float>(0, 4, 3, gen),
        "conv2d(): in_channels, out_channels and kernel must be >= 1, got 0, 4, 3x3",
        std::invalid_argument);

    conv2d<float> layer(1, 4, 3, gen);
    conv2d<float>::cache_type c;
    tensor<float, 4> y, dx;
    CHECK_THROWS_WITH_AS(
        layer.backward_input(c, tensor<float, 4>::from_shape({2, 4, 3, 3}), dx),
        "conv2d::backward_input(): the cache was not filled by forward() of this layer",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        layer.forward(tensor<float, 4>::from_shape({2, 3, 5, 5}), c, y),
        "conv2d::forward(): inputs have shape [2, 3, 5, 5], conv2d(1->4, 3x3, stride 1, "
        "padding 0) expects [N, 1, H, W]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        layer.forward(tensor<float, 4>::from_shape({2, 1, 2, 5}), c, y),
        "conv2d::forward(): inputs have shape [2, 1, 2, 5]: the padded image 2x5 is "
        "smaller than the 3x3 kernel of conv2d(1->4, 3x3, stride 1, padding 0)",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        layer.output_shape({2, 8, 8}),
        "conv2d::output_shape(): input shape [2, 8, 8], conv2d(1->4, 3x3, stride 1, "
        "padding 0) expects [1, H, W]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        layer.output_shape({1, 8, 2}),
        "conv2d::output_shape(): input shape [1, 8, 2]: the padded image 8x2 is smaller "
        "than the 3x3 kernel of conv2d(1->4, 3x3, stride 1, padding 0)",
        std::invalid_argument);
    // with padding 1 a 1x1 image is padded to 3x3 and fits
    CHECK(conv2d<float>(1, 4, 3, gen, conv2d_options{}.padding(1)).output_shape({1, 1, 1}) ==
          std::array<std::size_t, 3>{4, 1, 1});

    const auto x = tensor<float, 4>::from_shape({2, 1, 5, 5});
    layer.forward(x, c, y);
    CHECK(y.shape() == std::array<std::size_t, 4>{2, 4, 3, 3});
    CHECK_THROWS_WITH_AS(
        layer.backward_input(c, tensor<float, 4>::from_shape({2, 4, 5, 5}), dx),
        "conv2d::backward_input(): the output gradient has shape [2, 4, 5, 5], the "
        "layer's output is [2, 4, 3, 3]",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(
        layer.accumulate_gradient(c, tensor<float, 4>::from_shape({1, 4, 3, 3})),
        "conv2d::accumulate_gradient(): the output gradient has shape [1, 4, 3, 3], "
        "the layer's output is [2, 4, 3, 3]",
        std::invalid_argument);
}

}  // namespace test_conv2d
