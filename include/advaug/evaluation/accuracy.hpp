// Classification accuracy of a model on a dataset: clean, under attack, or under a transform.
//
// Every function walks the dataset in order, in batches of `batch_size` (the last one may be
// smaller), with the model in eval mode for the duration (restored afterwards, also on an
// exception), and returns the fraction of samples whose argmax logit is the label, in [0, 1].
// The batch, logits and cache buffers are reused from one batch to the next.
//
// The prediction is the first maximal logit, so ties go to the lowest class. A non-finite
// logit is an error (numeric_error), not a silent misprediction.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/data/dataset.hpp"
#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/static_checks.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// Number of rows whose first maximal logit is at column y(row).
/// requires: logits [N, K] with K >= 1 and finite values; y.size() == N, labels in [0, K).
/// throws:   std::invalid_argument for shapes or labels, numeric_error for a non-finite logit.
template <class T>
std::size_t count_correct(const tensor<T, 2>& logits, const label_vector& y);

/// Clean accuracy.
/// requires: M is a classifier (model/classifier.hpp) whose input_rank == data.batch_rank();
///           data.num_classes() <= model.num_classes(); batch_size >= 1.
/// ensures:  the model's mode is as before the call.
template <class M, class S>
double accuracy(M& model, const dataset<S>& data, std::size_t batch_size = 500);

/// Accuracy on adversarial batches: each batch (x, y) is replaced by attack(model, x, y),
/// e.g. [&](const auto& m, const auto& x, const auto& y) { return fgsm(m, x, y, options); }.
/// The attack runs in eval mode too. Every sample counts, also those already misclassified.
/// requires: as accuracy(); attack returns a tensor<value_type, input_rank> of x's shape.
template <class M, class S, class Attack>
double robust_accuracy(M& model, const dataset<S>& data, Attack&& attack,
                       std::size_t batch_size = 500);

/// Accuracy on transformed batches: f(x, batch_index) modifies each batch x in place
/// (noise, a brightness shift, ...); batch_index counts 0, 1, 2, ... in dataset order.
/// requires: as accuracy(); f keeps x's shape.
template <class M, class S, class Transform>
double transformed_accuracy(M& model, const dataset<S>& data, Transform&& f,
                            std::size_t batch_size = 500);

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail {

/// The first maximal logit of `row` (k logits of sample i): ties go to the lowest class, and a
/// non-finite logit is a numeric_error naming fn, the class and the sample.
template <class T>
std::size_t predicted_class(const char* fn, const T* row, std::size_t k, std::size_t i) {
    std::size_t best = 0;
    for (std::size_t c = 0; c < k; ++c) {
        if (!std::isfinite(row[c])) {
            throw numeric_error(concat(fn, "(): logit ", c, " of sample ", i, " is ", row[c],
                                       "; the model produced a non-finite value"));
        }
        if (row[c] > row[best]) best = c;
    }
    return best;
}

template <class T>
std::size_t count_correct(const char* fn, const tensor<T, 2>& logits, const label_vector& y) {
    const std::size_t n = logits.shape()[0], k = logits.shape()[1];
    if (k == 0 && n > 0) {
        invalid(fn, "logits has no classes (shape ", shape_string(logits.shape()), ")");
    }
    check_labels(fn, y, n, k);
    std::size_t correct = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t best = predicted_class(fn, logits.data() + i * k, k, i);
        if (static_cast<std::int64_t>(best) == y(i)) ++correct;
    }
    return correct;
}

