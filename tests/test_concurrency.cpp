// The promise of docs/reliability.md ("Threads"): attacks and evaluation on ONE model in eval
// mode may run in several threads at once, each call with its own arguments, and give bit for
// bit what they give one after another. scripts/sanitize.sh thread runs this file under
// ThreadSanitizer, which must report nothing.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_concurrency {

using namespace advaug;

namespace {

constexpr std::size_t threads = 4;

template <class T, std::size_t N>
bool same_bits(const tensor<T, N>& a, const tensor<T, N>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (!same_bits(a[i], b[i])) return false;
    return true;
}

bool same_bits(const model_evaluation& a, const model_evaluation& b) {
    bool same = same_bits(a.clean_accuracy, b.clean_accuracy) &&
                same_bits(a.per_class_accuracy, b.per_class_accuracy) && a.confusion == b.confusion &&
                a.curves.size() == b.curves.size() && a.corruptions.size() == b.corruptions.size();
    for (std::size_t i = 0; same && i < a.curves.size(); ++i)
        same = same_bits(a.curves[i].accuracy, b.curves[i].accuracy);
    for (std::size_t i = 0; same && i < a.corruptions.size(); ++i)
        same = same_bits(a.corruptions[i].accuracy, b.corruptions[i].accuracy);
    return same;
}

/// Parameters, gradients and batch-norm buffers: everything a const call must leave alone.
template <class M>
std::vector<std::vector<typename M::value_type>> everything(M& model) {
    auto out = testing::snapshot(model);
    for (auto& p : model.state()) out.emplace_back(p.value.begin(), p.value.end());
    return out;
}

/// What one thread computes for its own batch b: the attacks and the evaluation.
template <class T, std::size_t R>
struct outcome {
    tensor<T, R> fgsm_x, pgd_x, pgd_l2_x;
    model_evaluation evaluation;
    double clean_accuracy = 0;
};

/// Batch b of a data set whose samples have shape `sample` (values in [0, 1]).
template <class T, std::size_t R>
std::pair<tensor<T, R>, label_vector> batch_of(const dataset<float>& data, std::size_t b,
                                                std::size_t rows) {
    return data.template slice<T, R>(b * rows, rows);
}

template <class M, std::size_t R>
outcome<typename M::value_type, R> run_all(M& model, const dataset<float>& data, std::size_t b,
                                           std::size_t rows, const evaluation_options& options) {
    using T = typename M::value_type;
    const M& frozen = model;
    const auto [x, y] = batch_of<T, R>(data, b, rows);
    outcome<T, R> out;
    out.fgsm_x = fgsm(frozen, x, y, fgsm_options{}.epsilon(0.1));
    out.pgd_x = pgd(frozen, x, y, pgd_options{}.epsilon(0.1).steps(3).seed(b));
    out.pgd_l2_x = pgd(frozen, x, y, pgd_options{}.epsilon(1.0).norm(norm::l2).steps(2).seed(b + 7));
    // The non-const entry points: the model is already in eval mode, so they only read it.
    out.evaluation = evaluate_robustness(model, data, options, "shared");
    out.clean_accuracy = accuracy(model, data, rows);
    return out;
}

/// Runs every batch once on this thread, then all of them at once on `threads` threads
/// (thread t takes batch t), and checks that each thread got the single-threaded result.
template <class M, std::size_t R>
void check_shared(M& model, const dataset<float>& data, std::size_t rows,
                  const evaluation_options& options) {
    using T = typename M::value_type;
    // A call that finds advaug's pool busy runs on its own thread, and a dense product split
    // over the pool's threads may differ from the unsplit one in the last bits (README,
    // "advaug's threads"). With one advaug thread every call, alone or not, runs the same
    // arithmetic, so bit-for-bit equality is the claim to test.
    const std::size_t saved_threads = num_threads();
    set_num_threads(1);
    struct restore_threads {
        std::size_t n;
        ~restore_threads() { set_num_threads(n); }
    } restore{saved_threads};
    model.set_mode(mode::eval);
    const auto before = everything(model);

    std::vector<outcome<T, R>> alone;
    for (std::size_t t = 0; t < threads; ++t) alone.push_back(run_all<M, R>(model, data, t, rows, options));

    // Twice, so that a thread racing with another's second round is also exercised.
    for (int round = 0; round < 2; ++round) {
        std::vector<outcome<T, R>> together(threads);
        std::vector<std::string> errors(threads);
        std::vector<std::thread> pool;
        for (std::size_t t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                try {
                    together[t] = run_all<M, R>(model, data, t, rows, options);
                } catch (const std::exception& e) {
                    errors[t] = e.what();
                }
            });
        }
        for (auto& th : pool) th.join();
        for (std::size_t t = 0; t < threads; ++t) {
            CAPTURE(round);
            CAPTURE(t);
            CHECK(errors[t] == "");
            CHECK(same_bits(together[t].fgsm_x, alone[t].fgsm_x));
            CHECK(same_bits(together[t].pgd_x, alone[t].pgd_x));
            CHECK(same_bits(together[t].pgd_l2_x, alone[t].pgd_l2_x));
            CHECK(same_bits(together[t].evaluation, alone[t].evaluation));
            CHECK(same_bits(together[t].clean_accuracy, alone[t].clean_accuracy));
        }
    }
    // Different batches give different examples: the comparison above can tell threads apart.
    CHECK_FALSE(same_bits(alone[0].pgd_x, alone[1].pgd_x));
    CHECK(model.mode() == mode::eval);
    CHECK(everything(model) == before);
}

