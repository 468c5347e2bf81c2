// The CUDA backend's checks that need no GPU: they run wherever nvcc compiles this file.
//
// - the device kernels' element math (cuda/step_math.hpp), run on the host, against the host
//   attacks' linf_step / l2_step / random_start;
// - the device models, optimizer and tensors satisfy the contracts (compile time);
// - without a device, every entry point throws cuda_error "no CUDA device" instead of crashing,
//   and a driver that cannot run is an error, not "no device";
// - a moved-from device tensor is empty.
#include <doctest/doctest.h>

#include "../support/skip.hpp"

#include <advaug/cuda/cuda.hpp>
#include <advaug/models/cnn.hpp>
#include <advaug/models/mlp.hpp>
#include <advaug/optim/adam.hpp>
#include <advaug/optim/optimizer.hpp>
#include <advaug/optim/sgd.hpp>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

using namespace advaug;
namespace sm = advaug::cuda::step_math;

// --- compile-time: the device types fit the contracts -----------------------------------------

static_assert(detail::typed_trainable_classifier<cuda::mlp<float>>);
static_assert(detail::typed_trainable_classifier<cuda::mlp<double>>);
static_assert(detail::typed_trainable_classifier<cuda::cnn<float>>);
static_assert(detail::typed_trainable_classifier<cuda::cnn<double>>);
static_assert(
    std::is_same_v<detail::model_input_t<cuda::cnn<float>>, cuda::device_tensor<float, 4>>);
static_assert(
    std::is_same_v<detail::model_logits_t<cuda::cnn<float>>, cuda::device_tensor<float, 2>>);
// Host models keep the contract's host tensors.
static_assert(std::is_same_v<detail::model_input_t<mlp<float>>, tensor<float, 2>>);
static_assert(optimizer<cuda::sgd<float>, float> && optimizer<cuda::sgd<double>, double>);
static_assert(detail::attack_tensor<cuda::device_tensor<float, 2>>);
static_assert(detail::attack_tensor<tensor<double, 4>>);
static_assert(!detail::attack_tensor<std::vector<float>>);
static_assert(std::is_same_v<detail::labels_t<cuda::device_tensor<float, 4>>, cuda::device_labels>);
static_assert(std::is_same_v<detail::labels_t<tensor<float, 4>>, label_vector>);
// The attacks accept device batches for device models and host batches for host models.
static_assert(std::is_same_v<decltype(fgsm(std::declval<const cuda::mlp<float>&>(),
                                           std::declval<const cuda::device_tensor<float, 2>&>(),
                                           std::declval<const cuda::device_labels&>(),
                                           std::declval<const fgsm_options&>())),
                             cuda::device_tensor<float, 2>>);
static_assert(std::is_same_v<decltype(pgd(std::declval<const cuda::cnn<double>&>(),
                                          std::declval<const cuda::device_tensor<double, 4>&>(),
                                          std::declval<const cuda::device_labels&>(),
                                          std::declval<const pgd_options&>())),
                             cuda::device_tensor<double, 4>>);

