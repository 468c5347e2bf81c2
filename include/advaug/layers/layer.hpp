// The layer contract: what sequential (models/sequential.hpp) needs from a layer.
//
// This header is the single source of truth for the contract; docs/layers.md explains it with
// an example. A layer is any class with these members; nothing is registered. Layers without
// parameters may inherit the parameter and mode members from parameterless_layer
// (layers/parameterless.hpp). Below, T is value_type, X is tensor<T, input_rank> and
// Y is tensor<T, output_rank>.
//
// layer<L> -- required members
//   typename L::value_type       float or double.
//   L::input_rank, L::output_rank
//                                2 for [N, features], 4 for [N, channels, height, width].
//   typename L::cache_type       default-constructible record of a forward pass, one per caller.
//   forward(const X& x, cache_type& cache, Y& y) const
//     requires: x has shape [N >= 1, ...] with the sample shape the layer accepts.
//     ensures:  y holds the output; y is resized only when its shape differs, so a steady state
//               allocates nothing. The cache may keep a pointer to x or y: both stay alive and
//               unchanged until the last backward call on this cache. Nothing in the layer
//               changes (forward is const).
//   backward_input(cache_type& cache, const Y& dy, X& dx) const
//     requires: cache was filled by forward() of this layer; dy has the shape of y.
//     ensures:  dx has the shape of x and holds J(x)^T dy. No parameter gradient and no
//               statistic changes: attacks call this between two optimizer steps.
//   accumulate_gradient(cache_type& cache, const Y& dy)
//     requires: as for backward_input.
//     ensures:  every parameter gradient is incremented by dL/dparameter for dL/dy = dy. The
//               only member that may update training statistics (batch norm's running mean),
//               and only in train mode.
//   zero_grad()                  sets every parameter gradient to zero.
//   parameters()                 std::vector<parameter_view<T>>, named as PyTorch names them
//                                ("weight", "bias"); the views alias storage that is never
//                                reallocated (model/parameter.hpp).
//   mode() const                 advaug::mode: train or eval.
//   set_mode(advaug::mode)       switches it; forward() reads it.
// The backward members may take the cache as `const cache_type&`.
//
// Optional members. Each one that a layer has must be listed in
//   static constexpr advaug::optional_member optional_members = ...;
// (e.g. `optional_member::output_shape | optional_member::describe`), and sequential checks
// the list against the members (layers/static_checks.hpp): a listed member that is missing or
// misspelled, a member with an optional member's name but another signature, and an optional
// member that is not listed are each refused with one static_assert. Without the list, a typo
// would silently fall back to the default and, for append_buffers, silently drop state from
// model files.
//   output_shape(const std::vector<std::size_t>& sample) const     listed as output_shape
//     returns the shape of one output sample (a range of std::size_t); throws
//     std::invalid_argument when the layer does not accept `sample`. Default: the shape is
//     kept, and input_rank must equal output_rank.
//   std::string describe() const                                   listed as describe
//     the layer's name in messages ("dense(784->128)"). Default: "layer".
//   append_parameters(std::vector<parameter_view<T>>&, const std::string& prefix)
//                                                                  listed as append_parameters
//     appends parameters() with names prefixed by `prefix`, without a temporary vector.
//     Default: parameters(), renamed.
//   append_buffers(std::vector<parameter_view<T>>&, const std::string& prefix)
//                                                                  listed as append_buffers
//     appends state that model files save but optimizers never train (batch norm's running
//     statistics), as views with an empty gradient. Default: none.
//   cache_type::stream, assignable from std::uint64_t              listed as cache_stream
//     the random stream of a layer that draws (dropout); sequential copies its cache's stream
//     into every layer cache it makes. Default: not set.
// Optional members that need no listing, because they are themselves a declaration or share a
// required member's name:
//   static constexpr bool mode_independent
//     true promises that forward() is the same in train and eval mode. Default: false.
//   accumulate_gradient(cache, dy, T scale)
//     adds scale times the gradient. Default: dy is scaled into a scratch buffer first.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "advaug/detail/xtensor.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug {

/// The optional members a layer declares in `static constexpr optional_member optional_members`.
enum class optional_member : unsigned {
    none = 0,
    output_shape = 1u << 0,
    describe = 1u << 1,
    append_parameters = 1u << 2,
    append_buffers = 1u << 3,
    cache_stream = 1u << 4,
};

constexpr optional_member operator|(optional_member a, optional_member b) {
    return static_cast<optional_member>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}

/// True when `set` contains `m`.
constexpr bool contains(optional_member set, optional_member m) {
    return (static_cast<unsigned>(set) & static_cast<unsigned>(m)) != 0;
}

/// The input and output batch types of a layer.
template <class L>
using layer_input_t = tensor<typename L::value_type, L::input_rank>;
template <class L>
using layer_output_t = tensor<typename L::value_type, L::output_rank>;

