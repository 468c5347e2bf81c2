// fashion_mnist_ada.cpp: does adversarial data augmentation pay off? A measured answer.
//
// The blog post advaug started from trains on (1 - alpha) * CE(x) + alpha * CE(x_adv), with
// x_adv = clip(x + eps * sign(grad_x CE), 0, 1), and claims that clean accuracy "drops a
// little" while accuracy on perturbed inputs "rises a lot". This program checks the claim on
// Fashion-MNIST with the bundled MLP 784-256-256-10 (or, with --model cnn, the bundled CNN):
//
//   1. load Fashion-MNIST and wrap it as in-memory data sets of bytes;
//   2. train the MLP twice from the same initial weights: plain, then with the chosen
//      adversarial method (FGSM with random start by default);
//   3. measure both models on the test set: clean, under FGSM and PGD-20 attacks, under
//      Gaussian noise and under a brightness shift;
//   4. print a comparison table, and say whether the blog post's claim held;
//   5. write a robustness report (advaug::write_report: accuracy-versus-epsilon curves under
//      FGSM and PGD-20, all 17 image corruptions at five severities, per-class accuracy and
//      confusion matrices, PNG grids of adversarial examples) into --report, with both models
//      saved beside it as .npz files that tools/advaug-eval can evaluate again.
//
//   fashion_mnist_ada [--method M] [--eps E] [--alpha A] [--epochs N] [--quick] ... [--help]
//
// `--method family --family affine` trains on the worst case of a family of natural
// perturbations instead of an L-inf ball (docs/perturbations.md): each batch is rotated and
// shifted, per image, where the model does worst within the budget. The table then adds the
// family's worst case on the test set for both models. --family photometric, blur,
// displacement and chain (the L-inf ball of --eps, then the affine warp) pick other families;
// --family-steps and --family-start set the search. --family mixture is AugMix's mixture of
// chains of all those operations (below); with --family-search random each batch trains on a
// random draw of it: random augmentation, the baseline the worst case has to beat; with
// --family-draws K, on the worst of K random draws (worst-of-k). --family mixture-linf adds the
// L-inf ball of --eps after the mixture (the combined recipe); --family mixture-full adds scale
// and shear to the mixture's operations.
//
// `--method augmix` and `--method augmax` train on CE(x) + lambda JS(x, v1, v2), the
// Jensen-Shannon consistency of the predictions on two augmented views (Hendrycks et al. 2020):
// AugMix draws both from the mixture, AugMax (Wang et al. 2021) searches the first for the worst
// mixing weights and operation parameters (--family-steps steps, default 5). lambda is
// --consistency-weight (default 12, AugMix's).
//
// `--method ada` and `--method me-ada` grow the training set instead (Volpi et al. 2018, Zhao et
// al. 2020): after each of the first 3 epochs, 10,000 training images climb the loss minus the
// squared distance of their penultimate features (plus, for ME-ADA, the prediction's entropy)
// and join the set with their labels (advaug::fit_ada, training/feature_ada.hpp).
//
// `--checkpoint PATH` saves each run's whole training state at the end of every epoch, to
// PATH.plain and PATH.<method>; with `--resume` a run whose checkpoint exists continues from
// it (an interrupted run, or one given more --epochs), ending exactly as an uninterrupted run.
//
// `--method fgsm --eps 0.01` is the blog post's recipe exactly (alpha defaults to its 0.5).
// The default, FGSM with random start at eps 0.1 (Wong, Rice and Kolter 2020), is the fast
// method that holds up against the stronger PGD attack of the table.
//
// The default run (5 epochs on all 60,000 images, each model evaluated on all 10,000 test
// images, the report on the first 2,000) takes about a minute on two cores; --quick (1 epoch
// on 10,000 images, 2,000 test images, the report on 300) takes a few seconds, for smoke
// tests. `--report ''` skips the report.
//
// Build:
//   g++ -std=c++20 -O2 -Iinclude -Itools examples/fashion_mnist_ada.cpp -o fashion_mnist_ada \
//       -lopenblas -lz -lzip
//   (CLI11 is header-only: Debian's libcli11-dev; tools/ holds the shared CLI validators.)

#include <CLI/CLI.hpp>
#include <advaug/advaug.hpp>

#include "cli_validators.hpp"  // in tools/
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using byte_dataset = advaug::dataset<std::uint8_t>;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t num_classes = 10;

// The shortest text that reads back as exactly `v` ("0.1", "1e-05", "3"), for messages and
// the JSON log.
using advaug_cli::shortest;

// A JSON number; NaN (not measured), which JSON cannot hold, becomes null.
std::string json_number(double v) { return std::isfinite(v) ? shortest(v) : "null"; }

// Everything the evaluation draws at random has its own fixed seed, independent of --seed:
// both models, and runs with different --seed values, face exactly the same attacks and noise.
constexpr std::uint64_t pgd_seed = 20'240;
constexpr std::uint64_t noise_seed = 7'000;

// What "a little" and "a lot" mean when the claim is checked (percentage points).
constexpr double little_clean_drop = 5.0;
constexpr double large_robust_gain = 20.0;

// A command-line mistake: reported with a hint to --help, exit status 2.
struct usage_error : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// ---------------------------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------------------------

