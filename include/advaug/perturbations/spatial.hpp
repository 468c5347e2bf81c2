// Spatial perturbations of images, by bilinear sampling (every channel moves alike):
//
// affine (Engstrom et al. 2019, "Exploring the landscape of spatial robustness", who rotate
// and translate; scale and shear added). Output pixel p (row, column) reads the input at
//   c + A (p - c) + t,   A = R(rotation) [[1, shear], [0, 1]] diag(1 + scale_x, 1 + scale_y)
// with c the image centre, rotation in degrees, t = (translate_y, translate_x) in pixels.
// theta = (rotation, scale_x, scale_y, shear, translate_x, translate_y); identity all zero.
//
// displacement_field (Xiao et al. 2018, "Spatially transformed adversarial examples", stAdv).
// Output pixel p reads the input at p + f(p), where the flow f is the bilinear interpolation of
// a grid x grid lattice of control displacements spread over the image. stAdv penalizes the
// flow's total variation; here smoothness is a hard budget instead, the lattice's coarseness
// (grid = 2 is nearly an affine warp, grid = H a free per-pixel flow), and the magnitude is
// a box: every control displacement, hence every pixel's, within max_displacement pixels.
// theta = (column displacements, then row displacements), grid * grid each, row-major.
//
// Both are differentiable in theta and x almost everywhere (bilinear sampling has kinks where
// a coordinate crosses an integer).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <vector>

#include "advaug/backend/cpu.hpp"
#include "advaug/perturbations/budget.hpp"
#include "advaug/perturbations/detail/bilinear.hpp"
#include "advaug/perturbations/detail/raw_family.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/image_shape.hpp"

namespace advaug {

struct affine_budget {
    interval rotation{};  // degrees
    interval scale_x{};   // relative: 0.1 stretches columns by 10 %
    interval scale_y{};
    interval shear{};        // column shift per row, relative
    interval translate_x{};  // pixels
    interval translate_y{};
};

template <class T>
class affine : public detail::raw_family<affine<T>, T>, public box_budgeted<T> {
    using base = detail::raw_family<affine<T>, T>;
    friend base;

public:
    affine(image_shape shape, affine_budget budget, padding pad = padding::zeros,
           input_domain domain = {})
        : base("affine", std::move(domain), detail::checked_framed_shape("affine", shape).channels,
               shape.pixels(), std::vector<T>(6, T(0))),
          box_budgeted<T>(box_budget<T>(
              "affine",
              {budget.rotation, budget.scale_x, budget.scale_y, budget.shear, budget.translate_x,
               budget.translate_y},
              {"rotation", "scale_x", "scale_y", "shear", "translate_x", "translate_y"})),
          shape_(shape),
          pad_(pad) {
        column_offsets_.resize(shape_.width);
        for (std::size_t j = 0; j < shape_.width; ++j) {
            column_offsets_[j] = static_cast<double>(j) - centre_x();
        }
    }

private:
    static constexpr double degree = std::numbers::pi / 180.0;

    // A and its derivatives in (rotation, scale_x, scale_y, shear), row-major 2 x 2.
    struct matrices {
        double a[4];
        double da[4][4];
    };

    static matrices matrices_for(const T* th) {
        const double r = th[0] * degree, c = std::cos(r), s = std::sin(r);
        const double sx = 1 + th[1], sy = 1 + th[2], k = th[3];
        matrices m{{c * sx, (c * k - s) * sy, s * sx, (s * k + c) * sy},
                   {{-s * sx * degree, (-s * k - c) * sy * degree, c * sx * degree,
                     (c * k - s) * sy * degree},
                    {c, 0, s, 0},
                    {0, c * k - s, 0, s * k + c},
                    {0, c * sy, 0, s * sy}}};
        return m;
    }

    /// The framed input planes and every output pixel's sample, kept from forward_row for
    /// backward_row.
    struct workspace {
        std::vector<detail::framed_plane<T>> planes;
        detail::bilinear_samples samples;
        std::vector<double> dydx, terms;
    };
    workspace make_workspace() const {
        return {std::vector<detail::framed_plane<T>>(
                    shape_.channels, detail::framed_plane<T>(shape_.height, shape_.width, pad_)),
                detail::bilinear_samples(shape_.pixels()), {}, {}};
    }

