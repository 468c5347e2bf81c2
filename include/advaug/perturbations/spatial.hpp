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
        : base("affine", std::move(domain), detail::checked_image_shape("affine", shape).channels,
               shape.pixels(), std::vector<T>(6, T(0))),
          box_budgeted<T>(box_budget<T>(
              "affine",
              {budget.rotation, budget.scale_x, budget.scale_y, budget.shear, budget.translate_x,
               budget.translate_y},
              {"rotation", "scale_x", "scale_y", "shear", "translate_x", "translate_y"})),
          shape_(shape),
          pad_(pad) {}

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

    /// The sampling taps of every output pixel, kept from forward_row for backward_row.
    struct workspace {
        std::vector<detail::bilinear_taps> taps;
    };
    workspace make_workspace() const {
        return {std::vector<detail::bilinear_taps>(shape_.pixels())};
    }

    void forward_row(const T* u, const T* th, T* v, workspace& ws) const {
        const std::size_t hw = shape_.pixels();
        const matrices m = matrices_for(th);
        const double cy = centre_y(), cx = centre_x();
        for (std::size_t i = 0; i < shape_.height; ++i) {
            for (std::size_t j = 0; j < shape_.width; ++j) {
                const double pi = static_cast<double>(i) - cy, pj = static_cast<double>(j) - cx;
                const double sx = cx + m.a[0] * pj + m.a[1] * pi + th[4];
                const double sy = cy + m.a[2] * pj + m.a[3] * pi + th[5];
                const std::size_t p = i * shape_.width + j;
                detail::bilinear_taps& t = ws.taps[p];
                detail::bilinear_at(sy, sx, shape_.height, shape_.width, pad_, t);
                for (std::size_t c = 0; c < shape_.channels; ++c) {
                    v[c * hw + p] = detail::bilinear_value(u + c * hw, t);
                }
            }
        }
    }

    /// Reads the taps of forward_row on this row; (pi, pj) is the pixel's offset from the
    /// centre, as in forward_row.
    void backward_row(const T* u, const T* th, const T* g, T* dth, T* du, workspace& ws) const {
        const matrices m = matrices_for(th);
        const double cy = centre_y(), cx = centre_x();
        const std::size_t w = shape_.width;
        double acc[6] = {0, 0, 0, 0, 0, 0};
        detail::bilinear_warp_backward(
            u, g, du, ws.taps.data(), shape_.channels, shape_.pixels(), dth != nullptr,
            [&](std::size_t p, double gy, double gx, T gp) {
                const double pi = static_cast<double>(p / w) - cy;
                const double pj = static_cast<double>(p % w) - cx;
                gy *= gp;
                gx *= gp;
                for (int q = 0; q < 4; ++q) {
                    acc[q] += gx * (m.da[q][0] * pj + m.da[q][1] * pi) +
                              gy * (m.da[q][2] * pj + m.da[q][3] * pi);
                }
                acc[4] += gx;
                acc[5] += gy;
            });
        if (dth) {
            for (int q = 0; q < 6; ++q) dth[q] = static_cast<T>(acc[q]);
        }
    }

    double centre_y() const { return 0.5 * static_cast<double>(shape_.height - 1); }
    double centre_x() const { return 0.5 * static_cast<double>(shape_.width - 1); }

    image_shape shape_;
    padding pad_;
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
               detail::checked_image_shape("displacement_field", shape).channels, shape.pixels(),
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
        taps_.resize(hw);
        auto coordinate = [&](std::size_t i, std::size_t size) {
            return size == 1 ? 0.0
                             : static_cast<double>(i) * static_cast<double>(grid_ - 1) /
                                   static_cast<double>(size - 1);
        };
        for (std::size_t i = 0; i < shape_.height; ++i) {
            for (std::size_t j = 0; j < shape_.width; ++j) {
                const double gy = coordinate(i, shape_.height), gx = coordinate(j, shape_.width);
                detail::bilinear_at(gy, gx, grid_, grid_, padding::border,
                                    taps_[i * shape_.width + j]);
            }
        }
    }

    std::size_t grid() const { return grid_; }

private:
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

    /// The flow at pixel p: (row, column) displacement.
    void flow(const T* th, std::size_t p, double& fy, double& fx) const {
        const std::size_t gg = grid_ * grid_;
        fx = fy = 0;
        for (int k = 0; k < 4; ++k) {
            const long c = taps_[p].index[k];
            if (c < 0) continue;
            fx += taps_[p].weight[k] * th[c];
            fy += taps_[p].weight[k] * th[gg + c];
        }
    }

    /// The sampling taps of every output pixel, kept from forward_row for backward_row, and
    /// the control points' gradient.
    struct workspace {
        std::vector<detail::bilinear_taps> taps;
        std::vector<double> acc;
    };
    workspace make_workspace() const {
        return {std::vector<detail::bilinear_taps>(shape_.pixels()),
                std::vector<double>(2 * grid_ * grid_)};
    }

    void forward_row(const T* u, const T* th, T* v, workspace& ws) const {
        const std::size_t hw = shape_.pixels();
        for (std::size_t i = 0; i < shape_.height; ++i) {
            for (std::size_t j = 0; j < shape_.width; ++j) {
                const std::size_t p = i * shape_.width + j;
                double fy, fx;
                flow(th, p, fy, fx);
                detail::bilinear_taps& t = ws.taps[p];
                detail::bilinear_at(static_cast<double>(i) + fy, static_cast<double>(j) + fx,
                                    shape_.height, shape_.width, pad_, t);
                for (std::size_t c = 0; c < shape_.channels; ++c) {
                    v[c * hw + p] = detail::bilinear_value(u + c * hw, t);
                }
            }
        }
    }

    /// Reads the taps of forward_row on this row.
    void backward_row(const T* u, const T*, const T* g, T* dth, T* du, workspace& ws) const {
        const std::size_t gg = grid_ * grid_;
        std::vector<double>& acc = ws.acc;
        std::fill(acc.begin(), acc.end(), 0.0);
        detail::bilinear_warp_backward(
            u, g, du, ws.taps.data(), shape_.channels, shape_.pixels(), dth != nullptr,
            [&](std::size_t p, double gy, double gx, T gp) {
                for (int k = 0; k < 4; ++k) {
                    const long ci = taps_[p].index[k];
                    if (ci < 0) continue;
                    acc[ci] += taps_[p].weight[k] * gx * gp;
                    acc[gg + ci] += taps_[p].weight[k] * gy * gp;
                }
            });
        if (dth) {
            for (std::size_t q = 0; q < 2 * gg; ++q) dth[q] = static_cast<T>(acc[q]);
        }
    }

    image_shape shape_;
    padding pad_;
    std::size_t grid_;
    std::vector<detail::bilinear_taps> taps_;
};

}  // namespace advaug
