// What every attack shares, and the trainer with them: the compile-time model check and the
// loss-gradient oracle. Internal: users call fgsm(), fgm(), pgd(), bim() and trainer.
//
// The attacks are written once over a tensor type X (advaug::tensor on the host,
// cuda::device_tensor on a GPU). Their element-wise work goes through the customization
// points of backend/host.hpp, called unqualified from namespace advaug::detail so that
// the host versions are found by ordinary lookup and a backend's by argument-dependent lookup.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/backend/host.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/static_checks.hpp"
#include "advaug/parallel/threads.hpp"

namespace advaug {

template <class M>
class attack_workspace;

namespace detail {
template <class M>
struct loss_gradient;
}  // namespace detail

/// The buffers an attack reuses from call to call: the model's cache, the logits and their
/// gradient, the input gradient and the per-sample losses. Pass one workspace to repeated calls
/// of fgsm(), fgm(), pgd() or bim(), as evaluate_robustness does for its batches: after the
/// first call with a given batch shape, the attack allocates nothing but the tensor it returns.
/// Without one, every call builds these buffers and frees them again; for the bundled CNN at
/// batch 128 that is about 100 MB whose fresh pages the kernel must clear, about a third of an
/// FGSM attack's time.
///   requires: one workspace per thread (every call writes it); any model of type M may use it.
template <class M>
class attack_workspace {
public:
    attack_workspace() = default;

    /// The model's cache that the attacks use, for the caller's own forward passes between
    /// attacks (classifying the adversarial batch), so that one thread keeps one cache.
    typename M::cache_type& model_cache() { return cache_; }

private:
    friend struct detail::loss_gradient<M>;
    /// A thread's buffers for passes of a batch split by the model's rows_per_pass().
    struct pass_part {
        typename M::cache_type cache;
        detail::model_input_t<M> x, grad;
        detail::model_logits_t<M> logits, dlogits;
        detail::labels_t<detail::model_input_t<M>> labels;
    };
    typename M::cache_type cache_;
    detail::model_logits_t<M> logits_, dlogits_;
    detail::model_input_t<M> grad_;
    typename detail::tensor_traits<detail::model_input_t<M>>::vector_type losses_;
    std::vector<std::unique_ptr<pass_part>> parts_;  // one per thread slot; stable addresses
};

}  // namespace advaug

namespace advaug::detail {

/// Compile-time: M is a classifier whose input type is X. One error otherwise.
template <class M, class X>
consteval bool check_attack_model() {
    using T = typename tensor_traits<X>::value_type;
    constexpr std::size_t R = tensor_traits<X>::rank;
    if constexpr (!check_classifier<M>()) {
        return false;
    } else if constexpr (declares_tensor_types<M>) {
        static_assert(std::is_same_v<model_input_t<M>, X>,
                      "advaug: the inputs' type differs from the model's input_type (a host "
                      "tensor for a device model, or the other way round?)");
        return std::is_same_v<model_input_t<M>, X>;
    } else {
        static_assert(std::is_same_v<typename M::value_type, T>,
                      "advaug: the inputs' value type differs from the model's value_type");
        static_assert(M::input_rank == R,
                      "advaug: the inputs' rank differs from the model's input_rank");
        return std::is_same_v<typename M::value_type, T> && M::input_rank == R;
    }
}

inline const char* mode_name(mode m) { return m == mode::eval ? "eval" : "train"; }

/// A const model is attacked as it is, so it must already be in the attack's mode, unless its
/// forward() is the same in both: a model in train mode would otherwise be attacked with batch
/// statistics and dropout, silently.
template <class M>
void check_attack_mode(const char* fn, const M& model, mode wanted) {
    const mode actual = model.mode();
    if (actual != wanted && !mode_independent(model)) {
        invalid(fn, "the model is in ", mode_name(actual), " mode, but the options attack it in ",
                mode_name(wanted), " mode (attack_mode()); pass the model as non-const so that "
                "the attack switches it for the call, switch it first (advaug::mode_guard), or "
                "set .attack_mode(advaug::mode::", mode_name(actual), ") on the options");
    }
}

/// Runs `attack` with a non-const model switched to `wanted` for the call (restored after,
/// also on an exception); a model already in that mode, or the same in both, is only read.
template <class M, class Attack>
decltype(auto) in_attack_mode(M& model, mode wanted, Attack&& attack) {
    if (model.mode() == wanted || mode_independent(std::as_const(model))) {
        return attack(std::as_const(model));
    }
    const mode_guard<M> guard(model, wanted);
    return attack(std::as_const(model));
}

/// The gradient of the attack's loss with respect to the input, through the model contract.
/// Its buffers are the caller's workspace, or its own when given none; either way repeated
/// calls (PGD steps) allocate nothing after the first.
///
/// Passes. A host model that declares rows_per_pass() (model/classifier.hpp) has its gradients
/// (operator(), gradient()) and its logits-only passes (predict(), per_sample_loss()) taken in
/// passes of at most that many rows when the batch is larger and the model is in eval mode or
/// the same in both. Each of advaug's threads runs whole passes, forward and backward, on its
/// own buffers, reused pass after pass: a pass's layer outputs are written, read and written
/// again while they are still in the CPU's caches, and its layers need no synchronization
/// between threads. (The bundled CNN's APGD on 1,000 images: 13.0 s in one pass, 8.5 s in
/// passes of 11 rows; docs/benchmarks.md.) Each sample's logits and gradient are its own
/// row's, as in one pass, up to rounding. forward() keeps one pass over the batch, because a
/// caller may take several backward passes from its record (FAB); the trainer asks for one
/// pass everywhere (`one_pass`), because it reads the cache of the forward pass itself.
template <class M>
struct loss_gradient {
    using T = typename M::value_type;
    using input_type = model_input_t<M>;
    using logits_type = model_logits_t<M>;
    using labels_type = labels_t<input_type>;
    using vector_type = typename tensor_traits<input_type>::vector_type;
    static constexpr bool can_split =
        contract::has_rows_per_pass<M> && std::is_same_v<input_type, tensor<T, tensor_traits<input_type>::rank>>;

