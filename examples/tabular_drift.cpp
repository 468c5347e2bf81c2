// tabular_drift.cpp: can training make a tabular model robust to sensor drift?
//
// A model trained on clean measurements meets drifting, coarse and missing sensors once it is
// deployed. This program trains a small network on a table three ways and measures its accuracy
// under each family of tabular shift:
//
//   1. reads the table (breast cancer: 569 x 30, 2 classes; wine: 178 x 13, 3 classes) with
//      advaug's checked CSV reader and splits it 70/30 with the split's seed;
//   2. standardizes with the TRAINING mean and standard deviation through an input_domain in
//      raw units (bounds [0, training max + 10 % of the range]: every feature is a
//      non-negative measurement);
//   3. trains three MLPs with the same initialization and data order:
//        plain         cross-entropy on clean rows;
//        FGSM-RS       the L-inf ball of radius K training std per feature (Wong et al. 2020);
//        drift-robust  clean rows plus, per batch, the worst case of each tabular family
//                      (perturbations/tabular.hpp): gain and offset drift shared by every
//                      sensor, dropped sensors filled with 0, a shared quantization step;
//   4. measures clean accuracy and accuracy under a fixed ladder of shifts per family
//      (shifts/tabular_shifts.hpp, raw units): gain drift, offset drift, quantization, dropped
//      sensors, and Gaussian noise, which no recipe trains on.
//
// One test sample is 0.6 % (breast cancer) or 1.9 % (wine) of accuracy, so steps 1-4 run on R
// splits (seeds S, S+1, ...) and the tables give the mean and standard deviation.
// --validate holds a quarter of each training part out and scores on it instead of the test
// part: that is where the drift-robust recipe was chosen (docs/tabular.md), never on the test.
//
//   tabular_drift [--table breast_cancer|wine] [--data FILE] [--epochs E] [--seed S]
//                 [--repeats R] [--epsilon K] [--gain G] [--offset O] [--local-gain G]
//                 [--local-offset O] [--drop D] [--quant Q] [--local-quant Q]
//                 [--clean-copies C] [--search worst|random] [--validate] [--report FILE.md]
//
// K: FGSM-RS radius in training std (0.25). --gain/--offset: the common drift's budgets,
// relative (0.1) and in training std (0.25); --local-*: the per-feature ones (0). D: sensors
// dropped at most (2). --quant: the largest common quantization step in training std (2);
// --local-quant: per feature (0). C: copies of the clean rows in the loss (1). E: epochs (80 on
// breast cancer, 200 on wine), R: splits (5). --search random trains on one random draw of
// each family instead of the worst case (the baseline a worst-case recipe must beat).

#include <advaug/advaug.hpp>
#include <advaug/data/csv.hpp>
#include <advaug/perturbations/compose.hpp>
#include <advaug/perturbations/search.hpp>
#include <advaug/perturbations/tabular.hpp>
#include <advaug/shifts/tabular_shifts.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

struct settings {
    std::string table = "breast_cancer";
    std::string data;  // '' for the table's default path
    std::size_t epochs = 0;  // 0: the table's (breast cancer 80, wine 200; docs/tabular.md)
    std::uint64_t seed = 1;
    std::size_t repeats = 5;
    double epsilon = 0.25;  // FGSM-RS, in training standard deviations
    // The drift-robust recipe's budgets (chosen with --validate; docs/tabular.md).
    double gain = 0.1;     // common drift: relative
    double offset = 0.25;  // common drift: training standard deviations
    double local_gain = 0.0;    // per-feature drift, relative
    double local_offset = 0.0;  // per-feature drift, training standard deviations
    std::size_t drop = 2;  // sensors
    double quant = 2.0;    // common quantization step: training standard deviations
    double local_quant = 0.0;   // per-feature quantization steps, training standard deviations
    std::size_t clean_copies = 1;  // the clean rows' weight in the loss, against 1 per family
    bool worst = true;     // worst case (true) or one random draw per family
    bool validate = false;
    std::string report = "tabular_drift_report.md";  // '' for none
};

