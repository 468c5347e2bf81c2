// gemm_rate: GFLOP/s of advaug::backend::gemm on issue 15's six shapes (the MLP's and the
// output layer's products at batch 128, and a large square one), with the kernel
// backend of this build (the first line names it), on advaug's threads.
//
//   gemm_rate [threads]      (default 2; ADVAUG_BACKEND decides the library)
//
// Each figure is the fastest of 9 repeats of at least 0.2 s, float, C = A B (no transposes),
// random operands in [-1, 1].
#include <advaug/backend/gemm.hpp>
#include <advaug/detail/random.hpp>
#include <advaug/parallel/threads.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    if (threads < 1) {
        std::fprintf(stderr, "usage: gemm_rate [threads >= 1]\n");
        return 2;
    }
    advaug::set_num_threads(static_cast<std::size_t>(threads));
    advaug::backend::set_blas_threads(threads);  // for set_num_threads(1): the library's own
    std::printf("gemm_rate: %d threads, %s\n", threads,
                advaug::backend::describe().summary().c_str());
    using clock_type = std::chrono::steady_clock;
    using shape = std::array<std::size_t, 3>;  // M x N x K
    for (const shape mnk : {shape{128, 256, 784}, shape{128, 784, 256}, shape{256, 784, 128},
                            shape{128, 256, 256}, shape{128, 10, 256}, shape{1024, 1024, 1024}}) {
        // Not a structured binding: clang before 16 cannot capture one in a lambda.
        const std::size_t m = mnk[0], n = mnk[1], k = mnk[2];
        std::vector<float> a(m * k), b(k * n), c(m * n);
        advaug::rng gen(1);
        for (auto* v : {&a, &b}) {
            for (auto& x : *v) x = static_cast<float>(gen.uniform(-1, 1));
        }
        auto once = [&] {
            advaug::backend::gemm<float>(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n,
                                         0.0f, c.data(), n);
        };
        for (int i = 0; i < 3; ++i) once();  // warm-up: oneDNN generates its kernels here
        double best = 1e300;
        for (int r = 0; r < 9; ++r) {
            std::size_t calls = 0;
            const auto t0 = clock_type::now();
            double elapsed = 0;
            do {
                once();
                ++calls;
                elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
            } while (elapsed < 0.2);
            best = std::min(best, elapsed / static_cast<double>(calls));
        }
        std::printf("%4zu x %4zu x %4zu: %7.1f GFLOP/s (%.1f us)\n", m, n, k,
                    2.0 * double(m) * double(n) * double(k) / best * 1e-9, best * 1e6);
    }
}
