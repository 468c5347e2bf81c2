// The report's charts as standalone SVG files (strings): accuracy versus epsilon, accuracy
// per corruption, and a confusion-matrix heat map. write_report() (report/report.hpp) writes
// them to files; these functions are public so that a caller can place a chart elsewhere.
//
// Encoding, chosen so that a chart still reads in grey scale and for colour-blind readers:
//   - colour identifies the model (Okabe-Ito palette), and so does the marker shape;
//   - the dash pattern identifies the attack;
//   - accuracy is always on a fixed 0-100% axis, so charts of different runs compare by eye.
// Hovering over a point or bar in a browser shows its exact value (an SVG <title>).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/format.hpp"
#include "advaug/evaluation/results.hpp"
#include "advaug/report/options.hpp"
#include "advaug/report/svg.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// A line chart of accuracy versus epsilon: one line per model and attack, with a marker at
/// each measured epsilon, axes, ticks, gridlines, a legend and a title. A chart without any
/// curve says so in its plot area.
/// requires: the records satisfy results.hpp's contract (checked, see write_report).
/// throws:   std::invalid_argument naming the model and field that break it.
inline std::string accuracy_vs_eps_svg(const std::vector<model_evaluation>& models,
                                       const report_options& options = {});

/// Accuracy under the worst perturbation of `family` (model_evaluation::families) versus its
/// budget, one line per model that measured it. throws: as accuracy_vs_eps_svg.
inline std::string worst_case_svg(const std::vector<model_evaluation>& models,
                                  const report_options& options, const std::string& family);

/// A grouped bar chart of the mean accuracy (over severities) under each corruption, one bar
/// per model, plus a last group with each model's mean over all corruptions; each model's
/// clean accuracy is a dashed reference line in its colour. throws: as accuracy_vs_eps_svg.
inline std::string corruptions_svg(const std::vector<model_evaluation>& models,
                                   const report_options& options = {});

