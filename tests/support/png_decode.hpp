// An independent PNG decoder for the tests: stb_image, compiled privately into the test that
// includes this header (it defines STB_IMAGE_IMPLEMENTATION, so include it from one source file
// per executable), and decode_png / read_png, which read a PNG's pixels back with it.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// The decoder, independent of advaug's encoder.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace advaug::testing {

/// A decoded PNG: its size, channel count and pixels (channels interleaved).
struct decoded_png {
    int width = 0, height = 0, channels = 0;
    std::vector<std::uint8_t> pixels;

    /// Channel `c` of the pixel in column `x`, row `y`.
    std::uint8_t at(int x, int y, int c = 0) const {
        return pixels[(static_cast<std::size_t>(y) * width + x) * channels + c];
    }
};

/// Decodes the PNG file content `file` with stb_image; a REQUIRE fails, naming `what` and
/// stb's reason, when it cannot.
inline decoded_png decode_png(const std::vector<std::uint8_t>& file,
                              const std::string& what = "the PNG") {
    decoded_png d;
    stbi_uc* p = stbi_load_from_memory(file.data(), static_cast<int>(file.size()), &d.width,
                                       &d.height, &d.channels, 0);
    REQUIRE_MESSAGE(p != nullptr,
                    "stb_image cannot decode " << what << ": " << stbi_failure_reason());
    d.pixels.assign(p, p + static_cast<std::size_t>(d.width) * d.height * d.channels);
    stbi_image_free(p);
    return d;
}

/// Reads the PNG file at `path` and decodes it with decode_png.
inline decoded_png read_png(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::vector<std::uint8_t> file{std::istreambuf_iterator<char>(in),
                                         std::istreambuf_iterator<char>()};
    return decode_png(file, path);
}

}  // namespace advaug::testing
