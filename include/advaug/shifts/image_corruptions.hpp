// Common image corruptions for grayscale images with values in [0, 1]: distribution shifts
// to measure robustness against, next to the adversarial ones.
//
//   tensor<float, 2> img = ...;                  // [H, W], values in [0, 1]
//   corrupt(img, corruption::fog, 3, seed);      // in place, severity 1..5
//   corrupt_batch(batch, 28, 28, parse_corruption("zigzag"), 5, seed);
//                                                // batch [N, 784] or [N, 1, 28, 28]
//
// The set is the 15 corruptions of MNIST-C (N. Mu and J. Gilmer, "MNIST-C: A Robustness
// Benchmark for Computer Vision", ICML 2019 workshop; github.com/google-research/mnist-c)
// plus gaussian_noise and contrast from ImageNet-C (D. Hendrycks and T. Dietterich,
// "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
// ICLR 2019). Each has five severities. The parameters are MNIST-C's tables where it has them;
// where MNIST-C has a single setting (stripe, dotted_line, zigzag, canny_edges) advaug adds a
// five-step ladder that contains it, and spatter's severities 4 and 5 continue the trend of
// 1-3 (MNIST-C's are milder than its 3). docs/corruptions.md lists every value, its source,
// and each place where advaug had to choose.
//
// Every corruption is a deterministic function of (image, severity, seed): randomness comes
// from advaug::rng only, whose sequence is the same on every platform. Lengths are in pixels
// and meant for 28 x 28 images; on other sizes they are used unchanged, except positions tied
// to the image border (stripe widths scale with the width, lines span the image).
// Outputs stay in [0, 1].
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// The corruptions: MNIST-C's fifteen in its order, then two from ImageNet-C.
enum class corruption {
    shot_noise,      ///< Poisson noise: Poisson(x * c) / c
    impulse_noise,   ///< salt and pepper: a fraction of pixels set to 0 or 1
    glass_blur,      ///< blur, local pixel shuffling, blur
    motion_blur,     ///< one-sided blur along a random direction within 45 degrees of horizontal
    shear,           ///< horizontal shear about the centre, random direction
    scale,           ///< shrink about the centre
    rotate,          ///< rotation about the centre, random direction
    brightness,      ///< x + c
    translate,       ///< shift by c pixels in x and in y, random directions
    stripe,          ///< invert vertical bands at the left and right edges
    fog,             ///< add a plasma-fractal haze
    spatter,         ///< gray mud blobs
    dotted_line,     ///< dashed bright lines from the left to the right edge
    zigzag,          ///< bright zigzag lines
    canny_edges,     ///< the Canny edge map replaces the image
    gaussian_noise,  ///< x + N(0, c^2)
    contrast,        ///< (x - mean) * c + mean
};

inline constexpr int min_corruption_severity = 1;
inline constexpr int max_corruption_severity = 5;

/// The corruption's name, as in MNIST-C ("shot_noise", ...).
/// throws: std::invalid_argument for a value outside the enumeration.
inline std::string_view to_string(corruption c);

/// The corruption named `name` (exactly as to_string writes it).
/// throws: std::invalid_argument naming `name` and listing every valid name.
inline corruption parse_corruption(std::string_view name);

/// All corruptions, in enumeration order.
inline std::vector<corruption> all_corruptions();

/// Whether the result depends on the seed (false for scale, brightness, stripe, canny_edges
/// and contrast, which are fixed functions of the image).
inline bool is_random(corruption c);

/// The seed corrupt_batch() gives sample `index` of a batch corrupted with `seed`, so that
/// corrupt_batch(batch, ..., seed) corrupts sample i exactly as
/// corrupt(image_i, c, severity, corruption_seed(seed, i)) does.
constexpr std::uint64_t corruption_seed(std::uint64_t seed, std::size_t index) noexcept;

/// Corrupts `image` [H, W] in place.
/// requires: T is a floating-point type; H, W >= 1; every value in [0, 1];
///           severity in [min_corruption_severity, max_corruption_severity].
/// ensures:  every value in [0, 1]; the result depends only on (image, c, severity, seed).
/// throws:   std::invalid_argument naming the function, the argument and the value; the image
///           is unchanged then.
template <class T>
void corrupt(tensor<T, 2>& image, corruption c, int severity, std::uint64_t seed);

