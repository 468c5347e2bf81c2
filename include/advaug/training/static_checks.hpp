// Readable compile-time errors for a trainer whose model or optimizer misses a member, in the
// style of model/static_checks.hpp: trainer<M, Optimizer> selects a stub when
// trainer_arguments is false, and the stub's constructor calls check_trainer(), which names
// the first missing member in one static_assert. Nothing else is instantiated that could fail.
#pragma once

#include "advaug/model/classifier.hpp"
#include "advaug/model/static_checks.hpp"
#include "advaug/optim/optimizer.hpp"

namespace advaug::detail {

/// Whether M and Optimizer meet their contracts, without a diagnostic: selects the trainer
/// or its stub.
template <class M, class Optimizer>
concept trainer_arguments = trainable_classifier<M> && optimizer<Optimizer, typename M::value_type>;

/// trainer_arguments as one readable error: the first missing member, named.
template <class M, class Optimizer>
consteval bool check_trainer() {
    if constexpr (!check_trainable_classifier<M>()) {
        return false;
    } else {
        return check_optimizer<Optimizer, typename M::value_type>();
    }
}

}  // namespace advaug::detail
