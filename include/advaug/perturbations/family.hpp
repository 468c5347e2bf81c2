// The perturbation-family contract: what the worst-case search needs from a family of natural
// perturbations (a brightness change, a rotation, a sensor drift), the way model/classifier.hpp
// says what an attack needs from a model.
//
// This header is the single source of truth for the contract; docs/perturbations.md explains
// it. A family is any type with these members; nothing is registered and nothing is inherited.
// Batches are flat: x is [N, D] in the model's units (what forward() receives; an image
// [N, C, H, W] is read as [N, C*H*W], channel-major), theta is [N, P], one row per sample.
//
// perturbation_family<F>
//   typename F::value_type      float or double.
//   input_size() const          D, the features per sample the family accepts.
//   num_params() const          P, the parameters per sample.
//   apply(x, theta, out) const
//     requires: x is [N, D], theta is [N, P], both finite.
//     ensures:  out is resized to [N, D] and holds the perturbed batch, inside the family's
//               input domain. A row of theta equal to the identity returns its row of x bit
//               for bit. Row n of out depends on row n of x and of theta only.
//   vjp_theta(x, theta, dout, dtheta) const
//     requires: as apply; dout is [N, D] and holds dL/dout.
//     ensures:  dtheta is resized to [N, P] and holds dL/dtheta = J_theta^T dout (zero where
//               the output was clipped to the domain; a family that is not differentiable in
//               theta says so by its kind, and its dtheta is documented with it).
//   vjp_input(x, theta, dout, dx) const
//     requires: as vjp_theta.
//     ensures:  dx is resized to [N, D] and holds dL/dx = J_x^T dout.
//   identity(n, theta) const
//     ensures:  theta is resized to [n, P] and every row is the parameter that leaves x as it is.
//   sample(n, key, theta) const
//     ensures:  theta is resized to [n, P], every row a random point of the budget; element
//               (i, j) depends on key, i and j only (a counter-based stream,
//               detail::counter_uniform), so results do not depend on the number of threads.
//   project(theta) const
//     requires: theta is [N, P] and finite.
//     ensures:  every row is replaced by a point of the budget (the nearest one, for a box).
//   contains(theta) const -> bool
//     true when every row lies in the budget (up to rounding).
//   param_scale() const -> std::vector<double>
//     P positive numbers, the extent of the budget along each parameter (half a box's width);
//     a gradient step of the search moves parameter j by a fraction of param_scale()[j].
//   vjp(x, theta, dout, dtheta, dx) const (optional; dtheta and dx are batch pointers, either
//   may be null)
//     both products in one pass where both are wanted: the values vjp_theta and vjp_input give,
//     bit for bit. vjp_both(family, ...) calls it where declared and the two members otherwise;
//     augment_and_mix and chain use it for their parts. The bundled families declare it.
//   apply(x, theta, out, tape) and vjp(x, theta, dout, dtheta, dx, tape) const (optional, the
//   two together; tape is a family_tape&)
//     the recorded pass: apply as above, keeping in tape what the products need (the forward's
//     intermediates, which rows were clipped); then vjp of the same x and theta (the same
//     tensors, unchanged) reads the record instead of computing the forward pass again. The
//     values are apply's and vjp's, bit for bit, for any number of vjps from one record (with
//     either pointer null or not). vjp from a tape that holds no record of this
//     family, x and theta is an std::invalid_argument. apply_recorded and vjp_recorded (below)
//     call them where declared and the plain members otherwise; the worst-case search and the
//     trainer's family step do, since each gradient step applies the family, runs the model,
//     then takes vjp_theta. The record holds per sample what the forward computed (for the
//     bundled families in float, from about 16 bytes per input value for photometric to about
//     110 for displacement_field), so its memory grows with the batch. photometric,
//     affine, displacement_field and gaussian_blur declare it; the balls and the tabular
//     families compute their forward pass again in less time than a record takes, and chain
//     and augment_and_mix run their parts' plain members; any_family forwards to the family
//     it holds.
//   static constexpr perturbation_kind kind (optional, default continuous)
//     continuous: differentiable in theta almost everywhere; searched by gradient or sampling.
//     gradient_free: theta has no useful derivative (quantization); searched by sampling only.
//     discrete: theta is a 0/1 mask with at most max_active() ones (dropped sensors); searched
//               greedily by the gradient of the relaxation, by sampling, or exhaustively.
//   max_active() const -> std::size_t (discrete families only)
//     the largest number of ones a mask may hold.
//
// Every member is const and may be called from several threads at once: augment_and_mix runs
// its operations on each of advaug's threads for that thread's rows. A family that keeps
// mutable state (a cache) must guard it.
//
// A family whose kind is known only at run time (any_family, which holds a family chosen at
// run time) declares no static kind; it has held_kind() const -> perturbation_kind instead, and
// max_active() (0 unless the family held is discrete). kind_of(family) reads either.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "advaug/detail/xtensor.hpp"

