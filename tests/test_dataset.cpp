#include <doctest/doctest.h>

#include <advaug/data/dataset.hpp>
#include <advaug/data/idx.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "support/fashion_mnist.hpp"
#include "support/labels.hpp"
#include "support/skip.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_dataset {

using namespace advaug;
using testing::fashion_mnist_skip_message;
using testing::fashion_mnist_test_set;
using testing::labels_of;

namespace {

/// 4 samples of shape {2, 3}: pixel value 10 * sample + element, except the last is 255.
dataset<std::uint8_t> small_pixels() {
    std::vector<std::uint8_t> f(24);
    for (std::size_t i = 0; i < 24; ++i) f[i] = static_cast<std::uint8_t>(10 * (i / 6) + i % 6);
    f[23] = 255;
    return dataset<std::uint8_t>(std::move(f), {2, 3}, labels_of({0, 1, 2, 1}), 3, 1.0 / 255.0);
}

/// n samples of shape {1} whose feature is the sample's index, label index % 3.
dataset<float> indexed(std::size_t n) {
    std::vector<float> f(n);
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        f[i] = static_cast<float>(i);
        y(i) = static_cast<std::int64_t>(i % 3);
    }
    return dataset<float>(std::move(f), {1}, y, 3);
}

std::vector<std::size_t> ids(const dataset<float>& d) {
    std::vector<std::size_t> out;
    for (float v : d.features()) out.push_back(static_cast<std::size_t>(v));
    return out;
}

}  // namespace

TEST_CASE("dataset: construction validates every argument") {
    using ds = dataset<float>;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH_AS(ds({}, {3}, label_vector::from_shape({0}), 2),
                         "dataset(): labels is empty; a dataset needs at least 1 sample",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2}, {}, labels_of({0, 1}), 2),
                         "dataset(): sample_shape is empty; use {1} for a single feature",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({}, {2, 0}, labels_of({0, 1}), 2),
                         "dataset(): sample_shape [2, 0] has a zero dimension",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2, 3, 4, 5}, {3}, labels_of({0, 1}), 2),
                         "dataset(): features has 5 values, expected 2 * 3 (2 labels, "
                         "sample_shape [3])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2, 3, 4, 5, 6, 7}, {3}, labels_of({0, 1}), 2),
                         "dataset(): features has 7 values, expected 2 * 3 (2 labels, "
                         "sample_shape [3])",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2}, {1}, labels_of({0, 0}), 0),
                         "dataset(): num_classes must be >= 1, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2}, {1}, labels_of({0, 3}), 3),
                         "dataset(): labels[1] = 3 is outside [0, 3)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2}, {1}, labels_of({-1, 0}), 3),
                         "dataset(): labels[0] = -1 is outside [0, 3)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2}, {1}, labels_of({0, 1}), 2, 0.0),
                         "dataset(): scale must be finite and != 0, got 0", std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2}, {1}, labels_of({0, 1}), 2, inf),
                         "dataset(): scale must be finite and != 0, got inf",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(ds({1, 2}, {1}, labels_of({0, 1}), 2, 1.0, nan),
                         "dataset(): offset must be finite, got nan", std::invalid_argument);

    const ds ok({1, 2, 3, 4, 5, 6}, {3}, labels_of({0, 1}), 2, 0.5, -1.0);
    CHECK(ok.size() == 2);
    CHECK(ok.sample_size() == 3);
    CHECK(ok.sample_shape() == std::vector<std::size_t>{3});
    CHECK(ok.batch_rank() == 2);
    CHECK(ok.num_classes() == 2);
    CHECK(ok.labels() == labels_of({0, 1}));
    CHECK(ok.scale() == 0.5);
    CHECK(ok.offset() == -1.0);
}