using net_t = advaug::mlp<float>;

advaug::dataset<float> make_dataset(const advaug::tensor<float, 2>& x,
                                    const advaug::label_vector& labels, std::size_t classes) {
    return advaug::dataset<float>(std::vector<float>(x.begin(), x.end()), {x.shape(1)}, labels,
                                  classes);
}

/// The rows of the three results tables: a shift family, a severity and the shift itself.
/// A family may hold several shifts per severity (dropped sensors: several random sets); the
/// row's accuracy is their mean.
struct shift_row {
    std::string family, name;
    std::vector<advaug::tabular_shift> shifts;
};

/// The evaluation ladder, fixed before any result was seen (docs/tabular.md, "Protocol").
std::vector<shift_row> shift_ladder(const advaug::feature_stats& stats, std::uint64_t seed) {
    using advaug::tabular_shift;
    using advaug::in_std_units;
    std::vector<shift_row> rows;
    for (double g : {-0.20, -0.10, -0.05, 0.05, 0.10, 0.20}) {
        char name[48];
        std::snprintf(name, sizeof name, "gain %+.0f %%", 100 * g);
        rows.push_back({"gain drift", name, {tabular_shift::gain(g)}});
    }
    for (double o : {-1.0, -0.5, -0.25, 0.25, 0.5, 1.0}) {
        char name[48];
        std::snprintf(name, sizeof name, "offset %+.2g std", o);
        rows.push_back({"offset drift", name, {tabular_shift::offset(in_std_units(o, stats))}});
    }
    for (double q : {0.5, 1.0, 2.0}) {
        char name[48];
        std::snprintf(name, sizeof name, "step %.2g std", q);
        rows.push_back({"quantization", name, {tabular_shift::quantize(in_std_units(q, stats))}});
    }
    // k sensors missing and filled with 0 (a naive imputation): 10 random sets per k, the same
    // sets for every model and split (drawn from a fixed stream, not the split's).
    const std::size_t features = stats.features();
    advaug::rng draw(0xd509);
    for (std::size_t k : {1, 2, 3}) {
        shift_row row{"dropped sensors", std::to_string(k) + (k == 1 ? " sensor" : " sensors") +
                                             " = 0 (10 sets)", {}};
        for (int set = 0; set < 10; ++set) {
            std::vector<std::size_t> order(features);
            for (std::size_t f = 0; f < features; ++f) order[f] = f;
            for (std::size_t j = 0; j < k; ++j) {  // partial Fisher-Yates
                const auto pick =
                    j + static_cast<std::size_t>(draw.uniform() * static_cast<double>(features - j));
                std::swap(order[j], order[std::min(pick, features - 1)]);
            }
            row.shifts.push_back(tabular_shift::dropped({order.begin(), order.begin() + k}, {0.0}));
        }
        rows.push_back(std::move(row));
    }
    for (double s : {0.1, 0.3, 0.5}) {
        char name[48];
        std::snprintf(name, sizeof name, "sigma %.2g std", s);
        rows.push_back({"noise (not trained on)", name,
                        {tabular_shift::noise(in_std_units(s, stats), seed)}});
    }
    return rows;
}

/// The accuracies of one split: clean, then one per shift_row, for each recipe.
struct split_result {
    std::vector<std::vector<double>> by_recipe;  // [recipe][0 = clean, 1 + row]
};

const char* const recipe_names[] = {"plain", "FGSM-RS", "drift-robust"};
constexpr std::size_t recipes = 3;

