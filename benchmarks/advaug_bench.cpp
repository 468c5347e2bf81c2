// advaug_bench: how fast advaug's attacks and training steps run, and how close they come to
// the rate their matrix products alone would allow.
//
// For the bundled MLP 784-256-256-10 and the bundled CNN, at batch 128 on 2 threads,
// it measures samples per second of
//
//   fgsm-attack    advaug::fgsm(), epsilon 0.1 (model in eval mode), one attack_workspace
//   pgd10-attack   advaug::pgd(), 10 steps of 2.5 * 0.1 / 10 from a random start, the same
//   plain          one training step: trainer::compute_gradient() + sgd::step()
//   seed-fgsm      the seed's recipe: FGSM without random start, epsilon 0.1, alpha 0.5
//   fgsm-rs        FGSM with random start (Wong et al. 2020), alpha 1
//   n-fgsm         N-FGSM (de Jorge et al. 2022), alpha 1
//   pgd7           PGD-7 adversarial training, alpha 1
//
// on real Fashion-MNIST batches (8 batches cycled, already converted to float, as a data
// loader would hand them over; --random-inputs uses uniform [0, 1] pixels instead). For each
// it also prints the GEMM flops one step needs (counted from the layer shapes, below), the
// achieved GFLOP/s, the kernel library's GFLOP/s on exactly those GEMM shapes (oneDNN or
// OpenBLAS, whichever ADVAUG_BACKEND chose; the header line names it; timed here, the fastest
// of 9 repeats; --gemms lists them one by one), the bound
// "samples/s if the step were nothing but its GEMMs at that rate", the percentage of it
// reached, and the heap allocations of a step after the first (a replaced operator new).
//
// Timing: a plain steady_clock timer rather than Google Benchmark, because the PyTorch side
// (benchmarks/pytorch_bench.py) must time in exactly the same way, and because each result
// needs derived columns (GEMM bound, allocations) joined with PyTorch's in one table. Each
// workload is warmed up (at least 3 steps and 0.3 s), then run in 7 repeats of at least
// 0.25 s each; the figure is the median of the repeats' mean step times.
//
//   advaug_bench                       the table at batch 128, the perturbation families'
//                                      table (issue 16), then the scaling tables
//   advaug_bench --only families       the families' table alone
//   advaug_bench --smoke               one step of everything at batch 32 (CI); non-zero exit
//                                      on error
//   advaug_bench --json out.jsonl      also writes one JSON object per result
//   advaug_bench --gemms --no-scaling  first lists the kernel library's speed on every GEMM shape
//   advaug_bench --only mlp/seed-fgsm --seconds 20     one workload for a profiler
//   advaug_bench --full-run mlp:seed-fgsm --epochs 1   train on all 60,000 images (peak RSS;
//                                      dataset::from_idx, the training set only)
//   advaug_bench --flush-denormals     the same with subnormal floats flushed to zero (x86's
//                                      FTZ and DAZ, set before any thread starts, so every thread
//                                      inherits them): a step that is slower without it spends
//                                      that time in the CPU's subnormal assists
//
// The GEMMs a step needs (F: forward of every layer; I: input gradient, first layer or the
// rest; P: parameter gradient of every layer), counting only what the mathematics requires:
//
//   plain          F + I(rest) + P
//   seed-fgsm      2F + I(first) + 2 I(rest) + 2P   (the clean forward and its backward serve
//                                                   both the attack and the clean half)
//   fgsm-rs/n-fgsm 2F + I(first) + 2 I(rest) + P
//   pgd-k training (k+1)F + k I(first) + (k+1) I(rest) + P
//   fgsm-attack    F + I;   pgd10-attack 10 (F + I)
//
// A convolution's GEMMs are timed both per image (as im2col per image does them) and as one
// batch-wide GEMM; the bound takes the faster of the two.

#include <sys/resource.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>  // _mm_getcsr, _mm_setcsr
#endif

#include <CLI/CLI.hpp>
#include <advaug/attacks/fgsm.hpp>
#include <advaug/attacks/pgd.hpp>
#include <advaug/data/dataset.hpp>
#include <advaug/data/idx.hpp>
#include <advaug/backend/gemm.hpp>
#include <advaug/detail/random.hpp>
#include <advaug/models/cnn.hpp>
#include <advaug/models/mlp.hpp>
#include <advaug/optim/sgd.hpp>
#include <advaug/perturbations/perturbations.hpp>
#include <advaug/training/trainer.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

// ---------------------------------------------------------------------------------------------
// Heap allocations, counted by replacing every form of the global operator new
// ---------------------------------------------------------------------------------------------

// GCC flags the malloc/free pair behind operator new/delete once they are inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<std::size_t> allocation_count{0};

void* counted_alloc(std::size_t n) {
    allocation_count.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n == 0 ? 1 : n);
}
void* counted_aligned_alloc(std::size_t n, std::align_val_t al) {
    allocation_count.fetch_add(1, std::memory_order_relaxed);
    const auto a = static_cast<std::size_t>(al);
    return std::aligned_alloc(a, (std::max<std::size_t>(n, 1) + a - 1) / a * a);
}
}  // namespace