struct settings {
    std::string data_dir = advaug::default_fashion_mnist_dir();
    std::string method_name = "fgsm-rs";
    advaug::training_method method = advaug::training_method::fgsm_rs;
    double eps = 0.1;
    std::optional<double> alpha;  // unset: the method's default_alpha()
    std::size_t epochs = 5;
    std::size_t batch_size = 128;
    double lr = 0.05;
    std::string lr_schedule_name = "constant";
    std::optional<advaug::lr_schedule> schedule;
    std::uint64_t seed = 0;
    int threads = 0;
    std::optional<std::size_t> pgd_steps;
    std::size_t log_every = 100;
    std::string json_log;
    std::optional<std::size_t> train_samples, test_samples;  // unset: all
    bool quick = false;
    std::string report_dir = "fashion_mnist_ada_report";  // empty: no report
    std::size_t report_samples = 2'000;
    std::string model_name = "mlp";
    std::string init_name = "pytorch";
    advaug::weight_init init = advaug::weight_init::pytorch_default;
    std::string checkpoint;  // empty: no checkpoints
    bool resume = false;
    std::string family_name = "affine";  // --method family only
    std::optional<std::size_t> family_steps;
    std::string family_start = "random";
    std::string family_search_name = "gradient";
    std::size_t family_draws = 1;  // --family-search random: the worst of this many draws
    double consistency_weight = 12;
    std::string ada;  // "ada" or "me-ada": feature-space ADA for the second model (method plain)
};

// Validators with plain messages, shared with tools/advaug-eval (tools/cli_validators.hpp).
using advaug_cli::number_in, advaug_cli::whole_number;

// Declares every option on `app`, bound to the fields of `s`.
void declare_options(CLI::App& app, settings& s, double& alpha, std::size_t& pgd_steps,
                     std::size_t& train_samples, std::size_t& test_samples) {
    app.add_option("--data", s.data_dir,
                   "Fashion-MNIST directory (default: $ADVAUG_FASHION_MNIST, else the Debian "
                   "package's /usr/share/datasets/fashion-mnist)")
        ->check(CLI::ExistingDirectory)
        ->capture_default_str();
    app.add_option("--method", s.method_name,
                   "adversarial training method of the second model: plain, fgsm (the blog "
                   "post's), fgsm-rs, n-fgsm, pgd, family (the worst case of --family), augmix or "
                   "augmax (consistency training on views of AugMix's mixtures), ada or me-ada (feature-space "
                   "adversarial data augmentation, Volpi et al. 2018 and Zhao et al. 2020)")
        ->capture_default_str();
    app.add_option("--eps", s.eps,
                   "training epsilon, L-inf, in pixel units ([0, 1] scale); also the radius of "
                   "the PGD-20 attack in the epoch summaries")
        ->check(number_in(0, 1, false, "IN (0, 1]"))
        ->capture_default_str();
    app.add_option("--alpha", alpha,
                   "weight of the adversarial loss in [0, 1] (default: the method's, 0.5 for "
                   "fgsm, 1 for fgsm-rs, n-fgsm and pgd)")
        ->check(number_in(0, 1, true, "IN [0, 1]"));
    app.add_option("--epochs", s.epochs, "training epochs of each model")
        ->check(whole_number(1, "POSITIVE"))
        ->capture_default_str();
    app.add_option("--batch-size", s.batch_size, "mini-batch size")
        ->check(whole_number(1, "POSITIVE"))
        ->capture_default_str();
    app.add_option("--lr", s.lr, "(peak) learning rate of SGD with momentum 0.9")
        ->check(number_in(0, std::numeric_limits<double>::infinity(), false, "POSITIVE"))
        ->capture_default_str();
    app.add_option("--lr-schedule", s.lr_schedule_name,
                   "constant, step (x0.1 every third of the run), cosine (to 0) or one-cycle "
                   "(peak at 40%)")
        ->capture_default_str();
    app.add_option("--seed", s.seed, "seed of the initial weights, shuffling and random starts")
        ->check(whole_number(0, ""))
        ->capture_default_str();
    app.add_option("--threads", s.threads, "OpenBLAS threads (0: leave OpenBLAS's choice)")
        ->check(whole_number(0, "NONNEGATIVE"))
        ->capture_default_str();
    app.add_option("--pgd-steps", pgd_steps,
                   "PGD training steps (only with --method pgd; default 7)")
        ->check(whole_number(1, "POSITIVE"));
    app.add_option("--family", s.family_name,
                   "with --method family: affine (rotation +-15 degrees, shift +-2 pixels), "
                   "photometric (brightness +-0.2, contrast +-30%, log gamma +-0.3), blur (sigma "
                   "up to 1.5 pixels), displacement (a 4 x 4 lattice of shifts up to 1 pixel), "
                   "chain (the L-inf ball of --eps, then affine), mixture (AugMix's mixtures of "
                   "chains of rotation, translation, brightness, contrast, gamma, blur and "
                   "displacement at those budgets), mixture-linf (a mixture, then the L-inf "
                   "ball of --eps) or mixture-full (the mixture with scale +-10% and shear +-0.2 "
                   "added to its operations)")
        ->check(CLI::IsMember({"affine", "photometric", "blur", "displacement", "chain", "mixture", "mixture-linf",
                               "mixture-full"}))
        ->capture_default_str();
    app.add_option("--family-steps", s.family_steps,
                   "with --method family: sign-gradient steps of the search in the family's "
                   "parameters, each 1.25 (one step) or 2.5 / steps of the budget's half width "
                   "(default 1)")
        ->check(whole_number(1, "POSITIVE"));
    app.add_option("--family-search", s.family_search_name,
                   "with --method family: gradient (the worst case, by --family-steps sign steps) "
                   "or random (one random draw per image: random augmentation of the family)")
        ->check(CLI::IsMember({"gradient", "random"}))
        ->capture_default_str();
    app.add_option("--family-draws", s.family_draws,
                   "with --family-search random: train on the worst of N random draws per image "
                   "(worst-of-k, gradient-free; 1 is random augmentation)")
        ->check(whole_number(1, "POSITIVE"))
        ->capture_default_str();
    app.add_option("--consistency-weight", s.consistency_weight,
                   "with --method augmix or augmax: the weight lambda of the Jensen-Shannon "
                   "consistency loss")
        ->check(number_in(0, std::numeric_limits<double>::infinity(), false, "POSITIVE"))
        ->capture_default_str();
    app.add_option("--family-start", s.family_start,
                   "with --method family: the search starts at a random point of the budget, or "
                   "at the identity (then its first pass is also the clean loss's, as FGSM's)")
        ->check(CLI::IsMember({"random", "identity"}))
        ->capture_default_str();
    app.add_option("--log-every", s.log_every,
                   "print the three losses every N batches, as the blog post did (0: never)")
        ->check(whole_number(0, ""))
        ->capture_default_str();
    app.add_option("--json-log", s.json_log,
                   "write a JSON-lines log of both runs and the results to PATH (overwritten)");
    app.add_option("--train-samples", train_samples,
                   "train on the first N training images only (default: all 60,000)")
        ->check(whole_number(1, "POSITIVE"));
    app.add_option("--test-samples", test_samples,
                   "evaluate on the first N test images only (default: all 10,000)")
        ->check(whole_number(1, "POSITIVE"));
    app.add_option("--report", s.report_dir,
                   "write a robustness report of both models (README.md, JSON, CSV, SVG charts, "
                   "example grids) and the two model files into DIR; '' for none")
        ->capture_default_str();
    app.add_option("--report-samples", s.report_samples,
                   "evaluate the report on the first N test images (default 2,000; 300 with "
                   "--quick)")
        ->check(whole_number(1, "POSITIVE"));
    app.add_option("--model", s.model_name,
                   "mlp (784-256-256-10), cnn (the bundled CNN, as the PyTorch anchor's) or cnn-bn "
                   "(with batch norm)")
        ->check(CLI::IsMember({"mlp", "cnn", "cnn-bn"}))
        ->capture_default_str();
    app.add_option("--init", s.init_name,
                   "initial weights: pytorch (U(-1/sqrt(in), 1/sqrt(in)), as torch.nn.Linear, the "
                   "setting of the PyTorch figures in docs/training.md) or he (N(0, 2/in))")
        ->check(CLI::IsMember({"pytorch", "he"}))
        ->capture_default_str();
    app.add_option("--checkpoint", s.checkpoint,
                   "save each run's training state (weights, optimizer, position) at the end of "
                   "every epoch to PATH.plain and PATH.<method>")
        ->type_name("PATH");
    app.add_flag("--resume", s.resume,
                 "continue each run from its --checkpoint file where that exists (the same "
                 "--model, --method, --seed and --batch-size; more --epochs extend the run)");
    app.add_flag("--quick", s.quick,
                 "smoke run: --epochs 1 --train-samples 10000 --test-samples 2000 "
                 "--report-samples 300 (options given explicitly win)");
}

