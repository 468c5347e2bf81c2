// Plain result records of a robustness evaluation: what evaluation/robustness.hpp computes
// and report/ writes, and one summary computed from a record alone. Nothing else, so
// producers and writers depend on this alone.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace advaug {

/// Accuracy under one attack at a list of epsilons (the accuracy-versus-eps curve).
struct eps_curve {
    std::string attack;           // "fgsm", "pgd-20" or "autoattack", as printed
    std::vector<double> epsilon;  // raw units, ascending
    std::vector<double> accuracy; // fraction in [0, 1], one per epsilon
    /// Per epsilon, the robust accuracy within each class (NaN for a class without samples);
    /// empty when not measured.
    std::vector<std::vector<double>> per_class_accuracy;
    /// An ensemble (AutoAttack): its members in the order they ran, and per epsilon the share
    /// of the attacked samples each member broke (the attack that broke each sample); empty
    /// otherwise.
    std::vector<std::string> members;
    std::vector<std::vector<double>> broken_by;
    /// The samples the attack ran on, the first ones of the set (attack_spec::samples); 0 (as in
    /// a record filled by hand) means all of model_evaluation::samples. Every share of this
    /// curve (accuracy, per class, broken_by) is of these samples.
    std::size_t samples = 0;
};

/// Accuracy under one corruption at each severity 1..5.
struct corruption_result {
    std::string name;                // "shot_noise", ...
    std::vector<double> accuracy;    // one per severity, severity 1 first
    double mean_accuracy = 0;        // mean over severities
};

/// Accuracy under the worst perturbation of one family (perturbations/) within each budget:
/// "accuracy under the worst rotation within 15 degrees" (evaluation/worst_case.hpp).
struct family_curve {
    std::string family;           // "rotation", "brightness", ...
    std::string parameter;        // the budget's unit, e.g. "degrees", "pixels", "raw units"
    std::string search;           // how the worst case was sought, e.g. "worst of 10 draws + 5 steps"
    std::vector<double> budget;   // ascending, >= 0; 0 is the clean accuracy
    std::vector<double> accuracy; // fraction in [0, 1], one per budget
};

/// Everything measured for one model.
struct model_evaluation {
    std::string model;                                   // label, e.g. "plain", "fgsm-rs"
    std::size_t samples = 0;                             // test samples evaluated
    double clean_accuracy = 0;
    std::vector<double> per_class_accuracy;              // one per class
    std::vector<std::vector<std::uint64_t>> confusion;   // [true class][predicted class]
    std::vector<eps_curve> curves;
    std::vector<family_curve> families;                  // worst case per perturbation family
    std::vector<corruption_result> corruptions;
    double mean_corruption_accuracy = 0;                 // mean over corruptions and severities
    /// Relative mean corruption error against a baseline model (Hendrycks and Dietterich
    /// 2019): mean over corruptions c of sum_s (E(c,s) - E_clean) / sum_s (E_base(c,s) -
    /// E_base_clean), E = 1 - accuracy; NaN until set_relative_mce() is called.
    double relative_mce = 0;
    /// Absolute mean corruption error against a baseline: mean over corruptions c of
    /// sum_s E(c,s) / sum_s E_base(c,s); NaN until set_absolute_mce() is called.
    double absolute_mce = std::numeric_limits<double>::quiet_NaN();
    /// The corruptions the model's training perturbations cover (evaluation/coverage.hpp,
    /// docs/shift_robustness.md), by name; empty when none are declared.
    std::vector<std::string> covered_corruptions;
};

/// The samples `curve` of `model` ran on: its own count, else all of the model's.
inline std::size_t attacked_samples(const model_evaluation& model, const eps_curve& curve) {
    return curve.samples == 0 ? model.samples : curve.samples;
}

/// The mean accuracy over all severities of the corruptions whose name is (covered = true) or
/// is not (false) in model.covered_corruptions; NaN when there are none.
inline double mean_corruption_accuracy(const model_evaluation& model, bool covered) {
    double sum = 0;
    std::size_t count = 0;
    for (const corruption_result& c : model.corruptions) {
        const bool in = std::find(model.covered_corruptions.begin(), model.covered_corruptions.end(), c.name) !=
                        model.covered_corruptions.end();
        if (in != covered) continue;
        for (double a : c.accuracy) {
            sum += a;
            ++count;
        }
    }
    return count == 0 ? std::numeric_limits<double>::quiet_NaN() : sum / static_cast<double>(count);
}

}  // namespace advaug
