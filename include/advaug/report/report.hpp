// A robustness report: the evaluation records of one or more models (evaluation/results.hpp)
// written to a folder as data files, charts and a Markdown summary.
//
//   std::vector<advaug::model_evaluation> models = {plain, fgsm_rs};   // measured elsewhere
//   advaug::write_report("report", models, advaug::report_options().title("MNIST CNN"));
//
// writes into "report/" (created if needed):
//   results.json          every number, machine-readable (NaN, for "not measured", is null)
//   results.csv           one row per model and measurement: model,kind,name,parameter,accuracy
//   accuracy_vs_eps.svg   accuracy versus epsilon, one line per model and attack
//   corruptions.svg       mean accuracy per corruption, one bar per model, clean as reference
//   confusion_<model>.svg a heat map per model that has a confusion matrix
//   README.md             tables of the main numbers, the charts embedded, links to all files
//
// Every file is written atomically (io/atomic_file.hpp), README.md last, so it never links a
// file that is not there yet. Files of an earlier report in the same folder are replaced,
// never deleted. See docs/report.md for pictures and the meaning of each number.
//
// Adversarial examples themselves go out through report/examples.hpp (write_example_grid,
// included here) and io/npy.hpp (io::write_npy).
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/format.hpp"
#include "advaug/evaluation/results.hpp"
#include "advaug/io/atomic_file.hpp"
#include "advaug/io/npy.hpp"
#include "advaug/report/charts.hpp"
#include "advaug/report/examples.hpp"
#include "advaug/report/options.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// Writes the report described on top of this header into `directory`, creating it (and its
/// parents) if needed. Everything is checked and rendered before the first file is written.
/// requires: models not empty; names not empty, distinct, and distinct as file names
///           (report_options: see options.hpp); each record as results.hpp describes it:
///           accuracies are fractions in [0, 1] or NaN (not measured), each curve has one
///           accuracy per epsilon and strictly ascending epsilons >= 0, a confusion matrix is
///           square with as many rows as there are per-class accuracies.
/// throws:   std::invalid_argument naming the model and field that break this;
///           io_error if the folder cannot be created or a file cannot be written.
inline void write_report(const std::string& directory, const std::vector<model_evaluation>& models,
                         const report_options& options = {});

/// The content of results.json. throws: as write_report's checks.
inline std::string results_json(const std::vector<model_evaluation>& models,
                                const report_options& options = {});

/// The content of results.csv: a header `model,kind,name,parameter,accuracy` and one row per
/// model and measurement, in this order per model:
///   clean       name "clean", parameter empty;
///   attack      name the attack, parameter the epsilon, one row per epsilon;
///   corruption  name the corruption, parameter the severity 1..5, one row per severity;
///   class       name the class name (report_options::class_names) or "class", parameter
///               the class index, one row per class with a per-class accuracy.
/// Accuracies are fractions in [0, 1] with all their digits; an empty field is NaN.
/// throws: as write_report's checks.
inline std::string results_csv(const std::vector<model_evaluation>& models,
                               const report_options& options = {});

/// The content of README.md, linking the files write_report writes. throws: as above.
inline std::string report_markdown(const std::vector<model_evaluation>& models,
                                   const report_options& options = {});