    loss_gradient(const char* function, const M& m, attack_workspace<M>* workspace = nullptr,
                  bool one_pass = false)
        : fn(function), model(m), w(workspace != nullptr ? *workspace : own.emplace()),
          split_allowed(!one_pass) {}

    /// grad = dCE(model(x), y)/dx. Leaves the model untouched.
    void operator()(const input_type& x, const labels_type& y) {
        if constexpr (can_split) {
            const std::size_t n = x.shape()[0];
            // (labels of another length: the one pass below refuses them by name)
            if (rows_per_pass(n) != 0 && y.size() == n) {
                // a row's CE gradient is its own, scaled by 1 / n: each pass's rows through
                // the kernel, rescaled from 1 / count to 1 / n
                gradient_in_passes(x, [&](std::size_t first, std::size_t count, auto& part) {
                    const std::size_t rows = part.logits.shape()[0];  // count, then padding
                    if (part.labels.size() != rows) part.labels.resize({rows});
                    std::copy_n(y.data() + first, count, part.labels.data());
                    std::fill(part.labels.data() + count, part.labels.data() + rows, y(first + count - 1));
                    attack_loss_gradient(fn, part.logits, part.labels, part.dlogits);
                    const T rescale = static_cast<T>(static_cast<double>(rows) / static_cast<double>(n));
                    const std::size_t c = part.dlogits.shape()[1];
                    for (std::size_t i = 0; i < rows * c; ++i) {
                        part.dlogits.data()[i] = i < count * c ? part.dlogits.data()[i] * rescale : T(0);
                    }
                    put_rows(part.dlogits, first, count, dlogits);
                }, grad);
                return;
            }
        }
        logits_gradient(x, y);
        backward(dlogits, grad);
    }

    /// dx = J(x)^T dlogits, where `fill_rows(first, count)` writes the rows [first, first +
    /// count) of dlogits from the same rows of logits; in passes it is called for each pass's
    /// rows, from any of advaug's threads, concurrently for disjoint rows.
    template <class Fill>
    void gradient(const input_type& x, Fill&& fill_rows, input_type& dx) {
        if constexpr (can_split) {
            if (rows_per_pass(x.shape()[0]) != 0) {
                gradient_in_passes(x, [&](std::size_t first, std::size_t count, auto& part) {
                    fill_rows(first, count);
                    load_rows(dlogits, first, count, part.logits.shape()[0], part.dlogits, pad::zeros);
                }, dx);
                return;
            }
        }
        forward(x);
        const std::size_t n = x.shape()[0], c = logits.shape()[1];
        dlogits.resize({n, c});
        fill_rows(std::size_t(0), n);
        backward(dlogits, dx);
    }

