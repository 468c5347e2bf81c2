// advaug's own threads (parallel/threads.hpp): the pool's contract, and that what the layers,
// the attacks and a training step compute does not depend on the number of threads.
#include <doctest/doctest.h>

#include "support/models.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_threads {

using namespace advaug;

namespace {

// ThreadSanitizer refuses to start threads in the child of a multi-threaded fork().
#if defined(__SANITIZE_THREAD__)
constexpr bool under_tsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool under_tsan = true;
#else
constexpr bool under_tsan = false;
#endif
#else
constexpr bool under_tsan = false;
#endif

/// Restores advaug's thread count when a test case ends.
struct thread_count_guard {
    std::size_t saved = num_threads();
    ~thread_count_guard() { set_num_threads(saved); }
};

/// The chunks one parallel_for gave to its body, in call order.
struct chunk {
    std::size_t begin, end, slot;
};

std::vector<chunk> chunks_of(std::size_t n, std::size_t grain) {
    std::mutex m;
    std::vector<chunk> out;
    detail::parallel_for(n, grain, [&](std::size_t b, std::size_t e, std::size_t slot) {
        std::lock_guard lock(m);
        out.push_back({b, e, slot});
    });
    std::sort(out.begin(), out.end(), [](const chunk& a, const chunk& b) { return a.begin < b.begin; });
    return out;
}

tensor<float, 4> images(std::size_t n, std::uint64_t seed) {
    auto x = tensor<float, 4>::from_shape({n, 1, 28, 28});
    rng gen(seed);
    for (auto& v : x) v = static_cast<float>(gen.uniform());
    return x;
}

std::vector<float> values_of(cnn<float>& net) {
    std::vector<float> out;
    for (auto& p : net.parameters()) out.insert(out.end(), p.value.begin(), p.value.end());
    return out;
}

/// Everything a training step of `method` computes on the CNN with `threads` threads: the
/// adversarial batch, the logits of the updated model and its parameters after two SGD steps.
std::vector<float> cnn_training_run(std::size_t threads, training_method method) {
    set_num_threads(threads);
    cnn<float> net(7);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    std::ostringstream sink;
    auto options = train_options{}
                       .method(method)
                       .learning_rate(lr_schedule::constant(0.05))
                       .batch_size(24)
                       .seed(3)
                       .progress(progress_style::none)
                       .output(sink);
    if (method == training_method::family) {
        options.family(affine<float>(image_shape{1, 28, 28}, affine_budget{.rotation = symmetric(15),
                                                                        .translate_x = symmetric(2)}),
                       worst_case_options{}.steps(2));
    } else if (method != training_method::plain) {
        options.epsilon(0.1);
    }
    trainer tr(net, opt, options);
    const auto x = images(24, 11);
    const auto y = testing::cyclic_labels(24, 10);
    std::vector<float> out;
    for (std::uint64_t batch = 0; batch < 2; ++batch) {
        net.set_mode(mode::train);
        const double eps = method == training_method::plain ? 0.0 : method == training_method::family ? 1.0 : 0.1;
        tr.compute_gradient(x, y, eps, batch);
        auto params = net.parameters();
        opt.step(params, 0.05);
        net.zero_grad();
        if (method != training_method::plain) {
            const auto& adv = tr.adversarial_batch();
            out.insert(out.end(), adv.begin(), adv.end());
        }
    }
    typename cnn<float>::cache_type cache;
    tensor<float, 2> logits;
    net.forward(x, cache, logits);
    out.insert(out.end(), logits.begin(), logits.end());
    const auto w = values_of(net);
    out.insert(out.end(), w.begin(), w.end());
    return out;
}

}  // namespace

TEST_CASE("set_num_threads sets advaug's thread count and refuses 0 and more than 256") {
    thread_count_guard guard;
    set_num_threads(3);
    CHECK(num_threads() == 3);
    set_num_threads(1);
    CHECK(num_threads() == 1);
    CHECK_THROWS_WITH_AS(set_num_threads(0), "advaug::set_num_threads(): threads must be from 1 to 256, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(set_num_threads(257), "advaug::set_num_threads(): threads must be from 1 to 256, got 257",
                         std::invalid_argument);
    CHECK(num_threads() == 1);  // a refused value changes nothing
}

