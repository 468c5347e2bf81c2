// Learning-rate and epsilon schedules as functions of fractional training progress.
//
// `epoch` is progress in epochs: epoch + batch / batches_per_epoch, so schedules change
// within an epoch (one-cycle runs over a handful of epochs in fast adversarial training).
// Schedules are small value types, built by validating factories and never mutated.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <string>

#include "advaug/detail/error.hpp"
#include "advaug/detail/format.hpp"

namespace advaug {

namespace detail {

inline void check_positive(const char* fn, const char* name, double v) {
    if (!std::isfinite(v)) invalid(fn, name, " must be finite, got ", format_shortest(v));
    if (v <= 0) invalid(fn, name, " must be > 0, got ", format_shortest(v));
}

inline void check_epoch(const char* fn, double epoch) {
    if (!std::isfinite(epoch) || epoch < 0) {
        invalid(fn, "epoch must be finite and >= 0, got ", format_shortest(epoch));
    }
}

}  // namespace detail

/// A learning rate as a function of progress. Values are >= 0 at every epoch >= 0.
class lr_schedule {
public:
    /// lr at every epoch. requires: lr finite, > 0.
    static lr_schedule constant(double lr) {
        detail::check_positive("lr_schedule::constant", "lr", lr);
        return {kind::constant, lr, 0, 0};
    }

    /// lr * gamma^floor(epoch / step_epochs) (torch.optim.lr_scheduler.StepLR).
    ///   requires: lr finite, > 0; step_epochs finite, > 0; 0 < gamma <= 1.
    static lr_schedule step(double lr, double step_epochs, double gamma) {
        constexpr const char* fn = "lr_schedule::step";
        detail::check_positive(fn, "lr", lr);
        detail::check_positive(fn, "step_epochs", step_epochs);
        if (!(gamma > 0 && gamma <= 1)) {
            detail::invalid(fn, "gamma must be in (0, 1], got ", detail::format_shortest(gamma));
        }
        return {kind::step, lr, step_epochs, gamma};
    }

    /// Cosine annealing from lr at epoch 0 to min_lr at total_epochs, min_lr afterwards:
    /// min_lr + (lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2.
    ///   requires: lr finite, > 0; total_epochs finite, > 0; 0 <= min_lr <= lr.
    static lr_schedule cosine(double lr, double total_epochs, double min_lr = 0) {
        constexpr const char* fn = "lr_schedule::cosine";
        detail::check_positive(fn, "lr", lr);
        detail::check_positive(fn, "total_epochs", total_epochs);
        if (!(min_lr >= 0 && min_lr <= lr)) {
            detail::invalid(fn, "min_lr must be in [0, lr] = [0, ", detail::format_shortest(lr),
                            "], got ", detail::format_shortest(min_lr));
        }
        return {kind::cosine, lr, total_epochs, min_lr};
    }

    /// The cyclic schedule of Wong, Rice and Kolter 2020 ("Fast is better than free"):
    /// linear from 0 at epoch 0 to max_lr at peak_fraction * total_epochs, linear back to 0
    /// at total_epochs, 0 afterwards; np.interp(epoch, [0, peak * E, E], [0, max_lr, 0]).
    /// Note at(0) is 0: Wong et al. evaluate it at the end of each batch.
    ///   requires: max_lr finite, > 0; total_epochs finite, > 0; 0 < peak_fraction < 1.
    static lr_schedule one_cycle(double max_lr, double total_epochs, double peak_fraction = 0.4) {
        constexpr const char* fn = "lr_schedule::one_cycle";
        detail::check_positive(fn, "max_lr", max_lr);
        detail::check_positive(fn, "total_epochs", total_epochs);
        if (!(peak_fraction > 0 && peak_fraction < 1)) {
            detail::invalid(fn, "peak_fraction must be in (0, 1), got ",
                            detail::format_shortest(peak_fraction));
        }
        return {kind::one_cycle, max_lr, total_epochs, peak_fraction};
    }

    /// The learning rate at fractional epoch `epoch`. requires: epoch finite, >= 0.
    double at(double epoch) const {
        detail::check_epoch("lr_schedule::at", epoch);
        switch (kind_) {
            case kind::constant:
                return lr_;
            case kind::step:
                return lr_ * std::pow(param_, std::floor(epoch / epochs_));
            case kind::cosine: {
                const double progress = std::min(epoch, epochs_) / epochs_;
                return param_ + 0.5 * (lr_ - param_) * (1 + std::cos(std::numbers::pi * progress));
            }
            case kind::one_cycle: {
                // lr_ * (a ratio <= 1), so rounding never takes the value above max_lr.
                const double peak = param_ * epochs_;
                if (epoch <= peak) return lr_ * (epoch / peak);
                if (epoch >= epochs_) return 0;
                return lr_ * ((epochs_ - epoch) / (epochs_ - peak));
            }
        }
        return lr_;  // unreachable
    }