// Turns the parsed strings into library values and checks how the options fit together.
// Every mistake found here is a usage_error.
void finish_settings(const CLI::App& app, settings& s, double alpha, std::size_t pgd_steps,
                     std::size_t train_samples, std::size_t test_samples) {
    const auto given = [&](const char* option) { return app.count(option) > 0; };
    if (given("--alpha")) s.alpha = alpha;
    s.init = s.init_name == "he" ? advaug::weight_init::he_normal : advaug::weight_init::pytorch_default;
    if (given("--pgd-steps")) s.pgd_steps = pgd_steps;
    if (given("--train-samples")) s.train_samples = train_samples;
    if (given("--test-samples")) s.test_samples = test_samples;
    if (s.quick) {
        if (!given("--epochs")) s.epochs = s.method_name == "ada" || s.method_name == "me-ada" ? 2 : 1;
        if (!given("--train-samples")) s.train_samples = 10'000;
        if (!given("--test-samples")) s.test_samples = 2'000;
        if (!given("--report-samples")) s.report_samples = 300;
    }

    // The library's parsers name every valid choice when a name is misspelled.
    try {
        if (s.method_name == "ada" || s.method_name == "me-ada") {
            s.ada = s.method_name;  // plain training on a growing set: fit_ada()
            s.method = advaug::training_method::plain;
        } else {
            s.method = advaug::parse_training_method(s.method_name);
        }
        s.schedule =
            advaug::parse_lr_schedule(s.lr_schedule_name, s.lr, static_cast<double>(s.epochs));
    } catch (const std::invalid_argument& e) {
        throw usage_error(e.what());
    }

    if (!s.ada.empty() && s.epochs < 2) {
        throw usage_error("--method " + s.ada + " needs --epochs >= 2: its phases come after the first epochs");
    }
    if (!s.ada.empty() && s.lr_schedule_name != "constant") {
        throw usage_error("--method " + s.ada + " needs --lr-schedule constant: a schedule would restart at every phase");
    }
    if (s.resume && s.checkpoint.empty()) {
        throw usage_error("--resume needs --checkpoint PATH: the checkpoint to resume from");
    }
    if (s.pgd_steps && s.method != advaug::training_method::pgd) {
        throw usage_error("--pgd-steps is only valid with --method pgd, not --method " +
                          s.method_name);
    }
    const bool family = s.method == advaug::training_method::family;
    const bool consistency = advaug::is_consistency(s.method);
    for (const char* option : {"--family", "--family-start", "--family-search", "--family-draws"}) {
        if (given(option) && !family) {
            throw usage_error(std::string(option) + " is only valid with --method family, not --method " +
                              s.method_name);
        }
    }
    if (given("--family-steps") && !family && s.method != advaug::training_method::augmax) {
        throw usage_error("--family-steps is only valid with --method family or augmax, not --method " +
                          s.method_name);
    }
    if (given("--family-steps") && s.family_search_name == "random") {
        throw usage_error("--family-steps sets the gradient search; --family-search random takes no steps");
    }
    if (given("--family-draws") && s.family_search_name != "random") {
        throw usage_error("--family-draws is only valid with --family-search random, not --family-search " +
                          s.family_search_name);
    }
    if (given("--consistency-weight") && !consistency) {
        throw usage_error("--consistency-weight is only valid with --method augmix or augmax, not --method " +
                          s.method_name);
    }
    if (s.alpha && consistency) {
        throw usage_error("--alpha is not used by --method " + s.method_name +
                          ", which trains on CE(x) + lambda JS; set lambda with --consistency-weight");
    }
    if (s.alpha && *s.alpha != 0 && s.method == advaug::training_method::plain) {
        throw usage_error("--alpha " + shortest(*s.alpha) +
                          " needs an adversarial method; plain has no adversarial loss");
    }
#ifdef ADVAUG_NO_BLAS
    if (s.threads != 0) {
        throw usage_error(
            "--threads sets OpenBLAS's threads, but this build uses advaug's own "
            "single-threaded GEMM (ADVAUG_NO_BLAS)");
    }
#endif
}

