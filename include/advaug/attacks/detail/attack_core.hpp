// What every attack shares, and the trainer with them: the compile-time model check and the
// loss-gradient oracle. Internal: users call fgsm(), fgm(), pgd(), bim() and trainer.
//
// The attacks are written once over a tensor type X (advaug::tensor on the host,
// cuda::device_tensor on a GPU). Their element-wise work goes through the customization
// points of backend/host.hpp, called unqualified from namespace advaug::detail so that
// the host versions are found by ordinary lookup and a backend's by argument-dependent lookup.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "advaug/backend/host.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/static_checks.hpp"

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
    typename M::cache_type cache_;
    detail::model_logits_t<M> logits_, dlogits_;
    detail::model_input_t<M> grad_;
    typename detail::tensor_traits<detail::model_input_t<M>>::vector_type losses_;
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
template <class M>
struct loss_gradient {
    using T = typename M::value_type;
    using input_type = model_input_t<M>;
    using logits_type = model_logits_t<M>;
    using labels_type = labels_t<input_type>;
    using vector_type = typename tensor_traits<input_type>::vector_type;

    loss_gradient(const char* function, const M& m, attack_workspace<M>* workspace = nullptr)
        : fn(function), model(m), w(workspace != nullptr ? *workspace : own.emplace()) {}

    /// grad = dCE(model(x), y)/dx. Leaves the model untouched.
    void operator()(const input_type& x, const labels_type& y) {
        logits_gradient(x, y);
        model.input_gradient(cache, dlogits, grad);
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
        forward(x);
        attack_per_sample_loss(fn, logits, y, losses);
        return losses;
    }

    /// The model's own argument errors (an input of the wrong shape) get the attack's name.
    void forward(const input_type& x) {
        try {
            model.forward(x, cache, logits);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(concat(fn, "(): ", e.what()));
        }
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