/// Corrupts every sample of `batch` in place: R == 2 for [N, height * width] rows, R == 4 for
/// [N, 1, height, width]. Sample i uses corruption_seed(seed, i). N may be 0.
/// throws: std::invalid_argument (as corrupt(), or if the shape does not match height and
///         width) before any sample is changed.
template <class T, std::size_t R>
void corrupt_batch(tensor<T, R>& batch, std::size_t height, std::size_t width, corruption c,
                   int severity, std::uint64_t seed);

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail::corruptions {

inline constexpr std::array<std::string_view, 17> names = {
    "shot_noise",  "impulse_noise", "glass_blur",  "motion_blur",    "shear",   "scale",
    "rotate",      "brightness",    "translate",   "stripe",         "fog",     "spatter",
    "dotted_line", "zigzag",        "canny_edges", "gaussian_noise", "contrast"};

// Parameters per severity 1..5. Sources: MNIST-C corruptions.py (M), ImageNet-C (I), or
// advaug's choice (A); docs/corruptions.md explains each.
inline constexpr double shot_noise_rate[5] = {60, 25, 12, 5, 3};             // M
inline constexpr double impulse_amount[5] = {0.03, 0.06, 0.09, 0.17, 0.27};  // M
struct glass_params {
    double sigma;
    int max_delta;
    int iterations;
};
inline constexpr glass_params glass[5] = {
    {0.7, 1, 2}, {0.9, 2, 1}, {1.0, 2, 3}, {1.1, 3, 2}, {1.5, 4, 2}};  // M
struct motion_params {
    double radius, sigma;
};
inline constexpr motion_params motion[5] = {{10, 3}, {15, 5}, {15, 8}, {15, 12}, {20, 15}};  // M
inline constexpr double shear_angle[5] = {0.2, 0.4, 0.6, 0.8, 1.0};       // M, radians
inline constexpr double scale_factor[5] = {0.9, 0.8, 0.7, 0.6, 0.5};      // M
inline constexpr double rotate_angle[5] = {0.2, 0.4, 0.6, 0.8, 1.0};      // M, radians
inline constexpr double brightness_shift[5] = {0.1, 0.2, 0.3, 0.4, 0.5};  // M
inline constexpr double translate_pixels[5] = {1, 2, 3, 4, 5};            // M
inline constexpr double stripe_width28[5] = {3, 5, 7, 9, 11};             // A (M: 7)
struct fog_params {
    double amount, decay;
};
inline constexpr fog_params fog[5] = {
    {1.5, 2.0}, {2.0, 2.0}, {2.5, 1.7}, {2.5, 1.5}, {3.0, 1.4}};  // M
struct spatter_params {
    double loc, scale, sigma, threshold, mask_sigma;
};
inline constexpr spatter_params spatter[5] = {{0.65, 0.3, 4, 0.69, 0.6},
                                              {0.65, 0.3, 3, 0.68, 0.6},
                                              {0.65, 0.3, 2, 0.68, 0.5},
                                              {0.65, 0.3, 2, 0.67, 0.5},         // A
                                              {0.65, 0.3, 2, 0.66, 0.5}};        // M 1-3, A 4-5
inline constexpr int dotted_line_count[5] = {1, 2, 3, 4, 5};                     // A (M: 1)
inline constexpr int zigzag_count[5] = {1, 2, 3, 4, 5};                          // A (M: 1)
inline constexpr double canny_sigma[5] = {0.6, 0.8, 1.0, 1.4, 1.8};              // A (M: 1)
inline constexpr double gaussian_noise_std[5] = {0.08, 0.12, 0.18, 0.26, 0.38};  // I
inline constexpr double contrast_factor[5] = {0.4, 0.3, 0.2, 0.1, 0.05};         // I

inline constexpr double spatter_gray = 63.0 / 255.0;        // MNIST-C's mud colour
inline constexpr double canny_low = 0.1, canny_high = 0.2;  // skimage.feature.canny defaults

/// A grayscale image in double precision, row-major.
struct plane {
    std::ptrdiff_t h = 0, w = 0;
    std::vector<double> v;

    plane() = default;
    plane(std::ptrdiff_t rows, std::ptrdiff_t cols, double fill = 0.0)
        : h(rows), w(cols), v(static_cast<std::size_t>(rows * cols), fill) {}
    double& operator()(std::ptrdiff_t r, std::ptrdiff_t c) {
        return v[static_cast<std::size_t>(r * w + c)];
    }
    double operator()(std::ptrdiff_t r, std::ptrdiff_t c) const {
        return v[static_cast<std::size_t>(r * w + c)];
    }
    /// The pixel with coordinates clamped into the image (border "nearest"/"edge").
    double clamped(std::ptrdiff_t r, std::ptrdiff_t c) const {
        return (*this)(std::clamp<std::ptrdiff_t>(r, 0, h - 1),
                       std::clamp<std::ptrdiff_t>(c, 0, w - 1));
    }
};

inline double clip01(double x) { return x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x); }