// ---------------------------------------------------------------------------------------------
// 1. Data
// ---------------------------------------------------------------------------------------------

// The first `count` images as a data set of bytes. Samples are flat rows of 784 pixels
// (channel_axis = false), the input an MLP takes; batches come out as pixel / 255, so an
// epsilon of 0.1 lets every pixel move by a tenth of its range.
byte_dataset first_images(const advaug::tensor<std::uint8_t, 3>& images,
                          const advaug::label_vector& labels, std::size_t count,
                          const char* option, bool images_as_nchw) {
    if (count > images.shape(0)) {
        throw usage_error(std::string(option) + " " + std::to_string(count) + " is more than the " +
                          std::to_string(images.shape(0)) + " images available");
    }
    const advaug::tensor<std::uint8_t, 3> head =
        xt::view(images, xt::range(0, count), xt::all(), xt::all());
    const advaug::label_vector head_labels = xt::view(labels, xt::range(0, count));
    return byte_dataset::from_images(head, head_labels, num_classes, images_as_nchw);
}

// ---------------------------------------------------------------------------------------------
// 2. Training
// ---------------------------------------------------------------------------------------------

// AugMix's operations: every image family above, at the same budgets (docs/shift_robustness.md
// says which evaluation corruptions each covers). --family mixture-full adds scale and shear,
// the two warps the affine family above leaves out: scale within +-10% (the corruption's
// mildest shrink is 10%) and shear within +-0.2 (a column shift of 0.2 pixels per row).
std::vector<std::pair<advaug::natural_family, double>> mixture_operations(const settings& s) {
    using enum advaug::natural_family;
    std::vector<std::pair<advaug::natural_family, double>> ops{
        {rotation, 15}, {translation, 2}, {brightness, 0.2}, {contrast, 0.3}, {gamma, 0.3}, {blur, 1.5}, {displacement, 1}};
    if (s.family_name == "mixture-full") ops.insert(ops.begin() + 2, {{scale, 0.1}, {shear, 0.2}});
    return ops;
}
advaug::augment_and_mix<float> make_mixture(const settings& s) {
    using namespace advaug;
    return augment_and_mix<float>(natural_families<float>(mixture_operations(s), image_shape{1, 28, 28}, input_domain{}));
}

// The family of --family, on the 28 x 28 images in [0, 1]. any_family holds whichever was
// chosen, so the rest of the program has one type for all of them.
advaug::any_family<float> make_family(const settings& s) {
    using namespace advaug;
    const image_shape images{1, 28, 28};
    if (s.family_name == "mixture" || s.family_name == "mixture-full") return make_mixture(s);
    if (s.family_name == "mixture-linf") {
        return chain<augment_and_mix<float>, linf_ball<float>>(make_mixture(s), linf_ball<float>(images, s.eps));
    }
    const auto warp = affine<float>(images, affine_budget{.rotation = symmetric(15),
                                                          .translate_x = symmetric(2),
                                                          .translate_y = symmetric(2)});
    if (s.family_name == "affine") return warp;
    if (s.family_name == "photometric") {
        return photometric<float>(images, photometric_budget{.brightness = symmetric(0.2),
                                                             .contrast = symmetric(0.3),
                                                             .log_gamma = symmetric(0.3)});
    }
    if (s.family_name == "blur") return gaussian_blur<float>(images, interval{0, 1.5});
    if (s.family_name == "displacement") {
        return displacement_field<float>(images, displacement_budget{.grid = 4, .max_displacement = 1});
    }
    return chain<linf_ball<float>, affine<float>>(linf_ball<float>(images, s.eps), warp);
}

// The search of each training batch: --family-steps sign steps, from a random start (the
// family's FGSM-RS and PGD) or from the identity (its seed's recipe).
advaug::worst_case_options family_search(const settings& s) {
    if (s.family_search_name == "random") {
        return advaug::worst_case_options{}.method(advaug::search_method::random).samples(s.family_draws);
    }
    const std::size_t steps = s.family_steps.value_or(1);
    return advaug::worst_case_options{}
        .steps(steps)
        .step_fraction(steps == 1 ? 1.25 : 2.5 / static_cast<double>(steps))
        .random_start(s.family_start == "random");
}

// The corruptions the second model's training perturbations cover (docs/shift_robustness.md).
std::vector<std::string> covered_by_training(const settings& s) {
    using advaug::natural_family;
    const bool family = s.method == advaug::training_method::family;
    std::vector<natural_family> parts;
    if (advaug::is_consistency(s.method) || (family && s.family_name.starts_with("mixture"))) {
        for (const auto& [part, budget] : mixture_operations(s)) parts.push_back(part);
        return advaug::covered_corruption_names(s.family_name == "mixture-linf" ? std::vector<std::string>{"linf_ball"}
                                                                                 : std::vector<std::string>{},
                                                parts);
    }
    if (!s.ada.empty()) return {};  // no perturbation family: nothing is covered by construction
    if (!family) return advaug::covered_corruption_names({"linf_ball"});  // the attacks' ball
    if (s.family_name == "affine") return advaug::covered_corruption_names({}, {natural_family::rotation, natural_family::translation});
    if (s.family_name == "blur") return advaug::covered_corruption_names({"gaussian_blur"});
    if (s.family_name == "displacement") return advaug::covered_corruption_names({"displacement_field"});
    if (s.family_name == "chain") {
        return advaug::covered_corruption_names({"linf_ball"}, {natural_family::rotation, natural_family::translation});
    }
    return advaug::covered_corruption_names({s.family_name});  // photometric
}