TEST_CASE_TEMPLATE("dataset: batch converts pixels to pixel / 255", T, float, double) {
    const auto data = small_pixels();
    CHECK(data.batch_rank() == 3);
    const std::array<std::size_t, 3> indices{3, 0, 3};
    tensor<T, 3> x;
    label_vector y;
    data.batch(indices, x, y);
    REQUIRE(x.shape() == std::array<std::size_t, 3>{3, 2, 3});
    CHECK(y == labels_of({1, 0, 1}));
    const auto features = data.features();
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t r = 0; r < 2; ++r)
            for (std::size_t c = 0; c < 3; ++c) {
                const double pixel = features[indices[i] * 6 + r * 3 + c];
                CHECK(x(i, r, c) ==
                      doctest::Approx(pixel / 255.0).epsilon(std::numeric_limits<T>::epsilon()));
                if constexpr (std::is_same_v<T, float>) {
                    CHECK(x(i, r, c) == static_cast<float>(pixel) / 255.0f);  // exact
                }
            }
    CHECK(x(0, 1, 2) == T(1));  // pixel 255, exactly
    CHECK(x(1, 0, 0) == T(0));
}

TEST_CASE_TEMPLATE("dataset: tabular features with scale and offset", T, float, double) {
    const dataset<float> data({0.25f, 1.0f, -2.0f, 0.5f}, {2}, labels_of({1, 0}), 2, 2.0, -1.0);
    tensor<T, 2> x;
    label_vector y;
    const std::array<std::size_t, 2> indices{1, 0};
    data.batch(indices, x, y);
    CHECK((x == tensor<T, 2>{{-5.0, 0.0}, {-0.5, 1.0}}));
    CHECK(y == labels_of({0, 1}));
}

TEST_CASE_TEMPLATE("dataset: byte features convert to exactly s * scale + offset for every value", S,
                   std::uint8_t, std::int8_t) {
    // Bytes go through a 256-entry table; it must hold the formula's values, signed bytes too.
    std::vector<S> f(256);
    for (int v = 0; v < 256; ++v) f[static_cast<std::size_t>(v)] = static_cast<S>(static_cast<std::uint8_t>(v));
    label_vector labels = label_vector::from_shape({256});
    labels.fill(0);
    const dataset<S> data(f, {1}, labels, 1, 0.37, -3.1);
    std::vector<std::size_t> all(256);
    std::iota(all.begin(), all.end(), std::size_t{0});
    tensor<float, 2> xf;
    tensor<double, 2> xd;
    label_vector y;
    data.batch(std::span<const std::size_t>(all), xf, y);
    data.batch(std::span<const std::size_t>(all), xd, y);
    for (std::size_t i = 0; i < 256; ++i) {
        const double want = static_cast<double>(f[i]) * 0.37 - 3.1;
        CHECK(xd(i, 0) == want);
        CHECK(xf(i, 0) == static_cast<float>(want));
    }
}

TEST_CASE("dataset: rank-2 and rank-4 batches of the same features") {
    std::vector<std::uint8_t> f(3 * 6);
    std::iota(f.begin(), f.end(), std::uint8_t{0});
    const dataset<std::uint8_t> flat(f, {6}, labels_of({0, 1, 0}), 2);
    const dataset<std::uint8_t> nchw(f, {1, 2, 3}, labels_of({0, 1, 0}), 2);
    CHECK(flat.batch_rank() == 2);
    CHECK(nchw.batch_rank() == 4);

    const std::array<std::size_t, 2> indices{2, 1};
    tensor<float, 2> x2;
    tensor<double, 4> x4;
    label_vector y2, y4;
    flat.batch(indices, x2, y2);
    nchw.batch(indices, x4, y4);
    REQUIRE(x2.shape() == std::array<std::size_t, 2>{2, 6});
    REQUIRE(x4.shape() == std::array<std::size_t, 4>{2, 1, 2, 3});
    for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t d = 0; d < 6; ++d) {
            const double expected = static_cast<double>(indices[i] * 6 + d);
            CHECK(x2(i, d) == expected);
            CHECK(x4(i, 0, d / 3, d % 3) == expected);
        }
    CHECK(y2 == labels_of({0, 1}));
    CHECK(y4 == y2);
}

