// CPU versus GPU on identical weights and inputs (issue: the optional CUDA backend):
//   - logits within 1e-4, input and parameter gradients within rounding, for hidden widths
//     that grow and that shrink;
//   - the same FGSM examples, except where the gradient is within rounding of zero;
//   - the same L-inf random starts, bit for bit, and the same PGD accuracy within rounding;
//   - an FGSM-with-random-start training run on the GPU reaches the CPU run's accuracy;
//   - AutoAttack on a device model through cuda::host_model gives the host model's result;
//   - the trainer's non-finite-gradient error, and the runtime's context, moves and
//     allocation fallback.
// On a machine without a CUDA device (or driver) the program prints "no CUDA device" and exits
// with 77, which CTest counts as skipped (SKIP_RETURN_CODE), never as passed; a driver that
// cannot run fails with CUDA's error string.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <advaug/attacks/autoattack.hpp>
#include <advaug/attacks/fgm.hpp>
#include <advaug/attacks/fgsm.hpp>
#include <advaug/attacks/pgd.hpp>
#include <advaug/cuda/cuda.hpp>
#include <advaug/io/binary.hpp>
#include <advaug/loss/cross_entropy.hpp>
#include <advaug/models/cnn.hpp>
#include <advaug/models/mlp.hpp>
#include <advaug/optim/sgd.hpp>
#include <advaug/training/trainer.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace advaug;

namespace {

/// A learnable 10-class problem in [0, 1]^d: each class brightens its own random half of the
/// pixels. Real data would tie the test to a data set the GPU machine may not have.
template <class T>
std::pair<tensor<T, 2>, label_vector> synthetic(std::size_t n, std::size_t d, std::uint64_t seed) {
    rng pattern_gen(1234);  // the same classes for every split
    std::vector<std::vector<bool>> patterns(10, std::vector<bool>(d));
    for (auto& p : patterns)
        for (std::size_t j = 0; j < d; ++j) p[j] = pattern_gen.uniform() < 0.5;
    rng gen(seed);
    auto x = tensor<T, 2>::from_shape({n, d});
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = i % 10;
        y(i) = static_cast<std::int64_t>(c);
        for (std::size_t j = 0; j < d; ++j) {
            const double v = (patterns[c][j] ? 0.55 : 0.35) + 0.35 * (gen.uniform() - 0.5);
            x(i, j) = static_cast<T>(std::clamp(v, 0.0, 1.0));
        }
    }
    return {x, y};
}

template <class T>
tensor<T, 4> as_images(const tensor<T, 2>& x) {
    tensor<T, 4> out = tensor<T, 4>::from_shape({x.shape()[0], 1, 28, 28});
    std::copy(x.data(), x.data() + x.size(), out.data());
    return out;
}

template <class T, std::size_t N>
double max_abs_diff(const tensor<T, N>& a, const tensor<T, N>& b) {
    REQUIRE(a.shape() == b.shape());
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        m = std::max(m, std::abs(double(a.data()[i]) - double(b.data()[i])));
    }
    return m;
}

template <class T, std::size_t N>
double max_abs(const tensor<T, N>& a) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a.data()[i])));
    return m;
}

/// Logits, the input gradient of the mean cross-entropy and the parameter gradients, on the
/// host, for any model and tensor kind.
template <class M, class X, class Y>
auto gradients(M& model, const X& x, const Y& y) {
    typename M::cache_type cache;
    detail::model_logits_t<M> logits, dlogits;
    X dx;
    model.forward(x, cache, logits);
    cross_entropy_gradient(logits, y, dlogits);
    model.input_gradient(cache, dlogits, dx);
    model.zero_grad();
    model.parameter_gradient(cache, dlogits);
    return std::pair{logits, dx};
}

template <class T, std::size_t N>
tensor<T, N> host_of(const tensor<T, N>& t) {
    return t;
}
template <class T, std::size_t N>
tensor<T, N> host_of(const cuda::device_tensor<T, N>& t) {
    return cuda::to_host(t);
}

