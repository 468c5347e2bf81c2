// Data-parallel training over MPI: the trainer of training/trainer.hpp, unchanged, on every
// process of a communicator. Each process takes its shard of every global batch (the same
// shuffle everywhere, from the run's seed), attacks it, and the gradients are summed into the
// gradient of the global batch's mean loss before every optimizer step (one flat all-reduce).
//
//   advaug::distributed::environment env(argc, argv);
//   advaug::distributed::communicator comm;
//   advaug::trainer tr(model, optimizer, advaug::distributed::data_parallel(comm, options));
//   tr.fit(train);                       // the same call, the same data, on every rank
//
// docs/distributed.md explains what is exact, the batch-norm mode and how to run it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "advaug/distributed/communicator.hpp"
#include "advaug/training/data_parallel.hpp"
#include "advaug/training/train_options.hpp"

namespace advaug::distributed {

/// Where batch norm takes its train-mode statistics in a data-parallel run.
///   per_rank:     over each process's shard (B / R samples); no communication, and the running
///                 statistics differ between processes (a checkpoint keeps rank 0's).
///   synchronized: over the global batch, summed across processes inside every train-mode
///                 forward pass (sums and counts) and backward pass (the sums of dy and
///                 dy * x_hat): the single-process step on the B samples, up to summation order,
///                 and the same running statistics on every process. Two all-reduces of
///                 features + 1 doubles per forward pass, one of 2 x features per backward pass.
enum class batch_norm_statistics { per_rank, synchronized };

/// gradient_sharing over a communicator's processes (MPI_Allreduce, summed).
/// requires: the communicator outlives every trainer that uses this.
class mpi_sharing final : public gradient_sharing {
public:
    explicit mpi_sharing(const communicator& comm,
                         batch_norm_statistics bn = batch_norm_statistics::per_rank)
        : comm_(comm), bn_(bn) {}
    std::size_t rank() const override { return comm_.rank(); }
    std::size_t size() const override { return comm_.size(); }
    void sum(std::span<float> values) override { comm_.all_reduce_sum(values); }
    void sum(std::span<double> values) override { comm_.all_reduce_sum(values); }
    bool synchronized_batch_norm() const override {
        return bn_ == batch_norm_statistics::synchronized;
    }

private:
    const communicator& comm_;
    batch_norm_statistics bn_;
};

/// `options` for this process of a data-parallel run: they share gradients over `comm`, and
/// on every rank but 0 they print nothing, write no JSON log, call no on_batch / on_epoch and
/// write no checkpoint, so that the log, the progress, the report and the checkpoint file come
/// from rank 0 alone. Every rank resumes from the checkpoint by calling trainer::resume().
/// Batch norm takes its statistics as `bn` says (batch_norm_statistics; docs/distributed.md).
/// requires: comm outlives the trainer; batch_size() is the global batch, and every batch,
///           the last one included, has at least comm.size() samples.
inline train_options data_parallel(const communicator& comm, train_options options,
                                   batch_norm_statistics bn = batch_norm_statistics::per_rank) {
    options.sharing(std::make_shared<mpi_sharing>(comm, bn));
    if (!comm.is_root()) {
        options.progress(progress_style::none)
            .json_log("")
            .on_batch({})
            .on_epoch({})
            .no_checkpoint();
    }
    return options;
}

}  // namespace advaug::distributed
