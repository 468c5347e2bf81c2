// Readable compile-time errors for layers that do not follow the layer contract.
//
// sequential::add calls check_layer<L>() and builds its slot only when it returns true: a layer
// that lacks a required member, or whose optional members and `optional_members` list disagree
// (layers/layer.hpp), gets exactly one error, a static_assert naming the member.
#pragma once

#include <type_traits>

#include "advaug/layers/layer.hpp"

namespace advaug {

namespace detail::layer_contract {
template <class>
inline constexpr bool always_false = false;

/// The checks of one optional member: a member with its name must have its signature and be
/// listed, a listed member must exist. Split from check_layer so that it stays readable.
template <class L>
consteval bool check_optional_members() {
    namespace c = detail::layer_contract;
    if constexpr (c::names_optional_members<L> && !c::has_optional_members<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer's member `optional_members` must be a "
                      "`static constexpr advaug::optional_member`; see docs/layers.md");
        return false;
    } else if constexpr (c::names_output_shape<L> && !c::has_output_shape<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer's member `output_shape` does not have the signature "
                      "`shape output_shape(const std::vector<std::size_t>&) const` returning a "
                      "range of std::size_t; see docs/layers.md");
        return false;
    } else if constexpr (c::declares_output_shape<L> && !c::has_output_shape<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer lists optional_member::output_shape but lacks member "
                      "`output_shape(const std::vector<std::size_t>&) const`; see docs/layers.md");
        return false;
    } else if constexpr (c::has_output_shape<L> && !c::declares_output_shape<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer has member `output_shape` but does not list "
                      "optional_member::output_shape in `optional_members`; see docs/layers.md");
        return false;
    } else if constexpr (c::names_describe<L> && !c::has_describe<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer's member `describe` does not have the signature "
                      "`std::string describe() const`; see docs/layers.md");
        return false;
    } else if constexpr (c::declares_describe<L> && !c::has_describe<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer lists optional_member::describe but lacks member "
                      "`std::string describe() const`; see docs/layers.md");
        return false;
    } else if constexpr (c::has_describe<L> && !c::declares_describe<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer has member `describe` but does not list "
                      "optional_member::describe in `optional_members`; see docs/layers.md");
        return false;
    } else if constexpr (c::names_append_parameters<L> && !c::has_append_parameters<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer's member `append_parameters` does not have the signature "
                      "`void append_parameters(std::vector<advaug::parameter_view<value_type>>&, "
                      "const std::string& prefix)`; see docs/layers.md");
        return false;
    } else if constexpr (c::declares_append_parameters<L> && !c::has_append_parameters<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer lists optional_member::append_parameters but lacks member "
                      "`void append_parameters(std::vector<advaug::parameter_view<value_type>>&, "
                      "const std::string& prefix)`; see docs/layers.md");
        return false;
    } else if constexpr (c::has_append_parameters<L> && !c::declares_append_parameters<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer has member `append_parameters` but does not list "
                      "optional_member::append_parameters in `optional_members`; "
                      "see docs/layers.md");
        return false;
    } else if constexpr (c::names_append_buffers<L> && !c::has_append_buffers<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer's member `append_buffers` does not have the signature "
                      "`void append_buffers(std::vector<advaug::parameter_view<value_type>>&, "
                      "const std::string& prefix)`; see docs/layers.md");
        return false;
    } else if constexpr (c::declares_append_buffers<L> && !c::has_append_buffers<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer lists optional_member::append_buffers but lacks member "
                      "`void append_buffers(std::vector<advaug::parameter_view<value_type>>&, "
                      "const std::string& prefix)`; see docs/layers.md");
        return false;
    } else if constexpr (c::has_append_buffers<L> && !c::declares_append_buffers<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer has member `append_buffers` but does not list "
                      "optional_member::append_buffers in `optional_members`; see docs/layers.md");
        return false;
    } else if constexpr (c::names_stream<typename L::cache_type> && !c::has_cache_stream<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer's `cache_type::stream` is not assignable from "
                      "std::uint64_t; see docs/layers.md");
        return false;
    } else if constexpr (c::declares_cache_stream<L> && !c::has_cache_stream<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer lists optional_member::cache_stream but lacks member "
                      "`std::uint64_t stream` in its cache_type; see docs/layers.md");
        return false;
    } else if constexpr (c::has_cache_stream<L> && !c::declares_cache_stream<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer's cache_type has member `stream` but the layer does not "
                      "list optional_member::cache_stream in `optional_members`; "
                      "see docs/layers.md");
        return false;
    } else if constexpr (c::names_mode_independent<L> && !c::has_mode_independent<L>) {
        static_assert(always_false<L>,
                      "advaug: the layer's member `mode_independent` must be a "
                      "`static constexpr bool`; see docs/layers.md");
        return false;
    } else if constexpr (!c::has_output_shape<L> && L::input_rank != L::output_rank) {
        static_assert(always_false<L>,
                      "advaug: a layer whose input_rank differs from its output_rank needs member "
                      "`output_shape(const std::vector<std::size_t>&) const`; see docs/layers.md");
        return false;
    } else {
        return true;
    }
}
}  // namespace detail::layer_contract

/// True if L follows the layer contract (layers/layer.hpp); otherwise exactly one static_assert
/// names the first missing or mismatched member.
template <class L>
consteval bool check_layer() {
    namespace c = detail::layer_contract;
    if constexpr (!c::probeable<L>) {
        static_assert(c::always_false<L>,
                      "advaug: a layer must be a class that is not `final` (its optional members "
                      "are found by deriving from it); see docs/layers.md");
        return false;
    } else if constexpr (!c::has_value_type<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member type `value_type` (float or double); "
                      "see docs/layers.md");
        return false;
    } else if constexpr (!c::has_input_rank<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `static constexpr std::size_t input_rank` "
                      "(2 or 4); see docs/layers.md");
        return false;
    } else if constexpr (!c::has_output_rank<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `static constexpr std::size_t output_rank` "
                      "(2 or 4); see docs/layers.md");
        return false;
    } else if constexpr (!c::has_cache_type<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks a default-constructible member type `cache_type`; "
                      "see docs/layers.md");
        return false;
    } else if constexpr (!c::has_forward<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `void forward(const input& x, cache_type&, "
                      "output& y) const`; see docs/layers.md");
        return false;
    } else if constexpr (!c::has_backward_input<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `void backward_input(cache_type&, const "
                      "output& dy, input& dx) const`; see docs/layers.md");
        return false;
    } else if constexpr (!c::has_accumulate_gradient<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `void accumulate_gradient(cache_type&, const "
                      "output& dy)`; see docs/layers.md");
        return false;
    } else if constexpr (!c::has_zero_grad<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `void zero_grad()`; see docs/layers.md");
        return false;
    } else if constexpr (!c::has_parameters<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `std::vector<advaug::parameter_view<"
                      "value_type>> parameters()`; see docs/layers.md");
        return false;
    } else if constexpr (!c::has_mode<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `advaug::mode mode() const`; "
                      "see docs/layers.md");
        return false;
    } else if constexpr (!c::has_set_mode<L>) {
        static_assert(c::always_false<L>,
                      "advaug: the layer lacks member `void set_mode(advaug::mode)`; "
                      "see docs/layers.md");
        return false;
    } else {
        return c::check_optional_members<L>();
    }
}

}  // namespace advaug