std::vector<std::vector<float>> grads_of(std::vector<parameter_view<float>> views, bool device) {
    std::vector<std::vector<float>> out;
    for (auto& p : views) {
        std::vector<float> g(p.grad.size());
        if (device) {
            // On advaug's stream (not the legacy default stream, which it does not wait for).
            cuda::detail::download("test", p.grad.data(), g.data(), g.size());
        } else {
            std::copy(p.grad.begin(), p.grad.end(), g.begin());
        }
        out.push_back(std::move(g));
    }
    return out;
}

template <class HostModel, class DeviceModel, class HX>
void check_same_function(HostModel& host, DeviceModel& gpu, const HX& x, const label_vector& y) {
    const auto [hl, hdx] = gradients(host, x, y);
    const auto dx_dev = cuda::to_device(x);
    const auto y_dev = cuda::to_device(y);
    const auto [dl, ddx] = gradients(gpu, dx_dev, y_dev);
    CHECK(max_abs_diff(hl, host_of(dl)) <= 1e-4);
    CHECK(max_abs_diff(hdx, host_of(ddx)) <= 1e-4 * std::max(1.0, max_abs(hdx)));
    const auto hg = grads_of(host.parameters(), false), dg = grads_of(gpu.parameters(), true);
    REQUIRE(hg.size() == dg.size());
    for (std::size_t p = 0; p < hg.size(); ++p) {
        double diff = 0, scale = 0;
        for (std::size_t i = 0; i < hg[p].size(); ++i) {
            diff = std::max(diff, double(std::abs(hg[p][i] - dg[p][i])));
            scale = std::max(scale, double(std::abs(hg[p][i])));
        }
        CAPTURE(p);
        CHECK(diff <= 1e-4 * std::max(1.0, scale));
    }
}

/// FGSM on both: equal except where the host's gradient is within rounding of zero (there the
/// sign of a float sum of terms of both signs is decided by the order of additions).
template <class HostModel, class DeviceModel, class HX>
void check_same_fgsm(HostModel& host, DeviceModel& gpu, const HX& x, const label_vector& y) {
    const auto opts = fgsm_options{}.epsilon(0.1);
    const HX h = fgsm(host, x, y, opts);
    const HX d = host_of(fgsm(gpu, cuda::to_device(x), cuda::to_device(y), opts));
    const auto [logits, g] = gradients(host, x, y);
    const std::size_t n = x.shape()[0], per = x.size() / n;
    std::size_t differ = 0;
    for (std::size_t s = 0; s < n; ++s) {
        double gmax = 0;
        for (std::size_t k = 0; k < per; ++k)
            gmax = std::max(gmax, double(std::abs(g.data()[s * per + k])));
        for (std::size_t k = 0; k < per; ++k) {
            const std::size_t i = s * per + k;
            if (h.data()[i] == d.data()[i]) continue;
            ++differ;
            CAPTURE(i);
            CHECK(std::abs(double(g.data()[i])) <= 1e-4 * gmax);
        }
    }
    MESSAGE("FGSM elements that differ (gradient within rounding of zero): ", differ, " of ",
            h.size());
}

}  // namespace

// First in the file, so that these threads race to create the context.
TEST_CASE("threads that race to the first context::get get one context") {
    std::vector<const cuda::context*> seen(8, nullptr);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < seen.size(); ++t) {
        threads.emplace_back([&seen, t] { seen[t] = &cuda::context::get("test"); });
    }
    for (auto& t : threads) t.join();
    for (const auto* c : seen) CHECK(c == seen[0]);
    MESSAGE("memory pools (cudaMallocAsync): ", cuda::context::get("test").memory_pools());
}