/// Uniform integer in [lo, hi), hi > lo (numpy's randint convention).
inline std::ptrdiff_t uniform_int(rng& r, std::ptrdiff_t lo, std::ptrdiff_t hi) {
    const auto k = static_cast<std::ptrdiff_t>(r.uniform() * static_cast<double>(hi - lo));
    return lo + std::min(k, hi - lo - 1);
}

inline double random_sign(rng& r) { return r.uniform() < 0.5 ? -1.0 : 1.0; }

/// Poisson(lambda) by Knuth's product of uniforms; lambda <= 60 here, so exp(-lambda) is a
/// normal double and the expected cost is lambda + 1 draws.
inline double poisson(rng& r, double lambda) {
    if (lambda <= 0.0) return 0.0;
    const double limit = std::exp(-lambda);
    double p = 1.0;
    int k = -1;
    do {
        ++k;
        p *= r.uniform();
    } while (p > limit);
    return k;
}

/// Normalised Gaussian kernel with scipy's radius, int(4 sigma + 0.5).
inline std::vector<double> gaussian_kernel(double sigma) {
    const auto radius = static_cast<std::ptrdiff_t>(4.0 * sigma + 0.5);
    std::vector<double> k(static_cast<std::size_t>(2 * radius + 1));
    double sum = 0.0;
    for (std::ptrdiff_t i = -radius; i <= radius; ++i) {
        const double x = static_cast<double>(i);
        sum += k[static_cast<std::size_t>(i + radius)] = std::exp(-x * x / (2.0 * sigma * sigma));
    }
    for (double& x : k) x /= sum;
    return k;
}

enum class border {
    nearest,      ///< pixels outside repeat the edge (scipy mode "nearest")
    renormalize,  ///< pixels outside are ignored and the weights inside rescaled to sum 1
};

/// Separable Gaussian blur.
inline plane gaussian_blur(const plane& in, double sigma, border mode) {
    const std::vector<double> k = gaussian_kernel(sigma);
    const auto radius = static_cast<std::ptrdiff_t>(k.size() / 2);
    auto pass = [&](const plane& src, bool along_rows) {
        plane dst(src.h, src.w);
        const std::ptrdiff_t n = along_rows ? src.w : src.h;
        for (std::ptrdiff_t r = 0; r < src.h; ++r) {
            for (std::ptrdiff_t c = 0; c < src.w; ++c) {
                const std::ptrdiff_t at = along_rows ? c : r;
                double sum = 0.0, weight = 0.0;
                for (std::ptrdiff_t j = -radius; j <= radius; ++j) {
                    std::ptrdiff_t q = at + j;
                    if (q < 0 || q >= n) {
                        if (mode == border::renormalize) continue;
                        q = std::clamp<std::ptrdiff_t>(q, 0, n - 1);
                    }
                    const double kj = k[static_cast<std::size_t>(j + radius)];
                    sum += kj * (along_rows ? src(r, q) : src(q, c));
                    weight += kj;
                }
                dst(r, c) = sum / weight;
            }
        }
        return dst;
    };
    return pass(pass(in, true), false);
}

/// Bilinear sample at (y, x); neighbours outside the image count as 0 (zero fill).
inline double bilinear_zero(const plane& p, double y, double x) {
    const double fy = std::floor(y), fx = std::floor(x);
    const auto r0 = static_cast<std::ptrdiff_t>(fy), c0 = static_cast<std::ptrdiff_t>(fx);
    const double ty = y - fy, tx = x - fx;
    auto at = [&](std::ptrdiff_t r, std::ptrdiff_t c) {
        return (r < 0 || r >= p.h || c < 0 || c >= p.w) ? 0.0 : p(r, c);
    };
    return (1 - ty) * ((1 - tx) * at(r0, c0) + tx * at(r0, c0 + 1)) +
           ty * ((1 - tx) * at(r0 + 1, c0) + tx * at(r0 + 1, c0 + 1));
}

/// Output pixel (x, y) takes the input at A (x - cx, y - cy) + (cx, cy) + (tx, ty), with
/// (cx, cy) the image centre: skimage.transform.warp with an inverse map, order 1, zero fill.
struct affine {
    double a = 1, b = 0, c = 0, d = 1, tx = 0, ty = 0;
};

