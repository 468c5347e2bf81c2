// Options of the FGSM family. Each setter validates its value at once and throws
// std::invalid_argument naming the option and the value; nothing falls back to a default
// silently. Epsilon has no default: an attack whose epsilon was never set refuses to run.
//
// attack_mode: the mode (model/mode.hpp) the model is attacked in, eval unless set. Given a
// non-const model, an attack switches it to this mode for the call and restores it after;
// given a const model in another mode, it refuses (std::invalid_argument) rather than attack
// in the wrong mode.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "advaug/backend/host.hpp"  // advaug::norm
#include "advaug/detail/error.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/model/mode.hpp"

namespace advaug {

namespace detail {
inline double checked_epsilon(const char* fn, double eps) {
    if (!std::isfinite(eps) || eps < 0) {
        invalid(fn, "epsilon must be finite and >= 0, got ", eps);
    }
    return eps;
}
inline double require_epsilon(const char* fn, const std::optional<double>& eps) {
    if (!eps) invalid(fn, "epsilon was not set; call .epsilon(value) on the options");
    return *eps;
}
}  // namespace detail

namespace detail {

/// The options the iterative search attacks share (APGD, FAB): epsilon (required), norm,
/// iterations per run, restarts, seed and domain. `Name` is the attack's name in messages
/// ("apgd"); Derived adds its own.
template <class Derived, const char* Name>
class search_attack_options {
public:
    /// Radius in raw units (see input_domain). requires: finite, >= 0.
    Derived& epsilon(double eps) {
        eps_ = checked_epsilon(name("epsilon").c_str(), eps);
        return self();
    }
    Derived& norm(advaug::norm n) {
        norm_ = n;
        return self();
    }
    /// Iterations per run (the reference's n_iter, 100). requires: >= 1.
    Derived& n_iter(std::size_t k) {
        if (k == 0) invalid(name("n_iter").c_str(), "n_iter must be >= 1, got ", k);
        n_iter_ = k;
        return self();
    }
    /// Runs from different starts on the samples not broken yet. requires: >= 1.
    Derived& restarts(std::size_t r) {
        if (r == 0) invalid(name("restarts").c_str(), "restarts must be >= 1, got ", r);
        restarts_ = r;
        return self();
    }
    Derived& seed(std::uint64_t s) {
        seed_ = s;
        return self();
    }
    /// Valid range and normalization of the input; default [0, 1], no normalization.
    Derived& domain(input_domain d) {
        domain_ = std::move(d);
        return self();
    }

    double epsilon() const { return require_epsilon(Name, eps_); }
    advaug::norm norm() const { return norm_; }
    std::size_t n_iter() const { return n_iter_; }
    std::size_t restarts() const { return restarts_; }
    std::uint64_t seed() const { return seed_; }
    const input_domain& domain() const { return domain_; }

protected:
    static std::string name(const char* option) { return std::string(Name) + "_options::" + option; }
    Derived& self() { return static_cast<Derived&>(*this); }

private:
    std::optional<double> eps_;
    advaug::norm norm_ = advaug::norm::linf;
    std::size_t n_iter_ = 100;
    std::size_t restarts_ = 1;
    std::uint64_t seed_ = 0;
    input_domain domain_;
};

/// The options every single-step attack has: epsilon (required), targeted, domain.
/// `Name` is the attack's name in messages ("fgsm").
template <class Derived, const char* Name>
class single_step_options {
public:
    /// Radius in raw input units (see input_domain). requires: finite, >= 0.
    Derived& epsilon(double eps) {
        const std::string fn = std::string(Name) + "_options::epsilon";
        eps_ = checked_epsilon(fn.c_str(), eps);
        return self();
    }
    /// Targeted: the labels given to the attack are targets, and the step lowers their loss.
    Derived& targeted(bool t) {
        targeted_ = t;
        return self();
    }
    /// Valid range and normalization of the input; default [0, 1], no normalization.
    Derived& domain(input_domain d) {
        domain_ = std::move(d);
        return self();
    }
    /// The model's mode during the attack; default eval (batch norm on running statistics,
    /// no dropout).
    Derived& attack_mode(advaug::mode m) {
        mode_ = m;
        return self();
    }
    double epsilon() const { return require_epsilon(Name, eps_); }
    bool targeted() const { return targeted_; }
    const input_domain& domain() const { return domain_; }
    advaug::mode attack_mode() const { return mode_; }

private:
    Derived& self() { return static_cast<Derived&>(*this); }