// Appends one JSON object (already formatted) to the log, if there is one.
void json_line(const settings& s, const std::string& object) {
    if (s.json_log.empty()) return;
    std::ofstream out(s.json_log, std::ios::out | std::ios::app);
    out << object << '\n';
    if (!out) throw advaug::io_error("cannot write the JSON log '" + s.json_log + "'");
}

// Trains `model` with `method`; everything else comes from the command line, so the two runs
// differ in the method alone.
template <class model_type>
void train(model_type& model, advaug::training_method method, const settings& s,
           const byte_dataset& train_set, const byte_dataset& test_set) {
    const bool adversarial = method != advaug::training_method::plain;
    auto options = advaug::train_options{}
                       .method(method)
                       .learning_rate(*s.schedule)
                       .epochs(s.epochs)
                       .batch_size(s.batch_size)
                       .seed(s.seed)
                       .log_every(s.log_every)
                       // Epoch summary: clean and PGD-20 accuracy on the first 1,000 test
                       // images (a quick look, not the final measurement).
                       .evaluation(1000, 20);
    if (method == advaug::training_method::family) {
        // The family's worst case instead of an L-inf ball; the epoch summary and the guard
        // search the family too, so epsilon is not set.
        options.family(make_family(s), family_search(s));
    } else if (advaug::is_consistency(method)) {
        // Views of the mixture; epsilon only sets the epoch summary's PGD attack.
        auto search = advaug::train_options::default_consistency_search();
        if (s.family_steps) search.steps(*s.family_steps);
        options.consistency(make_mixture(s), s.consistency_weight, search).epsilon(s.eps);
    } else {
        // For plain training epsilon only sets the PGD attack of the epoch summary, so both
        // runs report robustness at the same radius.
        options.epsilon(s.eps);
    }
    // One checkpoint file per run, rewritten atomically at the end of every epoch.
    const std::string checkpoint =
        s.checkpoint.empty() ? "" : s.checkpoint + "." + std::string(advaug::to_string(method));
    if (!checkpoint.empty()) options.checkpoint(checkpoint);
    // Only set what the user chose: an unset alpha means the method's own default.
    if (adversarial && !advaug::is_consistency(method) && s.alpha) options.alpha(*s.alpha);
    if (method == advaug::training_method::pgd && s.pgd_steps) options.pgd_steps(*s.pgd_steps);
    if (!s.json_log.empty()) {
        options.json_log(s.json_log);
        json_line(
            s, "{\"type\":\"run\",\"method\":\"" + std::string(advaug::to_string(method)) + "\"}");
    }

    // SGD with momentum 0.9, as torch.optim.SGD(momentum=0.9); the trainer drives its
    // learning rate from the schedule.
    advaug::sgd<float> optimizer(advaug::sgd_options{}.momentum(0.9));
    advaug::trainer<model_type, advaug::sgd<float>> trainer(model, optimizer, options);
    // --resume: the checkpoint restores weights, optimizer state and position, and fit() goes
    // on from there with the same batches an uninterrupted run would see.
    if (s.resume) {
        if (std::filesystem::exists(checkpoint)) {
            trainer.resume(checkpoint);
            std::printf("resumed from %s at epoch %zu, batch %zu\n", checkpoint.c_str(),
                        trainer.next_epoch() + 1, trainer.next_batch() + 1);
        } else {
            std::printf("no checkpoint %s yet: training from the start\n", checkpoint.c_str());
        }
    }
    // The trainer prints its settings, the blog post's three losses every --log-every batches
    // (a progress bar instead on a terminal) and a summary per epoch.
    trainer.fit(train_set, &test_set);
}

