// The host versions of the customization points through which the attacks and the trainer
// touch tensor values, for advaug::tensor.
//
// fgsm(), fgm(), pgd() and the trainer are written once over a tensor type X. Everything they
// do to the values of a tensor (argument checks, copies, the random start, the L-infinity and
// L2 steps, the loss and its gradient, keeping the best restart) is an unqualified call to one
// of the free functions below, so that overload resolution and argument-dependent lookup pick
// the version for X: these for advaug::tensor, those of include/advaug/cuda/ (namespace
// advaug::cuda) for cuda::device_tensor. A new backend adds its tensor type, a tensor_traits
// specialization (backend/tensor_traits.hpp) and overloads of these functions in the tensor's
// namespace; the attack templates do not change.
//
// The per-element arithmetic is backend/element_math.hpp's, which the device kernels call too.
// The loops split their samples across advaug's threads (parallel/threads.hpp) and compute the
// same values for any number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <type_traits>

#include "advaug/backend/element_math.hpp"
#include "advaug/backend/tensor_traits.hpp"
#include "advaug/detail/batch_shard.hpp"
#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/parallel/threads.hpp"

namespace advaug {

/// The norm of the perturbation ball.
enum class norm { linf, l2 };

namespace detail {

/// Host batches: labels, per-sample values and the resolved domain on the host too.
template <class T, std::size_t N>
struct tensor_traits<tensor<T, N>> {
    using value_type = T;
    static constexpr std::size_t rank = N;
    using labels_type = label_vector;
    using vector_type = tensor<T, 1>;
    using domain_type = resolved_domain<T>;
    using rng_type = rng;
};

// --- host versions of the customization points ------------------------------------------------

/// Argument checks on a batch and its labels; returns the domain resolved for x.
template <class M, class T, std::size_t R>
resolved_domain<T> check_attack_inputs(const char* fn, const M& model, const tensor<T, R>& x,
                                       const label_vector& y, const input_domain& dom) {
    check_nonempty_batch(fn, "inputs", x);
    check_labels(fn, y, x.shape()[0], model.num_classes());
    check_finite(fn, "inputs", x);
    auto r = resolve<T>(fn, dom, x.shape());
    check_in_domain(fn, x, r);
    return r;
}

/// A trainer's checks on each batch: those of check_attack_inputs, with the domain in `dom`
/// resolved again only when the sample size changes, so that a batch allocates nothing.
template <class M, class T, std::size_t R>
void check_training_inputs(const char* fn, const M& model, const tensor<T, R>& x,
                           const label_vector& y, const input_domain& domain,
                           resolved_domain<T>& dom) {
    check_nonempty_batch(fn, "inputs", x);
    check_labels(fn, y, x.shape()[0], model.num_classes());
    if (dom.sample_size != x.size() / x.shape()[0]) dom = resolve<T>(fn, domain, x.shape());
    // Where every bound is finite the domain check refuses inf and NaN itself, and the pass
    // of check_finite is skipped; an unbounded domain lets inf through, so it is needed there.
    auto finite = [](T v) { return std::isfinite(v); };
    if (!std::all_of(dom.lo.begin(), dom.lo.end(), finite) ||
        !std::all_of(dom.hi.begin(), dom.hi.end(), finite)) {
        check_finite(fn, "inputs", x);
    }
    check_in_domain(fn, x, dom);
}

/// dst = src (shape and values).
template <class T, std::size_t R>
void copy_tensor(tensor<T, R>& dst, const tensor<T, R>& src) {
    dst = src;
}

/// dst gets src's shape; its values are left unspecified.
template <class T, std::size_t R>
void resize_like(tensor<T, R>& dst, const tensor<T, R>& src) {
    if (dst.shape() != src.shape()) dst.resize(src.shape());
}

/// t *= factor, in place (a trainer weights one dlogits by 1 - alpha).
template <class T, std::size_t R>
void scale_in_place(tensor<T, R>& t, T factor) {
    T* p = t.data();
    for (std::size_t i = 0, n = t.size(); i < n; ++i) p[i] *= factor;
}

/// dst holds the host batch src: a copy here; a device backend uploads (batches cross to the
/// device once each, where the trainer forms them).
template <class T, std::size_t R>
void from_host(tensor<T, R>& dst, const tensor<T, R>& src) {
    if (dst.shape() != src.shape()) dst.resize(src.shape());
    std::copy(src.data(), src.data() + src.size(), dst.data());
}

/// The values of t on the host: t itself here; a device backend downloads (and waits).
template <class T, std::size_t R>
const tensor<T, R>& host_copy(const tensor<T, R>& t) {
    return t;
}

/// A parameter's values, copied out of (read_parameter) or into (write_parameter) a model's
/// storage, for snapshots and checkpoints. For a host model the views are host memory; a
/// device model overloads both for its own type, since its views point to device memory.
template <class M, class T>
void read_parameter(const M&, const parameter_view<T>& p, std::span<T> out) {
    std::copy(p.value.begin(), p.value.end(), out.begin());
}
template <class M, class T>
void write_parameter(M&, const parameter_view<T>& p, std::span<const T> in) {
    std::copy(in.begin(), in.end(), p.value.begin());
}

/// The generator of an attack's random start for tensors of x's kind, seeded.
template <class T, std::size_t R>
rng attack_rng(const tensor<T, R>&, std::uint64_t seed) {
    return rng(seed);
}

/// dlogits = dCE(logits, y)/dlogits (mean over the batch). y was checked by check_attack_inputs.
template <class T>
void attack_loss_gradient(const char* fn, const tensor<T, 2>& logits, const label_vector& y,
                          tensor<T, 2>& dlogits) {
    cross_entropy_kernel<T>(fn, logits, y, nullptr, &dlogits, T(1), nullptr);
}

/// losses = the cross-entropy of every sample.
template <class T>
void attack_per_sample_loss(const char* fn, const tensor<T, 2>& logits, const label_vector& y,
                            tensor<T, 1>& losses) {
    cross_entropy_kernel<T>(fn, logits, y, nullptr, nullptr, T(1), &losses);
}

/// For every sample whose loss beats best_loss (higher for direction > 0, lower otherwise),
/// copies its loss and its example into best.
template <class T, std::size_t R>
void keep_better_restart(tensor<T, R>& best, tensor<T, 1>& best_loss, const tensor<T, R>& current,
                         const tensor<T, 1>& loss, T direction) {
    const std::size_t n = current.shape()[0], d_size = n ? current.size() / n : 0;
    for (std::size_t s = 0; s < n; ++s) {
        const bool better = direction > 0 ? loss(s) > best_loss(s) : loss(s) < best_loss(s);
        if (!better) continue;
        best_loss(s) = loss(s);
        std::copy_n(current.data() + s * d_size, d_size, best.data() + s * d_size);
    }
}

/// A non-finite input gradient means the model produced NaN/inf; attacks refuse to go on
/// rather than write NaN into the adversarial example (documented in docs/attacks.md).
template <class T>
[[noreturn]] void non_finite_gradient(const char* fn, std::size_t flat, std::size_t sample_size,
                                      T value) {
    throw numeric_error(concat(fn, "(): the input gradient is ", value, " at sample ",
                               flat / sample_size, ", element ", flat % sample_size,
                               "; the model's forward or input_gradient produced a non-finite "
                               "value"));
}

/// Called when an attack has taken its last step. The host steps throw at the first
/// non-finite gradient, so there is nothing left to report; a device backend reports here
/// what its kernels recorded, without a synchronization per step.
template <class T>
void check_gradients_finite(const char*, const resolved_domain<T>&) {}

/// Throws non_finite_gradient for the first non-finite entry of g in samples [first, last).
/// requires: there is one.
template <class T>
[[noreturn]] void throw_first_non_finite(const char* fn, const T* g, std::size_t first,
                                         std::size_t last, std::size_t d_size) {
    for (std::size_t i = first * d_size; i < last * d_size; ++i) {
        if (!std::isfinite(g[i])) non_finite_gradient(fn, i, d_size, g[i]);
    }
    throw std::logic_error("advaug: throw_first_non_finite found no non-finite value");
}

/// One L-infinity step in model units, fused: x = clip_domain(clip_ball(x + step*sign(g))).
/// `direction` is +1 to raise the loss, -1 to lower it (targeted). The samples are split across
/// advaug's threads. A non-finite gradient throws (with the first one's position) after the
/// step: x is the attack's own iterate, which the exception discards.
template <class T, std::size_t R>
void linf_step(const char* fn, tensor<T, R>& x, const tensor<T, R>& x0, const tensor<T, R>& g,
               const resolved_domain<T>& dom, T step, T eps, T direction) {
    const std::size_t d_size = dom.sample_size, n = x.shape()[0];
    const T* gp = g.data();
    parallel_for(n, rows_per_chunk(d_size), [&](std::size_t first, std::size_t last, std::size_t) {
        const T* scale = dom.model_per_raw.data();
        const T* lo = dom.lo.data();
        const T* hi = dom.hi.data();
        // Copies, not the captured references, so that the loop need not reload them after
        // each store to x.
        const T st = step, ep = eps, dir = direction;
        // Checked in the same vectorized pass, searched only on failure: g - g is 0 for a
        // finite g and NaN otherwise (GCC 12 vectorizes neither std::isfinite nor a bool &=).
        unsigned bad = 0;
        for (std::size_t s = first; s < last; ++s) {
            T* xs = x.data() + s * d_size;
            const T* x0s = x0.data() + s * d_size;
            const T* gs = gp + s * d_size;
            for (std::size_t d = 0; d < d_size; ++d) {
                const T z = gs[d] - gs[d];
                bad |= static_cast<unsigned>(z != z);
                xs[d] = backend::element::linf_step(xs[d], x0s[d], gs[d], lo[d], hi[d], scale[d],
                                                    st, ep, dir);
            }
        }
        if (bad != 0) throw_first_non_finite(fn, gp, first, last, d_size);
    });
}

/// One L2 step: the gradient is taken in raw units, normalized per sample, and the
/// perturbation is projected onto the raw-unit L2 ball of radius eps, then into the domain.
template <class T, std::size_t R>
void l2_step(const char* fn, tensor<T, R>& x, const tensor<T, R>& x0, const tensor<T, R>& g,
             const resolved_domain<T>& dom, T step, T eps, T direction) {
    namespace el = backend::element;
    const std::size_t d_size = dom.sample_size, n = x.shape()[0];
    for (std::size_t s = 0; s < n; ++s) {
        T* xs = x.data() + s * d_size;
        const T* x0s = x0.data() + s * d_size;
        const T* gs = g.data() + s * d_size;
        const T* mpr = dom.model_per_raw.data();
        const T* rpm = dom.raw_per_model.data();
        double gnorm2 = 0;
        for (std::size_t d = 0; d < d_size; ++d) {
            if (!std::isfinite(gs[d])) non_finite_gradient(fn, s * d_size + d, d_size, gs[d]);
            const double graw = el::raw_gradient(gs[d], mpr[d]);
            gnorm2 += graw * graw;
        }
        const double gscale = el::l2_gradient_scale(gnorm2, step, direction);
        double dnorm2 = 0;
        for (std::size_t d = 0; d < d_size; ++d) {
            const double delta = el::l2_delta_raw(xs[d], x0s[d], gs[d], rpm[d], mpr[d], gscale);
            dnorm2 += delta * delta;
        }
        const double shrink = el::l2_shrink(dnorm2, eps);
        for (std::size_t d = 0; d < d_size; ++d) {
            const double delta = el::l2_delta_raw(xs[d], x0s[d], gs[d], rpm[d], mpr[d], gscale);
            xs[d] = el::l2_step(x0s[d], delta, shrink, mpr[d], dom.lo[d], dom.hi[d]);
        }
    }
}

/// A uniform random point of the epsilon-ball around x0, clipped into the domain. The L-inf
/// start takes one number from gen as the key of a counter-based stream (counter_uniform) and
/// fills the samples in parallel; the L2 start draws from gen in order. Samples are counted from
/// the data-parallel shard's offset (detail/batch_shard.hpp; 0 on one process), so each sample
/// gets the draw it gets in the whole batch.
template <class T, std::size_t R>
void random_start(tensor<T, R>& x, const tensor<T, R>& x0, const resolved_domain<T>& dom,
                  advaug::norm n, double eps, rng& gen) {
    const std::size_t d_size = dom.sample_size, samples = x.shape()[0], offset = shard_offset();
    if (n == advaug::norm::linf) {
        const std::uint64_t key = gen.engine()();
        parallel_for(samples, rows_per_chunk(d_size), [&](std::size_t first, std::size_t last,
                                                          std::size_t) {
            const T* scale = dom.model_per_raw.data();
            const T* lo = dom.lo.data();
            const T* hi = dom.hi.data();
            const double e = eps;
            // Two loops per block of a row: the draws (64-bit integer arithmetic, scalar with
            // SSE2), then the start and the clip, which vectorize. In one loop the clip was a
            // branch, mispredicted wherever it is data-dependent (black pixels).
            constexpr std::size_t block = 256;
            double u[block];
            for (std::size_t s = first; s < last; ++s) {
                T* xs = x.data() + s * d_size;
                const T* x0s = x0.data() + s * d_size;
                const std::size_t at = (offset + s) * d_size;
                for (std::size_t d0 = 0; d0 < d_size; d0 += block) {
                    const std::size_t m = std::min(block, d_size - d0);
                    for (std::size_t j = 0; j < m; ++j) u[j] = counter_uniform(key, at + d0 + j, 0.0, 1.0);
                    for (std::size_t j = 0; j < m; ++j) {
                        const std::size_t d = d0 + j;
                        xs[d] = backend::element::linf_start(x0s[d], u[j], e, scale[d], lo[d], hi[d]);
                    }
                }
            }
        });
        return;
    }
    // The draws of the samples before the shard, in the order one process makes them.
    for (std::size_t s = 0; s < offset; ++s) {
        for (std::size_t d = 0; d < d_size; ++d) gen.normal();
        gen.uniform();
    }
    for (std::size_t s = 0; s < samples; ++s) {
        T* xs = x.data() + s * d_size;
        const T* x0s = x0.data() + s * d_size;
        {
            // Uniform in the L2 ball: a Gaussian direction and radius eps * U^(1/d).
            double norm2 = 0;
            for (std::size_t d = 0; d < d_size; ++d) {
                const double g = gen.normal();
                xs[d] = static_cast<T>(g);
                norm2 += g * g;
            }
            const double radius = eps * std::pow(gen.uniform(), 1.0 / static_cast<double>(d_size));
            const double scale = norm2 > 0 ? radius / std::sqrt(norm2) : 0.0;
            for (std::size_t d = 0; d < d_size; ++d) {
                xs[d] = backend::element::l2_start(x0s[d], static_cast<double>(xs[d]), scale,
                                                   dom.model_per_raw[d], dom.lo[d], dom.hi[d]);
            }
        }
    }
}

}  // namespace detail
}  // namespace advaug