TEST_CASE("device memory: moved-from tensors are empty, and the cudaMalloc fallback works") {
    cuda::device_tensor<float, 2> a({2, 3});
    const float* p = a.data();
    cuda::device_tensor<float, 2> b(std::move(a));
    CHECK(b.data() == p);
    CHECK(b.size() == 6);
    CHECK(a.size() == 0);
    CHECK(a.shape() == std::array<std::size_t, 2>{0, 0});
    CHECK(a.data() == nullptr);
    a = std::move(b);
    CHECK(a.size() == 6);
    CHECK(b.size() == 0);
    CHECK(b.shape() == std::array<std::size_t, 2>{0, 0});
    // The moved-from tensor is usable again.
    b.resize({1, 4});
    CHECK(b.size() == 4);

    // The path taken on a device without memory pools, exercised on this one.
    const cuda::context& ctx = cuda::context::get("test");
    std::vector<float> in{1, 2, 3, 4}, out(4);
    void* d = cuda::detail::allocate_bytes("test", 4 * sizeof(float), ctx.stream(), false);
    REQUIRE(d != nullptr);
    cuda::detail::upload("test", in.data(), static_cast<float*>(d), 4);
    cuda::detail::download("test", static_cast<const float*>(d), out.data(), 4);
    cuda::detail::free_bytes(d, ctx.stream(), false);
    CHECK(out == in);
}

TEST_CASE("MLP: logits, input and parameter gradients and FGSM agree with the CPU") {
    mlp<float> host({784, 256, 256, 10}, 3);
    cuda::mlp<float> gpu(host);
    const auto [x, y] = synthetic<float>(64, 784, 5);
    check_same_function(host, gpu, x, y);
    check_same_fgsm(host, gpu, x, y);
    mlp<float> back({784, 256, 256, 10}, 99);
    gpu.copy_to(back);
    CHECK(max_abs_diff(host.dense_layer(1).weight(), back.dense_layer(1).weight()) == 0);
    // The parameter-copy customization points pick the device versions for a device model.
    auto views = gpu.parameters();
    std::vector<float> w(views[2].value.size());
    read_parameter(gpu, views[2], std::span<float>(w));
    CHECK(std::equal(w.begin(), w.end(), host.dense_layer(1).weight().data()));
    std::fill(w.begin(), w.end(), 0.25f);
    write_parameter(gpu, views[2], std::span<const float>(w));
    gpu.copy_to(back);
    CHECK(back.dense_layer(1).weight()(3, 7) == 0.25f);
}

TEST_CASE("MLP with hidden widths that shrink and grow: the backward scratch is sized once") {
    // In 784-512-256-10 the backward pass reads the 256-wide gradient from the scratch that the
    // 512-wide one is written to: the scratch must not move in between.
    for (const std::vector<std::size_t>& widths :
         {std::vector<std::size_t>{784, 512, 256, 10},
          std::vector<std::size_t>{784, 32, 128, 64, 10}}) {
        CAPTURE(widths.size());
        mlp<float> host(widths, 4);
        cuda::mlp<float> gpu(host);
        const auto [x, y] = synthetic<float>(48, 784, 7);
        check_same_function(host, gpu, x, y);
        check_same_fgsm(host, gpu, x, y);
        // A second pass on a larger batch grows the scratch between calls.
        const auto [x2, y2] = synthetic<float>(96, 784, 8);
        check_same_function(host, gpu, x2, y2);
    }
}

TEST_CASE("CNN: logits, input and parameter gradients and FGSM agree with the CPU") {
    cnn<float> host(4);
    cuda::cnn<float> gpu(host);
    const auto [x2, y] = synthetic<float>(16, 784, 6);
    const auto x = as_images(x2);
    check_same_function(host, gpu, x, y);
    check_same_fgsm(host, gpu, x, y);
}

TEST_CASE("double models agree to double precision") {
    mlp<double> host({784, 64, 10}, 8);
    cuda::mlp<double> gpu(host);
    const auto [x, y] = synthetic<double>(32, 784, 9);
    const auto [hl, hdx] = gradients(host, x, y);
    const auto [dl, ddx] = gradients(gpu, cuda::to_device(x), cuda::to_device(y));
    CHECK(max_abs_diff(hl, host_of(dl)) <= 1e-10);
    CHECK(max_abs_diff(hdx, host_of(ddx)) <= 1e-12);
}

