// Plain result records of a robustness evaluation: what evaluation/robustness.hpp computes
// and report/ writes. No behaviour here, so producers and writers depend on this alone.
#pragma once

#include <cstddef>
#include <cstdint>
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
    /// of all samples each member broke (the attack that broke each sample); empty otherwise.
    std::vector<std::string> members;
    std::vector<std::vector<double>> broken_by;
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
};

}  // namespace advaug
