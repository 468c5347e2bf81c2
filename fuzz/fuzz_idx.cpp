// Fuzz target: the IDX reader (include/advaug/data/idx.hpp), plain and gzip-compressed.
//
// The readers only take a path, so each input is written to a scratch file and read with
// read_idx, read_idx_images and read_idx_labels, and as the training images of a
// Fashion-MNIST directory whose other three files are small and valid (load_fashion_mnist
// then also compares counts and image sizes). Results are checked against the header.
#include <advaug/data/idx.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"

namespace {

using namespace advaug_fuzz;

/// An IDX file of u8 elements with the given dims and payload byte `fill`.
std::vector<std::uint8_t> idx_u8(std::uint8_t rank_code, std::vector<std::uint32_t> dims,
                                 std::uint8_t fill) {
    std::vector<std::uint8_t> out = {0, 0, 0x08, rank_code};
    std::size_t n = 1;
    for (auto d : dims) {
        for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
        n *= d;
    }
    out.insert(out.end(), n, fill);
    return out;
}

struct fixture {
    scratch_dir dir{"idx"};
    std::string input = dir.file("train-images-idx3-ubyte");
    fixture() {
        // Two 4x4 images per set, labels 0 and 1: the valid seeds have this shape.
        const auto images = idx_u8(3, {2, 4, 4}, 7);
        const auto labels = idx_u8(1, {2}, 1);
        write_bytes(dir.file("train-labels-idx1-ubyte"), labels.data(), labels.size());
        write_bytes(dir.file("t10k-images-idx3-ubyte"), images.data(), images.size());
        write_bytes(dir.file("t10k-labels-idx1-ubyte"), labels.data(), labels.size());
    }
};

void check_images(const advaug::tensor<std::uint8_t, 3>& images) {
    const std::size_t n = images.shape(0);
    require(n >= 1 && images.shape(1) >= 1 && images.shape(2) >= 1,
            "read_idx_images returned an empty dimension");
    const std::size_t count = std::min<std::size_t>(n, 2);
    const auto rows = advaug::images_to_rows<float>(images, n - count, count);
    require(rows.shape(0) == count && rows.shape(1) == images.shape(1) * images.shape(2),
            "images_to_rows returned the wrong shape");
    for (float v : rows) require(v >= 0.0f && v <= 1.0f, "images_to_rows left [0, 1]");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static fixture fx;
    write_bytes(fx.input, data, size);

    refused_cleanly(
        [&] {
            const advaug::idx_array a = advaug::read_idx(fx.input);
            require(!a.dims.empty(), "read_idx returned no dimensions");
            for (auto d : a.dims) require(d >= 1, "read_idx returned a zero dimension");
            require(a.data.size() == a.element_count() * advaug::idx_element_size(a.dtype),
                    "read_idx returned a payload that disagrees with its dims");
        },
        {"read_idx("});
    refused_cleanly([&] { check_images(advaug::read_idx_images(fx.input)); }, {"read_idx_images("});
    refused_cleanly(
        [&] {
            const auto labels = advaug::read_idx_labels(fx.input);
            require(labels.size() >= 1, "read_idx_labels returned no labels");
            for (auto l : labels) require(l >= 0 && l <= 255, "a label outside [0, 255]");
        },
        {"read_idx_labels("});
    refused_cleanly(
        [&] {
            const auto set = advaug::load_fashion_mnist(fx.input.substr(0, fx.input.rfind('/')));
            require(set.train_images.shape(0) == set.train_labels.size(),
                    "load_fashion_mnist returned mismatched counts");
            check_images(set.train_images);
        },
        {"load_fashion_mnist(", "read_idx_images(", "read_idx_labels("});
    return 0;
}