namespace {

template <class T>
tensor<T, 2> uniform(std::size_t rows, std::size_t cols, std::uint64_t seed, double lo, double hi) {
    auto x = tensor<T, 2>::from_shape({rows, cols});
    rng gen(seed);
    for (auto& v : x) v = static_cast<T>(gen.uniform(lo, hi));
    return x;
}

/// A gradient with exact zeros, tiny values and both signs, like a real one.
template <class T>
tensor<T, 2> gradient(std::size_t rows, std::size_t cols, std::uint64_t seed) {
    auto g = uniform<T>(rows, cols, seed, -1.0, 1.0);
    for (std::size_t i = 0; i < g.size(); i += 7) g.data()[i] = T(0);
    for (std::size_t i = 3; i < g.size(); i += 11) g.data()[i] = T(1e-30);
    return g;
}

/// The linf kernel's loop, on the host.
template <class T>
tensor<T, 2> linf_by_kernel_math(tensor<T, 2> x, const tensor<T, 2>& x0, const tensor<T, 2>& g,
                                 const detail::resolved_domain<T>& dom, T step, T eps, T dir) {
    for (std::size_t i = 0; i < x.size(); ++i) {
        const std::size_t d = i % dom.sample_size;
        x.data()[i] = sm::linf_element(x.data()[i], x0.data()[i], g.data()[i], dom.lo[d], dom.hi[d],
                                       dom.model_per_raw[d], step, eps, dir);
    }
    return x;
}

/// The L2 kernel's three passes per sample, on the host (sums in sequence rather than as a
/// tree: the device may differ from the host in the last bits of the norms, not in formulae).
template <class T>
tensor<T, 2> l2_by_kernel_math(tensor<T, 2> x, const tensor<T, 2>& x0, const tensor<T, 2>& g,
                               const detail::resolved_domain<T>& dom, T step, T eps, T dir) {
    const std::size_t d_size = dom.sample_size;
    for (std::size_t s = 0; s < x.shape()[0]; ++s) {
        T* xs = x.data() + s * d_size;
        const T* x0s = x0.data() + s * d_size;
        const T* gs = g.data() + s * d_size;
        double gnorm2 = 0, dnorm2 = 0;
        for (std::size_t d = 0; d < d_size; ++d) {
            const double graw = sm::raw_gradient(gs[d], dom.model_per_raw[d]);
            gnorm2 += graw * graw;
        }
        const double gscale = sm::l2_gradient_scale(gnorm2, step, dir);
        for (std::size_t d = 0; d < d_size; ++d) {
            const double delta = sm::l2_delta_raw(xs[d], x0s[d], gs[d], dom.raw_per_model[d],
                                                  dom.model_per_raw[d], gscale);
            dnorm2 += delta * delta;
        }
        const double shrink = sm::l2_shrink(dnorm2, eps);
        for (std::size_t d = 0; d < d_size; ++d) {
            const double delta = sm::l2_delta_raw(xs[d], x0s[d], gs[d], dom.raw_per_model[d],
                                                  dom.model_per_raw[d], gscale);
            xs[d] =
                sm::l2_element(x0s[d], delta, shrink, dom.model_per_raw[d], dom.lo[d], dom.hi[d]);
        }
    }
    return x;
}

template <class T>
std::vector<input_domain> domains() {
    return {input_domain{}, input_domain{}.normalization(0.3, 0.2),
            input_domain{}
                .bounds({0.0, -1.0, 0.0, 0.2, 0.0, 0.0}, {1.0, 1.0, 2.0, 0.8, 1.0, 1.0})
                .normalization({0.5, 0.0, 1.0, 0.5, 0.1, 0.0}, {0.25, 0.5, 2.0, 0.1, 1.0, 0.3})};
}

}  // namespace

TEST_CASE_TEMPLATE("the device L-inf step math is the host linf_step, bit for bit", T, float,
                   double) {
    for (const auto& domain : domains<T>()) {
        const auto x0 = domain.normalize(uniform<T>(9, 6, 1, 0.2, 0.8));
        const auto dom = detail::resolve<T>("test", domain, x0.shape());
        // A point inside the ball, as in the middle of PGD.
        const tensor<T, 2> zero = xt::zeros<T>({9, 6});
        tensor<T, 2> x =
            x0 + domain.normalize(uniform<T>(9, 6, 2, -0.01, 0.01)) - domain.normalize(zero);
        const auto g = gradient<T>(9, 6, 3);
        for (T dir : {T(1), T(-1)}) {
            for (T step : {T(0.003), T(0.05), T(0)}) {
                tensor<T, 2> host = x;
                detail::linf_step("test", host, x0, g, dom, step, T(0.02), dir);
                const auto device = linf_by_kernel_math(x, x0, g, dom, step, T(0.02), dir);
                CHECK(host == device);
            }
        }
        // eps == 0 maps x0 to itself.
        tensor<T, 2> at = x0;
        CHECK(linf_by_kernel_math(at, x0, g, dom, T(0.1), T(0), T(1)) == x0);
    }
}