    /// Every output pixel's sampling coordinates: pixel (i, j) reads the input at
    /// c + A ((i, j) - c) + t. Dispatched (backend/cpu.hpp): the arithmetic vectorizes.
    struct coordinates_kernel {
        ADVAUG_ALWAYS_INLINE static void run(const double* __restrict a,
                                             const double* __restrict pjs, double cy, double cx,
                                             double ty, double tx, std::size_t h, std::size_t w,
                                             double* __restrict sy, double* __restrict sx) {
            const double a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            for (std::size_t i = 0; i < h; ++i) {
                const double pi = static_cast<double>(i) - cy;
                double* __restrict sy_i = sy + i * w;
                double* __restrict sx_i = sx + i * w;
                for (std::size_t j = 0; j < w; ++j) {
                    const double pj = pjs[j];
                    sx_i[j] = cx + a0 * pj + a1 * pi + tx;
                    sy_i[j] = cy + a2 * pj + a3 * pi + ty;
                }
            }
        }
    };

    void forward_row(const T* u, const T* th, T* v, workspace& ws) const {
        const std::size_t hw = shape_.pixels();
        const matrices m = matrices_for(th);
        for (std::size_t c = 0; c < shape_.channels; ++c) ws.planes[c].fill(u + c * hw);
        backend::detail::run_kernel<coordinates_kernel>(
            m.a, column_offsets_.data(), centre_y(), centre_x(), static_cast<double>(th[5]),
            static_cast<double>(th[4]), shape_.height, shape_.width, ws.samples.fy.data(),
            ws.samples.fx.data());
        detail::bilinear_locate(ws.samples, hw, static_cast<std::int32_t>(shape_.height),
                                static_cast<std::int32_t>(shape_.width));
        detail::bilinear_sample_planes(ws.planes, ws.samples, hw, v);
    }

    /// The terms of dL/dtheta of every output element e = c * hw + i * w + j, from g and the
    /// sampled values' coordinate derivatives dy, dx: gx = dx g and gy = dy g, then
    /// terms[q * n + e] = gx (dA[q] (i, j) - c)_x + gy (dA[q] (i, j) - c)_y for the four
    /// entries of A, and gx, gy for the translations (n elements). Dispatched
    /// (backend/cpu.hpp): elementwise, it vectorizes.
    struct theta_terms_kernel {
        ADVAUG_ALWAYS_INLINE static void run(const double* __restrict da,
                                             const double* __restrict pjs, double cy,
                                             std::size_t rows, std::size_t h, std::size_t w,
                                             const T* __restrict g, const double* __restrict dy,
                                             const double* __restrict dx, double* __restrict t0,
                                             double* __restrict t1, double* __restrict t2,
                                             double* __restrict t3, double* __restrict t4,
                                             double* __restrict t5) {
            const double d00 = da[0], d01 = da[1], d02 = da[2], d03 = da[3];
            const double d10 = da[4], d11 = da[5], d12 = da[6], d13 = da[7];
            const double d20 = da[8], d21 = da[9], d22 = da[10], d23 = da[11];
            const double d30 = da[12], d31 = da[13], d32 = da[14], d33 = da[15];
            for (std::size_t r = 0; r < rows; ++r) {  // the rows of every channel
                const double pi = static_cast<double>(r % h) - cy;
                for (std::size_t j = r * w; j < (r + 1) * w; ++j) {
                    const double gp = g[j];
                    const double gx = dx[j] * gp, gy = dy[j] * gp;
                    const double pj = pjs[j - r * w];
                    t0[j] = gx * (d00 * pj + d01 * pi) + gy * (d02 * pj + d03 * pi);
                    t1[j] = gx * (d10 * pj + d11 * pi) + gy * (d12 * pj + d13 * pi);
                    t2[j] = gx * (d20 * pj + d21 * pi) + gy * (d22 * pj + d23 * pi);
                    t3[j] = gx * (d30 * pj + d31 * pi) + gy * (d32 * pj + d33 * pi);
                    t4[j] = gx;
                    t5[j] = gy;
                }
            }
        }
    };

