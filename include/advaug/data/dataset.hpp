// An in-memory labelled data set, stored compactly and converted to model values per batch.
//
// Features are kept as S (std::uint8_t for pixels, float for tables) in one contiguous
// row-major buffer [N, D], D = prod(sample_shape). A batch is converted on the fly:
//   v = static_cast<T>(static_cast<double>(s) * scale + offset)
// (computed in double, then rounded once to T), so Fashion-MNIST stays at 47 MB as bytes
// instead of 188 MB as floats, and pixels come out as pixel / 255 with scale = 1/255.
//
// Shuffling and splitting use advaug::rng with an unbiased integer draw of their own, never
// std::shuffle or std::uniform_int_distribution (whose results differ between standard
// libraries): the same seed gives the same order on every platform.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/data/idx.hpp"  // idx_array, for from_idx()
#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// A random permutation of 0 .. n-1 (Fisher-Yates driven by advaug::rng(seed)).
/// ensures: the same (n, seed) gives the same permutation on every platform.
inline std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed);

/// Number of batches of `batch_size` that cover n samples: ceil(n / batch_size), or
/// floor(n / batch_size) when drop_last (the incomplete last batch is dropped).
/// requires: batch_size >= 1.  throws: std::invalid_argument otherwise.
inline std::size_t batches_per_epoch(std::size_t n, std::size_t batch_size, bool drop_last);

/// N labelled samples of shape sample_shape, features stored as S.
/// Invariants: size() >= 1; features hold size() * sample_size() values; every label is in
/// [0, num_classes()); scale is finite and non-zero; offset is finite; every feature is finite.
template <class S>
class dataset {
    static_assert(std::is_arithmetic_v<S> && !std::is_same_v<S, bool>,
                  "advaug::dataset stores arithmetic features (std::uint8_t, float, ...)");

public:
    using storage_type = S;

    /// requires: labels.size() = N >= 1; sample_shape non-empty with every dimension >= 1;
    ///           features.size() == N * prod(sample_shape), all finite; labels in
    ///           [0, num_classes); scale finite and != 0; offset finite.
    /// throws:   std::invalid_argument naming "dataset", the argument and the values.
    dataset(std::vector<S> features, std::vector<std::size_t> sample_shape, label_vector labels,
            std::size_t num_classes, double scale = 1.0, double offset = 0.0);

    /// Grey-scale images [N, rows, cols] as a pixel data set with scale 1/255: sample shape
    /// {rows * cols} for dense models, or {1, rows, cols} (NCHW) when channel_axis.
    /// requires: images.shape(0) == labels.size() >= 1; labels in [0, num_classes).
    /// Grey-scale images as read from an IDX file (read_idx()), taking over its bytes: no copy
    /// of the pixels is made, so loading Fashion-MNIST this way peaks at the compressed file
    /// plus one copy of the images (load_fashion_mnist() + from_images() hold two).
    ///   auto train = dataset<std::uint8_t>::from_idx(read_idx(images_path),
    ///                                                read_idx_labels(labels_path), 10, false);
    /// requires: images is unsigned bytes of rank 3 [N, rows, cols]; labels.size() == N;
    ///           labels in [0, num_classes).
    static dataset from_idx(idx_array images, const label_vector& labels, std::size_t num_classes,
                            bool channel_axis) requires std::is_same_v<S, std::uint8_t>;

    static dataset from_images(const tensor<std::uint8_t, 3>& images, const label_vector& labels,
                               std::size_t num_classes,
                               bool channel_axis) requires std::is_same_v<S, std::uint8_t>;

    std::size_t size() const { return labels_.size(); }
    /// prod(sample_shape()): values per sample.
    std::size_t sample_size() const { return sample_size_; }
    const std::vector<std::size_t>& sample_shape() const { return sample_shape_; }
    /// 1 + sample_shape().size(): the rank R that batch() and slice() accept.
    std::size_t batch_rank() const { return 1 + sample_shape_.size(); }
    std::size_t num_classes() const { return num_classes_; }
    const label_vector& labels() const { return labels_; }
    double scale() const { return scale_; }
    double offset() const { return offset_; }
    /// The stored features, [size(), sample_size()] row-major, unconverted.
    std::span<const S> features() const { return features_; }