TEST_CASE_TEMPLATE("the device L2 step math is the host l2_step", T, float, double) {
    for (const auto& domain : domains<T>()) {
        const auto x0 = domain.normalize(uniform<T>(9, 6, 4, 0.2, 0.8));
        const auto dom = detail::resolve<T>("test", domain, x0.shape());
        const tensor<T, 2> zero = xt::zeros<T>({9, 6});
        tensor<T, 2> x =
            x0 + domain.normalize(uniform<T>(9, 6, 5, -0.02, 0.02)) - domain.normalize(zero);
        auto g = gradient<T>(9, 6, 6);
        for (std::size_t d = 0; d < 6; ++d) g(2, d) = T(0);  // a sample with a zero gradient
        for (T dir : {T(1), T(-1)}) {
            for (T eps : {T(0.01), T(0.5)}) {
                tensor<T, 2> host = x;
                detail::l2_step("test", host, x0, g, dom, T(0.1), eps, dir);
                const auto device = l2_by_kernel_math(x, x0, g, dom, T(0.1), eps, dir);
                // Sequential sums on both sides here: the same operations, so the same bits.
                CHECK(host == device);
            }
        }
    }
}

TEST_CASE_TEMPLATE("the device random-start math is the host random_start's", T, float, double) {
    const auto domain = input_domain{}.normalization(0.4, 0.3);
    const auto x0 = domain.normalize(uniform<T>(5, 6, 7, 0.0, 1.0));
    const auto dom = detail::resolve<T>("test", domain, x0.shape());
    const double eps = 0.2;
    {
        tensor<T, 2> host(x0.shape());
        rng gen(11), same(11);
        detail::random_start(host, x0, dom, norm::linf, eps, gen);
        const std::uint64_t key = same.engine()();  // the host's counter-based stream
        for (std::size_t i = 0; i < host.size(); ++i) {
            const std::size_t d = i % 6;
            const double u = detail::counter_uniform(key, i, 0.0, 1.0);
            CHECK(host.data()[i] == sm::linf_start_element(x0.data()[i], u, eps,
                                                           dom.model_per_raw[d], dom.lo[d],
                                                           dom.hi[d]));
        }
    }
    {
        tensor<T, 2> host(x0.shape());
        rng gen(12), same(12);
        detail::random_start(host, x0, dom, norm::l2, eps, gen);
        for (std::size_t s = 0; s < 5; ++s) {
            std::vector<double> gauss(6);
            double norm2 = 0;
            for (auto& v : gauss) {
                // The host sums the squares in double but keeps the Gaussians in T.
                const double g = same.normal();
                norm2 += g * g;
                v = static_cast<double>(static_cast<T>(g));
            }
            const double radius = eps * std::pow(same.uniform(), 1.0 / 6.0);
            const double scale = radius / std::sqrt(norm2);
            for (std::size_t d = 0; d < 6; ++d) {
                CHECK(host(s, d) == sm::l2_start_element(x0(s, d), gauss[d], scale,
                                                         dom.model_per_raw[d], dom.lo[d],
                                                         dom.hi[d]));
            }
        }
    }
}

TEST_CASE("clamp and sign follow std::clamp and detail::sign, NaN included") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(sm::clamp(2.0, 0.0, 1.0) == 1.0);
    CHECK(sm::clamp(-2.0, 0.0, 1.0) == 0.0);
    CHECK(std::isnan(sm::clamp(nan, 0.0, 1.0)));
    CHECK(sm::sign(0.0) == 0.0);
    CHECK(sm::sign(-0.0) == 0.0);
    CHECK(sm::sign(-3.0f) == -1.0f);
    CHECK(sm::sign(1e-30) == detail::sign(1e-30));
}

TEST_CASE("host versions of the trainer's customization points are plain copies") {
    tensor<float, 2> t = {{1.0f, -2.0f}, {0.5f, 4.0f}};
    detail::scale_in_place(t, 0.5f);
    CHECK(t == tensor<float, 2>{{0.5f, -1.0f}, {0.25f, 2.0f}});
    tensor<float, 2> dst;
    detail::from_host(dst, t);
    CHECK(dst == t);
    CHECK(&detail::host_copy(t) == &t);  // no copy on the host

    mlp<float> net({3, 2}, 1);
    auto params = net.parameters();
    std::vector<float> saved(params[0].value.size());
    detail::read_parameter(net, params[0], std::span<float>(saved));
    CHECK(std::equal(saved.begin(), saved.end(), params[0].value.begin()));
    std::vector<float> ones(saved.size(), 1.0f);
    detail::write_parameter(net, params[0], std::span<const float>(ones));
    CHECK(net.dense_layer(0).weight()(1, 2) == 1.0f);
}

// --- without a device ---------------------------------------------------------------------------

