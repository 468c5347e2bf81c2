// advaug's own threads: the batch dimension of the convolution and the element-wise layers,
// and the rows or columns of a large GEMM, are split across them, while every BLAS call advaug
// makes runs on one BLAS thread.
//
//   advaug::set_num_threads(4);   // advaug's work on up to 4 threads (the caller's included)
//   advaug::num_threads();        // 4
//
// Why: a convolution is one small GEMM per image (64 x 196 x 288 for the bundled CNN's second
// layer). Handed to a 2-thread BLAS one at a time, such a product barely gains from the
// second thread, and the element-wise work between the products (im2col, ReLU, pooling) runs
// on one core while BLAS's idle threads spin. Splitting the images across threads, each
// running single-threaded BLAS, uses every core for all of it. A large GEMM (a dense layer's)
// is split into one block of rows or columns per thread (backend::gemm), so that BLAS's own
// worker threads never wake up to compete with advaug's.
//
// The default is the environment variable ADVAUG_NUM_THREADS when set (1 to 256), otherwise
// std::thread::hardware_concurrency() (at most 64).
//
// Reproducibility: a run is deterministic for a given thread count. Convolutions, pooling,
// ReLU, the attacks' steps and random starts, and SGD compute the same bits for any thread
// count (every sum is taken in the same order; see conv2d's weight gradient). A dense layer's
// product split across threads may differ in the last bits, where the BLAS picks another
// kernel for a smaller block than for the whole product.
//
// Thread safety: set_num_threads must not run while another thread is inside advaug. Any
// number of threads may call into advaug concurrently; one at a time gets the worker threads,
// the others run their work on their own thread (never waiting for the pool, never
// oversubscribing it). Work started on a worker thread never starts more parallel work.
//
// BLAS: with more than one advaug thread, the BLAS thread count is set to 1 around every
// parallel region and every GEMM advaug makes, and restored after (through
// openblas_set_num_threads, found at run time when the BLAS is OpenBLAS). With another
// multi-threaded BLAS, set its thread count to 1 yourself or call set_num_threads(1), which
// leaves the parallelism to the BLAS as before.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "advaug/detail/error.hpp"

#if !defined(ADVAUG_NO_BLAS) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
// OpenBLAS's thread control, declared weak: null when the BLAS linked is not OpenBLAS.
extern "C" {
__attribute__((weak)) void openblas_set_num_threads(int);
__attribute__((weak)) int openblas_get_num_threads(void);
}
#define ADVAUG_OPENBLAS_THREADS 1
#endif

