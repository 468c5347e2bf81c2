// The evaluation tests' ten-sample fixture: ten 2-feature samples in 2 classes and the identity
// model that classifies them, with a known set of mistakes.
#pragma once

#include <advaug/data/dataset.hpp>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "labels.hpp"
#include "models.hpp"

namespace advaug::testing {

// Ten 2-feature samples for a model whose logits are the features themselves (W = I, b = 0):
// it predicts the larger feature, ties going to class 0. Samples 5, 6 and 7 are wrong.
inline const std::vector<float> ten_features = {1,    0,    0, 1, 2, 1, 1, 3, 0.5f, 0.5f,
                                                0.5f, 0.5f, 3, 0, 0, 3, 4, 1, 1,    2};
inline const std::vector<std::int64_t> ten_labels = {0, 1, 0, 1, 0, 1, 1, 0, 0, 1};

/// The ten samples, each of the given shape (two features in all).
inline dataset<float> ten_samples(std::vector<std::size_t> shape = {2}) {
    return dataset<float>(ten_features, std::move(shape), labels_of(ten_labels), 2);
}

/// The linear model with W = I and b = 0 on two features: its logits are the features.
inline linear_model<double> identity_model(std::size_t classes = 2) {
    linear_model<double> model(2, classes, 1);
    model.w.fill(0.0);
    model.b.fill(0.0);
    for (std::size_t k = 0; k < 2; ++k) model.w(k, k) = 1.0;
    return model;
}

}  // namespace advaug::testing