    /// The first half of operator(): logits = model(x), dlogits = dCE/dlogits, and the cache
    /// ready for a backward pass, for a caller that takes that pass itself (the trainer fuses
    /// it with its parameter gradient where the model can).
    void logits_gradient(const input_type& x, const labels_type& y) {
        forward(x);
        attack_loss_gradient(fn, logits, y, dlogits);
    }

    /// Per-sample loss at x (for keeping the worst restart).
    const vector_type& per_sample_loss(const input_type& x, const labels_type& y) {
        predict(x);
        attack_per_sample_loss(fn, logits, y, losses);
        return losses;
    }

    /// logits = model(x), in one pass, with the cache ready for backward(). The model's own
    /// argument errors (an input of the wrong shape) get the attack's name.
    void forward(const input_type& x) {
        recorded = true;
        try {
            model.forward(x, cache, logits);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(concat(fn, "(): ", e.what()));
        }
    }

    /// logits = model(x) for a caller that takes no backward pass after it: in passes where
    /// the model has them (backward() then refuses), otherwise forward(x).
    void predict(const input_type& x) {
        if constexpr (can_split) {
            const std::size_t n = x.shape()[0], rows = rows_per_pass(n);
            if (rows != 0) {
                recorded = false;
                logits.resize({n, static_cast<std::size_t>(model.num_classes())});
                grow_parts();
                parallel_for((n + rows - 1) / rows, 1, [&](std::size_t begin, std::size_t end, std::size_t slot) {
                    for (std::size_t p = begin; p < end; ++p) {
                        forward_part(x, *w.parts_[slot], p * rows, std::min(rows, n - p * rows), rows, true);
                    }
                });
                return;
            }
        }
        forward(x);
    }

    /// Whether `cache` holds the last pass (forward(), or predict() and gradient() in one
    /// pass), so that backward() may follow.
    bool has_record() const { return recorded; }

    /// dx = J(x)^T dl at the x of the last forward().
    void backward(const logits_type& dl, input_type& dx) {
        if (!recorded) {
            invalid(fn, "backward() needs the record of forward(); the passes of predict() and "
                        "gradient() keep none");
        }
        model.input_gradient(cache, dl, dx);
    }

    const char* fn;
    const M& model;
    std::optional<attack_workspace<M>> own;  // used when the caller gave no workspace
    attack_workspace<M>& w;
    typename M::cache_type& cache = w.cache_;
    logits_type& logits = w.logits_;
    logits_type& dlogits = w.dlogits_;
    input_type& grad = w.grad_;
    vector_type& losses = w.losses_;

private:
    bool split_allowed;
    bool recorded = false;  // `cache` holds the last forward pass of the whole batch

    /// Rows per pass for a batch of n, spread evenly over the fewest passes (1,000 rows at most
    /// 11 a pass: 91 passes of 11, the last with 10 rows and one of padding); 0 for one pass.
    std::size_t rows_per_pass(std::size_t n) const {
        if constexpr (can_split) {
            if (!split_allowed || (model.mode() != mode::eval && !mode_independent(model))) return 0;
            const std::size_t most = static_cast<std::size_t>(model.rows_per_pass());
            if (most == 0 || n <= most) return 0;
            const std::size_t count = (n + most - 1) / most;
            return (n + count - 1) / count;
        } else {
            return 0;
        }
    }

    /// gradient() in passes: `fill(first, count, part)` sets part.dlogits from part.logits
    /// (and the rows of dlogits, which the caller reads).
    template <class Fill>
    void gradient_in_passes(const input_type& x, Fill&& fill, input_type& dx) {
        const std::size_t n = x.shape()[0], rows = rows_per_pass(n), c = model.num_classes();
        recorded = false;
        logits.resize({n, c});
        dlogits.resize({n, c});
        resize_rows(x, n, dx);
        grow_parts();
        parallel_for((n + rows - 1) / rows, 1, [&](std::size_t begin, std::size_t end, std::size_t slot) {
            auto& part = *w.parts_[slot];
            for (std::size_t p = begin; p < end; ++p) {
                const std::size_t first = p * rows, count = std::min(rows, n - first);
                forward_part(x, part, first, count, rows);
                fill(first, count, part);  // part.dlogits: count rows, then zeros
                model.input_gradient(part.cache, part.dlogits, part.grad);
                put_rows(part.grad, first, count, dx);
            }
        });
    }