namespace advaug {

namespace detail {

/// The BLAS's thread count where advaug can read and set it (OpenBLAS on ELF platforms);
/// get() is 0 elsewhere and set() does nothing.
struct blas_threads {
    static int get() {
#ifdef ADVAUG_OPENBLAS_THREADS
        if (&openblas_get_num_threads != nullptr && &openblas_set_num_threads != nullptr) {
            return openblas_get_num_threads();
        }
#endif
        return 0;
    }
    static void set([[maybe_unused]] int threads) {
#ifdef ADVAUG_OPENBLAS_THREADS
        if (&openblas_set_num_threads != nullptr) openblas_set_num_threads(threads);
#endif
    }
};

/// A fixed set of worker threads that run the chunks of one parallel_for at a time. The caller
/// of try_run() works too, so a pool of size n has n - 1 workers.
class thread_pool {
public:
    explicit thread_pool(std::size_t size) : size_(size), errors_(size) {
        workers_.reserve(size - 1);
        for (std::size_t slot = 1; slot < size; ++slot) {
            workers_.emplace_back([this, slot] { work(slot); });
        }
    }
    ~thread_pool() {
        stop_.store(true, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        for (auto& t : workers_) t.join();
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    std::size_t size() const { return size_; }

    /// Runs task(slot) for slot in [0, slots) on the caller (slot 0) and slots - 1 workers,
    /// returns when all are done, then rethrows the first exception (by slot) any of them
    /// threw. Returns false, running nothing, when another thread holds the pool.
    /// requires: 2 <= slots <= size().
    template <class Task>
    bool try_run(std::size_t slots, const Task& task) {
        std::unique_lock lock(busy_, std::try_to_lock);
        if (!lock.owns_lock()) return false;
        task_ = [](const void* t, std::size_t slot) { (*static_cast<const Task*>(t))(slot); };
        task_object_ = &task;
        active_ = slots;
        remaining_.store(size_ - 1, std::memory_order_relaxed);  // every worker checks in
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        run_slot(0);
        for (std::size_t left; (left = remaining_.load(std::memory_order_acquire)) != 0;) {
            wait_while(remaining_, left);
        }
        for (std::size_t slot = 0; slot < slots; ++slot) {
            if (errors_[slot]) {
                auto e = std::exchange(errors_[slot], nullptr);
                for (auto& other : errors_) other = nullptr;
                std::rethrow_exception(e);
            }
        }
        return true;
    }

    /// True on a worker thread and on a caller inside try_run: nested parallel work runs
    /// serially.
    static bool& inside() {
        thread_local bool in = false;
        return in;
    }

private:
    /// Returns once v != old. Spins, then yields, for up to spin_time before it sleeps: a
    /// sleeping thread takes tens of microseconds to wake (more in a VM), as long as a dense
    /// layer's whole product, and a training step starts several products in a row.
    static void wait_while(const std::atomic<std::size_t>& v, std::size_t old) {
        constexpr auto spin_time = std::chrono::microseconds(500);
        for (int i = 0; i < 256; ++i) {
            if (v.load(std::memory_order_acquire) != old) return;
            cpu_relax();
        }
        const auto until = std::chrono::steady_clock::now() + spin_time;
        while (std::chrono::steady_clock::now() < until) {
            if (v.load(std::memory_order_acquire) != old) return;
            std::this_thread::yield();
        }
        v.wait(old, std::memory_order_acquire);
    }

    static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }

    void run_slot(std::size_t slot) {
        inside() = true;
        try {
            task_(task_object_, slot);
        } catch (...) {
            errors_[slot] = std::current_exception();
        }
        inside() = slot != 0;  // workers stay "inside" for life
    }

    void work(std::size_t slot) {
        inside() = true;
        std::size_t seen = 0;
        for (;;) {
            wait_while(generation_, seen);
            seen = generation_.load(std::memory_order_acquire);
            if (stop_.load(std::memory_order_relaxed)) return;
            // A worker without a chunk checks in too, so that no run starts before every
            // worker has seen the previous one.
            if (slot < active_) run_slot(slot);
            if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) remaining_.notify_one();
        }
    }