/// Runs the shared loop: per batch, `prepare(x, y, batch_index)` returns the input to
/// classify (x itself, or an attacked copy). Returns the fraction correct.
template <class M, class S, class Prepare>
double evaluate(const char* fn, M& model, const dataset<S>& data, std::size_t batch_size,
                Prepare&& prepare) {
    if (batch_size == 0) invalid(fn, "batch_size must be >= 1, got 0");
    if (data.batch_rank() != M::input_rank) {
        invalid(fn, "the model takes inputs of rank ", M::input_rank,
                ", but the dataset's samples of shape ", shape_string(data.sample_shape()),
                " make batches of rank ", data.batch_rank());
    }
    if (data.num_classes() > model.num_classes()) {
        invalid(fn, "the dataset has ", data.num_classes(), " classes but the model only ",
                model.num_classes(), " logits");
    }
    const mode_guard<M> guard(model, mode::eval);

    const std::size_t n = data.size();
    std::vector<std::size_t> indices(std::min(batch_size, n));
    input_t<M> x;
    label_vector y;
    logits_t<M> logits;
    typename M::cache_type cache;
    std::size_t correct = 0;
    for (std::size_t first = 0, b = 0; first < n; first += batch_size, ++b) {
        const std::size_t count = std::min(batch_size, n - first);
        std::iota(indices.begin(), indices.begin() + static_cast<std::ptrdiff_t>(count), first);
        data.batch(std::span<const std::size_t>(indices.data(), count), x, y);
        const input_t<M>& input = prepare(x, y, b);
        model.forward(input, cache, logits);
        correct += count_correct(fn, logits, y);
    }
    return static_cast<double>(correct) / static_cast<double>(n);
}

template <class T, std::size_t R>
void check_same_shape(const char* fn, const char* what, const tensor<T, R>& got,
                      const tensor<T, R>& batch) {
    if (got.shape() != batch.shape()) {
        invalid(fn, what, " has shape ", shape_string(got.shape()), ", the batch has shape ",
                shape_string(batch.shape()));
    }
}

}  // namespace detail

template <class T>
std::size_t count_correct(const tensor<T, 2>& logits, const label_vector& y) {
    return detail::count_correct("count_correct", logits, y);
}

template <class M, class S>
double accuracy(M& model, const dataset<S>& data, std::size_t batch_size) {
    if constexpr (check_classifier<M>()) {
        return detail::evaluate("accuracy", model, data, batch_size,
                                [](const input_t<M>& x, const label_vector&,
                                   std::size_t) -> const input_t<M>& { return x; });
    } else {
        return 0.0;
    }
}

template <class M, class S, class Attack>
double robust_accuracy(M& model, const dataset<S>& data, Attack&& attack, std::size_t batch_size) {
    if constexpr (check_classifier<M>()) {
        using result = std::invoke_result_t<Attack&, M&, const input_t<M>&, const label_vector&>;
        static_assert(std::is_convertible_v<result, input_t<M>>,
                      "advaug::robust_accuracy: attack(model, x, y) must return the adversarial "
                      "batch as a tensor<value_type, input_rank>");
        const char* fn = "robust_accuracy";
        input_t<M> adversarial;
        return detail::evaluate(
            fn, model, data, batch_size,
            [&](const input_t<M>& x, const label_vector& y, std::size_t) -> const input_t<M>& {
                adversarial = attack(model, x, y);
                detail::check_same_shape(fn, "the attack's result", adversarial, x);
                return adversarial;
            });
    } else {
        return 0.0;
    }
}

template <class M, class S, class Transform>
double transformed_accuracy(M& model, const dataset<S>& data, Transform&& f,
                            std::size_t batch_size) {
    if constexpr (check_classifier<M>()) {
        static_assert(std::is_invocable_v<Transform&, input_t<M>&, std::size_t>,
                      "advaug::transformed_accuracy: f(x, batch_index) must accept the batch as "
                      "tensor<value_type, input_rank>& and a std::size_t");
        const char* fn = "transformed_accuracy";
        typename input_t<M>::shape_type shape;
        return detail::evaluate(
            fn, model, data, batch_size,
            [&](input_t<M>& x, const label_vector&, std::size_t b) -> const input_t<M>& {
                shape = x.shape();
                f(x, b);
                if (x.shape() != shape) {
                    detail::invalid(fn, "the transform changed the batch's shape from ",
                                    detail::shape_string(shape), " to ",
                                    detail::shape_string(x.shape()));
                }
                return x;
            });
    } else {
        return 0.0;
    }
}

}  // namespace advaug