TEST_CASE("ADVAUG_NUM_THREADS sets the default, and a bad value is refused with its text") {
    const char* before = std::getenv("ADVAUG_NUM_THREADS");
    const std::string saved = before == nullptr ? "" : before;
    ::setenv("ADVAUG_NUM_THREADS", "5", 1);
    CHECK(detail::default_num_threads() == 5);
    for (const char* bad : {"0", "257", "two", "3x", "-1"}) {
        CAPTURE(bad);
        ::setenv("ADVAUG_NUM_THREADS", bad, 1);
        CHECK_THROWS_WITH_AS(detail::default_num_threads(),
                             (std::string("advaug::num_threads(): ADVAUG_NUM_THREADS must be an integer from 1 to "
                                          "256, got \"") +
                              bad + "\"")
                                 .c_str(),
                             std::invalid_argument);
    }
    ::unsetenv("ADVAUG_NUM_THREADS");
    CHECK(detail::default_num_threads() >= 1);
    if (before != nullptr) ::setenv("ADVAUG_NUM_THREADS", saved.c_str(), 1);
}

TEST_CASE("parallel_for covers [0, n) once, in contiguous chunks of distinct slots, at least grain long") {
    thread_count_guard guard;
    for (std::size_t threads : {1, 2, 3, 4}) {
        set_num_threads(threads);
        for (std::size_t n : {0, 1, 2, 5, 7, 64, 1000}) {
            for (std::size_t grain : {1, 3, 100}) {
                CAPTURE(threads);
                CAPTURE(n);
                CAPTURE(grain);
                const auto cs = chunks_of(n, grain);
                if (n == 0) {
                    CHECK(cs.empty());
                    continue;
                }
                const std::size_t expected = std::max<std::size_t>(1, std::min(threads, n / grain));
                REQUIRE(cs.size() == expected);
                std::size_t next = 0;
                std::vector<bool> used(threads, false);
                for (const auto& c : cs) {
                    CHECK(c.begin == next);
                    CHECK(c.end > c.begin);
                    if (cs.size() > 1) CHECK(c.end - c.begin >= grain);
                    REQUIRE(c.slot < threads);
                    CHECK(!used[c.slot]);
                    used[c.slot] = true;
                    next = c.end;
                }
                CHECK(next == n);
            }
        }
    }
}

TEST_CASE("an exception in any chunk reaches the caller, the lowest slot's first, and the pool still works") {
    thread_count_guard guard;
    set_num_threads(4);
    auto throwing = [](std::size_t b, std::size_t, std::size_t slot) {
        if (slot >= 1) throw std::runtime_error("chunk at " + std::to_string(b) + " slot " + std::to_string(slot));
    };
    CHECK_THROWS_WITH_AS(detail::parallel_for(8, 1, throwing), "chunk at 2 slot 1", std::runtime_error);
    CHECK(chunks_of(8, 1).size() == 4);
}

TEST_CASE("parallel work nested in a chunk runs serially on that chunk's thread") {
    thread_count_guard guard;
    set_num_threads(2);
    std::atomic<int> nested_chunks{0};
    std::atomic<bool> other_thread{false};
    detail::parallel_for(2, 1, [&](std::size_t, std::size_t, std::size_t) {
        const auto me = std::this_thread::get_id();
        detail::parallel_for(100, 1, [&](std::size_t b, std::size_t e, std::size_t slot) {
            ++nested_chunks;
            if (std::this_thread::get_id() != me || slot != 0 || b != 0 || e != 100) other_thread = true;
        });
    });
    CHECK(nested_chunks == 2);
    CHECK(!other_thread);
}

TEST_CASE("callers on several threads at once all get their whole result") {
    thread_count_guard guard;
    set_num_threads(2);
    std::vector<std::thread> callers;
    std::vector<long> sums(6, 0);
    for (std::size_t t = 0; t < sums.size(); ++t) {
        callers.emplace_back([&, t] {
            for (int round = 0; round < 50; ++round) {
                std::vector<long> parts(2, 0);
                detail::parallel_for(1000, 1, [&](std::size_t b, std::size_t e, std::size_t slot) {
                    for (std::size_t i = b; i < e; ++i) parts[slot] += static_cast<long>(i);
                });
                sums[t] += parts[0] + parts[1];
            }
        });
    }
    for (auto& c : callers) c.join();
    for (long s : sums) CHECK(s == 50L * 999 * 1000 / 2);
}

TEST_CASE("a child of fork() starts its own workers and does not wait for the parent's" *
          doctest::skip(under_tsan)) {
    thread_count_guard guard;
    set_num_threads(3);
    REQUIRE(chunks_of(9, 1).size() == 3);  // the parent's workers are running
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::alarm(20);  // a hang fails the test instead of blocking it
        const bool ok = chunks_of(9, 1).size() == 3 && num_threads() == 3;
        set_num_threads(2);
        const bool ok2 = chunks_of(9, 1).size() == 2;
        std::exit(ok && ok2 ? 0 : 1);  // exit(): the static pool is destroyed in the child
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a parallel region leaves BLAS's own thread count as it found it") {
    thread_count_guard guard;
    set_num_threads(2);
    const int before = detail::blas_threads::get();
    int inside = -1;
    detail::parallel_for(2, 1, [&](std::size_t, std::size_t, std::size_t slot) {
        if (slot == 0) inside = detail::blas_threads::get();
    });
    CHECK(detail::blas_threads::get() == before);
    if (before > 0) CHECK(inside == 1);  // 0: the BLAS is not OpenBLAS and cannot be asked
}

