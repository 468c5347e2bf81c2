// Finite-difference check of a perturbation family's vector-Jacobian products, for a user's own
// family as for the bundled ones (the habit of gradcheck/gradient_check.hpp for models).
//
// A fixed random direction r (seeded) weighs the output; vjp_theta(x, theta, r) and
// vjp_input(x, theta, r) are compared with central differences of <r, apply(x, theta)> in every
// parameter and every input entry (or a seeded random subset of each). For double 1e-6 is a
// good bound; float needs a step near 1e-2 and a bound near 1e-2. Keep theta and x away from
// kinks: the domain's bounds (the clip), integer sampling coordinates (bilinear), rounding edges.
// A gradient-free family has no derivative in theta to check: its theta result compares nothing
// (checked == 0) and passed() looks at the input part alone.
#pragma once

#include <cstddef>

#include "advaug/gradcheck/gradient_check.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/static_checks.hpp"

namespace advaug {

struct perturbation_check_result {
    gradient_check_result theta;  // vjp_theta against differences in theta
    gradient_check_result input;  // vjp_input against differences in x
    bool theta_checked = true;    // false for a gradient-free family

    bool passed(double tolerance) const {
        return (!theta_checked || theta.passed(tolerance)) && input.passed(tolerance);
    }
};

/// requires: x [N, input_size()], theta [N, num_params()], both finite. Leaves both unchanged.
template <class F>
perturbation_check_result check_perturbation_gradients(
    const F& family, const tensor<typename F::value_type, 2>& x,
    const tensor<typename F::value_type, 2>& theta, const gradient_check_options& options = {}) {
    perturbation_check_result result;
    if constexpr (check_perturbation_family<F>()) {
        using batch = tensor<typename F::value_type, 2>;
        batch out;
        family.apply(x, theta, out);
        const batch r = detail::random_direction(out, options.seed());
        batch x_probe = x, theta_probe = theta;
        auto objective = [&] {
            batch o;
            family.apply(x_probe, theta_probe, o);
            return detail::dot(o, r);
        };
        if (kind_of(family) != perturbation_kind::gradient_free) {
            batch dtheta;
            family.vjp_theta(x, theta, r, dtheta);
            detail::fd_accumulator acc;
            detail::compare_finite_differences(acc, theta_probe.data(), theta_probe.size(),
                                               detail::to_doubles(dtheta), objective, options);
            result.theta = acc.finish();
        } else {
            result.theta_checked = false;
        }
        batch dx;
        family.vjp_input(x, theta, r, dx);
        detail::fd_accumulator acc;
        detail::compare_finite_differences(acc, x_probe.data(), x_probe.size(),
                                           detail::to_doubles(dx), objective, options);
        result.input = acc.finish();
    }
    return result;
}

}  // namespace advaug