namespace {

/// The predicted class of every sample.
template <class M, class X>
std::vector<std::int64_t> predictions(const M& model, const X& x) {
    typename M::cache_type cache;
    detail::model_logits_t<M> logits;
    model.forward(x, cache, logits);
    const auto l = host_of(logits);
    std::vector<std::int64_t> out(l.shape()[0]);
    for (std::size_t i = 0; i < l.shape()[0]; ++i) {
        std::size_t best = 0;
        for (std::size_t c = 1; c < l.shape()[1]; ++c) best = l(i, c) > l(i, best) ? c : best;
        out[i] = static_cast<std::int64_t>(best);
    }
    return out;
}

template <class M, class X, class Y>
double accuracy(const M& model, const X& x, const Y& y_host) {
    const auto p = predictions(model, x);
    std::size_t right = 0;
    for (std::size_t i = 0; i < p.size(); ++i) right += p[i] == y_host(i);
    return 100.0 * double(right) / double(p.size());
}

/// FGSM with random start (one PGD step of 1.25 eps from a random point), mixed 50/50 with
/// the clean loss, plain SGD with momentum: written once for host and device models.
template <class M, class Opt, class Upload>
void train(M& model, Opt& opt, const tensor<float, 2>& x, const label_vector& y, std::size_t epochs,
           Upload upload) {
    const std::size_t batch = 128, n = x.shape()[0];
    auto params = model.parameters();
    typename M::cache_type clean, adv;
    detail::model_logits_t<M> logits, dlogits;
    for (std::size_t e = 0; e < epochs; ++e) {
        for (std::size_t first = 0; first + batch <= n; first += batch) {
            // The batch is formed on the host and crosses to the device once.
            const tensor<float, 2> xb = xt::view(x, xt::range(first, first + batch), xt::all());
            const label_vector yb = xt::view(y, xt::range(first, first + batch));
            const auto bx = upload(xb);
            const auto by = upload(yb);
            const auto xa =
                pgd(model, bx, by,
                    pgd_options{}.epsilon(0.1).steps(1).step_size(0.125).seed(first + e));
            model.zero_grad();
            model.forward(bx, clean, logits);
            cross_entropy_gradient(logits, by, dlogits, 0.5f);
            model.parameter_gradient(clean, dlogits);
            model.forward(xa, adv, logits);
            cross_entropy_gradient(logits, by, dlogits, 0.5f);
            model.parameter_gradient(adv, dlogits);
            opt.step(params, 0.05);
        }
    }
}

}  // namespace

TEST_CASE_TEMPLATE("the device L-inf random start is the host's, bit for bit", T, float, double) {
    cuda::mlp<T> gpu(mlp<T>({784, 16, 10}, 50));
    const auto [x, y] = synthetic<T>(16, 784, 51);
    const auto dy = cuda::to_device(y);
    for (const auto& domain : {input_domain{}, input_domain{}.normalization(0.4, 0.3)}) {
        const tensor<T, 2> x0 = domain.normalize(x);
        const auto dom = detail::resolve<T>("test", domain, x0.shape());
        const auto d0 = cuda::to_device(x0);
        const auto ddom = cuda::check_attack_inputs("test", gpu, d0, dy, domain);
        advaug::rng host_gen(11), device_gen(11);
        for (int restart = 0; restart < 2; ++restart) {  // each start takes a new key
            tensor<T, 2> h(x0.shape());
            detail::random_start(h, x0, dom, norm::linf, 0.1, host_gen);
            cuda::device_tensor<T, 2> d;
            cuda::random_start(d, d0, ddom, norm::linf, 0.1, device_gen);
            CHECK(cuda::to_host(d) == h);
        }
    }
}