    std::size_t size_;
    std::vector<std::thread> workers_;
    std::vector<std::exception_ptr> errors_;
    std::mutex busy_;
    std::atomic<std::size_t> generation_{0};
    std::atomic<std::size_t> remaining_{0};
    std::atomic<bool> stop_{false};
    std::size_t active_ = 0;
    void (*task_)(const void*, std::size_t) = nullptr;
    const void* task_object_ = nullptr;
};

/// The thread count advaug starts with: ADVAUG_NUM_THREADS, else the hardware's (1 to 64).
inline std::size_t default_num_threads() {
    if (const char* env = std::getenv("ADVAUG_NUM_THREADS"); env != nullptr && *env != '\0') {
        char* end = nullptr;
        const long v = std::strtol(env, &end, 10);
        if (*end != '\0' || v < 1 || v > 256) {
            invalid("advaug::num_threads",
                    "ADVAUG_NUM_THREADS must be an integer from 1 to 256, got \"", env, "\"");
        }
        return static_cast<std::size_t>(v);
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return std::clamp<std::size_t>(hw == 0 ? 1 : hw, 1, 64);
}

struct pool_state {
    std::mutex m;
    std::size_t threads = 0;  // 0: not read yet
    std::unique_ptr<thread_pool> pool;
#if defined(__unix__) || defined(__APPLE__)
    pid_t owner = 0;  // the process that started the pool's threads

    /// A child of fork() has none of the parent's workers: joining them would never return,
    /// so their pool is left alone (never destroyed) there.
    void forget_if_inherited() {
        if (pool != nullptr && owner != ::getpid()) (void)pool.release();
    }
    ~pool_state() { forget_if_inherited(); }
#else
    void forget_if_inherited() {}
#endif
};

inline pool_state& global_pool() {
    static pool_state state;
    return state;
}

/// Replaces s.pool by a pool of s.threads (none for 1). requires: s.m is held.
inline void start_pool(pool_state& s) {
    s.forget_if_inherited();
    s.pool.reset();
    if (s.threads > 1) s.pool = std::make_unique<thread_pool>(s.threads);
#if defined(__unix__) || defined(__APPLE__)
    s.owner = ::getpid();
#endif
}

/// The pool, created on first use (nullptr when advaug runs on one thread).
inline thread_pool* current_pool() {
    auto& s = global_pool();
    std::lock_guard lock(s.m);
    if (s.threads == 0) {
        s.threads = default_num_threads();
        start_pool(s);
    }
    // After fork(), the child starts its own workers.
    if (s.pool != nullptr) {
        s.forget_if_inherited();
        if (s.pool == nullptr) start_pool(s);
    }
    return s.pool.get();
}

/// While alive, BLAS calls run on one BLAS thread (where blas_threads can set it).
/// Nested and concurrent scopes share one count: the first sets 1, the last restores.
class single_threaded_blas {
public:
    single_threaded_blas() {
        auto& s = state();
        std::lock_guard lock(s.m);
        if (s.depth++ == 0) {
            s.saved = blas_threads::get();
            if (s.saved > 1) blas_threads::set(1);
        }
    }
    ~single_threaded_blas() {
        auto& s = state();
        std::lock_guard lock(s.m);
        if (--s.depth == 0 && s.saved > 1) blas_threads::set(s.saved);
    }
    single_threaded_blas(const single_threaded_blas&) = delete;
    single_threaded_blas& operator=(const single_threaded_blas&) = delete;

private:
    struct shared {
        std::mutex m;
        int depth = 0;
        int saved = 0;
    };
    static shared& state() {
        static shared s;
        return s;
    }
};

/// The smallest chunk of an element-wise loop worth a thread of its own: below it, waking a
/// worker costs more than the loop.
inline constexpr std::size_t elementwise_grain = 65536;

/// Rows (samples, image planes) of `row_size` values per chunk of an element-wise loop over
/// rows: at least elementwise_grain values, and at least one row.
inline std::size_t rows_per_chunk(std::size_t row_size) {
    return std::max<std::size_t>(1, elementwise_grain / std::max<std::size_t>(row_size, 1));
}

/// Calls body(begin, end, slot) on disjoint chunks that cover [0, n), each at least `grain`
/// long (but the last), on up to num_threads() threads; slot < num_threads() names the thread,
/// so that body can use per-slot scratch. The chunks are contiguous and in order of slot. Runs
/// body(0, n, 0) on the caller when n < 2 grain, when advaug has one thread, inside another
/// parallel_for, or while another thread holds the pool. Rethrows the first exception.
template <class Body>
void parallel_for(std::size_t n, std::size_t grain, const Body& body) {
    if (n == 0) return;
    thread_pool* pool = thread_pool::inside() ? nullptr : current_pool();
    const std::size_t chunks =
        pool == nullptr ? 1 : std::min(pool->size(), n / std::max<std::size_t>(grain, 1));
    if (chunks >= 2) {
        single_threaded_blas blas;
        const auto task = [&](std::size_t slot) {
            body(n * slot / chunks, n * (slot + 1) / chunks, slot);
        };
        if (pool->try_run(chunks, task)) return;
    }
    body(0, n, 0);
}

/// The most slots a parallel_for may use: size per-slot scratch with it.
inline std::size_t parallel_slots() {
    thread_pool* pool = current_pool();
    return pool == nullptr ? 1 : pool->size();
}

}  // namespace detail

/// Sets the number of threads advaug's own parallel work runs on (the caller's included);
/// 1 runs everything on the calling thread. Joins the old workers and starts new ones.
/// requires: 1 <= threads <= 256; no other thread is inside advaug.
inline void set_num_threads(std::size_t threads) {
    if (threads < 1 || threads > 256) {
        detail::invalid("advaug::set_num_threads", "threads must be from 1 to 256, got ", threads);
    }
    auto& s = detail::global_pool();
    std::lock_guard lock(s.m);
    s.threads = threads;
    detail::start_pool(s);
}

/// The number of threads advaug's parallel work may use (see set_num_threads).
inline std::size_t num_threads() { return detail::parallel_slots(); }

}  // namespace advaug
