// Tests for advaug/data/idx.hpp: IDX reading (plain and gzip), error reporting, the
// Fashion-MNIST loader and the conversion of images to floating-point batches.
#include "support/check_throws.hpp"
#include "support/fashion_mnist.hpp"
#include "support/temp_dir.hpp"
#include "support/skip.hpp"
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "advaug/data/idx.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_idx {

namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

namespace {

using advaug::testing::check_throws;
using advaug::testing::fashion_mnist_dir;
using advaug::testing::fashion_mnist_skip_message;
using advaug::testing::temp_dir;

void put_be32(bytes& out, std::uint32_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 24));
    out.push_back(static_cast<std::uint8_t>(v >> 16));
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
}

/// An IDX file: the magic number, the dims, the payload (not checked against each other).
bytes make_idx(std::uint32_t magic, std::initializer_list<std::uint32_t> dims,
               const bytes& payload) {
    bytes out;
    put_be32(out, magic);
    for (auto d : dims) put_be32(out, d);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

bytes pattern(std::size_t n, unsigned seed = 7) {
    bytes out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>((i * 37 + seed) % 256);
    return out;
}

/// `data` compressed as one gzip member (deflate with a gzip wrapper).
bytes gzip(const bytes& data) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) == Z_OK);
    bytes out(deflateBound(&zs, static_cast<uLong>(data.size())) + 64);
    zs.next_in = const_cast<Bytef*>(data.data());
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    deflateEnd(&zs);
    REQUIRE(rc == Z_STREAM_END);
    out.resize(zs.total_out);
    return out;
}

void write_file(const std::string& path, const bytes& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    REQUIRE(out.good());
}

/// Writes `data` gzip-compressed through zlib's gz* file API.
void write_gz_file(const std::string& path, const bytes& data) {
    gzFile gz = gzopen(path.c_str(), "wb9");
    REQUIRE(gz != nullptr);
    REQUIRE(gzwrite(gz, data.data(), static_cast<unsigned>(data.size())) ==
            static_cast<int>(data.size()));
    REQUIRE(gzclose(gz) == Z_OK);
}

constexpr std::uint32_t images_magic = 0x00000803;
constexpr std::uint32_t labels_magic = 0x00000801;

}  // namespace

TEST_CASE("idx: images and labels round trip, plain and gzip") {
    temp_dir dir;
    const bytes pixels = pattern(3 * 4 * 5);
    const bytes image_file = make_idx(images_magic, {3, 4, 5}, pixels);
    const bytes labels_payload = {0, 9, 255};
    const bytes label_file = make_idx(labels_magic, {3}, labels_payload);

    write_file(dir.file("img"), image_file);
    write_file(dir.file("img.gz"), gzip(image_file));
    write_gz_file(dir.file("img2.gz"), image_file);
    write_file(dir.file("lab"), label_file);
    write_file(dir.file("lab.gz"), gzip(label_file));

    for (const char* name : {"img", "img.gz", "img2.gz"}) {
        CAPTURE(name);
        const auto images = advaug::read_idx_images(dir.file(name));
        REQUIRE(images.shape(0) == 3);
        REQUIRE(images.shape(1) == 4);
        REQUIRE(images.shape(2) == 5);
        for (std::size_t n = 0; n < 3; ++n)
            for (std::size_t r = 0; r < 4; ++r)
                for (std::size_t c = 0; c < 5; ++c)
                    CHECK(images(n, r, c) == pixels[(n * 4 + r) * 5 + c]);
    }
    for (const char* name : {"lab", "lab.gz"}) {
        CAPTURE(name);
        const auto labels = advaug::read_idx_labels(dir.file(name));
        REQUIRE(labels.shape(0) == 3);
        CHECK(labels(0) == 0);
        CHECK(labels(1) == 9);
        CHECK(labels(2) == 255);
    }
}

