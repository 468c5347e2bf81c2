// Attacks in passes (attacks/detail/attack_core.hpp, loss_gradient): a model that declares
// rows_per_pass() has its attack gradients and logits taken in passes of at most that many
// rows, each pass forward and backward on one thread. These tests check that a pass sees only
// its rows, that every sample gets its own row's logits and gradient (as in one pass, up to
// rounding), when the batch is not split, and that the attacks keep their properties.
#include <doctest/doctest.h>

#include <advaug/advaug.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_attack_passes {

using namespace advaug;
using advaug::testing::cyclic_labels;
using advaug::testing::max_abs_diff;

namespace {

/// A small CNN on 1 x 8 x 8 images whose rows_per_pass() the test sets, recording the rows of
/// every forward pass it runs (passes run on several threads: the record is locked).
template <class T>
struct passes_model : sequential<T, 4> {
    explicit passes_model(std::size_t rows, bool batch_norm = false) : sequential<T, 4>({1, 8, 8}), rows(rows) {
        rng gen(7);
        this->add(conv2d<T>(1, 4, 3, gen, conv2d_options{}.padding(1)));
        if (batch_norm) this->add(advaug::batch_norm<T, 4>(4));
        this->add(relu<T, 4>{});
        this->add(max_pool2d<T>(2));
        this->add(flatten<T>{});
        this->add(dense<T>(4 * 4 * 4, 5, gen));
        this->set_mode(mode::eval);
    }
    void forward(const tensor<T, 4>& x, typename sequential<T, 4>::cache_type& c, tensor<T, 2>& logits) const {
        {
            std::lock_guard lock(record_lock());
            seen.push_back(x.shape()[0]);
        }
        sequential<T, 4>::forward(x, c, logits);
    }
    void infer(const tensor<T, 4>& x, typename sequential<T, 4>::cache_type& c, tensor<T, 2>& logits) const {
        {
            std::lock_guard lock(record_lock());
            seen.push_back(x.shape()[0]);
            ++inferred;
        }
        sequential<T, 4>::infer(x, c, logits);
    }
    std::size_t rows_per_pass() const { return rows; }
    static std::mutex& record_lock() {
        static std::mutex m;
        return m;
    }

    std::size_t rows;
    mutable std::vector<std::size_t> seen;
    mutable std::size_t inferred = 0;  // passes through infer(): no backward pass followed
};

template <class T>
tensor<T, 4> images(std::size_t n, std::uint64_t seed) {
    auto x = tensor<T, 4>::from_shape({n, 1, 8, 8});
    rng gen(seed);
    for (auto& v : x) v = static_cast<T>(gen.uniform());
    return x;
}

/// max |a - b| relative to max |b|.
template <class T, std::size_t R>
double relative_diff(const tensor<T, R>& a, const tensor<T, R>& b) {
    double scale = 0;
    for (const auto v : b) scale = std::max(scale, std::abs(static_cast<double>(v)));
    return max_abs_diff(a, b) / std::max(scale, 1e-30);
}

}  // namespace

TEST_CASE("sequential::rows_per_pass fits pass_bytes of every layer's output and its gradient") {
    const cnn<float> net;
    std::size_t floats = 0;
    for (std::size_t i = 0; i < net.size(); ++i) {
        std::size_t size = 1;
        for (auto d : net.output_shape(i)) size *= d;
        floats += size;
    }
    CHECK(net.rows_per_pass() == sequential<float, 4>::pass_bytes / (2 * sizeof(float) * floats));
    CHECK(net.rows_per_pass() == 11);              // the bundled CNN: 702 KB a sample
    CHECK(cnn<double>().rows_per_pass() == 5);     // twice the bytes
    CHECK(mlp<float>({784, 256, 256, 10}).rows_per_pass() > 1000);  // MLP batches stay whole
}

TEST_CASE_TEMPLATE("gradients and logits in passes are each row's own, as in one pass", T, float, double) {
    const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    const std::size_t n = 10;
    const auto x = images<T>(n, 1);
    const auto y = cyclic_labels(n, 5);
    passes_model<T> whole(0), split(3);

    detail::loss_gradient<passes_model<T>> one("test", whole), passes("test", split);
    one(x, y);
    passes(x, y);
    // 10 rows at most 3 a pass: 4 passes of 3 rows, the last padded with copies of its last row
    CHECK(whole.seen == std::vector<std::size_t>{n});
    CHECK(split.seen == std::vector<std::size_t>(4, 3));
    REQUIRE(passes.grad.shape() == x.shape());
    CHECK(relative_diff(passes.logits, one.logits) < tol);
    CHECK(relative_diff(passes.dlogits, one.dlogits) < tol);  // scaled by 1 / n, not 1 / 3
    CHECK(relative_diff(passes.grad, one.grad) < tol);
    CHECK(max_abs_diff(passes.grad, tensor<T, 4>(xt::zeros<T>(x.shape()))) > 0);

    // gradient() calls the fill for every row once, and its rows only
    std::vector<int> filled(n, 0);
    tensor<T, 4> dx;
    passes.gradient(x, [&](std::size_t first, std::size_t count) {
        for (std::size_t s = first; s < first + count; ++s) {
            ++filled[s];
            for (std::size_t j = 0; j < 5; ++j) passes.dlogits(s, j) = j == s % 5 ? T(1) : T(0);
        }
    }, dx);
    CHECK(filled == std::vector<int>(n, 1));
    tensor<T, 2> pick = xt::zeros<T>({n, std::size_t(5)});
    for (std::size_t s = 0; s < n; ++s) pick(s, s % 5) = T(1);
    one.forward(x);
    tensor<T, 4> want;
    one.backward(pick, want);
    CHECK(relative_diff(dx, want) < tol);

    // predict() and per_sample_loss() in passes, through the model's infer()
    CHECK(split.inferred == 0);
    passes.predict(x);
    CHECK(split.inferred == 4);
    CHECK(relative_diff(passes.logits, one.logits) < tol);
    const auto loss_split = passes.per_sample_loss(x, y);
    const auto loss_whole = one.per_sample_loss(x, y);
    CHECK(relative_diff(loss_split, loss_whole) < tol);
}