TEST_CASE("PGD accuracy agrees within rounding, and GPU training reaches the CPU's accuracy") {
    const auto [x, y] = synthetic<float>(6400, 784, 11);
    const auto [xt_, yt] = synthetic<float>(2000, 784, 12);
    const auto opts = sgd_options{}.momentum(0.9);

    mlp<float> host({784, 256, 256, 10}, 13);
    cuda::mlp<float> gpu(host);
    sgd<float> host_opt(opts);
    cuda::sgd<float> gpu_opt(opts);
    train(host, host_opt, x, y, 2, [](const auto& t) { return t; });
    train(gpu, gpu_opt, x, y, 2, [](const auto& t) { return cuda::to_device(t); });

    const auto xt_dev = cuda::to_device(xt_);
    const auto yt_dev = cuda::to_device(yt);
    const double cpu_clean = accuracy(host, xt_, yt), gpu_clean = accuracy(gpu, xt_dev, yt);
    MESSAGE("clean accuracy after FGSM-RS training: CPU ", cpu_clean, "%, GPU ", gpu_clean, "%");
    CHECK(cpu_clean > 50);  // the task is learnable: the comparison means something
    // Independent runs (other random starts, other summation order): within one point.
    CHECK(gpu_clean >= cpu_clean - 1.0);

    // PGD on identical weights (the GPU model's, copied to the host) from identical starts (the
    // test case above): the two paths part only where the order of a GEMM's additions flips
    // the sign of a gradient component within rounding of zero, and a prediction changes only
    // if that carries the sample across a decision boundary. Calibration: on the CPU, this
    // model and these 2000 samples attacked with two summation orders (OpenBLAS, and advaug's
    // own GEMM with -DADVAUG_NO_BLAS) gave the same prediction for every sample, for each of
    // seeds 7 to 11. cuBLAS sums in other orders again, so 5 samples (0.25 points) may differ.
    // (The starts once came from another generator; with independent starts the accuracies
    // spread by up to sqrt(2 p (1 - p) / n) = 0.7 points at p = 5%, n = 2000, so the former
    // 0.5-point bound on the accuracies could fail by chance.)
    gpu.copy_to(host);
    const auto attack = pgd_options{}.epsilon(0.1).steps(10).seed(7);
    const auto cpu_pred = predictions(host, pgd(host, xt_, yt, attack));
    const auto gpu_pred = predictions(gpu, pgd(gpu, xt_dev, yt_dev, attack));
    std::size_t differ = 0, cpu_right = 0, gpu_right = 0;
    for (std::size_t i = 0; i < cpu_pred.size(); ++i) {
        differ += cpu_pred[i] != gpu_pred[i];
        cpu_right += cpu_pred[i] == yt(i);
        gpu_right += gpu_pred[i] == yt(i);
    }
    MESSAGE("PGD-10 accuracy at eps 0.1 on identical weights: CPU ", cpu_right / 20.0, "%, GPU ",
            gpu_right / 20.0, "%; predictions that differ: ", differ, " of ", cpu_pred.size());
    CHECK(differ <= 5);
}

TEST_CASE("AutoAttack on a device model through cuda::host_model gives the host model's result within rounding") {
    // Calibration on the CPU (the host model alone, this training and these samples, built with
    // ADVAUG_NO_BLAS as run_on_gpu.sh builds): clean 381 of 500, AutoAttack at eps 0.02 leaves
    // 231, so the comparison is neither all nor nothing. The device's GEMMs sum in another
    // order; on the CPU, every weight moved by about one float rounding (a factor 1 +- 2e-7,
    // random signs) changed no sample's outcome in three trials. 5 samples (1 point) may differ.
    const auto [x, y] = synthetic<float>(3200, 784, 11);
    const auto [xt_, yt] = synthetic<float>(500, 784, 12);
    mlp<float> host({784, 64, 10}, 21);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    train(host, opt, x, y, 1, [](const auto& t) { return t; });
    cuda::mlp<float> gpu(host);
    cuda::host_model view(gpu);
    static_assert(classifier<cuda::host_model<cuda::mlp<float>>>);
    static_assert(std::is_same_v<input_t<cuda::host_model<cuda::mlp<float>>>, tensor<float, 2>>);
    CHECK(view.num_classes() == 10);

    const auto opts = autoattack_options{}.epsilon(0.02).image_shape(1, 28, 28).seed(3);
    const auto on_host = autoattack(host, xt_, yt, opts);
    const auto on_device = autoattack(view, xt_, yt, opts);
    MESSAGE("AutoAttack at eps 0.02 on 500 samples: host model ", on_host.robust(), " of ", on_host.clean_correct(),
            ", device model through host_model ", on_device.robust(), " of ", on_device.clean_correct());
    CHECK(on_host.robust() > 0);
    CHECK(on_host.robust() < on_host.clean_correct());
    CHECK(on_device.attacks == on_host.attacks);
    CHECK(std::abs(double(on_device.clean_correct()) - double(on_host.clean_correct())) <= 1);
    CHECK(std::abs(double(on_device.robust()) - double(on_host.robust())) <= 5);
    double worst = 0, lo = 1, hi = 0;
    for (std::size_t i = 0; i < xt_.size(); ++i) {
        worst = std::max(worst, std::abs(double(on_device.adversarial.data()[i]) - double(xt_.data()[i])));
        lo = std::min(lo, double(on_device.adversarial.data()[i]));
        hi = std::max(hi, double(on_device.adversarial.data()[i]));
    }
    CHECK(worst <= 0.02 * (1 + 1e-6));
    CHECK(lo >= 0);
    CHECK(hi <= 1);
}