/// A heat map of `model`'s confusion matrix: rows are true classes, columns predictions,
/// colour is the share of the row (so the diagonal is per-class accuracy), and each cell
/// shows its count where it fits.
/// throws: std::invalid_argument if the model has no confusion matrix, or as above.
inline std::string confusion_svg(const model_evaluation& model, const report_options& options = {});

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail::report {

/// "n = 1000 test samples" when every model was evaluated on the same number, else "".
inline std::string sample_note(const std::vector<model_evaluation>& models) {
    const std::size_t n = models.front().samples;
    for (const auto& m : models) {
        if (m.samples != n) return "";
    }
    return n == 0 ? "" : "n = " + std::to_string(n) + " test samples";
}

/// For each attack that ran on only the first samples of some model's set
/// (eps_curve::samples), one phrase: "autoattack on the first 1000 of 10000 samples", with the
/// models named where they differ ("... for plain; on the first 500 of 10000 for robust").
/// Empty when every attack ran on every sample.
inline std::vector<std::string> subset_notes(const std::vector<model_evaluation>& models) {
    std::vector<std::string> out;
    for (const std::string& attack : attack_names(models)) {
        std::vector<std::pair<std::string, std::pair<std::size_t, std::size_t>>> parts;  // model, (attacked, all)
        bool partial = false;
        for (const auto& m : models) {
            for (const auto& c : m.curves) {
                if (c.attack != attack) continue;
                const std::size_t n = attacked_samples(m, c);
                parts.push_back({m.model, {n, m.samples}});
                partial = partial || n < m.samples;
            }
        }
        if (!partial) continue;
        const bool same = std::all_of(parts.begin(), parts.end(),
                                      [&](const auto& p) { return p.second == parts.front().second; });
        auto phrase = [](std::pair<std::size_t, std::size_t> n) {
            return n.first == n.second ? "on all " + std::to_string(n.second) + " samples"
                                       : "on the first " + std::to_string(n.first) + " of " +
                                             std::to_string(n.second) + " samples";
        };
        std::string note = attack + " " + phrase(parts.front().second);
        if (!same) {
            note += " for " + parts.front().first;
            for (std::size_t i = 1; i < parts.size(); ++i)
                note += "; " + phrase(parts[i].second) + " for " + parts[i].first;
        }
        out.push_back(std::move(note));
    }
    return out;
}

/// Titles of a chart: bold title and a grey subtitle, left-aligned with the plot.
inline void chart_heading(svg_document& svg, double x, const std::string& title,
                          const std::string& subtitle) {
    svg.text(x, 30, title, {.size = 18, .bold = true});
    if (!subtitle.empty()) svg.text(x, 52, subtitle, {.size = 13, .fill = muted});
}

/// The width a chart needs so that its title and subtitle, starting at x, are not clipped.
inline double heading_width(double x, const std::string& title, const std::string& subtitle) {
    return x + std::max(text_width(title, 18) * 1.08, text_width(subtitle, 13)) + 16;
}

/// Horizontal gridlines and percentage labels of a 0-100% accuracy axis, plus the axis title.
inline void accuracy_axis(svg_document& svg, double left, double right, double top, double bottom) {
    const double h = bottom - top;
    for (int p = 0; p <= 100; p += 10) {
        const double y = bottom - h * p / 100.0;
        if (p > 0) svg.line(left, y, right, y, grid_colour, 1);
        if (p % 20 == 0 || h >= 300) {
            svg.text(left - 8, y, std::to_string(p) + "%",
                     {.size = 12, .anchor = "end", .fill = muted, .centre_vertically = true});
        }
        svg.line(left - 4, y, left, y, ink, 1);
    }
    svg.text(22, (top + bottom) / 2, "accuracy",
             {.size = 14, .anchor = "middle", .rotate = -90, .centre_vertically = true});
}

/// Ticks of the epsilon axis: where, with what label, and where the axis ends. Budgets given
/// as multiples of 1/255 (8/255, 16/255) get ticks at such multiples, labelled "k/255";
/// others get round decimal ticks. The axis ends at the largest epsilon unless a round tick
/// lies just past it.
struct eps_axis {
    std::vector<double> at;
    std::vector<std::string> labels;
    double end = 1;
};

inline eps_axis make_eps_axis(const std::vector<double>& all_eps, double max_eps) {
    eps_axis axis;
    bool in_255ths = max_eps > 0;
    bool needs_255ths = false;
    for (double e : all_eps) {
        const double k = e * 255.0;
        in_255ths = in_255ths && std::abs(k - std::round(k)) < 1e-6;
        needs_255ths = needs_255ths || format_epsilon(e).find('/') != std::string::npos;
    }
    if (in_255ths && needs_255ths) {
        const double k_max = std::round(max_eps * 255.0);
        double step = 1;
        while (k_max / step > 6) step *= 2;
        for (double k = 0; k <= k_max + 1e-9; k += step) {
            axis.at.push_back(k / 255.0);
            axis.labels.push_back(k == 0 ? "0" : fixed(k, 0) + "/255");
        }
        axis.end = max_eps;
        return axis;
    }
    const ticks t = nice_ticks(max_eps);
    axis.end = t.end() <= max_eps * 1.08 || !(max_eps > 0) ? t.end() : max_eps;
    for (double v : t.values) {
        if (v > axis.end * (1 + 1e-9)) break;
        axis.at.push_back(v);
        axis.labels.push_back(fixed(v, t.decimals));
    }
    return axis;
}

struct series {
    std::size_t model = 0;
    std::size_t attack = 0;
    const eps_curve* curve = nullptr;
};

}  // namespace detail::report