inline plane warp(const plane& in, const affine& m) {
    plane out(in.h, in.w);
    const double cx = 0.5 * static_cast<double>(in.w - 1), cy = 0.5 * static_cast<double>(in.h - 1);
    for (std::ptrdiff_t r = 0; r < in.h; ++r) {
        for (std::ptrdiff_t c = 0; c < in.w; ++c) {
            const double x = static_cast<double>(c) - cx, y = static_cast<double>(r) - cy;
            out(r, c) =
                bilinear_zero(in, m.c * x + m.d * y + cy + m.ty, m.a * x + m.b * y + cx + m.tx);
        }
    }
    return out;
}

/// MNIST-C's line profile, log(1 - d / 2.3) + 1 clipped to [0, 1] (1 on the line, 0 from
/// 1.45 pixels away), at perpendicular distance d from the segment (x0, y0)-(x1, y1). If
/// `dash` is set, only the odd 2-pixel stretches along the line are drawn (dotted_line).
/// Returns the layer to add.
inline plane line_layer(std::ptrdiff_t h, std::ptrdiff_t w, double x0, double y0, double x1,
                        double y1, bool dash) {
    plane layer(h, w);
    const double dx = x1 - x0, dy = y1 - y0;
    const double length = std::hypot(dx, dy);
    if (length == 0.0) return layer;
    // Only pixels within 2 of the segment's bounding box can be nearer than the profile's reach
    // (1.45): the rest stay 0 without the distance (per pixel and segment, that was a sixth of
    // advaug-eval's time on the 17 corruptions). The pixels visited get the same values.
    auto first = [](double v, std::ptrdiff_t n) {
        return std::clamp<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(std::floor(v - 2.0)), 0, n);
    };
    auto last = [](double v, std::ptrdiff_t n) {
        return std::clamp<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(std::ceil(v + 2.0)) + 1, 0, n);
    };
    const std::ptrdiff_t r_first = first(std::min(y0, y1), h), r_last = last(std::max(y0, y1), h);
    const std::ptrdiff_t c_first = first(std::min(x0, x1), w), c_last = last(std::max(x0, x1), w);
    for (std::ptrdiff_t r = r_first; r < r_last; ++r) {
        for (std::ptrdiff_t c = c_first; c < c_last; ++c) {
            const double px = static_cast<double>(c) - x0, py = static_cast<double>(r) - y0;
            const double along = (px * dx + py * dy) / length;  // position along the line
            const double t = std::clamp(along, 0.0, length);
            const double d = std::hypot(px - t * dx / length, py - t * dy / length);
            if (d >= 2.3 * (1.0 - std::exp(-1.0))) continue;
            if (dash && static_cast<long>(std::floor(t / 2.0)) % 2 == 0) continue;
            layer(r, c) = clip01(std::log(1.0 - d / 2.3) + 1.0);
        }
    }
    return layer;
}

inline void add_clipped(plane& x, const plane& layer) {
    for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = std::min(1.0, x.v[i] + layer.v[i]);
}

/// Diamond-square plasma fractal on a size x size torus (size a power of two), scaled to
/// [0, 1]: MNIST-C's / ImageNet-C's plasma_fractal, including its quirk that the random
/// displacement at each level is uniform in [-wibble^2, wibble^2].
inline plane plasma_fractal(std::ptrdiff_t size, double decay, rng& r) {
    plane m(size, size);
    std::ptrdiff_t step = size;
    double wibble = 100.0;
    auto displaced = [&](double sum) { return sum / 4.0 + wibble * r.uniform(-wibble, wibble); };
    auto wrap = [&](std::ptrdiff_t i) { return (i % size + size) % size; };
    while (step >= 2) {
        const std::ptrdiff_t half = step / 2;
        // Squares: the centre of each cell is the mean of its four corners.
        for (std::ptrdiff_t i = 0; i < size; i += step)
            for (std::ptrdiff_t j = 0; j < size; j += step)
                m(i + half, j + half) =
                    displaced(m(i, j) + m(wrap(i + step), j) + m(i, wrap(j + step)) +
                              m(wrap(i + step), wrap(j + step)));
        // Diamonds: edge midpoints are the mean of the two corners and the two centres.
        for (std::ptrdiff_t i = 0; i < size; i += step)
            for (std::ptrdiff_t j = 0; j < size; j += step)
                m(i, j + half) = displaced(m(i + half, j + half) + m(wrap(i - half), j + half) +
                                           m(i, j) + m(i, wrap(j + step)));
        for (std::ptrdiff_t i = 0; i < size; i += step)
            for (std::ptrdiff_t j = 0; j < size; j += step)
                m(i + half, j) = displaced(m(i + half, j + half) + m(i + half, wrap(j - half)) +
                                           m(i, j) + m(wrap(i + step), j));
        step = half;
        wibble /= decay;
    }
    const auto [lo, hi] = std::minmax_element(m.v.begin(), m.v.end());
    const double min = *lo, range = *hi - *lo;
    for (double& x : m.v) x = range > 0.0 ? (x - min) / range : 0.0;
    return m;
}

