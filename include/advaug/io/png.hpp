// 8-bit PNG files, grayscale or RGB, for looking at images (corruption sheets, adversarial
// examples); not a general image library.
//
//   io::write_png("digit.png", io::to_gray8(image));  // image: tensor<float, 2> in [0, 1]
//   io::write_png("sheet.png", rgb);                   // rgb: tensor<std::uint8_t, 3> [H, W, 3]
//
// The encoder is stb_image_write (Debian package libstb-dev, <stb/stb_image_write.h>). The
// image is encoded in memory with stbi_write_png_to_func and the bytes are written with
// io::write_file_atomically, so a reader never sees a half-written file and a failed write
// leaves an existing file as it was.
//
// Why stb's implementation is compiled here, as static functions. stb ships the
// implementation inside the header, to be compiled in exactly one translation unit that
// defines STB_IMAGE_WRITE_IMPLEMENTATION. advaug is header-only and has no such unit, and
// asking every user to provide one would break `#include` and go. So this header defines
// STB_IMAGE_WRITE_STATIC and STB_IMAGE_WRITE_IMPLEMENTATION before including stb: every
// translation unit that includes png.hpp gets its own private (internal-linkage) copy of the
// encoder, and copies in different units cannot clash at link time. The cost is one small
// copy of the encoder per unit that writes PNGs; the compiler drops the parts it does not call.
//
// advaug's own functions below are ordinary `inline` functions in named namespaces, so that
// io::write_png is one function in the whole program, as write_example_grid and any user's
// inline code that calls it require. Only detail::png::encode calls into stb's per-unit copy;
// every unit compiles that copy from the same source, so whichever definition of encode the
// linker keeps behaves the same.
//
// If a translation unit has already included <stb/stb_image_write.h> itself before this
// header, that copy (and the user's implementation, wherever it is compiled) is used instead.
// Including stb's implementation yourself *after* this header, in the same unit, is an error
// (its definitions would appear twice); do it in a unit that does not include png.hpp.
#pragma once

#include <zlib.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/io/atomic_file.hpp"

#ifndef INCLUDE_STB_IMAGE_WRITE_H
namespace advaug::detail::png {
// stb's own deflate makes files a third to a half larger than zlib's; advaug links zlib anyway
// (for .gz data sets), so stb is given zlib's compress2 at the highest level. stb frees the
// result with free().
static unsigned char* zlib_compress(unsigned char* data, int size, int* out_size, int) {
    uLongf bound = compressBound(static_cast<uLong>(size));
    auto* out = static_cast<unsigned char*>(std::malloc(bound));
    if (out == nullptr) return nullptr;
    if (compress2(out, &bound, data, static_cast<uLong>(size), Z_BEST_COMPRESSION) != Z_OK) {
        std::free(out);
        return nullptr;
    }
    *out_size = static_cast<int>(bound);
    return out;
}
}  // namespace advaug::detail::png
#define STBIW_ZLIB_COMPRESS ::advaug::detail::png::zlib_compress
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO  // advaug writes the bytes itself
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
// Not left defined: a later #include of stb by the user must not compile the implementation
// a second time (its declarations are skipped by stb's include guard).
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#undef STB_IMAGE_WRITE_STATIC
#undef STBI_WRITE_NO_STDIO
#undef STBIW_ZLIB_COMPRESS
#endif

namespace advaug::io {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// Converts an image with values in [0, 1] to 8 bits: round(clamp(v, 0, 1) * 255).
/// requires: T is a floating-point type; every value is finite (values outside [0, 1] are
///           clamped, not refused, so that e.g. an unclipped adversarial image can be shown).
/// throws:   std::invalid_argument naming the first non-finite value and its position.
template <class T>
tensor<std::uint8_t, 2> to_gray8(const tensor<T, 2>& image);

/// The PNG encoding of an 8-bit grayscale image [H, W].
/// throws: std::invalid_argument if the image is empty or too large for stb (its row buffer
///         must fit an int); io_error if the encoder fails (out of memory).
inline std::vector<std::uint8_t> encode_png(const tensor<std::uint8_t, 2>& gray);

/// The PNG encoding of an 8-bit RGB image [H, W, 3].
/// throws: std::invalid_argument if the last dimension is not 3, or as the grayscale form.
inline std::vector<std::uint8_t> encode_png(const tensor<std::uint8_t, 3>& rgb);

/// Writes `gray` [H, W] to `path` as an 8-bit grayscale PNG, atomically.
/// throws: std::invalid_argument as encode_png, with the path; io_error if the file cannot be
///         written (the message names the path and the reason; an existing file is kept).
inline void write_png(const std::string& path, const tensor<std::uint8_t, 2>& gray);

/// Writes `rgb` [H, W, 3] to `path` as an 8-bit RGB PNG, atomically. throws: as above.
inline void write_png(const std::string& path, const tensor<std::uint8_t, 3>& rgb);

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

template <class T>
tensor<std::uint8_t, 2> to_gray8(const tensor<T, 2>& image) {
    static_assert(std::is_floating_point_v<T>, "to_gray8(): T must be a floating-point type");
    const std::size_t h = image.shape(0), w = image.shape(1);
    tensor<std::uint8_t, 2> out = tensor<std::uint8_t, 2>::from_shape({h, w});
    const T* src = image.data();
    std::uint8_t* dst = out.data();
    for (std::size_t i = 0, n = h * w; i < n; ++i) {
        const T v = src[i];
        if (!std::isfinite(v)) {
            advaug::detail::invalid("to_gray8", "image must be finite, got ", v, " at (", i / w,
                                    ", ", i % w, ") of an image of shape [", h, ", ", w, "]");
        }
        const double clamped = v < T(0) ? 0.0 : (v > T(1) ? 1.0 : static_cast<double>(v));
        dst[i] = static_cast<std::uint8_t>(std::lround(clamped * 255.0));
    }
    return out;
}

}  // namespace advaug::io

