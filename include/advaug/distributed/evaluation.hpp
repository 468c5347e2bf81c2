// Evaluation split across the processes of a communicator: each process classifies its
// contiguous block of the data set and the counts of correct samples are summed, so every
// process returns the accuracy of the whole set.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "advaug/data/dataset.hpp"
#include "advaug/distributed/communicator.hpp"
#include "advaug/evaluation/accuracy.hpp"

namespace advaug::distributed {

/// This process's block of `data`: samples [r * n / R, (r + 1) * n / R) for rank r of R, in a
/// new data set (a copy of the block's features).
/// throws: std::invalid_argument when `data` has fewer samples than comm has processes.
template <class S>
dataset<S> shard(const communicator& comm, const dataset<S>& data) {
    const std::size_t n = data.size(), r = comm.rank(), size = comm.size();
    if (n < size) {
        advaug::detail::invalid("distributed::shard", "a data set of ", n,
                                " samples cannot be split over ", size, " processes");
    }
    const std::size_t first = r * n / size, last = (r + 1) * n / size, d = data.sample_size();
    const auto features = data.features().subspan(first * d, (last - first) * d);
    auto labels = label_vector::from_shape({last - first});
    for (std::size_t i = first; i < last; ++i) labels(i - first) = data.labels()(i);
    return dataset<S>(std::vector<S>(features.begin(), features.end()), data.sample_shape(),
                      std::move(labels), data.num_classes(), data.scale(), data.offset());
}

namespace detail {

/// The fraction correct over all processes, from each process's fraction on its shard.
inline double reduce_accuracy(const communicator& comm, double shard_accuracy,
                              std::size_t shard_size, std::size_t total) {
    std::uint64_t correct[1] = {
        static_cast<std::uint64_t>(std::llround(shard_accuracy * static_cast<double>(shard_size)))};
    comm.all_reduce_sum(std::span<std::uint64_t>(correct));
    return static_cast<double>(correct[0]) / static_cast<double>(total);
}

}  // namespace detail

/// accuracy() of evaluation/accuracy.hpp over the whole of `data`, each process classifying
/// its shard. requires: as accuracy(); the same call on every process.
template <class M, class S>
double accuracy(const communicator& comm, M& model, const dataset<S>& data,
                std::size_t batch_size = 500) {
    const auto mine = shard(comm, data);
    return detail::reduce_accuracy(comm, advaug::accuracy(model, mine, batch_size), mine.size(),
                                   data.size());
}

/// robust_accuracy() of evaluation/accuracy.hpp, each process attacking its shard. An attack
/// with a random start draws it per shard, so the figure matches a single process's in
/// distribution, not sample for sample.
template <class M, class S, class Attack>
double robust_accuracy(const communicator& comm, M& model, const dataset<S>& data, Attack&& attack,
                       std::size_t batch_size = 500) {
    const auto mine = shard(comm, data);
    return detail::reduce_accuracy(
        comm, advaug::robust_accuracy(model, mine, std::forward<Attack>(attack), batch_size),
        mine.size(), data.size());
}

}  // namespace advaug::distributed