    /// The factory call that builds this schedule, e.g. "cosine(lr=0.1, epochs=5, min_lr=0)".
    std::string describe() const {
        const auto f = detail::format_shortest;
        switch (kind_) {
            case kind::constant:
                return "constant(lr=" + f(lr_) + ")";
            case kind::step:
                return "step(lr=" + f(lr_) + ", step_epochs=" + f(epochs_) +
                       ", gamma=" + f(param_) + ")";
            case kind::cosine:
                return "cosine(lr=" + f(lr_) + ", epochs=" + f(epochs_) + ", min_lr=" + f(param_) +
                       ")";
            case kind::one_cycle:
                return "one_cycle(max_lr=" + f(lr_) + ", epochs=" + f(epochs_) +
                       ", peak_fraction=" + f(param_) + ")";
        }
        return {};  // unreachable
    }

    friend bool operator==(const lr_schedule&, const lr_schedule&) = default;

private:
    enum class kind { constant, step, cosine, one_cycle };
    lr_schedule(kind k, double lr, double epochs, double param)
        : kind_(k), lr_(lr), epochs_(epochs), param_(param) {}

    kind kind_;
    double lr_;      // lr, or max_lr for one_cycle
    double epochs_;  // step_epochs or total_epochs
    double param_;   // gamma, min_lr or peak_fraction
};

/// An attack radius as a function of progress, in the attack's units (raw input units).
/// Warming epsilon up from 0 helps against catastrophic overfitting in fast adversarial
/// training.
class epsilon_schedule {
public:
    /// eps at every epoch. requires: eps finite, >= 0.
    static epsilon_schedule constant(double eps) {
        check_eps("epsilon_schedule::constant", eps);
        return {false, eps, 0};
    }
    /// eps * min(1, epoch / warmup_epochs).
    ///   requires: eps finite, >= 0; warmup_epochs finite, > 0.
    static epsilon_schedule warmup(double eps, double warmup_epochs) {
        check_eps("epsilon_schedule::warmup", eps);
        detail::check_positive("epsilon_schedule::warmup", "warmup_epochs", warmup_epochs);
        return {true, eps, warmup_epochs};
    }

    /// The radius at fractional epoch `epoch`. requires: epoch finite, >= 0.
    double at(double epoch) const {
        detail::check_epoch("epsilon_schedule::at", epoch);
        if (!warmup_) return eps_;
        return epoch >= warmup_epochs_ ? eps_ : eps_ * (epoch / warmup_epochs_);
    }

    /// E.g. "warmup(eps=0.03, warmup_epochs=5)".
    std::string describe() const {
        const auto f = detail::format_shortest;
        if (!warmup_) return "constant(eps=" + f(eps_) + ")";
        return "warmup(eps=" + f(eps_) + ", warmup_epochs=" + f(warmup_epochs_) + ")";
    }

    friend bool operator==(const epsilon_schedule&, const epsilon_schedule&) = default;

private:
    epsilon_schedule(bool warmup, double eps, double warmup_epochs)
        : warmup_(warmup), eps_(eps), warmup_epochs_(warmup_epochs) {}
    static void check_eps(const char* fn, double eps) {
        if (!std::isfinite(eps) || eps < 0) {
            detail::invalid(fn, "eps must be finite and >= 0, got ", detail::format_shortest(eps));
        }
    }

    bool warmup_;
    double eps_;
    double warmup_epochs_;
};

/// A schedule by name, for command lines and configs: "constant", "step" (gamma 0.1 every
/// ceil(total_epochs / 3) epochs), "cosine" (to 0) or "one-cycle" (peak at 40%).
///   requires: a name above; lr finite, > 0; total_epochs finite, > 0.
inline lr_schedule parse_lr_schedule(std::string name, double lr, double total_epochs) {
    constexpr const char* fn = "parse_lr_schedule";
    const bool known =
        name == "constant" || name == "step" || name == "cosine" || name == "one-cycle";
    if (!known) {
        detail::invalid(fn, "unknown schedule '", name,
                        "'; expected one of: constant, step, cosine, one-cycle");
    }
    detail::check_positive(fn, "total_epochs", total_epochs);
    if (name == "constant") return lr_schedule::constant(lr);
    if (name == "step") return lr_schedule::step(lr, std::ceil(total_epochs / 3), 0.1);
    if (name == "cosine") return lr_schedule::cosine(lr, total_epochs);
    return lr_schedule::one_cycle(lr, total_epochs);
}

}  // namespace advaug
