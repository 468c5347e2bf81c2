// Samples per second of FGSM adversarial training of the MLP 784-256-256-10 on the GPU, the
// seed's recipe (alpha 0.5, eps 0.1, SGD with momentum 0.9), at the batch sizes given
// (default 128 and 1024). bench_fgsm_training.py measures PyTorch on the same GPU with the
// same recipe; run_on_gpu.sh runs both. Not part of the default build (CI compiles it only on
// request: `cmake --build ... --target bench_fgsm_training`).
//
// Both sides keep a pool of synthetic batches on the device, so the figure is the training
// step itself, not the host-to-device copy. One step, with no host synchronization inside:
//   forward(x), dCE/dlogits, input gradient       (the attack's pass, also the clean half)
//   0.5 * parameter gradient of the clean loss
//   x_adv = clip(x + eps * sign(g))               (one fused kernel)
//   forward(x_adv), 0.5 * parameter gradient      (the adversarial half)
//   SGD step
#include <advaug/cuda/cuda.hpp>
#include <advaug/models/mlp.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace cuda = advaug::cuda;

static double samples_per_second(std::size_t batch, std::size_t steps) {
    const char* fn = "bench";
    advaug::mlp<float> host({784, 256, 256, 10}, 0, advaug::weight_init::pytorch_default);
    cuda::mlp<float> model(host);
    cuda::sgd<float> opt(advaug::sgd_options{}.momentum(0.9));
    auto params = model.parameters();

    // A pool of 8 batches of uniform pixels and cyclic labels, resident on the device.
    std::vector<cuda::device_tensor<float, 2>> xs;
    std::vector<cuda::device_labels> ys;
    advaug::rng gen(1);
    for (int b = 0; b < 8; ++b) {
        auto x = advaug::tensor<float, 2>::from_shape({batch, 784});
        for (auto& v : x) v = static_cast<float>(gen.uniform());
        auto y = advaug::label_vector::from_shape({batch});
        for (std::size_t i = 0; i < batch; ++i) y(i) = static_cast<std::int64_t>((i + b) % 10);
        xs.push_back(cuda::to_device(x));
        ys.push_back(cuda::to_device(y));
    }
    const auto dom = cuda::check_attack_inputs(fn, model, xs[0], ys[0], advaug::input_domain{});
    cuda::mlp<float>::cache_type clean, adv;
    cuda::device_tensor<float, 2> logits, dlogits, grad, x_adv;
    const float eps = 0.1f;

    auto step = [&](std::size_t k) {
        const auto& x = xs[k % 8];
        const auto& y = ys[k % 8];
        model.zero_grad();
        model.forward(x, clean, logits);
        cuda::attack_loss_gradient(fn, logits, y, dlogits);
        model.input_gradient(clean, dlogits, grad);
        cuda::scale_in_place(dlogits, 0.5f);
        model.parameter_gradient(clean, dlogits);
        cuda::copy_tensor(x_adv, x);
        cuda::linf_step(fn, x_adv, x, grad, dom, eps, eps, 1.0f);
        model.forward(x_adv, adv, logits);
        cuda::attack_loss_gradient(fn, logits, y, dlogits);
        cuda::scale_in_place(dlogits, 0.5f);
        model.parameter_gradient(adv, dlogits);
        opt.step(params, 0.05);
    };
    const cuda::context& ctx = cuda::context::get(fn);
    for (std::size_t k = 0; k < 20; ++k) step(k);  // warm-up: allocations, cuBLAS heuristics
    ctx.synchronize(fn);
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t k = 0; k < steps; ++k) step(k);
    ctx.synchronize(fn);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    cuda::check_gradients_finite(fn, dom);
    return double(batch * steps) / s;
}

int main(int argc, char** argv) {
    try {
        if (!cuda::device_available()) {
            std::puts("bench_fgsm_training: no CUDA device");
            return 77;
        }
    } catch (const cuda::cuda_error& e) {
        std::fprintf(stderr, "bench_fgsm_training: %s\n", e.what());
        return 1;
    }
    std::vector<std::size_t> batches;
    for (int i = 1; i < argc; ++i) batches.push_back(std::strtoul(argv[i], nullptr, 10));
    if (batches.empty()) batches = {128, 1024};
    for (std::size_t b : batches) {
        const std::size_t steps = b >= 1024 ? 300 : 1000;
        std::printf("advaug cuda: FGSM training, MLP 784-256-256-10, batch %zu: %.0f samples/s\n",
                    b, samples_per_second(b, steps));
    }
    return 0;
}