namespace detail::report {

/// What a line chart of accuracy over a budget says: eps curves of attacks, or worst-case
/// curves of one perturbation family.
struct curve_chart_text {
    std::string title, subtitle, x_label, legend_heading, point_prefix, svg_title, svg_description,
        empty;
};

/// One line per model and curve: accuracy over the curve's `epsilon` (the budget).
/// curves[mi] are model mi's curves; `names` every curve name, in legend order.
inline std::string curve_chart(const std::vector<model_evaluation>& models,
                               const std::vector<std::vector<eps_curve>>& curves,
                               const std::vector<std::string>& names, const curve_chart_text& text) {
    const std::vector<std::string>& attacks = names;
    std::vector<series> all;
    double max_eps = 0;
    for (std::size_t mi = 0; mi < models.size(); ++mi) {
        for (const auto& c : curves[mi]) {
            const auto ai = static_cast<std::size_t>(
                std::find(attacks.begin(), attacks.end(), c.attack) - attacks.begin());
            all.push_back({mi, ai, &c});
            if (!c.epsilon.empty()) max_eps = std::max(max_eps, c.epsilon.back());
        }
    }
    // With one model, colour tells the attacks apart too.
    const bool colour_by_attack = models.size() == 1;
    auto series_colour = [&](const series& s) {
        return colour(colour_by_attack ? s.attack : s.model);
    };
    auto series_label = [&](const series& s) {
        return models[s.model].model + " \xC2\xB7 " + s.curve->attack;
    };

    // Layout: plot on the left, legend on the right.
    const double legend_font = 13, row = 22, sample = 40;
    double legend_text = text_width(text.legend_heading, legend_font);
    for (const auto& s : all)
        legend_text = std::max(legend_text, text_width(series_label(s), legend_font));
    const double legend_w = 12 + sample + 10 + legend_text + 12;
    const double legend_h = 10 + row * static_cast<double>(all.size() + 1) + 4;
    const double left = 78, top = 80, plot_w = 520;
    const double plot_h = std::max(320.0, legend_h);
    const double right = left + plot_w, bottom = top + plot_h;
    const std::string& title = text.title;
    const std::string subtitle =
        text.subtitle + (sample_note(models).empty() ? "" : " (" + sample_note(models) + ")");
    const double width = std::max(right + 28 + legend_w + 20, heading_width(left, title, subtitle));
    const double height = bottom + 64;

    svg_document svg(width, height);
    chart_heading(svg, left, title, subtitle);

    // Axes and grid.
    std::vector<double> all_eps;
    for (const auto& s : all)
        all_eps.insert(all_eps.end(), s.curve->epsilon.begin(), s.curve->epsilon.end());
    const eps_axis xt = make_eps_axis(all_eps, max_eps);
    const double x_end = xt.end;
    auto px = [&](double eps) { return left + plot_w * eps / x_end; };
    auto py = [&](double acc) { return bottom - plot_h * acc; };
    svg.open_group("class=\"grid\"");
    accuracy_axis(svg, left, right, top, bottom);
    for (std::size_t i = 0; i < xt.at.size(); ++i) {
        const double x = px(xt.at[i]);
        if (xt.at[i] > 0) svg.line(x, top, x, bottom, grid_colour, 1);
        svg.line(x, bottom, x, bottom + 4, ink, 1);
        svg.text(x, bottom + 20, xt.labels[i], {.size = 12, .anchor = "middle", .fill = muted});
    }
    svg.line(left, top, left, bottom, ink, 1.2);
    svg.line(left, bottom, right, bottom, ink, 1.2);
    svg.text((left + right) / 2, bottom + 46, text.x_label, {.size = 14, .anchor = "middle"});
    svg.close_group();

    if (all.empty()) {
        svg.text((left + right) / 2, (top + bottom) / 2, text.empty,
                 {.size = 15, .anchor = "middle", .fill = muted});
    }

    // Lines first, then markers on top of every line.
    for (const auto& s : all) {
        svg.open_group("class=\"series\"", series_label(s));
        std::vector<std::pair<double, double>> segment;
        auto flush = [&] {
            if (segment.size() >= 2) svg.polyline(segment, series_colour(s), 2.4, dash(s.attack));
            segment.clear();
        };
        for (std::size_t i = 0; i < s.curve->epsilon.size(); ++i) {
            const double a = s.curve->accuracy[i];
            if (std::isnan(a)) {
                flush();
                continue;
            }
            segment.emplace_back(px(s.curve->epsilon[i]), py(a));
        }
        flush();
        svg.close_group();
    }
    for (const auto& s : all) {
        svg.open_group("class=\"points\"");
        for (std::size_t i = 0; i < s.curve->epsilon.size(); ++i) {
            const double a = s.curve->accuracy[i], e = s.curve->epsilon[i];
            if (std::isnan(a)) continue;
            svg.point(
                marker_for(s.model), px(e), py(a), 4.2, series_colour(s),
                series_label(s) + ": " + text.point_prefix + format_epsilon(e) + ", accuracy " + percent(a));
        }
        svg.close_group();
    }

    // Legend.
    const double lx = right + 28, ly = top;
    svg.open_group("class=\"legend\"");
    svg.rect(lx, ly, legend_w, legend_h, "#ffffff", "stroke=\"#cccccc\" rx=\"4\"");
    svg.text(lx + 12, ly + 10 + row / 2, text.legend_heading,
             {.size = legend_font, .bold = true, .centre_vertically = true});
    for (std::size_t i = 0; i < all.size(); ++i) {
        const double y = ly + 10 + row * static_cast<double>(i + 1) + row / 2;
        svg.line(lx + 12, y, lx + 12 + sample, y, series_colour(all[i]), 2.4, dash(all[i].attack));
        svg.point(marker_for(all[i].model), lx + 12 + sample / 2, y, 4.2, series_colour(all[i]));
        svg.text(lx + 12 + sample + 10, y, series_label(all[i]),
                 {.size = legend_font, .centre_vertically = true});
    }
    svg.close_group();
    return svg.str(text.svg_title, text.svg_description);
}

}  // namespace detail::report

