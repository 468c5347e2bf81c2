// custom_model.cpp: bring your own model to advaug.
//
// advaug's attacks, gradient checks and trainers never ask how a model is built. They need a
// type with a handful of members, the model contract of advaug/model/classifier.hpp; there is
// no base class to inherit from and nothing to register. This program walks through the whole
// round trip with the smallest useful model, softmax regression written in plain xtensor:
//
//   1. write the model and let the compiler confirm that it satisfies the contract;
//   2. verify its hand-written gradients against finite differences;
//   3. train it on Fashion-MNIST with a few lines of plain SGD;
//   4. measure how much FGSM and PGD attacks lower its test accuracy;
//   5. hand your own arrays to advaug's trainer, checkpoint and resume it, save the model to a
//      file and load it back.
//
//   custom_model [--data DIR] [--epochs N] [--out DIR] [--smoke]
//
// Build (the model does its own arithmetic, so BLAS is optional):
//   g++ -std=c++20 -O2 -Iinclude examples/custom_model.cpp -o custom_model -lopenblas -lz
//   g++ -std=c++20 -O2 -Iinclude -DADVAUG_NO_BLAS examples/custom_model.cpp -o custom_model -lz

#include <advaug/advaug.hpp>
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// Batches of inputs, logits and their gradients are [rows, columns] float tensors.
using matrix = advaug::tensor<float, 2>;

// ---------------------------------------------------------------------------------------------
// 1. The model: logits = x W^T + b, with W [classes, features] and b [classes].
// ---------------------------------------------------------------------------------------------

class softmax_regression {
public:
    // The contract's types: the scalar type, and inputs of rank 2, [batch, features].
    using value_type = float;
    static constexpr std::size_t input_rank = 2;

    // What forward() leaves for the backward members. A linear model needs only its input, and
    // the contract lets the cache point at x instead of copying it: callers keep x alive and
    // unchanged until their last backward call on this cache.
    struct cache_type {
        const matrix* x = nullptr;
    };

    softmax_regression(std::size_t features, std::size_t classes, std::uint64_t seed)
        : W_(xt::zeros<float>({classes, features})),
          b_(xt::zeros<float>({classes})),
          dW_(xt::zeros<float>({classes, features})),
          db_(xt::zeros<float>({classes})) {
        // Small random weights rather than zeros: with W = 0 every input gradient is zero, and
        // the gradient check of step 2 would pass without testing anything.
        std::mt19937_64 gen(seed);
        std::normal_distribution<float> normal(0.0f, 0.01f);
        for (float& w : W_) w = normal(gen);
    }

    std::size_t num_classes() const { return W_.shape()[0]; }
    std::size_t features() const { return W_.shape()[1]; }

    // The three products below are written as plain loops over xtensor elements: no BLAS
    // needed, and at this size they are faster than the equivalent broadcast-and-sum
    // xtensor expressions.

