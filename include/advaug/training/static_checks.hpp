// Readable compile-time errors for a trainer whose model or optimizer misses a member, in the
// style of model/static_checks.hpp: trainer<M, Optimizer> selects a stub when
// trainer_arguments is false, and the stub's constructor calls check_trainer(), which names
// the first missing member in one static_assert. Nothing else is instantiated that could fail.
#pragma once

#include "advaug/detail/tensor_ops.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/static_checks.hpp"
#include "advaug/optim/optimizer.hpp"

namespace advaug::detail {

/// Compile-time: M is a model a trainer can train. One error otherwise.
template <class M>
consteval bool check_trainable_model() {
    if constexpr (declares_tensor_types<M>) {
        static_assert(typed_trainable_classifier<M>,
                      "advaug: the model declares input_type/logits_type but lacks a member of "
                      "trainable_classifier for them; see docs/model_contract.md");
        return typed_trainable_classifier<M>;
    } else {
        return check_trainable_classifier<M>();
    }
}

/// Whether M and Optimizer meet their contracts, without a diagnostic: selects the trainer
/// or its stub.
template <class M, class Optimizer>
concept trainer_arguments =
    (typed_trainable_classifier<M> || (!declares_tensor_types<M> && trainable_classifier<M>)) &&
    optimizer<Optimizer, typename M::value_type>;

/// trainer_arguments as one readable error: the first missing member, named.
template <class M, class Optimizer>
consteval bool check_trainer() {
    if constexpr (!check_trainable_model<M>()) {
        return false;
    } else {
        return check_optimizer<Optimizer, typename M::value_type>();
    }
}

}  // namespace advaug::detail
