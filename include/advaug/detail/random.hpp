// Seeded random numbers whose sequence is the same on every platform and standard library.
//
// std::uniform_real_distribution and std::normal_distribution are implementation-defined,
// so advaug draws its own from std::mt19937_64 (whose output is fixed by the standard).
//
// advaug::rng is public (layers take one to initialize their weights; advaug.hpp includes
// it); it lives here, with the seed mixing that only the library uses, because everything
// down to detail/ draws from it.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>

#include "advaug/detail/host_device.hpp"  // the device L-inf random start calls counter_uniform

namespace advaug {

/// A seeded generator: the same seed gives the same numbers on every platform.
class rng {
public:
    explicit rng(std::uint64_t seed) : engine_(seed) {}

    /// Uniform in [0, 1), 53 random bits.
    double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

    /// Standard normal, Box-Muller (both values of each pair are used).
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = uniform();
        while (u1 <= 0.0) u1 = uniform();
        const double u2 = uniform();
        const double r = std::sqrt(-2.0 * std::log(u1));
        spare_ = r * std::sin(2.0 * std::numbers::pi * u2);
        has_spare_ = true;
        return r * std::cos(2.0 * std::numbers::pi * u2);
    }

    std::mt19937_64& engine() { return engine_; }

private:
    std::mt19937_64 engine_;
    double spare_ = 0.0;
    bool has_spare_ = false;
};

namespace detail {

/// SplitMix64's output function (Steele, Lea and Flood 2014).
ADVAUG_HOST_DEVICE constexpr std::uint64_t splitmix64_finalize(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

inline constexpr std::uint64_t splitmix64_gamma = 0x9e3779b97f4a7c15ULL;

/// splitmix64 of a few words: independent, platform-stable seeds for (seed, epoch, batch),
/// (seed, stream, batch) and the like; the trainer, evaluation and tabular shifts all use it.
inline std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) {
    auto mix = [](std::uint64_t z) { return splitmix64_finalize(z + splitmix64_gamma); };
    return mix(mix(mix(a) ^ b) ^ c);
}

/// Uniform in [lo, hi) for element i of the stream `key`: output i of the SplitMix64 generator
/// started at `key`, 53 bits. Counter-based: every element is drawn on its own, so a tensor can
/// be filled in parallel, in any order, with the same values for any number of threads.
ADVAUG_HOST_DEVICE inline double counter_uniform(std::uint64_t key, std::uint64_t i, double lo,
                                                 double hi) {
    const std::uint64_t bits = splitmix64_finalize(key + (i + 1) * splitmix64_gamma);
    return lo + (hi - lo) * (static_cast<double>(bits >> 11) * 0x1.0p-53);
}

}  // namespace detail
}  // namespace advaug
