// The device versions of the attacks' customization points (backend/host.hpp), found by
// argument-dependent lookup on cuda::device_tensor, so fgsm(), fgm(), pgd() and bim() run on
// device batches unchanged:
//
//   auto x = cuda::to_device(batch);
//   auto y = cuda::to_device(labels);
//   auto adv = advaug::pgd(gpu_model, x, y, advaug::pgd_options{}.epsilon(0.1));  // on the GPU
//
// Each step is one fused kernel (sign, step, projection onto the ball, clip to the domain).
// Argument checks run as one kernel and one small download per attack. A non-finite gradient
// is recorded by the step kernels (which then leave that element, or that sample for L2,
// unchanged) and reported when the attack has taken its steps, so PGD does not wait for the
// device after every step; the error is the host's numeric_error with the same message.
// Random starts take their keys from the host's generator (advaug::rng, seeded with the
// options' seed). The L-inf start is the host's, bit for bit: each thread calls the host's
// counter-based detail::counter_uniform for its element. The L2 start (a Gaussian direction,
// drawn in sequence on the host) uses cuRAND's Philox4x32-10 keyed the same way: the same seed
// gives the same start on every run on a GPU, but not the host's numbers.
#pragma once

#include <curand_kernel.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>

#include "advaug/backend/element_math.hpp"
#include "advaug/backend/host.hpp"
#include "advaug/backend/tensor_traits.hpp"
#include "advaug/cuda/kernels.hpp"
#include "advaug/cuda/loss.hpp"
#include "advaug/cuda/tensor.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/domain/input_domain.hpp"

