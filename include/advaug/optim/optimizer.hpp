// The optimizer contract the trainer is written against. advaug's optimizers (optim/sgd.hpp,
// optim/adam.hpp, cuda/sgd.hpp) satisfy it; a user's optimizer needs nothing else.
//
// An optimizer O over parameters of type T provides:
//   void step(std::vector<advaug::parameter_view<T>>& params, double lr)
//     One update of every parameter's value from its grad, with learning rate lr (>= 0).
//     Per-parameter state is keyed by position in `params`; later steps pass the same
//     parameters in the same order.
//   void save_state(advaug::io::binary_writer&) const
//     Appends everything needed to continue the run bitwise identically.
//   void load_state(advaug::io::binary_reader&, const std::vector<advaug::parameter_view<T>>& params)
//     Restores a saved state; throws, leaving the optimizer unchanged, if it does not fit
//     `params` (another architecture), is malformed or belongs to another optimizer.
//
// check_optimizer<O, T>() names the first missing member in one static_assert, as
// model/static_checks.hpp does for models.
#pragma once

#include <vector>

#include "advaug/io/binary.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug {

namespace detail::optimizer_contract {

// Each member is its own concept so that a missing member can be named on its own.
template <class O, class T>
concept has_step = requires(O& opt, std::vector<parameter_view<T>>& params, double lr) {
    opt.step(params, lr);
};

template <class O>
concept has_save_state = requires(const O& opt, io::binary_writer& out) { opt.save_state(out); };

template <class O, class T>
concept has_load_state =
    requires(O& opt, io::binary_reader& in, const std::vector<parameter_view<T>>& params) {
        opt.load_state(in, params);
    };

}  // namespace detail::optimizer_contract

/// An optimizer for parameters of type T (see the contract above).
template <class O, class T>
concept optimizer = detail::optimizer_contract::has_step<O, T> &&
                    detail::optimizer_contract::has_save_state<O> &&
                    detail::optimizer_contract::has_load_state<O, T>;

namespace detail {
template <class>
inline constexpr bool optimizer_always_false = false;
}  // namespace detail

/// True if O is an optimizer for T; otherwise one static_assert names the first missing member.
template <class O, class T>
consteval bool check_optimizer() {
    namespace c = detail::optimizer_contract;
    if constexpr (!c::has_step<O, T>) {
        static_assert(detail::optimizer_always_false<O>,
                      "advaug: the optimizer lacks member `void step(std::vector<advaug::parameter_view"
                      "<value_type>>& params, double lr)` for the model's value_type; see "
                      "include/advaug/optim/optimizer.hpp");
        return false;
    } else if constexpr (!c::has_save_state<O>) {
        static_assert(detail::optimizer_always_false<O>,
                      "advaug: the optimizer lacks member `void save_state(advaug::io::binary_writer&) "
                      "const`; see include/advaug/optim/optimizer.hpp");
        return false;
    } else if constexpr (!c::has_load_state<O, T>) {
        static_assert(detail::optimizer_always_false<O>,
                      "advaug: the optimizer lacks member `void load_state(advaug::io::binary_reader&, "
                      "const std::vector<advaug::parameter_view<value_type>>& params)`; see "
                      "include/advaug/optim/optimizer.hpp");
        return false;
    } else {
        return true;
    }
}

}  // namespace advaug