void* operator new(std::size_t n) {
    if (void* p = counted_alloc(n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    if (void* p = counted_alloc(n)) return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t al) {
    if (void* p = counted_aligned_alloc(n, al)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t al) {
    if (void* p = counted_aligned_alloc(n, al)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

using clock_type = std::chrono::steady_clock;
using advaug::tensor;

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// A workload failed (a non-finite loss, a bad argument): reported, exit status 1.
struct bench_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

constexpr double epsilon = 0.1;  // the anchor: eps 0.1 in [0, 1] pixel units
constexpr double learning_rate = 0.05;

struct timing_config {
    std::size_t warmup_steps = 3;
    double warmup_seconds = 0.3;
    std::size_t repeats = 7;
    double repeat_seconds = 0.25;
};

struct settings {
    bool smoke = false;
    bool scaling = true;
    bool cnn_scaling = true;
    bool gemms = false;
    int threads = 2;
    int advaug_threads = 0;  // 0: the same as threads
    std::size_t batch = 128;
    std::string data_dir = advaug::default_fashion_mnist_dir();
    bool random_inputs = false;
    std::string json_path;
    std::string only;  // "model/workload": run just that one
    double only_seconds = 0;
    std::string full_run;  // "model:method": train on the whole training set instead
    std::size_t epochs = 1;
    std::size_t train_samples = 0;  // --full-run: 0 is all
    bool flush_denormals = false;
    timing_config timing;
};

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

struct timing {
    double median = 0;  // seconds per step
    double min = 0, max = 0;
    std::size_t steps_per_repeat = 0, repeats = 0;
};

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Warm-up, then repeats of k steps (k chosen so a repeat lasts repeat_seconds); the median of
// the repeats' per-step times.
template <class Step>
timing measure(Step&& step, const timing_config& c) {
    const auto warm = clock_type::now();
    for (std::size_t i = 0; i < c.warmup_steps || seconds_since(warm) < c.warmup_seconds; ++i)
        step();
    const auto probe = clock_type::now();
    step();
    const double estimate = std::max(seconds_since(probe), 1e-7);
    timing t;
    t.steps_per_repeat =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(c.repeat_seconds / estimate)));
    if (c.repeat_seconds <= 0) t.steps_per_repeat = 1;
    std::vector<double> per_step;
    for (std::size_t r = 0; r < std::max<std::size_t>(c.repeats, 1); ++r) {
        const auto start = clock_type::now();
        for (std::size_t i = 0; i < t.steps_per_repeat; ++i) step();
        per_step.push_back(seconds_since(start) / static_cast<double>(t.steps_per_repeat));
    }
    t.repeats = per_step.size();
    t.median = median_of(per_step);
    t.min = *std::min_element(per_step.begin(), per_step.end());
    t.max = *std::max_element(per_step.begin(), per_step.end());
    return t;
}

// Heap allocations per step, over `steps` steps that follow at least one earlier step.
template <class Step>
double allocations_per_step(Step&& step, std::size_t steps) {
    const std::size_t before = allocation_count.load();
    for (std::size_t i = 0; i < steps; ++i) step();
    return static_cast<double>(allocation_count.load() - before) / static_cast<double>(steps);
}

// ---------------------------------------------------------------------------------------------
// The GEMMs of a step, and OpenBLAS's speed on them
// ---------------------------------------------------------------------------------------------

// One GEMM shape, run `count` times per step; *_per_item: that operand differs between the
// count runs (per-image im2col blocks), else it is shared (the weights).
struct gemm_shape {
    bool ta = false, tb = false;
    std::size_t m = 0, n = 0, k = 0, count = 1;
    bool a_per_item = false, b_per_item = false, c_per_item = false;
    double beta = 0;
    std::string form;  // "" for dense layers, "per-image" or "batch-wide" for convolutions

    double flops() const { return 2.0 * double(m) * double(n) * double(k) * double(count); }
    std::string key() const {
        std::ostringstream s;
        s << ta << tb << ' ' << m << 'x' << n << 'x' << k << '*' << count << a_per_item
          << b_per_item << c_per_item << beta;
        return s.str();
    }
};

enum class gemm_kind { forward, input_grad, param_grad };

// One GEMM of one layer, with the forms it may be computed in (all with the same flops).
struct gemm_op {
    std::string layer;
    gemm_kind kind;
    bool first_layer;
    std::vector<gemm_shape> forms;
};

// How many times a step runs each kind of GEMM (see the header comment).
struct gemm_mix {
    double forward = 0, input_first = 0, input_rest = 0, param = 0;
    double of(const gemm_op& op) const {
        switch (op.kind) {
            case gemm_kind::forward:
                return forward;
            case gemm_kind::input_grad:
                return op.first_layer ? input_first : input_rest;
            case gemm_kind::param_grad:
                return param;
        }
        return 0;
    }
};

void add_dense(std::vector<gemm_op>& ops, std::size_t in, std::size_t out, std::size_t n,
               bool first) {
    const std::string name = "dense " + std::to_string(in) + "->" + std::to_string(out);
    // y[n, out] = x W^T; dx[n, in] = dy W; dW[out, in] += dy^T x
    ops.push_back({name,
                   gemm_kind::forward,
                   first,
                   {{false, true, n, out, in, 1, false, false, false, 1, ""}}});
    ops.push_back({name,
                   gemm_kind::input_grad,
                   first,
                   {{false, false, n, in, out, 1, false, false, false, 0, ""}}});
    ops.push_back({name,
                   gemm_kind::param_grad,
                   first,
                   {{true, false, out, in, n, 1, false, false, false, 1, ""}}});
}

void add_conv(std::vector<gemm_op>& ops, std::size_t cin, std::size_t cout, std::size_t kernel,
              std::size_t pixels, std::size_t n, bool first) {
    const std::string name = "conv " + std::to_string(cin) + "->" + std::to_string(cout) + " " +
                             std::to_string(kernel) + "x" + std::to_string(kernel);
    const std::size_t k = cin * kernel * kernel, p = pixels;
    // y_i[cout, p] = W cols_i; dcols_i[k, p] = W^T dy_i; dW[cout, k] += dy_i cols_i^T
    ops.push_back({name,
                   gemm_kind::forward,
                   first,
                   {{false, false, cout, p, k, n, false, true, true, 0, "per-image"},
                    {false, false, cout, n * p, k, 1, false, false, false, 0, "batch-wide"}}});
    ops.push_back({name,
                   gemm_kind::input_grad,
                   first,
                   {{true, false, k, p, cout, n, false, true, true, 0, "per-image"},
                    {true, false, k, n * p, cout, 1, false, false, false, 0, "batch-wide"}}});
    ops.push_back({name,
                   gemm_kind::param_grad,
                   first,
                   {{false, true, cout, k, p, n, true, true, false, 1, "per-image"},
                    {false, true, cout, k, n * p, 1, false, false, false, 1, "batch-wide"}}});
}

std::vector<gemm_op> mlp_gemms(const std::vector<std::size_t>& widths, std::size_t n) {
    std::vector<gemm_op> ops;
    for (std::size_t l = 0; l + 1 < widths.size(); ++l)
        add_dense(ops, widths[l], widths[l + 1], n, l == 0);
    return ops;
}

std::vector<gemm_op> cnn_gemms(std::size_t n) {
    std::vector<gemm_op> ops;
    add_conv(ops, 1, 32, 3, 28 * 28, n, true);
    add_conv(ops, 32, 64, 3, 14 * 14, n, false);
    add_dense(ops, 64 * 7 * 7, 128, n, false);
    add_dense(ops, 128, 10, n, false);
    return ops;
}

// One product on the kernel library's own threads, the rate the GEMM bound is defined by:
// OpenBLAS's threads (openblas_set_num_threads), or oneDNN's OpenMP team of `threads`.
void library_gemm(int threads, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k,
                  float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                  float beta, float* c, std::size_t ldc) {
#ifdef ADVAUG_BACKEND_ONEDNN
    advaug::backend::set_onednn_threads(threads);
    advaug::backend::onednn_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    (void)threads;
    advaug::backend::gemm_serial<float>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

// Times GEMM shapes with the kernel library on random operands, each distinct
// shape once. The bound wants the library's speed, not the machine's noise, so a shape's time is
// the fastest of its repeats (interference only ever adds time). Per-image GEMMs are
// independent of each other, so at most 32 of them are timed and the time scaled up.
class gemm_timer {
public:
    gemm_timer(bool quick, int threads) : quick_(quick), threads_(threads) {}

    double seconds(const gemm_shape& s) {
        const std::string key = s.key();
        if (auto it = cache_.find(key); it != cache_.end()) return it->second;
        const std::size_t a_size = s.m * s.k, b_size = s.k * s.n, c_size = s.m * s.n;
        const std::size_t items = std::min<std::size_t>(s.count, 32);
        std::vector<float> a(a_size * (s.a_per_item ? items : 1)),
            b(b_size * (s.b_per_item ? items : 1)), c(c_size * (s.c_per_item ? items : 1));
        advaug::rng gen(a.size() + b.size());
        for (auto* v : {&a, &b, &c}) {
            for (auto& x : *v) x = static_cast<float>(gen.uniform(-1, 1));
        }
        const std::size_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
        // Two ways to run the products, the faster counts: on the library's own threads, and
        // through backend::gemm, which splits a large product over advaug's threads (oneDNN's
        // OpenMP team loses whole time slices at its barriers on a busy machine).
        auto run_with = [&](bool library_threads) {
            for (std::size_t i = 0; i < items; ++i) {
                const float* ai = a.data() + (s.a_per_item ? i * a_size : 0);
                const float* bi = b.data() + (s.b_per_item ? i * b_size : 0);
                float* ci = c.data() + (s.c_per_item ? i * c_size : 0);
                if (library_threads) {
                    library_gemm(threads_, s.ta, s.tb, s.m, s.n, s.k, 1.0f, ai, lda, bi, ldb,
                                 static_cast<float>(s.beta), ci, s.n);
                } else {
                    advaug::backend::gemm<float>(s.ta, s.tb, s.m, s.n, s.k, 1.0f, ai, lda, bi,
                                                 ldb, static_cast<float>(s.beta), ci, s.n);
                }
            }
        };
        // Accumulating into C (beta 1) grows it a little per run; it stays finite for runs this
        // short, and the speed does not depend on the values.
        const timing_config c2 =
            quick_ ? timing_config{0, 0, 1, 0} : timing_config{2, 0.01, 9, 0.02};
        const double fastest = std::min(measure([&] { run_with(true); }, c2).min,
                                        measure([&] { run_with(false); }, c2).min);
        const double t = fastest * static_cast<double>(s.count) / static_cast<double>(items);
        cache_.emplace(key, t);
        return t;
    }

    // The fastest form of op.
    std::pair<double, const gemm_shape*> best(const gemm_op& op) {
        double best_t = 0;
        const gemm_shape* best_s = nullptr;
        for (const auto& f : op.forms) {
            const double t = seconds(f);
            if (!best_s || t < best_t) best_t = t, best_s = &f;
        }
        return {best_t, best_s};
    }

private:
    bool quick_;
    int threads_;
    std::map<std::string, double> cache_;
};

struct gemm_summary {
    double flops = 0;    // per step
    double seconds = 0;  // per step, every GEMM at the kernel library's measured speed
};

gemm_summary summarize(const std::vector<gemm_op>& ops, const gemm_mix& mix, gemm_timer& timer) {
    gemm_summary s;
    for (const auto& op : ops) {
        const double times = mix.of(op);
        if (times == 0) continue;
        s.flops += times * op.forms.front().flops();
        s.seconds += times * timer.best(op).first;
    }
    return s;
}

// Every GEMM of a model at the kernel library's measured speed, each form (--gemms).
void print_gemms(const std::string& model, const std::vector<gemm_op>& ops, gemm_timer& timer) {
    static const char* kinds[] = {"forward", "input grad", "param grad"};
    std::printf("\n%s on the GEMMs of the %s (fastest of 9 repeats)\n",
                advaug::backend::describe().float_gemm.summary().c_str(), model.c_str());
    std::printf("%-18s %-11s %-11s %-5s %22s %6s %10s %8s\n", "layer", "gemm", "form", "trans",
                "m x n x k", "count", "us", "GFLOP/s");
    for (const auto& op : ops) {
        for (const auto& f : op.forms) {
            const double t = timer.seconds(f);
            const std::string shape =
                std::to_string(f.m) + " x " + std::to_string(f.n) + " x " + std::to_string(f.k);
            const std::string trans = std::string(f.ta ? "T" : "N") + (f.tb ? "T" : "N");
            std::printf("%-18s %-11s %-11s %-5s %22s %6zu %10.1f %8.1f\n", op.layer.c_str(),
                        kinds[static_cast<int>(op.kind)], f.form.empty() ? "-" : f.form.c_str(),
                        trans.c_str(), shape.c_str(), f.count, 1e6 * t, f.flops() / t / 1e9);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

template <std::size_t R>
using batch_list = std::vector<std::pair<tensor<float, R>, advaug::label_vector>>;

// `count` batches of `n` samples: Fashion-MNIST training images first .. count * n - 1, or
// uniform random pixels with random labels.
template <std::size_t R>
batch_list<R> make_batches(const settings& s, const std::optional<advaug::fashion_mnist>& data,
                           std::size_t n, std::size_t count) {
    batch_list<R> out;
    advaug::rng gen(n * 7919 + count);
    for (std::size_t b = 0; b < count; ++b) {
        tensor<float, R> x;
        advaug::label_vector y = advaug::label_vector::from_shape({n});
        if constexpr (R == 2) {
            x.resize({n, 784});
        } else {
            x.resize({n, 1, 28, 28});
        }
        if (data && !s.random_inputs) {
            const std::size_t avail = data->train_images.shape(0);
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t idx = (b * n + i) % avail;
                const std::uint8_t* px = data->train_images.data() + idx * 784;
                for (std::size_t j = 0; j < 784; ++j)
                    x.data()[i * 784 + j] = static_cast<float>(px[j]) / 255.0f;
                y(i) = data->train_labels(idx);
            }
        } else {
            for (auto& v : x) v = static_cast<float>(gen.uniform());
            for (auto& v : y) v = static_cast<std::int64_t>(gen.uniform() * 10) % 10;
        }
        out.emplace_back(std::move(x), std::move(y));
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

struct workload {
    std::string name;
    bool attack;
    advaug::training_method method = advaug::training_method::plain;
    gemm_mix mix;
};

std::vector<workload> workloads() {
    using advaug::training_method;
    return {
        {"fgsm-attack", true, training_method::plain, {1, 1, 1, 0}},
        {"pgd10-attack", true, training_method::plain, {10, 10, 10, 0}},
        {"plain", false, training_method::plain, {1, 0, 1, 1}},
        {"seed-fgsm", false, training_method::fgsm, {2, 1, 2, 2}},
        {"fgsm-rs", false, training_method::fgsm_rs, {2, 1, 2, 1}},
        {"n-fgsm", false, training_method::n_fgsm, {2, 1, 2, 1}},
        {"pgd7", false, training_method::pgd, {8, 7, 8, 1}},
    };
}

advaug::train_options options_for(advaug::training_method method, std::size_t batch) {
    auto o = advaug::train_options{}
                 .method(method)
                 .learning_rate(advaug::lr_schedule::constant(learning_rate))
                 .batch_size(batch)
                 .log_every(0)
                 .progress(advaug::progress_style::none)
                 .seed(0);
    if (method != advaug::training_method::plain) o.epsilon(epsilon);
    if (method == advaug::training_method::fgsm) o.alpha(0.5);  // the seed's ALPHA
    if (method == advaug::training_method::pgd) o.pgd_steps(7);
    return o;
}

struct result {
    std::string table;  // "main", "batch", "width"
    std::string model, name;
    std::size_t batch = 0, width = 0;
    timing t;
    double samples_per_s = 0;
    gemm_summary gemm;
    double allocations = 0;
};

// Runs one workload on a fresh model built by make(); the step cycles through `batches`.
template <class M, class Make, std::size_t R>
result run_workload(const settings& s, const workload& w, Make make, const batch_list<R>& batches,
                    const std::vector<gemm_op>& ops, gemm_timer& timer, const timing_config& tc) {
    M model = make();
    advaug::sgd<float> optimizer(advaug::sgd_options{}.momentum(0.9));
    std::optional<advaug::trainer<M, advaug::sgd<float>>> trainer;
    std::vector<advaug::parameter_view<float>> params;
    const std::size_t n = batches.front().first.shape()[0];
    std::size_t next = 0;
    std::uint64_t seed = 0;
    float sink = 0;
    std::function<void()> step;
    // Attacks called repeatedly reuse one workspace, as evaluate_robustness does.
    advaug::attack_workspace<M> workspace;
    if (w.attack) {
        model.set_mode(advaug::mode::eval);
        const auto fgsm = advaug::fgsm_options{}.epsilon(epsilon);
        auto pgd = advaug::pgd_options{}.epsilon(epsilon).steps(10);
        if (w.name == "fgsm-attack") {
            step = [&, fgsm] {
                const auto& [x, y] = batches[next];
                next = (next + 1) % batches.size();
                sink += advaug::fgsm(model, x, y, fgsm, workspace).data()[0];
            };
        } else {
            step = [&, pgd]() mutable {
                const auto& [x, y] = batches[next];
                next = (next + 1) % batches.size();
                pgd.seed(++seed);
                sink += advaug::pgd(model, x, y, pgd, workspace).data()[0];
            };
        }
    } else {
        model.set_mode(advaug::mode::train);  // as trainer::fit() does
        trainer.emplace(model, optimizer, options_for(w.method, n));
        params = model.parameters();
        step = [&] {
            const auto& [x, y] = batches[next];
            next = (next + 1) % batches.size();
            const auto losses = trainer->compute_gradient(x, y, epsilon, ++seed);
            if (!std::isfinite(losses.loss)) {
                throw bench_error(w.name + ": the training loss is not finite");
            }
            optimizer.step(params, learning_rate);
        };
    }

    result r;
    r.name = w.name;
    r.batch = n;
    if (!s.only.empty() && s.only_seconds > 0) {
        // For a profiler: just run for the given time.
        const auto start = clock_type::now();
        std::size_t steps = 0;
        while (seconds_since(start) < s.only_seconds) step(), ++steps;
        r.t.median = seconds_since(start) / static_cast<double>(steps);
        r.t.repeats = 1;
        r.t.steps_per_repeat = steps;
    } else {
        r.t = measure(step, tc);  // the first step of the warm-up allocates the buffers
    }
    r.allocations = allocations_per_step(step, tc.repeats <= 1 ? 1 : 3);
    r.samples_per_s = static_cast<double>(n) / r.t.median;
    // A profile of --seconds should show the step alone, not the GEMM timer.
    if (s.only_seconds == 0) r.gemm = summarize(ops, w.mix, timer);
    if (!std::isfinite(sink))
        throw bench_error(w.name + ": the attack produced a non-finite input");
    return r;
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

std::string fixed(double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string json(const result& r) {
    const double gflops = r.gemm.flops / r.t.median / 1e9;
    const double gemm_gflops = r.gemm.seconds > 0 ? r.gemm.flops / r.gemm.seconds / 1e9 : 0;
    const double bound = r.gemm.seconds > 0 ? static_cast<double>(r.batch) / r.gemm.seconds : 0;
    std::ostringstream o;
    o << "{\"side\":\"advaug\",\"table\":\"" << r.table << "\",\"model\":\"" << r.model
      << "\",\"workload\":\"" << r.name << "\",\"batch\":" << r.batch << ",\"width\":" << r.width
      << ",\"samples_per_s\":" << fixed(r.samples_per_s, 1)
      << ",\"step_ms\":" << fixed(1e3 * r.t.median, 4)
      << ",\"step_ms_min\":" << fixed(1e3 * r.t.min, 4)
      << ",\"step_ms_max\":" << fixed(1e3 * r.t.max, 4) << ",\"repeats\":" << r.t.repeats
      << ",\"steps_per_repeat\":" << r.t.steps_per_repeat
      << ",\"gemm_mflop_per_step\":" << fixed(r.gemm.flops / 1e6, 3)
      << ",\"gflops\":" << fixed(gflops, 2) << ",\"gemm_gflops\":" << fixed(gemm_gflops, 2)
      << ",\"openblas_gflops\":" << fixed(gemm_gflops, 2)
      << ",\"gemm_bound_samples_per_s\":" << fixed(bound, 1)
      << ",\"gemm_bound_pct\":" << fixed(bound > 0 ? 100 * r.samples_per_s / bound : 0, 1)
      << ",\"allocations_per_step\":" << fixed(r.allocations, 2) << "}";
    return o.str();
}

void print_header(const char* title) {
    std::printf("\n%s\n", title);
    std::printf("%-18s %6s %6s %12s %10s %10s %8s %9s %12s %7s %8s\n", "workload", "batch", "width",
                "samples/s", "ms/step", "MFLOP/st", "GFLOP/s", "BLAS GF/s", "GEMM bound/s",
                "% bound", "allocs");
}

void print_row(const result& r) {
    const double gflops = r.gemm.flops / r.t.median / 1e9;
    const double gemm_gflops = r.gemm.seconds > 0 ? r.gemm.flops / r.gemm.seconds / 1e9 : 0;
    const double bound = r.gemm.seconds > 0 ? static_cast<double>(r.batch) / r.gemm.seconds : 0;
    const std::string label = r.model + "/" + r.name;
    std::printf("%-18s %6zu %6zu %12.0f %10.3f %10.1f %8.1f %9.1f %12.0f %7.1f %8.2f\n",
                label.c_str(), r.batch, r.width, r.samples_per_s, 1e3 * r.t.median,
                r.gemm.flops / 1e6, gflops, gemm_gflops, bound,
                bound > 0 ? 100 * r.samples_per_s / bound : 0, r.allocations);
    std::fflush(stdout);
}

class reporter {
public:
    explicit reporter(const std::string& path) {
        if (path.empty()) return;
        out_.open(path, std::ios::out | std::ios::trunc);
        if (!out_) throw bench_error("cannot write the JSON output '" + path + "'");
    }
    void add(const result& r) {
        print_row(r);
        if (out_.is_open()) {
            out_ << json(r) << '\n';
            out_.flush();
        }
    }
    void raw(const std::string& line) {
        if (out_.is_open()) out_ << line << '\n' << std::flush;
    }

private:
    std::ofstream out_;
};

// ---------------------------------------------------------------------------------------------
// The runs
// ---------------------------------------------------------------------------------------------

const std::vector<std::size_t> mlp_widths{784, 256, 256, 10};

bool selected(const settings& s, const std::string& model, const std::string& name) {
    return s.only.empty() || s.only == model + "/" + name;
}

void run_main_table(const settings& s, const std::optional<advaug::fashion_mnist>& data,
                    reporter& rep, gemm_timer& timer) {
    if (!s.only.empty()) {
        bool known = s.only == "families";
        for (const auto& w : workloads())
            known = known || s.only == "mlp/" + w.name || s.only == "cnn/" + w.name;
        if (!known)
            throw bench_error("--only: unknown workload '" + s.only +
                              "' (MODEL/WORKLOAD, e.g. mlp/seed-fgsm)");
    }
    print_header(("advaug at batch " + std::to_string(s.batch) + ", " + std::to_string(s.threads) +
                  " threads")
                     .c_str());
    const auto mlp_batches = make_batches<2>(s, data, s.batch, 8);
    const auto mlp_ops = mlp_gemms(mlp_widths, s.batch);
    auto make_mlp = [] {
        return advaug::mlp<float>(mlp_widths, 0, advaug::weight_init::pytorch_default);
    };
    for (const auto& w : workloads()) {
        if (!selected(s, "mlp", w.name)) continue;
        result r =
            run_workload<advaug::mlp<float>>(s, w, make_mlp, mlp_batches, mlp_ops, timer, s.timing);
        r.table = "main", r.model = "mlp", r.width = 256;
        rep.add(r);
    }
    const auto cnn_batches = make_batches<4>(s, data, s.batch, 8);
    const auto cnn_ops = cnn_gemms(s.batch);
    auto make_cnn = [] { return advaug::cnn<float>(0, advaug::weight_init::pytorch_default); };
    for (const auto& w : workloads()) {
        if (!selected(s, "cnn", w.name)) continue;
        result r =
            run_workload<advaug::cnn<float>>(s, w, make_cnn, cnn_batches, cnn_ops, timer, s.timing);
        r.table = "main", r.model = "cnn";
        rep.add(r);
    }
}

// Issue 16's row: one worst-case step's work of each perturbation family (apply, which forms
// the perturbed batch, and vjp_theta, which carries the model's input gradient to theta, as the
// search takes them: apply recording its forward pass for the product, family.hpp's recorded
// pass, where the family has one; apply alone for a gradient-free family, whose search only
// draws), next to the MLP's forward and backward pass (forward, input and parameter gradients)
// on the same batch of 128 images at the same threads. The target is a share of at most 20 %.
template <class F>
double family_step_seconds(const F& family, const tensor<float, 2>& x, const timing_config& tc,
                           float& sink) {
    tensor<float, 2> theta, out, dtheta;
    advaug::family_tape tape;
    family.sample(x.shape()[0], 1, theta);
    const tensor<float, 2> dout = x;  // any direction: the cost does not depend on it
    const bool gradient = advaug::kind_of(family) != advaug::perturbation_kind::gradient_free;
    return measure(
               [&] {
                   if (gradient) {
                       advaug::apply_recorded(family, x, theta, out, tape);
                       advaug::vjp_recorded(family, x, theta, dout, &dtheta,
                                            static_cast<tensor<float, 2>*>(nullptr), tape);
                   } else {
                       family.apply(x, theta, out);
                   }
                   sink += out.data()[0];
               },
               tc)
        .median;
}

void run_family_table(const settings& s, const std::optional<advaug::fashion_mnist>& data,
                      reporter& rep) {
    using namespace advaug;
    const auto batches = make_batches<2>(s, data, s.batch, 1);
    // Not a structured binding: clang before 16 cannot capture one in a lambda.
    const auto& x = batches.front().first;
    const auto& y = batches.front().second;
    mlp<float> net(mlp_widths, 0, weight_init::pytorch_default);
    net.set_mode(mode::train);
    mlp<float>::cache_type cache;
    tensor<float, 2> logits, dlogits, dx;
    const double base = measure(
                            [&] {
                                net.forward(x, cache, logits);
                                cross_entropy_gradient(logits, y, dlogits);
                                net.input_gradient(cache, dlogits, dx);
                                net.parameter_gradient(cache, dlogits);
                            },
                            s.timing)
                            .median;
    std::printf("\nPerturbation families: one worst-case step's family work at batch %zu, against "
                "the MLP's forward and backward (%.3f ms); target <= 20 %%\n",
                x.shape(0), 1e3 * base);
    std::printf("%-22s %10s %12s %8s\n", "family", "ms/step", "% of MLP", "target");
    std::ostringstream base_json;
    base_json << "{\"side\":\"advaug\",\"table\":\"families\",\"model\":\"mlp\",\"workload\":"
                 "\"forward-backward\",\"batch\":"
              << x.shape(0) << ",\"step_ms\":" << fixed(1e3 * base, 4) << "}";
    rep.raw(base_json.str());
    const image_shape images{1, 28, 28};
    float sink = 0;
    const auto row = [&](const char* name, const auto& family) {
        const double t = family_step_seconds(family, x, s.timing, sink);
        const double pct = 100 * t / base;
        std::printf("%-22s %10.3f %11.1f%% %8s\n", name, 1e3 * t, pct, pct <= 20 ? "PASS" : "FAIL");
        std::fflush(stdout);
        std::ostringstream o;
        o << "{\"side\":\"advaug\",\"table\":\"families\",\"model\":\"family\",\"workload\":\""
          << name << "\",\"batch\":" << x.shape(0) << ",\"step_ms\":" << fixed(1e3 * t, 4)
          << ",\"share_pct\":" << fixed(pct, 1) << "}";
        rep.raw(o.str());
    };
    // The budgets of examples/fashion_mnist_ada.cpp's families.
    row("photometric", photometric<float>(images, photometric_budget{.brightness = symmetric(0.2),
                                                                     .contrast = symmetric(0.3),
                                                                     .log_gamma = symmetric(0.3)}));
    row("affine", affine<float>(images, affine_budget{.rotation = symmetric(15),
                                                      .translate_x = symmetric(2),
                                                      .translate_y = symmetric(2)}));
    row("displacement_field",
        displacement_field<float>(images, displacement_budget{.grid = 4, .max_displacement = 1}));
    row("gaussian_blur", gaussian_blur<float>(images, interval{0, 1.5}));
    row("linf_ball", linf_ball<float>(images, epsilon));
    row("l2_ball", l2_ball<float>(images, 1.0));
    {
        using enum natural_family;
        row("augment_and_mix",
            augment_and_mix<float>(natural_families<float>(
                {{rotation, 15}, {translation, 2}, {brightness, 0.2}, {contrast, 0.3},
                 {gamma, 0.3}, {blur, 1.5}, {displacement, 1}},
                images, input_domain{})));
    }
    row("tabular_drift",
        tabular_drift<float>(784, drift_budget{.gain = {symmetric(0.1)}, .offset = {symmetric(0.1)}}));
    row("quantize", quantize<float>(784, {interval{0, 0.1}}));
    row("dropped_sensors", dropped_sensors<float>(784, 10));
    if (!std::isfinite(sink)) throw bench_error("families: a family produced a non-finite value");
}

void run_scaling(const settings& s, const std::optional<advaug::fashion_mnist>& data, reporter& rep,
                 gemm_timer& timer) {
    // Shorter measurements than the main table: the trend matters here, not the last percent.
    timing_config tc = s.timing;
    if (!s.smoke) tc.repeats = 5, tc.repeat_seconds = 0.15, tc.warmup_seconds = 0.15;
    const std::vector<std::size_t> batches =
        s.smoke ? std::vector<std::size_t>{32}
                : std::vector<std::size_t>{32, 64, 128, 256, 512, 1024};
    const std::vector<std::size_t> widths =
        s.smoke ? std::vector<std::size_t>{128} : std::vector<std::size_t>{128, 256, 512, 1024};
    std::vector<workload> ws;
    for (const auto& w : workloads()) {
        if (w.name == "plain" || w.name == "fgsm-rs") ws.push_back(w);
    }

    print_header("Scaling over the batch size (MLP 784-256-256-10, then the CNN)");
    for (std::size_t n : batches) {
        const auto b = make_batches<2>(s, data, n, 4);
        const auto ops = mlp_gemms(mlp_widths, n);
        for (const auto& w : ws) {
            result r = run_workload<advaug::mlp<float>>(
                s, w,
                [] {
                    return advaug::mlp<float>(mlp_widths, 0, advaug::weight_init::pytorch_default);
                },
                b, ops, timer, tc);
            r.table = "batch", r.model = "mlp", r.width = 256;
            rep.add(r);
        }
    }
    if (s.cnn_scaling) {
        for (std::size_t n : batches) {
            const auto b = make_batches<4>(s, data, n, 2);
            const auto ops = cnn_gemms(n);
            timing_config ctc = tc;
            if (!s.smoke) ctc.repeats = 3, ctc.warmup_steps = 1;
            for (const auto& w : ws) {
                result r = run_workload<advaug::cnn<float>>(
                    s, w,
                    [] { return advaug::cnn<float>(0, advaug::weight_init::pytorch_default); }, b,
                    ops, timer, ctc);
                r.table = "batch", r.model = "cnn";
                rep.add(r);
            }
        }
    }

    print_header("Scaling over the MLP's hidden width (784-w-w-10, batch 128)");
    const auto b = make_batches<2>(s, data, s.batch, 8);
    for (std::size_t width : widths) {
        const std::vector<std::size_t> shape{784, width, width, 10};
        const auto ops = mlp_gemms(shape, s.batch);
        for (const auto& w : ws) {
            result r = run_workload<advaug::mlp<float>>(
                s, w,
                [&] { return advaug::mlp<float>(shape, 0, advaug::weight_init::pytorch_default); },
                b, ops, timer, tc);
            r.table = "width", r.model = "mlp", r.width = width;
            rep.add(r);
        }
    }
}

// Trains a model on the whole training set with trainer::fit(), as a user would: the peak RSS
// of this process is what the driver compares with PyTorch's.
int full_run(const settings& s) {
    const auto colon = s.full_run.find(':');
    if (colon == std::string::npos) {
        throw bench_error(
            "--full-run expects MODEL:METHOD (mlp or cnn, a workload such as seed-fgsm), got '" +
            s.full_run + "'");
    }
    const std::string model = s.full_run.substr(0, colon), name = s.full_run.substr(colon + 1);
    std::optional<workload> chosen;
    for (const auto& w : workloads()) {
        if (w.name == name && !w.attack) chosen = w;
    }
    if (!chosen || (model != "mlp" && model != "cnn")) {
        throw bench_error("--full-run: unknown model or training workload in '" + s.full_run + "'");
    }
    const auto start = clock_type::now();
    // The training set only, as bytes taken over from the decompressed IDX file (no copy of
    // the pixels), converted to float one batch at a time by the trainer: the lean way, as
    // pytorch_bench.py --full-run does it with numpy.
    auto idx_file = [&](const std::string& stem) {
        const std::string plain = s.data_dir + "/" + stem;
        return std::filesystem::exists(plain + ".gz") ? plain + ".gz" : plain;
    };
    auto train = advaug::dataset<std::uint8_t>::from_idx(
        advaug::read_idx(idx_file("train-images-idx3-ubyte")),
        advaug::read_idx_labels(idx_file("train-labels-idx1-ubyte")), 10, model == "cnn");
    if (s.train_samples > 0 && s.train_samples < train.size()) {
        std::vector<std::size_t> first(s.train_samples);
        for (std::size_t i = 0; i < first.size(); ++i) first[i] = i;
        train = train.subset(first);
    }
    auto options = options_for(chosen->method, s.batch).epochs(s.epochs);
    advaug::sgd<float> optimizer(advaug::sgd_options{}.momentum(0.9));
    double loss = 0;
    auto fit = [&](auto& net) {
        advaug::trainer<std::decay_t<decltype(net)>, advaug::sgd<float>> trainer(net, optimizer,
                                                                                 options);
        const auto res = trainer.fit(train);
        loss = res.epochs.back().loss;
    };
    if (model == "mlp") {
        advaug::mlp<float> net(mlp_widths, 0, advaug::weight_init::pytorch_default);
        fit(net);
    } else {
        advaug::cnn<float> net(0, advaug::weight_init::pytorch_default);
        fit(net);
    }
    const double seconds = seconds_since(start);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf(
        "{\"side\":\"advaug\",\"table\":\"full-run\",\"model\":\"%s\",\"workload\":\"%s\","
        "\"epochs\":%zu,"
        "\"samples\":%zu,\"seconds\":%.2f,\"final_loss\":%.4f,\"self_max_rss_kib\":%ld}\n",
        model.c_str(), name.c_str(), s.epochs, train.size(), seconds, loss, usage.ru_maxrss);
    return std::isfinite(loss) ? 0 : 1;
}

void declare_options(CLI::App& app, settings& s) {
    app.add_flag(
        "--smoke", s.smoke,
        "one step of every workload at batch 32 (unless --batch) and a tiny scaling run (CI)");
    app.add_option("--threads", s.threads, "threads of the kernel library and of advaug")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    app.add_option("--advaug-threads", s.advaug_threads,
                   "advaug's threads (advaug::set_num_threads), when not --threads")
        ->check(CLI::Range(1, 256));
    app.add_option("--batch", s.batch, "batch size of the main table")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    app.add_option("--data", s.data_dir, "Fashion-MNIST directory")->capture_default_str();
    app.add_flag("--random-inputs", s.random_inputs,
                 "uniform [0, 1] pixels and random labels instead of Fashion-MNIST");
    app.add_option("--json", s.json_path, "also write one JSON object per result to PATH");
    app.add_flag("!--no-scaling", s.scaling, "skip the scaling tables");
    app.add_flag("!--no-cnn-scaling", s.cnn_scaling,
                 "skip the CNN rows of the batch scaling table");
    app.add_flag("--gemms", s.gemms, "also list the kernel library's speed on every GEMM of both models");
    app.add_option("--only", s.only,
                   "run only MODEL/WORKLOAD (e.g. mlp/seed-fgsm), or 'families' (the perturbation "
                   "families' table), no scaling");
    app.add_option("--seconds", s.only_seconds,
                   "with --only: run for this long instead of the timed repeats, without the GEMM "
                   "bound (for a profiler)")
        ->check(CLI::PositiveNumber);
    app.add_option("--full-run", s.full_run,
                   "train MODEL:WORKLOAD (e.g. mlp:seed-fgsm) on all training images");
    app.add_option("--epochs", s.epochs, "epochs of --full-run")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--train-samples", s.train_samples,
                   "--full-run on the first N training images (default: all)")
        ->check(CLI::Range(1, 1 << 30));
    app.add_flag("--flush-denormals", s.flush_denormals,
                 "flush subnormal floats to zero (x86 FTZ and DAZ) in every thread; the kernels "
                 "of a step that reaches subnormals are otherwise slowed by the CPU's assists");
}

// FTZ (bit 15) and DAZ (bit 6) of MXCSR, on this thread; threads started later inherit them.
void flush_denormals() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040u);
#else
    throw bench_error("--flush-denormals: this build is not for an x86 CPU (no MXCSR)");
#endif
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    CLI::App app(
        "advaug_bench: samples/s of advaug's attacks and training steps, the GEMM bound, "
        "allocations");
    declare_options(app, s);
    CLI11_PARSE(app, argc, argv);
    try {
        if (s.flush_denormals) flush_denormals();  // before any thread starts
        advaug::set_num_threads(
            static_cast<std::size_t>(s.advaug_threads > 0 ? s.advaug_threads : s.threads));
#ifndef ADVAUG_NO_BLAS
        advaug::backend::set_blas_threads(s.threads);
#endif
        // What runs the products (backend/info.hpp); the float GEMM is what the steps use.
        const auto kernels = advaug::backend::describe();
        const std::string blas = kernels.blas_config.empty() ? kernels.summary() : kernels.blas_config;
        if (!s.full_run.empty()) return full_run(s);
        if (s.smoke) {
            s.timing = timing_config{0, 0, 1, 0};
            // Batch 32 unless asked otherwise: the smoke run checks that everything runs, fast.
            if (app.count("--batch") == 0) s.batch = 32;
        }

        std::optional<advaug::fashion_mnist> data;
        if (!s.random_inputs) {
            try {
                data = advaug::load_fashion_mnist(s.data_dir);
            } catch (const advaug::io_error& e) {
                if (!s.smoke) throw;
                // CI machines without the data set still check that everything runs.
                std::printf("Fashion-MNIST not available (%s); using uniform random inputs\n",
                            e.what());
            }
        }
        const std::string inputs =
            data ? "Fashion-MNIST training images" : "uniform random inputs in [0, 1]";
        std::printf("advaug_bench: %d threads, kernels: %s (ADVAUG_BACKEND %s)%s%s, %s%s\n",
                    s.threads, kernels.summary().c_str(), kernels.backend.c_str(),
                    kernels.blas_config.empty() ? "" : ", ", kernels.blas_config.c_str(),
                    inputs.c_str(), s.smoke ? " (smoke run: one timed step each)" : "");
        if (s.flush_denormals) std::printf("subnormal floats flushed to zero (FTZ and DAZ)\n");
        if (!kernels.warning.empty()) std::printf("%s\n", kernels.warning.c_str());
        reporter rep(s.json_path);
        {
            std::ostringstream o;
            o << "{\"side\":\"advaug\",\"table\":\"meta\",\"openblas\":\"" << blas
              << "\",\"kernels\":\"" << kernels.summary() << "\",\"backend\":\"" << kernels.backend
              << "\",\"threads\":" << s.threads << ",\"inputs\":\"" << inputs
              << "\",\"smoke\":" << (s.smoke ? "true" : "false")
              << ",\"flush_denormals\":" << (s.flush_denormals ? "true" : "false") << "}";
            rep.raw(o.str());
        }
        gemm_timer timer(s.smoke, s.threads);
        if (s.gemms) {
            print_gemms("MLP 784-256-256-10, batch " + std::to_string(s.batch),
                        mlp_gemms(mlp_widths, s.batch), timer);
            print_gemms("CNN, batch " + std::to_string(s.batch), cnn_gemms(s.batch), timer);
        }
        if (s.only != "families") run_main_table(s, data, rep, timer);
        if (s.only.empty() || s.only == "families") run_family_table(s, data, rep);
        if (s.scaling && s.only.empty()) run_scaling(s, data, rep, timer);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "advaug_bench: error: %s\n", e.what());
        return 1;
    }
}
