// Where this process's samples sit in the global batch of a data-parallel training step, for
// the duration of one batch's gradient (training/data_parallel.hpp sets it, on the trainer's
// thread). Whatever draws noise per sample counts samples from the shard's offset, so that R
// processes draw, sample for sample, the noise one process draws for the whole batch: the
// random start (backend/host.hpp), dropout masks (layers/dropout.hpp) and a family's starts
// (training/family_step.hpp). Synchronized batch norm (layers/batch_norm.hpp) sums its batch
// statistics over the processes through `sum`.
//
// Outside such a step there is no shard: offset 0, no sum, which is the single-process run bit
// for bit. The shard is thread-local: advaug's worker threads never see one, so code that draws
// inside a parallel loop reads the offset before the loop.
#pragma once

#include <cstddef>
#include <functional>
#include <span>

namespace advaug::detail {

struct batch_shard {
    std::size_t offset = 0;  // the position of this process's first sample in the global batch
    std::size_t local = 0;   // this process's samples
    std::size_t global = 0;  // the global batch's samples
    /// In place: v = the element-wise sum of every process's v, bit-identical on every process.
    /// Empty unless batch norm is synchronized.
    std::function<void(std::span<double>)> sum;
};

inline const batch_shard*& current_batch_shard_slot() {
    thread_local const batch_shard* shard = nullptr;
    return shard;
}

/// The shard of the step running on this thread, or null.
inline const batch_shard* current_batch_shard() { return current_batch_shard_slot(); }

/// The position in the global batch of this process's first sample (0 outside a shard).
inline std::size_t shard_offset() {
    const batch_shard* s = current_batch_shard();
    return s ? s->offset : 0;
}

/// Makes `shard` the current one for its lifetime, then restores the previous one.
/// requires: shard outlives the scope.
class batch_shard_scope {
public:
    explicit batch_shard_scope(const batch_shard* shard) : previous_(current_batch_shard_slot()) {
        current_batch_shard_slot() = shard;
    }
    batch_shard_scope(const batch_shard_scope&) = delete;
    batch_shard_scope& operator=(const batch_shard_scope&) = delete;
    ~batch_shard_scope() { current_batch_shard_slot() = previous_; }

private:
    const batch_shard* previous_;
};

}  // namespace advaug::detail
