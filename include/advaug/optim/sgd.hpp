// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, with
// exactly the update of torch.optim.SGD (dampening 0):
//
//   g   = grad + weight_decay * w
//   buf = g                        on the first step
//   buf = momentum * buf + g       afterwards
//   g   = g + momentum * buf       (nesterov)   or   g = buf   (momentum > 0)
//   w  -= lr * g
//
// The learning rate is an argument of step(), not an option, so that a schedule
// (training/schedule.hpp) drives it from outside.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/backend/element_math.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/io/binary.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/optim/detail/state.hpp"
#include "advaug/optim/optimizer.hpp"
#include "advaug/parallel/threads.hpp"

namespace advaug {

/// Options of sgd. Setters validate at once and throw std::invalid_argument naming the
/// option and the value. Defaults: momentum 0, no Nesterov, no weight decay.
class sgd_options {
public:
    /// Momentum factor. requires: 0 <= m < 1.
    sgd_options& momentum(double m) {
        if (!(m >= 0 && m < 1)) {
            detail::invalid("sgd_options::momentum", "momentum must be in [0, 1), got ", m);
        }
        momentum_ = m;
        return *this;
    }
    /// Nesterov momentum. requires (checked when the optimizer is built): momentum > 0.
    sgd_options& nesterov(bool n) {
        nesterov_ = n;
        return *this;
    }
    /// L2 penalty, added to the gradient as weight_decay * w. requires: finite, >= 0.
    sgd_options& weight_decay(double wd) {
        if (!std::isfinite(wd) || wd < 0) {
            detail::invalid("sgd_options::weight_decay",
                            "weight_decay must be finite and >= 0, got ", wd);
        }
        weight_decay_ = wd;
        return *this;
    }

    double momentum() const { return momentum_; }
    bool nesterov() const { return nesterov_; }
    double weight_decay() const { return weight_decay_; }

    friend bool operator==(const sgd_options&, const sgd_options&) = default;

    /// The checks across options, made by each optimizer that takes them (`fn` names it).
    void validate(const char* fn) const {
        if (nesterov_ && momentum_ == 0) {
            detail::invalid(fn, "nesterov requires momentum > 0, got momentum 0");
        }
    }

private:
    double momentum_ = 0;
    bool nesterov_ = false;
    double weight_decay_ = 0;
};

/// SGD over a model's parameter views, T = float or double.
///   State: one momentum buffer per parameter (none when momentum is 0), allocated on the
///   first step and keyed by the position of each parameter in the vector given to step().
///   Every later step() must pass the same number of parameters with the same sizes; it
///   then allocates nothing.
template <class T>
class sgd {
    static_assert(std::is_floating_point_v<T>, "advaug::sgd<T>: T must be float or double");

public:
    using value_type = T;

    /// requires: !options.nesterov() || options.momentum() > 0.
    explicit sgd(sgd_options options = {}) : options_(options) { options_.validate("sgd"); }

    /// One update of every parameter from its gradient (gradients are read, not cleared).
    ///   requires: lr finite and >= 0; each parameter's value and grad of equal size; after
    ///   the first step, the same parameter count and sizes as at the first step.
    ///   ensures: on an error nothing was changed.
    void step(std::vector<parameter_view<T>>& params, double lr);

    /// Appends the tag "sgd", the options, the step count and the momentum buffers.
    void save_state(io::binary_writer& out) const;

    /// Restores a state written by save_state() for a model with the parameters `params`.
    ///   A malformed or truncated state, or another optimizer's, is an io_error; a state for
    ///   a different parameter count or sizes, of the other value type, or saved with
    ///   different options is std::invalid_argument naming the mismatch.
    ///   ensures: on an error this optimizer is unchanged.
    void load_state(io::binary_reader& in, const std::vector<parameter_view<T>>& params);

    const sgd_options& options() const { return options_; }
    /// Steps taken (restored by load_state).
    std::uint64_t step_count() const { return steps_; }

private:
    bool has_buffers() const { return options_.momentum() != 0; }