    /// Reads the planes and samples of forward_row on this row. Each parameter's gradient is
    /// the sum of its terms, pixels ascending and channels ascending within a pixel. (The sum
    /// starts at +0, so it is never -0, and the terms of a zero g, +-0, leave it unchanged:
    /// it is the sum over the nonzero g alone.)
    void backward_row(const T*, const T* th, const T* g, T* dth, T* du, workspace& ws) const {
        const matrices m = matrices_for(th);
        const std::size_t channels = shape_.channels, hw = shape_.pixels(), n = channels * hw;
        detail::bilinear_warp_backward(ws.planes, g, du, ws.samples, shape_.height, shape_.width,
                                       pad_, dth ? &ws.dydx : nullptr);
        if (!dth) return;
        ws.terms.resize(6 * n);
        const double* dy = ws.dydx.data();
        double* t = ws.terms.data();
        backend::detail::run_kernel<theta_terms_kernel>(
            &m.da[0][0], column_offsets_.data(), centre_y(), channels * shape_.height,
            shape_.height, shape_.width, g, dy, dy + n, t, t + n, t + 2 * n, t + 3 * n, t + 4 * n,
            t + 5 * n);
        double acc[6] = {0, 0, 0, 0, 0, 0};
        for (std::size_t p = 0; p < hw; ++p) {
            for (std::size_t c = 0; c < channels; ++c) {
                const std::size_t e = c * hw + p;
                for (std::size_t q = 0; q < 6; ++q) acc[q] += t[q * n + e];
            }
        }
        for (std::size_t q = 0; q < 6; ++q) dth[q] = static_cast<T>(acc[q]);
    }

    double centre_y() const { return 0.5 * static_cast<double>(shape_.height - 1); }
    double centre_x() const { return 0.5 * static_cast<double>(shape_.width - 1); }