TEST_CASE("L2 PGD with restarts, BIM and FGM stay in the ball and the domain on the device") {
    mlp<float> host({784, 64, 10}, 21);
    cuda::mlp<float> gpu(host);
    const auto [x, y] = synthetic<float>(32, 784, 22);
    const auto dx = cuda::to_device(x);
    const auto dy = cuda::to_device(y);
    const double eps = 1.0;
    const auto l2 = pgd_options{}.norm(norm::l2).epsilon(eps).steps(5).restarts(3).seed(1);
    const auto a = host_of(pgd(gpu, dx, dy, l2));
    CHECK(host_of(pgd(gpu, dx, dy, l2)) == a);  // seeded: the same start on every run
    for (std::size_t s = 0; s < 32; ++s) {
        double r2 = 0;
        for (std::size_t d = 0; d < 784; ++d) r2 += std::pow(double(a(s, d)) - double(x(s, d)), 2);
        CHECK(std::sqrt(r2) <= eps * (1 + 1e-5));
    }
    CHECK(xt::amin(a)() >= 0.0f);
    CHECK(xt::amax(a)() <= 1.0f);
    // Without a random start, L2 PGD is deterministic: host and device take the same path
    // up to rounding of the gradient.
    const auto bim_opts = pgd_options{}.norm(norm::l2).epsilon(eps).steps(3).step_size(0.3);
    const auto hb = bim(host, x, y, bim_opts);
    const auto db = host_of(bim(gpu, dx, dy, bim_opts));
    CHECK(max_abs_diff(hb, db) <= 1e-3);
    const auto fgm_opts = fgm_options{}.epsilon(eps);
    CHECK(max_abs_diff(fgm(host, x, y, fgm_opts), host_of(fgm(gpu, dx, dy, fgm_opts))) <= 1e-4);
}

TEST_CASE("cuda::sgd takes advaug::sgd's steps and saves its state format") {
    mlp<float> host({784, 32, 10}, 23);
    cuda::mlp<float> gpu(host);
    const auto [x, y] = synthetic<float>(16, 784, 24);
    const auto opts = sgd_options{}.momentum(0.9).nesterov(true).weight_decay(1e-3);
    sgd<float> host_opt(opts);
    cuda::sgd<float> gpu_opt(opts);
    auto hp = host.parameters();
    auto dp = gpu.parameters();
    const auto dx = cuda::to_device(x);
    const auto dy = cuda::to_device(y);
    for (int step = 0; step < 3; ++step) {
        gradients(host, x, y);
        gradients(gpu, dx, dy);
        host_opt.step(hp, 0.1);
        gpu_opt.step(dp, 0.1);
    }
    mlp<float> back({784, 32, 10}, 0);
    gpu.copy_to(back);
    CHECK(max_abs_diff(host.dense_layer(0).weight(), back.dense_layer(0).weight()) <= 1e-5);
    io::binary_writer hw, dw;
    host_opt.save_state(hw);
    gpu_opt.save_state(dw);
    REQUIRE(hw.bytes().size() == dw.bytes().size());
    // A device state loads into a host optimizer (and the other way round).
    sgd<float> restored(opts);
    io::binary_reader r(dw.bytes().data(), dw.bytes().size(), "device state");
    restored.load_state(r, hp);
    CHECK(restored.step_count() == 3);
    cuda::sgd<float> gpu_restored(opts);
    io::binary_reader hr(hw.bytes().data(), hw.bytes().size(), "host state");
    gpu_restored.load_state(hr, dp);
    CHECK(gpu_restored.step_count() == 3);
}

