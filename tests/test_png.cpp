// Tests for advaug/io/png.hpp: 8-bit grayscale and RGB PNGs are read back pixel for pixel by
// an independent decoder (stb_image), conversion from [0, 1] floats, and error reporting.
#include "support/check_throws.hpp"
#include "support/png_decode.hpp"
#include "support/temp_dir.hpp"
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "advaug/io/png.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_png {

namespace fs = std::filesystem;
using advaug::tensor;
using bytes = std::vector<std::uint8_t>;

namespace {

using advaug::testing::check_throws;
using advaug::testing::decode_png;
using advaug::testing::decoded_png;
using advaug::testing::temp_dir;

bytes file_bytes(const std::string& path) { return advaug::io::read_file(path); }

/// Pixels that exercise every PNG row filter: gradients, noise, flat runs.
tensor<std::uint8_t, 2> gray_pattern(std::size_t h, std::size_t w) {
    tensor<std::uint8_t, 2> g = tensor<std::uint8_t, 2>::from_shape({h, w});
    std::uint32_t state = 12345;
    for (std::size_t r = 0; r < h; ++r) {
        for (std::size_t c = 0; c < w; ++c) {
            state = state * 1664525u + 1013904223u;
            g(r, c) = r % 3 == 0   ? static_cast<std::uint8_t>(state >> 24)
                      : r % 3 == 1 ? static_cast<std::uint8_t>(c * 255 / (w - 1))
                                   : std::uint8_t{200};
        }
    }
    return g;
}

}  // namespace

TEST_CASE("png: a grayscale image is read back pixel for pixel") {
    temp_dir dir;
    const auto gray = gray_pattern(13, 17);
    const std::string path = dir.file("gray.png");
    advaug::io::write_png(path, gray);
    const bytes file = file_bytes(path);
    REQUIRE(file.size() > 8);
    const bytes signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK(bytes(file.begin(), file.begin() + 8) == signature);
    CHECK(file == advaug::io::encode_png(gray));

    const decoded_png d = decode_png(file);
    CHECK(d.width == 17);
    CHECK(d.height == 13);
    CHECK(d.channels == 1);
    CHECK(d.pixels == bytes(gray.begin(), gray.end()));
}

TEST_CASE("png: an RGB image is read back pixel for pixel") {
    temp_dir dir;
    tensor<std::uint8_t, 3> rgb = tensor<std::uint8_t, 3>::from_shape({5, 7, 3});
    for (std::size_t r = 0; r < 5; ++r)
        for (std::size_t c = 0; c < 7; ++c) {
            rgb(r, c, 0) = static_cast<std::uint8_t>(r * 50);
            rgb(r, c, 1) = static_cast<std::uint8_t>(c * 36);
            rgb(r, c, 2) = static_cast<std::uint8_t>((r * 7 + c * 13) * 5);
        }
    const std::string path = dir.file("rgb.png");
    advaug::io::write_png(path, rgb);
    const decoded_png d = decode_png(file_bytes(path));
    CHECK(d.width == 7);
    CHECK(d.height == 5);
    CHECK(d.channels == 3);
    CHECK(d.pixels == bytes(rgb.begin(), rgb.end()));

    // A 1 x 1 image is valid too.
    tensor<std::uint8_t, 2> dot = {{42}};
    const decoded_png one = decode_png(advaug::io::encode_png(dot));
    CHECK(one.width == 1);
    CHECK(one.height == 1);
    CHECK(one.pixels == bytes{42});
}

