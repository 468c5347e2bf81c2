// The trainer's one customization point for data parallelism: several processes train one
// model, each on its shard of every global batch, and sum their gradients before the optimizer
// step. The trainer knows nothing of how the sum travels; distributed/ implements it over MPI
// (docs/distributed.md). Without a gradient_sharing (the default) nothing here runs.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "advaug/detail/batch_shard.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/backend/host.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/training/reports.hpp"

namespace advaug {

/// What a trainer needs from the processes it trains with.
/// requires: every process calls sum() with buffers of the same length in the same order
///           (the trainer does: the same options, data and batch schedule on every rank);
///           rank() < size(), the same size() everywhere.
/// ensures:  after sum(v), v holds the element-wise sum of every process's v, bit-identical
///           on every process; a failure throws (never returns a partial sum).
class gradient_sharing {
public:
    virtual ~gradient_sharing() = default;
    virtual std::size_t rank() const = 0;
    virtual std::size_t size() const = 0;
    virtual void sum(std::span<float> values) = 0;
    virtual void sum(std::span<double> values) = 0;
    /// Whether batch norm takes its statistics over the global batch (sum() inside every
    /// train-mode forward and backward pass) rather than over this process's shard.
    virtual bool synchronized_batch_norm() const { return false; }
};

namespace detail {

/// This process's part of a global batch: a contiguous block, rank r of R taking
/// [r * n / R, (r + 1) * n / R), so the split depends only on n and R.
/// throws: std::invalid_argument when the batch has fewer samples than there are processes.
inline std::span<const std::size_t> shard_of(const char* fn,
                                             const std::shared_ptr<gradient_sharing>& s,
                                             std::span<const std::size_t> batch) {
    if (!s || s->size() == 1) return batch;
    const std::size_t n = batch.size(), r = s->rank(), size = s->size();
    if (n < size) {
        invalid(fn, "a batch of ", n, " samples cannot be split over ", size,
                " processes; choose a batch size and data set size whose last batch has at least ",
                size);
    }
    return batch.subspan(r * n / size, (r + 1) * n / size - r * n / size);
}

/// This process's place in one global batch (detail/batch_shard.hpp) while it computes the
/// batch's gradient: random draws count samples from its offset in the global batch, and batch
/// norm sums its statistics over the processes where the sharing asks for it. Nothing without a
/// sharing over more than one process.
class shard_scope {
public:
    shard_scope(const std::shared_ptr<gradient_sharing>& s, std::size_t offset, std::size_t local,
                std::size_t global)
        : shard_{offset, local, global, {}}, scope_(s && s->size() > 1 ? &shard_ : nullptr) {
        if (s && s->size() > 1 && s->synchronized_batch_norm()) {
            gradient_sharing* p = s.get();
            shard_.sum = [p](std::span<double> v) { p->sum(v); };
        }
    }

private:
    batch_shard shard_;
    batch_shard_scope scope_;
};

/// Turns this process's gradient of the mean loss over its `local` samples into the gradient
/// of the mean over all `global` samples of the batch, on every process: each scales by
/// local / global, then all sum. The losses are combined the same way (for the log and the
/// finiteness check, which then agree on every process).
template <class M, class T>
batch_losses share_gradient(const char* fn, const std::shared_ptr<gradient_sharing>& s, const M&,
                            std::vector<parameter_view<T>>& params, batch_losses losses,
                            std::size_t local, std::size_t global) {
    if (!s || s->size() == 1) return losses;
    if constexpr (!std::same_as<model_input_t<M>, tensor<T, M::input_rank>>) {
        invalid(fn,
                "data-parallel training needs a host model; a device model's gradients live on the "
                "device");
    } else {
        thread_local std::vector<T> flat;
        std::size_t total = 0;
        for (const auto& p : params) total += p.grad.size();
        flat.resize(total);
        const T w = static_cast<T>(static_cast<double>(local) / static_cast<double>(global));
        std::size_t at = 0;
        for (const auto& p : params) {
            for (const T g : p.grad) flat[at++] = g * w;
        }
        s->sum(std::span<T>(flat));
        at = 0;
        for (auto& p : params) {
            for (T& g : p.grad) g = flat[at++];
        }
        const double lw = static_cast<double>(local) / static_cast<double>(global);
        double l[3] = {losses.loss * lw, losses.clean * lw, losses.adversarial * lw};
        s->sum(std::span<double>(l));
        losses = {l[0], l[1], l[2]};
    }
    return losses;
}

}  // namespace detail

}  // namespace advaug
