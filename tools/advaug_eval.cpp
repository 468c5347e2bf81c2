// advaug-eval: the robustness report of a saved model, from the command line.
//
//   advaug-eval --model fgsm-rs.npz --baseline plain.npz --out report
//
// reads a model file (written by advaug::io::save_model or examples/pytorch_interop.py),
// evaluates it on a test set with advaug::evaluate_robustness (clean accuracy, per-class
// accuracy and confusion matrix, accuracy-versus-epsilon curves under FGSM and PGD, accuracy
// under image corruptions) and writes the report of report/report.hpp into --out. A second
// model given with --baseline is evaluated the same way, on the same samples with the same
// random numbers; it is the reference of the relative mCE and appears beside the first model.
// Further models given with --compare (repeatable) are evaluated and shown the same way, between
// the first model and the baseline (scripts/demo.sh compares three).
//
// The model must be one of advaug's bundled architectures: a stack of dense layers of any
// widths with ReLU (advaug's mlp<float>) or tanh between them, or the cnn<float> with or
// without batch norm. The architecture comes from the file's "__advaug__.architecture"
// metadata (model.describe()), or from --arch and --activation.
//
// The test data is Fashion-MNIST-style IDX (the default: the Fashion-MNIST test set), float32
// .npy arrays, or a numeric CSV table with the label in its last column. Pixels are in [0, 1]
// and epsilons in those units; CSV features must lie in --domain (default [0, 1]), and
// epsilons are in the features' own units (see docs/advaug_eval.md).
//
// Every mistake is reported as one line on stderr, "advaug-eval: <message>", with exit
// status 2 for a command-line mistake and 1 for anything found while reading (a file that
// cannot be read, a model that does not fit the data). Everything is checked before the
// first evaluation starts. See docs/advaug_eval.md.

#include <CLI/CLI.hpp>
#include <advaug/advaug.hpp>

#include "cli_validators.hpp"

// xtensor's .npy reader, included as io/npz.hpp includes it (its folder moved in 0.26).
#if __has_include(<xtensor/io/xnpy.hpp>)
#include <xtensor/io/xnpy.hpp>
#else
#include <xtensor/xnpy.hpp>
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <limits>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace {

namespace fs = std::filesystem;
// Message text: the parts streamed one after another, numbers with 17 significant digits.
template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    out.precision(17);
    (out << ... << parts);
    return out.str();
}

// The shortest text that reads back as exactly `v` ("0.1", "1e-05", "3").
std::string format_shortest(double v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

// A shape as "[a, b, c]".
template <class Shape>
std::string shape_string(const Shape& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < std::size(shape); ++i) {
        out += (i ? ", " : "") + std::to_string(shape[i]);
    }
    return out + "]";
}
using clock_type = std::chrono::steady_clock;

constexpr const char* program = "advaug-eval";

// A command-line mistake: exit status 2.
struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// A mistake found while running (a file, a model that does not fit the data): exit status 1.
struct runtime_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

struct settings {
    std::string model_path;
    std::string arch;        // empty: from the file
    std::string activation;  // empty: from the file
    std::string data_path = advaug::default_fashion_mnist_dir();
    std::string format;  // empty: from the path
    std::string labels_path;
    bool csv_header = false;
    std::optional<std::string> domain_text;  // CSV only; unset: [0, 1]
    std::optional<std::size_t> samples;
    std::string attacks_text = "fgsm,pgd";
    std::optional<std::size_t> autoattack_samples;  // unset: AutoAttack on every sample
    std::string eps_text = "0,0.05,0.1,0.2";
    std::size_t pgd_steps = 20;
    std::optional<std::string> corruptions_text;  // unset: all for images, none for tables
    std::string families_text;                    // empty: none
    std::string baseline_path;
    std::vector<std::string> compare_paths;
    std::string label;
    std::string class_names_text;
    std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
    std::uint64_t seed = 0;
    double progress_seconds = 5;
    std::size_t examples = 0;
    std::string out_dir;

    // Derived from the text options by finish_settings().
    std::vector<double> epsilons;
    std::vector<advaug::attack_spec> attacks;
    std::vector<std::string> class_names;
    std::vector<advaug::corruption> corruptions;
    std::vector<std::pair<advaug::natural_family, std::vector<double>>> families;
    double domain_lo = 0, domain_hi = 1;  // of CSV features; +-inf for --domain unbounded
};

using advaug_cli::regular_file, advaug_cli::whole_number;