TEST_CASE_TEMPLATE("png: to_gray8 clamps to [0, 1] and rounds", T, float, double) {
    tensor<T, 2> img = {{T(-0.5), T(0), T(1) / T(255), T(0.5)},
                        {T(0.4) / T(255), T(0.6) / T(255), T(1), T(7)}};
    const auto g = advaug::io::to_gray8(img);
    REQUIRE(g.shape(0) == 2);
    REQUIRE(g.shape(1) == 4);
    CHECK(g(0, 0) == 0);
    CHECK(g(0, 1) == 0);
    CHECK(g(0, 2) == 1);
    CHECK(g(0, 3) == 128);  // 127.5 rounds away from zero
    CHECK(g(1, 0) == 0);
    CHECK(g(1, 1) == 1);
    CHECK(g(1, 2) == 255);
    CHECK(g(1, 3) == 255);

    img(1, 2) = std::numeric_limits<T>::quiet_NaN();
    check_throws<std::invalid_argument>([&] { advaug::io::to_gray8(img); },
                                        {"to_gray8()", "finite", "nan", "(1, 2)", "[2, 4]"});
}

TEST_CASE("png: bad images are refused before anything is written") {
    temp_dir dir;
    const std::string path = dir.file("bad.png");
    const tensor<std::uint8_t, 2> empty = tensor<std::uint8_t, 2>::from_shape({0, 5});
    check_throws<std::invalid_argument>([&] { advaug::io::write_png(path, empty); },
                                        {"write_png()", "empty", "0 x 5", path});
    check_throws<std::invalid_argument>([&] { advaug::io::encode_png(empty); },
                                        {"encode_png()", "empty", "0 x 5"});
    const tensor<std::uint8_t, 3> rgba = tensor<std::uint8_t, 3>::from_shape({2, 2, 4});
    check_throws<std::invalid_argument>([&] { advaug::io::write_png(path, rgba); },
                                        {"write_png()", "[H, W, 3]", "[2, 2, 4]", path});
    CHECK_FALSE(fs::exists(path));

    // An image too large for stb: checked on the sizes alone (a real one would need 4 GiB).
    check_throws<std::invalid_argument>(
        [&] { advaug::detail::png::check_size("write_png", path, 70000, 70000, 3); },
        {"write_png()", "too large", "70000 x 70000", "3 channel(s)", path});
    CHECK_NOTHROW(advaug::detail::png::check_size("write_png", path, 20000, 20000, 3));

    // A failed call leaves an existing file as it was.
    advaug::io::write_png(path, gray_pattern(4, 4));
    const bytes before = file_bytes(path);
    CHECK_THROWS_AS(advaug::io::write_png(path, empty), std::invalid_argument);
    CHECK(file_bytes(path) == before);
}

TEST_CASE("png: write failures are io_errors that name the path, and keep the old file") {
    temp_dir dir;
    const std::string missing = dir.file("no/such/dir/x.png");
    check_throws<advaug::io_error>([&] { advaug::io::write_png(missing, gray_pattern(3, 3)); },
                                   {"write_png()", missing});

    // The target is a directory: the rename fails and the directory is untouched.
    const std::string as_dir = dir.file("taken.png");
    fs::create_directories(as_dir);
    std::ofstream(as_dir + "/keep.txt") << "keep";
    check_throws<advaug::io_error>([&] { advaug::io::write_png(as_dir, gray_pattern(3, 3)); },
                                   {"write_png()", as_dir});
    CHECK(fs::is_directory(as_dir));
    CHECK(fs::exists(as_dir + "/keep.txt"));

    // The disk "fills up" half-way (a file-size limit, which holds for root too): the write
    // fails with EFBIG and the existing file keeps its old content.
    const std::string path = dir.file("old.png");
    advaug::io::write_png(path, gray_pattern(4, 4));
    const bytes before = file_bytes(path);
    const auto big = gray_pattern(300, 300);  // noisy rows: far larger than the limit
    REQUIRE(advaug::io::encode_png(big).size() > 20000);

    struct rlimit saved {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string message;
    try {
        advaug::io::write_png(path, big);
    } catch (const advaug::io_error& e) {
        message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old_handler);
    INFO("message: " << message);
    CHECK(message.find("write_png()") != std::string::npos);
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find("cannot write") != std::string::npos);
    CHECK(file_bytes(path) == before);
    // No temporary file is left behind.
    int entries = 0;
    for (const auto& e : fs::directory_iterator(dir.path)) entries += e.path() != as_dir;
    CHECK(entries == 1);
}

}  // namespace test_png