    std::optional<double> eps_;
    bool targeted_ = false;
    input_domain domain_;
    advaug::mode mode_ = advaug::mode::eval;
};

inline constexpr char fgsm_name[] = "fgsm";
inline constexpr char fgm_name[] = "fgm";

}  // namespace detail

/// FGSM: x' = clip(x + epsilon * sign(grad_x L)) (L-infinity, one step).
class fgsm_options : public detail::single_step_options<fgsm_options, detail::fgsm_name> {};

/// FGM: x' = clip(x + epsilon * g / ||g||_2), g = grad_x L in raw units, per sample.
/// epsilon is the L2 radius in raw units.
class fgm_options : public detail::single_step_options<fgm_options, detail::fgm_name> {};

/// PGD (Madry et al. 2018) and BIM / I-FGSM (Kurakin et al. 2017, PGD without random start).
/// Defaults: L-infinity, 10 steps, step size 2.5 * epsilon / steps, random start, 1 restart,
/// seed 0, untargeted, attack in eval mode.
class pgd_options {
public:
    pgd_options& epsilon(double eps) {
        eps_ = detail::checked_epsilon("pgd_options::epsilon", eps);
        return *this;
    }
    pgd_options& norm(advaug::norm n) {
        norm_ = n;
        return *this;
    }
    /// Step size in raw units. requires: finite, > 0.
    pgd_options& step_size(double s) {
        if (!std::isfinite(s) || s <= 0) {
            detail::invalid("pgd_options::step_size", "step_size must be finite and > 0, got ", s);
        }
        step_ = s;
        return *this;
    }
    /// Number of gradient steps. requires: >= 1.
    pgd_options& steps(std::size_t k) {
        if (k == 0) detail::invalid("pgd_options::steps", "steps must be >= 1, got ", k);
        steps_ = k;
        return *this;
    }
    /// Runs of the attack from different random starts; the worst example per sample is kept.
    pgd_options& restarts(std::size_t r) {
        if (r == 0) detail::invalid("pgd_options::restarts", "restarts must be >= 1, got ", r);
        restarts_ = r;
        return *this;
    }
    pgd_options& random_start(bool b) {
        random_start_ = b;
        return *this;
    }
    pgd_options& seed(std::uint64_t s) {
        seed_ = s;
        return *this;
    }
    pgd_options& targeted(bool t) {
        targeted_ = t;
        return *this;
    }
    pgd_options& domain(input_domain d) {
        domain_ = std::move(d);
        return *this;
    }
    /// The model's mode during the attack; default eval.
    pgd_options& attack_mode(advaug::mode m) {
        mode_ = m;
        return *this;
    }

    double epsilon() const { return detail::require_epsilon("pgd", eps_); }
    advaug::norm norm() const { return norm_; }
    double step_size() const { return step_ ? *step_ : 2.5 * epsilon() / static_cast<double>(steps_); }
    std::size_t steps() const { return steps_; }
    std::size_t restarts() const { return restarts_; }
    bool random_start() const { return random_start_; }
    std::uint64_t seed() const { return seed_; }
    bool targeted() const { return targeted_; }
    const input_domain& domain() const { return domain_; }
    advaug::mode attack_mode() const { return mode_; }

private:
    std::optional<double> eps_;
    std::optional<double> step_;
    advaug::norm norm_ = advaug::norm::linf;
    std::size_t steps_ = 10;
    std::size_t restarts_ = 1;
    bool random_start_ = true;
    std::uint64_t seed_ = 0;
    bool targeted_ = false;
    input_domain domain_;
    advaug::mode mode_ = advaug::mode::eval;
};

}  // namespace advaug
