// Readable compile-time errors for perturbation families that do not satisfy the contract.
//
// Entry points call check_perturbation_family<F>() and dispatch to their implementation only
// when it returns true: a family that lacks a member gets exactly one error, a static_assert
// naming that member (as model/static_checks.hpp does for models).
#pragma once

#include "advaug/model/static_checks.hpp"  // detail::always_false
#include "advaug/perturbations/family.hpp"

namespace advaug {

/// True if F is a perturbation family; otherwise one static_assert names the missing member.
template <class F>
consteval bool check_perturbation_family() {
    namespace c = detail::perturbation_contract;
    if constexpr (!c::has_value_type<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks member type `value_type` (float or "
                      "double); see docs/perturbations.md");
        return false;
    } else if constexpr (!c::has_sizes<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks members `std::size_t input_size() "
                      "const` and `std::size_t num_params() const`; see docs/perturbations.md");
        return false;
    } else if constexpr (!c::has_apply<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks member `void apply(const batch& x, "
                      "const batch& theta, batch& out) const`; see docs/perturbations.md");
        return false;
    } else if constexpr (!c::has_vjp_theta<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks member `void vjp_theta(const batch& "
                      "x, const batch& theta, const batch& dout, batch& dtheta) const`; see "
                      "docs/perturbations.md");
        return false;
    } else if constexpr (!c::has_vjp_input<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks member `void vjp_input(const batch& "
                      "x, const batch& theta, const batch& dout, batch& dx) const`; see "
                      "docs/perturbations.md");
        return false;
    } else if constexpr (!c::has_identity<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks member `void identity(std::size_t "
                      "n, batch& theta) const`; see docs/perturbations.md");
        return false;
    } else if constexpr (!c::has_sample<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks member `void sample(std::size_t n, "
                      "std::uint64_t key, batch& theta) const`; see docs/perturbations.md");
        return false;
    } else if constexpr (!c::has_budget<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks members `void project(batch& theta) "
                      "const` and `bool contains(const batch& theta) const`; see "
                      "docs/perturbations.md");
        return false;
    } else if constexpr (!c::has_param_scale<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family lacks member `std::vector<double> "
                      "param_scale() const`; see docs/perturbations.md");
        return false;
    } else if constexpr (c::has_recorded_apply<F> != c::has_recorded_vjp<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: the perturbation family declares one half of the recorded pass; "
                      "it needs both `void apply(const batch& x, const batch& theta, batch& out, "
                      "family_tape& tape) const` and `void vjp(const batch& x, const batch& "
                      "theta, const batch& dout, batch* dtheta, batch* dx, family_tape& tape) "
                      "const`, or neither; see docs/perturbations.md");
        return false;
    } else if constexpr (kind_of<F>() == perturbation_kind::discrete && !c::has_max_active<F>) {
        static_assert(detail::always_false<F>,
                      "advaug: a discrete perturbation family lacks member `std::size_t "
                      "max_active() const`; see docs/perturbations.md");
        return false;
    } else {
        return true;
    }
}

}  // namespace advaug
