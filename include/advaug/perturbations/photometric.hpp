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
    /// Kept from forward_row for backward_row: the row in units of the range (s), its gamma
    /// correction (y) and y's mean (m); and the backward's scratch (gw, ln).
    struct workspace {
        std::vector<T> s, y, gw, ln;
        T m = 0;
    };
    workspace make_workspace() const {
        const std::size_t n = this->input_size();
        return {std::vector<T>(n), std::vector<T>(n), std::vector<T>(n), std::vector<T>(n)};
    }

    T unit(const T* u, std::size_t d) const {
        const auto& e = this->elements();
        return std::max(T(0), (u[d] - e.lo[d]) / (e.hi[d] - e.lo[d]));
    }

    /// s ^ gamma; 0 for s = 0 without the call (pow's own value there for gamma > 0; about half
    /// of a Fashion-MNIST image is 0).
    static T gamma_power(T s, T gamma) {
        return s == T(0) && gamma > T(0) ? T(0) : std::pow(s, gamma);
    }

    void forward_row(const T* u, const T* th, T* v, workspace& ws) const {
        const auto& e = this->elements();
        const std::size_t n = this->input_size();
        const T gamma = std::exp(th[2]), a = T(1) + th[1];
        T* s = ws.s.data();
        T* y = ws.y.data();
        double sum = 0;
        for (std::size_t d = 0; d < n; ++d) {
            s[d] = unit(u, d);
            y[d] = gamma_power(s[d], gamma);
            sum += y[d];
        }
        const T m = static_cast<T>(sum / static_cast<double>(n));
        ws.m = m;
        for (std::size_t d = 0; d < n; ++d) {
            v[d] = e.lo[d] + (e.hi[d] - e.lo[d]) * (m + a * (y[d] - m) + th[0]);
        }
    }

    /// Reads s, y and m of forward_row on this row. Each sum adds the same terms in the same
    /// order as one loop over the row would.
    void backward_row(const T*, const T* th, const T* g, T* dth, T* du, workspace& ws) const {
        const auto& e = this->elements();
        const std::size_t n = this->input_size();
        const T gamma = std::exp(th[2]), a = T(1) + th[1];
        const T* s = ws.s.data();
        const T* y = ws.y.data();
        T* gw = ws.gw.data();
        T* ln = ws.ln.data();
        const T m = ws.m;
        double sum_gw = 0, dc = 0, dg = 0;  // dL/dbrightness is sum_gw itself
        for (std::size_t d = 0; d < n; ++d) {
            gw[d] = g[d] * (e.hi[d] - e.lo[d]);
            sum_gw += gw[d];
            dc += gw[d] * (y[d] - m);
        }
        const T mean_gw = static_cast<T>(sum_gw / static_cast<double>(n));
        if (dth) {
            for (std::size_t d = 0; d < n; ++d) ln[d] = s[d] > T(0) ? std::log(s[d]) : T(0);
            for (std::size_t d = 0; d < n; ++d) {
                const T gy = a * gw[d] + (T(1) - a) * mean_gw;  // through y_d and through m
                // dg never holds -0, so adding +0 where s = 0 leaves it as skipping did.
                const double term = gy * y[d] * ln[d] * gamma;
                dg += s[d] > T(0) ? term : 0.0;
            }
        }
        if (du) {
            for (std::size_t d = 0; d < n; ++d) {
                const T gy = a * gw[d] + (T(1) - a) * mean_gw;
                du[d] = s[d] > T(0)
                            ? gy * gamma * std::pow(s[d], gamma - T(1)) / (e.hi[d] - e.lo[d])
                            : T(0);
            }
        }
        if (dth) {
            dth[0] = static_cast<T>(sum_gw);
            dth[1] = static_cast<T>(dc);
            dth[2] = static_cast<T>(dg);
        }
    }
};

}  // namespace advaug
