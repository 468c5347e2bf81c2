// onednn_conv_probe: oneDNN's convolution primitives next to advaug's conv2d (im2col +
// backend::gemm), for the CNN's two convolutions, on one thread, and the heap allocations of
// one primitive execution. The figures behind docs/design.md ("Convolutions: oneDNN's
// primitives measured"). Built with the oneDNN backend only.
//
//   OMP_NUM_THREADS=1 onednn_conv_probe [batch]     (batch 8, conv2d's gradient block, by default)
//
// Each time is the fastest of 5 repeats of 30 calls. The blocked layouts' times leave out the
// reorders a layer would need into and out of nChw16c.
#include <advaug/layers/conv2d.hpp>
#include <advaug/parallel/threads.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t n) {
    ++allocations;
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using clock_type = std::chrono::steady_clock;

template <class F>
double fastest_us(F f) {
    f();
    double best = 1e300;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = clock_type::now();
        for (int i = 0; i < 30; ++i) f();
        best = std::min(
            best, std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() / 30);
    }
    return best;
}

void fill(float* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) p[i] = 0.01f * static_cast<float>(i % 17);
}

struct conv_layer {
    int in, out, size;
};

void probe_onednn(const conv_layer& l, int batch, bool blocked) {
    using namespace dnnl;
    using tag = memory::format_tag;
    engine eng(engine::kind::cpu, 0);
    stream s(eng);
    const memory::dims src{batch, l.in, l.size, l.size}, wei{l.out, l.in, 3, 3}, bia{l.out},
        dst{batch, l.out, l.size, l.size}, stride{1, 1}, pad{1, 1};
    const auto f32 = memory::data_type::f32;
    const memory::desc sd(src, f32, blocked ? tag::any : tag::nchw),
        wd(wei, f32, blocked ? tag::any : tag::oihw), bd(bia, f32, tag::x),
        dd(dst, f32, blocked ? tag::any : tag::nchw);
    primitive_attr attr;
    attr.set_scratchpad_mode(scratchpad_mode::user);  // no scratchpad allocation per call
    const convolution_forward::primitive_desc fpd(
        {prop_kind::forward_training, algorithm::convolution_direct, sd, wd, bd, dd, stride, pad,
         pad},
        attr, eng);
    const convolution_backward_data::primitive_desc dpd(
        {algorithm::convolution_direct, sd, wd, dd, stride, pad, pad}, attr, eng, fpd);
    const convolution_backward_weights::primitive_desc wpd(
        {algorithm::convolution_direct, sd, wd, bd, dd, stride, pad, pad}, attr, eng, fpd);
    memory x(fpd.src_desc(), eng), w(fpd.weights_desc(), eng), b(fpd.bias_desc(), eng),
        y(fpd.dst_desc(), eng), dy(dpd.diff_dst_desc(), eng), dx(dpd.diff_src_desc(), eng),
        dw(wpd.diff_weights_desc(), eng), db(wpd.diff_bias_desc(), eng);
    for (auto* m : {&x, &w, &b, &dy}) {
        fill(static_cast<float*>(m->get_data_handle()), m->get_desc().get_size() / sizeof(float));
    }
    const std::size_t scratch_bytes =
        std::max({fpd.scratchpad_desc().get_size(), dpd.scratchpad_desc().get_size(),
                  wpd.scratchpad_desc().get_size(), std::size_t(1)});
    memory scratch(
        memory::desc({static_cast<memory::dim>(scratch_bytes)}, memory::data_type::u8, tag::x),
        eng);
    const convolution_forward fwd(fpd);
    const convolution_backward_data bwd_data(dpd);
    const convolution_backward_weights bwd_weights(wpd);
    // The C API with the arguments on the stack: the least a caller can allocate.
    const dnnl_exec_arg_t fwd_args[] = {{DNNL_ARG_SRC, x.get()},
                                        {DNNL_ARG_WEIGHTS, w.get()},
                                        {DNNL_ARG_BIAS, b.get()},
                                        {DNNL_ARG_DST, y.get()},
                                        {DNNL_ARG_SCRATCHPAD, scratch.get()}};
    const dnnl_exec_arg_t data_args[] = {{DNNL_ARG_DIFF_DST, dy.get()},
                                         {DNNL_ARG_WEIGHTS, w.get()},
                                         {DNNL_ARG_DIFF_SRC, dx.get()},
                                         {DNNL_ARG_SCRATCHPAD, scratch.get()}};
    const dnnl_exec_arg_t weight_args[] = {{DNNL_ARG_SRC, x.get()},
                                           {DNNL_ARG_DIFF_DST, dy.get()},
                                           {DNNL_ARG_DIFF_WEIGHTS, dw.get()},
                                           {DNNL_ARG_DIFF_BIAS, db.get()},
                                           {DNNL_ARG_SCRATCHPAD, scratch.get()}};
    auto run_fwd = [&] { dnnl_primitive_execute(fwd.get(), s.get(), 5, fwd_args); };
    auto run_data = [&] { dnnl_primitive_execute(bwd_data.get(), s.get(), 4, data_args); };
    auto run_weights = [&] { dnnl_primitive_execute(bwd_weights.get(), s.get(), 5, weight_args); };
    run_fwd();
    const long before = allocations.load();
    run_fwd();
    const long per_call = allocations.load() - before;
    std::printf(
        "conv %d->%d %dx%d, oneDNN %-7s (%s / %s / %s): fwd %7.1f us, bwd-data %7.1f us, "
        "bwd-weights %7.1f us; %ld allocations per execute\n",
        l.in, l.out, l.size, l.size, blocked ? "blocked" : "NCHW", fpd.impl_info_str(),
        dpd.impl_info_str(), wpd.impl_info_str(), fastest_us(run_fwd), fastest_us(run_data),
        fastest_us(run_weights), per_call);
}

void probe_advaug(const conv_layer& l, int batch) {
    advaug::rng gen(1);
    advaug::conv2d<float> conv(l.in, l.out, 3, gen, advaug::conv2d_options{}.padding(1));
    const auto n = static_cast<std::size_t>(batch);
    auto x = advaug::tensor<float, 4>::from_shape(
        {n, std::size_t(l.in), std::size_t(l.size), std::size_t(l.size)});
    fill(x.data(), x.size());
    advaug::tensor<float, 4> y, dx;
    advaug::conv2d<float>::cache_type cache;
    conv.forward(x, cache, y);
    const advaug::tensor<float, 4> dy = y;
    std::printf(
        "conv %d->%d %dx%d, advaug im2col + backend::gemm: fwd %7.1f us, bwd-data %7.1f us, "
        "bwd-weights %7.1f us\n",
        l.in, l.out, l.size, l.size, fastest_us([&] { conv.forward(x, cache, y); }),
        fastest_us([&] { conv.backward_input(cache, dy, dx); }),
        fastest_us([&] { conv.accumulate_gradient(cache, dy); }));
}

}  // namespace

int main(int argc, char** argv) {
    const int batch = argc > 1 ? std::atoi(argv[1]) : 8;
    if (batch < 1) {
        std::fprintf(stderr, "usage: onednn_conv_probe [batch >= 1]\n");
        return 2;
    }
    advaug::set_num_threads(1);
    std::printf("onednn_conv_probe: batch %d, one advaug thread; %s\n", batch,
                advaug::backend::describe().summary().c_str());
    for (const conv_layer l : {conv_layer{1, 32, 28}, conv_layer{32, 64, 14}}) {
        probe_advaug(l, batch);
        probe_onednn(l, batch, false);
        probe_onednn(l, batch, true);
    }
}