TEST_CASE("dataset: batch reuses storage and reports bad ranks and indices") {
    const auto data = small_pixels();
    tensor<float, 3> x;
    label_vector y;
    const std::array<std::size_t, 2> a{0, 1}, b{2, 3};
    data.batch(a, x, y);
    const float* xp = x.data();
    const std::int64_t* yp = y.data();
    data.batch(b, x, y);
    CHECK(x.data() == xp);
    CHECK(y.data() == yp);
    CHECK(y == labels_of({2, 1}));

    const std::array<std::size_t, 3> c{0, 1, 2};
    data.batch(c, x, y);
    CHECK(x.shape()[0] == 3);
    CHECK(y.size() == 3);

    data.batch(std::span<const std::size_t>{}, x, y);
    CHECK(x.shape() == std::array<std::size_t, 3>{0, 2, 3});
    CHECK(y.size() == 0);

    tensor<float, 2> wrong;
    CHECK_THROWS_WITH_AS(data.batch(a, wrong, y),
                         "dataset::batch(): a batch of rank 2 was requested, but samples of "
                         "shape [2, 3] make batches of rank 3",
                         std::invalid_argument);

    data.batch(a, x, y);
    const tensor<float, 3> before = x;
    const std::array<std::size_t, 2> bad{1, 4};
    CHECK_THROWS_WITH_AS(
        data.batch(bad, x, y),
        "dataset::batch(): indices[1] = 4 is out of range for a dataset of 4 samples",
        std::invalid_argument);
    CHECK((x == before));  // unchanged on error
    CHECK(y == labels_of({0, 1}));
}