inline std::string accuracy_vs_eps_svg(const std::vector<model_evaluation>& models,
                                       const report_options& options) {
    using namespace detail::report;
    check_models("accuracy_vs_eps_svg", models, options);
    std::vector<std::vector<eps_curve>> curves;
    for (const auto& m : models) curves.push_back(m.curves);
    std::string subtitle = "Accuracy versus perturbation budget \xCE\xB5, one line per model and attack";
    for (const std::string& note : subset_notes(models)) subtitle += "; " + note;
    return curve_chart(models, curves, attack_names(models),
                       {.title = "Accuracy under attack",
                        .subtitle = subtitle,
                        .x_label = "\xCE\xB5 (perturbation budget, input units)",
                        .legend_heading = "model \xC2\xB7 attack",
                        .point_prefix = "\xCE\xB5 = ",
                        .svg_title = options.title() + ": accuracy under attack",
                        .svg_description = "Line chart of accuracy versus epsilon for each model and attack.",
                        .empty = "no attack was evaluated"});
}

inline std::string worst_case_svg(const std::vector<model_evaluation>& models,
                                  const report_options& options, const std::string& family) {
    using namespace detail::report;
    check_models("worst_case_svg", models, options);
    std::vector<std::vector<eps_curve>> curves(models.size());
    std::string parameter;
    for (std::size_t mi = 0; mi < models.size(); ++mi) {
        for (const auto& f : models[mi].families) {
            if (f.family != family) continue;
            eps_curve c;
            c.attack = f.family;
            c.epsilon = f.budget;
            c.accuracy = f.accuracy;
            curves[mi].push_back(std::move(c));
            parameter = f.parameter;
        }
    }
    return curve_chart(models, curves, {family},
                       {.title = "Worst case: " + family,
                        .subtitle = "Accuracy under the worst " + family + " within each budget, one line per model",
                        .x_label = "budget (" + parameter + ")",
                        .legend_heading = "model \xC2\xB7 family",
                        .point_prefix = "budget ",
                        .svg_title = options.title() + ": worst-case " + family,
                        .svg_description = "Line chart of accuracy under the worst " + family +
                                           " versus its budget for each model.",
                        .empty = "no model measured " + family});
}

