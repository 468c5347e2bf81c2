// Additive noise balls as families, so that the L-p threat model of the existing attacks
// (attacks/pgd.hpp) composes with natural perturbations (chain<linf_ball<T>, affine<T>>).
//
//   linf_ball  x' = clip(x + delta), |delta_d| <= epsilon        (Goodfellow et al. 2015)
//   l2_ball    x' = clip(x + delta), ||delta||_2 <= epsilon per sample
// delta = theta, one parameter per feature, in raw units (see input_domain), like the attacks'
// epsilon; identity delta = 0. Samples are uniform in the box (L-inf) and uniform in the ball
// (L2: a Gaussian direction, radius epsilon * U^(1/D)).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

#include "advaug/detail/random.hpp"
#include "advaug/perturbations/budget.hpp"
#include "advaug/perturbations/detail/raw_family.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/image_shape.hpp"

namespace advaug {

namespace detail {

inline double checked_radius(const char* function, double eps) {
    if (!std::isfinite(eps) || eps < 0)
        invalid(function, "epsilon must be finite and >= 0, got ", eps);
    return eps;
}

/// The additive kernel both balls share.
template <class Derived, class T>
class additive_family : public raw_family<Derived, T> {
    using base = raw_family<Derived, T>;
    friend base;

protected:
    additive_family(const char* name, std::size_t groups, std::size_t inner, double eps,
                    input_domain domain)
        : base(name, std::move(domain), groups, inner, std::vector<T>(groups * inner, T(0))),
          eps_(checked_radius(name, eps)) {}

    double eps_;

private:
    void forward_row(const T* u, const T* th, T* v) const {
        const std::size_t n = this->input_size();  // read once, or reloaded after every store
        for (std::size_t d = 0; d < n; ++d) v[d] = u[d] + th[d];
    }
    void backward_row(const T*, const T*, const T* g, T* dth, T* du) const {
        const std::size_t n = this->input_size();
        if (dth) std::copy(g, g + n, dth);
        if (du) std::copy(g, g + n, du);
    }
};

}  // namespace detail

template <class T>
class linf_ball : public detail::additive_family<linf_ball<T>, T>, public box_budgeted<T> {
    using base = detail::additive_family<linf_ball<T>, T>;

public:
    /// `features` per sample; the domain gives one value or one per feature.
    linf_ball(std::size_t features, double epsilon, input_domain domain = {})
        : base("linf_ball", features, 1, epsilon, std::move(domain)),
          box_budgeted<T>(box_budget<T>("linf_ball",
                                        std::vector<interval>(features, symmetric(epsilon)), {})) {}
    /// Images; the domain gives one value or one per channel.
    linf_ball(image_shape shape, double epsilon, input_domain domain = {})
        : base("linf_ball", detail::checked_image_shape("linf_ball", shape).channels,
               shape.pixels(), epsilon, std::move(domain)),
          box_budgeted<T>(box_budget<T>(
              "linf_ball", std::vector<interval>(shape.size(), symmetric(epsilon)), {})) {}

    double epsilon() const { return this->eps_; }
};

template <class T>
class l2_ball : public detail::additive_family<l2_ball<T>, T> {
    using base = detail::additive_family<l2_ball<T>, T>;

public:
    l2_ball(std::size_t features, double epsilon, input_domain domain = {})
        : base("l2_ball", features, 1, epsilon, std::move(domain)) {}
    l2_ball(image_shape shape, double epsilon, input_domain domain = {})
        : base("l2_ball", detail::checked_image_shape("l2_ball", shape).channels, shape.pixels(),
               epsilon, std::move(domain)) {}

    double epsilon() const { return this->eps_; }

    void sample(std::size_t n, std::uint64_t key, tensor<T, 2>& theta) const {
        const std::size_t p = this->num_params();
        theta.resize({n, p});
        for (std::size_t i = 0; i < n; ++i) {
            // Box-Muller on counter-based uniforms: entry (i, j) uses outputs 2(iP + j) and +1;
            // the radius uses output 2 n P + i.
            double norm2 = 0;
            for (std::size_t j = 0; j < p; ++j) {
                const std::uint64_t c = 2 * (i * p + j);
                const double u1 = std::max(detail::counter_uniform(key, c, 0, 1), 1e-300);
                const double u2 = detail::counter_uniform(key, c + 1, 0, 1);
                const double z = std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
                theta(i, j) = static_cast<T>(z);
                norm2 += z * z;
            }
            const double radius =
                this->eps_ * std::pow(detail::counter_uniform(key, 2 * n * p + i, 0, 1),
                                      1.0 / static_cast<double>(p));
            const double scale = norm2 > 0 ? radius / std::sqrt(norm2) : 0.0;
            for (std::size_t j = 0; j < p; ++j) theta(i, j) = static_cast<T>(theta(i, j) * scale);
        }
        project(theta);  // rounding to T may leave a row a hair outside
    }

    void project(tensor<T, 2>& theta) const {
        const std::size_t p = this->num_params();
        for (std::size_t i = 0; i < theta.shape()[0]; ++i) {
            const double norm = row_norm(theta, i);
            if (norm > this->eps_) {
                const double s = this->eps_ / norm;
                for (std::size_t j = 0; j < p; ++j) theta(i, j) = static_cast<T>(theta(i, j) * s);
            }
            // Rounding of the scaled row may leave it above epsilon: shrink by ulps until inside.
            while (row_norm(theta, i) > this->eps_) {
                for (std::size_t j = 0; j < p; ++j)
                    theta(i, j) *= T(1) - std::numeric_limits<T>::epsilon();
            }
        }
    }

    bool contains(const tensor<T, 2>& theta) const {
        for (std::size_t i = 0; i < theta.shape()[0]; ++i) {
            if (!(row_norm(theta, i) <= this->eps_ * (1 + 1e-6))) return false;
        }
        return true;
    }

    /// A sign step of fraction a moves the row by a * epsilon in L2.
    std::vector<double> param_scale() const {
        const double p = static_cast<double>(this->num_params());
        return std::vector<double>(this->num_params(), this->eps_ / std::sqrt(p));
    }

private:
    static double row_norm(const tensor<T, 2>& theta, std::size_t i) {
        double s = 0;
        for (std::size_t j = 0; j < theta.shape()[1]; ++j) {
            s += static_cast<double>(theta(i, j)) * static_cast<double>(theta(i, j));
        }
        return std::sqrt(s);
    }
};

}  // namespace advaug
