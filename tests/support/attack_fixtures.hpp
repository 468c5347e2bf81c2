// Fixtures of the APGD, Square and AutoAttack tests: a small MLP trained on separable
// synthetic data (so that attacks have correctly classified samples to break), Fashion-MNIST
// when it is installed, and per-sample measurements of an attack's result.
#pragma once

#include <advaug/advaug.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <optional>
#include <span>
#include <vector>

#include "fashion_mnist.hpp"
#include "models.hpp"

namespace advaug::testing {

/// `rows` samples of `classes` Gaussian blobs in [0, 1]^features, labels cycling.
template <class T>
struct blobs {
    tensor<T, 2> x;
    label_vector y;
};

template <class T>
blobs<T> make_blobs(std::size_t rows, std::size_t features, std::size_t classes, std::uint64_t seed,
                    double spread = 0.12) {
    rng gen(seed);
    std::vector<double> centers(classes * features);
    for (auto& c : centers) c = gen.uniform(0.2, 0.8);
    blobs<T> b{tensor<T, 2>::from_shape({rows, features}), cyclic_labels(rows, classes)};
    for (std::size_t n = 0; n < rows; ++n) {
        const auto k = static_cast<std::size_t>(b.y(n));
        for (std::size_t d = 0; d < features; ++d) {
            const double v = centers[k * features + d] + spread * gen.normal();
            b.x(n, d) = static_cast<T>(std::clamp(v, 0.0, 1.0));
        }
    }
    return b;
}

/// An MLP trained by full-batch SGD on x, y.
template <class T>
mlp<T> train_mlp(const tensor<T, 2>& x, const label_vector& y, std::vector<std::size_t> widths,
                 int steps, double lr, std::uint64_t seed = 3) {
    mlp<T> net(std::move(widths), seed);
    typename mlp<T>::cache_type c;
    tensor<T, 2> logits, g;
    for (int s = 0; s < steps; ++s) {
        net.zero_grad();
        net.forward(x, c, logits);
        cross_entropy_gradient(logits, y, g);
        net.parameter_gradient(c, g);
        for (auto& p : net.parameters())
            for (std::size_t i = 0; i < p.value.size(); ++i)
                p.value[i] -= static_cast<T>(lr) * p.grad[i];
    }
    return net;
}

/// The blobs problem of the attack tests: 10 classes, 20 features, an MLP 20-32-10.
template <class T>
struct blob_problem {
    blobs<T> data = make_blobs<T>(200, 20, 10, 11);
    mlp<T> net = train_mlp<T>(data.x, data.y, {20, 32, 10}, 300, 0.5);
};

template <class M, class T, std::size_t R>
tensor<T, 2> logits_of(const M& model, const tensor<T, R>& x) {
    typename M::cache_type c;
    tensor<T, 2> logits;
    model.forward(x, c, logits);
    return logits;
}

/// Per sample: does the model predict y at x (first largest logit)?
template <class M, class T, std::size_t R>
std::vector<bool> correct(const M& model, const tensor<T, R>& x, const label_vector& y) {
    const auto z = logits_of(model, x);
    std::vector<bool> ok(y.size());
    for (std::size_t n = 0; n < y.size(); ++n) {
        std::size_t best = 0;
        for (std::size_t k = 1; k < z.shape()[1]; ++k)
            if (z(n, k) > z(n, best)) best = k;
        ok[n] = best == static_cast<std::size_t>(y(n));
    }
    return ok;
}

inline std::size_t count(const std::vector<bool>& v) {
    return static_cast<std::size_t>(std::count(v.begin(), v.end(), true));
}

/// Largest per-sample raw L2 distance (unit normalization).
template <class T, std::size_t R>
double max_l2_distance(const tensor<T, R>& a, const tensor<T, R>& b) {
    const std::size_t n = a.shape()[0], d_size = a.size() / n;
    double worst = 0;
    for (std::size_t s = 0; s < n; ++s) {
        double sum = 0;
        for (std::size_t d = 0; d < d_size; ++d) {
            const double v = static_cast<double>(a.data()[s * d_size + d]) -
                             static_cast<double>(b.data()[s * d_size + d]);
            sum += v * v;
        }
        worst = std::max(worst, std::sqrt(sum));
    }
    return worst;
}

template <class T, std::size_t R>
bool in_unit_box(const tensor<T, R>& x) {
    return xt::amin(x)() >= T(0) && xt::amax(x)() <= T(1);
}

/// Fashion-MNIST's test set split into a training part and an attacked part, pixels in [0, 1],
/// with an MLP 784-64-10 trained on the first part (a few seconds); nullopt if not installed.
struct fashion_problem {
    tensor<float, 2> x_train, x_test;
    label_vector y_train, y_test;
    mlp<float> net{{784, 64, 10}, 1};
};

inline std::optional<fashion_problem> load_fashion_problem(std::size_t n_train,
                                                           std::size_t n_test) {
    const auto dir = fashion_mnist_test_set();
    if (!dir) return std::nullopt;
    const auto all = dataset<std::uint8_t>::from_images(
        read_idx_images((*dir / "t10k-images-idx3-ubyte.gz").string()),
        read_idx_labels((*dir / "t10k-labels-idx1-ubyte.gz").string()), 10, false);
    std::vector<std::size_t> train_idx(n_train), test_idx(n_test);
    std::iota(train_idx.begin(), train_idx.end(), 0);
    std::iota(test_idx.begin(), test_idx.end(), 5000);
    fashion_problem p;
    all.batch(std::span<const std::size_t>(train_idx), p.x_train, p.y_train);
    all.batch(std::span<const std::size_t>(test_idx), p.x_test, p.y_test);
    // SGD, batches of 100, 8 epochs.
    p.net.set_mode(mode::train);
    mlp<float>::cache_type cache;
    tensor<float, 2> x, logits, g;
    label_vector y;
    std::vector<std::size_t> idx(100);
    for (int epoch = 0; epoch < 8; ++epoch) {
        for (std::size_t first = 0; first + 100 <= n_train; first += 100) {
            std::iota(idx.begin(), idx.end(), first);
            all.batch(std::span<const std::size_t>(idx), x, y);
            p.net.zero_grad();
            p.net.forward(x, cache, logits);
            cross_entropy_gradient(logits, y, g);
            p.net.parameter_gradient(cache, g);
            for (auto& prm : p.net.parameters())
                for (std::size_t i = 0; i < prm.value.size(); ++i)
                    prm.value[i] -= 0.2f * prm.grad[i];
        }
    }
    p.net.set_mode(mode::eval);
    return p;
}

}  // namespace advaug::testing
