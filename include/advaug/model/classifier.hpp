// The model contract: what an attack or a trainer needs from a user's model.
//
// This header is the single source of truth for the contract; docs/model_contract.md
// explains it with an example. A model is any type with these members; nothing is
// registered and nothing is inherited.
//
// classifier<M> -- what attacks need
//   typename M::value_type       float or double.
//   M::input_rank                2 for [batch, features], 4 for [batch, channels, height, width].
//   typename M::cache_type       default-constructible scratch space that forward() fills and
//                                the backward members read. One cache per concurrent caller.
//   num_classes() const          number of logits per sample.
//   forward(x, cache, logits) const
//     requires: x has shape [N, ...] with N > 0 and the feature shape the model expects.
//     ensures:  logits is resized to [N, num_classes()] and holds the logits; cache holds what
//               the backward members need. The cache may refer to x: x must stay alive and
//               unchanged until the last backward call on this cache.
//               In eval mode the result depends on x and the weights only.
//   input_gradient(cache, dlogits, dx) const
//     requires: cache was filled by forward(x, cache, ...) on this model; dlogits has the
//               shape of the logits and holds dL/dlogits for any loss L.
//     ensures:  dx has the shape of x and holds dL/dx = J(x)^T dlogits.
//               Parameter gradients, weights, running statistics and every other piece of
//               training state are unchanged: this is what lets an attack run between two
//               optimizer steps without leaking into the next step (the seed's attack called
//               loss.backward(), which added the attack's gradient to the weights' gradients).
//     input_gradient and parameter_gradient leave the record of the forward pass intact, so
//     both may be called, in any order and more than once, on one cache.
//   mode() const, set_mode(advaug::mode)
//     the explicit train/eval switch; attacks are normally run in eval mode.
//   static constexpr bool mode_independent (optional)
//     true promises that forward() is the same in both modes (no batch norm, no dropout); the
//     trainer then lets the seed's FGSM reuse its forward pass at x for the clean loss.
//   rows_per_pass() const -> std::size_t (optional)
//     the most samples the model runs well in one forward pass, 0 for no limit. Declaring it
//     promises that in eval mode (in both, when mode independent) each sample's logits and
//     input gradient are a function of its own row alone. The attacks then run a larger batch
//     in passes of at most that many rows, so that each pass's layer outputs stay in the CPU's
//     caches; results are those of one pass up to rounding. The passes call forward() and
//     input_gradient() from several threads at once, each with its own cache. sequential
//     derives it from the size of its layers' outputs; the trainer never splits a batch.
//   infer(x, cache, logits) const (optional)
//     forward() for a pass that no backward pass follows: the same logits (bit for bit where
//     the activations are finite), without the records a backward pass needs, so faster; the
//     cache is then no record for input_gradient(). The attacks' logits-only passes (Square's
//     queries, the checks of which samples are still correct) use it where declared.
//
// trainable_classifier<M> -- what a trainer needs in addition
//   parameter_gradient(cache, dlogits)
//     requires: as for input_gradient.
//     ensures:  every parameter's gradient is incremented by dL/dparameter for the given
//               dL/dlogits. Because the vector-Jacobian product is linear in dlogits, a trainer
//               weights a clean and an adversarial batch exactly by scaling their dlogits:
//               (1 - alpha) * grad CE(x) + alpha * grad CE(x_adv) is two calls.
//               Mode-dependent statistics (batch norm's running mean) are updated here, in train
//               mode, and never by forward() or input_gradient().
//   zero_grad()         sets every parameter gradient to zero.
//   parameters()        std::vector<parameter_view<value_type>>: each parameter with its gradient.
//                       The views alias the model's storage, which must never be reallocated
//                       after construction (see model/parameter.hpp).
// feature_classifier<M> -- what feature-space augmentation (training/feature_ada.hpp) needs in
// addition to classifier (optional members; sequential and the bundled models have them)
//   features(cache) const -> const advaug::tensor<value_type, 2>&
//     requires: as for input_gradient.
//     ensures:  the penultimate features of that forward pass, [N, F]: the input of the layer
//               that makes the logits (what Volpi et al. 2018 call the semantic space).
//   input_gradient_with_features(cache, dlogits, dfeatures, dx) const
//     requires: as for input_gradient; dfeatures has the shape of features(cache).
//     ensures:  dx holds d/dx (<dlogits, logits> + <dfeatures, features>): the input gradient of
//               a loss of both; state is unchanged, as for input_gradient.
// The backward members may take the cache as `const cache_type&` when they need no scratch.
//
// The tensors above are advaug::tensor<value_type, input_rank> (x, dx) and
// advaug::tensor<value_type, 2> (logits, dlogits). A model whose tensors live elsewhere (the
// device models of advaug/cuda/) declares them as member types `input_type` and `logits_type`;
// the same members are then required for those types (input_t<M>, logits_t<M> below).
#pragma once

