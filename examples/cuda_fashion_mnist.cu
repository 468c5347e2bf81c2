// cuda_fashion_mnist.cu: the main example's recipe (examples/fashion_mnist_ada.cpp) on a GPU.
//
// Train the bundled MLP 784-256-256-10 (or, with --model cnn, the bundled CNN) on
// Fashion-MNIST twice from the same initial weights, plainly and with FGSM with random start
// (Wong, Rice and Kolter 2020: start ~ U(-eps, eps), one step of 1.25 eps, projected; alpha 1),
// then compare both on the test set: clean, under FGSM and PGD-20 at eps 0.1, under Gaussian
// noise and under a brightness shift.
//
// What changes against the CPU program is the model type and where the batches live:
//   - advaug::cuda::mlp<float> is built from an advaug::mlp<float> (same weights);
//   - advaug::trainer is the same template: it forms each batch on the host and uploads it
//     once, and its attack runs on the device;
//   - the attacks are the library's own fgsm()/pgd() templates, which run on the device
//     because their element-wise work is found for cuda::device_tensor (docs/cuda.md);
//   - cuda::sgd takes the optimizer step on the device.
//
//   cuda_fashion_mnist [--model mlp|cnn] [--epochs N] [--quick] [--data DIR]
//
// --quick trains 1 epoch on 10,000 images and evaluates 2,000. Without a CUDA device the
// program says so and exits with status 77.
//
// Build (CMake does this when it finds the CUDA toolkit, see docs/cuda.md):
//   nvcc -std=c++20 -O2 -arch=sm_90 -Iinclude examples/cuda_fashion_mnist.cu \
//        -o cuda_fashion_mnist -lcublas -lcurand -lopenblas -lz -lzip

#include <advaug/cuda/cuda.hpp>
#include <advaug/data/dataset.hpp>
#include <advaug/data/idx.hpp>
#include <advaug/models/cnn.hpp>
#include <advaug/models/mlp.hpp>
#include <advaug/training/trainer.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <numeric>
#include <string>
#include <vector>

namespace cuda = advaug::cuda;

struct settings {
    std::string model = "mlp";
    std::string data_dir = advaug::default_fashion_mnist_dir();
    std::size_t epochs = 5, train_samples = 60'000, test_samples = 10'000, batch = 128;
    double eps = 0.1, lr = 0.05;
};

// ---------------------------------------------------------------------------------------------
// Test batches: formed on the host, uploaded once each.
// ---------------------------------------------------------------------------------------------

// The MLP reads rows of 784 pixels, the CNN 1x28x28 images: the same bytes in another shape.
template <std::size_t R>
advaug::tensor<float, R> pixels(const advaug::tensor<std::uint8_t, 3>& images,
                                const std::vector<std::size_t>& index, std::size_t first,
                                std::size_t count) {
    std::array<std::size_t, R> shape{};
    if constexpr (R == 2)
        shape = {count, 784};
    else
        shape = {count, 1, 28, 28};
    auto x = advaug::tensor<float, R>::from_shape(shape);
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint8_t* src = images.data() + index[first + i] * 784;
        for (std::size_t j = 0; j < 784; ++j) x.data()[i * 784 + j] = src[j] / 255.0f;
    }
    return x;
}

advaug::label_vector labels(const advaug::label_vector& all, const std::vector<std::size_t>& index,
                            std::size_t first, std::size_t count) {
    auto y = advaug::label_vector::from_shape({count});
    for (std::size_t i = 0; i < count; ++i) y(i) = all(index[first + i]);
    return y;
}

// ---------------------------------------------------------------------------------------------
// Training: advaug::trainer, the main example's trainer, with a device model and optimizer.
// ---------------------------------------------------------------------------------------------

template <class Model>
void train(Model& model, const advaug::fashion_mnist& data, const settings& s, bool adversarial) {
    // The training set stays on the host as bytes; the trainer forms each shuffled batch there
    // and uploads it once. The CNN reads 1x28x28 images, the MLP rows of 784 pixels.
    const advaug::tensor<std::uint8_t, 3> images =
        xt::view(data.train_images, xt::range(0, s.train_samples), xt::all(), xt::all());
    const advaug::label_vector train_labels =
        xt::view(data.train_labels, xt::range(0, s.train_samples));
    const auto train_set = advaug::dataset<std::uint8_t>::from_images(images, train_labels, 10,
                                                                      Model::input_rank == 4);
    auto options = advaug::train_options{}
                       .learning_rate(advaug::lr_schedule::constant(s.lr))
                       .epochs(s.epochs)
                       .batch_size(s.batch)
                       .seed(0)
                       .log_every(0);
    // FGSM with random start (start ~ U(-eps, eps), one step of 1.25 eps, projected; alpha 1).
    if (adversarial) options.method(advaug::training_method::fgsm_rs).epsilon(s.eps);
    // SGD with momentum 0.9 on the device: the parameter views point to device memory.
    cuda::sgd<float> optimizer(advaug::sgd_options{}.momentum(0.9));
    advaug::trainer<Model, cuda::sgd<float>> trainer(model, optimizer, options);
    const auto result = trainer.fit(train_set);
    double seconds = 0, samples_per_second = 0;
    for (const auto& e : result.epochs) {
        seconds += e.seconds;
        samples_per_second = e.samples_per_second;
    }
    std::printf("  %.1f s, %.0f samples/s in the last epoch\n", seconds, samples_per_second);
}

