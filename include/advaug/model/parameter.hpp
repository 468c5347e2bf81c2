// A view of one trainable parameter tensor and its gradient, as optimizers see it.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace advaug {

/// One parameter tensor of a model, flattened.
///   `value` and `grad` alias the model's storage and have the same size; `shape` is the
///   tensor's logical shape (row-major); `name` is unique within the model ("0.weight").
///   Views stay valid as long as the model is alive and its parameter storage is never
///   reallocated. Update parameters in place (element loops, xt::noalias(w) += ...): in
///   xtensor, `w += expression` may build a new buffer and swap it in, which leaves every
///   view of w dangling.
template <class T>
struct parameter_view {
    std::string name;
    std::vector<std::size_t> shape;
    std::span<T> value;
    std::span<T> grad;
};

}  // namespace advaug
