// Finite-difference check of a perturbation family's vector-Jacobian products, for a user's own
// family as for the bundled ones (the habit of gradcheck/gradient_check.hpp for models).
//
// A fixed random direction r (seeded) weighs the output; vjp_theta(x, theta, r) and
// vjp_input(x, theta, r) are compared with central differences of <r, apply(x, theta)> in every
// parameter and every input entry (or a seeded random subset of each). For double 1e-6 is a
// good bound; float needs a step near 1e-2 and a bound near 1e-2. Keep theta and x away from
// kinks: the domain's bounds (the clip), integer sampling coordinates (bilinear), rounding edges.
// A gradient-free family has no derivative in theta to check: its theta result compares nothing
// (checked == 0) and passed() looks at the input part alone. A family with the recorded pass
// (family.hpp) must give the plain members' values with it, bit for bit: apply_recorded and
// vjp_recorded are compared with apply, vjp_theta and vjp_input, and passed() requires equality.
#pragma once

#include <cstddef>
#include <cstring>

#include "advaug/gradcheck/gradient_check.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/static_checks.hpp"

namespace advaug {

struct perturbation_check_result {
    gradient_check_result theta;    // vjp_theta against differences in theta
    gradient_check_result input;    // vjp_input against differences in x
    bool theta_checked = true;      // false for a gradient-free family
    bool recorded_checked = false;  // the family has the recorded pass
    bool recorded_same = true;      // and it gave the plain members' values bit for bit

    bool passed(double tolerance) const {
        return (!theta_checked || theta.passed(tolerance)) && input.passed(tolerance) &&
               recorded_same;
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
        if constexpr (detail::perturbation_contract::has_recorded_apply<F>) {
            batch dtheta, r_out, r_dtheta, r_dx;
            family.vjp_theta(x, theta, r, dtheta);
            family_tape tape;
            family.apply(x, theta, r_out, tape);
            family.vjp(x, theta, r, &r_dtheta, &r_dx, tape);
            const auto same = [](const batch& a, const batch& b) {
                return a.shape() == b.shape() &&
                       std::memcmp(a.data(), b.data(), a.size() * sizeof(*a.data())) == 0;
            };
            result.recorded_checked = true;
            result.recorded_same = same(out, r_out) && same(dtheta, r_dtheta) && same(dx, r_dx);
        }
    }
    return result;
}

}  // namespace advaug
