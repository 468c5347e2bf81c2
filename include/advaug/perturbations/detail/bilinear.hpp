// Bilinear sampling of one image plane at a real-valued (row, column), its derivative in the
// coordinates, and its adjoint in the plane: the one sampler that the affine and the
// displacement-field families share.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace advaug {

/// What a sample outside the image reads: raw 0, or the nearest border pixel.
enum class padding { zeros, border };

namespace detail {

/// The four neighbours of (sy, sx) with their weights; an index of -1 reads as zero.
struct bilinear_taps {
    long index[4];
    double weight[4];
    double fy, fx;  // fractional parts, for the coordinate derivative
};

/// Writes the taps in place: a struct built on the stack and then copied was read back before
/// its stores had landed (a store-forwarding stall on every pixel).
inline void bilinear_at(double sy, double sx, std::size_t h, std::size_t w, padding pad,
                        bilinear_taps& t) {
    const double y0f = std::floor(sy), x0f = std::floor(sx);
    t.fy = sy - y0f;
    t.fx = sx - x0f;
    const long y0 = static_cast<long>(y0f), x0 = static_cast<long>(x0f);
    const long hl = static_cast<long>(h), wl = static_cast<long>(w);
    for (int k = 0; k < 4; ++k) {
        long yy = y0 + (k >> 1), xx = x0 + (k & 1);
        if (pad == padding::border) {
            yy = std::clamp(yy, 0L, hl - 1);
            xx = std::clamp(xx, 0L, wl - 1);
        }
        t.index[k] = (yy < 0 || yy >= hl || xx < 0 || xx >= wl) ? -1 : yy * wl + xx;
        t.weight[k] = ((k >> 1) ? t.fy : 1 - t.fy) * ((k & 1) ? t.fx : 1 - t.fx);
    }
}

template <class T>
T tap(const T* plane, long index) {
    return index < 0 ? T(0) : plane[index];
}

/// The sampled value.
template <class T>
T bilinear_value(const T* plane, const bilinear_taps& t) {
    double v = 0;
    for (int k = 0; k < 4; ++k) v += t.weight[k] * static_cast<double>(tap(plane, t.index[k]));
    return static_cast<T>(v);
}

/// d value / d row and d value / d column (one-sided at integer coordinates).
template <class T>
void bilinear_coordinate_gradient(const T* plane, const bilinear_taps& t, double& dy, double& dx) {
    const double v00 = tap(plane, t.index[0]), v01 = tap(plane, t.index[1]);
    const double v10 = tap(plane, t.index[2]), v11 = tap(plane, t.index[3]);
    dx = (1 - t.fy) * (v01 - v00) + t.fy * (v11 - v10);
    dy = (1 - t.fx) * (v10 - v00) + t.fx * (v11 - v01);
}

/// dplane += g * d value / d plane.
template <class T>
void bilinear_scatter(T* dplane, const bilinear_taps& t, T g) {
    for (int k = 0; k < 4; ++k) {
        if (t.index[k] >= 0) dplane[t.index[k]] += static_cast<T>(t.weight[k] * g);
    }
}

/// The backward pass of a warp that sampled every output pixel p of each channel at taps[p]
/// (hw pixels, channel-major rows): du = the adjoint of the sampling applied to g (when du is
/// not null), and f(p, dy, dx, g) for every output element with g != 0 when `coordinates`, dy
/// and dx being the sampled value's derivatives in the row and column coordinates.
template <class T, class F>
void bilinear_warp_backward(const T* u, const T* g, T* du, const bilinear_taps* taps,
                            std::size_t channels, std::size_t hw, bool coordinates, F&& f) {
    if (du) std::fill(du, du + channels * hw, T(0));
    for (std::size_t p = 0; p < hw; ++p) {
        const bilinear_taps& t = taps[p];
        for (std::size_t c = 0; c < channels; ++c) {
            const T gp = g[c * hw + p];
            if (du) bilinear_scatter(du + c * hw, t, gp);
            if (!coordinates || gp == T(0)) continue;
            double dy, dx;
            bilinear_coordinate_gradient(u + c * hw, t, dy, dx);
            f(p, dy, dx, gp);
        }
    }
}

}  // namespace detail
}  // namespace advaug