/// Canny edge detector (J. Canny, 1986) as skimage.feature.canny does it: Gaussian smoothing
/// that ignores the outside of the image, Sobel gradients, non-maximum suppression across the
/// edge, double threshold on the gradient magnitude and hysteresis (8-connected). Border
/// pixels are never edges. Returns 1 on edges, 0 elsewhere.
inline plane canny(const plane& in, double sigma, double low, double high) {
    const plane s = gaussian_blur(in, sigma, border::renormalize);
    const std::ptrdiff_t h = in.h, w = in.w;
    plane gx(h, w), gy(h, w), mag(h, w);
    for (std::ptrdiff_t r = 0; r < h; ++r) {
        for (std::ptrdiff_t c = 0; c < w; ++c) {
            auto p = [&](std::ptrdiff_t dr, std::ptrdiff_t dc) {
                return s.clamped(r + dr, c + dc);
            };
            gx(r, c) = (p(-1, 1) + 2 * p(0, 1) + p(1, 1)) - (p(-1, -1) + 2 * p(0, -1) + p(1, -1));
            gy(r, c) = (p(1, -1) + 2 * p(1, 0) + p(1, 1)) - (p(-1, -1) + 2 * p(-1, 0) + p(-1, 1));
            mag(r, c) = std::hypot(gx(r, c), gy(r, c));
        }
    }
    // Non-maximum suppression along the gradient direction, quantised to 0, 45, 90 or 135
    // degrees. A pixel must beat its neighbour behind and at least tie the one ahead, so a
    // two-pixel plateau (a step between two pixels) keeps exactly one.
    plane kept(h, w);
    for (std::ptrdiff_t r = 1; r + 1 < h; ++r) {
        for (std::ptrdiff_t c = 1; c + 1 < w; ++c) {
            const double m = mag(r, c);
            if (m < low) continue;
            double angle = std::atan2(gy(r, c), gx(r, c)) * 180.0 / std::numbers::pi;
            if (angle < 0) angle += 180.0;
            std::ptrdiff_t dr = 0, dc = 1;  // 0 degrees: across columns
            if (angle >= 22.5 && angle < 67.5)
                dr = 1;  // 45: down-right (y grows down)
            else if (angle >= 67.5 && angle < 112.5)
                dr = 1, dc = 0;
            else if (angle >= 112.5 && angle < 157.5)
                dr = 1, dc = -1;
            if (m > mag(r - dr, c - dc) && m >= mag(r + dr, c + dc)) kept(r, c) = m;
        }
    }
    // Hysteresis: strong pixels, and weak ones connected to a strong one through weak ones.
    plane edges(h, w);
    std::vector<std::ptrdiff_t> stack;
    for (std::ptrdiff_t i = 0; i < h * w; ++i) {
        if (kept.v[static_cast<std::size_t>(i)] >= high) {
            edges.v[static_cast<std::size_t>(i)] = 1.0;
            stack.push_back(i);
        }
    }
    while (!stack.empty()) {
        const std::ptrdiff_t i = stack.back();
        stack.pop_back();
        const std::ptrdiff_t r = i / w, c = i % w;
        for (std::ptrdiff_t dr = -1; dr <= 1; ++dr) {
            for (std::ptrdiff_t dc = -1; dc <= 1; ++dc) {
                const std::ptrdiff_t rr = r + dr, cc = c + dc;
                if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
                if (edges(rr, cc) == 0.0 && kept(rr, cc) >= low) {
                    edges(rr, cc) = 1.0;
                    stack.push_back(rr * w + cc);
                }
            }
        }
    }
    return edges;
}

