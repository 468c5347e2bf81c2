// Readable compile-time errors for models that do not satisfy the contract.
//
// A failed C++20 concept prints the whole constraint tree. Entry points instead call
// check_classifier<M>() / check_trainable_classifier<M>() and dispatch to their
// implementation only when it returns true: a model that lacks a member then gets exactly
// one error, a static_assert naming that member (the mlpack/ensmallen habit).
#pragma once

#include "advaug/model/classifier.hpp"

namespace advaug {

namespace detail {
template <class>
inline constexpr bool always_false = false;
}  // namespace detail

/// True if M is a classifier; otherwise one static_assert names the first missing member.
template <class M>
consteval bool check_classifier() {
    namespace c = detail::contract;
    if constexpr (!c::has_value_type<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks member type `value_type` (float or double); "
                      "see docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_input_rank<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks member `static constexpr std::size_t input_rank` "
                      "(2 or 4); see docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_cache_type<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks a default-constructible member type `cache_type`; "
                      "see docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_num_classes<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks member `std::size_t num_classes() const`; "
                      "see docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_forward<M>) {
        static_assert(
            detail::always_false<M>,
            "advaug: the model lacks member `void forward(const advaug::tensor<value_type, "
            "input_rank>& x, cache_type&, advaug::tensor<value_type, 2>& logits) const` "
            "(or the model's input_type / logits_type); see docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_input_gradient<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks member `void input_gradient(cache_type&, const "
                      "advaug::tensor<value_type, 2>& dlogits, advaug::tensor<value_type, "
                      "input_rank>& dx) const` (or the model's input_type / logits_type); see "
                      "docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_mode<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks members `advaug::mode mode() const` and "
                      "`void set_mode(advaug::mode)`; see docs/model_contract.md");
        return false;
    } else {
        return true;
    }
}

/// True if M is a trainable classifier; otherwise one static_assert names the missing member.
template <class M>
consteval bool check_trainable_classifier() {
    namespace c = detail::contract;
    if constexpr (!check_classifier<M>()) {
        return false;
    } else if constexpr (!c::has_parameter_gradient<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks member `void parameter_gradient(cache_type&, const "
                      "advaug::tensor<value_type, 2>& dlogits)` (or the model's logits_type); see "
                      "docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_zero_grad<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks member `void zero_grad()`; "
                      "see docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_parameters<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: the model lacks member `std::vector<advaug::parameter_view<"
                      "value_type>> parameters()`; see docs/model_contract.md");
        return false;
    } else {
        return true;
    }
}

/// True if M is a trainable classifier with the optional feature members (feature_classifier);
/// otherwise one static_assert names the first missing member.
template <class M>
consteval bool check_feature_classifier() {
    namespace c = detail::contract;
    if constexpr (!check_trainable_classifier<M>()) {
        return false;
    } else if constexpr (!c::has_features<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: feature-space augmentation needs the optional member `const "
                      "advaug::tensor<value_type, 2>& features(cache_type&) const` (the penultimate "
                      "features); see docs/model_contract.md");
        return false;
    } else if constexpr (!c::has_input_gradient_with_features<M>) {
        static_assert(detail::always_false<M>,
                      "advaug: feature-space augmentation needs the optional member `void "
                      "input_gradient_with_features(cache_type&, const advaug::tensor<value_type, 2>& "
                      "dlogits, const advaug::tensor<value_type, 2>& dfeatures, "
                      "advaug::tensor<value_type, input_rank>& dx) const`; see docs/model_contract.md");
        return false;
    } else {
        return true;
    }
}

}  // namespace advaug