// ---------------------------------------------------------------------------------------------
// The drift-robust recipe. The trainer's family method trains on one family's worst case with
// the seed's weighting; this recipe takes the worst case of three families side by side (a
// chain would apply them one after another) and weights the clean rows by --clean-copies, so
// the loop is written here from the trainer's public pieces: for each batch, the worst case of
// each family against the current model (worst_case(), with the search each family's kind
// allows), then one step on the mean cross-entropy over the clean rows and the three perturbed
// copies.
// ---------------------------------------------------------------------------------------------
struct drift_recipe {
    advaug::chain<advaug::common_drift<float>, advaug::tabular_drift<float>> drift;
    advaug::dropped_sensors<float> dropped;
    advaug::chain<advaug::common_quantize<float>, advaug::quantize<float>> quantized;
    advaug::worst_case_options drift_search, drop_search, quant_search;
};

drift_recipe make_recipe(const settings& s, const advaug::feature_stats& stats,
                         const advaug::input_domain& raw_domain) {
    const std::size_t f = stats.features();
    std::vector<advaug::interval> offset(f), step(f);
    for (std::size_t j = 0; j < f; ++j) {
        offset[j] = advaug::symmetric(s.local_offset * stats.stddev[j]);
        step[j] = {0.0, s.local_quant * stats.stddev[j]};
    }
    using advaug::search_method;
    const auto base = [] { return advaug::worst_case_options{}; };  // seeded per batch
    // Worst case: drift by the worst of 4 draws refined by 3 sign-gradient steps; masks by
    // random draws and the greedy search; quantization (no gradient) by the worst of 8 draws.
    // Random: one draw of each.
    return {advaug::chain(advaug::common_drift<float>(f, {advaug::symmetric(s.gain),
                                                          advaug::symmetric(s.offset)},
                                                      stats.stddev, raw_domain),
                          advaug::tabular_drift<float>(f, {{advaug::symmetric(s.local_gain)}, offset},
                                                       raw_domain)),
            advaug::dropped_sensors<float>(f, s.drop, {0.0}, raw_domain),
            advaug::chain(advaug::common_quantize<float>(f, {0.0, s.quant}, stats.stddev, raw_domain),
                          advaug::quantize<float>(f, step, raw_domain)),
            s.worst ? base().method(search_method::both).samples(4).steps(3)
                    : base().method(search_method::random).samples(1),
            s.worst ? base().method(search_method::both).samples(4)
                    : base().method(search_method::random).samples(1),
            base().method(search_method::random).samples(s.worst ? 8 : 1)};
}

void train_drift_robust(net_t& net, const drift_recipe& recipe, const advaug::dataset<float>& train,
                        const advaug::input_domain& domain, const settings& s, std::uint64_t seed) {
    advaug::adam<float> optimizer;
    const auto lr = advaug::lr_schedule::cosine(2e-3, static_cast<double>(s.epochs));
    // A plain trainer computes the gradient of the mean cross-entropy of whatever batch it is
    // given; the optimizer step is ours.
    advaug::trainer trainer(net, optimizer,
                            advaug::train_options{}
                                .method(advaug::training_method::plain)
                                .learning_rate(lr)
                                .batch_size(32)
                                .seed(seed)
                                .domain(domain)
                                .progress(advaug::progress_style::none));
    auto params = net.parameters();
    const std::size_t n = train.size(), batch = 32, batches = (n + batch - 1) / batch;
    advaug::tensor<float, 2> x;
    advaug::label_vector y;
    for (std::size_t epoch = 0; epoch < s.epochs; ++epoch) {
        const auto order = advaug::shuffled_indices(n, seed * 1000003 + epoch);
        for (std::size_t b = 0; b < batches; ++b) {
            const std::size_t first = b * batch, count = std::min(batch, n - first);
            train.batch(std::span(order.data() + first, count), x, y);
            const std::uint64_t key = (seed * 1000003 + epoch) * 4096 + b;
            const auto worst = [&](const auto& family, advaug::worst_case_options o) {
                return advaug::worst_case(net, family, x, y, o.seed(key)).perturbed;
            };
            std::vector<advaug::tensor<float, 2>> parts(s.clean_copies, x);
            parts.push_back(worst(recipe.drift, recipe.drift_search));
            parts.push_back(worst(recipe.dropped, recipe.drop_search));
            parts.push_back(worst(recipe.quantized, recipe.quant_search));
            advaug::tensor<float, 2> all(std::array<std::size_t, 2>{parts.size() * count, x.shape(1)});
            advaug::label_vector labels(std::array<std::size_t, 1>{parts.size() * count});
            for (std::size_t p = 0; p < parts.size(); ++p) {
                std::copy(parts[p].begin(), parts[p].end(), all.begin() + p * parts[p].size());
                std::copy(y.begin(), y.end(), labels.begin() + p * count);
            }
            trainer.compute_gradient(all, labels, 0.0, key);
            optimizer.step(params, lr.at(static_cast<double>(epoch) +
                                         static_cast<double>(b) / static_cast<double>(batches)));
        }
    }
}