/// Applies corruption `c` at severity `s` (1..5, already checked) to `x`.
inline void apply(plane& x, corruption c, int s, std::uint64_t seed) {
    rng r(seed);
    const auto k = static_cast<std::size_t>(s - 1);
    const std::ptrdiff_t h = x.h, w = x.w;
    switch (c) {
        case corruption::shot_noise: {
            const double rate = shot_noise_rate[k];
            for (double& v : x.v) v = clip01(poisson(r, v * rate) / rate);
            break;
        }
        case corruption::impulse_noise: {
            // skimage.util.random_noise(mode="s&p"): each pixel with probability `amount`,
            // salt or pepper with equal odds.
            for (double& v : x.v) {
                if (r.uniform() < impulse_amount[k]) v = r.uniform() < 0.5 ? 0.0 : 1.0;
            }
            break;
        }
        case corruption::glass_blur: {
            const glass_params g = glass[k];
            x = gaussian_blur(x, g.sigma, border::nearest);
            const std::ptrdiff_t d = g.max_delta;
            for (int it = 0; it < g.iterations; ++it) {
                for (std::ptrdiff_t row = h - d; row > d; --row) {
                    for (std::ptrdiff_t col = w - d; col > d; --col) {
                        if (r.uniform() < 0.5) continue;
                        const std::ptrdiff_t dx = uniform_int(r, -d, d), dy = uniform_int(r, -d, d);
                        std::swap(x(row, col), x(row + dy, col + dx));
                    }
                }
            }
            x = gaussian_blur(x, g.sigma, border::nearest);
            break;
        }
        case corruption::motion_blur: {
            // ImageMagick's MotionBlurImage, as MNIST-C calls it: a one-sided kernel of
            // 2 ceil(radius) + 1 taps with weights exp(-i^2 / (2 sigma^2)) at whole-pixel
            // offsets along the direction, edge pixels repeated.
            const motion_params m = motion[k];
            const double angle = r.uniform(-45.0, 45.0) * std::numbers::pi / 180.0;
            const auto taps = static_cast<std::ptrdiff_t>(2.0 * std::ceil(m.radius) + 1.0);
            std::vector<double> weight(static_cast<std::size_t>(taps));
            std::vector<std::ptrdiff_t> ox(weight.size()), oy(weight.size());
            double sum = 0.0;
            for (std::ptrdiff_t i = 0; i < taps; ++i) {
                const auto u = static_cast<std::size_t>(i);
                const double t = static_cast<double>(i);
                sum += weight[u] = std::exp(-t * t / (2.0 * m.sigma * m.sigma));
                ox[u] = static_cast<std::ptrdiff_t>(std::ceil(t * std::cos(angle) - 0.5));
                oy[u] = static_cast<std::ptrdiff_t>(std::ceil(t * std::sin(angle) - 0.5));
            }
            const plane in = x;
            for (std::ptrdiff_t row = 0; row < h; ++row) {
                for (std::ptrdiff_t col = 0; col < w; ++col) {
                    double acc = 0.0;
                    for (std::size_t i = 0; i < weight.size(); ++i)
                        acc += weight[i] * in.clamped(row + oy[i], col + ox[i]);
                    x(row, col) = clip01(acc / sum);
                }
            }
            break;
        }
        case corruption::shear: {
            // skimage AffineTransform(shear=a) of 2019: [[1, -sin a], [0, cos a]].
            const double a = shear_angle[k] * random_sign(r);
            x = warp(x, {1.0, -std::sin(a), 0.0, std::cos(a), 0.0, 0.0});
            break;
        }
        case corruption::scale: {
            const double inv = 1.0 / scale_factor[k];
            x = warp(x, {inv, 0.0, 0.0, inv, 0.0, 0.0});
            break;
        }
        case corruption::rotate: {
            const double a = rotate_angle[k] * random_sign(r);
            x = warp(x, {std::cos(a), -std::sin(a), std::sin(a), std::cos(a), 0.0, 0.0});
            break;
        }
        case corruption::brightness: {
            // MNIST-C adds c to the HSV value channel; for a gray pixel that is x + c.
            for (double& v : x.v) v = std::min(1.0, v + brightness_shift[k]);
            break;
        }
        case corruption::translate: {
            const double tx = translate_pixels[k] * random_sign(r);
            const double ty = translate_pixels[k] * random_sign(r);
            x = warp(x, {1.0, 0.0, 0.0, 1.0, tx, ty});
            break;
        }
        case corruption::stripe: {
            const auto band = static_cast<std::ptrdiff_t>(
                std::lround(stripe_width28[k] * static_cast<double>(w) / 28.0));
            for (std::ptrdiff_t col = 0; col < w; ++col) {
                if (col >= band && col < w - band) continue;
                for (std::ptrdiff_t row = 0; row < h; ++row) x(row, col) = 1.0 - x(row, col);
            }
            break;
        }
        case corruption::fog: {
            const fog_params f = fog[k];
            // MNIST-C crops 28 x 28 out of a 256 x 256 map, which is nearly flat at that
            // scale; the smallest power of two that holds the image keeps ImageNet-C's
            // proportion (224 of 256) and the fog's structure.
            std::ptrdiff_t size = 2;
            while (size < std::max(h, w)) size *= 2;
            const plane haze = plasma_fractal(size, f.decay, r);
            const double max = *std::max_element(x.v.begin(), x.v.end());
            for (std::ptrdiff_t row = 0; row < h; ++row)
                for (std::ptrdiff_t col = 0; col < w; ++col)
                    x(row, col) =
                        clip01((x(row, col) + f.amount * haze(row, col)) * max / (max + f.amount));
            break;
        }
        case corruption::spatter: {
            const spatter_params p = spatter[k];
            plane liquid(h, w);
            for (double& v : liquid.v) v = p.loc + p.scale * r.normal();
            liquid = gaussian_blur(liquid, p.sigma, border::nearest);
            plane mask(h, w);
            for (std::size_t i = 0; i < mask.v.size(); ++i) mask.v[i] = liquid.v[i] > p.threshold;
            mask = gaussian_blur(mask, p.mask_sigma, border::nearest);
            for (std::size_t i = 0; i < x.v.size(); ++i) {
                const double m = mask.v[i] < 0.8 ? 0.0 : mask.v[i];
                x.v[i] = clip01(x.v[i] * (1.0 - m) + spatter_gray * m);
            }
            break;
        }
        case corruption::dotted_line: {
            for (int n = 0; n < dotted_line_count[k]; ++n) {
                const auto r0 =
                    static_cast<double>(uniform_int(r, 0, std::max<std::ptrdiff_t>(h - 1, 1)));
                const auto r1 =
                    static_cast<double>(uniform_int(r, 0, std::max<std::ptrdiff_t>(h - 1, 1)));
                add_clipped(x, line_layer(h, w, 0.0, r0, static_cast<double>(w - 1), r1, true));
            }
            break;
        }
        case corruption::zigzag: {
            // MNIST-C: teeth of half-period a = 2 and amplitude b = 2 along a baseline from
            // column 2 to column W - 3 that rises or falls by at most 5 rows.
            const double a = 2.0, b = 2.0;
            for (int n = 0; n < zigzag_count[k]; ++n) {
                const double c0 = 2.0, c1 = static_cast<double>(w) - 3.0;
                const auto r0 =
                    static_cast<double>(uniform_int(r, 0, std::max<std::ptrdiff_t>(h - 1, 1)));
                const double r1 = r0 + static_cast<double>(uniform_int(r, -5, 5));
                const double theta = std::atan2(r1 - r0, c1 - c0);
                const double length = std::hypot(c1 - c0, r1 - r0);
                std::vector<std::array<double, 2>> points = {{0.0, 0.0}};
                for (int i = 0; (2 * i + 1) * a < length; ++i)
                    points.push_back({(2 * i + 1) * a, (i % 2 == 0 ? 1.0 : -1.0) * b});
                points.push_back({length, 0.0});
                for (auto& [u, v] : points) {
                    const double cu = std::cos(theta) * u - std::sin(theta) * v;
                    const double cv = std::sin(theta) * u + std::cos(theta) * v;
                    u = cu + c0;
                    v = cv + r0;
                }
                for (std::size_t i = 1; i < points.size(); ++i)
                    add_clipped(x, line_layer(h, w, points[i - 1][0], points[i - 1][1],
                                              points[i][0], points[i][1], false));
            }
            break;
        }
        case corruption::canny_edges: {
            x = canny(x, canny_sigma[k], canny_low, canny_high);
            break;
        }
        case corruption::gaussian_noise: {
            for (double& v : x.v) v = clip01(v + gaussian_noise_std[k] * r.normal());
            break;
        }
        case corruption::contrast: {
            double mean = 0.0;
            for (double v : x.v) mean += v;
            mean /= static_cast<double>(x.v.size());
            for (double& v : x.v) v = clip01((v - mean) * contrast_factor[k] + mean);
            break;
        }
    }
    for (double& v : x.v) v = clip01(v);
}

