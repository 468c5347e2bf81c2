// Adversarial examples to look at and to keep.
//
//   write_example_grid("examples.png", clean, adversarial, 10.0);   // [N, H, W] in [0, 1]
//   io::write_npy("adversarial.npy", adversarial);  // exact float32 values, io/npy.hpp
//
// The grid is for eyes: one row per image, showing clean | adversarial | perturbation. The
// perturbation column shows 0.5 + amplification * (adversarial - clean), clipped to [0, 1],
// so an unchanged pixel is mid-grey (128), a raised one lighter and a lowered one darker. An
// L-infinity perturbation of 0.1 is invisible at amplification 1 and plain at 5.
//
// PNG stores 8 bits per channel: a perturbation smaller than 1/255 (about 0.004, and that is
// a common epsilon for ImageNet-scale attacks) rounds away, and every value moves by up to
// 1/510. An adversarial example read back from a PNG is therefore a different input and may
// no longer fool the model. To keep examples for later evaluation use io::write_npy
// (io/npy.hpp), which stores the exact values (numpy.load reads them).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/io/atomic_file.hpp"
#include "advaug/io/png.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// Writes a grayscale PNG with one row per image: clean | adversarial | amplified
/// perturbation, each enlarged `scale` times (nearest neighbour), separated and surrounded
/// by white gaps of example_grid_gap pixels. The file is
///   width  = 3 * W * scale + 4 * example_grid_gap,
///   height = N * H * scale + (N + 1) * example_grid_gap pixels.
/// requires: clean and adversarial [N, H, W] of the same shape, N, H, W >= 1, finite values
///           (values outside [0, 1] are clipped for display); amplification finite and > 0;
///           1 <= scale <= 64.
/// throws:   std::invalid_argument naming the problem; io_error if the file cannot be
///           written (an existing file is then left as it was).
inline void write_example_grid(const std::string& png_path, const tensor<float, 3>& clean,
                               const tensor<float, 3>& adversarial, double amplification,
                               std::size_t scale = 4);

/// The same for images with channels last, [N, H, W, C]: C = 1 gives a grayscale PNG, C = 3
/// an RGB one (the perturbation column amplified per channel). throws: as above, and
/// std::invalid_argument for any other C.
inline void write_example_grid(const std::string& png_path, const tensor<float, 4>& clean,
                               const tensor<float, 4>& adversarial, double amplification,
                               std::size_t scale = 4);

/// Gap between the grid's cells, in output pixels.
inline constexpr std::size_t example_grid_gap = 4;

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail::report {

/// The grid for [N, H, W, C] data given as raw pointers; C is 1 or 3.
inline tensor<std::uint8_t, 3> example_grid(const char* fn, const float* clean, const float* adv,
                                            std::size_t n, std::size_t h, std::size_t w,
                                            std::size_t channels, double amplification,
                                            std::size_t scale) {
    if (!std::isfinite(amplification) || amplification <= 0) {
        detail::invalid(fn, "amplification must be finite and > 0, got ", amplification);
    }
    if (scale < 1 || scale > 64) detail::invalid(fn, "scale must be in [1, 64], got ", scale);
    if (n == 0 || h == 0 || w == 0) {
        detail::invalid(fn, "there are no images to show (", n, " images of ", h, " x ", w, ")");
    }
    const std::size_t plane = h * w * channels;
    for (std::size_t i = 0; i < n * plane; ++i) {
        if (!std::isfinite(clean[i]) || !std::isfinite(adv[i])) {
            detail::invalid(fn, std::isfinite(clean[i]) ? "adversarial" : "clean",
                            " must be finite, got ", std::isfinite(clean[i]) ? adv[i] : clean[i],
                            " in image ", i / plane, " at (", (i % plane) / (w * channels), ", ",
                            (i % (w * channels)) / channels, ")");
        }
    }
    const std::size_t gap = example_grid_gap;
    const std::size_t cw = w * scale, ch = h * scale;
    const std::size_t width = 3 * cw + 4 * gap, height = n * ch + (n + 1) * gap;
    tensor<std::uint8_t, 3> out = tensor<std::uint8_t, 3>::from_shape({height, width, channels});
    std::fill(out.begin(), out.end(), std::uint8_t(255));
    auto to8 = [](double v) {
        return static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
    };
    for (std::size_t img = 0; img < n; ++img) {
        const std::size_t y0 = gap + img * (ch + gap);
        for (std::size_t y = 0; y < h; ++y) {
            for (std::size_t x = 0; x < w; ++x) {
                for (std::size_t c = 0; c < channels; ++c) {
                    const std::size_t i = img * plane + (y * w + x) * channels + c;
                    const double a = clean[i], b = adv[i];
                    const std::uint8_t value[3] = {to8(a), to8(b),
                                                   to8(0.5 + amplification * (b - a))};
                    for (std::size_t col = 0; col < 3; ++col) {
                        const std::size_t x0 = gap + col * (cw + gap) + x * scale;
                        for (std::size_t dy = 0; dy < scale; ++dy) {
                            std::uint8_t* row =
                                out.data() + ((y0 + y * scale + dy) * width + x0) * channels;
                            for (std::size_t dx = 0; dx < scale; ++dx)
                                row[dx * channels + c] = value[col];
                        }
                    }
                }
            }
        }
    }
    return out;
}

/// [H, W, 1] as [H, W].
inline tensor<std::uint8_t, 2> drop_channel(const tensor<std::uint8_t, 3>& image) {
    auto out = tensor<std::uint8_t, 2>::from_shape({image.shape(0), image.shape(1)});
    std::copy(image.begin(), image.end(), out.begin());
    return out;
}

template <class Shape>
void check_same_shape(const char* fn, const Shape& clean, const Shape& adversarial) {
    if (!std::equal(clean.begin(), clean.end(), adversarial.begin(), adversarial.end())) {
        detail::invalid(fn, "clean has shape ", detail::shape_string(clean),
                        ", adversarial has shape ", detail::shape_string(adversarial));
    }
}

}  // namespace detail::report

inline void write_example_grid(const std::string& png_path, const tensor<float, 3>& clean,
                               const tensor<float, 3>& adversarial, double amplification,
                               std::size_t scale) {
    const char* fn = "write_example_grid";
    detail::report::check_same_shape(fn, clean.shape(), adversarial.shape());
    const tensor<std::uint8_t, 3> grid =
        detail::report::example_grid(fn, clean.data(), adversarial.data(), clean.shape(0),
                                     clean.shape(1), clean.shape(2), 1, amplification, scale);
    io::write_png(png_path, detail::report::drop_channel(grid));
}

inline void write_example_grid(const std::string& png_path, const tensor<float, 4>& clean,
                               const tensor<float, 4>& adversarial, double amplification,
                               std::size_t scale) {
    const char* fn = "write_example_grid";
    detail::report::check_same_shape(fn, clean.shape(), adversarial.shape());
    const std::size_t c = clean.shape(3);
    if (c != 1 && c != 3) {
        detail::invalid(fn, "images must have 1 or 3 channels (shape [N, H, W, C]), got shape ",
                        detail::shape_string(clean.shape()));
    }
    const tensor<std::uint8_t, 3> grid =
        detail::report::example_grid(fn, clean.data(), adversarial.data(), clean.shape(0),
                                     clean.shape(1), clean.shape(2), c, amplification, scale);
    if (c == 3) {
        io::write_png(png_path, grid);
    } else {
        io::write_png(png_path, detail::report::drop_channel(grid));
    }
}

}  // namespace advaug