TEST_CASE("idx: read_idx returns type, dims and raw bytes of any supported type") {
    temp_dir dir;
    const bytes payload = pattern(2 * 3 * 4);  // 2x3 big-endian floats, undecoded
    write_file(dir.file("f32"), make_idx(0x00000D02, {2, 3}, payload));
    const auto raw = advaug::read_idx(dir.file("f32"));
    CHECK(raw.dtype == advaug::idx_type::f32);
    CHECK(raw.dims == std::vector<std::size_t>{2, 3});
    CHECK(raw.element_count() == 6);
    CHECK(raw.data == payload);

    write_file(dir.file("u8.gz"), gzip(make_idx(0x00000801, {5}, pattern(5))));
    const auto raw8 = advaug::read_idx(dir.file("u8.gz"));
    CHECK(raw8.dtype == 0x08);
    CHECK(raw8.dims == std::vector<std::size_t>{5});
    CHECK(raw8.data == pattern(5));

    CHECK(advaug::idx_element_size(0x08) == 1);
    CHECK(advaug::idx_element_size(0x0B) == 2);
    CHECK(advaug::idx_element_size(0x0E) == 8);
    CHECK(advaug::idx_element_size(0x0A) == 0);
}

TEST_CASE("idx: a missing file is an io_error naming the function and path") {
    temp_dir dir;
    const std::string path = dir.file("does-not-exist");
    check_throws<advaug::io_error>([&] { advaug::read_idx(path); },
                                   {"read_idx(): cannot open '" + path + "'"});
    check_throws<advaug::io_error>([&] { advaug::read_idx_images(path); },
                                   {"read_idx_images(): cannot open '" + path + "'"});
    check_throws<advaug::io_error>([&] { advaug::read_idx_labels(path); },
                                   {"read_idx_labels(): cannot open '" + path + "'"});
    // A directory opens but cannot be read.
    check_throws<advaug::io_error>([&] { advaug::read_idx(dir.path.string()); },
                                   {"read_idx()", dir.path.string()});
}

TEST_CASE("idx: wrong magic numbers are reported in hex with the expected one") {
    temp_dir dir;
    const std::string labels = dir.file("labels");
    write_file(labels, make_idx(labels_magic, {2}, {1, 2}));
    check_throws<advaug::io_error>([&] { advaug::read_idx_images(labels); },
                                   {"read_idx_images()", labels, "0x00000801", "0x00000803"});

    const std::string images = dir.file("images.gz");
    write_file(images, gzip(make_idx(images_magic, {1, 1, 1}, {1})));
    check_throws<advaug::io_error>([&] { advaug::read_idx_labels(images); },
                                   {"read_idx_labels()", images, "0x00000803", "0x00000801"});

    // Right rank, wrong type: still the wrong magic for the typed readers.
    const std::string floats = dir.file("floats");
    write_file(floats, make_idx(0x00000D03, {1, 1, 1}, {0, 0, 0, 0}));
    check_throws<advaug::io_error>([&] { advaug::read_idx_images(floats); },
                                   {"read_idx_images()", floats, "0x00000D03", "0x00000803"});

    const std::string text = dir.file("text");
    write_file(text, {'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'});
    check_throws<advaug::io_error>([&] { advaug::read_idx(text); },
                                   {"read_idx()", text, "0x41424344", "0x0000TTRR"});
}

TEST_CASE("idx: unsupported type codes and rank 0 are refused") {
    temp_dir dir;
    const std::string path = dir.file("type0a");
    write_file(path, make_idx(0x00000A01, {1}, {1}));
    check_throws<advaug::io_error>([&] { advaug::read_idx(path); },
                                   {"read_idx()", path, "unsupported", "0x0A", "0x00000A01"});

    const std::string rank0 = dir.file("rank0");
    write_file(rank0, make_idx(0x00000800, {}, {1}));
    check_throws<advaug::io_error>([&] { advaug::read_idx(rank0); },
                                   {"read_idx()", rank0, "rank 0", "0x00000800"});
}