    image_shape shape_;
    padding pad_;
    std::vector<double> column_offsets_;  // j - centre_x() for every column j
};

struct displacement_budget {
    std::size_t grid = 4;           // control points per side, >= 2: the smoothness
    double max_displacement = 1.0;  // pixels, per control point and direction: the magnitude
};

template <class T>
class displacement_field : public detail::raw_family<displacement_field<T>, T>,
                           public box_budgeted<T> {
    using base = detail::raw_family<displacement_field<T>, T>;
    friend base;

public:
    displacement_field(image_shape shape, displacement_budget budget, padding pad = padding::zeros,
                       input_domain domain = {})
        : base("displacement_field", std::move(domain),
               detail::checked_framed_shape("displacement_field", shape).channels, shape.pixels(),
               std::vector<T>(2 * checked_grid(budget.grid) * budget.grid, T(0))),
          box_budgeted<T>(box_budget<T>(
              "displacement_field",
              std::vector<interval>(2 * budget.grid * budget.grid,
                                    symmetric(checked_magnitude(budget.max_displacement))),
              {})),
          shape_(shape),
          pad_(pad),
          grid_(budget.grid) {
        // Each pixel's flow is a fixed bilinear mix of four control points.
        const std::size_t hw = shape_.pixels();
        for (int k = 0; k < 4; ++k) control_weight_[k].resize(hw);
        pixel_rows_.resize(hw);
        pixel_columns_.resize(hw);
        auto coordinate = [&](std::size_t i, std::size_t size) {
            return size == 1 ? 0.0
                             : static_cast<double>(i) * static_cast<double>(grid_ - 1) /
                                   static_cast<double>(size - 1);
        };
        const long last = static_cast<long>(grid_) - 1;
        for (std::size_t i = 0; i < shape_.height; ++i) {
            for (std::size_t j = 0; j < shape_.width; ++j) {
                const double gy = coordinate(i, shape_.height), gx = coordinate(j, shape_.width);
                const double y0 = std::floor(gy), x0 = std::floor(gx);
                const double fy = gy - y0, fx = gx - x0;
                const std::size_t p = i * shape_.width + j;
                pixel_rows_[p] = static_cast<double>(i);
                pixel_columns_[p] = static_cast<double>(j);
                std::int32_t index[4];
                for (int k = 0; k < 4; ++k) {
                    const long yy = std::min(static_cast<long>(y0) + (k >> 1), last);
                    const long xx = std::min(static_cast<long>(x0) + (k & 1), last);
                    index[k] = static_cast<std::int32_t>(yy * static_cast<long>(grid_) + xx);
                    control_weight_[k][p] = ((k >> 1) ? fy : 1 - fy) * ((k & 1) ? fx : 1 - fx);
                }
                if (runs_.empty() || !std::equal(index, index + 4, runs_.back().index)) {
                    runs_.push_back({p, p, {index[0], index[1], index[2], index[3]}, true});
                    cell_run& r = runs_.back();
                    for (int a = 0; a < 4; ++a) {
                        for (int b = a + 1; b < 4; ++b) r.distinct &= index[a] != index[b];
                    }
                }
                runs_.back().end = p + 1;
            }
        }
    }

    std::size_t grid() const { return grid_; }

private:
    /// Consecutive pixels whose flows mix the same four control points: [begin, end), the
    /// points (top-left, top-right, bottom-left, bottom-right), and whether they are four
    /// different points.
    struct cell_run {
        std::size_t begin, end;
        std::int32_t index[4];
        bool distinct;
    };

    static std::size_t checked_grid(std::size_t g) {
        if (g < 2) detail::invalid("displacement_field", "grid must be >= 2, got ", g);
        return g;
    }
    static double checked_magnitude(double m) {
        if (!std::isfinite(m) || m < 0) {
            detail::invalid("displacement_field", "max_displacement must be finite and >= 0, got ",
                            m);
        }
        return m;
    }

    /// The framed input planes and every output pixel's sample, kept from forward_row for
    /// backward_row, and the control points' gradient.
    struct workspace {
        std::vector<detail::framed_plane<T>> planes;
        detail::bilinear_samples samples;
        std::vector<double> dydx, terms, acc;
    };
    workspace make_workspace() const {
        return {std::vector<detail::framed_plane<T>>(
                    shape_.channels, detail::framed_plane<T>(shape_.height, shape_.width, pad_)),
                detail::bilinear_samples(shape_.pixels()), {}, {},
                std::vector<double>(2 * grid_ * grid_)};
    }

    /// Every output pixel's sampling coordinates: pixel (i, j) reads the input at (i, j) + its
    /// flow, the flow mixing the four control points of its run with weights weight[k][p];
    /// column displacements first in theta, row displacements gg on. Dispatched
    /// (backend/cpu.hpp): each run's pixels are contiguous and its control points fixed, so
    /// the loop over them vectorizes.
    struct coordinates_kernel {
        ADVAUG_ALWAYS_INLINE static void run(const T* __restrict th, std::size_t gg,
                                             const cell_run* runs, std::size_t run_count,
                                             const double* const* weight,
                                             const double* __restrict rows,
                                             const double* __restrict columns,
                                             double* __restrict sy, double* __restrict sx) {
            const double *w0 = weight[0], *w1 = weight[1], *w2 = weight[2], *w3 = weight[3];
            for (std::size_t r = 0; r < run_count; ++r) {
                const cell_run& run = runs[r];
                const double x0 = th[run.index[0]], y0 = th[gg + run.index[0]];
                const double x1 = th[run.index[1]], y1 = th[gg + run.index[1]];
                const double x2 = th[run.index[2]], y2 = th[gg + run.index[2]];
                const double x3 = th[run.index[3]], y3 = th[gg + run.index[3]];
                for (std::size_t p = run.begin; p < run.end; ++p) {
                    double flow_x = 0, flow_y = 0;
                    flow_x += w0[p] * x0;
                    flow_y += w0[p] * y0;
                    flow_x += w1[p] * x1;
                    flow_y += w1[p] * y1;
                    flow_x += w2[p] * x2;
                    flow_y += w2[p] * y2;
                    flow_x += w3[p] * x3;
                    flow_y += w3[p] * y3;
                    sy[p] = rows[p] + flow_y;
                    sx[p] = columns[p] + flow_x;
                }
            }
        }
    };

    void forward_row(const T* u, const T* th, T* v, workspace& ws) const {
        const std::size_t hw = shape_.pixels();
        for (std::size_t c = 0; c < shape_.channels; ++c) ws.planes[c].fill(u + c * hw);
        const double* weight[4] = {control_weight_[0].data(), control_weight_[1].data(),
                                   control_weight_[2].data(), control_weight_[3].data()};
        backend::detail::run_kernel<coordinates_kernel>(
            th, grid_ * grid_, runs_.data(), runs_.size(), weight, pixel_rows_.data(),
            pixel_columns_.data(), ws.samples.fy.data(), ws.samples.fx.data());
        detail::bilinear_locate(ws.samples, hw, static_cast<std::int32_t>(shape_.height),
                                static_cast<std::int32_t>(shape_.width));
        detail::bilinear_sample_planes(ws.planes, ws.samples, hw, v);
    }

    /// The terms of dL/dtheta of every output element e = c * hw + p through one of its
    /// pixel's control points, of weight wk[p]: tx[e] = wk[p] dx[e] g[e] (column displacement)
    /// and ty[e] = wk[p] dy[e] g[e] (row displacement). Dispatched (backend/cpu.hpp):
    /// elementwise, it vectorizes.
    struct theta_terms_kernel {
        ADVAUG_ALWAYS_INLINE static void run(const double* __restrict wk, std::size_t channels,
                                             std::size_t hw, const T* __restrict g,
                                             const double* __restrict dy,
                                             const double* __restrict dx,
                                             double* __restrict tx, double* __restrict ty) {
            for (std::size_t c = 0; c < channels; ++c) {
                for (std::size_t e = c * hw; e < (c + 1) * hw; ++e) {
                    const double gp = g[e];
                    const double w = wk[e - c * hw];
                    tx[e] = w * dx[e] * gp;
                    ty[e] = w * dy[e] * gp;
                }
            }
        }
    };

    /// Reads the planes and samples of forward_row on this row. Each control point's gradient
    /// is the sum of its terms, pixels ascending, then channels, then the pixel's four control
    /// points. (The sums start at +0, so they are never -0, and the terms of a zero g, +-0,
    /// leave them unchanged: it is the sum over the nonzero g alone.)
    void backward_row(const T*, const T*, const T* g, T* dth, T* du, workspace& ws) const {
        const std::size_t channels = shape_.channels, hw = shape_.pixels(), n = channels * hw;
        const std::size_t gg = grid_ * grid_;
        detail::bilinear_warp_backward(ws.planes, g, du, ws.samples, shape_.height, shape_.width,
                                       pad_, dth ? &ws.dydx : nullptr);
        if (!dth) return;
        ws.terms.resize(8 * n);
        const double* dy = ws.dydx.data();
        for (std::size_t k = 0; k < 4; ++k) {
            double* tk = ws.terms.data() + 2 * k * n;
            backend::detail::run_kernel<theta_terms_kernel>(control_weight_[k].data(), channels,
                                                            hw, g, dy, dy + n, tk, tk + n);
        }
        std::vector<double>& acc = ws.acc;
        std::fill(acc.begin(), acc.end(), 0.0);
        const double* t = ws.terms.data();
        for (const cell_run& run : runs_) {
            if (!run.distinct) {  // a control point twice (clamped at the lattice's edge)
                for (std::size_t p = run.begin; p < run.end; ++p) {
                    for (std::size_t c = 0; c < channels; ++c) {
                        const std::size_t e = c * hw + p;
                        for (std::size_t k = 0; k < 4; ++k) {
                            acc[run.index[k]] += t[2 * k * n + e];
                            acc[gg + run.index[k]] += t[(2 * k + 1) * n + e];
                        }
                    }
                }
                continue;
            }
            // Four distinct points: their sums stay in registers along the run.
            double ax[4], ay[4];
            for (std::size_t k = 0; k < 4; ++k) {
                ax[k] = acc[run.index[k]];
                ay[k] = acc[gg + run.index[k]];
            }
            for (std::size_t p = run.begin; p < run.end; ++p) {
                for (std::size_t c = 0; c < channels; ++c) {
                    const std::size_t e = c * hw + p;
                    for (std::size_t k = 0; k < 4; ++k) {
                        ax[k] += t[2 * k * n + e];
                        ay[k] += t[(2 * k + 1) * n + e];
                    }
                }
            }
            for (std::size_t k = 0; k < 4; ++k) {
                acc[run.index[k]] = ax[k];
                acc[gg + run.index[k]] = ay[k];
            }
        }
        for (std::size_t q = 0; q < 2 * gg; ++q) dth[q] = static_cast<T>(acc[q]);
    }

    image_shape shape_;
    padding pad_;
    std::size_t grid_;
    std::vector<cell_run> runs_;
    std::vector<double> control_weight_[4];  // pixel p's weight of its run's point k
    std::vector<double> pixel_rows_, pixel_columns_;  // i and j of pixel p = i * width + j
};

}  // namespace advaug
