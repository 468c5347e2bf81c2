// Dropout (Srivastava et al. 2014) in its inverted form, as torch.nn.Dropout, on any rank.
//
//   train mode: each value is kept with probability 1 - p and scaled by 1 / (1 - p), else set
//               to 0, so the expected output is the input.
//   eval mode:  the identity.
//
// Where the masks come from. forward() is const, so the layer holds no generator that advances.
// The mask of a train-mode forward pass is drawn (advaug::rng) from a seed made of the
// layer's seed, the cache's `stream` and the cache's `calls`, the number of train-mode forward
// passes made with that cache so far; forward() then increments `calls`. Hence:
//   - the same seed and the same sequence of calls give the same masks, on every platform;
//   - successive forward passes on one cache get different masks;
//   - two fresh caches used in turn get the SAME masks, since both start at calls = 0. Give
//     caches that must differ (a trainer's clean and adversarial passes) different `stream`
//     values;
//   - a cache created anew for every batch repeats its first mask on every batch: keep caches
//     alive across steps, as advaug's trainer does;
//   - in a data-parallel step (detail/batch_shard.hpp) a process's mask is its rows of the mask
//     one process draws for the whole global batch;
//   - finite-difference checks work in train mode: every probe forward pass of the checker uses
//     a fresh cache, so it sees the mask of the analytic pass, and dropout with a fixed mask is
//     linear.
// backward_input() multiplies by the mask stored in the cache, so it matches its forward pass
// whatever the layer's mode is by then.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "advaug/detail/batch_shard.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/layer.hpp"
#include "advaug/layers/parameterless.hpp"

namespace advaug {

namespace detail {
/// splitmix64's finalizer: nearby inputs give unrelated outputs.
inline std::uint64_t dropout_mix(std::uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/// The seed of one forward pass's mask.
inline std::uint64_t dropout_mask_seed(std::uint64_t seed, std::uint64_t stream,
                                       std::uint64_t calls) {
    return dropout_mix(dropout_mix(dropout_mix(seed) ^ stream) ^ calls);
}
}  // namespace detail

template <class T, std::size_t Rank = 2>
class dropout : public parameterless_layer<T> {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = Rank;
    static constexpr std::size_t output_rank = Rank;
    using shape_type = typename tensor<T, Rank>::shape_type;
    static constexpr optional_member optional_members =
        optional_member::describe | optional_member::cache_stream;

    struct cache_type {
        std::uint64_t calls = 0;   // train-mode forward passes made with this cache
        std::uint64_t stream = 0;  // set by the owner to tell caches apart (see the header)
        tensor<T, Rank> mask;      // 0 or 1 / (1 - p) per value, of the last train-mode pass
        shape_type shape{};        // the shape of the last forward pass
        bool masked = false;       // the last forward pass applied `mask`
        bool filled = false;
    };

    /// requires: p in [0, 1).
    dropout(double p, std::uint64_t seed) : p_(p), seed_(seed) {
        if (!(p >= 0 && p < 1)) detail::invalid("dropout", "p must be in [0, 1), got ", p);
    }

    double p() const { return p_; }
    std::uint64_t seed() const { return seed_; }
    /// "dropout(p = 0.5)".
    std::string describe() const {
        std::ostringstream out;  // default precision: 0.3, not 0.29999999999999999
        out << "dropout(p = " << p_ << ")";
        return out.str();
    }

    /// ensures: y has the shape of x; in train mode cache.calls is incremented and cache.mask
    ///          holds the mask applied. Nothing in the layer changes.
    void forward(const tensor<T, Rank>& x, cache_type& cache, tensor<T, Rank>& y) const {
        if (y.shape() != x.shape()) y.resize(x.shape());
        cache.shape = x.shape();
        cache.filled = true;
        const bool train = this->mode() == advaug::mode::train;
        cache.masked = train && p_ > 0;
        if (train) ++cache.calls;
        if (!cache.masked) {
            if (&y != &x) std::copy(x.begin(), x.end(), y.begin());
            return;
        }
        if (cache.mask.shape() != x.shape()) cache.mask.resize(x.shape());
        rng gen(detail::dropout_mask_seed(seed_, cache.stream, cache.calls - 1));
        // In a data-parallel step the mask is the global batch's, from this shard's first sample.
        if (const std::size_t offset = detail::shard_offset(); offset > 0) {
            gen.engine().discard(static_cast<unsigned long long>(offset) *
                                 (x.size() / x.shape()[0]));
        }
        const T scale = static_cast<T>(1.0 / (1.0 - p_));
        T* m = cache.mask.data();
        const T* xp = x.data();
        T* yp = y.data();
        for (std::size_t i = 0; i < x.size(); ++i) {
            m[i] = gen.uniform() >= p_ ? scale : T(0);
            yp[i] = xp[i] * m[i];
        }
    }

    /// dx = dy times the mask of the cache's forward pass (dx = dy after an eval-mode pass).
    void backward_input(const cache_type& cache, const tensor<T, Rank>& dy,
                        tensor<T, Rank>& dx) const {
        if (!cache.filled) {
            detail::invalid("dropout::backward_input", "the cache was not filled by forward()");
        }
        if (dy.shape() != cache.shape) {
            detail::invalid("dropout::backward_input", "the output gradient has shape ",
                            detail::shape_string(dy.shape()), ", the layer's output is ",
                            detail::shape_string(cache.shape));
        }
        if (dx.shape() != dy.shape()) dx.resize(dy.shape());
        if (!cache.masked) {
            if (&dx != &dy) std::copy(dy.begin(), dy.end(), dx.begin());
            return;
        }
        const T* m = cache.mask.data();
        const T* g = dy.data();
        T* d = dx.data();
        for (std::size_t i = 0; i < dy.size(); ++i) d[i] = g[i] * m[i];
    }

private:
    double p_;
    std::uint64_t seed_;
};

}  // namespace advaug