TEST_CASE("idx: a payload that disagrees with the header prints both byte counts") {
    temp_dir dir;
    const std::string short_path = dir.file("short");
    write_file(short_path, make_idx(images_magic, {3, 4, 5}, pattern(59)));
    check_throws<advaug::io_error>([&] { advaug::read_idx_images(short_path); },
                                   {"read_idx_images()", short_path, "60", "59", "[3, 4, 5]"});

    const std::string long_path = dir.file("long");
    write_file(long_path, make_idx(labels_magic, {3}, pattern(4)));
    check_throws<advaug::io_error>(
        [&] { advaug::read_idx_labels(long_path); },
        {"read_idx_labels()", long_path, "declares 3 payload bytes", "has 4 bytes"});

    // Far more data than declared, compressed: reported with the full decompressed size.
    const std::string gz_path = dir.file("long.gz");
    write_file(gz_path, gzip(make_idx(labels_magic, {2}, bytes(1000000, 0))));
    check_throws<advaug::io_error>(
        [&] { advaug::read_idx(gz_path); },
        {"read_idx()", gz_path, "declares 2 payload bytes", "decompressed file has 1000000 bytes"});

    // Header itself cut short.
    const std::string tiny = dir.file("tiny");
    write_file(tiny, {0, 0});
    check_throws<advaug::io_error>([&] { advaug::read_idx(tiny); },
                                   {"read_idx()", tiny, "has 2 bytes"});
    const std::string empty = dir.file("empty");
    write_file(empty, {});
    check_throws<advaug::io_error>([&] { advaug::read_idx_images(empty); },
                                   {"read_idx_images()", empty, "has 0 bytes", "0x00000803"});
    const std::string half_header = dir.file("half_header");
    write_file(half_header, {0, 0, 8, 3, 0, 0, 0, 1, 0, 0});
    check_throws<advaug::io_error>([&] { advaug::read_idx_images(half_header); },
                                   {"read_idx_images()", half_header, "has 10 bytes", "16 bytes"});
}

TEST_CASE("idx: zero and overflowing dimensions are refused") {
    temp_dir dir;
    const std::string zero = dir.file("zero");
    write_file(zero, make_idx(images_magic, {0, 28, 28}, {}));
    check_throws<advaug::io_error>([&] { advaug::read_idx_images(zero); },
                                   {"read_idx_images()", zero, "dimension 0 equal to 0", "[0"});

    const std::string zero2 = dir.file("zero2");
    write_file(zero2, make_idx(images_magic, {5, 28, 0}, {}));
    check_throws<advaug::io_error>([&] { advaug::read_idx(zero2); },
                                   {"read_idx()", zero2, "dimension 2 equal to 0", "[5, 28, 0]"});

    const std::string huge = dir.file("huge");
    write_file(huge,
               make_idx(0x00000E04, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {1, 2, 3}));
    check_throws<advaug::io_error>([&] { advaug::read_idx(huge); },
                                   {"read_idx()", huge, "overflows", "4294967295"});

    // Large but representable: must be compared with the payload, never allocated.
    const std::string big = dir.file("big.gz");
    write_file(big, gzip(make_idx(images_magic, {0xFFFFFFFF, 0xFFFFFFFF, 1}, {1, 2, 3})));
    check_throws<advaug::io_error>(
        [&] { advaug::read_idx_images(big); },
        {"read_idx_images()", big, "18446744065119617025", "has 3 bytes"});
}

