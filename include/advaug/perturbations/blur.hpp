// Gaussian blur with a differentiable width: the blur of Hendrycks and Dietterich's corruptions
// (ICLR 2019), with sigma as the parameter the search takes the worst case over.
//
// A separable kernel of radius ceil(3 * sigma_max) with weights exp(-k^2 / (2 sigma^2)),
// normalized to sum 1, applied along rows then columns; outside the image the border pixel is
// repeated. theta = (sigma) in pixels; sigma = 0 is the identity. The derivative in sigma is
// exact for sigma > 0; below 1e-3 pixels the kernel is taken as the identity, with derivative 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "advaug/backend/cpu.hpp"
#include "advaug/perturbations/budget.hpp"
#include "advaug/perturbations/detail/raw_family.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/image_shape.hpp"

namespace advaug {

template <class T>
class gaussian_blur : public detail::raw_family<gaussian_blur<T>, T>, public box_budgeted<T> {
    using base = detail::raw_family<gaussian_blur<T>, T>;
    friend base;

public:
    /// requires: 0 <= sigma.lo <= sigma.hi, finite (pixels).
    gaussian_blur(image_shape shape, interval sigma, input_domain domain = {})
        : base("gaussian_blur", std::move(domain),
               detail::checked_image_shape("gaussian_blur", shape).channels, shape.pixels(),
               std::vector<T>(1, T(0))),
          box_budgeted<T>(box_budget<T>("gaussian_blur", {sigma}, {"sigma"})),
          shape_(shape) {
        if (sigma.lo < 0) detail::invalid("gaussian_blur", "sigma.lo must be >= 0, got ", sigma.lo);
        radius_ = std::max<long>(1, static_cast<long>(std::ceil(3 * sigma.hi)));
        column_terms_ = column_adjoint_terms();
    }

private:
    /// Normalized weights w[k + radius] and their derivatives in sigma.
    void kernel(T sigma, std::vector<double>& w, std::vector<double>& dw) const {
        const long r = radius_;
        w.assign(2 * r + 1, 0.0);
        dw.assign(2 * r + 1, 0.0);
        const double s = static_cast<double>(sigma);
        if (s < 1e-3) {
            w[r] = 1.0;
            return;
        }
        double z = 0, m2 = 0;
        for (long k = -r; k <= r; ++k) {
            w[k + r] = std::exp(-double(k * k) / (2 * s * s));
            z += w[k + r];
        }
        for (long k = -r; k <= r; ++k) {
            w[k + r] /= z;
            m2 += w[k + r] * double(k * k);
        }
        for (long k = -r; k <= r; ++k) dw[k + r] = w[k + r] * (double(k * k) - m2) / (s * s * s);
    }

    /// A thread's scratch: the kernel and its derivative and the horizontal pass of every
    /// channel, kept from forward_row for backward_row, and the planes.
    struct workspace {
        std::vector<double> w, dw;
        std::vector<double> rows;
        std::vector<double> in, out, gin, gt, tmp, dx, pad;
        std::vector<double> kr;          // weights in the order of a pass's terms
        std::vector<const double*> src;  // and the rows they multiply
    };
    workspace make_workspace() const {
        const std::size_t hw = shape_.pixels();
        workspace ws;
        ws.rows.resize(shape_.channels * hw);
        for (auto* v : {&ws.in, &ws.out, &ws.gin, &ws.gt, &ws.tmp, &ws.dx}) v->resize(hw);
        const std::size_t r = static_cast<std::size_t>(radius_);
        ws.pad.resize(shape_.width + 2 * r);
        // A border row of the column adjoint takes up to (r + 1) (2 r + 1) terms.
        ws.kr.resize((r + 1) * (2 * r + 1));
        ws.src.resize((r + 1) * (2 * r + 1));
        return ws;
    }

    long clamp_index(long i, std::size_t n) const {
        return std::clamp(i, 0L, static_cast<long>(n) - 1);
    }

    // Each output of the passes below is the sum of the plain loops, in their order:
    //   out[i, j] = sum over q = -r .. r of k[q] in[i, clamp(j + q)]         (along a row)
    //   out[clamp(j + q)] += k[q] in[j], j ascending and then q ascending    (its adjoint)
    // and likewise along the columns. They run over a row of outputs at a time, with no clamp
    // in the inner loop, so that it vectorizes: the same values, summed in the same order
    // (a term of k times a padding 0 where the plain loop had none adds +0 to a sum that,
    // starting at +0, is never -0, so it changes nothing).