TEST_CASE("device cross-entropy, its gradient and its label check match the host's") {
    auto logits = tensor<double, 2>::from_shape({7, 5});
    rng gen(41);
    for (auto& v : logits) v = 20 * (gen.uniform() - 0.5);  // large logits: the max shift matters
    label_vector y = {0, 1, 2, 3, 4, 0, 1};
    tensor<double, 2> host_grad;
    cuda::device_tensor<double, 2> dev_grad;
    const double host_loss = cross_entropy_gradient(logits, y, host_grad, 0.5);
    const auto dl = cuda::to_device(logits);
    const double dev_loss = cuda::cross_entropy_gradient(dl, cuda::to_device(y), dev_grad, 0.5);
    CHECK(dev_loss == doctest::Approx(host_loss).epsilon(1e-14));
    CHECK(max_abs_diff(host_grad, host_of(dev_grad)) <= 1e-15);
    CHECK(cuda::cross_entropy(dl, cuda::to_device(y)) == doctest::Approx(cross_entropy(logits, y)));
    y(4) = -1;
    CHECK_THROWS_WITH_AS(cuda::cross_entropy(dl, cuda::to_device(y)),
                         "cuda::cross_entropy(): labels[4] = -1 is outside [0, 5)",
                         std::invalid_argument);
}

TEST_CASE("a non-finite gradient on the device is the host's numeric_error") {
    mlp<float> host({784, 16, 10}, 42);
    cuda::mlp<float> gpu(host);
    auto views = gpu.parameters();
    std::vector<float> w(views[0].value.size(), 0.0f);
    w[3] = std::numeric_limits<float>::quiet_NaN();
    write_parameter(gpu, views[0], std::span<const float>(w));
    const auto [x, y] = synthetic<float>(4, 784, 43);
    CHECK_THROWS_WITH_AS(
        fgsm(gpu, cuda::to_device(x), cuda::to_device(y), fgsm_options{}.epsilon(0.1)),
        doctest::Contains("fgsm(): the input gradient is nan at sample 0, element 3"),
        numeric_error);
}

TEST_CASE("the trainer stops at a non-finite attack gradient on the device as on the host") {
    // A NaN weight into hidden unit 0 from input 3: ReLU maps the unit's NaN to 0, so the
    // logits and the loss stay finite, and only the input gradient of element 3 is NaN.
    mlp<float> host({784, 16, 10}, 44);
    std::vector<float> w(host.parameters()[0].value.size(), 0.0f);
    w[3] = std::numeric_limits<float>::quiet_NaN();
    detail::write_parameter(host, host.parameters()[0], std::span<const float>(w));
    cuda::mlp<float> gpu(host);
    const auto [x, y] = synthetic<float>(8, 784, 45);
    const dataset<float> data(std::vector<float>(x.begin(), x.end()), {784}, y, 10);
    std::ostringstream sink;
    const auto opts = train_options{}
                          .method(training_method::fgsm_rs)
                          .epsilon(0.1)
                          .epochs(1)
                          .batch_size(4)
                          .learning_rate(lr_schedule::constant(0.05))
                          .seed(5)
                          .progress(progress_style::none)
                          .output(sink);
    const std::string expected =
        "trainer::fit(): at epoch 1, batch 1: trainer::compute_gradient(): "
        "the input gradient is nan at sample 0, element 3";
    sgd<float> host_opt(sgd_options{});
    CHECK_THROWS_WITH_AS(trainer(host, host_opt, opts).fit(data),
                         doctest::Contains(expected.c_str()), numeric_error);
    cuda::sgd<float> gpu_opt(sgd_options{});
    trainer<cuda::mlp<float>, cuda::sgd<float>> device_trainer(gpu, gpu_opt, opts);
    CHECK_THROWS_WITH_AS(device_trainer.fit(data), doctest::Contains(expected.c_str()),
                         numeric_error);
}

