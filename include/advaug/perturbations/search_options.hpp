// Options of the worst-case search in a family's parameters (perturbations/search.hpp). Each
// setter validates its value at once and throws std::invalid_argument naming the option and
// the value; nothing falls back to a default silently.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "advaug/detail/error.hpp"

namespace advaug {

/// How the worst case in theta is sought.
///   gradient   projected sign-gradient ascent from `restarts` starts (random or the identity)
///              for a continuous family; greedy by the gradient for a discrete one.
///   random     worst of `samples` random draws from the budget (gradient-free; Engstrom et al.
///              2019 found it stronger than first-order search for rotations and translations).
///   both       the worst of `samples` draws per sample, then refined by `steps` gradient steps.
///   exhaustive every mask of a discrete family (at most `max_candidates` of them).
enum class search_method { gradient, random, both, exhaustive };

/// "gradient", "random", "both" or "exhaustive".
constexpr const char* to_string(search_method m) {
    switch (m) {
        case search_method::gradient: return "gradient";
        case search_method::random: return "random";
        case search_method::both: return "both";
        case search_method::exhaustive: return "exhaustive";
    }
    return "?";
}

/// Defaults: gradient, 10 steps, 1 restart, 10 samples, step fraction 0.25, random start,
/// seed 0, at most 4096 candidates for exhaustive search.
class worst_case_options {
public:
    worst_case_options& method(search_method m) {
        method_ = m;
        return *this;
    }
    /// Gradient steps per start. requires: >= 1.
    worst_case_options& steps(std::size_t k) {
        if (k == 0) detail::invalid("worst_case_options::steps", "steps must be >= 1, got ", k);
        steps_ = k;
        return *this;
    }
    /// Starts of the gradient search; the worst result per sample is kept. requires: >= 1.
    worst_case_options& restarts(std::size_t r) {
        if (r == 0)
            detail::invalid("worst_case_options::restarts", "restarts must be >= 1, got ", r);
        restarts_ = r;
        return *this;
    }
    /// Random draws of `random` and `both`. requires: >= 1.
    worst_case_options& samples(std::size_t k) {
        if (k == 0) detail::invalid("worst_case_options::samples", "samples must be >= 1, got ", k);
        samples_ = k;
        return *this;
    }
    /// A gradient step moves parameter j by step_fraction * param_scale()[j] (a sign step, as
    /// L-inf PGD's). requires: finite, > 0.
    worst_case_options& step_fraction(double a) {
        if (!std::isfinite(a) || a <= 0) {
            detail::invalid("worst_case_options::step_fraction",
                            "step_fraction must be finite and > 0, got ", a);
        }
        step_fraction_ = a;
        return *this;
    }
    /// Gradient starts drawn from the budget (true) or at the identity (false).
    worst_case_options& random_start(bool b) {
        random_start_ = b;
        return *this;
    }
    worst_case_options& seed(std::uint64_t s) {
        seed_ = s;
        return *this;
    }
    /// The most masks exhaustive search will try. requires: >= 1.
    worst_case_options& max_candidates(std::size_t m) {
        if (m == 0) {
            detail::invalid("worst_case_options::max_candidates",
                            "max_candidates must be >= 1, got ", m);
        }
        max_candidates_ = m;
        return *this;
    }

    search_method method() const { return method_; }
    std::size_t steps() const { return steps_; }
    std::size_t restarts() const { return restarts_; }
    std::size_t samples() const { return samples_; }
    double step_fraction() const { return step_fraction_; }
    bool random_start() const { return random_start_; }
    std::uint64_t seed() const { return seed_; }
    std::size_t max_candidates() const { return max_candidates_; }

private:
    search_method method_ = search_method::gradient;
    std::size_t steps_ = 10;
    std::size_t restarts_ = 1;
    std::size_t samples_ = 10;
    double step_fraction_ = 0.25;
    bool random_start_ = true;
    std::uint64_t seed_ = 0;
    std::size_t max_candidates_ = 4096;
};

}  // namespace advaug
