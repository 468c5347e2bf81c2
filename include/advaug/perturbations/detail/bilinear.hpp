// Bilinear sampling of one image plane at a real-valued (row, column), its derivative in the
// coordinates, and its adjoint in the plane: the one sampler that the affine and the
// displacement-field families share.
//
// The plane is first copied into a frame of two pixels on every side, holding what a sample
// outside the image reads (zeros, or the nearest border pixel). A sample's top-left neighbour
// is then clamped into the frame, with its fractional parts kept: a neighbour pair that lies
// wholly outside the image reads two frame pixels that hold the same values as the unframed
// sampler read there, so the inner loops have no bounds tests and the values are the same bits
// as reading each neighbour with its own test.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "advaug/backend/cpu.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/perturbations/image_shape.hpp"

#ifdef ADVAUG_ISA_DISPATCH
#include <immintrin.h>
#endif

namespace advaug {

/// What a sample outside the image reads: raw 0, or the nearest border pixel.
enum class padding { zeros, border };

namespace detail {

/// The frame's width on every side of a framed plane.
inline constexpr long bilinear_frame = 2;

/// `shape`, checked as well for a framed plane: its (h + 4) x (w + 4) values are indexed with 32
/// bits.
inline image_shape checked_framed_shape(const char* function, image_shape shape) {
    checked_image_shape(function, shape);
    const std::size_t limit = static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max());
    const std::size_t frame = 2 * static_cast<std::size_t>(bilinear_frame);
    if (shape.height > limit || shape.width > limit ||
        (shape.height + frame) > limit / (shape.width + frame)) {
        invalid(function, "images of ", shape.height, " x ", shape.width,
                " pixels are too large to sample (at most 2^31 - 1 pixels with a 2-pixel frame)");
    }
    return shape;
}

/// The samples of every output pixel of a warp: the top-left neighbour's index in the framed
/// plane and the fractional parts of the row and column.
struct bilinear_samples {
    std::vector<std::int32_t> base;
    std::vector<double> fy, fx;

    explicit bilinear_samples(std::size_t pixels = 0) : base(pixels), fy(pixels), fx(pixels) {}
};

/// The framed copy of an h x w plane: (h + 4) x (w + 4) values.
template <class T>
class framed_plane {
public:
    framed_plane(std::size_t h, std::size_t w, padding pad)
        : h_(h), w_(w), pad_(pad), values_((h + 2 * bilinear_frame) * stride(), T(0)) {}

    std::size_t stride() const { return w_ + 2 * bilinear_frame; }
    const T* data() const { return values_.data(); }