    // logits(i, k) = b(k) + sum_j x(i, j) W(k, j).
    void forward(const matrix& x, cache_type& cache, matrix& logits) const {
        const std::size_t n = x.shape()[0], d = features(), c = num_classes();
        if (n == 0 || x.shape()[1] != d) {
            const std::string expected = "[N >= 1, " + std::to_string(d) + "]";
            throw std::invalid_argument("softmax_regression::forward(): inputs must be " +
                                        expected);
        }
        logits.resize({n, c});
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t k = 0; k < c; ++k) {
                float sum = b_(k);
                for (std::size_t j = 0; j < d; ++j) sum += x(i, j) * W_(k, j);
                logits(i, k) = sum;
            }
        }
        cache.x = &x;
    }

    // dx = dlogits W, i.e. dx(i, j) = sum_k dlogits(i, k) W(k, j). It reads W and writes dx
    // only: an attack can run between two optimizer steps without leaking into dW and db.
    void input_gradient(const cache_type& cache, const matrix& dlogits, matrix& dx) const {
        const std::size_t n = cache_input(cache).shape()[0], d = features(), c = num_classes();
        dx.resize({n, d});
        dx.fill(0.0f);
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t k = 0; k < c; ++k) {
                const float g = dlogits(i, k);
                for (std::size_t j = 0; j < d; ++j) dx(i, j) += g * W_(k, j);
            }
        }
    }

    // dW += dlogits^T x and db += column sums of dlogits. The contract says "add", not "set":
    // a trainer zeroes the gradients once and may then accumulate several batches.
    void parameter_gradient(const cache_type& cache, const matrix& dlogits) {
        const matrix& x = cache_input(cache);
        const std::size_t n = x.shape()[0], d = features(), c = num_classes();
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t k = 0; k < c; ++k) {
                const float g = dlogits(i, k);
                for (std::size_t j = 0; j < d; ++j) dW_(k, j) += g * x(i, j);
                db_(k) += g;
            }
        }
    }

    void zero_grad() {
        dW_.fill(0.0f);
        db_.fill(0.0f);
    }

    // Each parameter next to its gradient, as flat spans into the model's own storage: this
    // is all an optimizer (or the gradient check) needs to see of the model. The spans must
    // stay valid, so W_, b_, dW_ and db_ are only ever written in place (elements, fill(),
    // views). Beware `dW_ += expression`: xtensor evaluates it into a new buffer and swaps
    // that in, which leaves every span handed out here pointing at freed memory.
    std::vector<advaug::parameter_view<float>> parameters() {
        return {{"weight", {num_classes(), features()}, span(W_), span(dW_)},
                {"bias", {num_classes()}, span(b_), span(db_)}};
    }

    // The contract asks every model for an explicit train/eval switch. Softmax regression
    // computes the same thing in both modes; a model with dropout or batch norm would not.
    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

    // Not part of the contract, but what model files need (advaug/io/model_file.hpp):
    // state() is everything a file must hold to restore the model (the parameters, plus any
    // buffer such as batch norm's running statistics), and describe() names the architecture,
    // so that load_model() refuses a file written by a different one. The trainer's
    // checkpoints keep state() as well.
    std::vector<advaug::parameter_view<float>> state() { return parameters(); }
    std::string describe() const {
        return "softmax_regression " + std::to_string(features()) + "-" + std::to_string(num_classes());
    }

private:
    template <class Tensor>
    static std::span<float> span(Tensor& t) {
        return {t.data(), t.size()};
    }

    static const matrix& cache_input(const cache_type& cache) {
        if (cache.x == nullptr) {
            throw std::logic_error("softmax_regression: the cache was not filled by forward()");
        }
        return *cache.x;
    }

    matrix W_;
    advaug::tensor<float, 1> b_;
    matrix dW_;
    advaug::tensor<float, 1> db_;
    advaug::mode mode_ = advaug::mode::train;
};

// The contract is a C++20 concept: if a member is missing or has the wrong signature, this
// line fails to compile, instead of an error deep inside an attack's template code.
static_assert(advaug::trainable_classifier<softmax_regression>);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

// The number of rows of x that the model classifies correctly: its logits, then the library's
// count_correct(logits, labels).
std::size_t correct_predictions(const softmax_regression& model, const matrix& x,
                                const advaug::label_vector& labels) {
    softmax_regression::cache_type cache;
    matrix logits;
    model.forward(x, cache, logits);
    return advaug::count_correct(logits, labels);
}