inline std::string corruptions_svg(const std::vector<model_evaluation>& models,
                                   const report_options& options) {
    using namespace detail;
    using namespace detail::report;
    check_models("corruptions_svg", models, options);
    const std::vector<std::string> names = corruption_names(models);
    const std::size_t nm = models.size();
    const bool with_mean = !names.empty();
    const std::size_t groups = names.size() + (with_mean ? 1 : 0);

    // Bar geometry and the room the rotated labels need.
    // Bars as wide as the plot allows, up to 34 pixels; a few groups spread over the minimum
    // plot width rather than bunching in its middle.
    const double nmd = static_cast<double>(nm),
                 ngd = static_cast<double>(std::max<std::size_t>(groups, 1));
    const double narrow = nm <= 2 ? 22 : (nm <= 4 ? 15 : 10);
    const double plot_w = std::max(420.0, ngd * (nmd * narrow + std::max(16.0, narrow)));
    const double group_w = plot_w / ngd;
    const double bar_w = std::min(34.0, (group_w - std::max(16.0, narrow)) / nmd);
    const double gap = group_w - nmd * bar_w;
    const double label_font = 13, angle = 40;
    const double sin_a = std::sin(angle * std::numbers::pi / 180);
    std::vector<std::string> labels;
    for (const auto& n : names) {
        std::string l = n;
        std::replace(l.begin(), l.end(), '_', ' ');
        labels.push_back(l);
    }
    if (with_mean) labels.push_back("mean of all");
    double longest = 0;
    for (const auto& l : labels) longest = std::max(longest, text_width(l, label_font));

    // Legend: per model a bar swatch with its name and a dashed line with its clean accuracy.
    const double legend_font = 13, row = 21, sample = 30;
    double legend_text = 0;
    std::vector<std::string> clean_labels;
    for (const auto& m : models) {
        legend_text = std::max(legend_text, text_width(m.model, legend_font));
        clean_labels.push_back("clean " + percent(m.clean_accuracy));
        legend_text = std::max(legend_text, text_width(clean_labels.back(), legend_font));
    }
    const double legend_w = 12 + sample + 10 + legend_text + 12;
    const double legend_h = 8 + static_cast<double>(nm) * (2 * row + 6) + 2;
    const double left = 78, top = 80;
    const double plot_h = std::max(300.0, legend_h);
    const double right = left + plot_w, bottom = top + plot_h;
    const double label_drop =
        longest * sin_a + label_font * std::cos(angle * std::numbers::pi / 180);
    const std::string title = "Accuracy under common corruptions";
    const std::string subtitle =
        "Mean accuracy over severities 1\xE2\x80\x93"
        "5 per corruption; dashed lines: clean accuracy" +
        (sample_note(models).empty() ? "" : " (" + sample_note(models) + ")");
    const double width = std::max(right + 28 + legend_w + 20, heading_width(left, title, subtitle));
    const double height = bottom + 14 + label_drop + 12;

    svg_document svg(width, height);
    chart_heading(svg, left, title, subtitle);
    svg.open_group("class=\"grid\"");
    accuracy_axis(svg, left, right, top, bottom);
    svg.close_group();

    auto py = [&](double acc) { return bottom - plot_h * acc; };
    if (!with_mean) {
        svg.text((left + right) / 2, (top + bottom) / 2, "no corruption was evaluated",
                 {.size = 15, .anchor = "middle", .fill = muted});
    }
    const double x0 = left + (plot_w - static_cast<double>(groups) * group_w) / 2;
    const bool value_labels = bar_w >= 20;
    for (std::size_t g = 0; g < groups; ++g) {
        const double gx = x0 + static_cast<double>(g) * group_w + gap / 2;
        const bool mean_group = with_mean && g == names.size();
        if (mean_group) {
            const double sep = gx - gap / 2;
            svg.line(sep, top, sep, bottom, "#999999", 1, "3 3");
        }
        svg.open_group("class=\"group\"", labels[g]);
        for (std::size_t mi = 0; mi < nm; ++mi) {
            double a = std::nan("");
            if (mean_group) {
                a = models[mi].mean_corruption_accuracy;
            } else {
                for (const auto& c : models[mi].corruptions) {
                    if (c.name == names[g]) a = c.mean_accuracy;
                }
            }
            const double bx = gx + static_cast<double>(mi) * bar_w;
            if (std::isnan(a)) continue;
            svg.rect(bx + 1, py(a), bar_w - 2, bottom - py(a), colour(mi), {},
                     models[mi].model + ", " + labels[g] + ": " + percent(a));
            if (value_labels) {
                svg.text(bx + bar_w / 2, py(a) - 4, fixed(std::round(a * 100), 0),
                         {.size = 10, .anchor = "middle", .fill = muted});
            }
        }
        svg.close_group();
        const double cx = gx + static_cast<double>(nm) * bar_w / 2;
        svg.line(cx, bottom, cx, bottom + 4, ink, 1);
        svg.text(cx + 4, bottom + 14, labels[g],
                 {.size = label_font, .anchor = "end", .bold = mean_group, .rotate = -angle});
    }
    // Reference lines over the bars, so that no bar hides them.
    for (std::size_t mi = 0; mi < nm; ++mi) {
        const double a = models[mi].clean_accuracy;
        if (std::isnan(a)) continue;
        svg.open_group("class=\"clean\"", models[mi].model + ": " + clean_labels[mi]);
        svg.line(left, py(a), right, py(a), colour(mi), 1.8, "7 4");
        svg.close_group();
    }
    svg.line(left, top, left, bottom, ink, 1.2);
    svg.line(left, bottom, right, bottom, ink, 1.2);

    const double lx = right + 28, ly = top;
    svg.open_group("class=\"legend\"");
    svg.rect(lx, ly, legend_w, legend_h, "#ffffff", "stroke=\"#cccccc\" rx=\"4\"");
    for (std::size_t mi = 0; mi < nm; ++mi) {
        const double y = ly + 8 + static_cast<double>(mi) * (2 * row + 6) + row / 2;
        svg.rect(lx + 12 + sample / 2 - 7, y - 7, 14, 14, colour(mi));
        svg.text(lx + 12 + sample + 10, y, models[mi].model,
                 {.size = legend_font, .bold = true, .centre_vertically = true});
        svg.line(lx + 12, y + row, lx + 12 + sample, y + row, colour(mi), 1.8, "7 4");
        svg.text(lx + 12 + sample + 10, y + row, clean_labels[mi],
                 {.size = legend_font, .fill = muted, .centre_vertically = true});
    }
    svg.close_group();
    return svg.str(options.title() + ": accuracy under common corruptions",
                   "Grouped bar chart of mean accuracy per corruption, one bar per model, with "
                   "each model's clean accuracy as a dashed line.");
}