void declare_options(CLI::App& app, settings& s) {
    app.add_option("--model", s.model_path,
                   "model file (.npz) written by advaug::io::save_model or "
                   "examples/pytorch_interop.py")
        ->required()
        ->check(regular_file(false));
    app.add_option("--arch", s.arch,
                   "architecture of the model: mlp (dense layers of any widths, read from the "
                   "file's arrays; needs --activation), cnn or cnn-bn (default: the file's "
                   "\"__advaug__.architecture\" metadata)")
        ->check(CLI::IsMember({"mlp", "cnn", "cnn-bn"}));
    app.add_option("--activation", s.activation,
                   "activation between the dense layers of an mlp: relu or tanh (default: the "
                   "file's metadata; a file without it is refused unless this is given)")
        ->check(CLI::IsMember({"relu", "tanh"}));
    app.add_option("--data", s.data_path,
                   "test data: a Fashion-MNIST-style IDX directory (its t10k files), an IDX "
                   "images file, a float32 .npy array of pixels in [0, 1] ([N, 784], [N, 28, 28] "
                   "or [N, 1, 28, 28]), or a CSV file of features with the label last")
        ->check(regular_file(true))
        ->capture_default_str();
    app.add_option("--format", s.format,
                   "format of --data: idx, npy or csv (default: idx for a directory, else from "
                   "the file name: .npy, .csv, anything else idx)")
        ->check(CLI::IsMember({"idx", "npy", "csv"}));
    app.add_option("--labels", s.labels_path,
                   "labels for an IDX images file (IDX labels file) or a .npy array (int64 "
                   ".npy of shape [N])")
        ->check(regular_file(false));
    app.add_flag("--csv-header", s.csv_header, "the first line of the CSV file holds column names");
    app.add_option("--domain", s.domain_text,
                   "LO,HI: the range of the model's inputs, for CSV data: every feature must lie "
                   "in it and attacks stay in it; or unbounded (default: 0,1; image pixels are "
                   "always in [0, 1])");
    app.add_option("--samples", s.samples, "evaluate the first N samples only (default: all)")
        ->check(whole_number(1, "POSITIVE"));
    app.add_option("--attacks", s.attacks_text,
                   "comma list of attacks: fgsm, pgd (PGD with --pgd-steps steps and a random "
                   "start), autoattack (AutoAttack's standard version; the report's headline), "
                   "autoattack-plus, autoattack-rand, or none")
        ->capture_default_str();
    app.add_option("--autoattack-samples", s.autoattack_samples,
                   "run AutoAttack on the first N of the evaluated samples only (default: all; "
                   "it takes minutes per thousand samples on a CNN); the report says so, and "
                   "clean accuracy, the other attacks and the corruptions still use every sample")
        ->check(whole_number(1, "POSITIVE"));
    app.add_option("--eps", s.eps_text,
                   "comma list of L-inf attack radii in input units (pixels in [0, 1]); 0 is the "
                   "clean accuracy")
        ->capture_default_str();
    app.add_option("--pgd-steps", s.pgd_steps,
                   "steps of the PGD attack (step size 2.5 eps / steps)")
        ->check(whole_number(1, "POSITIVE"))
        ->capture_default_str();
    app.add_option("--corruptions", s.corruptions_text,
                   "image corruptions at severities 1-5: all, none, or a comma list of names "
                   "(fog,shot_noise,...; see docs/corruptions.md); image data only (default: all "
                   "for images, none for CSV)");
    app.add_option("--families", s.families_text,
                   "worst-case accuracy under natural perturbations, image data only: "
                   "'FAMILY:B1,B2,...;FAMILY:...' with the budgets in the family's unit, e.g. "
                   "'rotation:0,5,10,15;brightness:0,0.1,0.2' (families: rotation, translation, "
                   "scale, shear, brightness, contrast, gamma, blur, displacement; see "
                   "docs/perturbations.md)");
    app.add_option("--baseline", s.baseline_path,
                   "a second model file, evaluated the same way and shown beside the first: "
                   "the reference of the relative mCE; its architecture comes from its own "
                   "metadata")
        ->check(regular_file(false));
    app.add_option("--compare", s.compare_paths,
                   "a further model file, evaluated the same way and shown beside the first "
                   "(repeatable); the baseline's mCE reference too, where --baseline is given")
        ->check(regular_file(false));
    app.add_option("--label", s.label,
                   "name of the model in the report (default: the model file's name without "
                   ".npz)");
    app.add_option("--class-names", s.class_names_text,
                   "comma list of class names, in label order, for the report (default: "
                   "class numbers)");
    app.add_option("--threads", s.threads, "evaluation threads")
        ->check(whole_number(1, "POSITIVE"))
        ->capture_default_str();
    app.add_option("--seed", s.seed, "seed of PGD's random start and of the random corruptions")
        ->check(whole_number(0, ""))
        ->capture_default_str();
    app.add_option("--progress", s.progress_seconds,
                   "print the evaluation's progress (done, rate, time left) at most every "
                   "S seconds (0: never)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--examples", s.examples,
                   "write N adversarial examples (PGD at the largest --eps) as examples.png and "
                   ".npy arrays (0: none)")
        ->check(whole_number(0, ""))
        ->capture_default_str();
    app.add_option("--out", s.out_dir,
                   "folder the report is written to (created if needed; it must be writable)")
        ->required();
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// "a, b,c" -> {"a", "b", "c"}; an empty entry is a usage error naming the option.
std::vector<std::string> split_list(const std::string& text, const char* option) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = text.find(',', start);
        const std::string_view item = trim(std::string_view(text).substr(
            start, comma == std::string::npos ? std::string::npos : comma - start));
        if (item.empty()) {
            throw usage_error(concat(option, " '", text, "' has an empty entry; give a comma list ",
                                     "without blanks, e.g. ", option, " a,b"));
        }
        out.emplace_back(item);
        if (comma == std::string::npos) return out;
        start = comma + 1;
    }
}

std::vector<double> parse_epsilons(const std::string& text) {
    std::vector<double> out;
    std::vector<std::string> items = split_list(text, "--eps");
    for (const std::string& item : items) {
        double value = 0;
        const char* end = item.data() + item.size();
        const auto [ptr, ec] = std::from_chars(item.data(), end, value);
        if (ec != std::errc{} || ptr != end || !std::isfinite(value) || value < 0) {
            throw usage_error("--eps: every epsilon must be a finite number >= 0, got '" + item +
                              "'");
        }
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (out[i] == value) {
                throw usage_error("--eps: " + items[i] + " and " + item + " are the same epsilon");
            }
        }
        out.push_back(value);
    }
    return out;
}

std::vector<advaug::attack_spec> parse_attacks(const std::string& text, std::size_t pgd_steps) {
    std::vector<advaug::attack_spec> out;
    if (trim(text) == "none") return out;
    for (const std::string& item : split_list(text, "--attacks")) {
        if (item == "fgsm") {
            out.push_back(advaug::attack_spec::fgsm());
        } else if (item == "pgd") {
            out.push_back(advaug::attack_spec::pgd(pgd_steps));
        } else if (item == "autoattack") {
            out.push_back(advaug::attack_spec::autoattack());
        } else if (item == "autoattack-plus") {
            out.push_back(advaug::attack_spec::autoattack(advaug::autoattack_version::plus));
        } else if (item == "autoattack-rand") {
            out.push_back(advaug::attack_spec::autoattack(advaug::autoattack_version::rand));
        } else {
            throw usage_error("--attacks: unknown attack '" + item +
                              "'; valid names: fgsm, pgd, autoattack, autoattack-plus, autoattack-rand "
                              "(or none alone)");
        }
    }
    return out;
}

// The corruptions to measure; `images` says whether the data are images.
std::vector<advaug::corruption> corruptions_for(const settings& s, bool images) {
    if (!s.corruptions_text) {
        return images ? advaug::all_corruptions() : std::vector<advaug::corruption>{};
    }
    const std::string text(trim(*s.corruptions_text));
    if (text == "none") return {};
    if (!images) {
        throw usage_error("--corruptions " + text +
                          ": corruptions need image data (--format idx or npy), not a CSV table; "
                          "use --corruptions none");
    }
    if (text == "all") return advaug::all_corruptions();
    std::vector<advaug::corruption> out;
    try {
        for (const std::string& name : split_list(text, "--corruptions")) {
            out.push_back(advaug::parse_corruption(name));
        }
        advaug::evaluation_options{}.corruptions(out);  // refuses a name given twice
    } catch (const std::invalid_argument& e) {
        throw usage_error(std::string("--corruptions: ") + e.what());
    }
    return out;
}

