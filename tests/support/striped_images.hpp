// 8 x 8 grey images whose class is where the bright line is (a row, a column, the diagonal),
// and full-batch training of a small model on them: a data set on which a linear model is
// accurate, that rotations by 90 degrees turn from one class into another.
#pragma once

#include <advaug/advaug.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace advaug::testing {

/// 240 grey 8 x 8 images in 3 classes (a bright row, a bright column, the diagonal) with noise.
inline dataset<std::uint8_t> striped_images(std::size_t n = 240) {
    const std::size_t side = 8, k = 3;
    rng gen(11);
    std::vector<std::uint8_t> f(n * side * side);
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = i % k, at = 1 + (i / k) % 6;
        y(i) = static_cast<std::int64_t>(c);
        for (std::size_t r = 0; r < side; ++r)
            for (std::size_t q = 0; q < side; ++q) {
                const bool on = c == 0 ? r == at : c == 1 ? q == at : r == q;
                const double v = (on ? 190.0 : 50.0) + 40.0 * gen.normal();
                f[i * side * side + r * side + q] =
                    static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
            }
    }
    return dataset<std::uint8_t>(std::move(f), {side * side}, y, k, 1.0 / 255.0);
}

/// Full-batch gradient descent on the cross-entropy; leaves the model in train mode.
template <class M>
void train_linear(M& model, const dataset<std::uint8_t>& data, int steps, float lr) {
    model.set_mode(mode::train);
    const auto [x, y] = data.slice<float, 2>(0, data.size());
    typename M::cache_type cache;
    tensor<float, 2> logits, g;
    for (int step = 0; step < steps; ++step) {
        model.zero_grad();
        model.forward(x, cache, logits);
        cross_entropy_gradient(logits, y, g);
        model.parameter_gradient(cache, g);
        for (auto& p : model.parameters()) {
            for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= lr * p.grad[i];
        }
    }
}

}  // namespace advaug::testing