    sgd_options options_;
    std::uint64_t steps_ = 0;
    detail::optimizer_layout layout_;
    std::vector<T> momentum_;  // flat: parameter i owns [layout_.offset(i), + layout_.size(i))
};

// --- implementation -----------------------------------------------------------------------

namespace detail {

/// The update of one parameter for one configuration: backend::element::sgd (the device's
/// too) with the flags as constants. The arrays never overlap; __restrict lets the compiler
/// vectorize without run-time checks.
template <class T, bool Decay, bool Momentum, bool Nesterov, bool First>
void sgd_update(T* __restrict w, const T* __restrict grad, T* __restrict buf, std::size_t n, T wd,
                T mu, T neg_lr) {
    for (std::size_t i = 0; i < n; ++i) {
        const T b = Momentum && !First ? buf[i] : T(0);
        const auto r = backend::element::sgd(w[i], grad[i], b, wd, mu, neg_lr, Decay, Momentum,
                                             Nesterov, First);
        w[i] = r.weight;
        if constexpr (Momentum) buf[i] = r.buffer;
    }
}

/// One branch-free loop per configuration, so that each one vectorizes.
template <class T, bool Decay>
void sgd_dispatch(bool momentum, bool nesterov, bool first, T* w, const T* grad, T* buf,
                  std::size_t n, T wd, T mu, T neg_lr) {
    if (!momentum) {
        sgd_update<T, Decay, false, false, false>(w, grad, buf, n, wd, mu, neg_lr);
    } else if (nesterov) {
        first ? sgd_update<T, Decay, true, true, true>(w, grad, buf, n, wd, mu, neg_lr)
              : sgd_update<T, Decay, true, true, false>(w, grad, buf, n, wd, mu, neg_lr);
    } else {
        first ? sgd_update<T, Decay, true, false, true>(w, grad, buf, n, wd, mu, neg_lr)
              : sgd_update<T, Decay, true, false, false>(w, grad, buf, n, wd, mu, neg_lr);
    }
}

}  // namespace detail

template <class T>
void sgd<T>::step(std::vector<parameter_view<T>>& params, double lr) {
    detail::check_lr("sgd::step", lr);
    const bool first = steps_ == 0;
    if (first) {
        auto layout = detail::optimizer_layout::of("sgd::step", params);
        if (has_buffers()) momentum_.assign(layout.total(), T(0));
        layout_ = std::move(layout);
    } else {
        layout_.check("sgd::step", params);
    }

    // Scalars are applied in T, as PyTorch applies Python scalars to a tensor of dtype T.
    const T wd = static_cast<T>(options_.weight_decay());
    const T mu = static_cast<T>(options_.momentum());
    const T neg_lr = static_cast<T>(-lr);
    const bool decay = options_.weight_decay() != 0;
    const bool nesterov = options_.nesterov();
    for (std::size_t p = 0; p < params.size(); ++p) {
        T* w = params[p].value.data();
        const T* grad = params[p].grad.data();
        T* buf = has_buffers() ? momentum_.data() + layout_.offset(p) : nullptr;
        // Element-wise, so the elements are split across advaug's threads.
        detail::parallel_for(
            params[p].value.size(), detail::elementwise_grain,
            [&](std::size_t begin, std::size_t end, std::size_t) {
                T* b = buf == nullptr ? nullptr : buf + begin;
                const std::size_t n = end - begin;
                if (decay) {
                    detail::sgd_dispatch<T, true>(b != nullptr, nesterov, first, w + begin,
                                                  grad + begin, b, n, wd, mu, neg_lr);
                } else {
                    detail::sgd_dispatch<T, false>(b != nullptr, nesterov, first, w + begin,
                                                   grad + begin, b, n, wd, mu, neg_lr);
                }
            });
    }
    ++steps_;
}

template <class T>
void sgd<T>::save_state(io::binary_writer& out) const {
    detail::write_state_header<T>(out, "sgd");
    out.write<double>(options_.momentum());
    out.write<std::uint8_t>(options_.nesterov() ? 1 : 0);
    out.write<double>(options_.weight_decay());
    out.write<std::uint64_t>(steps_);
    layout_.write(out);
    if (has_buffers() && steps_ > 0) {
        for (std::size_t i = 0; i < layout_.count(); ++i) {
            out.write_array(momentum_.data() + layout_.offset(i), layout_.size(i));
        }
    }
}

template <class T>
void sgd<T>::load_state(io::binary_reader& in, const std::vector<parameter_view<T>>& params) {
    constexpr const char* fn = "sgd::load_state";
    detail::read_state_header<T>(in, fn, "sgd");
    detail::check_saved_option(fn, "momentum", in.read<double>("sgd momentum"),
                               options_.momentum());
    detail::check_saved_option(fn, "nesterov", in.read<std::uint8_t>("sgd nesterov") != 0,
                               options_.nesterov());
    detail::check_saved_option(fn, "weight_decay", in.read<double>("sgd weight_decay"),
                               options_.weight_decay());
    const auto steps = in.read<std::uint64_t>("step count");
    auto layout = detail::optimizer_layout::read(in, fn, params, steps);
    std::vector<T> momentum;
    if (has_buffers() && steps > 0) {
        momentum.resize(layout.total());
        for (std::size_t i = 0; i < layout.count(); ++i) {
            in.read_array_into("momentum buffer", momentum.data() + layout.offset(i),
                               layout.size(i));
        }
    }
    // Everything was read and checked: commit.
    steps_ = steps;
    layout_ = std::move(layout);
    momentum_ = std::move(momentum);
}

static_assert(optimizer<sgd<float>, float> && optimizer<sgd<double>, double>);

}  // namespace advaug