#include <concepts>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "advaug/backend/tensor_traits.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug {

/// The type of a model's input: advaug::tensor<value_type, input_rank>, or the model's own
/// `input_type` when it declares one (a device model; see backend/tensor_traits.hpp).
template <class M>
using input_t = detail::model_input_t<M>;

/// The type of a model's logits, [batch, classes]: advaug::tensor<value_type, 2>, or the
/// model's own `logits_type`.
template <class M>
using logits_t = detail::model_logits_t<M>;

namespace detail::contract {

// Each member is its own concept so that a missing member can be named on its own.
template <class M>
concept has_value_type =
    requires { typename M::value_type; } && std::floating_point<typename M::value_type>;

template <class M>
concept has_input_rank = requires {
    { M::input_rank } -> std::convertible_to<std::size_t>;
} && (M::input_rank == 2 || M::input_rank == 4);

template <class M>
concept has_cache_type =
    requires { typename M::cache_type; } && std::default_initializable<typename M::cache_type>;

template <class M>
concept has_num_classes = requires(const M& m) {
    { m.num_classes() } -> std::convertible_to<std::size_t>;
};

template <class M>
concept has_forward =
    requires(const M& m, const input_t<M>& x, typename M::cache_type& c, logits_t<M>& logits) {
        m.forward(x, c, logits);
    };

template <class M>
concept has_input_gradient = requires(const M& m, typename M::cache_type& c,
                                      const logits_t<M>& dlogits, input_t<M>& dx) {
    m.input_gradient(c, dlogits, dx);
};

template <class M>
concept has_mode = requires(const M& cm, M& m) {
    { cm.mode() } -> std::same_as<advaug::mode>;
    m.set_mode(advaug::mode::eval);
};

template <class M>
concept has_parameter_gradient =
    requires(M& m, typename M::cache_type& c, const logits_t<M>& dlogits) {
        m.parameter_gradient(c, dlogits);
    };

template <class M>
concept has_zero_grad = requires(M& m) { m.zero_grad(); };

template <class M>
concept has_features = requires(const M& m, typename M::cache_type& c) {
    { m.features(c) } -> std::convertible_to<const tensor<typename M::value_type, 2>&>;
};

template <class M>
concept has_input_gradient_with_features =
    requires(const M& m, typename M::cache_type& c, const tensor<typename M::value_type, 2>& g,
             tensor<typename M::value_type, M::input_rank>& dx) { m.input_gradient_with_features(c, g, g, dx); };

template <class M>
concept has_rows_per_pass = requires(const M& m) {
    { m.rows_per_pass() } -> std::convertible_to<std::size_t>;
};

template <class M>
concept has_infer = requires(const M& m, const model_input_t<M>& x, typename M::cache_type& c,
                             model_logits_t<M>& logits) {
    m.infer(x, c, logits);
};

template <class M>
concept has_parameters = requires(M& m) {
    { m.parameters() } -> std::same_as<std::vector<parameter_view<typename M::value_type>>>;
};

}  // namespace detail::contract

/// A model that attacks can use: logits and input gradients, in an explicit mode.
template <class M>
concept classifier =
    detail::contract::has_value_type<M> && detail::contract::has_input_rank<M> &&
    detail::contract::has_cache_type<M> && detail::contract::has_num_classes<M> &&
    detail::contract::has_forward<M> && detail::contract::has_input_gradient<M> &&
    detail::contract::has_mode<M>;

/// A classifier that a trainer can train: parameter gradients and parameter views.
template <class M>
concept trainable_classifier =
    classifier<M> && detail::contract::has_parameter_gradient<M> &&
    detail::contract::has_zero_grad<M> && detail::contract::has_parameters<M>;

/// A classifier that exposes its penultimate features and the input gradient of a loss on them.
template <class M>
concept feature_classifier = classifier<M> && detail::contract::has_features<M> &&
                             detail::contract::has_input_gradient_with_features<M>;

namespace detail {

/// Whether forward() does the same in train and eval mode (no batch norm, no dropout): the
/// trainer's attack pass at x then also serves the clean loss, and an attack may run a const
/// model in either mode. A model says so at compile time
/// with `static constexpr bool mode_independent = true` (mlp), or at run time with
/// `bool is_mode_independent() const` (sequential, e.g. the bundled cnn without batch norm).
template <class M>
bool mode_independent(const M& model) {
    if constexpr (requires { M::mode_independent; }) {
        if (static_cast<bool>(M::mode_independent)) return true;
    }
    if constexpr (requires { { model.is_mode_independent() } -> std::convertible_to<bool>; }) {
        return static_cast<bool>(model.is_mode_independent());
    } else {
        return false;
    }
}

}  // namespace detail

}  // namespace advaug