    /// Samples indices[0], indices[1], ... converted to T.
    /// requires: R == batch_rank(); every index < size() (indices may repeat or be empty).
    /// ensures:  x.shape() == {indices.size(), sample_shape()...}, y.size() == indices.size();
    ///           x and y keep their storage when they already have that shape, so a loop of
    ///           equal-sized batches allocates nothing after the first.
    /// throws:   std::invalid_argument naming the rank or the offending index; x and y are
    ///           unchanged then.
    template <class T, std::size_t R>
    void batch(std::span<const std::size_t> indices, tensor<T, R>& x, label_vector& y) const;

    /// Samples first .. first+count-1 as a new batch (a convenience; batch() reuses storage).
    /// requires: R == batch_rank(); first + count <= size().
    template <class T, std::size_t R>
    std::pair<tensor<T, R>, label_vector> slice(std::size_t first, std::size_t count) const;

    /// A seeded random split into (train, validation); validation gets
    /// round(validation_fraction * size()) samples. Both parts keep the original order.
    /// requires: validation_fraction in (0, 1) and both parts non-empty.
    /// ensures:  the parts are disjoint, together hold every sample once, and the same seed
    ///           gives the same split on every platform.
    std::pair<dataset, dataset> split(double validation_fraction, std::uint64_t seed) const;

    /// The samples at `indices`, in that order (repeats allowed).
    /// requires: indices non-empty, every index < size().
    dataset subset(std::span<const std::size_t> indices) const;

private:
    dataset(const char* function, std::vector<S> features, std::vector<std::size_t> sample_shape,
            label_vector labels, std::size_t num_classes, double scale, double offset);

    void check_index(const char* function, std::size_t position, std::size_t index) const;

    template <std::size_t R>
    void check_rank(const char* function) const;

    /// Resizes x and y for `count` samples if needed and writes sample index_of(i) into row i.
    template <class T, std::size_t R, class IndexOf>
    void fill(std::size_t count, IndexOf index_of, tensor<T, R>& x, label_vector& y) const;

    std::vector<S> features_;
    std::vector<std::size_t> sample_shape_;
    std::size_t sample_size_ = 0;
    label_vector labels_;
    std::size_t num_classes_ = 0;
    double scale_ = 1.0;
    double offset_ = 0.0;
};

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail {

/// Uniform in [0, bound), unbiased (rejection of the top partial range of the 64-bit draw).
/// requires: bound >= 1.
inline std::uint64_t uniform_below(rng& gen, std::uint64_t bound) {
    const std::uint64_t reject_below = (0 - bound) % bound;  // 2^64 mod bound
    for (;;) {
        const std::uint64_t r = gen.engine()();
        if (r >= reject_below) return r % bound;
    }
}

}  // namespace detail

inline std::vector<std::size_t> shuffled_indices(std::size_t n, std::uint64_t seed) {
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    rng gen(seed);
    for (std::size_t i = n; i > 1; --i) {
        const auto j = static_cast<std::size_t>(detail::uniform_below(gen, i));
        std::swap(order[i - 1], order[j]);
    }
    return order;
}

inline std::size_t batches_per_epoch(std::size_t n, std::size_t batch_size, bool drop_last) {
    if (batch_size == 0) detail::invalid("batches_per_epoch", "batch_size must be >= 1, got 0");
    return drop_last ? n / batch_size : n / batch_size + (n % batch_size != 0 ? 1 : 0);
}

template <class S>
dataset<S>::dataset(std::vector<S> features, std::vector<std::size_t> sample_shape,
                    label_vector labels, std::size_t num_classes, double scale, double offset)
    : dataset("dataset", std::move(features), std::move(sample_shape), std::move(labels),
              num_classes, scale, offset) {}