namespace advaug {

/// How the search treats a family's parameters (see the contract above).
enum class perturbation_kind { continuous, gradient_free, discrete };

/// What a family's recorded apply kept for its vjp at the same x and theta (the contract's
/// optional recorded pass). Its user creates one, passes it to apply_recorded and then to
/// vjp_recorded, and may reuse it for the next batch (its memory is kept). Not shared between
/// threads. What it holds is the family's business: state<S>() gives the family its record.
class family_tape {
public:
    /// The record of type S, made (value-initialized) on first use or when the tape held
    /// another type, kept otherwise.
    template <class S>
    S& state() {
        if (!state_ || state_->type() != typeid(S)) state_ = std::make_unique<holder<S>>();
        return static_cast<holder<S>&>(*state_).value;
    }
    /// The record of type S, or null when the tape holds none of that type.
    template <class S>
    S* find() {
        return state_ && state_->type() == typeid(S) ? &static_cast<holder<S>&>(*state_).value
                                                     : nullptr;
    }

private:
    struct base {
        virtual ~base() = default;
        virtual const std::type_info& type() const = 0;
    };
    template <class S>
    struct holder final : base {
        S value{};
        const std::type_info& type() const override { return typeid(S); }
    };
    std::unique_ptr<base> state_;
};

namespace detail::perturbation_contract {

template <class F>
using batch_t = tensor<typename F::value_type, 2>;

// Each member is its own concept so that a missing member can be named on its own.
template <class F>
concept has_value_type =
    requires { typename F::value_type; } && std::floating_point<typename F::value_type>;

template <class F>
concept has_sizes = requires(const F& f) {
    { f.input_size() } -> std::convertible_to<std::size_t>;
    { f.num_params() } -> std::convertible_to<std::size_t>;
};

template <class F>
concept has_apply = requires(const F& f, const batch_t<F>& x, const batch_t<F>& theta,
                             batch_t<F>& out) { f.apply(x, theta, out); };

template <class F>
concept has_vjp_theta = requires(const F& f, const batch_t<F>& x, const batch_t<F>& theta,
                                 const batch_t<F>& dout, batch_t<F>& dtheta) {
    f.vjp_theta(x, theta, dout, dtheta);
};

template <class F>
concept has_vjp_input = requires(const F& f, const batch_t<F>& x, const batch_t<F>& theta,
                                 const batch_t<F>& dout, batch_t<F>& dx) {
    f.vjp_input(x, theta, dout, dx);
};

template <class F>
concept has_vjp = requires(const F& f, const batch_t<F>& x, const batch_t<F>& theta,
                           const batch_t<F>& dout, batch_t<F>* dtheta, batch_t<F>* dx) {
    f.vjp(x, theta, dout, dtheta, dx);
};

template <class F>
concept has_recorded_apply = requires(const F& f, const batch_t<F>& x, const batch_t<F>& theta,
                                      batch_t<F>& out, family_tape& tape) {
    f.apply(x, theta, out, tape);
};

template <class F>
concept has_recorded_vjp =
    requires(const F& f, const batch_t<F>& x, const batch_t<F>& theta, const batch_t<F>& dout,
             batch_t<F>* dtheta, batch_t<F>* dx, family_tape& tape) {
        f.vjp(x, theta, dout, dtheta, dx, tape);
    };

template <class F>
concept has_identity =
    requires(const F& f, std::size_t n, batch_t<F>& theta) { f.identity(n, theta); };

template <class F>
concept has_sample = requires(const F& f, std::size_t n, std::uint64_t key, batch_t<F>& theta) {
    f.sample(n, key, theta);
};

template <class F>
concept has_budget = requires(const F& f, batch_t<F>& theta, const batch_t<F>& ctheta) {
    f.project(theta);
    { f.contains(ctheta) } -> std::convertible_to<bool>;
};

template <class F>
concept has_param_scale = requires(const F& f) {
    { f.param_scale() } -> std::convertible_to<std::vector<double>>;
};

template <class F>
concept declares_kind = requires {
    { F::kind } -> std::convertible_to<perturbation_kind>;
};

template <class F>
concept has_max_active = requires(const F& f) {
    { f.max_active() } -> std::convertible_to<std::size_t>;
};

template <class F>
concept declares_held_kind = has_max_active<F> && requires(const F& f) {
    { f.held_kind() } -> std::same_as<perturbation_kind>;
};

}  // namespace detail::perturbation_contract

/// True for a family whose kind is known only at run time (any_family).
template <class F>
concept kind_known_at_run_time = detail::perturbation_contract::declares_held_kind<F>;

/// The kind of F: F::kind if declared, else continuous.
template <class F>
consteval perturbation_kind kind_of() {
    if constexpr (detail::perturbation_contract::declares_kind<F>) {
        return F::kind;
    } else {
        return perturbation_kind::continuous;
    }
}

/// The kind of `family`: its held_kind() where the kind is known at run time only, else F's.
template <class F>
constexpr perturbation_kind kind_of(const F& family) {
    if constexpr (kind_known_at_run_time<F>) {
        return family.held_kind();
    } else {
        return kind_of<F>();
    }
}

/// dtheta = J_theta^T dout and dx = J_x^T dout where each is wanted (not null): through the
/// family's optional vjp() in one pass where it declares one, else by vjp_theta and vjp_input.
template <class F, class T = typename F::value_type>
void vjp_both(const F& family, const tensor<T, 2>& x, const tensor<T, 2>& theta,
              const tensor<T, 2>& dout, tensor<T, 2>* dtheta, tensor<T, 2>* dx) {
    if constexpr (detail::perturbation_contract::has_vjp<F>) {
        if (dtheta && dx) {
            family.vjp(x, theta, dout, dtheta, dx);
            return;
        }
    }
    if (dtheta) family.vjp_theta(x, theta, dout, *dtheta);
    if (dx) family.vjp_input(x, theta, dout, *dx);
}

/// out = family.apply(x, theta), keeping in tape what vjp_recorded needs where the family
/// declares the recorded pass; else the plain apply (and tape is left as it is).
template <class F, class T = typename F::value_type>
void apply_recorded(const F& family, const tensor<T, 2>& x, const tensor<T, 2>& theta,
                    tensor<T, 2>& out, family_tape& tape) {
    if constexpr (detail::perturbation_contract::has_recorded_apply<F> &&
                  detail::perturbation_contract::has_recorded_vjp<F>) {
        family.apply(x, theta, out, tape);
    } else {
        (void)tape;
        family.apply(x, theta, out);
    }
}

/// vjp_both at the x and theta of the last apply_recorded into tape (the same tensors,
/// unchanged), from its record where the family declares the recorded pass.
template <class F, class T = typename F::value_type>
void vjp_recorded(const F& family, const tensor<T, 2>& x, const tensor<T, 2>& theta,
                  const tensor<T, 2>& dout, tensor<T, 2>* dtheta, tensor<T, 2>* dx,
                  family_tape& tape) {
    if constexpr (detail::perturbation_contract::has_recorded_apply<F> &&
                  detail::perturbation_contract::has_recorded_vjp<F>) {
        family.vjp(x, theta, dout, dtheta, dx, tape);
    } else {
        (void)tape;
        vjp_both(family, x, theta, dout, dtheta, dx);
    }
}

/// A family of perturbations that the worst-case search can use.
template <class F>
concept perturbation_family =
    detail::perturbation_contract::has_value_type<F> &&
    detail::perturbation_contract::has_sizes<F> && detail::perturbation_contract::has_apply<F> &&
    detail::perturbation_contract::has_vjp_theta<F> &&
    detail::perturbation_contract::has_vjp_input<F> &&
    detail::perturbation_contract::has_identity<F> &&
    detail::perturbation_contract::has_sample<F> &&
    detail::perturbation_contract::has_budget<F> &&
    detail::perturbation_contract::has_param_scale<F> &&
    (kind_of<F>() != perturbation_kind::discrete ||
     detail::perturbation_contract::has_max_active<F>);

}  // namespace advaug
