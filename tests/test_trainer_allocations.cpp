// A training step allocates nothing after the first: trainer::compute_gradient() and the
// optimizer's step() reuse every buffer (activations, deltas, scratch, momentum), for every
// method and the bundled models. An attack given an attack_workspace allocates only its
// result and its resolved domain. A property, not a timing: the global operator new counts.
#include <advaug/attacks/fgsm.hpp>
#include <advaug/attacks/pgd.hpp>
#include <advaug/models/cnn.hpp>
#include <advaug/models/mlp.hpp>
#include <advaug/training/trainer.hpp>
#include <sstream>
#include <string>

#include "support/optimizer_fixtures.hpp"  // replaces operator new; include from this file only

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_trainer_allocations {

using namespace advaug;

namespace {

template <class T, std::size_t R>
tensor<T, R> uniform_inputs(std::array<std::size_t, R> shape, std::uint64_t seed) {
    rng gen(seed);
    auto x = tensor<T, R>::from_shape(shape);
    for (auto& v : x) v = static_cast<T>(gen.uniform(0.05, 0.95));
    return x;
}

label_vector labels(std::size_t n, std::size_t classes) {
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) y(i) = static_cast<std::int64_t>(i % classes);
    return y;
}

struct setting {
    training_method method;
    double alpha;
    mode attack_mode;
};

// The seed's recipe with alpha 0.5 (its forward and backward at x shared with the clean half),
// the single-step methods with their default alpha and with a clean half, and PGD.
const setting settings[] = {
    {training_method::plain, 0.0, mode::eval},   {training_method::fgsm, 0.5, mode::eval},
    {training_method::fgsm, 0.5, mode::train},   {training_method::fgsm_rs, 1.0, mode::eval},
    {training_method::fgsm_rs, 0.5, mode::eval}, {training_method::n_fgsm, 1.0, mode::eval},
    {training_method::pgd, 1.0, mode::eval},
};

/// Allocations of steps 3..6 (compute_gradient + optimizer step), after two warm-up steps
/// that also compute the clean loss for the log line once.
template <class M, class O, class X>
std::size_t allocations_after_warmup(M& model, O& optimizer, const X& x, const label_vector& y,
                                     const setting& s, std::size_t& first_step) {
    static std::ostringstream sink;
    auto options = train_options{}
                       .method(s.method)
                       .alpha(s.alpha)
                       .attack_mode(s.attack_mode)
                       .learning_rate(lr_schedule::constant(0.01))
                       .batch_size(x.shape()[0])
                       .seed(5)
                       .progress(progress_style::none)
                       .output(sink);
    if (s.method == training_method::plain) {
        options.alpha(0.0);
    } else {
        options.epsilon(0.1);
    }
    if (s.method == training_method::pgd) options.pgd_steps(3);
    trainer tr(model, optimizer, options);
    model.set_mode(mode::train);
    auto params = model.parameters();
    std::size_t before = testing::allocations;
    tr.compute_gradient(x, y, 0.1, 1, true);
    optimizer.step(params, 0.01);
    first_step = testing::allocations - before;
    tr.compute_gradient(x, y, 0.1, 2, false);
    optimizer.step(params, 0.01);

    before = testing::allocations;
    for (std::uint64_t k = 3; k <= 6; ++k) {
        tr.compute_gradient(x, y, 0.1, k, k % 2 == 0);  // logged and unlogged batches
        optimizer.step(params, 0.01);
    }
    return testing::allocations - before;
}

template <class M, class X>
void check_model(const std::string& name, M make(), const X& x, const label_vector& y) {
    for (const auto& s : settings) {
        CAPTURE(name);
        CAPTURE(to_string(s.method));
        CAPTURE(s.alpha);
        const std::string attack_mode = s.attack_mode == mode::train ? "train" : "eval";
        CAPTURE(attack_mode);
        {
            M model = make();
            sgd<float> opt(sgd_options{}.momentum(0.9).weight_decay(1e-4));
            std::size_t first = 0;
            CHECK(allocations_after_warmup(model, opt, x, y, s, first) == 0);
            CHECK(first > 0);  // the counter sees the first step's buffers: the check can fail
        }
        {
            M model = make();
            adam<float> opt;
            std::size_t first = 0;
            CHECK(allocations_after_warmup(model, opt, x, y, s, first) == 0);
        }
    }
}

}  // namespace

TEST_CASE("a training step after the first allocates nothing: MLP") {
    const auto x = uniform_inputs<float, 2>({8, 20}, 1);
    check_model<mlp<float>>(
        "mlp",
        [] {
            return mlp<float>({20, 16, 16, 5}, 3);
        },
        x, labels(8, 5));
}

TEST_CASE("a training step after the first allocates nothing: CNN, with and without batch norm") {
    const auto x = uniform_inputs<float, 4>({4, 1, 28, 28}, 2);
    const auto y = labels(4, 10);
    check_model<cnn<float>>(
        "cnn", [] { return cnn<float>(3); }, x, y);
    check_model<cnn<float>>(
        "cnn with batch norm", [] { return cnn<float>(3, weight_init::he_normal, true); }, x, y);
}

// With a workspace, what an attack still allocates is its result (1) and the four per-element
// vectors of its resolved domain (lo, hi and the two scales): 5, the same for every model.
template <class M, class X>
void check_attack_allocations(const M& model, const X& x, const label_vector& y) {
    attack_workspace<M> ws;
    const auto f = fgsm_options{}.epsilon(0.1);
    const auto p = pgd_options{}.epsilon(0.1).steps(3);
    (void)fgsm(model, x, y, f, ws);  // the first call sizes the buffers
    std::size_t before = testing::allocations;
    (void)fgsm(model, x, y, f, ws);
    CHECK(testing::allocations - before == 5);
    before = testing::allocations;
    (void)pgd(model, x, y, p, ws);
    CHECK(testing::allocations - before == 5);
    // Without one, every call builds the model's buffers again.
    before = testing::allocations;
    (void)fgsm(model, x, y, f);
    CHECK(testing::allocations - before > 5);
}

TEST_CASE("an attack with a workspace allocates only its result and its domain: MLP and CNN") {
    mlp<float> net({20, 16, 16, 5}, 3);
    net.set_mode(mode::eval);
    check_attack_allocations(net, uniform_inputs<float, 2>({8, 20}, 1), labels(8, 5));
    cnn<float> conv(3);
    conv.set_mode(mode::eval);
    check_attack_allocations(conv, uniform_inputs<float, 4>({4, 1, 28, 28}, 2), labels(4, 10));
}

}  // namespace test_trainer_allocations
