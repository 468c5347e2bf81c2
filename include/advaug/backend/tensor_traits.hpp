// Which types are tensors to the attacks and the trainer, and which tensors a model works on.
//
// The attacks and the trainer are written once over a tensor type X (advaug::tensor on the
// host, cuda::device_tensor on a device). tensor_traits<X> says what goes with X; a backend
// specializes it beside its tensor type (backend/host.hpp for advaug::tensor, cuda/attack_ops.hpp
// for device tensors). model_input_t / model_logits_t are the tensors of a model: those it
// declares (input_type / logits_type, as the device models do), else the host tensors of
// model/classifier.hpp's contract, which states its members with these types.
//
// Depends only on detail/, so that model/ can include it.
#pragma once

#include <concepts>
#include <cstddef>

#include "advaug/detail/xtensor.hpp"

namespace advaug::detail {

/// Specialized for each tensor type an attack accepts. Members: value_type, rank, labels_type
/// (the labels of a batch), vector_type (one value per sample), domain_type (an input_domain
/// resolved for this tensor's shape) and rng_type (the random start's generator).
template <class X>
struct tensor_traits;

template <class X>
concept attack_tensor = requires {
    typename tensor_traits<X>::value_type;
    { tensor_traits<X>::rank } -> std::convertible_to<std::size_t>;
};

template <class X>
using labels_t = typename tensor_traits<X>::labels_type;

/// True for a model that declares its own tensor types (a device model).
template <class M>
concept declares_tensor_types = requires {
    typename M::input_type;
    typename M::logits_type;
};

/// A model's input and logits types: M::input_type / M::logits_type when the model declares
/// them, otherwise tensor<value_type, input_rank> and tensor<value_type, 2>.
template <class M>
struct model_tensors {
    using input = tensor<typename M::value_type, M::input_rank>;
    using logits = tensor<typename M::value_type, 2>;
};

template <declares_tensor_types M>
struct model_tensors<M> {
    using input = typename M::input_type;
    using logits = typename M::logits_type;
};

template <class M>
using model_input_t = typename model_tensors<M>::input;
template <class M>
using model_logits_t = typename model_tensors<M>::logits;

}  // namespace advaug::detail