// ---------------------------------------------------------------------------------------------
// Evaluation: accuracy on test batches of 1,000, clean and under attacks and shifts.
// ---------------------------------------------------------------------------------------------

template <class Model, class Transform>
double accuracy(const Model& model, const advaug::fashion_mnist& data, const settings& s,
                Transform transform) {
    constexpr std::size_t R = Model::input_rank;
    std::vector<std::size_t> order(s.test_samples);
    std::iota(order.begin(), order.end(), std::size_t{0});
    typename Model::cache_type cache;
    cuda::device_tensor<float, 2> logits;
    std::size_t right = 0;
    for (std::size_t first = 0; first < s.test_samples; first += 1000) {
        const std::size_t count = std::min<std::size_t>(1000, s.test_samples - first);
        auto host_x = pixels<R>(data.test_images, order, first, count);
        const auto host_y = labels(data.test_labels, order, first, count);
        const auto y = cuda::to_device(host_y);
        const auto x = transform(host_x, y, first);
        model.forward(x, cache, logits);
        const auto l = cuda::to_host(logits);
        for (std::size_t i = 0; i < count; ++i) {
            std::size_t best = 0;
            for (std::size_t c = 1; c < 10; ++c) best = l(i, c) > l(i, best) ? c : best;
            right += static_cast<std::int64_t>(best) == host_y(i);
        }
    }
    return 100.0 * double(right) / double(s.test_samples);
}

template <class Model>
std::vector<double> evaluate(const Model& model, const advaug::fashion_mnist& data,
                             const settings& s) {
    const auto fgsm = advaug::fgsm_options{}.epsilon(s.eps);
    const auto pgd = advaug::pgd_options{}.epsilon(s.eps).steps(20).seed(7);
    // Host-side shifts of the raw pixels, clipped to [0, 1], uploaded once per batch.
    auto shifted = [](double noise_sigma, double brightness) {
        return [=](auto x, const cuda::device_labels&, std::size_t first) {
            advaug::rng gen(first + 17);
            for (auto& v : x) {
                const double shifted = v + brightness + noise_sigma * gen.normal();
                v = static_cast<float>(std::min(1.0, std::max(0.0, shifted)));
            }
            return cuda::to_device(x);
        };
    };
    return {
        accuracy(model, data, s,
                 [](const auto& x, const auto&, std::size_t) { return cuda::to_device(x); }),
        accuracy(model, data, s,
                 [&](const auto& x, const cuda::device_labels& y, std::size_t) {
                     return advaug::fgsm(model, cuda::to_device(x), y, fgsm);
                 }),
        accuracy(model, data, s,
                 [&](const auto& x, const cuda::device_labels& y, std::size_t) {
                     return advaug::pgd(model, cuda::to_device(x), y, pgd);
                 }),
        accuracy(model, data, s, shifted(0.1, 0.0)),
        accuracy(model, data, s, shifted(0.0, 0.2)),
    };
}

template <class HostModel, class Model>
void run(const HostModel& initial, const advaug::fashion_mnist& data, const settings& s) {
    std::vector<std::vector<double>> results;
    for (bool adversarial : {false, true}) {
        std::printf("training the %s %s on the GPU:\n", adversarial ? "FGSM-RS" : "plain",
                    s.model.c_str());
        Model model(initial);  // both start from the same weights
        train(model, data, s, adversarial);
        model.set_mode(advaug::mode::eval);
        results.push_back(evaluate(model, data, s));
    }
    const char* rows[] = {"clean", "FGSM eps 0.1", "PGD-20 eps 0.1", "Gaussian noise 0.1",
                          "brightness +0.2"};
    std::printf("\n%-20s %10s %10s\n", "test accuracy (%)", "plain", "FGSM-RS");
    for (std::size_t r = 0; r < 5; ++r) {
        std::printf("%-20s %10.2f %10.2f\n", rows[r], results[0][r], results[1][r]);
    }
}

int main(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--quick") {
            s.epochs = 1;
            s.train_samples = 10'000;
            s.test_samples = 2'000;
        } else if (a == "--model" && i + 1 < argc) {
            s.model = argv[++i];
        } else if (a == "--epochs" && i + 1 < argc) {
            s.epochs = std::strtoul(argv[++i], nullptr, 10);
        } else if (a == "--data" && i + 1 < argc) {
            s.data_dir = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: %s [--model mlp|cnn] [--epochs N] [--quick] [--data DIR]\n",
                         argv[0]);
            return 2;
        }
    }
    if (s.model != "mlp" && s.model != "cnn") {
        std::fprintf(stderr, "cuda_fashion_mnist: --model must be mlp or cnn, got '%s'\n",
                     s.model.c_str());
        return 2;
    }
    try {
        // false only when there is no device; a broken or too old driver throws cuda_error
        if (!cuda::device_available()) {
            std::puts("cuda_fashion_mnist: no CUDA device");
            return 77;
        }
        const advaug::fashion_mnist data = advaug::load_fashion_mnist(s.data_dir);
        if (s.model == "mlp") {
            // PyTorch's nn.Linear initialization, as the main example uses by default.
            const advaug::mlp<float> initial({784, 256, 256, 10}, 0,
                                             advaug::weight_init::pytorch_default);
            run<advaug::mlp<float>, cuda::mlp<float>>(initial, data, s);
        } else {
            const advaug::cnn<float> initial(0, advaug::weight_init::pytorch_default);
            run<advaug::cnn<float>, cuda::cnn<float>>(initial, data, s);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cuda_fashion_mnist: %s\n", e.what());
        return 1;
    }
    return 0;
}