inline void check_corruption(const char* fn, corruption c) {
    const auto i = static_cast<std::size_t>(c);
    if (i >= names.size()) invalid(fn, "c is not a corruption, got value ", static_cast<int>(c));
}

inline void check_severity(const char* fn, int severity) {
    if (severity < min_corruption_severity || severity > max_corruption_severity) {
        invalid(fn, "severity must be in ", min_corruption_severity, "..", max_corruption_severity,
                ", got ", severity);
    }
}

/// Every value of the h x w image at `p` in [0, 1]; `what` prefixes the position.
template <class T>
void check_unit_range(const char* fn, const char* argument, const T* p, std::size_t h,
                      std::size_t w, const std::string& what) {
    for (std::size_t i = 0; i < h * w; ++i) {
        if (!(p[i] >= T(0) && p[i] <= T(1))) {
            invalid(fn, argument, " must have values in [0, 1], got ", p[i], " at ", what, "(",
                    i / w, ", ", i % w, ")");
        }
    }
}

template <class T>
void corrupt_pixels(T* p, std::size_t h, std::size_t w, corruption c, int severity,
                    std::uint64_t seed) {
    plane x(static_cast<std::ptrdiff_t>(h), static_cast<std::ptrdiff_t>(w));
    for (std::size_t i = 0; i < h * w; ++i) x.v[i] = static_cast<double>(p[i]);
    apply(x, c, severity, seed);
    for (std::size_t i = 0; i < h * w; ++i) p[i] = static_cast<T>(x.v[i]);
}

}  // namespace detail::corruptions

