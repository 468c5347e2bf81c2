// tabular_drift.cpp: does adversarial training make a tabular model robust to sensor drift?
//
// A model trained on clean measurements meets drifting, noisy, stuck and missing sensors once
// it is deployed. This program measures how much accuracy a small network loses to each of
// those shifts, with and without adversarial training. It
//
//   1. reads the Wisconsin breast cancer data (569 samples, 30 features) with advaug's checked
//      CSV reader, and splits it 70/30 with a fixed seed;
//   2. standardizes with the TRAINING mean and standard deviation through an input_domain,
//      whose bounds are the training range, widened a little, in raw units;
//   3. works out what epsilon means per feature (the important step for tabular data);
//   4. trains a 30-64-2 MLP plainly and with PGD adversarial training;
//   5. prints clean accuracy, PGD accuracy and accuracy under each tabular shift, for both.
//
// With 171 test samples one sample is 0.6 % of accuracy, so steps 1-5 are repeated on R
// random splits (seeds S, S+1, ...) and the table shows the mean and standard deviation.
//
//   tabular_drift [--data FILE] [--epsilon K] [--epochs E] [--seed S] [--repeats R] [--report FILE.md]
//
// K is the attack radius in training standard deviations of each feature (default 0.25),
// E the training epochs (40), R the number of splits (10). Runs in a few seconds on one core.

#include <advaug/advaug.hpp>
#include <advaug/data/csv.hpp>
#include <advaug/shifts/tabular_shifts.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace {

struct settings {
    std::string data = advaug::default_breast_cancer_path();
    double epsilon = 0.25;  // in training standard deviations, per feature
    std::size_t epochs = 40;
    std::uint64_t seed = 1;
    std::size_t repeats = 10;
    std::string report = "tabular_drift_report.md";  // '' for none
};

/// A dataset<float> of the rows of `x` (any values: raw or normalized) with `labels`.
advaug::dataset<float> make_dataset(const advaug::tensor<float, 2>& x,
                                    const advaug::label_vector& labels) {
    return advaug::dataset<float>(std::vector<float>(x.begin(), x.end()), {x.shape(1)}, labels, 2);
}

/// One row of the results table: a name and the shift, in raw units.
struct scenario {
    std::string name;
    advaug::tabular_shift shift;
};

/// The table of one split: row names, then the accuracies of the plain and the PGD-trained model.
struct split_result {
    std::vector<std::string> rows;
    std::vector<double> plain, robust;
};