namespace advaug::detail::png {

/// stb's write callback: appends to a std::vector<std::uint8_t>.
inline void append(void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    out->insert(out->end(), bytes, bytes + size);
}

/// Checks the size and returns stb's (w, h) as ints. `path` is empty when only encoding.
inline void check_size(const char* fn, const std::string& path, std::size_t h, std::size_t w,
                       std::size_t channels) {
    const std::string where = path.empty() ? std::string() : " for '" + path + "'";
    if (h == 0 || w == 0) {
        advaug::detail::invalid(fn, "image is empty (", h, " x ", w, " pixels)", where);
    }
    // stb keeps a filtered row of w * channels + 1 bytes per row in one int-sized buffer.
    constexpr std::size_t limit = static_cast<std::size_t>(std::numeric_limits<int>::max());
    const bool too_large = w > (limit - 1) / channels || h > limit / (w * channels + 1);
    if (too_large) {
        advaug::detail::invalid(fn, "image is too large for the PNG encoder (", h, " x ", w,
                                " pixels, ", channels, " channel(s); at most ", limit,
                                " bytes of filtered rows)", where);
    }
}

/// Writes the encoded file; a failure is reported as write_png's, with the reason.
inline void write_png_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    try {
        io::write_file_atomically(path, bytes);
    } catch (const io_error& e) {
        throw io_error(advaug::detail::concat("write_png(): ", e.what()));
    }
}

/// Shared by both encode_png forms; `path` only appears in messages. The one function that
/// calls stb (see the comment on top).
inline std::vector<std::uint8_t> encode(const char* fn, const std::string& path,
                                        const std::uint8_t* pixels, std::size_t h, std::size_t w,
                                        std::size_t channels) {
    check_size(fn, path, h, w, channels);
    std::vector<std::uint8_t> out;
    const int iw = static_cast<int>(w), ih = static_cast<int>(h), ic = static_cast<int>(channels);
    const int ok = stbi_write_png_to_func(&append, &out, iw, ih, ic, pixels, iw * ic);
    if (ok == 0 || out.empty()) {
        throw io_error(advaug::detail::concat(
            fn, "(): the PNG encoder failed on a ", h, " x ", w, " image with ", channels,
            " channel(s)", path.empty() ? "" : " for '", path, path.empty() ? "" : "'"));
    }
    return out;
}

inline void check_rgb(const char* fn, const std::string& path, const tensor<std::uint8_t, 3>& rgb) {
    if (rgb.shape(2) != 3) {
        advaug::detail::invalid(fn, "rgb must have shape [H, W, 3], got ",
                                advaug::detail::shape_string(rgb.shape()),
                                path.empty() ? "" : " for '", path, path.empty() ? "" : "'");
    }
}

}  // namespace advaug::detail::png

namespace advaug::io {

inline std::vector<std::uint8_t> encode_png(const tensor<std::uint8_t, 2>& gray) {
    return detail::png::encode("encode_png", "", gray.data(), gray.shape(0), gray.shape(1), 1);
}

inline std::vector<std::uint8_t> encode_png(const tensor<std::uint8_t, 3>& rgb) {
    detail::png::check_rgb("encode_png", "", rgb);
    return detail::png::encode("encode_png", "", rgb.data(), rgb.shape(0), rgb.shape(1), 3);
}

inline void write_png(const std::string& path, const tensor<std::uint8_t, 2>& gray) {
    const auto bytes =
        detail::png::encode("write_png", path, gray.data(), gray.shape(0), gray.shape(1), 1);
    detail::png::write_png_bytes(path, bytes);
}

inline void write_png(const std::string& path, const tensor<std::uint8_t, 3>& rgb) {
    detail::png::check_rgb("write_png", path, rgb);
    const auto bytes =
        detail::png::encode("write_png", path, rgb.data(), rgb.shape(0), rgb.shape(1), 3);
    detail::png::write_png_bytes(path, bytes);
}

}  // namespace advaug::io