// A block of C can take another BLAS kernel than the whole product (OpenBLAS has one for small
// products), so a split product may differ from the unsplit one in the last bits.
TEST_CASE("a GEMM split across threads equals the unsplit one to rounding") {
    thread_count_guard guard;
    rng gen(5);
    // Split by rows (m >= n) and by columns, sizes that are not multiples of the 16-row unit.
    for (const auto& shape :
         {std::array<std::size_t, 3>{300, 70, 90}, {70, 301, 90}, {129, 129, 33}}) {
        // Not a structured binding: clang before 16 cannot capture one (CHECK and CAPTURE do).
        const std::size_t m = shape[0], n = shape[1], k = shape[2];
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                std::vector<float> a(m * k), b(k * n), c0(m * n);
                for (auto& v : a) v = static_cast<float>(gen.uniform(-1, 1));
                for (auto& v : b) v = static_cast<float>(gen.uniform(-1, 1));
                for (auto& v : c0) v = static_cast<float>(gen.uniform(-1, 1));
                std::vector<std::vector<float>> results;
                for (std::size_t threads : {1, 2, 3}) {
                    set_num_threads(threads);
                    auto c = c0;
                    backend::gemm<float>(ta, tb, m, n, k, 0.5f, a.data(), ta ? m : k, b.data(), tb ? k : n, 2.0f,
                                        c.data(), n);
                    results.push_back(c);
                }
                CAPTURE(m);
                CAPTURE(n);
                for (std::size_t r = 1; r < results.size(); ++r) {
                    double worst = 0;
                    for (std::size_t i = 0; i < c0.size(); ++i) {
                        worst = std::max(worst, std::abs(double(results[r][i]) - double(results[0][i])));
                    }
                    CHECK(worst <= 1e-5 * k);
                }
            }
        }
    }
}

TEST_CASE("convolution, pooling, ReLU and the random start compute the same bits on 1 to 4 threads") {
    thread_count_guard guard;
    const auto x = images(21, 4);  // 21 images: blocks of 8 for the weight gradient, and a rest
    auto run = [&](std::size_t threads) {
        set_num_threads(threads);
        rng gen(2);
        conv2d<float> conv(1, 6, 3, gen, conv2d_options{}.padding(1));
        max_pool2d<float> pool(2);
        relu<float, 4> act;
        decltype(conv)::cache_type cc;
        decltype(pool)::cache_type pc;
        decltype(act)::cache_type ac;
        tensor<float, 4> y1, y2, y3, dy, d3, d2, dx;
        conv.forward(x, cc, y1);
        act.forward(y1, ac, y2);
        pool.forward(y2, pc, y3);
        dy = y3 * 0.5f - 0.1f;
        pool.backward_input(pc, dy, d3);
        act.backward_input(ac, d3, d2);
        conv.backward_input(cc, d2, dx);
        conv.accumulate_gradient(cc, d2, 0.25f);
        tensor<float, 4> start(x.shape());
        const auto dom = detail::resolve<float>("test", input_domain{}, x.shape());
        rng start_gen(9);
        detail::random_start(start, x, dom, norm::linf, 0.1, start_gen);
        std::vector<float> out;
        for (const auto* t : {&y3, &dx, &start}) out.insert(out.end(), t->begin(), t->end());
        for (auto& p : conv.parameters()) out.insert(out.end(), p.grad.begin(), p.grad.end());
        return out;
    };
    const auto one = run(1);
    for (std::size_t threads : {2, 3, 4}) {
        CAPTURE(threads);
        CHECK(run(threads) == one);
    }
}

TEST_CASE("CNN training steps agree on 1, 2 and 3 threads") {
    thread_count_guard guard;
    for (auto method : {training_method::plain, training_method::fgsm, training_method::fgsm_rs, training_method::family}) {
        CAPTURE(to_string(method));
        const auto one = cnn_training_run(1, method);
        for (std::size_t threads : {2, 3}) {
            CAPTURE(threads);
            const auto other = cnn_training_run(threads, method);
            REQUIRE(other.size() == one.size());
            double worst = 0;
            for (std::size_t i = 0; i < one.size(); ++i) {
                worst = std::max(worst, std::abs(double(other[i]) - double(one[i])));
            }
            CHECK(worst <= 1e-4);
        }
    }
}

}  // namespace test_threads