TEST_CASE("dataset: slice") {
    const auto data = small_pixels();
    const auto [x, y] = data.slice<double, 3>(1, 3);
    REQUIRE(x.shape() == std::array<std::size_t, 3>{3, 2, 3});
    CHECK(y == labels_of({1, 2, 1}));
    CHECK(x(0, 0, 0) == doctest::Approx(10.0 / 255.0));
    CHECK(x(2, 1, 2) == 1.0);
    CHECK(data.slice<float, 3>(4, 0).first.shape()[0] == 0);
    CHECK_THROWS_WITH_AS((data.slice<float, 3>(3, 2)),
                         "dataset::slice(): first + count must be <= 4 (the dataset size), got "
                         "first 3 and count 2",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((data.slice<float, 4>(0, 1)),
                         "dataset::slice(): a batch of rank 4 was requested, but samples of "
                         "shape [2, 3] make batches of rank 3",
                         std::invalid_argument);
}

TEST_CASE("dataset: split is a seeded, disjoint, complete partition") {
    const auto data = indexed(100);
    const auto [train, val] = data.split(0.25, 7);
    CHECK(train.size() == 75);
    CHECK(val.size() == 25);
    CHECK(train.sample_shape() == data.sample_shape());
    CHECK(train.num_classes() == 3);

    const auto t = ids(train), v = ids(val);
    CHECK(std::is_sorted(t.begin(), t.end()));  // original order kept
    CHECK(std::is_sorted(v.begin(), v.end()));
    std::vector<std::size_t> all = t;
    all.insert(all.end(), v.begin(), v.end());
    std::sort(all.begin(), all.end());
    std::vector<std::size_t> expected(100);
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    CHECK(all == expected);  // disjoint and complete
    for (std::size_t i = 0; i < train.size(); ++i) {
        CHECK(train.labels()(i) == static_cast<std::int64_t>(t[i] % 3));
    }

    const auto [train2, val2] = data.split(0.25, 7);
    CHECK(ids(val2) == v);
    CHECK(ids(train2) == t);
    CHECK(ids(data.split(0.25, 8).second) != v);
    CHECK(data.split(0.5, 1).second.size() == 50);
    CHECK(indexed(3).split(0.5, 1).second.size() == 2);  // round(1.5)
}

TEST_CASE("dataset: split errors") {
    const auto data = indexed(3);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (double bad : {0.0, 1.0, -0.5, 1.5}) {
        CHECK_THROWS_AS(data.split(bad, 0), std::invalid_argument);
    }
    CHECK_THROWS_WITH_AS(data.split(nan, 0),
                         "dataset::split(): validation_fraction must be in (0, 1), got nan",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(data.split(1.0, 0),
                         "dataset::split(): validation_fraction must be in (0, 1), got 1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(data.split(0.125, 0),
                         "dataset::split(): validation_fraction 0.125 of 3 samples leaves 0 "
                         "validation and 3 training samples; both parts must be non-empty",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(data.split(0.875, 0),
                         "dataset::split(): validation_fraction 0.875 of 3 samples leaves 3 "
                         "validation and 0 training samples; both parts must be non-empty",
                         std::invalid_argument);
}

TEST_CASE("dataset: subset") {
    const auto data = indexed(5);
    const std::array<std::size_t, 3> pick{4, 0, 4};
    const auto sub = data.subset(pick);
    CHECK(ids(sub) == std::vector<std::size_t>{4, 0, 4});
    CHECK(sub.labels() == labels_of({1, 0, 1}));
    const std::array<std::size_t, 2> bad{0, 7};
    CHECK_THROWS_WITH_AS(
        data.subset(bad),
        "dataset::subset(): indices[1] = 7 is out of range for a dataset of 5 samples",
        std::invalid_argument);
    CHECK_THROWS_WITH_AS(data.subset({}),
                         "dataset::subset(): indices is empty; a dataset needs at least 1 sample",
                         std::invalid_argument);
}

TEST_CASE("shuffled_indices: a deterministic, uniform permutation") {
    const auto p = shuffled_indices(1000, 1);
    std::vector<std::size_t> sorted = p, expected(1000);
    std::sort(sorted.begin(), sorted.end());
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    CHECK(sorted == expected);
    CHECK(p != expected);
    CHECK(shuffled_indices(1000, 1) == p);
    CHECK(shuffled_indices(1000, 2) != p);
    CHECK(shuffled_indices(0, 1).empty());
    CHECK(shuffled_indices(1, 1) == std::vector<std::size_t>{0});

    // Pinned: the order must not depend on the platform or the standard library.
    CHECK(shuffled_indices(10, 42) == std::vector<std::size_t>{1, 7, 9, 0, 3, 8, 4, 2, 5, 6});

    // Every permutation of 3 is about equally likely (a biased or Sattolo shuffle is not).
    std::map<std::vector<std::size_t>, int> counts;
    for (std::uint64_t seed = 0; seed < 6000; ++seed) ++counts[shuffled_indices(3, seed)];
    CHECK(counts.size() == 6);
    for (const auto& [perm, count] : counts) {
        CHECK(count > 850);
        CHECK(count < 1150);
    }
}

TEST_CASE("batches_per_epoch") {
    CHECK(batches_per_epoch(10, 3, false) == 4);
    CHECK(batches_per_epoch(10, 3, true) == 3);
    CHECK(batches_per_epoch(9, 3, false) == 3);
    CHECK(batches_per_epoch(9, 3, true) == 3);
    CHECK(batches_per_epoch(2, 5, false) == 1);
    CHECK(batches_per_epoch(2, 5, true) == 0);
    CHECK(batches_per_epoch(0, 5, false) == 0);
    CHECK_THROWS_WITH_AS(batches_per_epoch(10, 0, false),
                         "batches_per_epoch(): batch_size must be >= 1, got 0",
                         std::invalid_argument);
}

TEST_CASE("dataset::from_images on synthetic images") {
    auto images = tensor<std::uint8_t, 3>::from_shape({3, 2, 3});
    for (std::size_t i = 0; i < images.size(); ++i) images.data()[i] = static_cast<std::uint8_t>(i);
    images(2, 1, 2) = 255;
    const auto labels = labels_of({9, 0, 4});

    const auto flat = dataset<std::uint8_t>::from_images(images, labels, 10, false);
    CHECK(flat.size() == 3);
    CHECK(flat.sample_shape() == std::vector<std::size_t>{6});
    CHECK(flat.scale() == 1.0 / 255.0);
    CHECK(flat.labels() == labels);
    const auto nchw = dataset<std::uint8_t>::from_images(images, labels, 10, true);
    CHECK(nchw.sample_shape() == std::vector<std::size_t>{1, 2, 3});
    const auto [x, y] = nchw.slice<float, 4>(2, 1);
    CHECK(x(0, 0, 1, 2) == 1.0f);
    CHECK(x(0, 0, 0, 0) == 12.0f / 255.0f);

    CHECK_THROWS_WITH_AS(dataset<std::uint8_t>::from_images(images, labels_of({0, 1}), 10, false),
                         "dataset::from_images(): images holds 3 images (shape [3, 2, 3]) but "
                         "labels has 2 entries",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(dataset<std::uint8_t>::from_images(images, labels, 9, false),
                         "dataset::from_images(): labels[0] = 9 is outside [0, 9)",
                         std::invalid_argument);
}

TEST_CASE("dataset::from_images on the installed Fashion-MNIST test set") {
    namespace fs = std::filesystem;
    const auto installed = fashion_mnist_test_set();
    if (!installed) {
        advaug::testing::skip(fashion_mnist_skip_message());
        return;
    }
    const fs::path dir = *installed;
    const auto images = read_idx_images((dir / "t10k-images-idx3-ubyte.gz").string());
    const auto labels = read_idx_labels((dir / "t10k-labels-idx1-ubyte.gz").string());

    const auto flat = dataset<std::uint8_t>::from_images(images, labels, 10, false);
    CHECK(flat.size() == 10000);
    CHECK(flat.sample_shape() == std::vector<std::size_t>{784});
    CHECK(flat.num_classes() == 10);
    const auto [x2, y2] = flat.slice<float, 2>(0, 64);
    CHECK((x2 == images_to_rows<float>(images, 0, 64)));  // pixel / 255, exactly
    CHECK(y2 == xt::view(labels, xt::range(0, 64)));
    CHECK(xt::amax(x2)() == 1.0f);  // some pixel is 255

    const auto nchw = dataset<std::uint8_t>::from_images(images, labels, 10, true);
    CHECK(nchw.sample_shape() == std::vector<std::size_t>{1, 28, 28});
    const auto [x4, y4] = nchw.slice<float, 4>(0, 64);
    CHECK((x4 == images_to_nchw<float>(images, 0, 64)));
    CHECK(y4 == y2);

    // A shuffled batch holds the chosen images.
    const auto order = shuffled_indices(flat.size(), 3);
    tensor<double, 2> xb;
    label_vector yb;
    flat.batch(std::span(order).first(32), xb, yb);
    for (std::size_t i = 0; i < 32; ++i) {
        CHECK(yb(i) == labels(order[i]));
        for (std::size_t p = 0; p < 784; p += 97) {
            CHECK(xb(i, p) == doctest::Approx(images(order[i], p / 28, p % 28) / 255.0));
        }
    }
}

TEST_CASE("dataset::from_idx takes over the bytes of read_idx() and equals from_images") {
    namespace fs = std::filesystem;
    const auto installed = fashion_mnist_test_set();
    if (!installed) {
        advaug::testing::skip(fashion_mnist_skip_message());
        return;
    }
    const fs::path dir = *installed;
    const std::string images_path = (dir / "t10k-images-idx3-ubyte.gz").string();
    const auto labels = read_idx_labels((dir / "t10k-labels-idx1-ubyte.gz").string());
    const auto reference = dataset<std::uint8_t>::from_images(read_idx_images(images_path), labels, 10, true);
    idx_array raw = read_idx(images_path);
    const std::uint8_t* bytes = raw.data.data();
    const auto ds = dataset<std::uint8_t>::from_idx(std::move(raw), labels, 10, true);
    CHECK(ds.features().data() == bytes);  // moved, not copied
    CHECK(ds.sample_shape() == reference.sample_shape());
    CHECK(std::equal(ds.features().begin(), ds.features().end(), reference.features().begin(),
                     reference.features().end()));
    CHECK(ds.labels() == reference.labels());
    CHECK(ds.scale() == reference.scale());

    idx_array wrong_type;
    wrong_type.dtype = idx_type::i32;
    wrong_type.dims = {1, 1, 1};
    wrong_type.data.assign(4, 0);
    CHECK_THROWS_WITH_AS(dataset<std::uint8_t>::from_idx(wrong_type, labels_of({0}), 10, false),
                         "dataset::from_idx(): images must be unsigned bytes of rank 3 [N, rows, cols], "
                         "got type code 12 and dims [1, 1, 1]",
                         std::invalid_argument);
    idx_array two;
    two.dtype = idx_type::u8;
    two.dims = {2, 1, 2};
    two.data = {1, 2, 3, 4};
    CHECK_THROWS_WITH_AS(dataset<std::uint8_t>::from_idx(two, labels_of({0}), 10, false),
                         "dataset::from_idx(): images holds 2 images (dims [2, 1, 2]) but labels has 1 entries",
                         std::invalid_argument);
    const auto ok = dataset<std::uint8_t>::from_idx(two, labels_of({0, 1}), 10, false);
    CHECK(ok.sample_shape() == std::vector<std::size_t>{2});
}

}  // namespace test_dataset