namespace detail::layer_contract {

// Required members, one concept each so that a missing member can be named on its own.
template <class L>
concept has_value_type =
    requires { typename L::value_type; } && std::floating_point<typename L::value_type>;

template <class L>
concept has_input_rank = requires {
    { L::input_rank } -> std::convertible_to<std::size_t>;
} && (L::input_rank == 2 || L::input_rank == 4);

template <class L>
concept has_output_rank = requires {
    { L::output_rank } -> std::convertible_to<std::size_t>;
} && (L::output_rank == 2 || L::output_rank == 4);

template <class L>
concept has_cache_type =
    requires { typename L::cache_type; } && std::default_initializable<typename L::cache_type>;

template <class L>
concept has_forward = requires(const L& l, const layer_input_t<L>& x, typename L::cache_type& c,
                               layer_output_t<L>& y) { l.forward(x, c, y); };

template <class L>
concept has_backward_input =
    requires(const L& l, typename L::cache_type& c, const layer_output_t<L>& dy,
             layer_input_t<L>& dx) { l.backward_input(c, dy, dx); };

template <class L>
concept has_accumulate_gradient =
    requires(L& l, typename L::cache_type& c, const layer_output_t<L>& dy) {
        l.accumulate_gradient(c, dy);
    };

template <class L>
concept has_zero_grad = requires(L& l) { l.zero_grad(); };

template <class L>
concept has_parameters = requires(L& l) {
    { l.parameters() } -> std::same_as<std::vector<parameter_view<typename L::value_type>>>;
};

template <class L>
concept has_mode = requires(const L& l) {
    { l.mode() } -> std::same_as<advaug::mode>;
};

template <class L>
concept has_set_mode = requires(L& l) { l.set_mode(advaug::mode::eval); };

// Optional members with their documented signatures.
template <class L>
concept has_output_shape = requires(const L& l, const std::vector<std::size_t>& in) {
    l.output_shape(in);
    std::vector<std::size_t>(l.output_shape(in).begin(), l.output_shape(in).end());
};

template <class L>
concept has_describe = requires(const L& l) {
    { l.describe() } -> std::convertible_to<std::string>;
};

template <class L>
concept has_append_parameters =
    requires(L& l, std::vector<parameter_view<typename L::value_type>>& out,
             const std::string& prefix) { l.append_parameters(out, prefix); };

template <class L>
concept has_append_buffers =
    requires(L& l, std::vector<parameter_view<typename L::value_type>>& out,
             const std::string& prefix) { l.append_buffers(out, prefix); };

template <class L>
concept has_cache_stream = requires(typename L::cache_type& c, std::uint64_t s) { c.stream = s; };

template <class L>
concept has_scaled_accumulate_gradient =
    requires(L& l, typename L::cache_type& c, const layer_output_t<L>& dy,
             typename L::value_type scale) { l.accumulate_gradient(c, dy, scale); };

template <class L>
concept has_mode_independent = requires {
    { std::bool_constant<static_cast<bool>(L::mode_independent)>{} };
} && std::same_as<std::remove_cv_t<decltype(L::mode_independent)>, bool>;

template <class L>
concept has_optional_members = requires {
    { std::integral_constant<optional_member, L::optional_members>{} };
} && std::same_as<std::remove_cv_t<decltype(L::optional_members)>, optional_member>;

// Whether a class declares anything with a given name, whatever its kind or signature: in a
// class derived from both L and a probe that has the name, the name is ambiguous exactly when L
// has it too. This is what turns a wrong signature into an error instead of a silent default.
struct output_shape_probe { int output_shape; };
struct describe_probe { int describe; };
struct append_parameters_probe { int append_parameters; };
struct append_buffers_probe { int append_buffers; };
struct stream_probe { int stream; };
struct mode_independent_probe { int mode_independent; };
struct optional_members_probe { int optional_members; };

template <class C, class Probe>
struct probed : C, Probe {};

/// A class the probes can derive from; names in other types cannot be seen.
template <class C>
concept probeable = std::is_class_v<C> && !std::is_final_v<C>;

template <class C>
concept names_output_shape =
    probeable<C> && !requires { &probed<C, output_shape_probe>::output_shape; };
template <class C>
concept names_describe =
    probeable<C> && !requires { &probed<C, describe_probe>::describe; };
template <class C>
concept names_append_parameters =
    probeable<C> && !requires { &probed<C, append_parameters_probe>::append_parameters; };
template <class C>
concept names_append_buffers =
    probeable<C> && !requires { &probed<C, append_buffers_probe>::append_buffers; };
template <class C>
concept names_stream =
    probeable<C> && !requires { &probed<C, stream_probe>::stream; };
template <class C>
concept names_mode_independent =
    probeable<C> && !requires { &probed<C, mode_independent_probe>::mode_independent; };
template <class C>
concept names_optional_members =
    probeable<C> && !requires { &probed<C, optional_members_probe>::optional_members; };

/// The optional members L lists (none without a list).
template <class L>
consteval optional_member declared() {
    if constexpr (has_optional_members<L>) {
        return L::optional_members;
    } else {
        return optional_member::none;
    }
}

template <class L>
concept declares_output_shape = contains(declared<L>(), optional_member::output_shape);
template <class L>
concept declares_describe = contains(declared<L>(), optional_member::describe);
template <class L>
concept declares_append_parameters = contains(declared<L>(), optional_member::append_parameters);
template <class L>
concept declares_append_buffers = contains(declared<L>(), optional_member::append_buffers);
template <class L>
concept declares_cache_stream = contains(declared<L>(), optional_member::cache_stream);

}  // namespace detail::layer_contract

/// A type sequential can hold: every required member. The optional members are checked by
/// check_layer<L>() (layers/static_checks.hpp), which sequential::add calls.
template <class L>
concept layer =
    detail::layer_contract::has_value_type<L> && detail::layer_contract::has_input_rank<L> &&
    detail::layer_contract::has_output_rank<L> && detail::layer_contract::has_cache_type<L> &&
    detail::layer_contract::has_forward<L> && detail::layer_contract::has_backward_input<L> &&
    detail::layer_contract::has_accumulate_gradient<L> &&
    detail::layer_contract::has_zero_grad<L> && detail::layer_contract::has_parameters<L> &&
    detail::layer_contract::has_mode<L> && detail::layer_contract::has_set_mode<L>;

}  // namespace advaug
