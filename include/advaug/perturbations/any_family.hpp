// any_family<T>: any perturbation family of value type T behind one type, so that a family
// chosen at run time (a command-line flag) or held by a non-template object (the trainer's
// train_options) can be stored and passed around. It is itself a perturbation family:
// worst_case(), perturb() and check_perturbation_gradients() take it as they take the family it
// holds. Its kind (continuous, gradient-free or discrete) is the held family's, known at run time
// only (held_kind(); family.hpp's kind_of(family) reads it), so the search picks its algorithm
// when it runs. A chain<...> does not take an any_family as a member (its kind is a compile-time
// constant); put the chain in the any_family instead.
//
// Copies share the family they hold, which is never modified (every member of the contract is
// const), so a copy is cheap and two threads may use copies at once.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/detail/xtensor.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/static_checks.hpp"

namespace advaug {

template <class T>
class any_family {
public:
    using value_type = T;
    using batch = tensor<T, 2>;
    /// requires: F is a perturbation family of value type T (one readable error names a
    ///           missing member or another T).
    template <class F>
    requires(!std::same_as<std::remove_cvref_t<F>, any_family>) any_family(
        F family) {  // NOLINT: implicit, so a family converts where an any_family is taken
        if constexpr (check_perturbation_family<F>()) {
            static_assert(std::is_same_v<typename F::value_type, T>,
                          "advaug: any_family<T> holds a family of value_type T only");
            kind_ = kind_of(family);
            impl_ = std::make_shared<const holder<F>>(std::move(family));
        }
    }

    std::size_t input_size() const { return impl_->input_size(); }
    std::size_t num_params() const { return impl_->num_params(); }
    void apply(const batch& x, const batch& theta, batch& out) const {
        impl_->apply(x, theta, out);
    }
    void vjp_theta(const batch& x, const batch& theta, const batch& dout, batch& dtheta) const {
        impl_->vjp_theta(x, theta, dout, dtheta);
    }
    void vjp_input(const batch& x, const batch& theta, const batch& dout, batch& dx) const {
        impl_->vjp_input(x, theta, dout, dx);
    }
    /// Both products in one pass where the held family declares vjp() (vjp_both).
    void vjp(const batch& x, const batch& theta, const batch& dout, batch* dtheta, batch* dx) const {
        impl_->vjp(x, theta, dout, dtheta, dx);
    }
    /// The recorded pass (family.hpp): the held family's where it declares one; else apply and
    /// vjp_both, and the tape is not used.
    void apply(const batch& x, const batch& theta, batch& out, family_tape& tape) const {
        impl_->apply(x, theta, out, tape);
    }
    void vjp(const batch& x, const batch& theta, const batch& dout, batch* dtheta, batch* dx,
             family_tape& tape) const {
        impl_->vjp(x, theta, dout, dtheta, dx, tape);
    }
    void identity(std::size_t n, batch& theta) const { impl_->identity(n, theta); }
    void sample(std::size_t n, std::uint64_t key, batch& theta) const {
        impl_->sample(n, key, theta);
    }
    void project(batch& theta) const { impl_->project(theta); }
    bool contains(const batch& theta) const { return impl_->contains(theta); }
    std::vector<double> param_scale() const { return impl_->param_scale(); }
    /// The held family's kind.
    perturbation_kind held_kind() const { return kind_; }
    /// The held family's max_active() if it is discrete, else 0.
    std::size_t max_active() const { return impl_->max_active(); }

    /// The family held, if it has type F (else null).
    template <class F>
    const F* target() const {
        const auto* h = dynamic_cast<const holder<F>*>(impl_.get());
        return h ? &h->family : nullptr;
    }

private:
    struct base {
        virtual ~base() = default;
        virtual std::size_t input_size() const = 0;
        virtual std::size_t num_params() const = 0;
        virtual void apply(const batch&, const batch&, batch&) const = 0;
        virtual void vjp_theta(const batch&, const batch&, const batch&, batch&) const = 0;
        virtual void vjp_input(const batch&, const batch&, const batch&, batch&) const = 0;
        virtual void vjp(const batch&, const batch&, const batch&, batch*, batch*) const = 0;
        virtual void apply(const batch&, const batch&, batch&, family_tape&) const = 0;
        virtual void vjp(const batch&, const batch&, const batch&, batch*, batch*,
                         family_tape&) const = 0;
        virtual void identity(std::size_t, batch&) const = 0;
        virtual void sample(std::size_t, std::uint64_t, batch&) const = 0;
        virtual void project(batch&) const = 0;
        virtual bool contains(const batch&) const = 0;
        virtual std::vector<double> param_scale() const = 0;
        virtual std::size_t max_active() const = 0;
    };

    template <class F>
    struct holder final : base {
        explicit holder(F f) : family(std::move(f)) {}
        std::size_t input_size() const override { return family.input_size(); }
        std::size_t num_params() const override { return family.num_params(); }
        void apply(const batch& x, const batch& th, batch& out) const override {
            family.apply(x, th, out);
        }
        void vjp_theta(const batch& x, const batch& th, const batch& g, batch& d) const override {
            family.vjp_theta(x, th, g, d);
        }
        void vjp_input(const batch& x, const batch& th, const batch& g, batch& d) const override {
            family.vjp_input(x, th, g, d);
        }
        void vjp(const batch& x, const batch& th, const batch& g, batch* dth, batch* dx) const override {
            vjp_both(family, x, th, g, dth, dx);
        }
        void apply(const batch& x, const batch& th, batch& out, family_tape& tape) const override {
            apply_recorded(family, x, th, out, tape);
        }
        void vjp(const batch& x, const batch& th, const batch& g, batch* dth, batch* dx,
                 family_tape& tape) const override {
            vjp_recorded(family, x, th, g, dth, dx, tape);
        }
        void identity(std::size_t n, batch& th) const override { family.identity(n, th); }
        void sample(std::size_t n, std::uint64_t key, batch& th) const override {
            family.sample(n, key, th);
        }
        void project(batch& th) const override { family.project(th); }
        bool contains(const batch& th) const override { return family.contains(th); }
        std::vector<double> param_scale() const override { return family.param_scale(); }
        std::size_t max_active() const override {
            if constexpr (detail::perturbation_contract::has_max_active<F>) {
                return kind_of(family) == perturbation_kind::discrete ? family.max_active() : 0;
            } else {
                return 0;
            }
        }
        F family;
    };

    std::shared_ptr<const base> impl_;
    perturbation_kind kind_ = perturbation_kind::continuous;
};

}  // namespace advaug