/// Random pixels in [0, 1] with cyclic labels: `n` samples of shape `sample`.
dataset<float> random_images(std::size_t n, std::vector<std::size_t> sample, std::size_t classes,
                             std::uint64_t seed) {
    std::size_t size = 1;
    for (auto d : sample) size *= d;
    std::vector<float> px(n * size);
    rng gen(seed);
    for (auto& v : px) v = static_cast<float>(gen.uniform());
    return dataset<float>(std::move(px), std::move(sample), testing::cyclic_labels(n, classes), classes);
}

}  // namespace

TEST_CASE("fgsm, pgd, evaluate_robustness and accuracy on one shared MLP in eval mode, from 4 threads") {
    mlp<float> net({64, 32, 10}, 5);
    const std::size_t rows = 8;
    const auto data = random_images(threads * rows, {64}, 10, 1);
    // evaluate_robustness itself starts 2 threads here: threads inside threads
    const auto options = evaluation_options{}
                             .epsilons({0.0, 0.05})
                             .attacks({attack_spec::fgsm(), attack_spec::pgd(2)})
                             .corruptions({corruption::gaussian_noise, corruption::contrast})
                             .image_size(8, 8)
                             .batch_size(rows)
                             .threads(2)
                             .seed(9);
    check_shared<mlp<float>, 2>(net, data, rows, options);
}

TEST_CASE("fgsm, pgd, evaluate_robustness and accuracy on one shared batch-norm CNN in eval mode, from 4 threads") {
    cnn<float> net(3, weight_init::he_normal, true);
    const std::size_t rows = 2;
    const auto data = random_images(threads * rows, {1, 28, 28}, 10, 2);
    {
        // Move the running statistics away from (0, 1), so that eval mode really uses them.
        const auto [x, y] = data.slice<float, 4>(0, data.size());
        typename cnn<float>::cache_type cache;
        tensor<float, 2> logits;
        net.set_mode(mode::train);
        net.forward(x, cache, logits);
        net.parameter_gradient(cache, logits);
    }
    const auto options = evaluation_options{}
                             .epsilons({0.0, 0.05})
                             .attacks({attack_spec::pgd(1)})
                             .corruptions({corruption::contrast})
                             .batch_size(rows)
                             .seed(9);
    check_shared<cnn<float>, 4>(net, data, rows, options);
}

}  // namespace test_concurrency
