// Options of the robustness report (report/report.hpp) and the checks every report writer
// makes on the model_evaluation records before writing anything.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/format.hpp"
#include "advaug/evaluation/results.hpp"

namespace advaug {

/// What the report shows. Every setter checks its value at once and throws
/// std::invalid_argument naming the option and the value.
class report_options {
public:
    /// Heading of README.md and prefix of the chart titles. requires: not empty.
    report_options& title(std::string t) {
        if (t.empty()) detail::invalid("report_options::title", "title must not be empty");
        title_ = std::move(t);
        return *this;
    }
    /// Names of the classes, in label order, for the confusion matrices, the per-class table
    /// and the CSV. Default: none (classes are shown by index).
    /// requires: no name is empty; at write time, as many names as each model has classes.
    report_options& class_names(std::vector<std::string> names) {
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (names[i].empty()) {
                detail::invalid("report_options::class_names", "class name ", i, " is empty");
            }
        }
        class_names_ = std::move(names);
        return *this;
    }
    /// Attacks whose accuracy at every epsilon gets a column in README.md's summary table.
    /// Default (empty): every attack whose name starts with "pgd", or every attack if none
    /// does. requires: no name empty or repeated; at write time, each measured by some model.
    report_options& table_attacks(std::vector<std::string> attacks) {
        std::set<std::string> seen;
        for (const auto& a : attacks) {
            if (a.empty())
                detail::invalid("report_options::table_attacks", "an attack name is empty");
            if (!seen.insert(a).second) {
                detail::invalid("report_options::table_attacks", "attack '", a,
                                "' is listed twice");
            }
        }
        table_attacks_ = std::move(attacks);
        return *this;
    }
    /// Whether a confusion_<model>.svg heat map is written for each model that has a
    /// confusion matrix. Default: true.
    report_options& confusion_matrices(bool on) {
        confusion_matrices_ = on;
        return *this;
    }

    const std::string& title() const { return title_; }
    const std::vector<std::string>& class_names() const { return class_names_; }
    const std::vector<std::string>& table_attacks() const { return table_attacks_; }
    bool confusion_matrices() const { return confusion_matrices_; }

private:
    std::string title_ = "Robustness report";
    std::vector<std::string> class_names_;
    std::vector<std::string> table_attacks_;
    bool confusion_matrices_ = true;
};

namespace detail::report {

/// `model` as a file-name part: letters, digits, '.', '-' and '_' kept, anything else '_'.
inline std::string file_stem(const std::string& model) {
    std::string out;
    for (char ch : model) {
        const auto u = static_cast<unsigned char>(ch);
        out += (std::isalnum(u) && u < 0x80) || ch == '-' || ch == '_' || ch == '.' ? ch : '_';
    }
    if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
    return out;
}

/// The number of classes a model reports (0 when it has neither per-class accuracies nor a
/// confusion matrix).
inline std::size_t class_count(const model_evaluation& m) {
    return std::max(m.per_class_accuracy.size(), m.confusion.size());
}

/// An accuracy must be NaN (not measured) or a fraction in [0, 1].
inline void check_accuracy(const char* fn, double a, const std::string& what) {
    if (std::isnan(a)) return;
    if (!(a >= 0 && a <= 1)) {
        detail::invalid(fn, what, " must be a fraction in [0, 1] (or NaN if not measured), got ",
                        detail::format_shortest(a));
    }
}

/// Checks the records against results.hpp's contract and the options against the records.
/// throws std::invalid_argument naming `fn`, the model and the field.
/// A curve's x values (`what`: "epsilon" or "budget") are finite, >= 0 and strictly
/// ascending, with one accuracy in [0, 1] each.
inline void check_curve_points(const char* fn, const std::string& curve, const std::string& what,
                               const std::vector<double>& xs, const std::vector<double>& accuracy) {
    if (xs.size() != accuracy.size()) {
        detail::invalid(fn, curve, ": ", xs.size(), " ", what, "s but ", accuracy.size(), " accuracies");
    }
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const double x = xs[i];
        if (!std::isfinite(x) || x < 0) {
            detail::invalid(fn, curve, ": ", what, " ", i, " must be finite and >= 0, got ",
                            std::isfinite(x) ? detail::format_shortest(x) : "non-finite");
        }
        if (i > 0 && !(x > xs[i - 1])) {
            detail::invalid(fn, curve, ": ", what, "s must be strictly ascending, got ",
                            detail::format_shortest(xs[i - 1]), " then ", detail::format_shortest(x));
        }
        check_accuracy(fn, accuracy[i], curve + ": accuracy " + std::to_string(i));
    }
}