// "rotation:0,5,10;blur:0,1" -> {{rotation, {0, 5, 10}}, {blur, {0, 1}}}; `images` says whether
// the data are images. Every error is a usage error naming --families and the value.
std::vector<std::pair<advaug::natural_family, std::vector<double>>> families_for(const settings& s, bool images) {
    std::vector<std::pair<advaug::natural_family, std::vector<double>>> out;
    const std::string text(trim(s.families_text));
    if (text.empty()) return out;
    if (!images) {
        throw usage_error("--families " + text +
                          ": the perturbation families need image data (--format idx or npy), not a CSV table");
    }
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t semi = std::min(text.find(';', start), text.size());
        const std::string item(trim(std::string_view(text).substr(start, semi - start)));
        start = semi + 1;
        const std::size_t colon = item.find(':');
        if (colon == std::string::npos) {
            throw usage_error("--families: '" + item + "' must be FAMILY:BUDGET,BUDGET,..., e.g. rotation:0,5,10");
        }
        advaug::natural_family f{};
        try {
            f = advaug::parse_natural_family("--families", trim(std::string_view(item).substr(0, colon)));
        } catch (const std::invalid_argument& e) {
            throw usage_error(e.what());
        }
        for (const auto& [g, budgets] : out) {
            if (g == f) throw usage_error(concat("--families: ", advaug::to_string(f), " is given twice"));
        }
        std::vector<double> budgets;
        for (const std::string& b : split_list(item.substr(colon + 1), "--families")) {
            double v = 0;
            const auto [end, ec] = std::from_chars(b.data(), b.data() + b.size(), v);
            if (ec != std::errc() || end != b.data() + b.size() || !std::isfinite(v) || v < 0) {
                throw usage_error(concat("--families: ", advaug::to_string(f), " budget '", b,
                                         "' must be a finite number >= 0"));
            }
            if (std::find(budgets.begin(), budgets.end(), v) != budgets.end()) {
                throw usage_error(concat("--families: ", advaug::to_string(f), " budget ", b, " is given twice"));
            }
            budgets.push_back(v);
        }
        out.emplace_back(f, std::move(budgets));
        if (semi == text.size()) break;
    }
    return out;
}

// "LO,HI" with finite LO < HI, or "unbounded" (-inf, inf).
std::pair<double, double> parse_domain(const std::string& text) {
    if (trim(text) == "unbounded") {
        const double inf = std::numeric_limits<double>::infinity();
        return {-inf, inf};
    }
    const std::vector<std::string> items = split_list(text, "--domain");
    double bounds[2] = {0, 0};
    bool ok = items.size() == 2;
    for (std::size_t i = 0; ok && i < 2; ++i) {
        const char* end = items[i].data() + items[i].size();
        const auto [ptr, ec] = std::from_chars(items[i].data(), end, bounds[i]);
        ok = ec == std::errc{} && ptr == end && std::isfinite(bounds[i]);
    }
    if (!ok || !(bounds[0] < bounds[1])) {
        throw usage_error("--domain '" + text +
                          "' must be LO,HI with finite numbers LO < HI (e.g. 0,1), or unbounded");
    }
    return {bounds[0], bounds[1]};
}

