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

    long clamp_index(long i, std::size_t n) const {
        return std::clamp(i, 0L, static_cast<long>(n) - 1);
    }

    /// out = K in along one axis of an h x w plane (axis 1: rows, along columns).
    void pass(const double* in, double* out, const std::vector<double>& k, bool along_rows) const {
        const std::size_t h = shape_.height, w = shape_.width;
        const long r = radius_;
        for (std::size_t i = 0; i < h; ++i) {
            for (std::size_t j = 0; j < w; ++j) {
                double s = 0;
                for (long q = -r; q <= r; ++q) {
                    const std::size_t src = along_rows ? i * w + clamp_index(long(j) + q, w)
                                                       : clamp_index(long(i) + q, h) * w + j;
                    s += k[q + r] * in[src];
                }
                out[i * w + j] = s;
            }
        }
    }

    /// The adjoint of pass(): out += K^T in.
    void pass_adjoint(const double* in, double* out, const std::vector<double>& k,
                      bool along_rows) const {
        const std::size_t h = shape_.height, w = shape_.width;
        const long r = radius_;
        for (std::size_t i = 0; i < h; ++i) {
            for (std::size_t j = 0; j < w; ++j) {
                for (long q = -r; q <= r; ++q) {
                    const std::size_t src = along_rows ? i * w + clamp_index(long(j) + q, w)
                                                       : clamp_index(long(i) + q, h) * w + j;
                    out[src] += k[q + r] * in[i * w + j];
                }
            }
        }
    }

    void forward_row(const T* u, const T* th, T* v) const {
        std::vector<double> w, dw;
        kernel(th[0], w, dw);
        const std::size_t hw = shape_.pixels();
        std::vector<double> in(hw), t(hw), out(hw);
        for (std::size_t c = 0; c < shape_.channels; ++c) {
            std::copy(u + c * hw, u + (c + 1) * hw, in.begin());
            pass(in.data(), t.data(), w, true);
            pass(t.data(), out.data(), w, false);
            for (std::size_t p = 0; p < hw; ++p) v[c * hw + p] = static_cast<T>(out[p]);
        }
    }

    void backward_row(const T* u, const T* th, const T* g, T* dth, T* du) const {
        std::vector<double> w, dw;
        kernel(th[0], w, dw);
        const std::size_t hw = shape_.pixels();
        std::vector<double> in(hw), t(hw), gin(hw), gt(hw), tmp(hw), dx(hw);
        double dsigma = 0;
        for (std::size_t c = 0; c < shape_.channels; ++c) {
            std::copy(u + c * hw, u + (c + 1) * hw, in.begin());
            std::copy(g + c * hw, g + (c + 1) * hw, gin.begin());
            pass(in.data(), t.data(), w, true);
            // out = Kv Kh u: dsigma = <g, Kv' t> + <Kv^T g, Kh' u>.
            std::fill(gt.begin(), gt.end(), 0.0);
            pass_adjoint(gin.data(), gt.data(), w, false);
            if (dth) {
                pass(t.data(), tmp.data(), dw, false);
                for (std::size_t p = 0; p < hw; ++p) dsigma += gin[p] * tmp[p];
                pass(in.data(), tmp.data(), dw, true);
                for (std::size_t p = 0; p < hw; ++p) dsigma += gt[p] * tmp[p];
            }
            if (du) {
                std::fill(dx.begin(), dx.end(), 0.0);
                pass_adjoint(gt.data(), dx.data(), w, true);
                for (std::size_t p = 0; p < hw; ++p) du[c * hw + p] = static_cast<T>(dx[p]);
            }
        }
        if (dth) dth[0] = static_cast<T>(dsigma);
    }

    image_shape shape_;
    long radius_ = 1;
};

}  // namespace advaug