template <class S>
dataset<S>::dataset(const char* fn, std::vector<S> features, std::vector<std::size_t> sample_shape,
                    label_vector labels, std::size_t num_classes, double scale, double offset)
    : features_(std::move(features)),
      sample_shape_(std::move(sample_shape)),
      labels_(std::move(labels)),
      num_classes_(num_classes),
      scale_(scale),
      offset_(offset) {
    const std::size_t n = labels_.size();
    if (n == 0) detail::invalid(fn, "labels is empty; a dataset needs at least 1 sample");
    if (sample_shape_.empty()) {
        detail::invalid(fn, "sample_shape is empty; use {1} for a single feature");
    }
    sample_size_ = 1;
    for (std::size_t d : sample_shape_) {
        if (d == 0) {
            detail::invalid(fn, "sample_shape ", detail::shape_string(sample_shape_),
                            " has a zero dimension");
        }
        if (sample_size_ > std::numeric_limits<std::size_t>::max() / d) {
            detail::invalid(fn, "sample_shape ", detail::shape_string(sample_shape_),
                            " has more elements than a size_t can count");
        }
        sample_size_ *= d;
    }
    if (features_.size() / sample_size_ != n || features_.size() % sample_size_ != 0) {
        detail::invalid(fn, "features has ", features_.size(), " values, expected ", n, " * ",
                        sample_size_, " (", n, " labels, sample_shape ",
                        detail::shape_string(sample_shape_), ")");
    }
    // A NaN or infinite feature would surface much later as a "non-finite logit" blamed on
    // the model; refuse it here, once, where the sample can still be named.
    if constexpr (std::is_floating_point_v<S>) {
        for (std::size_t i = 0; i < features_.size(); ++i) {
            if (!std::isfinite(features_[i])) {
                detail::invalid(fn, "features[", i, "] (sample ", i / sample_size_, ", element ",
                                i % sample_size_, ") must be finite, got ", features_[i]);
            }
        }
    }
    if (num_classes_ == 0) detail::invalid(fn, "num_classes must be >= 1, got 0");
    detail::check_labels(fn, labels_, n, num_classes_);
    if (!std::isfinite(scale_) || scale_ == 0.0) {
        detail::invalid(fn, "scale must be finite and != 0, got ", scale_);
    }
    if (!std::isfinite(offset_)) detail::invalid(fn, "offset must be finite, got ", offset_);
}

template <class S>
dataset<S> dataset<S>::from_idx(idx_array images, const label_vector& labels, std::size_t num_classes,
                                bool channel_axis) requires std::is_same_v<S, std::uint8_t> {
    const char* fn = "dataset::from_idx";
    if (images.dtype != idx_type::u8 || images.dims.size() != 3) {
        detail::invalid(fn, "images must be unsigned bytes of rank 3 [N, rows, cols], got type code ",
                        int(images.dtype), " and dims ", detail::shape_string(images.dims));
    }
    const std::size_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
    if (n != labels.size()) {
        detail::invalid(fn, "images holds ", n, " images (dims ", detail::shape_string(images.dims),
                        ") but labels has ", labels.size(), " entries");
    }
    std::vector<std::size_t> shape = channel_axis ? std::vector<std::size_t>{1, rows, cols}
                                                  : std::vector<std::size_t>{rows * cols};
    return dataset(fn, std::move(images.data), std::move(shape), labels, num_classes, 1.0 / 255.0, 0.0);
}

template <class S>
dataset<S> dataset<S>::from_images(const tensor<std::uint8_t, 3>& images,
                                   const label_vector& labels, std::size_t num_classes,
                                   bool channel_axis) requires std::is_same_v<S, std::uint8_t> {
    const char* fn = "dataset::from_images";
    const std::size_t n = images.shape(0), rows = images.shape(1), cols = images.shape(2);
    if (n != labels.size()) {
        detail::invalid(fn, "images holds ", n, " images (shape ",
                        detail::shape_string(images.shape()), ") but labels has ", labels.size(),
                        " entries");
    }
    std::vector<std::size_t> shape = channel_axis ? std::vector<std::size_t>{1, rows, cols}
                                                  : std::vector<std::size_t>{rows * cols};
    return dataset(fn, std::vector<std::uint8_t>(images.data(), images.data() + images.size()),
                   std::move(shape), labels, num_classes, 1.0 / 255.0, 0.0);
}

template <class S>
void dataset<S>::check_index(const char* fn, std::size_t position, std::size_t index) const {
    if (index >= size()) {
        detail::invalid(fn, "indices[", position, "] = ", index,
                        " is out of range for a dataset of ", size(), " samples");
    }
}

template <class S>
template <std::size_t R>
void dataset<S>::check_rank(const char* fn) const {
    if (R != batch_rank()) {
        detail::invalid(fn, "a batch of rank ", R, " was requested, but samples of shape ",
                        detail::shape_string(sample_shape_), " make batches of rank ",
                        batch_rank());
    }
}