inline std::string_view to_string(corruption c) {
    detail::corruptions::check_corruption("to_string", c);
    return detail::corruptions::names[static_cast<std::size_t>(c)];
}

inline corruption parse_corruption(std::string_view name) {
    const auto& names = detail::corruptions::names;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == name) return static_cast<corruption>(i);
    }
    std::string valid;
    for (std::string_view n : names) valid += (valid.empty() ? "" : ", ") + std::string(n);
    detail::invalid("parse_corruption", "unknown corruption '", name, "'; valid names: ", valid);
}

inline std::vector<corruption> all_corruptions() {
    std::vector<corruption> out;
    for (std::size_t i = 0; i < detail::corruptions::names.size(); ++i)
        out.push_back(static_cast<corruption>(i));
    return out;
}

inline bool is_random(corruption c) {
    detail::corruptions::check_corruption("is_random", c);
    switch (c) {
        case corruption::scale:
        case corruption::brightness:
        case corruption::stripe:
        case corruption::canny_edges:
        case corruption::contrast:
            return false;
        default:
            return true;
    }
}

constexpr std::uint64_t corruption_seed(std::uint64_t seed, std::size_t index) noexcept {
    // splitmix64 of the seed offset by the index: neighbouring samples and neighbouring seeds
    // get unrelated streams.
    std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<std::uint64_t>(index) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

template <class T>
void corrupt(tensor<T, 2>& image, corruption c, int severity, std::uint64_t seed) {
    static_assert(std::is_floating_point_v<T>, "corrupt(): T must be a floating-point type");
    const char* fn = "corrupt";
    detail::corruptions::check_corruption(fn, c);
    detail::corruptions::check_severity(fn, severity);
    const std::size_t h = image.shape(0), w = image.shape(1);
    if (h == 0 || w == 0) {
        detail::invalid(fn, "image is empty (shape ", detail::shape_string(image.shape()), ")");
    }
    detail::corruptions::check_unit_range(fn, "image", image.data(), h, w, "");
    detail::corruptions::corrupt_pixels(image.data(), h, w, c, severity, seed);
}

template <class T, std::size_t R>
void corrupt_batch(tensor<T, R>& batch, std::size_t height, std::size_t width, corruption c,
                   int severity, std::uint64_t seed) {
    static_assert(std::is_floating_point_v<T>, "corrupt_batch(): T must be a floating-point type");
    static_assert(R == 2 || R == 4,
                  "corrupt_batch(): batch must be [N, H * W] (rank 2) or [N, 1, H, W] (rank 4)");
    const char* fn = "corrupt_batch";
    detail::corruptions::check_corruption(fn, c);
    detail::corruptions::check_severity(fn, severity);
    if (height == 0 || width == 0) {
        detail::invalid(fn, "height and width must be positive, got height ", height, " and width ",
                        width);
    }
    const auto& shape = batch.shape();
    bool fits = false;
    std::string expected;
    if constexpr (R == 2) {
        fits = shape[1] % width == 0 && shape[1] / width == height;  // no overflow
        expected = detail::concat("[N, ", height * width, "]");
    } else {
        fits = shape[1] == 1 && shape[2] == height && shape[3] == width;
        expected = detail::concat("[N, 1, ", height, ", ", width, "]");
    }
    if (!fits) {
        detail::invalid(fn, "batch has shape ", detail::shape_string(shape), ", expected ",
                        expected, " for height ", height, " and width ", width);
    }
    const std::size_t n = shape[0], pixels = height * width;
    T* data = batch.data();
    for (std::size_t i = 0; i < n; ++i) {
        detail::corruptions::check_unit_range(fn, "batch", data + i * pixels, height, width,
                                              detail::concat("sample ", i, ", pixel "));
    }
    for (std::size_t i = 0; i < n; ++i) {
        detail::corruptions::corrupt_pixels(data + i * pixels, height, width, c, severity,
                                            corruption_seed(seed, i));
    }
}

}  // namespace advaug
