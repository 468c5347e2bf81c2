// advaug and PyTorch read each other's model files and compute the same network: for the
// bundled mlp, cnn and batch-norm cnn, examples/pytorch_interop.py (run with Debian's
// /usr/bin/python3 and python3-torch) loads an advaug file, a file it exports loads into
// advaug, and both sides then give the same logits and FGSM examples. Skipped, with a
// message, where python3-torch is not installed.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "support/models.hpp"
#include "support/skip.hpp"

// xtensor's .npy reader and writer, for the script's inputs and outputs (trusted files, so
// xt::load_npy's lack of checks does not matter here). Guarded as in advaug/io/npz.hpp.
#if __has_include(<xtensor/io/xnpy.hpp>)
#include <xtensor/io/xnpy.hpp>
#else
#include <xtensor/xnpy.hpp>
#endif

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_pytorch_interop {

using namespace advaug;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t batch = 8;
constexpr double epsilon = 0.1;

bool have_torch() {
    static const bool available =
        std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
    return available;
}

fs::path source_dir() {
    if (const char* dir = std::getenv("ADVAUG_SOURCE_DIR"); dir && *dir) return dir;
    return fs::path(__FILE__).parent_path().parent_path();
}

/// A fresh temporary directory, removed again when the test leaves, failed REQUIREs included.
struct temp_dir {
    explicit temp_dir(const std::string& arch)
        : path(fs::temp_directory_path() /
               ("advaug_test_pytorch_interop_" + arch + "_" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    fs::path path;
};

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

/// Runs examples/pytorch_interop.py with `args`; returns its output, and fails the test
/// (showing the output) when it exits with an error.
std::string run_script(const fs::path& dir, const std::string& args) {
    const fs::path log = dir / "script.log";
    const std::string command = "GOMP_SPINCOUNT=0 /usr/bin/python3 " +
                                quoted(source_dir() / "examples" / "pytorch_interop.py") + " " + args +
                                " >" + quoted(log) + " 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream in(log);
    std::stringstream out;
    out << in.rdbuf();
    INFO("command: ", command);
    INFO("output: ", out.str());
    REQUIRE(status == 0);
    return out.str();
}

template <std::size_t N>
tensor<float, N> read_npy(const fs::path& path) {
    const xt::xarray<float> a = xt::load_npy<float>(path.string());
    REQUIRE(a.dimension() == N);
    tensor<float, N> t = a;
    return t;
}

/// What torch computed for a model file: check's logits and FGSM examples.
template <std::size_t R>
struct torch_result {
    tensor<float, 2> logits;
    tensor<float, R> adversarial;
};

template <std::size_t R>
torch_result<R> torch_check(const fs::path& dir, const std::string& arch, const fs::path& model,
                            const std::string& tag) {
    const fs::path logits = dir / (tag + "_logits.npy"), adversarial = dir / (tag + "_fgsm.npy");
    run_script(dir, "check --arch " + arch + " --model " + quoted(model) + " --inputs " +
                        quoted(dir / "x.npy") + " --labels " + quoted(dir / "y.npy") +
                        " --eps " + std::to_string(epsilon) + " --logits " + quoted(logits) +
                        " --fgsm " + quoted(adversarial));
    return {read_npy<2>(logits), read_npy<R>(adversarial)};
}

/// Compares torch's logits and FGSM examples with advaug's for `model` (in eval mode).
/// FGSM's sign() may differ only where the input gradient is zero up to rounding, where the
/// two libraries' different summation orders can give either sign (or an exact zero).
template <class Model, std::size_t R>
void compare(Model& model, const tensor<float, R>& x, const label_vector& y,
             const torch_result<R>& torch) {
    typename Model::cache_type cache;
    tensor<float, 2> logits;
    model.forward(x, cache, logits);
    REQUIRE(torch.logits.shape() == logits.shape());
    const double logit_diff = testing::max_abs_diff(logits, torch.logits);
    INFO("max |logits diff| = ", logit_diff);
    CHECK(logit_diff < 1e-4);

    // advaug's input gradient, to tell a near-zero gradient from a real disagreement
    tensor<float, 2> dlogits;
    cross_entropy_gradient(logits, y, dlogits);
    tensor<float, R> grad;
    model.input_gradient(cache, dlogits, grad);
    double grad_max = 0;
    for (float g : grad) grad_max = std::max(grad_max, std::abs(static_cast<double>(g)));
    REQUIRE(grad_max > 0);

    const tensor<float, R> ours = fgsm(model, x, y, fgsm_options{}.epsilon(epsilon));
    REQUIRE(torch.adversarial.shape() == ours.shape());
    std::size_t mismatches = 0;
    double worst_grad = 0;  // the largest |grad| where the two disagree
    for (std::size_t i = 0; i < ours.size(); ++i) {
        if (std::abs(static_cast<double>(ours.data()[i]) - torch.adversarial.data()[i]) > 1e-6) {
            ++mismatches;
            worst_grad = std::max(worst_grad, std::abs(static_cast<double>(grad.data()[i])));
        }
    }
    MESSAGE("FGSM examples differ in ", mismatches, " of ", ours.size(),
            " elements; there |grad| <= ", worst_grad, " (max |grad| ", grad_max, ")");
    CHECK(mismatches * 1000 <= ours.size());
    CHECK(worst_grad <= 1e-5 * grad_max);
}

/// Moves the batch-norm state of `model` away from its initial values: one train-mode forward
/// and parameter_gradient update the running statistics, and gamma and beta get random values
/// (parameter_gradient alone leaves them at 1 and 0, where swapping them would not show).
template <class Model, std::size_t R>
void exercise_batch_norm(Model& model, const std::array<std::size_t, R>& input_shape) {
    auto x = tensor<float, R>::from_shape(input_shape);
    rng gen(12);
    for (auto& v : x) v = static_cast<float>(gen.uniform());
    model.set_mode(mode::train);
    typename Model::cache_type cache;
    tensor<float, 2> logits, dlogits;
    model.forward(x, cache, logits);
    cross_entropy_gradient(logits, testing::cyclic_labels(input_shape[0], 10), dlogits);
    model.parameter_gradient(cache, dlogits);
    std::size_t moved = 0;
    for (auto& p : model.state()) {
        const bool affine = p.name == "1.weight" || p.name == "1.bias" || p.name == "5.weight" ||
                            p.name == "5.bias";
        if (affine) {
            const double centre = p.name.ends_with("weight") ? 1.0 : 0.0;
            for (auto& v : p.value) v = static_cast<float>(gen.uniform(centre - 0.5, centre + 0.5));
        }
        if (p.name.ends_with("running_mean")) {
            for (float v : p.value) moved += v != 0.0f;
        }
    }
    REQUIRE(moved > 0);  // otherwise the running statistics would go untested
    model.zero_grad();
}

/// Both directions for one architecture. `make(seed)` builds advaug's model with PyTorch's
/// default initialization.
template <class Make, std::size_t R>
void round_trip(const std::string& arch, const Make& make, const std::array<std::size_t, R>& input_shape,
                bool batch_norm) {
    if (!have_torch()) {
        advaug::testing::skip("python3 cannot import torch (apt-get install python3-torch)");
        return;
    }
    const temp_dir tmp(arch);
    const fs::path& dir = tmp.path;
    auto x = tensor<float, R>::from_shape(input_shape);
    rng gen(11);
    for (auto& v : x) v = static_cast<float>(gen.uniform());
    const label_vector y = testing::cyclic_labels(input_shape[0], 10);
    xt::dump_npy((dir / "x.npy").string(), x);
    xt::dump_npy((dir / "y.npy").string(), y);

    {
        INFO("advaug -> PyTorch, ", arch);
        auto model = make(1);
        if (batch_norm) exercise_batch_norm(model, input_shape);
        model.set_mode(mode::eval);
        const fs::path file = dir / "advaug.npz";
        io::save_model(file.string(), model);
        compare(model, x, y, torch_check<R>(dir, arch, file, "a"));
    }
    {
        INFO("PyTorch -> advaug, ", arch);
        const fs::path file = dir / "torch.npz";
        run_script(dir, "export --arch " + arch + " --out " + quoted(file) + " --seed 5");
        auto model = make(2);
        // load_model compares the stored architecture with describe(): this checks the
        // script's constants
        CHECK(io::load_metadata(file.string()).at("architecture") == model.describe());
        REQUIRE_NOTHROW(io::load_model(file.string(), model));
        model.set_mode(mode::eval);
        compare(model, x, y, torch_check<R>(dir, arch, file, "b"));
    }
}

}  // namespace

TEST_CASE("PyTorch and advaug exchange the mlp 784-256-256-10") {
    round_trip(
        "mlp", [](std::uint64_t seed) { return mlp<float>({784, 256, 256, 10}, seed, weight_init::pytorch_default); },
        std::array<std::size_t, 2>{batch, 784}, false);
}

TEST_CASE("PyTorch and advaug exchange the cnn") {
    round_trip(
        "cnn", [](std::uint64_t seed) { return cnn<float>(seed, weight_init::pytorch_default); },
        std::array<std::size_t, 4>{batch, 1, 28, 28}, false);
}

TEST_CASE("PyTorch and advaug exchange the cnn with batch norm, running statistics included") {
    round_trip(
        "cnn-bn", [](std::uint64_t seed) { return cnn<float>(seed, weight_init::pytorch_default, true); },
        std::array<std::size_t, 4>{batch, 1, 28, 28}, true);
}

}  // namespace test_pytorch_interop