TEST_CASE("the trainer trains a device model as it trains the host model") {
    const auto [x, y] = synthetic<float>(6400, 784, 31);
    const auto [xv, yv] = synthetic<float>(2000, 784, 32);
    const dataset<float> train_set(std::vector<float>(x.begin(), x.end()), {784}, y, 10);
    const dataset<float> val_set(std::vector<float>(xv.begin(), xv.end()), {784}, yv, 10);
    std::ostringstream sink;
    const auto opts = train_options{}
                          .method(training_method::fgsm_rs)
                          .epsilon(0.1)
                          .epochs(2)
                          .batch_size(128)
                          .learning_rate(lr_schedule::constant(0.05))
                          .seed(5)
                          .progress(progress_style::none)
                          .output(sink);
    mlp<float> host({784, 256, 256, 10}, 33);
    cuda::mlp<float> gpu(host);
    sgd<float> host_opt(sgd_options{}.momentum(0.9));
    cuda::sgd<float> gpu_opt(sgd_options{}.momentum(0.9));
    trainer(host, host_opt, opts).fit(train_set, &val_set);
    // The same trainer template: batches are formed on the host and uploaded once each.
    trainer<cuda::mlp<float>, cuda::sgd<float>> device_trainer(gpu, gpu_opt, opts);
    const auto result = device_trainer.fit(train_set, &val_set);
    REQUIRE(result.epochs.size() == 2);
    const double cpu = accuracy(host, xv, yv), gpu_acc = accuracy(gpu, cuda::to_device(xv), yv);
    MESSAGE("trainer, FGSM-RS, clean accuracy: CPU ", cpu, "%, GPU ", gpu_acc, "%");
    CHECK(cpu > 50);
    CHECK(gpu_acc >= cpu - 1.0);
    // A device model's checkpoint holds its weights and resumes.
    const std::string path = "cuda_trainer_checkpoint.bin";
    device_trainer.save_checkpoint(path);
    cuda::mlp<float> other(mlp<float>({784, 256, 256, 10}, 34));
    cuda::sgd<float> other_opt(sgd_options{}.momentum(0.9));
    trainer<cuda::mlp<float>, cuda::sgd<float>> resumed(other, other_opt, opts);
    resumed.resume(path);
    CHECK(accuracy(other, cuda::to_device(xv), yv) == gpu_acc);
    std::remove(path.c_str());
}

TEST_CASE("device argument errors match the host's messages") {
    mlp<float> host({784, 16, 10}, 1);
    cuda::mlp<float> gpu(host);
    auto [x, y] = synthetic<float>(4, 784, 2);
    y(2) = 10;
    const auto opts = fgsm_options{}.epsilon(0.1);
    CHECK_THROWS_WITH_AS(fgsm(gpu, cuda::to_device(x), cuda::to_device(y), opts),
                         "fgsm(): labels[2] = 10 is outside [0, 10)", std::invalid_argument);
    y(2) = 1;
    x(1, 5) = 2.0f;
    CHECK_THROWS_WITH_AS(fgsm(gpu, cuda::to_device(x), cuda::to_device(y), opts),
                         doctest::Contains("fgsm(): inputs[1] element 5 = 2 lies outside"),
                         std::invalid_argument);
    const tensor<float, 2> wrong = xt::zeros<float>({4, 10});
    CHECK_THROWS_WITH_AS(
        fgsm(gpu, cuda::to_device(wrong), cuda::to_device(y), opts),
        doctest::Contains("fgsm(): cuda::mlp::forward(): inputs have shape [4, 10]"),
        std::invalid_argument);
}

int main(int argc, char** argv) {
    try {
        if (!cuda::device_available()) {
            std::puts("no CUDA device: the CPU-versus-GPU tests are skipped");
            return 77;
        }
    } catch (const cuda::cuda_error& e) {
        // A GPU machine whose driver cannot run is a failure, never a skip.
        std::fprintf(stderr, "CUDA cannot run here: %s\n", e.what());
        return 1;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