    /// One part per thread slot.
    void grow_parts() {
        while (w.parts_.size() < parallel_slots()) {
            w.parts_.push_back(std::make_unique<typename attack_workspace<M>::pass_part>());
        }
    }

    /// The forward pass of rows [first, first + count) on `part`, its logits into logits. Every
    /// pass has `rows` rows (the last one's padded with copies of its last row), so that the
    /// part's buffers and the model's cache keep one shape and are never reallocated. With
    /// `logits_only`, the model's infer() where it has one: no backward pass follows.
    template <class Part>
    void forward_part(const input_type& x, Part& part, std::size_t first, std::size_t count,
                      std::size_t rows, bool logits_only = false) {
        load_rows(x, first, count, rows, part.x, pad::last_row);
        try {
            if constexpr (contract::has_infer<M>) {
                if (logits_only) {
                    model.infer(part.x, part.cache, part.logits);
                } else {
                    model.forward(part.x, part.cache, part.logits);
                }
            } else {
                model.forward(part.x, part.cache, part.logits);
            }
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(concat(fn, "(): ", e.what(), " (rows ", first, " to ",
                                               first + count - 1, " of a batch of shape ",
                                               shape_string(x.shape()), ")"));
        }
        put_rows(part.logits, first, count, logits);
    }

    enum class pad { last_row, zeros };
    /// `to` = rows [first, first + count) of `from`, then rows - count rows of padding.
    template <class Tensor>
    static void load_rows(const Tensor& from, std::size_t first, std::size_t count,
                          std::size_t rows, Tensor& to, pad padding) {
        const std::size_t row = from.size() / from.shape()[0];
        resize_rows(from, rows, to);
        std::copy_n(from.data() + first * row, count * row, to.data());
        for (std::size_t r = count; r < rows; ++r) {
            if (padding == pad::zeros) {
                std::fill_n(to.data() + r * row, row, typename Tensor::value_type(0));
            } else {
                std::copy_n(from.data() + (first + count - 1) * row, row, to.data() + r * row);
            }
        }
    }
    /// Rows [first, first + count) of `to` = the first count rows of `from`.
    template <class Tensor>
    static void put_rows(const Tensor& from, std::size_t first, std::size_t count, Tensor& to) {
        const std::size_t row = from.size() / from.shape()[0];
        std::copy_n(from.data(), count * row, to.data() + first * row);
    }
    /// `to` resized to the shape of `like` with n rows.
    template <class Tensor>
    static void resize_rows(const Tensor& like, std::size_t n, Tensor& to) {
        const auto& s = like.shape();
        std::array<std::size_t, Tensor::rank> shape;
        std::copy(s.begin(), s.end(), shape.begin());
        shape[0] = n;
        if (to.shape() != shape) to.resize(shape);
    }
};

/// One signed-gradient step from x: FGSM (linf) and FGM (l2) differ only in the step.
template <class M, class X>
X single_step_attack(const char* fn, const M& model, const X& x, const labels_t<X>& y,
                     double eps, bool targeted, const input_domain& domain, norm n,
                     attack_workspace<M>* workspace) {
    using T = typename tensor_traits<X>::value_type;
    const auto dom = check_attack_inputs(fn, model, x, y, domain);
    loss_gradient<M> oracle(fn, model, workspace);
    oracle(x, y);
    X out;
    copy_tensor(out, x);
    const T e = static_cast<T>(eps), direction = targeted ? T(-1) : T(1);
    if (n == norm::linf) {
        linf_step(fn, out, x, oracle.grad, dom, e, e, direction);
    } else {
        l2_step(fn, out, x, oracle.grad, dom, e, e, direction);
    }
    check_gradients_finite(fn, dom);
    return out;
}

}  // namespace advaug::detail