inline void check_models(const char* fn, const std::vector<model_evaluation>& models,
                         const report_options& options) {
    if (models.empty()) detail::invalid(fn, "models is empty; there is nothing to report");
    std::set<std::string> names, stems;
    std::set<std::string> all_attacks;
    for (const auto& m : models) {
        if (m.model.empty()) detail::invalid(fn, "a model has an empty name");
        const std::string who = "model '" + m.model + "'";
        if (!names.insert(m.model).second) detail::invalid(fn, who, " appears twice");
        if (!stems.insert(file_stem(m.model)).second) {
            detail::invalid(fn, who, " gives the same file name '", file_stem(m.model),
                            "' as another model; rename one");
        }
        check_accuracy(fn, m.clean_accuracy, who + ": clean_accuracy");
        check_accuracy(fn, m.mean_corruption_accuracy, who + ": mean_corruption_accuracy");
        // Negative is possible: corrupted inputs can be easier than clean ones for a model.
        if (std::isinf(m.relative_mce)) {
            detail::invalid(fn, who, ": relative_mce must be finite or NaN, got ",
                            m.relative_mce);
        }
        if (std::isinf(m.absolute_mce) || m.absolute_mce < 0) {
            detail::invalid(fn, who, ": absolute_mce must be finite and >= 0, or NaN, got ", m.absolute_mce);
        }
        std::set<std::string> covered;
        for (const auto& c : m.covered_corruptions) {
            if (c.empty()) detail::invalid(fn, who, ": a covered corruption has an empty name");
            if (!covered.insert(c).second) detail::invalid(fn, who, ": covered corruption '", c, "' appears twice");
        }
        std::set<std::string> attacks;
        for (const auto& c : m.curves) {
            if (c.attack.empty()) detail::invalid(fn, who, ": a curve has an empty attack name");
            const std::string curve = who + ", attack '" + c.attack + "'";
            if (!attacks.insert(c.attack).second) detail::invalid(fn, curve, " appears twice");
            all_attacks.insert(c.attack);
            if (c.samples > m.samples) {
                detail::invalid(fn, curve, ": ran on ", c.samples, " samples, more than the model's ", m.samples);
            }
            check_curve_points(fn, curve, "epsilon", c.epsilon, c.accuracy);
            if (!c.per_class_accuracy.empty() && c.per_class_accuracy.size() != c.epsilon.size()) {
                detail::invalid(fn, curve, ": ", c.epsilon.size(), " epsilons but per-class accuracies for ",
                                c.per_class_accuracy.size());
            }
            for (std::size_t i = 0; i < c.per_class_accuracy.size(); ++i) {
                for (std::size_t k = 0; k < c.per_class_accuracy[i].size(); ++k) {
                    const double a = c.per_class_accuracy[i][k];
                    if (!std::isnan(a)) {
                        check_accuracy(fn, a, curve + ": per-class accuracy " + std::to_string(i) + ", class " +
                                                  std::to_string(k));
                    }
                }
            }
            if (!c.broken_by.empty() && c.broken_by.size() != c.epsilon.size()) {
                detail::invalid(fn, curve, ": ", c.epsilon.size(), " epsilons but broken_by for ", c.broken_by.size());
            }
            for (std::size_t i = 0; i < c.broken_by.size(); ++i) {
                if (c.broken_by[i].size() != c.members.size()) {
                    detail::invalid(fn, curve, ": ", c.members.size(), " members but broken_by ", i, " has ",
                                    c.broken_by[i].size(), " shares");
                }
                for (std::size_t k = 0; k < c.broken_by[i].size(); ++k) {
                    check_accuracy(fn, c.broken_by[i][k], curve + ": broken_by " + std::to_string(i));
                }
            }
        }
        std::set<std::string> families;
        for (const auto& f : m.families) {
            if (f.family.empty()) detail::invalid(fn, who, ": a family curve has an empty family name");
            const std::string curve = who + ", family '" + f.family + "'";
            if (!families.insert(f.family).second) detail::invalid(fn, curve, " appears twice");
            if (file_stem(f.family) != f.family) {
                detail::invalid(fn, curve, ": a family name names a file: only letters, digits, '-', '_' and '.', not first");
            }
            check_curve_points(fn, curve, "budget", f.budget, f.accuracy);
        }
        std::set<std::string> corruptions;
        for (const auto& c : m.corruptions) {
            if (c.name.empty()) detail::invalid(fn, who, ": a corruption has an empty name");
            const std::string corr = who + ", corruption '" + c.name + "'";
            if (!corruptions.insert(c.name).second) detail::invalid(fn, corr, " appears twice");
            for (std::size_t s = 0; s < c.accuracy.size(); ++s) {
                check_accuracy(fn, c.accuracy[s], corr + ": severity " + std::to_string(s + 1));
            }
            check_accuracy(fn, c.mean_accuracy, corr + ": mean_accuracy");
        }
        for (std::size_t k = 0; k < m.per_class_accuracy.size(); ++k) {
            check_accuracy(fn, m.per_class_accuracy[k],
                           who + ": per_class_accuracy " + std::to_string(k));
        }
        const std::size_t k = m.confusion.size();
        for (std::size_t r = 0; r < k; ++r) {
            if (m.confusion[r].size() != k) {
                detail::invalid(fn, who, ": the confusion matrix must be square, row ", r, " has ",
                                m.confusion[r].size(), " entries, there are ", k, " rows");
            }
        }
        if (k != 0 && !m.per_class_accuracy.empty() && m.per_class_accuracy.size() != k) {
            detail::invalid(fn, who, ": ", m.per_class_accuracy.size(),
                            " per-class accuracies but a ", k, " x ", k, " confusion matrix");
        }
        const std::size_t classes = class_count(m);
        if (!options.class_names().empty() && classes != 0 &&
            classes != options.class_names().size()) {
            detail::invalid(fn, who, " has ", classes,
                            " classes but report_options::class_names has ",
                            options.class_names().size(), " names");
        }
    }
    for (const auto& a : options.table_attacks()) {
        if (all_attacks.count(a) == 0) {
            detail::invalid(fn, "report_options::table_attacks names attack '", a,
                            "', which no model has a curve for");
        }
    }
}