// Checks what can be checked without reading a file. Every mistake is a usage_error.
void finish_settings(const CLI::App& app, settings& s) {
    s.epsilons = parse_epsilons(s.eps_text);
    s.attacks = parse_attacks(s.attacks_text, s.pgd_steps);
    if (s.autoattack_samples) {
        const std::size_t n = *s.autoattack_samples;
        bool any = false;
        for (auto& a : s.attacks) {
            if (a.type() != advaug::attack_spec::kind::autoattack) continue;
            a.samples(n);
            any = true;
        }
        if (!any) {
            throw usage_error(concat("--autoattack-samples ", n, " is given, but --attacks '", s.attacks_text,
                                     "' runs no AutoAttack"));
        }
        if (s.samples && n > *s.samples) {
            throw usage_error(concat("--autoattack-samples ", n, " is more than --samples ", *s.samples,
                                     ", the samples evaluated"));
        }
    }
    if (app.count("--pgd-steps") > 0 &&
        std::none_of(s.attacks.begin(), s.attacks.end(),
                     [](const auto& a) { return a.type() == advaug::attack_spec::kind::pgd; }) &&
        s.examples == 0) {
        throw usage_error("--pgd-steps " + std::to_string(s.pgd_steps) +
                          " is given, but neither --attacks nor --examples runs PGD");
    }
    if (!s.class_names_text.empty()) {
        s.class_names = split_list(s.class_names_text, "--class-names");
    }
    if (app.count("--label") > 0 && s.label.empty()) throw usage_error("--label must not be empty");
    if (s.out_dir.empty()) throw usage_error("--out must not be empty");
    if (s.examples > 0 &&
        (s.epsilons.empty() || *std::max_element(s.epsilons.begin(), s.epsilons.end()) == 0)) {
        throw usage_error(
            "--examples needs an epsilon > 0 in --eps (the examples are made at "
            "the largest one)");
    }
    if (s.samples && s.examples > *s.samples) {
        throw usage_error(concat("--examples ", s.examples, " is more than --samples ", *s.samples,
                                 ", the samples evaluated; the examples are made from the first "
                                 "samples, so give at most --examples ",
                                 *s.samples));
    }
    if (!s.activation.empty() && !s.arch.empty() && s.arch != "mlp") {
        throw usage_error("--activation " + s.activation + " is only for --arch mlp, not --arch " +
                          s.arch);
    }
    // The library's setter names a repeated attack ("fgsm,fgsm").
    try {
        advaug::evaluation_options{}.epsilons(s.epsilons).attacks(s.attacks);
    } catch (const std::invalid_argument& e) {
        throw usage_error(e.what());
    }

    std::error_code ec;
    const bool dir = fs::is_directory(s.data_path, ec);
    if (s.format.empty()) {
        const std::string ext = fs::path(s.data_path).extension().string();
        s.format = dir ? "idx" : ext == ".npy" ? "npy" : ext == ".csv" ? "csv" : "idx";
    }
    if (dir && s.format != "idx") {
        throw usage_error("--data '" + s.data_path + "' is a directory; --format " + s.format +
                          " needs a file");
    }
    if (s.format == "npy" && s.labels_path.empty()) {
        throw usage_error("--format npy needs --labels FILE, an int64 .npy array of the labels");
    }
    if (s.format == "idx" && !dir && s.labels_path.empty()) {
        throw usage_error("--data '" + s.data_path +
                          "' is an IDX images file; give its labels with --labels FILE");
    }
    if ((s.format == "csv" || (s.format == "idx" && dir)) && !s.labels_path.empty()) {
        throw usage_error("--labels is only for an IDX images file or a .npy array; " +
                          std::string(s.format == "csv" ? "CSV data has its labels in the last "
                                                          "column"
                                                        : "a directory has its own label file"));
    }
    if (s.csv_header && s.format != "csv") {
        throw usage_error("--csv-header is only for --format csv, not " + s.format);
    }
    if (s.domain_text) {
        if (s.format != "csv") {
            throw usage_error("--domain " + *s.domain_text + " is only for --format csv; " +
                              s.format + " data are pixels in [0, 1]");
        }
        std::tie(s.domain_lo, s.domain_hi) = parse_domain(*s.domain_text);
    }
    s.corruptions = corruptions_for(s, s.format != "csv");
    s.families = families_for(s, s.format != "csv");
    if (!s.class_names.empty()) {
        try {
            advaug::report_options{}.class_names(s.class_names);
        } catch (const std::invalid_argument& e) {
            throw usage_error(e.what());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The data
// ---------------------------------------------------------------------------------------------

// Test samples as float rows, whatever the file format.
struct test_data {
    std::vector<float> features;  // [n, width], row-major
    advaug::label_vector labels;  // [n]
    std::size_t n = 0, width = 0;
    std::size_t height_px = 0, width_px = 0;  // image size; 0 for a table
    std::string source;                       // the file, for messages
    std::string name;                         // for the report's title

    bool images() const { return height_px != 0; }
};

// Pixels are in [0, 1]; a table's features in --domain (default [0, 1]).
advaug::input_domain domain_of(const settings& s, const test_data& d) {
    if (d.images()) return advaug::input_domain{};
    return advaug::input_domain{}.bounds(s.domain_lo, s.domain_hi);
}

std::string interval(double lo, double hi) {
    return "[" + format_shortest(lo) + ", " + format_shortest(hi) + "]";
}

// Refuses data outside the model's input domain before anything is evaluated: raw 0..255
// pixels given to a model of [0, 1] inputs would be attacked and scored in the wrong units
// (and look robust, since an epsilon of 0.1 barely moves them).
void check_data_in_domain(const settings& s, const test_data& d) {
    float lo = std::numeric_limits<float>::infinity();
    float hi = -lo;
    for (std::size_t i = 0; i < d.n * d.width; ++i) {
        const float v = d.features[i];
        if (!std::isfinite(v)) {
            throw runtime_error(concat("--data '", d.source, "' has the value ", format_shortest(v),
                                       " at sample ", i / d.width, ", feature ", i % d.width,
                                       "; every input must be a finite number"));
        }
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    if (d.n == 0 || (lo >= s.domain_lo && hi <= s.domain_hi)) return;
    if (d.images()) {
        throw runtime_error(concat("--data '", d.source, "' has pixels in ", interval(lo, hi),
                                   "; pixels must be in [0, 1]: scale the data (e.g. 0..255 "
                                   "pixels / 255)"));
    }
    throw runtime_error(concat(
        "--data '", d.source, "' has features in ", interval(lo, hi),
        ", outside the model's input domain ", interval(s.domain_lo, s.domain_hi),
        s.domain_text ? " (--domain)" : " (the default of --domain)",
        "; scale the data into it (e.g. 0..255 pixels / 255), or give the domain the model was "
        "trained on with --domain LO,HI (--domain unbounded for features without bounds)"));
}

// The first `count` samples (usage_error if there are fewer).
void keep_first(test_data& d, std::optional<std::size_t> count) {
    if (!count) return;
    if (*count > d.n) {
        throw usage_error(concat("--samples ", *count, " is more than the ", d.n, " samples in '",
                                 d.source, "'"));
    }
    d.n = *count;
    d.features.resize(d.n * d.width);
    d.labels = xt::eval(xt::view(d.labels, xt::range(0, static_cast<std::ptrdiff_t>(d.n))));
}

test_data from_idx_images(const advaug::tensor<std::uint8_t, 3>& images,
                          const advaug::label_vector& labels, const std::string& images_path,
                          const std::string& labels_path) {
    if (images.shape(0) != labels.size()) {
        throw runtime_error(concat("'", images_path, "' has ", images.shape(0), " images but '",
                                   labels_path, "' has ", labels.size(), " labels"));
    }
    test_data d;
    d.n = images.shape(0);
    d.height_px = images.shape(1);
    d.width_px = images.shape(2);
    d.width = d.height_px * d.width_px;
    d.features.resize(images.size());
    // pixel / 255 computed in double and rounded once, as dataset<std::uint8_t> converts.
    for (std::size_t i = 0; i < images.size(); ++i) {
        d.features[i] = static_cast<float>(static_cast<double>(images.data()[i]) * (1.0 / 255.0));
    }
    d.labels = labels;
    d.source = images_path;
    return d;
}

// The .npy file at `path` as T, read by advaug's bounds-checked reader.
template <class T>
xt::xarray<T> read_npy(const std::string& path, const char* option, const char* expected) {
    advaug::io::npz_array a;
    try {
        a = advaug::io::read_npy(path);
    } catch (const advaug::io_error& e) {
        throw runtime_error(concat(option, ": ", e.what()));
    }
    if (a.dtype != advaug::io::npy_dtype<T>()) {
        throw runtime_error(concat(option, " '", path, "' has dtype '", a.dtype, "' and shape ",
                                   shape_string(a.shape), "; expected ", expected));
    }
    xt::xarray<T> out = xt::xarray<T>::from_shape(a.shape);
    if (!a.data.empty()) std::memcpy(out.data(), a.data.data(), a.data.size());
    return out;
}

test_data read_npy_data(const settings& s) {
    const char* x_expected = "float32 ('<f4') of shape [N, 784], [N, 28, 28] or [N, 1, 28, 28]";
    const xt::xarray<float> x = read_npy<float>(s.data_path, "--data", x_expected);
    const xt::xarray<std::int64_t> y =
        read_npy<std::int64_t>(s.labels_path, "--labels", "int64 ('<i8') of shape [N]");
    const auto& xs = x.shape();
    const bool flat = xs.size() == 2 && xs[1] == 784;
    const bool square = xs.size() == 3 && xs[1] == 28 && xs[2] == 28;
    const bool nchw = xs.size() == 4 && xs[1] == 1 && xs[2] == 28 && xs[3] == 28;
    if ((!flat && !square && !nchw) || xs[0] == 0) {
        throw runtime_error(concat("--data '", s.data_path, "' has shape ", shape_string(xs),
                                   "; expected ", x_expected, " with N >= 1"));
    }
    if (y.dimension() != 1 || y.shape()[0] != xs[0]) {
        throw runtime_error(concat("--labels '", s.labels_path, "' has shape ",
                                   shape_string(y.shape()), "; expected [", xs[0],
                                   "], one label per sample of --data"));
    }
    test_data d;
    d.n = xs[0];
    d.width = 784;
    d.height_px = d.width_px = 28;
    d.features.assign(x.data(), x.data() + x.size());
    d.labels = advaug::label_vector::from_shape({d.n});
    std::copy(y.data(), y.data() + d.n, d.labels.data());
    d.source = s.data_path;
    return d;
}

test_data read_csv_data(const settings& s) {
    // NaN and infinity are read, and refused below with advice the command line can follow
    // (the reader's own message names a C++ option).
    const auto options = advaug::csv_options{}.allow_non_finite(true);
    advaug::csv_table t;
    try {
        t = advaug::read_csv(s.data_path, advaug::csv_options(options).has_header(s.csv_header));
    } catch (const advaug::io_error& e) {
        // --csv-header is suggested only where it helps: when the file reads with it, the
        // first line was the problem; an error further down is not about a header.
        bool header_helps = false;
        if (!s.csv_header) {
            try {
                advaug::read_csv(s.data_path, advaug::csv_options(options).has_header(true));
                header_helps = true;
            } catch (const advaug::io_error&) {
            }
        }
        throw runtime_error(std::string(e.what()) +
                            (header_helps ? " (the first line looks like column names: add "
                                            "--csv-header)"
                                          : ""));
    }
    if (t.columns < 2) {
        throw runtime_error(concat("--data '", s.data_path, "' has ", t.columns,
                                   " column; it needs features and a label in the last column"));
    }
    test_data d;
    d.n = t.rows;
    d.width = t.columns - 1;
    d.features.resize(d.n * d.width);
    d.labels = advaug::label_vector::from_shape({d.n});
    for (std::size_t r = 0; r < t.rows; ++r) {
        for (std::size_t c = 0; c < d.width; ++c) {
            const double v = t(r, c);
            if (!std::isfinite(v)) {
                throw runtime_error(concat("--data '", s.data_path, "' line ", t.lines[r],
                                           ", column ", c + 1, ": ", format_shortest(v),
                                           " is not a finite number; advaug-eval needs a value "
                                           "in every cell: fill in or drop the missing values"));
            }
            if (std::abs(v) > std::numeric_limits<float>::max()) {
                throw runtime_error(concat("--data '", s.data_path, "' line ", t.lines[r],
                                           ", column ", c + 1, ": ", format_shortest(v),
                                           " does not fit a float"));
            }
            d.features[r * d.width + c] = static_cast<float>(v);
        }
        const double label = t(r, d.width);
        if (!(label >= 0 && label < 1e9 && label == std::floor(label))) {
            throw runtime_error(concat(
                "--data '", s.data_path, "' line ", t.lines[r], ", column ", t.columns,
                ": the label must be a class index 0, 1, ..., got ", format_shortest(label)));
        }
        d.labels(r) = static_cast<std::int64_t>(label);
    }
    d.source = s.data_path;
    return d;
}

// `dir`/`name`.gz if it exists, else `dir`/`name` (as load_fashion_mnist() looks for them).
std::string find_test_file(const std::string& dir, const std::string& name) {
    std::error_code ec;
    for (const fs::path& p : {fs::path(dir) / (name + ".gz"), fs::path(dir) / name}) {
        if (fs::is_regular_file(p, ec)) return p.string();
    }
    throw runtime_error("--data '" + dir + "' has neither '" + name + ".gz' nor '" + name +
                        "'; a Fashion-MNIST-style directory holds t10k-images-idx3-ubyte and "
                        "t10k-labels-idx1-ubyte");
}

test_data read_data(const settings& s) {
    test_data d;
    std::error_code ec;
    if (s.format == "idx" && fs::is_directory(s.data_path, ec)) {
        const std::string images = find_test_file(s.data_path, "t10k-images-idx3-ubyte");
        const std::string labels = find_test_file(s.data_path, "t10k-labels-idx1-ubyte");
        d = from_idx_images(advaug::read_idx_images(images), advaug::read_idx_labels(labels),
                            images, labels);
        fs::path dir(s.data_path);
        if (dir.filename().empty()) dir = dir.parent_path();  // "fashion-mnist/"
        d.name = dir.filename().string() + " test images";
    } else if (s.format == "idx") {
        d = from_idx_images(advaug::read_idx_images(s.data_path),
                            advaug::read_idx_labels(s.labels_path), s.data_path, s.labels_path);
    } else if (s.format == "npy") {
        d = read_npy_data(s);
    } else {
        d = read_csv_data(s);
    }
    if (d.name.empty()) d.name = fs::path(d.source).filename().string();
    keep_first(d, s.samples);
    check_data_in_domain(s, d);
    return d;
}

// ---------------------------------------------------------------------------------------------
// The models
// ---------------------------------------------------------------------------------------------

// A dense network (advaug's mlp<float> is the ReLU one) or the cnn.
using model_variant = std::variant<advaug::sequential<float, 2>, advaug::cnn<float>>;

struct loaded_model {
    std::string path;
    std::string label;
    std::string description;  // "mlp 784-256-256-10", "mlp 30-16-2 (tanh)", "cnn", "cnn-bn"
    model_variant net;
};

// The widths and activation of a stack of dense layers.
struct dense_stack {
    std::vector<std::size_t> widths;
    std::string activation;  // "relu" or "tanh"; empty: not known
};

// The widths of a dense file without architecture metadata, from its arrays' shapes:
// "0.weight" [w1, w0], "2.weight" [w2, w1], ...
std::vector<std::size_t> widths_from_arrays(const std::string& path, const char* option) {
    const auto archive = advaug::io::npz_archive::load(path);
    std::vector<std::size_t> widths;
    for (std::size_t layer = 0; archive.contains(concat(layer, ".weight")); layer += 2) {
        const auto& shape = archive.at(concat(layer, ".weight")).shape;
        if (shape.size() != 2 || shape[0] == 0 || shape[1] == 0 ||
            (!widths.empty() && shape[1] != widths.back())) {
            throw runtime_error(concat(option, " '", path, "': array '", layer,
                                       ".weight' has shape ", shape_string(shape),
                                       ", which is not the next dense layer of an mlp"));
        }
        if (widths.empty()) widths.push_back(shape[1]);
        widths.push_back(shape[0]);
    }
    if (widths.empty()) {
        throw runtime_error(
            concat(option, " '", path, "' has no array '0.weight'; it is not an mlp (see --arch)"));
    }
    return widths;
}

std::string dense_description(const dense_stack& d) {
    std::string out = "mlp ";
    for (std::size_t i = 0; i < d.widths.size(); ++i)
        out += (i ? "-" : "") + std::to_string(d.widths[i]);
    return d.activation == "relu" ? out : out + " (" + d.activation + ")";
}

// advaug::mlp<float> with `activation` between the dense layers (its weights are loaded after).
advaug::sequential<float, 2> build_dense(const dense_stack& d) {
    if (d.activation == "relu") return advaug::mlp<float>(d.widths);
    advaug::sequential<float, 2> net({d.widths.front()});
    advaug::rng gen(0);
    for (std::size_t l = 0; l + 1 < d.widths.size(); ++l) {
        if (l > 0) net.add(advaug::tanh_layer<float, 2>{});
        net.add(advaug::dense<float>(d.widths[l], d.widths[l + 1], gen));
    }
    return net;
}

// Refuses widths whose parameters could not fit in the file (4 bytes per float), so that a
// corrupt or hostile description never makes us allocate a huge model.
void check_size(const std::string& path, const char* option, const dense_stack& d) {
    const auto bytes = static_cast<double>(fs::file_size(path));
    double params = 0;
    for (std::size_t i = 0; i + 1 < d.widths.size(); ++i) {
        params += (static_cast<double>(d.widths[i]) + 1) * static_cast<double>(d.widths[i + 1]);
    }
    if (4 * params > bytes) {
        throw runtime_error(concat(option, " '", path, "' describes an ", dense_description(d),
                                   " with ", format_shortest(params), " parameters, more than its ",
                                   format_shortest(bytes), " bytes can hold"));
    }
}

// The model in `path`, given as `option` (--model or --baseline). `arch` and `activation`
// are what the command line states (empty: the file's metadata decides); a stated value that
// contradicts the metadata is refused.
loaded_model load(const std::string& path, const char* option, const std::string& arch,
                  const std::string& activation, const std::string& label) {
    // The file's "__advaug__.architecture" metadata, classified by the library.
    const advaug::io::architecture_info info = advaug::io::read_architecture(path);
    const std::string& stored = info.description;
    const std::string shown = stored.size() > 160 ? stored.substr(0, 160) + "..." : stored;
    const bool is_model = std::string_view(option) == "--model";

    std::string kind = arch;
    std::optional<dense_stack> dense;
    if (info.kind == advaug::io::architecture_kind::mlp) dense = dense_stack{info.widths, info.activation};
    if (kind.empty()) {
        if (stored.empty()) {
            throw runtime_error(
                concat(option, " '", path, "' has no \"__advaug__.architecture\" metadata",
                       is_model ? "; name its architecture with --arch mlp --activation relu|tanh, "
                                  "--arch cnn or --arch cnn-bn"
                                : "; advaug-eval takes a baseline's architecture from its own file "
                                  "only: save it with advaug::io::save_model"));
        }
        if (info.kind == advaug::io::architecture_kind::mlp || info.kind == advaug::io::architecture_kind::cnn ||
            info.kind == advaug::io::architecture_kind::cnn_bn) {
            kind = advaug::io::to_string(info.kind);
        }
        if (kind.empty()) {
            throw runtime_error(concat(option, " '", path, "' holds the architecture '", shown,
                                       "', which advaug-eval cannot build; it evaluates dense "
                                       "networks (mlp, any widths, relu or tanh) and advaug's "
                                       "cnn (with or without batch norm)"));
        }
    }
    if (!activation.empty() && kind != "mlp") {
        throw runtime_error(concat("--activation ", activation, ": ", option, " '", path, "' is a ",
                                   kind, ", not an mlp"));
    }

    if (kind == "mlp") {
        if (!dense) {
            if (!stored.empty()) {
                throw runtime_error(concat(option, " '", path, "' is not an mlp (--arch mlp): ",
                                           "it holds '", shown, "'"));
            }
            // A file of io::save_parameters records neither: the widths are in the arrays'
            // shapes, but the activations are nowhere, and a tanh network read as a ReLU one
            // would be scored as a different model.
            if (activation.empty()) {
                throw runtime_error(concat(
                    option, " '", path,
                    "' does not record its activations (no \"__advaug__.architecture\" "
                    "metadata, as io::save_parameters writes it); state them with --activation "
                    "relu or --activation tanh, or save the model with io::save_model"));
            }
            dense = dense_stack{widths_from_arrays(path, option), activation};
        } else if (!activation.empty() && activation != dense->activation) {
            throw runtime_error(concat("--activation ", activation, ": ", option, " '", path,
                                       "' records ", dense->activation, " ('", shown, "')"));
        }
        check_size(path, option, *dense);
        loaded_model m{path, label, dense_description(*dense), build_dense(*dense)};
        advaug::io::load_model(path, std::get<advaug::sequential<float, 2>>(m.net));
        return m;
    }
    loaded_model m{path, label, kind,
                   advaug::cnn<float>(0, advaug::weight_init::he_normal, kind == "cnn-bn")};
    // Names, shapes and dtypes of every array are checked; all or nothing.
    advaug::io::load_model(path, std::get<advaug::cnn<float>>(m.net));
    return m;
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

// The data set `model` takes: flat rows for an mlp, [1, 28, 28] images for the cnn. Every
// mismatch between model and data is a runtime_error naming both.
template <class M>
advaug::dataset<float> dataset_for(const M& model, const loaded_model& m, const test_data& d) {
    const std::string who = "the model '" + m.path + "' (" + m.description + ")";
    const std::string what = d.images() ? concat(d.height_px, "x", d.width_px, " images")
                                        : concat(d.width, " features per sample");
    std::vector<std::size_t> shape;
    if constexpr (M::input_rank == 2) {
        const std::size_t inputs = model.input_shape()[0];
        if (inputs != d.width) {
            throw runtime_error(concat(who, " takes ", inputs, " inputs, but the data '", d.source,
                                       "' has ", what,
                                       d.images() ? concat(" (", d.width, " pixels)") : ""));
        }
        shape = {d.width};
    } else {
        if (d.width != 28 * 28 || (d.images() && d.height_px != 28)) {
            throw runtime_error(
                concat(who, " takes 1x28x28 images, but the data '", d.source, "' has ", what));
        }
        shape = {1, 28, 28};
    }
    const std::size_t classes = model.num_classes();
    for (std::size_t i = 0; i < d.n; ++i) {
        if (d.labels(i) < 0 || static_cast<std::size_t>(d.labels(i)) >= classes) {
            throw runtime_error(concat("sample ", i, " of '", d.source, "' has the label ",
                                       d.labels(i), ", but ", who, " has ", classes,
                                       " classes (labels 0 to ", classes - 1, ")"));
        }
    }
    return advaug::dataset<float>(d.features, shape, d.labels, classes);
}

advaug::evaluation_options evaluation_for(const settings& s, const test_data& d) {
    auto options = advaug::evaluation_options{}
                       .epsilons(s.epsilons)
                       .attacks(s.attacks)
                       .corruptions(s.corruptions)
                       .threads(s.threads)
                       .seed(s.seed)
                       .domain(domain_of(s, d));
    if (d.images()) options.image_size(d.height_px, d.width_px);
    if (s.progress_seconds > 0) options.on_progress(advaug::progress_printer(std::cout), s.progress_seconds);
    return options;
}

advaug::model_evaluation evaluate(loaded_model& m, const advaug::dataset<float>& data,
                                  const advaug::evaluation_options& options) {
    const auto start = clock_type::now();
    advaug::model_evaluation result = std::visit(
        [&](auto& net) { return advaug::evaluate_robustness(net, data, options, m.label); }, m.net);
    std::printf("evaluated %s (%s) on %zu samples in %.1f s\n", m.label.c_str(),
                m.description.c_str(), data.size(),
                std::chrono::duration<double>(clock_type::now() - start).count());
    return result;
}

// N PGD examples at the largest epsilon, from the first N samples: examples.png (images
// only), examples_clean.npy, examples_adversarial.npy and examples_labels.npy.
void write_examples(const settings& s, loaded_model& m, const test_data& d) {
    const double eps = *std::max_element(s.epsilons.begin(), s.epsilons.end());
    const auto k = static_cast<double>(s.pgd_steps);
    const auto attack = advaug::pgd_options{}
                            .epsilon(eps)
                            .steps(s.pgd_steps)
                            .step_size(2.5 * eps / k)
                            .seed(s.seed)
                            .domain(domain_of(s, d));
    std::visit(
        [&](auto& net) {
            using model_type = std::decay_t<decltype(net)>;
            const advaug::mode_guard<model_type> eval(net, advaug::mode::eval);
            const auto data = dataset_for(net, m, d);
            const auto [x, y] = data.template slice<float, model_type::input_rank>(0, s.examples);
            const auto adv = advaug::pgd(net, x, y, attack);
            typename model_type::cache_type cache;
            advaug::tensor<float, 2> logits;
            net.forward(adv, cache, logits);
            const std::size_t fooled = s.examples - advaug::count_correct(logits, y);
            const fs::path out(s.out_dir);
            advaug::io::write_npy((out / "examples_labels.npy").string(), y);
            if (d.images()) {
                const std::vector<std::size_t> shape{s.examples, d.height_px, d.width_px};
                const advaug::tensor<float, 3> clean3 = xt::reshape_view(x, shape);
                const advaug::tensor<float, 3> adv3 = xt::reshape_view(adv, shape);
                // 0.5 / eps: a pixel moved by the whole budget shows as black or white.
                advaug::write_example_grid((out / "examples.png").string(), clean3, adv3,
                                           0.5 / eps);
                advaug::io::write_npy((out / "examples_clean.npy").string(), clean3);
                advaug::io::write_npy((out / "examples_adversarial.npy").string(), adv3);
            } else {
                advaug::io::write_npy((out / "examples_clean.npy").string(), x);
                advaug::io::write_npy((out / "examples_adversarial.npy").string(), adv);
            }
            std::printf("wrote %zu PGD-%zu examples at eps %s (%zu misclassified) to %s\n",
                        s.examples, s.pgd_steps, format_shortest(eps).c_str(), fooled,
                        (out / (d.images() ? "examples.png" : "examples_adversarial.npy"))
                            .string()
                            .c_str());
        },
        m.net);
}

std::string percent(double v) {
    if (!std::isfinite(v)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", 100 * v);
    return buf;
}

// A few columns of the report on stdout: clean, each attack at the largest epsilon,
// corruptions.
void print_summary(const std::vector<advaug::model_evaluation>& models) {
    std::printf("\n%-20s %8s", "model", "clean");
    const auto& first = models.front();
    for (const auto& c : first.curves) {
        const std::string h = c.attack + " " + format_shortest(c.epsilon.back());
        std::printf(" %14s", h.c_str());
    }
    if (!first.corruptions.empty()) std::printf(" %12s %13s", "corruptions", "relative mCE");
    std::printf("\n");
    for (const auto& m : models) {
        std::printf("%-20s %8s", m.model.c_str(), percent(m.clean_accuracy).c_str());
        for (const auto& c : m.curves) std::printf(" %14s", percent(c.accuracy.back()).c_str());
        if (!m.corruptions.empty()) {
            std::printf(" %12s %13s", percent(m.mean_corruption_accuracy).c_str(),
                        percent(m.relative_mce).c_str());
        }
        std::printf("\n");
    }
    for (const auto& c : first.curves) {
        const std::size_t n = advaug::attacked_samples(first, c);
        if (n < first.samples) std::printf("%s: on the first %zu samples only\n", c.attack.c_str(), n);
    }
}

std::string stem_of(const std::string& path) { return fs::path(path).stem().string(); }

// Fails early, before the evaluation, when --out cannot become a folder that takes files:
// the nearest part of the path that exists must be a folder in which a file can be created
// (tried with a probe file, removed at once; permission bits alone do not tell, e.g. for
// root or on a read-only file system).
void check_out_dir(const std::string& out) {
    std::error_code ec;
    fs::path p = fs::absolute(out, ec);
    while (!p.empty() && !fs::exists(p, ec) && p.has_parent_path() && p.parent_path() != p) {
        p = p.parent_path();
    }
    if (fs::exists(p, ec) && !fs::is_directory(p, ec)) {
        throw usage_error("--out '" + out + "': '" + p.string() + "' exists and is not a folder");
    }
    const fs::path probe =
        p / concat(".advaug-eval-probe-", clock_type::now().time_since_epoch().count());
    std::FILE* f = std::fopen(probe.c_str(), "wx");
    if (f == nullptr) {
        const int err = errno;
        const std::string where =
            p == fs::absolute(out, ec) ? "" : " (its folder '" + p.string() + "')";
        throw usage_error("--out '" + out + "' is not writable" + where + ": " +
                          std::strerror(err) + "; give a folder you can write to");
    }
    std::fclose(f);
    fs::remove(probe, ec);
}

int run(const settings& s) {
#ifndef ADVAUG_NO_BLAS
    // Evaluation threads each run their own GEMMs; OpenBLAS threads on top would oversubscribe.
    if (s.threads > 1) advaug::backend::set_blas_threads(1);
#endif
    const auto start = clock_type::now();
    check_out_dir(s.out_dir);
    test_data data = read_data(s);
    if (s.examples > data.n) {
        throw usage_error(concat("--examples ", s.examples, " is more than the ", data.n,
                                 " samples in '", data.source, "'"));
    }
    if (s.autoattack_samples && *s.autoattack_samples > data.n) {
        throw usage_error(concat("--autoattack-samples ", *s.autoattack_samples, " is more than the ", data.n,
                                 " samples in '", data.source, "'"));
    }
    const advaug::evaluation_options options = evaluation_for(s, data);

    const std::string label = s.label.empty() ? stem_of(s.model_path) : s.label;
    std::vector<loaded_model> models;
    models.push_back(load(s.model_path, "--model", s.arch, s.activation, label));
    for (const auto& path : s.compare_paths) {
        std::string name = stem_of(path);
        for (const auto& m : models) {
            if (m.label == name) name += " (" + path + ")";
        }
        // A compared model's architecture comes from its own file, as the baseline's.
        models.push_back(load(path, "--compare", "", "", name));
    }
    if (!s.baseline_path.empty()) {
        std::string base = stem_of(s.baseline_path);
        if (base == label) base += " (baseline)";
        // The baseline's architecture always comes from its own file.
        models.push_back(load(s.baseline_path, "--baseline", "", "", base));
    }
    for (const auto& m : models) {
        const std::size_t classes =
            std::visit([](const auto& n) { return n.num_classes(); }, m.net);
        if (!s.class_names.empty() && s.class_names.size() != classes) {
            throw usage_error(concat("--class-names has ", s.class_names.size(),
                                     " names, but the model '", m.path, "' has ", classes,
                                     " classes"));
        }
    }
    std::printf(
        "%s: %zu samples of %s (%s), %zu attack(s) at %zu epsilon(s), %zu corruption(s), "
        "%zu thread(s)\n",
        program, data.n, data.source.c_str(),
        data.images() ? concat(data.height_px, "x", data.width_px, " images").c_str()
                      : concat(data.width, " features").c_str(),
        options.attacks().size(), options.epsilons().size(), options.corruptions().size(),
        options.threads());

    // Every model is checked against the data before the first evaluation starts.
    std::vector<advaug::dataset<float>> sets;
    for (const auto& m : models) {
        sets.push_back(
            std::visit([&](const auto& net) { return dataset_for(net, m, data); }, m.net));
    }
    std::vector<advaug::model_evaluation> results;
    for (std::size_t i = 0; i < models.size(); ++i) {
        results.push_back(evaluate(models[i], sets[i], options));
        for (const auto& entry : s.families) {
            // Not a structured binding: clang before 16 cannot capture one in a lambda.
            const auto& family = entry.first;
            const auto& budgets = entry.second;
            const auto start = clock_type::now();
            auto worst = advaug::worst_case_evaluation_options{}.seed(s.seed).domain(options.domain());
            if (data.images()) worst.image_size(data.height_px, data.width_px);
            results.back().families.push_back(std::visit(
                [&](auto& net) { return advaug::evaluate_worst_case(net, sets[i], family, budgets, worst); },
                models[i].net));
            std::printf("worst-case %s of %s in %.1f s\n", std::string(advaug::to_string(family)).c_str(),
                        models[i].label.c_str(), std::chrono::duration<double>(clock_type::now() - start).count());
        }
    }
    if (!s.baseline_path.empty() && !results[0].corruptions.empty()) {
        const advaug::model_evaluation base = results.back();  // the baseline scores 1
        for (auto& r : results) {
            advaug::set_relative_mce(r, base);
            advaug::set_absolute_mce(r, base);
            // Below 0 when the corruptions lower the model's error while they raise the
            // baseline's (a model near chance); no ranking is possible then, and the report
            // takes only >= 0.
            if (r.relative_mce < 0) {
                std::printf(
                    "note: the relative mCE of %s against %s is negative (%s): the "
                    "corruptions lower its error on average; it is left out of the report\n",
                    r.model.c_str(), base.model.c_str(), format_shortest(r.relative_mce).c_str());
                r.relative_mce = std::numeric_limits<double>::quiet_NaN();
            }
        }
    }

    std::string title = "Robustness of " + label;
    for (std::size_t i = 1; i + (s.baseline_path.empty() ? 0 : 1) < models.size(); ++i) title += ", " + models[i].label;
    if (!s.baseline_path.empty()) title += " (baseline: " + models.back().label + ")";
    title += " on " + data.name;
    auto report = advaug::report_options{}.title(title);
    if (!s.class_names.empty()) report.class_names(s.class_names);
    advaug::write_report(s.out_dir, results, report);
    if (s.examples > 0) write_examples(s, models[0], data);

    print_summary(results);
    std::printf("\nreport written to %s (%.1f s)\n",
                (fs::path(s.out_dir) / "README.md").string().c_str(),
                std::chrono::duration<double>(clock_type::now() - start).count());
    return 0;
}

// One line on stderr: what went wrong, with line breaks of nested messages flattened.
int fail(std::string message, int status) {
    std::fflush(stdout);
    for (char& c : message) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    std::cerr << program << ": " << message << '\n';
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        settings s;
        CLI::App app{
            "Evaluates a saved advaug model on a test set, clean, under FGSM and PGD attacks "
            "and under image corruptions, and writes a robustness report (README.md, JSON, "
            "CSV, SVG charts) into --out. See docs/advaug_eval.md.",
            program};
        declare_options(app, s);
        // "advaug-eval 0.1.0" and the kernel library that runs the products (backend/info.hpp).
        app.set_version_flag("--version", [] {
            const auto info = advaug::backend::describe();
            return concat(program, " ", advaug::version, "\nkernels: ", info.summary(),
                          " (ADVAUG_BACKEND ", info.backend, ")",
                          info.warning.empty() ? "" : "\n" + info.warning);
        });
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
            throw usage_error(std::string(e.what()) + " (see --help)");
        }
        finish_settings(app, s);
        return run(s);
    } catch (const usage_error& e) {
        return fail(e.what(), 2);
    } catch (const std::bad_alloc&) {
        return fail("out of memory", 1);
    } catch (const std::exception& e) {
        return fail(e.what(), 1);
    } catch (...) {
        return fail("unknown error", 1);
    }
}