namespace advaug::cuda {

/// An input_domain resolved for a device batch: the host's per-element limits, on the device,
/// and the step kernels' record of the first non-finite gradient.
template <class T>
struct device_domain {
    std::size_t sample_size = 0;
    device_buffer<T> lo, hi, raw_per_model, model_per_raw;
    /// The first non-finite gradient seen, packed as (flat index << 2) | kind (0 NaN, 1 +inf,
    /// 2 -inf); all ones when none.
    device_buffer<unsigned long long> first_bad_gradient;
};

namespace detail {

namespace el = backend::element;

inline constexpr unsigned long long no_bad_index = ~0ull;

/// First violations of a batch's checks, as flat indices (no_bad_index when none).
struct input_status {
    unsigned long long bad_label, non_finite, outside;
};

template <class T>
__global__ void check_inputs_kernel(const T* x, std::size_t total, std::size_t d_size, const T* lo,
                                    const T* hi, const std::int64_t* y, std::size_t n,
                                    std::size_t classes, input_status* status) {
    ADVAUG_GRID_STRIDE(i, total) {
        const T v = x[i];
        if (!isfinite(v)) atomicMin(&status->non_finite, static_cast<unsigned long long>(i));
        const std::size_t d = i % d_size;
        if (!backend::element::inside_domain(v, lo[d], hi[d])) {
            atomicMin(&status->outside, static_cast<unsigned long long>(i));
        }
        if (i < n && (y[i] < 0 || static_cast<std::uint64_t>(y[i]) >= classes)) {
            atomicMin(&status->bad_label, static_cast<unsigned long long>(i));
        }
    }
}

template <class T>
__device__ void record_bad_gradient(unsigned long long* first, std::size_t i, T g) {
    const unsigned long long kind = isnan(g) ? 0ull : (g > T(0) ? 1ull : 2ull);
    atomicMin(first, (static_cast<unsigned long long>(i) << 2) | kind);
}

template <class T>
__global__ void linf_step_kernel(T* x, const T* x0, const T* g, std::size_t total,
                                 std::size_t d_size, const T* lo, const T* hi, const T* scale,
                                 T step, T eps, T direction, unsigned long long* first_bad) {
    ADVAUG_GRID_STRIDE(i, total) {
        const std::size_t d = i % d_size;
        const T gi = g[i];
        if (!isfinite(gi)) {
            record_bad_gradient(first_bad, i, gi);
            continue;
        }
        x[i] = el::linf_step(x[i], x0[i], gi, lo[d], hi[d], scale[d], step, eps, direction);
    }
}

/// Sums a double over the block (blockDim.x == block_size); every thread gets the result.
__device__ inline double block_sum(double v, double* shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    const double out = shared[0];
    __syncthreads();
    return out;
}

/// One block per sample: the gradient's raw-unit norm, the step, the projection, the clip.
template <class T>
__global__ void l2_step_kernel(T* x, const T* x0, const T* g, std::size_t d_size, const T* lo,
                               const T* hi, const T* raw_per_model, const T* model_per_raw, T step,
                               T eps, T direction, unsigned long long* first_bad) {
    __shared__ double shared[block_size];
    const std::size_t base = blockIdx.x * d_size;
    T* xs = x + base;
    const T* x0s = x0 + base;
    const T* gs = g + base;
    double gnorm2 = 0;
    int bad = 0;
    for (std::size_t d = threadIdx.x; d < d_size; d += blockDim.x) {
        if (!isfinite(gs[d])) {
            record_bad_gradient(first_bad, base + d, gs[d]);
            bad = 1;
            continue;
        }
        const double graw = el::raw_gradient(gs[d], model_per_raw[d]);
        gnorm2 += graw * graw;
    }
    if (__syncthreads_or(bad)) return;  // the whole block leaves together
    gnorm2 = block_sum(gnorm2, shared);
    const double gscale = el::l2_gradient_scale(gnorm2, step, direction);
    double dnorm2 = 0;
    for (std::size_t d = threadIdx.x; d < d_size; d += blockDim.x) {
        const double delta =
            el::l2_delta_raw(xs[d], x0s[d], gs[d], raw_per_model[d], model_per_raw[d], gscale);
        dnorm2 += delta * delta;
    }
    dnorm2 = block_sum(dnorm2, shared);
    const double shrink = el::l2_shrink(dnorm2, eps);
    for (std::size_t d = threadIdx.x; d < d_size; d += blockDim.x) {
        const double delta =
            el::l2_delta_raw(xs[d], x0s[d], gs[d], raw_per_model[d], model_per_raw[d], gscale);
        xs[d] = el::l2_step(x0s[d], delta, shrink, model_per_raw[d], lo[d], hi[d]);
    }
}

/// Element i of the host's L-inf start for this key (detail::random_start).
template <class T>
__global__ void linf_start_kernel(T* x, const T* x0, std::size_t total, std::size_t d_size,
                                  const T* lo, const T* hi, const T* model_per_raw, double eps,
                                  std::uint64_t key) {
    ADVAUG_GRID_STRIDE(i, total) {
        const double u = ::advaug::detail::counter_uniform(key, i, 0.0, 1.0);
        const std::size_t d = i % d_size;
        x[i] = el::linf_start(x0[i], u, eps, model_per_raw[d], lo[d], hi[d]);
    }
}

/// One block per sample: a Gaussian direction scaled to radius eps * U^(1/d), from cuRAND's
/// Philox4x32-10 seeded with `key`. Element j of the batch draws from subsequence j, the
/// radius of sample s from subsequence total + s.
template <class T>
__global__ void l2_start_kernel(T* x, const T* x0, std::size_t total, std::size_t d_size,
                                const T* lo, const T* hi, const T* model_per_raw, double eps,
                                unsigned long long key) {
    __shared__ double shared[block_size];
    const std::size_t base = blockIdx.x * d_size;
    double norm2 = 0;
    for (std::size_t d = threadIdx.x; d < d_size; d += blockDim.x) {
        curandStatePhilox4_32_10_t state;
        curand_init(key, base + d, 0, &state);
        const double g = curand_normal_double(&state);
        x[base + d] = static_cast<T>(g);  // kept here until the norm is known, as on the host
        norm2 += g * g;
    }
    norm2 = block_sum(norm2, shared);
    curandStatePhilox4_32_10_t state;
    curand_init(key, total + blockIdx.x, 0, &state);
    // cuRAND's uniforms lie in (0, 1]; 1 - u lies in [0, 1) like the host's.
    const double u = 1.0 - curand_uniform_double(&state);
    const double radius = eps * pow(u, 1.0 / static_cast<double>(d_size));
    const double scale = norm2 > 0 ? radius / sqrt(norm2) : 0.0;
    for (std::size_t d = threadIdx.x; d < d_size; d += blockDim.x) {
        x[base + d] = el::l2_start(x0[base + d], static_cast<double>(x[base + d]), scale,
                                   model_per_raw[d], lo[d], hi[d]);
    }
}

template <class T>
__global__ void keep_better_kernel(T* best, const T* best_loss, const T* current, const T* loss,
                                   std::size_t total, std::size_t d_size, T direction) {
    ADVAUG_GRID_STRIDE(i, total) {
        const std::size_t s = i / d_size;
        const bool better = direction > 0 ? loss[s] > best_loss[s] : loss[s] < best_loss[s];
        if (better) best[i] = current[i];
    }
}

template <class T>
__global__ void keep_better_loss_kernel(T* best_loss, const T* loss, std::size_t n, T direction) {
    ADVAUG_GRID_STRIDE(s, n) {
        const bool better = direction > 0 ? loss[s] > best_loss[s] : loss[s] < best_loss[s];
        if (better) best_loss[s] = loss[s];
    }
}

template <class T, std::size_t R>
std::array<std::size_t, R> shape_of(const device_tensor<T, R>& x) {
    return x.shape();
}

}  // namespace detail

// --- the customization points -----------------------------------------------------------------

/// The checks of the host's check_attack_inputs, in the same order and with the same messages.
template <class M, class T, std::size_t R>
device_domain<T> check_attack_inputs(const char* fn, const M& model, const device_tensor<T, R>& x,
                                     const device_labels& y, const input_domain& dom) {
    const auto& shape = x.shape();
    if (shape[0] == 0) {
        advaug::detail::invalid(fn, "inputs is an empty batch (shape ",
                                advaug::detail::shape_string(shape), ")");
    }
    if (y.size() != shape[0]) {
        advaug::detail::invalid(fn, "labels has ", y.size(), " entries, the batch has ", shape[0],
                                " rows");
    }
    const auto r = advaug::detail::resolve<T>(fn, dom, shape);
    device_domain<T> out;
    out.sample_size = r.sample_size;
    for (auto [dst, src] : {std::pair{&out.lo, &r.lo}, std::pair{&out.hi, &r.hi},
                            std::pair{&out.raw_per_model, &r.raw_per_model},
                            std::pair{&out.model_per_raw, &r.model_per_raw}}) {
        dst->allocate(src->size(), fn);
        detail::upload(fn, src->data(), dst->data(), src->size());
    }
    out.first_bad_gradient.allocate(1, fn);
    detail::upload(fn, &detail::no_bad_index, out.first_bad_gradient.data(), 1);

    const context& ctx = context::get(fn);
    const detail::input_status none{detail::no_bad_index, detail::no_bad_index,
                                    detail::no_bad_index};
    device_buffer<detail::input_status> status(1, fn);
    detail::upload(fn, &none, status.data(), 1);
    const unsigned blocks = detail::grid_for(x.size());
    detail::check_inputs_kernel<<<blocks, detail::block_size, 0, ctx.stream()>>>(
        x.data(), x.size(), r.sample_size, out.lo.data(), out.hi.data(), y.data(), y.size(),
        model.num_classes(), status.data());
    ADVAUG_CUDA_CHECK_LAUNCH(fn, "check_inputs_kernel");
    detail::input_status s{};
    detail::download(fn, status.data(), &s, 1);
    if (s.bad_label != detail::no_bad_index) {
        std::int64_t label = 0;
        detail::download(fn, y.data() + s.bad_label, &label, 1);
        advaug::detail::invalid(fn, "labels[", s.bad_label, "] = ", label, " is outside [0, ",
                                model.num_classes(), ")");
    }
    if (s.non_finite != detail::no_bad_index) {
        T v{};
        detail::download(fn, x.data() + s.non_finite, &v, 1);
        advaug::detail::invalid(fn, "inputs must be finite, got ", v, " at flat index ",
                                s.non_finite, " (shape ", advaug::detail::shape_string(shape), ")");
    }
    if (s.outside != detail::no_bad_index) {
        T v{};
        detail::download(fn, x.data() + s.outside, &v, 1);
        const std::size_t sample = s.outside / r.sample_size, d = s.outside % r.sample_size;
        advaug::detail::invalid(fn, "inputs[", sample, "] element ", d, " = ", v,
                                " lies outside the input domain [", r.lo[d], ", ", r.hi[d], "]",
                                advaug::detail::domain_hint);
    }
    return out;
}

/// The trainer's checks on each batch: check_attack_inputs, the domain uploaded again.
template <class M, class T, std::size_t R>
void check_training_inputs(const char* fn, const M& model, const device_tensor<T, R>& x,
                           const device_labels& y, const input_domain& domain,
                           device_domain<T>& dom) {
    dom = check_attack_inputs(fn, model, x, y, domain);
}

template <class T, std::size_t R>
void copy_tensor(device_tensor<T, R>& dst, const device_tensor<T, R>& src) {
    dst = src;
}

template <class T, std::size_t R>
void resize_like(device_tensor<T, R>& dst, const device_tensor<T, R>& src) {
    dst.resize(src.shape());
}

template <class T>
__global__ void scale_kernel(T* p, std::size_t n, T factor) {
    ADVAUG_GRID_STRIDE(i, n) p[i] *= factor;
}

template <class T, std::size_t R>
void scale_in_place(device_tensor<T, R>& t, T factor) {
    if (t.size() == 0) return;
    const char* fn = "cuda::scale_in_place";
    scale_kernel<<<detail::grid_for(t.size()), detail::block_size, 0, context::get(fn).stream()>>>(
        t.data(), t.size(), factor);
    ADVAUG_CUDA_CHECK_LAUNCH(fn, "scale_kernel");
}

template <class T, std::size_t R>
void from_host(device_tensor<T, R>& dst, const tensor<T, R>& src) {
    copy_to_device(src, dst);
}

template <class T, std::size_t R>
tensor<T, R> host_copy(const device_tensor<T, R>& t) {
    return to_host(t);
}

/// The host's generator: a device attack's random starts are keyed as the host's are.
template <class T, std::size_t R>
advaug::rng attack_rng(const device_tensor<T, R>&, std::uint64_t seed) {
    return advaug::rng(seed);
}

template <class T>
void attack_loss_gradient(const char* fn, const device_tensor<T, 2>& logits, const device_labels& y,
                          device_tensor<T, 2>& dlogits) {
    dlogits.resize(logits.shape());
    detail::cross_entropy_async<T>(fn, logits, y, dlogits.data(), nullptr, T(1));
}

template <class T>
void attack_per_sample_loss(const char* fn, const device_tensor<T, 2>& logits,
                            const device_labels& y, device_tensor<T, 1>& losses) {
    losses.resize({logits.shape()[0]});
    detail::cross_entropy_async<T>(fn, logits, y, nullptr, losses.data(), T(1));
}

template <class T, std::size_t R>
void keep_better_restart(device_tensor<T, R>& best, device_tensor<T, 1>& best_loss,
                         const device_tensor<T, R>& current, const device_tensor<T, 1>& loss,
                         T direction) {
    const char* fn = "cuda::keep_better_restart";
    const context& ctx = context::get(fn);
    const std::size_t n = current.shape()[0], total = current.size();
    detail::keep_better_kernel<<<detail::grid_for(total), detail::block_size, 0, ctx.stream()>>>(
        best.data(), best_loss.data(), current.data(), loss.data(), total, total / n, direction);
    ADVAUG_CUDA_CHECK_LAUNCH(fn, "keep_better_kernel");
    detail::keep_better_loss_kernel<<<detail::grid_for(n), detail::block_size, 0, ctx.stream()>>>(
        best_loss.data(), loss.data(), n, direction);
    ADVAUG_CUDA_CHECK_LAUNCH(fn, "keep_better_loss_kernel");
}

/// Reports the first non-finite gradient the step kernels recorded (waits for the device).
template <class T>
void check_gradients_finite(const char* fn, const device_domain<T>& dom) {
    unsigned long long first = 0;
    detail::download(fn, dom.first_bad_gradient.data(), &first, 1);
    if (first == detail::no_bad_index) return;
    const unsigned long long kind = first & 3ull;
    const T value = kind == 0 ? std::numeric_limits<T>::quiet_NaN()
                              : (kind == 1 ? std::numeric_limits<T>::infinity()
                                           : -std::numeric_limits<T>::infinity());
    advaug::detail::non_finite_gradient(fn, static_cast<std::size_t>(first >> 2), dom.sample_size,
                                        value);
}

template <class T, std::size_t R>
void linf_step(const char* fn, device_tensor<T, R>& x, const device_tensor<T, R>& x0,
               const device_tensor<T, R>& g, const device_domain<T>& dom, T step, T eps,
               T direction) {
    const context& ctx = context::get(fn);
    detail::linf_step_kernel<<<detail::grid_for(x.size()), detail::block_size, 0, ctx.stream()>>>(
        x.data(), x0.data(), g.data(), x.size(), dom.sample_size, dom.lo.data(), dom.hi.data(),
        dom.model_per_raw.data(), step, eps, direction,
        const_cast<unsigned long long*>(dom.first_bad_gradient.data()));
    ADVAUG_CUDA_CHECK_LAUNCH(fn, "linf_step_kernel");
}

template <class T, std::size_t R>
void l2_step(const char* fn, device_tensor<T, R>& x, const device_tensor<T, R>& x0,
             const device_tensor<T, R>& g, const device_domain<T>& dom, T step, T eps,
             T direction) {
    const context& ctx = context::get(fn);
    const auto n = static_cast<unsigned>(x.shape()[0]);
    detail::l2_step_kernel<<<n, detail::block_size, 0, ctx.stream()>>>(
        x.data(), x0.data(), g.data(), dom.sample_size, dom.lo.data(), dom.hi.data(),
        dom.raw_per_model.data(), dom.model_per_raw.data(), step, eps, direction,
        const_cast<unsigned long long*>(dom.first_bad_gradient.data()));
    ADVAUG_CUDA_CHECK_LAUNCH(fn, "l2_step_kernel");
}

/// A uniform random point of the eps-ball around x0 (L-infinity or L2), clipped to the domain.
/// Each call takes one key from gen, as the host's L-inf start does, so restarts differ.
template <class T, std::size_t R>
void random_start(device_tensor<T, R>& x, const device_tensor<T, R>& x0,
                  const device_domain<T>& dom, advaug::norm n, double eps,
                  advaug::rng& gen) {
    const char* fn = "cuda::random_start";
    const context& ctx = context::get(fn);
    const std::size_t total = x0.size(), samples = x0.shape()[0];
    x.resize(x0.shape());
    const std::uint64_t key = gen.engine()();
    if (n == advaug::norm::linf) {
        detail::linf_start_kernel<<<detail::grid_for(total), detail::block_size, 0, ctx.stream()>>>(
            x.data(), x0.data(), total, dom.sample_size, dom.lo.data(), dom.hi.data(),
            dom.model_per_raw.data(), eps, key);
        ADVAUG_CUDA_CHECK_LAUNCH(fn, "linf_start_kernel");
    } else {
        detail::l2_start_kernel<<<static_cast<unsigned>(samples), detail::block_size, 0,
                                  ctx.stream()>>>(x.data(), x0.data(), total, dom.sample_size,
                                                  dom.lo.data(), dom.hi.data(),
                                                  dom.model_per_raw.data(), eps, key);
        ADVAUG_CUDA_CHECK_LAUNCH(fn, "l2_start_kernel");
    }
}

}  // namespace advaug::cuda

namespace advaug::detail {

/// Device batches are attack tensors: labels, per-sample values and the domain live on the
/// device too.
template <class T, std::size_t N>
struct tensor_traits<cuda::device_tensor<T, N>> {
    using value_type = T;
    static constexpr std::size_t rank = N;
    using labels_type = cuda::device_labels;
    using vector_type = cuda::device_tensor<T, 1>;
    using domain_type = cuda::device_domain<T>;
    using rng_type = rng;
};

}  // namespace advaug::detail