/// Steps 2-5 on the split drawn with `seed`; `explain` prints what the first split finds.
split_result run_split(const settings& s, const advaug::tensor<float, 2>& all,
                       const advaug::label_vector& labels, std::uint64_t seed, bool explain) {
    const std::size_t features = all.shape(1);
    // dataset::split is seeded and platform-independent; 30 % of the samples are held out.
    const auto [train_raw, test_raw] = make_dataset(all, labels).split(0.3, seed);

    // -----------------------------------------------------------------------------------------
    // 2. Normalization from the training split only. The domain holds the per-feature mean and
    //    std (the model sees (x - mean) / std) and the valid range in raw units: the training
    //    min/max widened by 10 % of the range, and never below 0 (every feature here is a
    //    size, an area or a ratio, so a negative reading is impossible).
    // -----------------------------------------------------------------------------------------
    auto [x_train, y_train] = train_raw.slice<float, 2>(0, train_raw.size());
    auto [x_test, y_test] = test_raw.slice<float, 2>(0, test_raw.size());
    const advaug::feature_stats stats = advaug::compute_feature_stats(x_train);
    std::vector<double> lo(features), hi(features);
    for (std::size_t f = 0; f < features; ++f) {
        const double margin = 0.1 * (stats.max[f] - stats.min[f]);
        lo[f] = std::max(0.0, stats.min[f] - margin);
        hi[f] = stats.max[f] + margin;
    }
    const auto raw_domain =
        advaug::input_domain{}.normalization(stats.mean, stats.stddev).bounds(lo, hi);

    // Test readings outside the training range are not an error of the data: they are the
    // first sign of a shift. An attack needs its inputs inside the domain, so such readings
    // are clipped to it (and counted) rather than widening the domain to fit the test set,
    // which would let the test data choose the model's valid range.
    std::size_t clipped = 0;
    for (std::size_t i = 0; i < x_test.shape(0); ++i) {
        for (std::size_t f = 0; f < features; ++f) {
            const float v =
                std::clamp(x_test(i, f), static_cast<float>(lo[f]), static_cast<float>(hi[f]));
            clipped += v != x_test(i, f) ? 1 : 0;
            x_test(i, f) = v;
        }
    }

    const auto train = make_dataset(raw_domain.normalize(x_train), y_train);  // model units
    const auto test = make_dataset(raw_domain.normalize(x_test), y_test);
    const auto test_in_raw_units = make_dataset(x_test, y_test);  // for the shifts

    // -----------------------------------------------------------------------------------------
    // 3. Epsilon per feature. advaug's epsilon is ONE number in the domain's raw units; the
    //    domain turns it into eps / std_f model units on feature f. With raw_domain, eps = 0.1
    //    would be 0.1 units of area and 0.1 units of a ratio near 0.003 alike (printed below).
    //    For tabular data the sensible radius is a fraction of each feature's spread. Both
    //    domains describe the same model input z = (x - mean) / std; the second measures "raw
    //    units" in training standard deviations (no further normalization, bounds
    //    (lo - mean) / std), so epsilon = K there is K * std_f raw units on every feature f.
    //    (For any other per-feature radius e_f, measure feature f in units of e_f instead:
    //    normalization(mean / e_f, std / e_f), bounds lo / e_f and hi / e_f, epsilon 1.)
    // -----------------------------------------------------------------------------------------
    std::vector<double> lo_z(features), hi_z(features);
    for (std::size_t f = 0; f < features; ++f) {
        lo_z[f] = (lo[f] - stats.mean[f]) / stats.stddev[f];
        hi_z[f] = (hi[f] - stats.mean[f]) / stats.stddev[f];
    }
    const auto std_domain = advaug::input_domain{}.bounds(lo_z, hi_z);

    if (explain) {
        const auto& names = advaug::breast_cancer_feature_names();
        const auto [smallest, largest] =
            std::minmax_element(stats.stddev.begin(), stats.stddev.end());
        const auto name = [&](auto it) {
            return names[static_cast<std::size_t>(it - stats.stddev.begin())].c_str();
        };
        std::printf(
            "split seed %llu: %zu train / %zu test; %zu of %zu test readings lie outside the "
            "widened training range and were clipped\n",
            static_cast<unsigned long long>(seed), train.size(), test.size(), clipped,
            x_test.size());
        std::printf(
            "eps = 0.1 raw units in the raw-unit domain would be %.2g std of '%s' (std %.3g) "
            "but %.3g std of '%s' (std %.3g)\n",
            0.1 / *largest, name(largest), *largest, 0.1 / *smallest, name(smallest), *smallest);
        std::printf(
            "so the attack radius is %.2f training std on every feature instead (e.g. %.3g "
            "raw units of '%s', %.3g of '%s')\n",
            s.epsilon, s.epsilon * stats.stddev[0], names[0].c_str(), s.epsilon * stats.stddev[3],
            names[3].c_str());
    }

    // -----------------------------------------------------------------------------------------
    // 4. Two models with the same initialization, data order and optimizer: one plain, one
    //    trained on PGD-7 examples of radius K in the std-unit domain.
    // -----------------------------------------------------------------------------------------
    const auto train_one = [&](advaug::mlp<float>& net, advaug::training_method method) {
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
    advaug::mlp<float> plain({features, 64, 2}, seed), robust({features, 64, 2}, seed);
    train_one(plain, advaug::training_method::plain);
    train_one(robust, advaug::training_method::pgd);

    // -----------------------------------------------------------------------------------------
    // 5. The shifts, in raw units, sized in training standard deviations where a size is needed.
    //    The three sensors that stick or drop are among the most informative ones.
    // -----------------------------------------------------------------------------------------
    using advaug::tabular_shift;
    // mean radius, worst perimeter, worst concave points
    const std::vector<std::size_t> sensors = {0, 22, 27};
    const std::vector<scenario> scenarios = {
        {"gain drift +5 %", tabular_shift::gain(0.05)},
        {"gain drift -5 %", tabular_shift::gain(-0.05)},
        {"gain drift +10 %", tabular_shift::gain(0.10)},
        {"gain drift -10 %", tabular_shift::gain(-0.10)},
        {"offset drift +0.5 std", tabular_shift::offset(advaug::in_std_units(0.5, stats))},
        {"offset drift -0.5 std", tabular_shift::offset(advaug::in_std_units(-0.5, stats))},
        {"noise 0.1 std", tabular_shift::noise(advaug::in_std_units(0.1, stats), seed)},
        {"noise 0.3 std", tabular_shift::noise(advaug::in_std_units(0.3, stats), seed)},
        {"3 sensors stuck at training mean",
         tabular_shift::stuck(sensors, advaug::pick(stats.mean, sensors))},
        {"3 sensors stuck at first reading", tabular_shift::stuck_at_first_reading(sensors)},
        {"3 sensors dropped, filled with 0", tabular_shift::dropped(sensors, {0.0})},
        {"quantized to 0.5 std", tabular_shift::quantize(advaug::in_std_units(0.5, stats))},
    };

    // Accuracy under a shift: the batch arrives in raw units, the shift acts on it, then the
    // same normalization as in training turns it into what the model sees. Shifting raw data
    // (rather than denormalizing, shifting and normalizing again) keeps readings exact in
    // float. The batch index selects the noise, so every run draws the same noise.
    const auto shifted_accuracy = [&](advaug::mlp<float>& model, const tabular_shift& shift) {
        return advaug::transformed_accuracy(model, test_in_raw_units,
                                            [&](advaug::tensor<float, 2>& x, std::size_t b) {
                                                shift.apply(x, b);
                                                x = raw_domain.normalize(x);
                                            });
    };
    const auto pgd_accuracy = [&](advaug::mlp<float>& model) {
        const auto attack =
            advaug::pgd_options{}.epsilon(s.epsilon).steps(20).domain(std_domain).seed(seed);
        return advaug::robust_accuracy(model, test,
                                       [&](const auto& m, const auto& x, const auto& y) {
                                           return advaug::pgd(m, x, y, attack);
                                       });
    };

    split_result out;
    const auto add = [&](std::string name, double a, double b) {
        out.rows.push_back(std::move(name));
        out.plain.push_back(a);
        out.robust.push_back(b);
    };
    add("clean", advaug::accuracy(plain, test), advaug::accuracy(robust, test));
    // The raw-units path with no shift must see exactly what the model saw in training.
    if (shifted_accuracy(plain, tabular_shift{}) != out.plain[0]) {
        throw std::logic_error("the raw-unit evaluation path does not reproduce clean accuracy");
    }
    char pgd_name[64];
    std::snprintf(pgd_name, sizeof pgd_name, "PGD-20, eps %.2f std", s.epsilon);
    add(pgd_name, pgd_accuracy(plain), pgd_accuracy(robust));
    for (const scenario& sc : scenarios) {
        add(sc.name, shifted_accuracy(plain, sc.shift), shifted_accuracy(robust, sc.shift));
    }
    return out;
}

int run(const settings& s) {
    const auto start = std::chrono::steady_clock::now();

    // -----------------------------------------------------------------------------------------
    // 1. Data. load_breast_cancer() checks the file's own header ("569,30,malignant,benign")
    //    against its rows and every cell; a damaged file stops here with line and column.
    // -----------------------------------------------------------------------------------------
    const advaug::labelled_table data = advaug::load_breast_cancer(s.data);
    const advaug::tensor<float, 2> all = xt::cast<float>(data.features);
    std::printf("breast cancer (%s): %zu samples, %zu features, classes %s/%s\n", s.data.c_str(),
                all.shape(0), all.shape(1), data.class_names[0].c_str(),
                data.class_names[1].c_str());

    std::vector<split_result> results;
    for (std::size_t r = 0; r < s.repeats; ++r) {
        results.push_back(run_split(s, all, data.labels, s.seed + r, r == 0));
    }

    // Mean and standard deviation over the splits, in percent.
    const auto summary = [&](std::size_t row, bool robust) {
        double sum = 0, squares = 0;
        for (const auto& res : results) sum += 100 * (robust ? res.robust : res.plain)[row];
        const double mean = sum / static_cast<double>(results.size());
        for (const auto& res : results) {
            const double d = 100 * (robust ? res.robust : res.plain)[row] - mean;
            squares += d * d;
        }
        const double sd =
            results.size() > 1 ? std::sqrt(squares / static_cast<double>(results.size() - 1)) : 0.0;
        char cell[32];
        std::snprintf(cell, sizeof cell, "%5.1f +- %4.1f", mean, sd);
        return std::string(cell);
    };
    const std::string title =
        "test accuracy %, mean +- std of " + std::to_string(results.size()) + " splits";
    std::printf("\n%-42s  %14s  %14s\n", title.c_str(), "plain", "PGD-AT");
    // The same table as Markdown, for --report.
    std::string markdown = "# Drift robustness on breast cancer\n\n| " + title + " | plain | PGD-AT |\n| --- | --- | --- |\n";
    for (std::size_t row = 0; row < results[0].rows.size(); ++row) {
        std::printf("%-42s  %14s  %14s\n", results[0].rows[row].c_str(),
                    summary(row, false).c_str(), summary(row, true).c_str());
        markdown += "| " + results[0].rows[row] + " | " + summary(row, false) + " | " + summary(row, true) + " |\n";
    }
    if (!s.report.empty()) {
        const std::string text = markdown + "\nWritten by `tabular_drift` (docs/tabular.md).\n";
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
    if (end == text || *end != '\0') {
        throw std::invalid_argument(std::string(option) + " needs a number, got '" + text + "'");
    }
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
        if (std::strcmp(argv[i], "--data") == 0 && has_value) {
            s.data = argv[++i];
        } else if (std::strcmp(argv[i], "--epsilon") == 0 && has_value) {
            s.epsilon = number_arg("--epsilon", argv[++i]);  // checked by the trainer and pgd
        } else if (std::strcmp(argv[i], "--epochs") == 0 && has_value) {
            s.epochs = count_arg("--epochs", argv[++i], 1);
        } else if (std::strcmp(argv[i], "--seed") == 0 && has_value) {
            s.seed = count_arg("--seed", argv[++i], 0);
        } else if (std::strcmp(argv[i], "--repeats") == 0 && has_value) {
            s.repeats = count_arg("--repeats", argv[++i], 1);
        } else if (std::strcmp(argv[i], "--report") == 0 && has_value) {
            s.report = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: tabular_drift [--data FILE] [--epsilon K] [--epochs E] [--seed S] "
                         "[--repeats R] [--report FILE.md]\n");
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