TEST_CASE("idx: gzip streams cut short, corrupt or followed by garbage are refused") {
    temp_dir dir;
    const bytes file = make_idx(images_magic, {10, 28, 28}, pattern(10 * 28 * 28));
    const bytes gz = gzip(file);

    const std::string half = dir.file("half.gz");
    write_file(half, bytes(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2)));
    check_throws<advaug::io_error>([&] { advaug::read_idx_images(half); },
                                   {"read_idx_images()", half, "truncated gzip stream"});

    // Missing only the last trailer byte (part of the length field).
    const std::string almost = dir.file("almost.gz");
    write_file(almost, bytes(gz.begin(), gz.end() - 1));
    check_throws<advaug::io_error>([&] { advaug::read_idx(almost); },
                                   {"read_idx()", almost, "truncated gzip stream"});

    // Just the gzip magic.
    const std::string magic_only = dir.file("magic_only.gz");
    write_file(magic_only, {0x1f, 0x8b});
    check_throws<advaug::io_error>([&] { advaug::read_idx(magic_only); },
                                   {"read_idx()", magic_only, "truncated gzip stream"});

    // A flipped bit in the CRC.
    bytes bad_crc = gz;
    bad_crc[bad_crc.size() - 8] ^= 0x01;
    const std::string crc = dir.file("crc.gz");
    write_file(crc, bad_crc);
    check_throws<advaug::io_error>([&] { advaug::read_idx(crc); },
                                   {"read_idx()", crc, "corrupt gzip"});

    // Garbage after the stream.
    bytes trailing = gz;
    trailing.insert(trailing.end(), {'x', 'y', 'z'});
    const std::string tail = dir.file("tail.gz");
    write_file(tail, trailing);
    check_throws<advaug::io_error>([&] { advaug::read_idx(tail); },
                                   {"read_idx()", tail, "3 unexpected trailing bytes"});

    // Two concatenated members are one file, as for gunzip.
    const bytes first(file.begin(), file.begin() + 100);
    const bytes second(file.begin() + 100, file.end());
    bytes members = gzip(first);
    const bytes gz2 = gzip(second);
    members.insert(members.end(), gz2.begin(), gz2.end());
    const std::string multi = dir.file("multi.gz");
    write_file(multi, members);
    const auto images = advaug::read_idx_images(multi);
    CHECK(images.shape(0) == 10);
    CHECK(std::equal(images.begin(), images.end(), file.begin() + 16));
}

TEST_CASE("idx: no byte sequence crashes the reader") {
    temp_dir dir;
    const std::string path = dir.file("fuzz");
    const bytes valid = make_idx(images_magic, {2, 3, 3}, pattern(18));
    const bytes valid_gz = gzip(valid);
    std::mt19937 rng(12345);

    auto attempt = [&](const bytes& data) {
        write_file(path, data);
        for (int reader = 0; reader < 3; ++reader) {
            try {
                if (reader == 0) advaug::read_idx(path);
                if (reader == 1) advaug::read_idx_images(path);
                if (reader == 2) advaug::read_idx_labels(path);
            } catch (const advaug::io_error&) {
            }
        }
    };
    // Every prefix, plain and compressed.
    for (std::size_t n = 0; n <= valid.size(); ++n)
        attempt(bytes(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(n)));
    for (std::size_t n = 0; n <= valid_gz.size(); ++n)
        attempt(bytes(valid_gz.begin(), valid_gz.begin() + static_cast<std::ptrdiff_t>(n)));
    // Random mutations.
    for (int i = 0; i < 1500; ++i) {
        bytes data = (i % 2 == 0) ? valid : valid_gz;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e)
            data[rng() % data.size()] = static_cast<std::uint8_t>(rng());
        attempt(data);
    }
    // Random bytes behind a gzip or IDX magic.
    for (int i = 0; i < 500; ++i) {
        bytes data(rng() % 64);
        for (auto& b : data) b = static_cast<std::uint8_t>(rng());
        bytes prefixed = (i % 2 == 0) ? bytes{0x1f, 0x8b, 0x08, 0x00} : bytes{0, 0, 0x08, 0x03};
        prefixed.insert(prefixed.end(), data.begin(), data.end());
        attempt(prefixed);
    }
    CHECK(true);
}

