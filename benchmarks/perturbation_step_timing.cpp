// One worst-case step's family work (apply + vjp_theta) next to the MLP's forward and backward,
// batch 128, float, one thread: the informal figures in docs/perturbations.md, until
// advaug_bench gets the issue-16 row. Built with the benchmarks:
//
//   cmake --build build --target perturbation_step_timing && build/benchmarks/perturbation_step_timing
#include <advaug/advaug.hpp>
#include <chrono>
#include <cstdio>
using namespace advaug;
using clk = std::chrono::steady_clock;
template <class Fn>
double best_ms(Fn&& fn, int reps = 7) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        auto t0 = clk::now();
        fn();
        best = std::min(best, std::chrono::duration<double, std::milli>(clk::now() - t0).count());
    }
    return best;
}
template <class F>
void fam(const char* name, const F& f, const tensor<float, 2>& x, double base) {
    tensor<float, 2> th, out, dth;
    f.sample(x.shape()[0], 1, th);
    tensor<float, 2> g = x;
    const double ms = best_ms([&] {
        f.apply(x, th, out);
        f.vjp_theta(x, th, g, dth);
    });
    std::printf("%-20s apply+vjp_theta %7.2f ms  = %5.1f%% of MLP fwd+bwd\n", name, ms,
                100 * ms / base);
}
int main() {
    set_num_threads(1);
    const std::size_t n = 128;
    mlp<float> net({784, 256, 256, 10}, 1);
    tensor<float, 2> x = tensor<float, 2>::from_shape({n, 784});
    advaug::rng gen(2);
    for (auto& v : x) v = float(gen.uniform(0.1, 0.9));
    label_vector y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) y(i) = i % 10;
    mlp<float>::cache_type c;
    tensor<float, 2> logits, dl, dx;
    const double base = best_ms([&] {
        net.forward(x, c, logits);
        cross_entropy_gradient(logits, y, dl);
        net.input_gradient(c, dl, dx);
        net.parameter_gradient(c, dl);
    });
    std::printf("MLP 784-256-256-10 fwd+bwd, batch 128, 1 thread: %.2f ms\n", base);
    image_shape s{1, 28, 28};
    fam("photometric",
        photometric<float>(s, {.brightness = symmetric(0.1),
                               .contrast = symmetric(0.2),
                               .log_gamma = symmetric(0.2)}),
        x, base);
    fam("affine",
        affine<float>(
            s,
            {.rotation = symmetric(15), .translate_x = symmetric(2), .translate_y = symmetric(2)}),
        x, base);
    fam("displacement_field", displacement_field<float>(s, {.grid = 4, .max_displacement = 1}), x,
        base);
    fam("gaussian_blur", gaussian_blur<float>(s, {0, 1.5}), x, base);
    fam("linf_ball", linf_ball<float>(s, 0.1), x, base);
    fam("l2_ball", l2_ball<float>(s, 1.0), x, base);
    fam("tabular_drift",
        tabular_drift<float>(784, {.gain = {symmetric(0.1)}, .offset = {symmetric(0.1)}}), x, base);
    fam("dropped_sensors", dropped_sensors<float>(784, 10), x, base);
}
