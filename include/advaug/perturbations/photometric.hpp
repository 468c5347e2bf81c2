// Photometric perturbation of images: gamma, then contrast about the image mean, then brightness
// (brightness and contrast are among Hendrycks and Dietterich's corruptions, ICLR 2019).
//
// In units of the domain's range, s = (x - lo) / (hi - lo), per pixel and channel:
//   y = s ^ exp(log_gamma)                    gamma (exp keeps it positive; 0 is the identity)
//   w = m + (1 + contrast) * (y - m) + brightness,   m = mean of y over the whole image
//   x' = clip(lo + (hi - lo) * w)
// theta = (brightness, contrast, log_gamma); identity (0, 0, 0). For a [0, 1] image brightness
// is in raw intensity units. Needs a bounded input domain. Differentiable in theta and x (the
// gamma's derivative in x is taken as 0 at s = 0, where it is infinite for gamma < 1).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "advaug/perturbations/budget.hpp"
#include "advaug/perturbations/detail/raw_family.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/image_shape.hpp"

namespace advaug {

struct photometric_budget {
    interval brightness{};  // offset, in units of the domain's range
    interval contrast{};    // relative gain about the image mean: 0.2 is 1.2x contrast
    interval log_gamma{};   // natural log of the gamma exponent
};

template <class T>
class photometric : public detail::raw_family<photometric<T>, T>, public box_budgeted<T> {
    using base = detail::raw_family<photometric<T>, T>;
    friend base;

public:
    /// requires: a valid image shape, intervals with lo <= hi, a domain with finite lo < hi.
    photometric(image_shape shape, photometric_budget budget, input_domain domain = {})
        : base("photometric", std::move(domain),
               detail::checked_image_shape("photometric", shape).channels, shape.pixels(),
               std::vector<T>(3, T(0))),
          box_budgeted<T>(box_budget<T>("photometric",
                                        {budget.brightness, budget.contrast, budget.log_gamma},
                                        {"brightness", "contrast", "log_gamma"})) {
        const auto& e = this->elements();
        for (std::size_t d = 0; d < e.lo.size(); ++d) {
            if (!std::isfinite(e.lo[d]) || !std::isfinite(e.hi[d]) || !(e.lo[d] < e.hi[d])) {
                detail::invalid("photometric", "needs a bounded input domain with lo < hi, got [",
                                e.lo[d], ", ", e.hi[d], "] at feature ", d);
            }
        }
    }

private:
    T unit(const T* u, std::size_t d) const {
        const auto& e = this->elements();
        return std::max(T(0), (u[d] - e.lo[d]) / (e.hi[d] - e.lo[d]));
    }

    void forward_row(const T* u, const T* th, T* v) const {
        const auto& e = this->elements();
        const std::size_t n = this->input_size();
        const T gamma = std::exp(th[2]), a = T(1) + th[1];
        double sum = 0;
        for (std::size_t d = 0; d < n; ++d) {
            v[d] = std::pow(unit(u, d), gamma);
            sum += v[d];
        }
        const T m = static_cast<T>(sum / static_cast<double>(n));
        for (std::size_t d = 0; d < n; ++d) {
            v[d] = e.lo[d] + (e.hi[d] - e.lo[d]) * (m + a * (v[d] - m) + th[0]);
        }
    }

    void backward_row(const T* u, const T* th, const T* g, T* dth, T* du) const {
        const auto& e = this->elements();
        const std::size_t n = this->input_size();
        const T gamma = std::exp(th[2]), a = T(1) + th[1];
        std::vector<T> y(n), gw(n);
        double sum_y = 0, sum_gw = 0;
        for (std::size_t d = 0; d < n; ++d) {
            y[d] = std::pow(unit(u, d), gamma);
            gw[d] = g[d] * (e.hi[d] - e.lo[d]);
            sum_y += y[d];
            sum_gw += gw[d];
        }
        const T m = static_cast<T>(sum_y / static_cast<double>(n));
        const T mean_gw = static_cast<T>(sum_gw / static_cast<double>(n));
        double db = 0, dc = 0, dg = 0;
        for (std::size_t d = 0; d < n; ++d) {
            const T s = unit(u, d);
            const T gy = a * gw[d] + (T(1) - a) * mean_gw;  // through y_d and through m
            db += gw[d];
            dc += gw[d] * (y[d] - m);
            if (s > T(0)) dg += gy * y[d] * std::log(s) * gamma;
            if (du)
                du[d] =
                    s > T(0) ? gy * gamma * std::pow(s, gamma - T(1)) / (e.hi[d] - e.lo[d]) : T(0);
        }
        if (dth) {
            dth[0] = static_cast<T>(db);
            dth[1] = static_cast<T>(dc);
            dth[2] = static_cast<T>(dg);
        }
    }
};

}  // namespace advaug