/// Steps 1-4 on the split drawn with `seed`.
split_result run_split(const settings& s, const advaug::labelled_table& table,
                       const advaug::tensor<float, 2>& all, std::uint64_t seed, bool explain,
                       std::vector<shift_row>& rows_out) {
    const std::size_t features = all.shape(1), classes = table.class_names.size();
    // 1. dataset::split is seeded and platform-independent; 30 % of the samples are held out.
    //    With --validate the held-out part is never used: a quarter of the training part is.
    auto [train_raw, test_raw] = make_dataset(all, table.labels, classes).split(0.3, seed);
    if (s.validate) std::tie(train_raw, test_raw) = train_raw.split(0.25, seed + 7777);

    // 2. Statistics of the training part only. Test readings outside the domain are clipped
    //    (an attack needs its inputs inside it); the shifts then act on the clipped raw rows.
    auto [x_train, y_train] = train_raw.slice<float, 2>(0, train_raw.size());
    auto [x_test, y_test] = test_raw.slice<float, 2>(0, test_raw.size());
    const advaug::feature_stats stats = advaug::compute_feature_stats(x_train);
    std::vector<double> lo(features, 0.0), hi(features);
    for (std::size_t f = 0; f < features; ++f) {
        hi[f] = stats.max[f] + 0.1 * (stats.max[f] - stats.min[f]);
    }
    const auto raw_domain =
        advaug::input_domain{}.normalization(stats.mean, stats.stddev).bounds(lo, hi);
    std::size_t clipped = 0;
    for (std::size_t i = 0; i < x_test.shape(0); ++i) {
        for (std::size_t f = 0; f < features; ++f) {
            const float v = std::clamp(x_test(i, f), 0.0f, static_cast<float>(hi[f]));
            clipped += v != x_test(i, f) ? 1 : 0;
            x_test(i, f) = v;
        }
    }
    const auto train = make_dataset(raw_domain.normalize(x_train), y_train, classes);
    const auto test = make_dataset(raw_domain.normalize(x_test), y_test, classes);
    const auto test_in_raw_units = make_dataset(x_test, y_test, classes);

    // FGSM-RS's epsilon is one number in its domain's raw units. A second domain over the same
    // model input z = (x - mean) / std whose units are training standard deviations makes
    // epsilon K mean K std on every feature (docs/tabular.md, "Epsilon per feature").
    std::vector<double> lo_z(features), hi_z(features);
    for (std::size_t f = 0; f < features; ++f) {
        lo_z[f] = (lo[f] - stats.mean[f]) / stats.stddev[f];
        hi_z[f] = (hi[f] - stats.mean[f]) / stats.stddev[f];
    }
    const auto std_domain = advaug::input_domain{}.bounds(lo_z, hi_z);
    if (explain) {
        std::printf("split seed %llu: %zu train / %zu %s; %zu of %zu readings clipped to the domain\n",
                    static_cast<unsigned long long>(seed), train.size(), test.size(),
                    s.validate ? "validation" : "test", clipped, x_test.size());
    }

    // 3. Three models, one initialization.
    std::vector<net_t> nets;
    for (std::size_t r = 0; r < recipes; ++r) nets.emplace_back(std::vector<std::size_t>{features, 64, classes}, seed);
    const auto train_with = [&](net_t& net, advaug::training_method method) {
        advaug::adam<float> optimizer;
        auto options =
            advaug::train_options{}
                .method(method)
                .learning_rate(advaug::lr_schedule::cosine(2e-3, static_cast<double>(s.epochs)))
                .epochs(s.epochs)
                .batch_size(32)
                .seed(seed)
                .domain(std_domain)
                .progress(advaug::progress_style::none);
        if (method != advaug::training_method::plain) options.epsilon(s.epsilon);
        advaug::trainer trainer(net, optimizer, options);
        trainer.fit(train);
    };
    train_with(nets[0], advaug::training_method::plain);
    train_with(nets[1], advaug::training_method::fgsm_rs);
    train_drift_robust(nets[2], make_recipe(s, stats, raw_domain), train, raw_domain, s, seed);

    // 4. Each shift acts on the raw test rows, then the training normalization turns them into
    //    what the model sees (the same path as a deployed model's).
    const auto rows = shift_ladder(stats, seed);
    split_result out;
    for (auto& net : nets) {
        const auto shifted_accuracy = [&](const advaug::tabular_shift& shift) {
            return advaug::transformed_accuracy(net, test_in_raw_units,
                                                [&](advaug::tensor<float, 2>& x, std::size_t b) {
                                                    shift.apply(x, b);
                                                    x = raw_domain.normalize(x);
                                                });
        };
        std::vector<double> acc = {advaug::accuracy(net, test)};
        // The raw-unit path with no shift must see exactly what the model saw in training.
        if (shifted_accuracy(advaug::tabular_shift{}) != acc[0]) {
            throw std::logic_error("the raw-unit evaluation path does not reproduce clean accuracy");
        }
        for (const auto& row : rows) {
            double sum = 0;
            for (const auto& shift : row.shifts) sum += shifted_accuracy(shift);
            acc.push_back(sum / static_cast<double>(row.shifts.size()));
        }
        out.by_recipe.push_back(std::move(acc));
    }
    rows_out = rows;
    return out;
}