// --method ada / me-ada: plain training on a set that grows by feature-space adversarial points
// (Volpi et al.'s digit settings: gamma 1, 15 ascent steps of 1; 3 phases of 10,000 points, or
// one per epoch but the last with fewer epochs; for ME-ADA an entropy weight of 1). No
// checkpoints: fit_ada() runs one trainer per stage.
template <class model_type>
void train_ada(model_type& model, const settings& s, const byte_dataset& train_set, const byte_dataset& test_set) {
    const auto options = advaug::train_options{}
                             .learning_rate(*s.schedule)
                             .epochs(s.epochs)
                             .batch_size(s.batch_size)
                             .seed(s.seed)
                             .log_every(s.log_every)
                             .evaluation(1000, 20)
                             .epsilon(s.eps);
    auto ada = advaug::ada_options{}
                   .phases(std::min<std::size_t>(3, s.epochs - 1))
                   .samples(std::min<std::size_t>(10'000, train_set.size()));
    if (s.ada == "me-ada") ada.entropy_weight(1);
    advaug::sgd<float> optimizer(advaug::sgd_options{}.momentum(0.9));
    advaug::fit_ada(model, optimizer, options, train_set, ada, &test_set);
}

// ---------------------------------------------------------------------------------------------
// 3. Evaluation
// ---------------------------------------------------------------------------------------------

// One row of the table: a name and how to measure a model's accuracy on the test set.
template <class model_type>
struct measurement {
    std::string name;
    std::function<double(model_type&, const byte_dataset&)> accuracy;
    double work = 1;  // forward passes per image (an attack of k steps: k + 1), for the progress lines
};

// x + N(0, sigma^2) per pixel, clipped to [0, 1]. Batch b always gets the same noise, drawn
// from its own seeded generator, so both models see identical noisy images.
auto gaussian_noise(double sigma) {
    return [sigma](auto& x, std::size_t batch) {
        advaug::rng gen(noise_seed + batch);
        for (float& v : x) {
            v = std::clamp(v + static_cast<float>(sigma * gen.normal()), 0.0f, 1.0f);
        }
    };
}

template <class model_type>
std::vector<measurement<model_type>> measurements(const settings& s) {
    using advaug::accuracy, advaug::robust_accuracy, advaug::transformed_accuracy;
    std::vector<measurement<model_type>> rows;
    rows.push_back({"clean", [](model_type& m, const byte_dataset& d) { return accuracy(m, d); }});

    // One signed-gradient step: the attack the blog post trained with.
    for (const double eps : {0.01, 0.05, 0.1, 0.2}) {
        char name[48];
        std::snprintf(name, sizeof name, "FGSM eps %g", eps);
        rows.push_back({name, [eps](model_type& m, const byte_dataset& d) {
                            const auto options = advaug::fgsm_options{}.epsilon(eps);
                            return robust_accuracy(
                                m, d, [&](const auto& model, const auto& x, const auto& y) {
                                    return advaug::fgsm(model, x, y, options);
                                });
                        },
                        2.0});
    }

    // The stronger test: 20 steps of 2.5 * eps / 20 from a random start in the eps-ball. A
    // model that merely learned to defeat one FGSM step fails here.
    rows.push_back(
        {"PGD-20 eps 0.1", [](model_type& m, const byte_dataset& d) {
             const auto options = advaug::pgd_options{}.epsilon(0.1).steps(20).seed(pgd_seed);
             return robust_accuracy(m, d, [&](const auto& model, const auto& x, const auto& y) {
                 return advaug::pgd(model, x, y, options);
             });
         },
         21.0});

    // Distribution shifts no attacker chose: sensor noise and a brighter camera.
    for (const double sigma : {0.1, 0.2}) {
        char name[48];
        std::snprintf(name, sizeof name, "Gaussian noise sigma %g", sigma);
        rows.push_back({name, [sigma](model_type& m, const byte_dataset& d) {
                            return transformed_accuracy(m, d, gaussian_noise(sigma));
                        }});
    }
    rows.push_back({"brightness +0.2", [](model_type& m, const byte_dataset& d) {
                        return transformed_accuracy(m, d, [](auto& x, std::size_t) {
                            for (float& v : x) v = std::min(v + 0.2f, 1.0f);
                        });
                    }});

    // With --method family, the family's worst case per test image: the worst of 10 random
    // draws, refined by 10 sign-gradient steps (stronger than the training search).
    if (s.method == advaug::training_method::family) {
        rows.push_back({"worst-case " + s.family_name, [family = make_family(s)](model_type& m, const byte_dataset& d) {
                            const auto search = advaug::worst_case_options{}
                                                    .method(advaug::search_method::both)
                                                    .samples(10)
                                                    .steps(10)
                                                    .seed(pgd_seed);
                            return robust_accuracy(m, d, [&](const auto& model, const auto& x, const auto& y) {
                                return advaug::worst_case(model, family, x, y, search).perturbed;
                            });
                        }});
    }
    return rows;
}

// Every measurement of one model, in the order of `rows`.
template <class model_type>
std::vector<double> evaluate(model_type& model, const std::string& label,
                             const std::vector<measurement<model_type>>& rows, const byte_dataset& test_set) {
    const auto start = clock_type::now();
    std::vector<double> results;
    double total = 0, done = 0;
    for (const auto& row : rows) total += row.work;
    for (const auto& row : rows) {
        results.push_back(row.accuracy(model, test_set));
        // A line per measurement with the time left, estimated from the forward passes done:
        // on the CNN the table takes minutes.
        done += row.work;
        const double elapsed = seconds_since(start);
        const auto left = static_cast<long>(elapsed * (total - done) / done + 0.5);
        std::printf("  evaluating %s: %-24s %3.0f%% of the work, %.0f images/s, %ld:%02ld left\n",
                    label.c_str(), row.name.c_str(), 100 * done / total,
                    elapsed > 0 ? done / total * static_cast<double>(test_set.size()) / elapsed : 0.0,
                    left / 60, left % 60);
        std::fflush(stdout);
    }
    std::printf("evaluated the %s model on %zu test images in %.1f s\n", label.c_str(),
                test_set.size(), seconds_since(start));
    return results;
}

// ---------------------------------------------------------------------------------------------
// 4. The report
// ---------------------------------------------------------------------------------------------

template <class Rows>
void print_table(const Rows& rows, const std::vector<std::string>& labels,
                 const std::vector<std::vector<double>>& results, std::size_t test_count) {
    std::printf("\ntest accuracy on %zu images\n", test_count);
    std::printf("  %-24s", "");
    for (const auto& label : labels) std::printf(" %9s", label.c_str());
    std::printf("\n  %s", std::string(24, '-').c_str());
    for (std::size_t c = 0; c < labels.size(); ++c) std::printf(" %s", std::string(9, '-').c_str());
    std::printf("\n");
    for (std::size_t r = 0; r < rows.size(); ++r) {
        std::printf("  %-24s", rows[r].name.c_str());
        for (const auto& column : results) std::printf(" %8.2f%%", 100 * column[r]);
        std::printf("\n");
    }
}

// The blog post's claim, checked with the thresholds at the top of the file.
void print_verdict(const std::string& method, const std::vector<double>& plain,
                   const std::vector<double>& adversarial, std::size_t pgd_row) {
    const double clean_drop = 100 * (plain[0] - adversarial[0]);
    const double robust_gain = 100 * (adversarial[pgd_row] - plain[pgd_row]);
    const bool little = clean_drop <= little_clean_drop;
    const bool lot = robust_gain >= large_robust_gain;
    const char* verdict = little && lot ? "held"
                          : lot         ? "did not hold (the clean drop is more than a little)"
                          : little      ? "did not hold (the robust gain is not a lot)"
                                        : "did not hold";
    std::printf(
        "\nclaim \"clean accuracy drops a little (<= %.0f points), robust accuracy rises a "
        "lot (>= %.0f points)\": %s; %s vs plain: clean %.2f%% -> %.2f%% (%+.2f points), "
        "PGD-20 at eps 0.1 %.2f%% -> %.2f%% (%+.2f points)\n",
        little_clean_drop, large_robust_gain, verdict, method.c_str(), 100 * plain[0],
        100 * adversarial[0], -clean_drop, 100 * plain[pgd_row], 100 * adversarial[pgd_row],
        robust_gain);
}

template <class Rows>
void log_results(const settings& s, const Rows& rows,
                 const std::vector<std::string>& labels,
                 const std::vector<std::vector<double>>& results) {
    if (s.json_log.empty()) return;
    for (std::size_t c = 0; c < labels.size(); ++c) {
        std::string object = "{\"type\":\"evaluation\",\"model\":\"" + labels[c] + "\"";
        for (std::size_t r = 0; r < rows.size(); ++r) {
            object += ",\"" + rows[r].name + "\":" + json_number(results[c][r]);
        }
        json_line(s, object + "}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. The robustness report
// ---------------------------------------------------------------------------------------------

// The table above measures one point per attack; the report draws whole curves, adds every
// corruption of docs/corruptions.md, and writes it all to files (docs/report.md).

const std::vector<std::string> class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};

// evaluate_robustness() runs batches on several threads, each doing its own GEMMs; OpenBLAS
// threads inside them would oversubscribe the cores. This keeps OpenBLAS to one thread while
// it lives and restores the previous setting.
class single_threaded_blas {
public:
#ifndef ADVAUG_NO_BLAS
    single_threaded_blas() : previous_(advaug::backend::blas_threads()) { advaug::backend::set_blas_threads(1); }
    ~single_threaded_blas() { advaug::backend::set_blas_threads(previous_); }

private:
    int previous_;
#endif
};

// PGD-20 at eps 0.1 on the first 8 report images: a PNG grid (clean | adversarial |
// perturbation x 5, so a pixel moved by the whole 0.1 shows black or white) and the exact
// values as .npy.
template <class model_type>
void write_examples(const std::filesystem::path& dir, const std::string& label, model_type& model,
                    const byte_dataset& images) {
    const std::size_t n = std::min<std::size_t>(8, images.size());
    const auto [x, y] = images.slice<float, model_type::input_rank>(0, n);
    const advaug::mode_guard eval(model, advaug::mode::eval);
    const auto x_adv =
        advaug::pgd(model, x, y, advaug::pgd_options{}.epsilon(0.1).steps(20).seed(pgd_seed));
    const std::vector<std::size_t> shape{n, 28, 28};  // [N, 784] or [N, 1, 28, 28] as images
    const advaug::tensor<float, 3> clean = xt::reshape_view(x, shape);
    const advaug::tensor<float, 3> adversarial = xt::reshape_view(x_adv, shape);
    advaug::write_example_grid((dir / ("examples_" + label + ".png")).string(), clean, adversarial,
                               5.0);
    advaug::io::write_npy((dir / ("examples_" + label + ".npy")).string(), adversarial);
}

// Evaluates both models with evaluate_robustness() on `images` (the first --report-samples
// test images), writes the report into --report and saves the models beside it.
// `adversarial` is null with --method plain.
template <class model_type>
void write_robustness_report(const settings& s, const byte_dataset& images, model_type& plain,
                             model_type* adversarial) {
    const auto start = clock_type::now();
    const std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
    const auto options = advaug::evaluation_options{}
                             .epsilons({0, 0.02, 0.05, 0.1, 0.15, 0.2})
                             .attacks({advaug::attack_spec::fgsm(), advaug::attack_spec::pgd(20)})
                             .corruptions(advaug::all_corruptions())
                             .image_size(28, 28)
                             .threads(threads)
                             .seed(pgd_seed)
                             // A line every 10 s: the report takes minutes on a CNN.
                             .on_progress(advaug::progress_printer(std::cout), 10.0);
    const std::string method = s.ada.empty() ? std::string(advaug::to_string(s.method)) : s.ada;
    std::vector<advaug::model_evaluation> models;
    {
        [[maybe_unused]] const single_threaded_blas blas;
        models.push_back(advaug::evaluate_robustness(plain, images, options, "plain"));
        if (adversarial) {
            models.push_back(advaug::evaluate_robustness(*adversarial, images, options, method));
            // The report splits the corruption mean into what the training perturbations cover
            // and what they do not (docs/shift_robustness.md).
            models.back().covered_corruptions = covered_by_training(s);
        }
    }
    // The plain model is the baseline of the relative mCE (so it scores 1 itself).
    for (std::size_t i = models.size(); i-- > 0;) {
        advaug::set_relative_mce(models[i], models[0]);
        advaug::set_absolute_mce(models[i], models[0]);
    }

    const std::filesystem::path dir(s.report_dir);
    advaug::write_report(s.report_dir, models,
                         advaug::report_options{}
                             .title(std::string("Fashion-MNIST ") +
                                    (model_type::input_rank == 4 ? "CNN" : "MLP") + ": plain" +
                                    (adversarial ? " and " + method : std::string()) + " training")
                             .class_names(class_names));
    write_examples(dir, "plain", plain, images);
    advaug::io::save_model((dir / "plain.npz").string(), plain);
    if (adversarial) {
        write_examples(dir, method, *adversarial, images);
        advaug::io::save_model((dir / (method + ".npz")).string(), *adversarial);
    }
    std::printf("\nrobustness report on %zu test images (%zu threads, %.1f s) written to %s\n",
                images.size(), threads, seconds_since(start),
                (dir / "README.md").string().c_str());
    std::printf("models saved as %s%s%s; evaluate them again with advaug-eval "
                "(docs/advaug_eval.md)\n",
                (dir / "plain.npz").string().c_str(), adversarial ? " and " : "",
                adversarial ? (dir / (method + ".npz")).string().c_str() : "");
}

// ---------------------------------------------------------------------------------------------
// The program
// ---------------------------------------------------------------------------------------------

// Trains, measures and reports for one kind of model; make_model(seed) builds a fresh one.
template <class model_type, class MakeModel>
int run_with(const settings& s, clock_type::time_point started, MakeModel make_model, const std::string& description) {
#ifndef ADVAUG_NO_BLAS
    if (s.threads > 0) advaug::backend::set_blas_threads(s.threads);
#endif
    if (!s.json_log.empty()) {
        // A fresh log per program run; the trainer appends to it.
        std::ofstream truncate(s.json_log, std::ios::out | std::ios::trunc);
        if (!truncate) throw advaug::io_error("cannot create the JSON log '" + s.json_log + "'");
    }

    // 1. Data: 47 MB of bytes, converted to floats one batch at a time.
    const advaug::fashion_mnist data = advaug::load_fashion_mnist(s.data_dir);
    const byte_dataset train_set =
        first_images(data.train_images, data.train_labels,
                     s.train_samples.value_or(data.train_images.shape(0)), "--train-samples",
                     model_type::input_rank == 4);
    const byte_dataset test_set =
        first_images(data.test_images, data.test_labels,
                     s.test_samples.value_or(data.test_images.shape(0)), "--test-samples",
                     model_type::input_rank == 4);
    std::printf("Fashion-MNIST from %s: training on %zu images, testing on %zu\n",
                s.data_dir.c_str(), train_set.size(), test_set.size());

    // The report's images and folder come first, so that a mistake in --report or
    // --report-samples shows before the training, not after it.
    std::optional<byte_dataset> report_set;
    if (!s.report_dir.empty()) {
        report_set = first_images(data.test_images, data.test_labels, s.report_samples,
                                  "--report-samples", model_type::input_rank == 4);
        std::error_code ec;
        std::filesystem::create_directories(s.report_dir, ec);
        if (ec) {
            throw advaug::io_error("cannot create the report folder '" + s.report_dir +
                                   "': " + ec.message());
        }
    }

    // 2. Two models from the same initial weights (the seed), trained the same way except for
    //    the method. With --method plain the second would be an exact copy, so it is skipped.
    const bool compare = s.method != advaug::training_method::plain || !s.ada.empty();
    model_type plain = make_model();
    model_type adversarial = make_model();
    std::printf("\n--- model 1: %s, plain training ---\n", description.c_str());
    train(plain, advaug::training_method::plain, s, train_set, test_set);
    if (compare) {
        std::printf("\n--- model 2: %s, %s training ---\n", description.c_str(), s.method_name.c_str());
        if (s.ada.empty()) {
            train(adversarial, s.method, s, train_set, test_set);
        } else {
            train_ada(adversarial, s, train_set, test_set);
        }
    }

    // 3. The same measurements, on the same test images, for both models.
    std::printf("\n");
    const auto rows = measurements<model_type>(s);
    std::vector<std::string> labels{"plain"};
    std::vector<std::vector<double>> results{evaluate(plain, "plain", rows, test_set)};
    if (compare) {
        labels.push_back(s.method_name);
        results.push_back(evaluate(adversarial, s.method_name, rows, test_set));
    }

    // 4. The report.
    print_table(rows, labels, results, test_set.size());
    log_results(s, rows, labels, results);
    if (compare) {
        const auto pgd_row = static_cast<std::size_t>(
            std::find_if(rows.begin(), rows.end(),
                         [](const auto& m) { return m.name.starts_with("PGD"); }) -
            rows.begin());
        print_verdict(s.method_name, results[0], results[1], pgd_row);
    } else {
        std::printf("\n(--method plain: nothing to compare the plain model with)\n");
    }

    // 5. The robustness report, unless --report ''.
    if (report_set) {
        write_robustness_report(s, *report_set, plain, compare ? &adversarial : nullptr);
    }
    const double total = seconds_since(started);
    const auto whole = static_cast<long>(total + 0.5);
    std::printf("\ntotal wall time: %ld:%02ld (%.1f s)\n", whole / 60, whole % 60, total);
    return 0;
}

int run(const settings& s, clock_type::time_point started) {
    if (s.model_name == "mlp") {
        return run_with<advaug::mlp<float>>(
            s, started, [&] { return advaug::mlp<float>({784, 256, 256, num_classes}, s.seed, s.init); },
            "MLP 784-256-256-10");
    }
    const bool batch_norm = s.model_name == "cnn-bn";
    return run_with<advaug::cnn<float>>(
        s, started, [&] { return advaug::cnn<float>(s.seed, s.init, batch_norm); },
        batch_norm ? "CNN with batch norm" : "CNN");
}

}  // namespace

int main(int argc, char** argv) {
    const auto started = clock_type::now();
    try {
        settings s;
        double alpha = 0;
        std::size_t pgd_steps = 0, train_samples = 0, test_samples = 0;
        CLI::App app{
            "Trains an MLP on Fashion-MNIST plainly and with adversarial data "
            "augmentation, then compares the two on clean, attacked and shifted test "
            "images.",
            "fashion_mnist_ada"};
        declare_options(app, s, alpha, pgd_steps, train_samples, test_samples);
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            if (e.get_exit_code() == 0) return app.exit(e);  // --help
            throw usage_error(e.what());
        }
        finish_settings(app, s, alpha, pgd_steps, train_samples, test_samples);
        return run(s, started);
    } catch (const usage_error& e) {
        std::fflush(stdout);
        std::cerr << "fashion_mnist_ada: " << e.what()
                  << "\nRun with --help for more information.\n";
        return 2;
    } catch (const std::exception& e) {
        std::fflush(stdout);  // keep the report after what was printed so far
        std::cerr << "fashion_mnist_ada: " << e.what() << '\n';
        return 1;
    }
}