double percent(std::size_t part, std::size_t whole) {
    return 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// ---------------------------------------------------------------------------------------------
// 2. Gradient check: compare the hand-written gradients with finite differences.
// ---------------------------------------------------------------------------------------------

void check_gradients(softmax_regression& model, const matrix& samples) {
    // A float model needs a large finite-difference step (the default 1e-6 drowns in rounding
    // error) and a correspondingly loose bound; a double model would pass 1e-6 with step 1e-6.
    const auto options = advaug::gradient_check_options().step(1e-2);
    const double tolerance = 1e-2;

    const auto input = advaug::check_input_gradient(model, samples, options);
    const auto params = advaug::check_parameter_gradient(model, samples, options);
    std::printf("gradient check on %zu samples (step 1e-2, tolerance 1e-2):\n", samples.shape()[0]);
    std::printf("  input gradient:     relative error %.2e over %zu entries\n",
                input.relative_error, input.checked);
    std::printf("  parameter gradient: relative error %.2e over %zu entries\n",
                params.relative_error, params.checked);
    for (const auto& [what, result] : {std::pair{"input", input}, std::pair{"parameter", params}}) {
        if (!result.passed(tolerance)) {
            char message[160];
            std::snprintf(message, sizeof message,
                          "gradient check failed: %s gradient relative error %.2e > %.0e "
                          "(worst at flat index %zu)",
                          what, result.relative_error, tolerance, result.worst_index);
            throw std::runtime_error(message);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Training: plain mini-batch SGD on the mean cross-entropy.
// ---------------------------------------------------------------------------------------------

void train(softmax_regression& model, const matrix& images, const advaug::label_vector& labels,
           std::size_t epochs) {
    constexpr std::size_t batch_size = 128;
    constexpr float learning_rate = 0.1f;
    const std::size_t n = images.shape()[0], features = images.shape()[1];

    std::mt19937_64 gen(1234);  // seeded: the same run gives the same model
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});

    // The views alias the model's weights and gradients; they stay valid while it lives.
    auto params = model.parameters();
    softmax_regression::cache_type cache;
    matrix batch, logits, dlogits;
    advaug::label_vector batch_labels;

    advaug::mode_guard training(model, advaug::mode::train);
    for (std::size_t epoch = 1; epoch <= epochs; ++epoch) {
        std::shuffle(order.begin(), order.end(), gen);
        double loss_sum = 0;
        for (std::size_t first = 0; first < n; first += batch_size) {
            const std::size_t count = std::min(batch_size, n - first);
            batch.resize({count, features});
            batch_labels.resize({count});
            for (std::size_t i = 0; i < count; ++i) {
                xt::row(batch, i) = xt::row(images, order[first + i]);
                batch_labels(i) = labels(order[first + i]);
            }

            // forward -> dL/dlogits -> dL/dparameters -> step. The loss function is not part of
            // the model: any loss works as long as it supplies dL/dlogits.
            model.zero_grad();
            model.forward(batch, cache, logits);
            const float loss = advaug::cross_entropy_gradient(logits, batch_labels, dlogits);
            model.parameter_gradient(cache, dlogits);
            for (auto& p : params) {
                for (std::size_t i = 0; i < p.value.size(); ++i) {
                    p.value[i] -= learning_rate * p.grad[i];
                }
            }
            loss_sum += static_cast<double>(loss) * static_cast<double>(count);
        }
        std::printf("epoch %zu/%zu: mean training loss %.4f over %zu images\n", epoch, epochs,
                    loss_sum / static_cast<double>(n), n);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Evaluation: clean accuracy, then accuracy under FGSM and PGD at several radii.
// ---------------------------------------------------------------------------------------------

void evaluate(softmax_regression& model, const advaug::tensor<std::uint8_t, 3>& images,
              const advaug::label_vector& labels, std::size_t count) {
    constexpr std::size_t batch_size = 500;
    const std::vector<double> epsilons{0.01, 0.05, 0.1, 0.2};
    std::size_t clean = 0;
    std::vector<std::size_t> fgsm_correct(epsilons.size()), pgd_correct(epsilons.size());

    // Attacks are normally run in eval mode; the guard restores the previous mode on exit.
    advaug::mode_guard eval(model, advaug::mode::eval);
    // The forward passes below classify the attacked batches in eval mode too.
    softmax_regression::cache_type cache;
    matrix logits;
    for (std::size_t first = 0; first < count; first += batch_size) {
        const std::size_t n = std::min(batch_size, count - first);
        // Pixels scaled to [0, 1], the attacks' default input domain, so an epsilon of 0.1
        // means "each pixel may move by a tenth of its range".
        const matrix x = advaug::images_to_rows<float>(images, first, n);
        const advaug::label_vector y = xt::view(labels, xt::range(first, first + n));
        clean += correct_predictions(model, x, y);

        for (std::size_t e = 0; e < epsilons.size(); ++e) {
            const double eps = epsilons[e];
            // One signed-gradient step of size eps.
            const matrix x_fgsm = advaug::fgsm(model, x, y, advaug::fgsm_options{}.epsilon(eps));
            model.forward(x_fgsm, cache, logits);
            fgsm_correct[e] += advaug::count_correct(logits, y);
            // 20 L-inf steps of 2.5 * eps / 20 from a random start in the eps-ball; the seed
            // fixes the start, so the numbers below are reproducible.
            const matrix x_pgd =
                advaug::pgd(model, x, y, advaug::pgd_options{}.epsilon(eps).steps(20).seed(42));
            pgd_correct[e] += correct_predictions(model, x_pgd, y);
        }
    }

    // For a linear model the loss gradient barely changes inside the ball, so FGSM's single
    // step is already close to the worst case and PGD adds little; on a deep network the gap
    // between the two columns is usually much wider.
    std::printf("clean test accuracy: %.2f%% on %zu images\n\n", percent(clean, count), count);
    std::printf("   eps | FGSM acc | PGD-20 acc\n");
    std::printf("  -----+----------+-----------\n");
    for (std::size_t e = 0; e < epsilons.size(); ++e) {
        std::printf("  %4.2f | %7.2f%% | %9.2f%%\n", epsilons[e], percent(fgsm_correct[e], count),
                    percent(pgd_correct[e], count));
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Your own arrays through advaug's trainer: checkpoint, resume, save and load.
// ---------------------------------------------------------------------------------------------

// The training options of step 5: the seed's recipe (FGSM, alpha 0.5) at eps 0.1, with a
// checkpoint written at the end of every epoch.
advaug::train_options recipe(const std::string& checkpoint, std::size_t epochs) {
    return advaug::train_options{}
        .method(advaug::training_method::fgsm)
        .epsilon(0.1)
        // The range of your features in raw units. Pixels lie in [0, 1], the default; a table
        // of z-scores needs bounds(lo, hi) or advaug::input_domain::unbounded() here.
        .domain(advaug::input_domain{}.bounds(0.0, 1.0))
        .learning_rate(advaug::lr_schedule::constant(0.1))
        .batch_size(128)
        .epochs(epochs)
        .seed(5)
        .log_every(0)
        .checkpoint(checkpoint);
}

void train_save_and_resume(const matrix& images, const advaug::label_vector& labels,
                           const std::filesystem::path& out) {
    std::filesystem::create_directories(out);
    const std::string checkpoint = (out / "softmax.ckpt").string();
    const std::string model_file = (out / "softmax.npz").string();
    std::filesystem::remove(checkpoint);  // this demo starts from scratch every time

    // The trainer takes a dataset<S>: N samples of one shape, stored as S (float here, or
    // std::uint8_t pixels with a scale of 1/255), and one label in [0, classes) per sample.
    // From your own arrays: the features row after row, N * 784 floats, and N labels.
    const std::size_t n = images.shape()[0], features = images.shape()[1];
    std::vector<float> rows(images.begin(), images.end());
    advaug::label_vector targets = labels;
    const advaug::dataset<float> table(std::move(rows), {features}, std::move(targets), 10);

    // Epoch 1, then the program "stops": the checkpoint holds the weights, the optimizer's
    // state and the position.
    {
        softmax_regression model(features, 10, /*seed=*/11);
        advaug::sgd<float> optimizer;
        advaug::trainer trainer(model, optimizer, recipe(checkpoint, 1));
        trainer.fit(table);
    }

    // A new process with a fresh model and optimizer: resume() loads the checkpoint when there
    // is one, and fit() continues with epoch 2 exactly as an uninterrupted run would.
    softmax_regression model(features, 10, /*seed=*/11);
    advaug::sgd<float> optimizer;
    advaug::trainer trainer(model, optimizer, recipe(checkpoint, 2));
    if (std::filesystem::exists(checkpoint)) {
        trainer.resume(checkpoint);
        std::printf("resumed from %s at epoch %zu\n", checkpoint.c_str(), trainer.next_epoch() + 1);
    }
    trainer.fit(table);

    // The trained model as a file: every array of state() and describe(), in one .npz that
    // numpy can read. load_model() refuses a file of another architecture.
    advaug::io::save_model(model_file, model);
    softmax_regression loaded(features, 10, /*seed=*/99);
    advaug::io::load_model(model_file, loaded);

    // The same with the parameters alone, for a model without describe() or state(): the
    // metadata are free-form, and load_parameters() checks every name, shape and dtype.
    const std::string weights_file = (out / "softmax_weights.npz").string();
    advaug::io::save_parameters(weights_file, model.parameters(), {{"note", "softmax regression"}});
    softmax_regression reloaded(features, 10, /*seed=*/98);
    advaug::io::load_parameters(weights_file, reloaded.parameters());

    const std::size_t correct = correct_predictions(model, images, labels);
    if (correct_predictions(loaded, images, labels) != correct ||
        correct_predictions(reloaded, images, labels) != correct) {
        throw std::runtime_error("a model loaded from its file classifies differently");
    }
    std::printf("after 2 epochs of FGSM training: %.2f%% of the %zu training images correct; "
                "saved to %s and loaded back\n",
                percent(correct, n), n, model_file.c_str());
}

// ---------------------------------------------------------------------------------------------
// The program
// ---------------------------------------------------------------------------------------------

struct command_line {
    std::string data_dir = advaug::default_fashion_mnist_dir();
    std::size_t epochs = 1;
    std::string out_dir = "custom_model_files";
    bool smoke = false;
};

void print_usage(std::ostream& out) {
    out << "usage: custom_model [--data DIR] [--epochs N] [--out DIR] [--smoke] [--help]\n"
           "  --data DIR   Fashion-MNIST directory (default: $ADVAUG_FASHION_MNIST, else\n"
           "               /usr/share/datasets/fashion-mnist)\n"
           "  --epochs N   training epochs of step 3, N >= 1 (default 1)\n"
           "  --out DIR    where step 5 writes its checkpoint and model files\n"
           "               (default custom_model_files)\n"
           "  --smoke      quick run: train on 2,000 images, evaluate on 1,000\n"
           "  --help       show this help\n";
}

bool parse_positive(const std::string& text, std::size_t& value) {
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    return ec == std::errc{} && ptr == end && value >= 1;
}

int run(const command_line& args) {
    const advaug::fashion_mnist data = advaug::load_fashion_mnist(args.data_dir);
    const std::size_t train_limit = args.smoke ? 2000 : data.train_labels.size();
    const std::size_t test_limit = args.smoke ? 1000 : data.test_labels.size();
    const std::size_t train_count = std::min(train_limit, data.train_labels.size());
    const std::size_t test_count = std::min(test_limit, data.test_labels.size());
    const std::size_t features = data.train_images.shape(1) * data.train_images.shape(2);
    std::printf("Fashion-MNIST from %s: training on %zu images, testing on %zu\n\n",
                args.data_dir.c_str(), train_count, test_count);

    softmax_regression model(features, 10, /*seed=*/7);

    check_gradients(model, advaug::images_to_rows<float>(data.train_images, 0, 4));
    std::printf("\n");

    const matrix train_x = advaug::images_to_rows<float>(data.train_images, 0, train_count);
    const advaug::label_vector train_y = xt::view(data.train_labels, xt::range(0, train_count));
    train(model, train_x, train_y, args.epochs);
    std::printf("\n");

    evaluate(model, data.test_images, data.test_labels, test_count);
    std::printf("\n");

    train_save_and_resume(train_x, train_y, args.out_dir);
    return 0;
}

int main(int argc, char** argv) {
    try {
        command_line args;
        for (int i = 1; i < argc; ++i) {
            const std::string arg = argv[i];
            const bool has_value = i + 1 < argc;
            if (arg == "--help" || arg == "-h") {
                print_usage(std::cout);
                return 0;
            } else if (arg == "--smoke") {
                args.smoke = true;
            } else if (arg == "--data" && has_value) {
                args.data_dir = argv[++i];
            } else if (arg == "--out" && has_value) {
                args.out_dir = argv[++i];
            } else if (arg == "--epochs" && has_value && parse_positive(argv[i + 1], args.epochs)) {
                ++i;
            } else {
                const bool takes_value = arg == "--data" || arg == "--epochs" || arg == "--out";
                std::cerr << "custom_model: bad or incomplete argument '" << arg
                          << (takes_value && has_value ? " " + std::string(argv[i + 1]) : "")
                          << "'\n";
                print_usage(std::cerr);
                return 2;
            }
        }
        return run(args);
    } catch (const std::exception& e) {
        std::fflush(stdout);  // keep the report after what was printed so far
        std::cerr << "custom_model: " << e.what() << '\n';
        return 1;
    }
}