/// The attacks across all models, in order of first appearance.
inline std::vector<std::string> attack_names(const std::vector<model_evaluation>& models) {
    std::vector<std::string> out;
    for (const auto& m : models) {
        for (const auto& c : m.curves) {
            if (std::find(out.begin(), out.end(), c.attack) == out.end()) out.push_back(c.attack);
        }
    }
    return out;
}

/// The perturbation families across all models, in order of first appearance.
inline std::vector<std::string> family_names(const std::vector<model_evaluation>& models) {
    std::vector<std::string> out;
    for (const auto& m : models) {
        for (const auto& f : m.families) {
            if (std::find(out.begin(), out.end(), f.family) == out.end()) out.push_back(f.family);
        }
    }
    return out;
}

/// The corruptions across all models, in order of first appearance.
inline std::vector<std::string> corruption_names(const std::vector<model_evaluation>& models) {
    std::vector<std::string> out;
    for (const auto& m : models) {
        for (const auto& c : m.corruptions) {
            if (std::find(out.begin(), out.end(), c.name) == out.end()) out.push_back(c.name);
        }
    }
    return out;
}

/// The name of class k: options' name, or the index.
inline std::string class_label(const report_options& options, std::size_t k) {
    return k < options.class_names().size() ? options.class_names()[k] : std::to_string(k);
}

}  // namespace detail::report
}  // namespace advaug