    /// Copies the plane in; with border padding, the frame repeats the nearest border pixel.
    void fill(const T* plane) {
        const std::size_t s = stride();
        const long f = bilinear_frame;
        for (std::size_t i = 0; i < h_; ++i) {
            T* row = values_.data() + (i + f) * s;
            std::copy(plane + i * w_, plane + (i + 1) * w_, row + f);
            if (pad_ == padding::border) {
                std::fill(row, row + f, plane[i * w_]);
                std::fill(row + f + w_, row + s, plane[i * w_ + w_ - 1]);
            }
        }
        if (pad_ == padding::border) {
            for (long i = 0; i < f; ++i) {
                std::copy(values_.data() + f * s, values_.data() + (f + 1) * s,
                          values_.data() + i * s);
                const std::size_t last = h_ - 1 + f;
                std::copy(values_.data() + last * s, values_.data() + (last + 1) * s,
                          values_.data() + (last + 1 + i) * s);
            }
        }
    }

private:
    std::size_t h_, w_;
    padding pad_;
    std::vector<T> values_;
};

/// floor(c) clamped into [-2, n] (NaN to -2), as an integer.
inline std::int32_t bilinear_neighbour(double floor_c, std::int32_t n) {
    double c = floor_c > -double(bilinear_frame) ? floor_c : -double(bilinear_frame);
    c = c < double(n) ? c : double(n);
    return static_cast<std::int32_t>(c);
}

/// Sample p of an h x w plane whose framed copy has `stride` = w + 4 columns, from its
/// coordinates (row y, column x) held in fy[p] and fx[p]: the top-left neighbour's index and
/// the fractional parts.
ADVAUG_ALWAYS_INLINE void bilinear_locate_one(std::int32_t* base, double* fy, double* fx,
                                              std::size_t p, std::int32_t h, std::int32_t w,
                                              std::int32_t stride) {
    const double y = fy[p], x = fx[p];
    const double y0f = std::floor(y), x0f = std::floor(x);
    fy[p] = y - y0f;
    fx[p] = x - x0f;
    base[p] = (bilinear_neighbour(y0f, h) + std::int32_t(bilinear_frame)) * stride +
              bilinear_neighbour(x0f, w) + std::int32_t(bilinear_frame);
}

inline void bilinear_locate_baseline(std::int32_t* base, double* fy, double* fx, std::size_t n,
                                     std::int32_t h, std::int32_t w) {
    const std::int32_t stride = w + 2 * std::int32_t(bilinear_frame);
    for (std::size_t p = 0; p < n; ++p) bilinear_locate_one(base, fy, fx, p, h, w, stride);
}

#ifdef ADVAUG_ISA_DISPATCH
/// The same operations four samples at a time (GCC vectorizes neither std::floor nor the
/// selects unless floating-point traps are off, hence the intrinsics): floor is exact either
/// way, max and min return their second operand for NaN as the selects above do.
ADVAUG_TARGET_AVX2 inline void bilinear_locate_avx2(std::int32_t* base, double* fy, double* fx,
                                                    std::size_t n, std::int32_t h,
                                                    std::int32_t w) {
    const std::int32_t stride = w + 2 * std::int32_t(bilinear_frame);
    const __m256d lowest = _mm256_set1_pd(-double(bilinear_frame));
    const __m256d hd = _mm256_set1_pd(double(h)), wd = _mm256_set1_pd(double(w));
    const __m128i frame = _mm_set1_epi32(std::int32_t(bilinear_frame));
    const __m128i stride4 = _mm_set1_epi32(stride);
    std::size_t p = 0;
    for (; p + 4 <= n; p += 4) {
        const __m256d y = _mm256_loadu_pd(fy + p), x = _mm256_loadu_pd(fx + p);
        const __m256d y0 = _mm256_floor_pd(y), x0 = _mm256_floor_pd(x);
        _mm256_storeu_pd(fy + p, _mm256_sub_pd(y, y0));
        _mm256_storeu_pd(fx + p, _mm256_sub_pd(x, x0));
        const __m128i iy = _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_max_pd(y0, lowest), hd));
        const __m128i ix = _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_max_pd(x0, lowest), wd));
        const __m128i b = _mm_add_epi32(
            _mm_add_epi32(_mm_mullo_epi32(_mm_add_epi32(iy, frame), stride4), ix), frame);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(base + p), b);
    }
    for (; p < n; ++p) bilinear_locate_one(base, fy, fx, p, h, w, stride);
}
#endif

/// Turns the coordinates of samples [0, n) of `s`, held in s.fy (rows) and s.fx (columns),
/// into samples of an h x w plane, in place. Dispatched (backend/cpu.hpp).
inline void bilinear_locate(bilinear_samples& s, std::size_t n, std::int32_t h, std::int32_t w) {
#ifdef ADVAUG_ISA_DISPATCH
    if (backend::detail::avx2_kernels()) {
        bilinear_locate_avx2(s.base.data(), s.fy.data(), s.fx.data(), n, h, w);
        return;
    }
#endif
    bilinear_locate_baseline(s.base.data(), s.fy.data(), s.fx.data(), n, h, w);
}

/// v[p] = the framed plane sampled at sample p, for p < n: the four neighbours' weighted sum,
/// top-left first, in double. Dispatched (backend/cpu.hpp): gathers with AVX2.
template <class T>
struct bilinear_sample_kernel {
    ADVAUG_ALWAYS_INLINE static void run(const T* __restrict framed, std::int32_t stride,
                                         const std::int32_t* __restrict base,
                                         const double* __restrict fy, const double* __restrict fx,
                                         std::size_t n, T* __restrict v) {
        for (std::size_t p = 0; p < n; ++p) {
            const std::int32_t b = base[p];
            const double y = fy[p], x = fx[p];
            double a = 0;
            a += (1 - y) * (1 - x) * static_cast<double>(framed[b]);
            a += (1 - y) * x * static_cast<double>(framed[b + 1]);
            a += y * (1 - x) * static_cast<double>(framed[b + stride]);
            a += y * x * static_cast<double>(framed[b + stride + 1]);
            v[p] = static_cast<T>(a);
        }
    }
};

/// dy[p], dx[p] = d value / d row and d value / d column of sample p (one-sided at integer
/// coordinates), for p < n. Dispatched like the sampler.
template <class T>
struct bilinear_gradient_kernel {
    ADVAUG_ALWAYS_INLINE static void run(const T* __restrict framed, std::int32_t stride,
                                         const std::int32_t* __restrict base,
                                         const double* __restrict fy, const double* __restrict fx,
                                         std::size_t n, double* __restrict dy,
                                         double* __restrict dx) {
        for (std::size_t p = 0; p < n; ++p) {
            const std::int32_t b = base[p];
            const double y = fy[p], x = fx[p];
            const double v00 = framed[b], v01 = framed[b + 1];
            const double v10 = framed[b + stride], v11 = framed[b + stride + 1];
            dx[p] = (1 - y) * (v01 - v00) + y * (v11 - v10);
            dy[p] = (1 - x) * (v10 - v00) + x * (v11 - v01);
        }
    }
};