    /// dst[j] = 0 + k[0] src[0][j] + k[1] src[1][j] + ..., for j < n: the row of sums taken
    /// one term at a time (the row of outputs stays in cache), so that the additions
    /// of different outputs are independent and the loop vectorizes. Dispatched
    /// (backend/cpu.hpp): AVX2 sums four outputs per instruction, each in the same order.
    static void weighted_sum(double* dst, std::size_t n, const double* k,
                             const double* const* src, std::size_t terms) {
        backend::detail::run_kernel<weighted_sum_kernel>(dst, n, k, src, terms);
    }

    struct weighted_sum_kernel {
        ADVAUG_ALWAYS_INLINE static void run(double* __restrict dst, std::size_t n,
                                             const double* k, const double* const* src,
                                             std::size_t terms) {
            std::fill(dst, dst + n, 0.0);
            for (std::size_t t = 0; t < terms; ++t) add_scaled(dst, src[t], k[t], n);
        }

        /// dst[j] += kt * from[j] for j < n.
        ADVAUG_ALWAYS_INLINE static void add_scaled(double* __restrict dst,
                                                    const double* __restrict from, double kt,
                                                    std::size_t n) {
            for (std::size_t j = 0; j < n; ++j) dst[j] += kt * from[j];
        }
    };

    /// out = K in along the rows of an h x w plane, the border pixel repeated.
    void row_pass(const double* in, double* out, const std::vector<double>& k,
                  workspace& ws) const {
        const std::size_t h = shape_.height, w = shape_.width;
        const long r = radius_, taps = 2 * r + 1;
        double* pad = ws.pad.data();
        for (long q = 0; q < taps; ++q) ws.src[q] = pad + q;
        for (std::size_t i = 0; i < h; ++i) {
            const double* src = in + i * w;
            for (long j = -r; j < long(w) + r; ++j) pad[j + r] = src[clamp_index(j, w)];
            weighted_sum(out + i * w, w, k.data(), ws.src.data(), taps);
        }
    }

    /// out = K in along the columns.
    void column_pass(const double* in, double* out, const std::vector<double>& k,
                     workspace& ws) const {
        const std::size_t h = shape_.height, w = shape_.width;
        const long r = radius_;
        for (std::size_t i = 0; i < h; ++i) {
            for (long q = -r; q <= r; ++q) ws.src[q + r] = in + clamp_index(long(i) + q, h) * w;
            weighted_sum(out + i * w, w, k.data(), ws.src.data(), 2 * r + 1);
        }
    }

    /// out = K^T in along the rows.
    void row_adjoint(const double* in, double* out, const std::vector<double>& k,
                     workspace& ws) const {
        const std::size_t h = shape_.height, w = shape_.width;
        const long r = radius_, wl = static_cast<long>(w), taps = 2 * r + 1;
        // An inner output m takes in[m - q] for q = r down to -r (j = m - q ascending), read
        // from a copy with r zeros on either side.
        double* pad = ws.pad.data();
        std::fill(pad, pad + r, 0.0);
        std::fill(pad + r + wl, pad + 2 * r + wl, 0.0);
        for (long q = r; q >= -r; --q) {
            ws.kr[r - q] = k[q + r];
            ws.src[r - q] = pad + r + 1 - q;  // output m = 1 reads pad[r + 1 - q]
        }
        for (std::size_t i = 0; i < h; ++i) {
            const double* src = in + i * w;
            double* dst = out + i * w;
            std::copy(src, src + w, pad + r);
            if (wl > 2) weighted_sum(dst + 1, w - 2, ws.kr.data(), ws.src.data(), taps);
            // A border output takes every tap clamped onto it.
            for (long m = 0; m < wl; m += std::max(1L, wl - 1)) {
                double acc = 0;
                for (long j = std::max(0L, m - r); j <= std::min(wl - 1, m + r); ++j) {
                    for (long q = -r; q <= r; ++q) {
                        if (clamp_index(j + q, w) == m) acc += k[q + r] * src[j];
                    }
                }
                dst[m] = acc;
            }
        }
    }