/// The file name of a model's confusion heat map: "confusion_<model>.svg", where characters
/// other than letters, digits, '.', '-' and '_' become '_'.
inline std::string confusion_file_name(const std::string& model) {
    return "confusion_" + detail::report::file_stem(model) + ".svg";
}

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail::report {

inline constexpr const char* json_file = "results.json";
inline constexpr const char* csv_file = "results.csv";
inline constexpr const char* eps_chart_file = "accuracy_vs_eps.svg";
inline constexpr const char* corruption_chart_file = "corruptions.svg";

/// worst_case_<family>.svg
inline std::string family_chart_file(const std::string& family) { return "worst_case_" + family + ".svg"; }

inline constexpr const char* readme_file = "README.md";


inline std::string json_numbers(const std::vector<double>& values) {
    std::string out = "[";
    for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + json_number(values[i]);
    return out + "]";
}

/// The attacks that get summary columns: options', else AutoAttack's and the "pgd..." ones
/// (AutoAttack first: it is the headline where it ran), else all.
inline std::vector<std::string> summary_attacks(const std::vector<model_evaluation>& models,
                                                const report_options& options) {
    if (!options.table_attacks().empty()) return options.table_attacks();
    const std::vector<std::string> all = attack_names(models);
    auto starts = [](const std::string& a, std::string_view prefix) {
        if (a.size() < prefix.size()) return false;
        for (std::size_t i = 0; i < prefix.size(); ++i) {
            if (std::tolower(static_cast<unsigned char>(a[i])) != prefix[i]) return false;
        }
        return true;
    };
    std::vector<std::string> chosen;
    for (const auto& a : all) {
        if (starts(a, "autoattack")) chosen.push_back(a);
    }
    for (const auto& a : all) {
        if (starts(a, "pgd")) chosen.push_back(a);
    }
    return chosen.empty() ? all : chosen;
}

/// The x values (epsilons, budgets) at which some model measured the curve named `wanted`
/// among its `curves` (model_evaluation::curves or ::families), ascending, without duplicates.
template <class Curve>
std::vector<double> points_of(const std::vector<model_evaluation>& models,
                              std::vector<Curve> model_evaluation::*curves, std::string Curve::*name,
                              std::vector<double> Curve::*xs, const std::string& wanted) {
    std::vector<double> out;
    for (const auto& m : models) {
        for (const auto& c : m.*curves) {
            if (c.*name == wanted) out.insert(out.end(), (c.*xs).begin(), (c.*xs).end());
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

/// A model's accuracy on the curve named `wanted` at exactly x; NaN if not measured.
template <class Curve>
double accuracy_on(const model_evaluation& m, std::vector<Curve> model_evaluation::*curves,
                   std::string Curve::*name, std::vector<double> Curve::*xs, const std::string& wanted,
                   double x) {
    for (const auto& c : m.*curves) {
        if (c.*name != wanted) continue;
        for (std::size_t i = 0; i < (c.*xs).size(); ++i) {
            if ((c.*xs)[i] == x) return c.accuracy[i];
        }
    }
    return std::nan("");
}

/// The epsilons at which some model measured `attack`, ascending, without duplicates.
inline std::vector<double> epsilons_of(const std::vector<model_evaluation>& models, const std::string& attack) {
    return points_of(models, &model_evaluation::curves, &eps_curve::attack, &eps_curve::epsilon, attack);
}

/// A model's accuracy under `attack` at exactly `eps`; NaN if not measured.
inline double accuracy_at(const model_evaluation& m, const std::string& attack, double eps) {
    return accuracy_on(m, &model_evaluation::curves, &eps_curve::attack, &eps_curve::epsilon, attack, eps);
}

/// The budgets at which some model measured `family`, ascending, without duplicates.
inline std::vector<double> budgets_of(const std::vector<model_evaluation>& models, const std::string& family) {
    return points_of(models, &model_evaluation::families, &family_curve::family, &family_curve::budget, family);
}

/// A model's accuracy under the worst `family` within exactly `budget`; NaN if not measured.
inline double family_accuracy_at(const model_evaluation& m, const std::string& family, double budget) {
    return accuracy_on(m, &model_evaluation::families, &family_curve::family, &family_curve::budget, family,
                       budget);
}

/// One Markdown table row.
inline std::string md_row(const std::vector<std::string>& cells) {
    std::string out = "|";
    for (const auto& c : cells) out += " " + c + " |";
    return out + "\n";
}

/// The alignment row: first column left, the others right (numbers).
inline std::string md_rule(std::size_t columns) {
    std::string out = "| :--- |";
    for (std::size_t i = 1; i < columns; ++i) out += " ---: |";
    return out + "\n";
}

inline bool any_corruptions(const std::vector<model_evaluation>& models) {
    for (const auto& m : models) {
        if (!m.corruptions.empty()) return true;
    }
    return false;
}

}  // namespace detail::report

/// Signs of gradient masking (Athalye et al. 2018; Croce and Hein 2020) in the measured
/// curves, one sentence each: a one-step attack that breaks more than a many-step one, an
/// accuracy that rises with epsilon, and Square (no gradients) breaking samples the gradient
/// members of AutoAttack left. A difference counts when it is more than 0.5 points and more
/// than 2 samples, so that a tie broken by one sample is not flagged. Two attacks are only
/// compared when they ran on the same samples (eps_curve::samples).
inline std::vector<std::string> masking_flags(const std::vector<model_evaluation>& models) {
    using namespace detail;
    std::vector<std::string> out;
    for (const auto& m : models) {
        const eps_curve* fgsm = nullptr;
        for (const auto& c : m.curves) {
            const double n = static_cast<double>(std::max<std::size_t>(attacked_samples(m, c), 1));
            const double margin = std::max(0.005, 2.0 / n);
            if (c.attack == "fgsm") fgsm = &c;
            for (std::size_t i = 1; i < c.epsilon.size(); ++i) {
                if (c.accuracy[i] > c.accuracy[i - 1] + margin) {
                    out.push_back(m.model + ": under " + c.attack + " the accuracy rises from " +
                                  percent(c.accuracy[i - 1]) + " at \xCE\xB5=" + format_epsilon(c.epsilon[i - 1]) +
                                  " to " + percent(c.accuracy[i]) + " at \xCE\xB5=" + format_epsilon(c.epsilon[i]) +
                                  ": a larger budget should never help the model");
                }
            }
            for (std::size_t i = 0; i < c.broken_by.size() && i < c.epsilon.size(); ++i) {
                for (std::size_t k = 0; k < c.members.size() && k < c.broken_by[i].size(); ++k) {
                    if (c.members[k] == "square" && c.broken_by[i][k] > margin) {
                        out.push_back(m.model + ": at \xCE\xB5=" + format_epsilon(c.epsilon[i]) + " Square, which uses no " +
                                      "gradients, broke " + percent(c.broken_by[i][k]) +
                                      " of the samples that every gradient attack of " + c.attack + " left");
                    }
                }
            }
        }
        if (!fgsm) continue;
        for (const auto& c : m.curves) {
            if (c.attack.rfind("pgd", 0) != 0 && c.attack.rfind("bim", 0) != 0) continue;
            if (attacked_samples(m, c) != attacked_samples(m, *fgsm)) continue;
            const double n = static_cast<double>(std::max<std::size_t>(attacked_samples(m, c), 1));
            const double margin = std::max(0.005, 2.0 / n);
            for (std::size_t i = 0; i < fgsm->epsilon.size(); ++i) {
                for (std::size_t j = 0; j < c.epsilon.size(); ++j) {
                    if (c.epsilon[j] != fgsm->epsilon[i] || c.epsilon[j] == 0) continue;
                    if (fgsm->accuracy[i] + margin < c.accuracy[j]) {
                        out.push_back(m.model + ": at \xCE\xB5=" + format_epsilon(c.epsilon[j]) + " FGSM (" +
                                      percent(fgsm->accuracy[i]) + ") breaks more than " + c.attack + " (" +
                                      percent(c.accuracy[j]) + "): the many-step attack is stuck");
                    }
                }
            }
        }
    }
    return out;
}

inline std::string results_json(const std::vector<model_evaluation>& models,
                                const report_options& options) {
    using namespace detail;
    using namespace detail::report;
    check_models("results_json", models, options);
    std::string out = "{\n";
    out += "  \"format\": \"advaug robustness report\",\n";
    out += "  \"version\": 1,\n";
    out += "  \"title\": " + json_string(options.title()) + ",\n";
    out += "  \"class_names\": [";
    for (std::size_t i = 0; i < options.class_names().size(); ++i) {
        out += (i ? ", " : "") + json_string(options.class_names()[i]);
    }
    out += "],\n  \"models\": [\n";
    for (std::size_t mi = 0; mi < models.size(); ++mi) {
        const auto& m = models[mi];
        out += "    {\n";
        out += "      \"model\": " + json_string(m.model) + ",\n";
        out += "      \"samples\": " + std::to_string(m.samples) + ",\n";
        out += "      \"clean_accuracy\": " + json_number(m.clean_accuracy) + ",\n";
        out += "      \"mean_corruption_accuracy\": " + json_number(m.mean_corruption_accuracy) +
               ",\n";
        out += "      \"relative_mce\": " + json_number(m.relative_mce) + ",\n";
        out += "      \"absolute_mce\": " + json_number(m.absolute_mce) + ",\n";
        out += "      \"covered_corruptions\": [";
        for (std::size_t k = 0; k < m.covered_corruptions.size(); ++k)
            out += (k ? ", " : "") + json_string(m.covered_corruptions[k]);
        out += "],\n";
        out += "      \"covered_corruption_accuracy\": " + json_number(mean_corruption_accuracy(m, true)) + ",\n";
        out += "      \"not_covered_corruption_accuracy\": " + json_number(mean_corruption_accuracy(m, false)) + ",\n";
        out += "      \"per_class_accuracy\": " + json_numbers(m.per_class_accuracy) + ",\n";
        out += "      \"confusion\": [";
        for (std::size_t r = 0; r < m.confusion.size(); ++r) {
            out += r ? ",\n        [" : "\n        [";
            for (std::size_t c = 0; c < m.confusion[r].size(); ++c) {
                out += (c ? ", " : "") + std::to_string(m.confusion[r][c]);
            }
            out += "]";
        }
        out += m.confusion.empty() ? "],\n" : "\n      ],\n";
        out += "      \"curves\": [";
        for (std::size_t i = 0; i < m.curves.size(); ++i) {
            const auto& c = m.curves[i];
            out += (i ? ",\n" : "\n");
            out += "        {\"attack\": " + json_string(c.attack) +
                   ", \"samples\": " + std::to_string(attacked_samples(m, c)) +
                   ", \"epsilon\": " + json_numbers(c.epsilon) +
                   ", \"accuracy\": " + json_numbers(c.accuracy);
            out += ", \"per_class_accuracy\": [";
            for (std::size_t k = 0; k < c.per_class_accuracy.size(); ++k)
                out += (k ? ", " : "") + json_numbers(c.per_class_accuracy[k]);
            out += "]";
            if (!c.members.empty()) {
                out += ", \"members\": [";
                for (std::size_t k = 0; k < c.members.size(); ++k) out += (k ? ", " : "") + json_string(c.members[k]);
                out += "], \"broken_by\": [";
                for (std::size_t k = 0; k < c.broken_by.size(); ++k)
                    out += (k ? ", " : "") + json_numbers(c.broken_by[k]);
                out += "]";
            }
            out += "}";
        }
        out += m.curves.empty() ? "],\n" : "\n      ],\n";
        out += "      \"families\": [";
        for (std::size_t i = 0; i < m.families.size(); ++i) {
            const auto& f = m.families[i];
            out += (i ? ",\n" : "\n");
            out += "        {\"family\": " + json_string(f.family) + ", \"parameter\": " + json_string(f.parameter) +
                   ", \"search\": " + json_string(f.search) + ", \"budget\": " + json_numbers(f.budget) +
                   ", \"accuracy\": " + json_numbers(f.accuracy) + "}";
        }
        out += m.families.empty() ? "],\n" : "\n      ],\n";
        out += "      \"corruptions\": [";
        for (std::size_t i = 0; i < m.corruptions.size(); ++i) {
            const auto& c = m.corruptions[i];
            out += (i ? ",\n" : "\n");
            out += "        {\"name\": " + json_string(c.name) +
                   ", \"accuracy\": " + json_numbers(c.accuracy) +
                   ", \"mean_accuracy\": " + json_number(c.mean_accuracy) + "}";
        }
        out += m.corruptions.empty() ? "]\n" : "\n      ]\n";
        out += mi + 1 < models.size() ? "    },\n" : "    }\n";
    }
    out += "  ]\n}\n";
    return out;
}

inline std::string results_csv(const std::vector<model_evaluation>& models,
                               const report_options& options) {
    using namespace detail;
    using namespace detail::report;
    check_models("results_csv", models, options);
    auto number = [](double v) { return std::isfinite(v) ? format_shortest(v) : std::string(); };
    std::string out = "model,kind,name,parameter,accuracy\n";
    for (const auto& m : models) {
        const std::string model = csv_field(m.model);
        out += model + ",clean,clean,," + number(m.clean_accuracy) + "\n";
        for (const auto& c : m.curves) {
            for (std::size_t i = 0; i < c.epsilon.size(); ++i) {
                out += model + ",attack," + csv_field(c.attack) + "," +
                       format_shortest(c.epsilon[i]) + "," + number(c.accuracy[i]) + "\n";
            }
        }
        for (const auto& f : m.families) {
            for (std::size_t i = 0; i < f.budget.size(); ++i) {
                out += model + ",family," + csv_field(f.family) + "," + format_shortest(f.budget[i]) + "," +
                       number(f.accuracy[i]) + "\n";
            }
        }
        for (const auto& c : m.corruptions) {
            for (std::size_t s = 0; s < c.accuracy.size(); ++s) {
                out += model + ",corruption," + csv_field(c.name) + "," + std::to_string(s + 1) +
                       "," + number(c.accuracy[s]) + "\n";
            }
        }
        for (std::size_t k = 0; k < m.per_class_accuracy.size(); ++k) {
            const std::string name =
                options.class_names().empty() ? "class" : options.class_names()[k];
            out += model + ",class," + csv_field(name) + "," + std::to_string(k) + "," +
                   number(m.per_class_accuracy[k]) + "\n";
        }
    }
    return out;
}

inline std::string report_markdown(const std::vector<model_evaluation>& models,
                                   const report_options& options) {
    using namespace detail;
    using namespace detail::report;
    check_models("report_markdown", models, options);
    const std::string eps = "\xCE\xB5";
    const bool corruptions = any_corruptions(models);
    const std::vector<std::string> attacks = attack_names(models);
    std::string out = "# " + markdown_escape(options.title()) + "\n\n";

    const std::string note = sample_note(models);
    out += std::to_string(models.size()) + (models.size() == 1 ? " model" : " models") +
           (note.empty() ? "" : ", each evaluated on " + note.substr(4)) +
           ". Accuracy is the share of test samples classified correctly (higher is better); " +
           eps + " is the attack's budget in input units.\n\n";

    // Summary table.
    out += "## Summary\n\n";
    std::vector<std::string> header = {"model", "clean"};
    std::vector<std::pair<std::string, double>> columns;  // attack, epsilon
    for (const auto& a : summary_attacks(models, options)) {
        for (double e : epsilons_of(models, a)) {
            if (e == 0) continue;  // that is the clean accuracy
            columns.emplace_back(a, e);
            header.push_back(markdown_escape(a) + " " + eps + "=" + format_epsilon(e));
        }
    }
    bool coverage = false, absolute = false;
    for (const auto& m : models) {
        coverage = coverage || !m.covered_corruptions.empty();
        absolute = absolute || std::isfinite(m.absolute_mce);
    }
    if (corruptions) {
        header.push_back("corruptions (mean)");
        if (coverage) {
            header.push_back("covered");
            header.push_back("not covered");
        }
        if (absolute) header.push_back("mCE");
        header.push_back("relative mCE");
    }
    out += md_row(header) + md_rule(header.size());
    for (const auto& m : models) {
        std::vector<std::string> row = {markdown_escape(m.model), percent(m.clean_accuracy)};
        for (const auto& [a, e] : columns) row.push_back(percent(accuracy_at(m, a, e)));
        if (corruptions) {
            const bool has = !m.corruptions.empty();
            row.push_back(has ? percent(m.mean_corruption_accuracy) : percent(std::nan("")));
            if (coverage) {
                row.push_back(percent(mean_corruption_accuracy(m, true)));
                row.push_back(percent(mean_corruption_accuracy(m, false)));
            }
            if (absolute) row.push_back(has ? percent(m.absolute_mce) : percent(std::nan("")));
            row.push_back(has ? percent(m.relative_mce) : percent(std::nan("")));
        }
        out += md_row(row);
    }
    out += "\n";
    const std::vector<std::string> subsets = subset_notes(models);
    if (!subsets.empty()) {
        out += "Attacks on part of the set: ";
        for (std::size_t i = 0; i < subsets.size(); ++i) out += (i ? "; " : "") + markdown_escape(subsets[i]);
        out += " (the first samples of the set, in its order); their accuracies are shares of those samples.\n\n";
    }
    if (corruptions) {
        if (coverage) {
            out += "Covered and not covered split the corruptions by whether the model's training "
                   "perturbations produce that kind of change (docs/shift_robustness.md); the not-covered "
                   "mean measures generalization. ";
        }
        if (absolute) {
            out += "mCE is the error under the corruptions relative to the baseline's (lower is better, "
                   "the baseline scores 100%). ";
        }
        out +=
            "Relative mCE (Hendrycks and Dietterich, 2019) is the error added by the "
            "corruptions, relative to the baseline model's: lower is better, the baseline "
            "scores 100%; it measures how much a model degrades, not how accurate it is. "
            "\xE2\x80\x93 means not measured.\n\n";
        // Never call a model more robust when it is less accurate under shift.
        const model_evaluation* base = nullptr;
        for (const auto& m : models) {
            if (m.relative_mce == 1.0) base = &m;
        }
        for (const auto& m : models) {
            if (!base || &m == base || m.corruptions.empty()) continue;
            if (m.relative_mce < 1.0 && m.mean_corruption_accuracy < base->mean_corruption_accuracy) {
                out += "**" + markdown_escape(m.model) + " degrades less than " + markdown_escape(base->model) +
                       " (relative mCE " + percent(m.relative_mce) + ") but is less accurate under "
                       "corruption (" + percent(m.mean_corruption_accuracy) + " against " +
                       percent(base->mean_corruption_accuracy) + "): it is not more robust.**\n\n";
            }
        }
    }

    // Attacks.
    out += "## Accuracy under attack\n\n";
    out += std::string("![Accuracy versus ") + eps + " for each model and attack](" +
           eps_chart_file + ")\n\n";
    for (const auto& a : attacks) {
        out += "### " + markdown_escape(a) + "\n\n";
        for (const std::string& note : subsets) {
            if (note.rfind(a + " ", 0) == 0) out += "Run " + markdown_escape(note.substr(a.size() + 1)) + ".\n\n";
        }
        std::vector<std::string> h = {"model"};
        const std::vector<double> es = epsilons_of(models, a);
        for (double e : es) h.push_back(eps + "=" + format_epsilon(e));
        out += md_row(h) + md_rule(h.size());
        for (const auto& m : models) {
            bool has = false;
            for (const auto& c : m.curves) has = has || c.attack == a;
            if (!has) continue;
            std::vector<std::string> row = {markdown_escape(m.model)};
            for (double e : es) row.push_back(percent(accuracy_at(m, a, e)));
            out += md_row(row);
        }
        out += "\n";
    }
    if (attacks.empty()) out += "No attack was evaluated.\n\n";

    // Which member of an ensemble broke the samples.
    for (const auto& m : models) {
        for (const auto& c : m.curves) {
            if (c.members.empty() || c.broken_by.empty()) continue;
            out += "### " + markdown_escape(c.attack) + ": the attack that broke each sample, " +
                   markdown_escape(m.model) + "\n\n";
            std::vector<std::string> h = {eps};
            for (const auto& member : c.members) h.push_back(markdown_escape(member));
            h.push_back("robust");
            out += md_row(h) + md_rule(h.size());
            for (std::size_t i = 0; i < c.epsilon.size() && i < c.broken_by.size(); ++i) {
                std::vector<std::string> row = {format_epsilon(c.epsilon[i])};
                for (double b : c.broken_by[i]) row.push_back(percent(b));
                row.push_back(percent(c.accuracy[i]));
                out += md_row(row);
            }
            out += "\nEach member runs on the samples the members before it left; the shares are of all " +
                   std::to_string(attacked_samples(m, c)) + " samples attacked.\n\n";
        }
    }

    // Gradient masking.
    if (!attacks.empty()) {
        out += "## Checks for gradient masking\n\n";
        const std::vector<std::string> flags = masking_flags(models);
        if (flags.empty()) {
            out += "None of the signs checked was found: no one-step attack beat a many-step one, no accuracy "
                   "rose with " + eps + ", and Square broke nothing the gradient attacks left (where each "
                   "was measured).\n\n";
        } else {
            out += "**Likely gradient masking**: the robust accuracies above may overstate robustness.\n\n";
            for (const auto& f : flags) out += "- " + markdown_escape(f) + "\n";
            out += "\n";
        }
    }

    // Worst-case natural perturbations.
    const std::vector<std::string> families = family_names(models);
    if (!families.empty()) {
        out += "## Worst-case natural perturbations\n\n";
        out += "Accuracy under the worst perturbation of each family within its budget, found per "
               "sample by a search in the family's parameters (perturbations/); budget 0 is the "
               "clean accuracy.\n\n";
        for (const auto& f : families) {
            std::string parameter, search;
            for (const auto& m : models) {
                for (const auto& c : m.families) {
                    if (c.family == f) {
                        parameter = c.parameter;
                        search = c.search;
                    }
                }
            }
            out += "### " + markdown_escape(f) + "\n\n";
            out += "![Accuracy under the worst " + markdown_escape(f) + " versus its budget](" +
                   family_chart_file(f) + ")\n\n";
            std::vector<std::string> h = {"model"};
            const std::vector<double> bs = budgets_of(models, f);
            for (double b : bs) h.push_back(format_shortest(b) + " " + markdown_escape(parameter));
            out += md_row(h) + md_rule(h.size());
            for (const auto& m : models) {
                bool has = false;
                for (const auto& c : m.families) has = has || c.family == f;
                if (!has) continue;
                std::vector<std::string> row = {markdown_escape(m.model)};
                for (double b : bs) row.push_back(percent(family_accuracy_at(m, f, b)));
                out += md_row(row);
            }
            out += "\nSearch: " + markdown_escape(search) + ".\n\n";
        }
    }

    // Corruptions.
    out += "## Common corruptions\n\n";
    out += std::string("![Mean accuracy per corruption for each model](") + corruption_chart_file +
           ")\n\n";
    if (corruptions) {
        std::vector<std::string> h = {"corruption (mean over severities)"};
        for (const auto& m : models) h.push_back(markdown_escape(m.model));
        out += md_row(h) + md_rule(h.size());
        for (const auto& name : corruption_names(models)) {
            std::vector<std::string> row = {markdown_escape(name)};
            for (const auto& m : models) {
                double a = std::nan("");
                for (const auto& c : m.corruptions) {
                    if (c.name == name) a = c.mean_accuracy;
                }
                row.push_back(percent(a));
            }
            out += md_row(row);
        }
        std::vector<std::string> mean = {"**mean**"};
        for (const auto& m : models) {
            mean.push_back(m.corruptions.empty()
                               ? percent(std::nan(""))
                               : "**" + percent(m.mean_corruption_accuracy) + "**");
        }
        out += md_row(mean) + "\n";
        out += "Accuracy at each severity is in [" + std::string(csv_file) + "](" + csv_file +
               ").\n\n";
    } else {
        out += "No corruption was evaluated.\n\n";
    }

    // Classes.
    std::size_t classes = 0;
    for (const auto& m : models) classes = std::max(classes, m.per_class_accuracy.size());
    if (classes != 0) {
        out += "## Per-class accuracy (clean)\n\n";
        std::vector<std::string> h = {"class"};
        for (const auto& m : models) h.push_back(markdown_escape(m.model));
        out += md_row(h) + md_rule(h.size());
        for (std::size_t k = 0; k < classes; ++k) {
            std::vector<std::string> row = {markdown_escape(class_label(options, k))};
            for (const auto& m : models) {
                row.push_back(percent(k < m.per_class_accuracy.size() ? m.per_class_accuracy[k]
                                                                      : std::nan("")));
            }
            out += md_row(row);
        }
        out += "\n";
    }
    std::vector<const model_evaluation*> with_confusion;
    if (options.confusion_matrices()) {
        for (const auto& m : models) {
            if (!m.confusion.empty()) with_confusion.push_back(&m);
        }
    }
    if (!with_confusion.empty()) {
        out += "## Confusion matrices\n\n";
        for (const auto* m : with_confusion) {
            out += "![Confusion matrix of " + markdown_escape(m->model) + "](" +
                   confusion_file_name(m->model) + ")\n\n";
        }
    }

    // Files.
    out += "## Files\n\n";
    out += md_row({"file", "contents"}) + "| :--- | :--- |\n";
    out += md_row({std::string("[") + json_file + "](" + json_file + ")",
                   "every number in this report, machine-readable; null where not measured"});
    out += md_row({std::string("[") + csv_file + "](" + csv_file + ")",
                   "one row per model and measurement: model, kind (clean, attack, family, "
                   "corruption, class), name, parameter (" +
                       eps + ", budget, severity or class), accuracy"});
    out += md_row({std::string("[") + eps_chart_file + "](" + eps_chart_file + ")",
                   "accuracy versus " + eps + ", one line per model and attack"});
    for (const auto& f : families) {
        const std::string file = family_chart_file(f);
        out += md_row({"[" + file + "](" + file + ")",
                       "accuracy under the worst " + markdown_escape(f) + " versus its budget, one line per model"});
    }
    out += md_row({std::string("[") + corruption_chart_file + "](" + corruption_chart_file + ")",
                   "mean accuracy per corruption, one bar per model; dashed: clean accuracy"});
    for (const auto* m : with_confusion) {
        const std::string f = confusion_file_name(m->model);
        out +=
            md_row({"[" + f + "](" + f + ")", "confusion matrix of " + markdown_escape(m->model)});
    }
    return out;
}

inline void write_report(const std::string& directory, const std::vector<model_evaluation>& models,
                         const report_options& options) {
    using namespace detail;
    using namespace detail::report;
    namespace fs = std::filesystem;
    const char* fn = "write_report";
    check_models(fn, models, options);

    // Render everything first: a bad record then costs no half-written report.
    std::vector<std::pair<std::string, std::string>> files;
    files.emplace_back(json_file, results_json(models, options));
    files.emplace_back(csv_file, results_csv(models, options));
    files.emplace_back(eps_chart_file, accuracy_vs_eps_svg(models, options));
    for (const auto& f : family_names(models)) files.emplace_back(family_chart_file(f), worst_case_svg(models, options, f));
    files.emplace_back(corruption_chart_file, corruptions_svg(models, options));
    if (options.confusion_matrices()) {
        for (const auto& m : models) {
            if (!m.confusion.empty())
                files.emplace_back(confusion_file_name(m.model), confusion_svg(m, options));
        }
    }
    files.emplace_back(readme_file, report_markdown(models, options));

    const fs::path dir(directory.empty() ? "." : directory);
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
        throw io_error(detail::concat(fn, "(): '", dir.string(), "' exists and is not a folder"));
    }
    fs::create_directories(dir, ec);
    if (ec) {
        throw io_error(detail::concat(fn, "(): cannot create the folder '", dir.string(),
                                      "': ", ec.message()));
    }
    for (const auto& [name, content] : files) {
        try {
            io::write_file_atomically(
                (dir / name).string(),
                std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(content.data()),
                                              content.size()));
        } catch (const io_error& e) {
            throw io_error(detail::concat(fn, "(): ", e.what()));
        }
    }
}

}  // namespace advaug