/// "mean +- std" in percent over the splits.
std::string cell(const std::vector<double>& v) {
    double sum = 0, squares = 0;
    for (double a : v) sum += 100 * a;
    const double mean = sum / static_cast<double>(v.size());
    for (double a : v) squares += (100 * a - mean) * (100 * a - mean);
    const double sd = v.size() > 1 ? std::sqrt(squares / static_cast<double>(v.size() - 1)) : 0.0;
    char text[32];
    std::snprintf(text, sizeof text, "%5.1f +- %4.1f", mean, sd);
    return text;
}

double mean_of(const std::vector<double>& v) {
    double sum = 0;
    for (double a : v) sum += a;
    return 100 * sum / static_cast<double>(v.size());
}

int run(settings s) {
    const auto start = std::chrono::steady_clock::now();
    if (s.table != "breast_cancer" && s.table != "wine") {
        throw std::invalid_argument("--table must be breast_cancer or wine, got '" + s.table + "'");
    }
    const bool wine = s.table == "wine";
    if (s.epochs == 0) s.epochs = wine ? 200 : 80;
    const advaug::labelled_table table =
        wine ? advaug::load_wine(s.data.empty() ? advaug::default_wine_path() : s.data)
             : advaug::load_breast_cancer(s.data.empty() ? advaug::default_breast_cancer_path() : s.data);
    const advaug::tensor<float, 2> all = xt::cast<float>(table.features);
    std::printf("%s: %zu samples, %zu features, %zu classes; %s\n", s.table.c_str(), all.shape(0),
                all.shape(1), table.class_names.size(),
                s.validate ? "VALIDATION (a quarter of each training part)" : "test");
    std::printf("%zu epochs; drift-robust: %s case of common gain +-%g and offset +-%g std, "
                "per-feature gain +-%g and offset +-%g std, up to %zu sensors = 0, common "
                "quantization step up to %g std and per-feature up to %g std; %zu clean cop%s\n",
                s.epochs, s.worst ? "worst" : "one random", s.gain, s.offset, s.local_gain,
                s.local_offset, s.drop, s.quant, s.local_quant, s.clean_copies,
                s.clean_copies == 1 ? "y" : "ies");

    std::vector<split_result> results;
    std::vector<shift_row> rows;
    for (std::size_t r = 0; r < s.repeats; ++r) {
        results.push_back(run_split(s, table, all, s.seed + r, r == 0, rows));
    }

    // Per row: the values over the splits; per family: the mean over its rows, per split.
    const auto values = [&](std::size_t recipe, std::size_t row) {
        std::vector<double> v;
        for (const auto& res : results) v.push_back(res.by_recipe[recipe][row]);
        return v;
    };
    std::vector<std::string> families;
    for (const auto& row : rows) {
        if (std::find(families.begin(), families.end(), row.family) == families.end()) {
            families.push_back(row.family);
        }
    }
    const auto family_values = [&](std::size_t recipe, const std::string& family) {
        std::vector<double> v(results.size(), 0.0);
        std::size_t count = 0;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            if (rows[i].family != family) continue;
            ++count;
            for (std::size_t k = 0; k < results.size(); ++k) v[k] += results[k].by_recipe[recipe][1 + i];
        }
        for (double& a : v) a /= static_cast<double>(count);
        return v;
    };

    const std::string title = (s.validate ? "validation" : "test") +
                              std::string(" accuracy %, mean +- std of ") +
                              std::to_string(results.size()) + " splits";
    std::string md = "# Drift robustness on " + s.table + "\n\n" + title + ".\n\n| shift | family |";
    std::printf("\n%s\n%-32s %-24s", title.c_str(), "shift", "family");
    for (const char* name : recipe_names) {
        std::printf("  %14s", name);
        md += std::string(" ") + name + " |";
    }
    md += "\n| --- | --- | ---: | ---: | ---: |\n";
    std::printf("\n");
    const auto print_row = [&](const std::string& name, const std::string& family,
                               const std::vector<std::vector<double>>& per_recipe) {
        std::printf("%-32s %-24s", name.c_str(), family.c_str());
        md += "| " + name + " | " + family + " |";
        for (const auto& v : per_recipe) {
            std::printf("  %14s", cell(v).c_str());
            md += " " + cell(v) + " |";
        }
        std::printf("\n");
        md += "\n";
    };
    const auto row_values = [&](std::size_t row) {
        std::vector<std::vector<double>> out;
        for (std::size_t r = 0; r < recipes; ++r) out.push_back(values(r, row));
        return out;
    };
    print_row("clean", "", row_values(0));
    for (std::size_t i = 0; i < rows.size(); ++i) print_row(rows[i].name, rows[i].family, row_values(1 + i));

    // The summary the target is stated in: each family's mean over its severities, and the
    // drift-robust recipe's margin over plain.
    std::printf("\n%-32s  %14s  %14s  %14s  %s\n", "family mean", recipe_names[0], recipe_names[1],
                recipe_names[2], "drift-robust - plain");
    md += "\n| family mean | plain | FGSM-RS | drift-robust | drift-robust - plain |\n| --- | ---: | ---: | ---: | ---: |\n";
    const auto summary_line = [&](const std::string& name, const std::vector<std::vector<double>>& v) {
        const double margin = mean_of(v[2]) - mean_of(v[0]);
        std::printf("%-32s  %14s  %14s  %14s  %+6.1f\n", name.c_str(), cell(v[0]).c_str(),
                    cell(v[1]).c_str(), cell(v[2]).c_str(), margin);
        char m[16];
        std::snprintf(m, sizeof m, "%+.1f", margin);
        md += "| " + name + " | " + cell(v[0]) + " | " + cell(v[1]) + " | " + cell(v[2]) + " | " + m + " |\n";
    };
    summary_line("clean", row_values(0));
    for (const auto& family : families) {
        std::vector<std::vector<double>> v;
        for (std::size_t r = 0; r < recipes; ++r) v.push_back(family_values(r, family));
        summary_line(family, v);
    }

    if (!s.report.empty()) {
        const std::string text = md + "\nWritten by `tabular_drift` (docs/tabular.md).\n";
        advaug::io::write_file_atomically(
            s.report, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
        std::printf("\nreport written to %s\n", s.report.c_str());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("\n%.1f s in all\n", seconds);
    return 0;
}

/// The whole of `text` as a number, or an error naming the option.
double number_arg(const char* option, const char* text) {
    char* end = nullptr;
    const double v = std::strtod(text, &end);
    if (end == text || *end != '\0' || !std::isfinite(v)) {
        throw std::invalid_argument(std::string(option) + " needs a finite number, got '" + text + "'");
    }
    return v;
}

double nonnegative_arg(const char* option, const char* text) {
    const double v = number_arg(option, text);
    if (v < 0) throw std::invalid_argument(std::string(option) + " must be >= 0, got '" + text + "'");
    return v;
}

/// The whole of `text` as an integer >= minimum.
std::uint64_t count_arg(const char* option, const char* text, double minimum) {
    const double v = number_arg(option, text);
    if (!(v >= minimum && v < 1e18 && v == static_cast<double>(static_cast<std::uint64_t>(v)))) {
        throw std::invalid_argument(std::string(option) + " needs an integer >= " +
                                    std::to_string(static_cast<int>(minimum)) + ", got '" + text +
                                    "'");
    }
    return static_cast<std::uint64_t>(v);
}

int run_command_line(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        const bool has_value = i + 1 < argc;
        const auto is = [&](const char* option) { return std::strcmp(argv[i], option) == 0 && has_value; };
        if (is("--table")) {
            s.table = argv[++i];
        } else if (is("--data")) {
            s.data = argv[++i];
        } else if (is("--epochs")) {
            s.epochs = count_arg("--epochs", argv[++i], 1);
        } else if (is("--seed")) {
            s.seed = count_arg("--seed", argv[++i], 0);
        } else if (is("--repeats")) {
            s.repeats = count_arg("--repeats", argv[++i], 1);
        } else if (is("--epsilon")) {
            s.epsilon = number_arg("--epsilon", argv[++i]);  // checked by the trainer
        } else if (is("--gain")) {
            s.gain = nonnegative_arg("--gain", argv[++i]);
        } else if (is("--offset")) {
            s.offset = nonnegative_arg("--offset", argv[++i]);
        } else if (is("--local-gain")) {
            s.local_gain = nonnegative_arg("--local-gain", argv[++i]);
        } else if (is("--local-offset")) {
            s.local_offset = nonnegative_arg("--local-offset", argv[++i]);
        } else if (is("--local-quant")) {
            s.local_quant = nonnegative_arg("--local-quant", argv[++i]);
        } else if (is("--clean-copies")) {
            s.clean_copies = count_arg("--clean-copies", argv[++i], 1);
        } else if (is("--drop")) {
            s.drop = count_arg("--drop", argv[++i], 1);  // <= features: checked by the family
        } else if (is("--quant")) {
            s.quant = nonnegative_arg("--quant", argv[++i]);
        } else if (is("--search")) {
            const std::string v = argv[++i];
            if (v != "worst" && v != "random") {
                throw std::invalid_argument("--search must be worst or random, got '" + v + "'");
            }
            s.worst = v == "worst";
        } else if (std::strcmp(argv[i], "--validate") == 0) {
            s.validate = true;
        } else if (is("--report")) {
            s.report = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: tabular_drift [--table breast_cancer|wine] [--data FILE] "
                         "[--epochs E] [--seed S] [--repeats R] [--epsilon K] [--gain G] "
                         "[--offset O] [--drop D] [--quant Q] [--search worst|random] "
                         "[--validate] [--report FILE.md]\n");
            return 2;
        }
    }
    return run(s);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run_command_line(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tabular_drift: %s\n", e.what());
        return 1;
    }
}