    /// out = K^T in along the columns: output row m takes the terms column_terms_[m].
    void column_adjoint(const double* in, double* out, const std::vector<double>& k,
                        workspace& ws) const {
        const std::size_t w = shape_.width;
        for (std::size_t m = 0; m < shape_.height; ++m) {
            const auto& terms = column_terms_[m];
            for (std::size_t t = 0; t < terms.size(); ++t) {
                ws.kr[t] = k[terms[t].tap];
                ws.src[t] = in + terms[t].row * w;
            }
            weighted_sum(out + m * w, w, ws.kr.data(), ws.src.data(), terms.size());
        }
    }

    /// A term of the column adjoint: the kernel's weight `tap` (q + radius) times input row
    /// `row`.
    struct adjoint_term {
        std::size_t tap, row;
    };

    /// The terms of every output row m of the column adjoint, in the order of its sum: inner
    /// rows take row i = m - q for q = r down to -r; the border rows every row whose taps
    /// clamp onto them, i ascending and then q ascending. The same for every sample.
    std::vector<std::vector<adjoint_term>> column_adjoint_terms() const {
        const long r = radius_, hl = static_cast<long>(shape_.height);
        std::vector<std::vector<adjoint_term>> all(shape_.height);
        for (long m = 0; m < hl; ++m) {
            for (long i = std::max(0L, m - r); i <= std::min(hl - 1, m + r); ++i) {
                for (long q = r; q >= -r; --q) {
                    const bool border = m == 0 || m == hl - 1;
                    const long qq = border ? -q : q;  // ascending q at the border
                    if (border ? clamp_index(i + qq, shape_.height) != m : i != m - qq) continue;
                    all[m].push_back({static_cast<std::size_t>(qq + r), static_cast<std::size_t>(i)});
                }
            }
        }
        return all;
    }

    void forward_row(const T* u, const T* th, T* v, workspace& ws) const {
        kernel(th[0], ws.w, ws.dw);
        const std::size_t hw = shape_.pixels();
        for (std::size_t c = 0; c < shape_.channels; ++c) {
            std::copy(u + c * hw, u + (c + 1) * hw, ws.in.begin());
            double* t = ws.rows.data() + c * hw;
            row_pass(ws.in.data(), t, ws.w, ws);
            column_pass(t, ws.out.data(), ws.w, ws);
            for (std::size_t p = 0; p < hw; ++p) v[c * hw + p] = static_cast<T>(ws.out[p]);
        }
    }

    /// Reads the kernel and the horizontal passes of forward_row on this row.
    void backward_row(const T* u, const T*, const T* g, T* dth, T* du, workspace& ws) const {
        const std::size_t hw = shape_.pixels();
        double dsigma = 0;
        for (std::size_t c = 0; c < shape_.channels; ++c) {
            const double* t = ws.rows.data() + c * hw;
            std::copy(g + c * hw, g + (c + 1) * hw, ws.gin.begin());
            // out = Kv Kh u: dsigma = <g, Kv' t> + <Kv^T g, Kh' u>.
            column_adjoint(ws.gin.data(), ws.gt.data(), ws.w, ws);
            if (dth) {
                column_pass(t, ws.tmp.data(), ws.dw, ws);
                for (std::size_t p = 0; p < hw; ++p) dsigma += ws.gin[p] * ws.tmp[p];
                std::copy(u + c * hw, u + (c + 1) * hw, ws.in.begin());
                row_pass(ws.in.data(), ws.tmp.data(), ws.dw, ws);
                for (std::size_t p = 0; p < hw; ++p) dsigma += ws.gt[p] * ws.tmp[p];
            }
            if (du) {
                row_adjoint(ws.gt.data(), ws.dx.data(), ws.w, ws);
                for (std::size_t p = 0; p < hw; ++p) du[c * hw + p] = static_cast<T>(ws.dx[p]);
            }
        }
        if (dth) dth[0] = static_cast<T>(dsigma);
    }

    image_shape shape_;
    long radius_ = 1;
    std::vector<std::vector<adjoint_term>> column_terms_;
};

}  // namespace advaug