namespace {
template <class F>
void check_no_device(F&& f) {
    try {
        f();
        FAIL("expected cuda_error");
    } catch (const cuda::cuda_error& e) {
        CHECK(std::string(e.what()).find("no CUDA device") != std::string::npos);
    }
}
}  // namespace

TEST_CASE("without a device every entry point throws cuda_error naming itself") {
    // ctest and run_on_gpu.sh run this file with CUDA_VISIBLE_DEVICES empty, so this case
    // runs on machines with a GPU too.
    if (cuda::device_available()) {
        advaug::testing::skip("a CUDA device is visible (run with CUDA_VISIBLE_DEVICES= for the no-device path)");
        return;
    }
    // Empty tensors and caches need no device: the contract default-constructs them.
    cuda::device_tensor<float, 2> empty;
    CHECK(empty.size() == 0);
    cuda::mlp<float>::cache_type cache;
    CHECK(cache.x == nullptr);

    const tensor<float, 2> x = xt::zeros<float>({2, 4});
    check_no_device([&] { (void)cuda::to_device(x); });
    check_no_device([] { cuda::device_tensor<float, 2> t({2, 3}); });
    check_no_device([] { cuda::mlp<float> m({4, 3, 2}, 1); });
    check_no_device([] { cuda::cnn<float> m(1); });
    check_no_device([] { (void)cuda::context::get("test"); });
    try {
        cuda::device_tensor<float, 2> t({2, 3});
    } catch (const cuda::cuda_error& e) {
        CHECK(std::string(e.what()).rfind("cuda::device_tensor::resize(): no CUDA device", 0) == 0);
    }
    // An optimizer step on no parameters touches nothing; on parameters it needs the device.
    cuda::sgd<float> opt(sgd_options{}.momentum(0.9));
    std::vector<parameter_view<float>> none;
    CHECK_NOTHROW(opt.step(none, 0.1));
}

TEST_CASE("only a machine without a device or driver counts as having no device") {
    const char* fn = "test";
    CHECK(cuda::detail::interpret_device_count(fn, cudaSuccess, 2, 13000) == 2);
    CHECK(cuda::detail::interpret_device_count(fn, cudaErrorNoDevice, 0, 13000) == 0);
    // No driver installed at all (cudaDriverGetVersion reports 0): a machine without a GPU.
    CHECK(cuda::detail::interpret_device_count(fn, cudaErrorInsufficientDriver, 0, 0) == 0);
    // A driver that is there but too old, or broken, must fail loudly with CUDA's own words.
    CHECK_THROWS_WITH_AS(
        cuda::detail::interpret_device_count(fn, cudaErrorInsufficientDriver, 0, 12020),
        doctest::Contains("test(): cudaGetDeviceCount(&n) failed: CUDA driver version is "
                          "insufficient for CUDA runtime version (cudaErrorInsufficientDriver)"),
        cuda::cuda_error);
    CHECK_THROWS_WITH_AS(cuda::detail::interpret_device_count(fn, cudaErrorUnknown, 0, -1),
                         doctest::Contains("(cudaErrorUnknown)"), cuda::cuda_error);
    CHECK_THROWS_AS(cuda::detail::interpret_device_count(fn, cudaErrorNotPermitted, 0, 13000),
                    cuda::cuda_error);
}

TEST_CASE("a moved-from device tensor is empty") {
    // A shape with a zero extent needs no memory, hence no device.
    cuda::device_tensor<float, 2> a;
    a.resize({0, 5});
    REQUIRE(a.shape() == std::array<std::size_t, 2>{0, 5});
    cuda::device_tensor<float, 2> b(std::move(a));
    CHECK(b.shape() == std::array<std::size_t, 2>{0, 5});
    CHECK(a.shape() == std::array<std::size_t, 2>{0, 0});
    CHECK(a.size() == 0);
    CHECK(a.data() == nullptr);
    cuda::device_tensor<float, 2> c;
    c = std::move(b);
    CHECK(c.shape() == std::array<std::size_t, 2>{0, 5});
    CHECK(b.shape() == std::array<std::size_t, 2>{0, 0});
    CHECK(b.size() == 0);
}

TEST_CASE("device options are validated before any device work") {
    CHECK_THROWS_WITH_AS(cuda::sgd<float>(sgd_options{}.nesterov(true)),
                         "cuda::sgd(): nesterov requires momentum > 0, got momentum 0",
                         std::invalid_argument);
}