template <class S>
template <class T, std::size_t R, class IndexOf>
void dataset<S>::fill(std::size_t count, IndexOf index_of, tensor<T, R>& x, label_vector& y) const {
    static_assert(std::is_floating_point_v<T>, "dataset batches are floating-point tensors");
    static_assert(R >= 2, "a batch has a sample axis and at least one feature axis");
    typename tensor<T, R>::shape_type shape;
    shape[0] = count;
    std::copy(sample_shape_.begin(), sample_shape_.end(), shape.begin() + 1);
    if (x.shape() != shape) x.resize(shape);
    if (y.size() != count) y.resize({count});

    const std::size_t d_size = sample_size_;
    const double scale = scale_, offset = offset_;
    if constexpr (std::is_integral_v<S> && sizeof(S) == 1) {
        // A byte has 256 values: convert each once, then a batch is a table lookup per pixel,
        // with exactly the values of the formula.
        std::array<T, 256> table;
        for (int v = 0; v < 256; ++v) {
            const auto s = static_cast<S>(static_cast<std::uint8_t>(v));
            table[static_cast<std::uint8_t>(s)] = static_cast<T>(static_cast<double>(s) * scale + offset);
        }
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t s = index_of(i);
            const S* src = features_.data() + s * d_size;
            T* dst = x.data() + i * d_size;
            for (std::size_t d = 0; d < d_size; ++d) dst[d] = table[static_cast<std::uint8_t>(src[d])];
            y(i) = labels_(s);
        }
    } else {
        for (std::size_t i = 0; i < count; ++i) {
            const std::size_t s = index_of(i);
            const S* src = features_.data() + s * d_size;
            T* dst = x.data() + i * d_size;
            for (std::size_t d = 0; d < d_size; ++d) {
                dst[d] = static_cast<T>(static_cast<double>(src[d]) * scale + offset);
            }
            y(i) = labels_(s);
        }
    }
}

template <class S>
template <class T, std::size_t R>
void dataset<S>::batch(std::span<const std::size_t> indices, tensor<T, R>& x,
                       label_vector& y) const {
    const char* fn = "dataset::batch";
    check_rank<R>(fn);
    for (std::size_t i = 0; i < indices.size(); ++i) check_index(fn, i, indices[i]);
    fill(
        indices.size(), [&](std::size_t i) { return indices[i]; }, x, y);
}

template <class S>
template <class T, std::size_t R>
std::pair<tensor<T, R>, label_vector> dataset<S>::slice(std::size_t first,
                                                        std::size_t count) const {
    const char* fn = "dataset::slice";
    check_rank<R>(fn);
    if (first > size() || count > size() - first) {
        detail::invalid(fn, "first + count must be <= ", size(), " (the dataset size), got first ",
                        first, " and count ", count);
    }
    std::pair<tensor<T, R>, label_vector> out;
    fill(
        count, [&](std::size_t i) { return first + i; }, out.first, out.second);
    return out;
}

template <class S>
std::pair<dataset<S>, dataset<S>> dataset<S>::split(double validation_fraction,
                                                    std::uint64_t seed) const {
    const char* fn = "dataset::split";
    if (!(validation_fraction > 0.0 && validation_fraction < 1.0)) {
        detail::invalid(fn, "validation_fraction must be in (0, 1), got ", validation_fraction);
    }
    const std::size_t n = size();
    const auto n_val =
        static_cast<std::size_t>(std::round(validation_fraction * static_cast<double>(n)));
    if (n_val == 0 || n_val == n) {
        detail::invalid(fn, "validation_fraction ", validation_fraction, " of ", n,
                        " samples leaves ", n_val, " validation and ", n - n_val,
                        " training samples; both parts must be non-empty");
    }
    std::vector<std::size_t> order = shuffled_indices(n, seed);
    const auto cut = order.begin() + static_cast<std::ptrdiff_t>(n_val);
    std::sort(order.begin(), cut);
    std::sort(cut, order.end());
    const std::span<const std::size_t> all(order);
    return {subset(all.subspan(n_val)), subset(all.first(n_val))};
}

template <class S>
dataset<S> dataset<S>::subset(std::span<const std::size_t> indices) const {
    const char* fn = "dataset::subset";
    if (indices.empty()) detail::invalid(fn, "indices is empty; a dataset needs at least 1 sample");
    for (std::size_t i = 0; i < indices.size(); ++i) check_index(fn, i, indices[i]);
    std::vector<S> features(indices.size() * sample_size_);
    label_vector labels(typename label_vector::shape_type{indices.size()});
    for (std::size_t i = 0; i < indices.size(); ++i) {
        std::copy_n(features_.data() + indices[i] * sample_size_, sample_size_,
                    features.data() + i * sample_size_);
        labels(i) = labels_(indices[i]);
    }
    return dataset(fn, std::move(features), sample_shape_, std::move(labels), num_classes_, scale_,
                   offset_);
}

}  // namespace advaug