/// v = every channel of `planes` sampled at every sample of `s` (hw each, channel-major).
template <class T>
void bilinear_sample_planes(const std::vector<framed_plane<T>>& planes, const bilinear_samples& s,
                            std::size_t hw, T* v) {
    for (std::size_t c = 0; c < planes.size(); ++c) {
        backend::detail::run_kernel<bilinear_sample_kernel<T>>(
            planes[c].data(), static_cast<std::int32_t>(planes[c].stride()), s.base.data(),
            s.fy.data(), s.fx.data(), hw, v + c * hw);
    }
}

/// The image pixels that one sample's four neighbours give their weights to, top-left first,
/// and those weights: a neighbour outside an h x w image is dropped (zeros, index -1) or
/// clamped onto it (border). `base` is the sample's top-left neighbour in a framed plane of
/// row length `stride` (always >= 0: the neighbour is clamped into the frame).
struct bilinear_targets {
    long index[4];
    double weight[4];

    /// inv_stride: 1.0 / stride, so that the row is found by a multiplication rather than an
    /// integer division per sample and channel; the remainder corrects it, so the split is
    /// exact for any base.
    bilinear_targets(std::size_t h, std::size_t w, padding pad, std::int32_t base, double fy,
                     double fx, long stride, double inv_stride) {
        long q = static_cast<long>((static_cast<double>(base) + 0.5) * inv_stride);
        long r = static_cast<long>(base) - q * stride;
        while (r < 0) {
            --q;
            r += stride;
        }
        while (r >= stride) {
            ++q;
            r -= stride;
        }
        const long y0 = q - bilinear_frame, x0 = r - bilinear_frame;
        const long hl = static_cast<long>(h), wl = static_cast<long>(w);
        for (int k = 0; k < 4; ++k) {
            long yy = y0 + (k >> 1), xx = x0 + (k & 1);
            weight[k] = ((k >> 1) ? fy : 1 - fy) * ((k & 1) ? fx : 1 - fx);
            if (pad == padding::border) {
                yy = std::clamp(yy, 0L, hl - 1);
                xx = std::clamp(xx, 0L, wl - 1);
            } else if (yy < 0 || yy >= hl || xx < 0 || xx >= wl) {
                index[k] = -1;
                continue;
            }
            index[k] = yy * wl + xx;
        }
    }
};

/// The backward pass of a warp that sampled every output pixel p of each channel c at
/// samples p of the framed planes planes[c] (hw = h * w pixels, channel-major rows): du = the
/// adjoint of the sampling applied to g, when du is not null; and, when dydx is not null, the
/// sampled values' derivatives in the row coordinate (dydx[c * hw + p]) and in the column
/// coordinate (dydx[(channels + c) * hw + p]).
template <class T>
void bilinear_warp_backward(const std::vector<framed_plane<T>>& planes, const T* g, T* du,
                            const bilinear_samples& s, std::size_t h, std::size_t w, padding pad,
                            std::vector<double>* dydx) {
    const std::size_t channels = planes.size(), hw = h * w;
    if (du) {
        // du += g * d value / d plane, sample by sample, each neighbour in turn: the targets
        // and weights are shared by the channels (their planes are disjoint).
        std::fill(du, du + channels * hw, T(0));
        const long stride = static_cast<long>(w) + 2 * bilinear_frame;
        const double inv_stride = 1.0 / static_cast<double>(stride);
        for (std::size_t p = 0; p < hw; ++p) {
            const bilinear_targets t(h, w, pad, s.base[p], s.fy[p], s.fx[p], stride, inv_stride);
            for (std::size_t c = 0; c < channels; ++c) {
                const T gc = g[c * hw + p];
                T* dplane = du + c * hw;
                for (int k = 0; k < 4; ++k) {
                    if (t.index[k] >= 0) dplane[t.index[k]] += static_cast<T>(t.weight[k] * gc);
                }
            }
        }
    }
    if (!dydx) return;
    dydx->resize(2 * channels * hw);
    double* dy = dydx->data();
    double* dx = dy + channels * hw;
    for (std::size_t c = 0; c < channels; ++c) {
        backend::detail::run_kernel<bilinear_gradient_kernel<T>>(
            planes[c].data(), static_cast<std::int32_t>(planes[c].stride()), s.base.data(),
            s.fy.data(), s.fx.data(), hw, dy + c * hw, dx + c * hw);
    }
}

}  // namespace detail
}  // namespace advaug