TEST_CASE("a batch no larger than rows_per_pass, the trainer's oracle and a train-mode batch norm run in one pass") {
    const auto x = images<float>(6, 2);
    const auto y = cyclic_labels(6, 5);
    passes_model<float> at_most(6), trainer_side(2), bn(2, /*batch_norm=*/true);
    detail::loss_gradient<passes_model<float>> a("test", at_most);
    a(x, y);
    CHECK(at_most.seen == std::vector<std::size_t>{6});
    detail::loss_gradient<passes_model<float>> t("test", trainer_side, nullptr, /*one_pass=*/true);
    t(x, y);
    CHECK(trainer_side.seen == std::vector<std::size_t>{6});

    bn.set_mode(mode::train);  // batch statistics: a pass of 2 rows would change every row
    detail::loss_gradient<passes_model<float>> b("test", bn);
    b(x, y);
    CHECK(bn.seen == std::vector<std::size_t>{6});
    bn.set_mode(mode::eval);  // running statistics: rows are independent again
    bn.seen.clear();
    b(x, y);
    CHECK(bn.seen == std::vector<std::size_t>(3, 2));
}

TEST_CASE("after passes without a record, backward() is refused with the reason") {
    const auto x = images<float>(5, 3);
    passes_model<float> net(2);
    detail::loss_gradient<passes_model<float>> oracle("my_attack", net);
    tensor<float, 4> dx;
    oracle.predict(x);
    tensor<float, 2> dl = xt::ones<float>({std::size_t(5), std::size_t(5)});
    try {
        oracle.backward(dl, dx);
        FAIL("backward() after predict() in passes did not throw");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        CHECK(what.find("my_attack") != std::string::npos);
        CHECK(what.find("backward() needs the record of forward()") != std::string::npos);
    }
    oracle.forward(x);  // one pass over the batch keeps its record
    oracle.backward(dl, dx);
    CHECK(dx.shape() == x.shape());
    // labels of another length are refused, not read past their end
    CHECK_THROWS_AS(oracle(x, cyclic_labels(4, 5)), std::invalid_argument);
}

TEST_CASE("a wrong input shape in passes names the attack and the batch") {
    passes_model<float> net(2);
    const tensor<float, 4> wrong = xt::zeros<float>({std::size_t(5), std::size_t(1), std::size_t(8), std::size_t(9)});
    try {
        (void)apgd(net, wrong, cyclic_labels(5, 5), apgd_options{}.epsilon(0.1).n_iter(2));
        FAIL("apgd accepted 8 x 9 images");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        CAPTURE(what);
        CHECK(what.find("apgd") != std::string::npos);
        CHECK(what.find("[5, 1, 8, 9]") != std::string::npos);
    }
}

TEST_CASE("attacks in passes stay in the ball and the domain, and repeat for a seed") {
    const std::size_t n = 12;
    const auto x = images<float>(n, 4);
    const auto y = cyclic_labels(n, 5);
    passes_model<float> net(5);
    const float eps = 0.1f;
    const auto in_ball = [&](const tensor<float, 4>& adv) {
        for (std::size_t i = 0; i < x.size(); ++i) {
            const float v = adv.data()[i];
            if (!(v >= 0.0f && v <= 1.0f && std::abs(v - x.data()[i]) <= eps * (1 + 1e-6f))) return false;
        }
        return true;
    };
    const auto twice = [&](auto attack) {
        net.seen.clear();
        const auto a = attack(), b = attack();
        CHECK(in_ball(a));
        CHECK(max_abs_diff(a, b) == 0.0);
        // some pass was split: at most 5 rows, 12 as 3 passes of 4 (Square and FAB-T attack
        // fewer rows, the correctly classified ones)
        CHECK(std::all_of(net.seen.begin(), net.seen.end(), [](std::size_t r) { return r <= 5; }));
        return a;
    };
    twice([&] { return pgd(net, x, y, pgd_options{}.epsilon(eps).steps(5).seed(3)); });
    twice([&] { return apgd(net, x, y, apgd_options{}.epsilon(eps).n_iter(10).seed(3)); });
    twice([&] { return apgd_t(net, x, y, apgd_t_options{}.epsilon(eps).n_iter(10).n_target_classes(2).seed(3)); });
    twice([&] { return fab_t(net, x, y, fab_t_options{}.epsilon(eps).n_iter(10).n_target_classes(2).seed(3)); });
    twice([&] { return square(net, x, y, square_options{}.epsilon(eps).n_queries(30).seed(3)); });
    twice([&] {
        return autoattack(net, x, y, autoattack_options{}.epsilon(eps).n_iter(5).n_target_classes(2).n_queries(20).seed(3)).adversarial;
    });
}

}  // namespace test_attack_passes