namespace detail::report {

/// ColorBrewer's sequential "Blues", interpolated: t = 0 white-ish, t = 1 dark blue.
inline std::string blues(double t) {
    static constexpr unsigned stops[] = {0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6,
                                         0x4292c6, 0x2171b5, 0x08519c, 0x08306b};
    constexpr std::size_t n = sizeof(stops) / sizeof(stops[0]);
    t = std::clamp(std::isnan(t) ? 0.0 : t, 0.0, 1.0) * static_cast<double>(n - 1);
    const auto i = std::min(static_cast<std::size_t>(t), n - 2);
    const double f = t - static_cast<double>(i);
    char buf[8];
    int rgb[3];
    for (int c = 0; c < 3; ++c) {
        const int shift = 16 - 8 * c;
        const double a = (stops[i] >> shift) & 0xff, b = (stops[i + 1] >> shift) & 0xff;
        rgb[c] = static_cast<int>(std::lround(a + (b - a) * f));
    }
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
    return buf;
}

}  // namespace detail::report

inline std::string confusion_svg(const model_evaluation& model, const report_options& options) {
    using namespace detail;
    using namespace detail::report;
    const char* fn = "confusion_svg";
    report_options checked = options;
    checked.table_attacks({});
    check_models(fn, {model}, checked);
    const std::size_t k = model.confusion.size();
    if (k == 0) detail::invalid(fn, "model '", model.model, "' has no confusion matrix");

    const double cell = std::clamp(std::floor(420.0 / static_cast<double>(k)), 14.0, 56.0);
    const double grid = cell * static_cast<double>(k);
    const double font = 12;
    double label_w = 0;
    for (std::size_t c = 0; c < k; ++c)
        label_w = std::max(label_w, text_width(class_label(options, c), font));
    const bool rotate_columns = label_w > cell - 4;
    const bool every_label = cell >= font + 2;  // else every other label, to keep them apart
    const double left = 40 + label_w + 10, top = 80;
    const double column_drop = rotate_columns ? label_w * 0.71 + font : font + 4;
    const double bottom = top + grid;
    const double bar_x = left + grid + 24;
    const std::string title = "Confusion matrix: " + model.model;
    const std::string subtitle =
        "Colour: share of each true class" +
        (model.samples ? " (n = " + std::to_string(model.samples) + ")" : std::string());
    const double width = std::max(bar_x + 14 + 56, heading_width(left, title, subtitle));
    const double height = bottom + 10 + column_drop + 36;

    svg_document svg(width, height);
    chart_heading(svg, left, title, subtitle);

    std::vector<std::uint64_t> row_total(k, 0);
    for (std::size_t r = 0; r < k; ++r) {
        for (std::size_t c = 0; c < k; ++c) {
            row_total[r] += model.confusion[r][c];
        }
    }
    const double count_font = std::min(12.0, std::floor(cell * 0.34));
    svg.open_group("class=\"cells\"");
    for (std::size_t r = 0; r < k; ++r) {
        for (std::size_t c = 0; c < k; ++c) {
            const std::uint64_t n = model.confusion[r][c];
            const double share =
                row_total[r] ? static_cast<double>(n) / static_cast<double>(row_total[r]) : 0.0;
            const double x = left + cell * static_cast<double>(c),
                         y = top + cell * static_cast<double>(r);
            svg.rect(x, y, cell, cell, blues(share), "stroke=\"#ffffff\" stroke-width=\"1\"",
                     "true " + class_label(options, r) + ", predicted " + class_label(options, c) +
                         ": " + std::to_string(n) + " (" + percent(share) + " of the class)");
            const std::string text = std::to_string(n);
            if (cell >= 22 && text_width(text, count_font) <= cell - 4) {
                svg.text(x + cell / 2, y + cell / 2, text,
                         {.size = count_font,
                          .anchor = "middle",
                          .fill = share > 0.5 ? "#ffffff" : ink,
                          .centre_vertically = true});
            }
        }
    }
    svg.close_group();
    svg.rect(left, top, grid, grid, "none", "stroke=\"#888888\" stroke-width=\"1\"");

    // Class labels: rows on the left, columns below.
    for (std::size_t c = 0; c < k; ++c) {
        if (!every_label && c % 2 == 1) continue;
        const double mid = cell * (static_cast<double>(c) + 0.5);
        svg.text(left - 6, top + mid, class_label(options, c),
                 {.size = font, .anchor = "end", .fill = muted, .centre_vertically = true});
        if (rotate_columns) {
            svg.text(left + mid + 4, bottom + 10, class_label(options, c),
                     {.size = font, .anchor = "end", .fill = muted, .rotate = -45});
        } else {
            svg.text(left + mid, bottom + 18, class_label(options, c),
                     {.size = font, .anchor = "middle", .fill = muted});
        }
    }
    svg.text(22, top + grid / 2, "true class",
             {.size = 14, .anchor = "middle", .rotate = -90, .centre_vertically = true});
    svg.text(left + grid / 2, bottom + 10 + column_drop + 22, "predicted class",
             {.size = 14, .anchor = "middle"});

    // Colour bar.
    svg.open_group("class=\"colour-bar\"");
    const int steps = 50;
    for (int i = 0; i < steps; ++i) {
        const double t0 = static_cast<double>(i) / steps;
        svg.rect(bar_x, bottom - grid * (t0 + 1.0 / steps), 14, grid / steps + 0.5,
                 blues(t0 + 0.5 / steps));
    }
    svg.rect(bar_x, top, 14, grid, "none", "stroke=\"#888888\" stroke-width=\"1\"");
    for (int p = 0; p <= 100; p += 25) {
        const double y = bottom - grid * p / 100.0;
        svg.line(bar_x + 14, y, bar_x + 18, y, ink, 1);
        svg.text(bar_x + 21, y, std::to_string(p) + "%",
                 {.size = 11, .fill = muted, .centre_vertically = true});
    }
    svg.close_group();
    return svg.str(options.title() + ": confusion matrix of " + model.model,
                   "Heat map of the confusion matrix, rows true classes, columns predictions.");
}

}  // namespace advaug