TEST_CASE("idx: images_to_rows and images_to_nchw scale pixels to [0, 1]") {
    advaug::tensor<std::uint8_t, 3> images(std::array<std::size_t, 3>{4, 2, 3});
    for (std::size_t i = 0; i < images.size(); ++i)
        images.data()[i] = static_cast<std::uint8_t>(i * 11);
    images(3, 1, 2) = 255;
    images(0, 0, 0) = 0;

    const auto rows = advaug::images_to_rows<float>(images, 1, 3);
    REQUIRE(rows.shape(0) == 3);
    REQUIRE(rows.shape(1) == 6);
    for (std::size_t n = 0; n < 3; ++n)
        for (std::size_t p = 0; p < 6; ++p)
            CHECK(rows(n, p) == static_cast<float>(images(n + 1, p / 3, p % 3)) / 255.0f);
    CHECK(rows(2, 5) == 1.0f);

    const auto drows = advaug::images_to_rows<double>(images, 0, 4);
    CHECK(drows(0, 0) == 0.0);
    CHECK(drows(0, 1) == doctest::Approx(11.0 / 255.0));
    CHECK(drows(3, 5) == 1.0);

    const auto nchw = advaug::images_to_nchw<double>(images, 2, 2);
    REQUIRE(nchw.shape(0) == 2);
    REQUIRE(nchw.shape(1) == 1);
    REQUIRE(nchw.shape(2) == 2);
    REQUIRE(nchw.shape(3) == 3);
    for (std::size_t n = 0; n < 2; ++n)
        for (std::size_t r = 0; r < 2; ++r)
            for (std::size_t c = 0; c < 3; ++c)
                CHECK(nchw(n, 0, r, c) == static_cast<double>(images(n + 2, r, c)) / 255.0);

    const auto empty = advaug::images_to_rows<float>(images, 4, 0);
    CHECK(empty.shape(0) == 0);
    CHECK(empty.shape(1) == 6);

    check_throws<std::invalid_argument>([&] { advaug::images_to_rows<float>(images, 2, 3); },
                                        {"images_to_rows()", "4", "first 2", "count 3"});
    check_throws<std::invalid_argument>([&] { advaug::images_to_rows<float>(images, 5, 0); },
                                        {"images_to_rows()", "first 5"});
    check_throws<std::invalid_argument>(
        [&] { advaug::images_to_nchw<float>(images, 1, static_cast<std::size_t>(-1)); },
        {"images_to_nchw()", "first 1", "count 18446744073709551615"});
}

namespace {

/// Writes a small Fashion-MNIST-like data set into `dir`.
void write_small_dataset(const temp_dir& dir, bool compressed, std::uint32_t train_labels = 3) {
    auto put = [&](const std::string& name, const bytes& data) {
        if (compressed)
            write_file(dir.file(name + ".gz"), gzip(data));
        else
            write_file(dir.file(name), data);
    };
    put("train-images-idx3-ubyte", make_idx(images_magic, {3, 2, 2}, pattern(12, 1)));
    put("train-labels-idx1-ubyte",
        make_idx(labels_magic, {train_labels}, pattern(train_labels, 2)));
    put("t10k-images-idx3-ubyte", make_idx(images_magic, {2, 2, 2}, pattern(8, 3)));
    put("t10k-labels-idx1-ubyte", make_idx(labels_magic, {2}, pattern(2, 4)));
}

}  // namespace

