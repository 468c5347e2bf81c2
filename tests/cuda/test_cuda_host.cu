// The CUDA backend's checks that need no GPU: they run wherever nvcc compiles this file.
//
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

// --- compile-time: the device types fit the contracts -----------------------------------------

// The one model contract covers the device models, with their own tensor types.
static_assert(trainable_classifier<cuda::mlp<float>>);
static_assert(trainable_classifier<cuda::mlp<double>>);
static_assert(trainable_classifier<cuda::cnn<float>>);
static_assert(trainable_classifier<cuda::cnn<double>>);
static_assert(check_trainable_classifier<cuda::cnn<float>>());
static_assert(std::is_same_v<input_t<cuda::cnn<float>>, cuda::device_tensor<float, 4>>);
static_assert(std::is_same_v<logits_t<cuda::cnn<float>>, cuda::device_tensor<float, 2>>);
// Host models keep the contract's host tensors.
static_assert(std::is_same_v<input_t<mlp<float>>, tensor<float, 2>>);
static_assert(optimizer<cuda::sgd<float>, float> && optimizer<cuda::sgd<double>, double>);
static_assert(detail::attack_tensor<cuda::device_tensor<float, 2>>);
// cuda::host_model shows a device model through host tensors (for apgd, fab, square and
// autoattack, which take advaug::tensor inputs).
static_assert(classifier<cuda::host_model<cuda::cnn<float>>>);
static_assert(std::is_same_v<input_t<cuda::host_model<cuda::cnn<float>>>, tensor<float, 4>>);
static_assert(std::is_same_v<logits_t<cuda::host_model<cuda::mlp<double>>>, tensor<double, 2>>);
static_assert(detail::check_attack_model<cuda::host_model<cuda::mlp<float>>, tensor<float, 2>>());
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