TEST_CASE("idx: load_fashion_mnist reads plain or gzip files and checks counts") {
    for (bool compressed : {false, true}) {
        CAPTURE(compressed);
        temp_dir dir;
        write_small_dataset(dir, compressed);
        const auto data = advaug::load_fashion_mnist(dir.path.string());
        CHECK(data.train_images.shape(0) == 3);
        CHECK(data.train_labels.shape(0) == 3);
        CHECK(data.test_images.shape(0) == 2);
        CHECK(data.test_labels.shape(0) == 2);
        CHECK(data.test_labels(1) == pattern(2, 4)[1]);
    }

    temp_dir dir;
    write_small_dataset(dir, true, 2);
    const std::string images = dir.file("train-images-idx3-ubyte.gz");
    const std::string labels = dir.file("train-labels-idx1-ubyte.gz");
    check_throws<advaug::io_error>(
        [&] { advaug::load_fashion_mnist(dir.path.string()); },
        {"load_fashion_mnist()", images, labels, "3 images", "2 labels"});

    fs::remove(dir.file("t10k-labels-idx1-ubyte.gz"));
    check_throws<advaug::io_error>([&] { advaug::load_fashion_mnist(dir.path.string()); },
                                   {"load_fashion_mnist()", dir.file("t10k-labels-idx1-ubyte.gz"),
                                    dir.file("t10k-labels-idx1-ubyte")});

    // Train and test images of different sizes.
    temp_dir mixed;
    write_small_dataset(mixed, false);
    write_file(mixed.file("t10k-images-idx3-ubyte"), make_idx(images_magic, {2, 1, 4}, pattern(8)));
    check_throws<advaug::io_error>([&] { advaug::load_fashion_mnist(mixed.path.string()); },
                                   {"load_fashion_mnist()", "2x2", "1x4"});
}

TEST_CASE("idx: default_fashion_mnist_dir honours ADVAUG_FASHION_MNIST") {
    const char* old = std::getenv("ADVAUG_FASHION_MNIST");
    const std::string saved = old != nullptr ? old : "";
    ::setenv("ADVAUG_FASHION_MNIST", "/some/where", 1);
    CHECK(advaug::default_fashion_mnist_dir() == "/some/where");
    ::unsetenv("ADVAUG_FASHION_MNIST");
    CHECK(advaug::default_fashion_mnist_dir() == "/usr/share/datasets/fashion-mnist");
    if (old != nullptr) ::setenv("ADVAUG_FASHION_MNIST", saved.c_str(), 1);
}

TEST_CASE("idx: the real Fashion-MNIST test set") {
    const fs::path dir = fashion_mnist_dir;
    if (!fs::is_directory(dir)) {
        advaug::testing::skip(fashion_mnist_skip_message());
        return;
    }
    const auto images = advaug::read_idx_images((dir / "t10k-images-idx3-ubyte.gz").string());
    const auto labels = advaug::read_idx_labels((dir / "t10k-labels-idx1-ubyte.gz").string());
    REQUIRE(images.shape(0) == 10000);
    REQUIRE(images.shape(1) == 28);
    REQUIRE(images.shape(2) == 28);
    REQUIRE(labels.shape(0) == 10000);
    std::array<int, 10> per_class{};
    for (auto label : labels) {
        REQUIRE(label >= 0);
        REQUIRE(label <= 9);
        ++per_class[static_cast<std::size_t>(label)];
    }
    for (int count : per_class) CHECK(count == 1000);
    CHECK(*std::max_element(images.begin(), images.end()) == 255);

    const auto rows = advaug::images_to_rows<float>(images, 9990, 10);
    CHECK(rows.shape(0) == 10);
    CHECK(rows.shape(1) == 784);
}

TEST_CASE("idx: load_fashion_mnist on the installed data set") {
    const fs::path dir = fashion_mnist_dir;
    if (!fs::is_directory(dir)) {
        advaug::testing::skip(fashion_mnist_skip_message());
        return;
    }
    const auto data = advaug::load_fashion_mnist(dir.string());
    CHECK(data.train_images.shape(0) == 60000);
    CHECK(data.train_images.shape(1) == 28);
    CHECK(data.train_images.shape(2) == 28);
    CHECK(data.train_labels.shape(0) == 60000);
    CHECK(data.test_images.shape(0) == 10000);
    CHECK(data.test_labels.shape(0) == 10000);
}

}  // namespace test_idx
