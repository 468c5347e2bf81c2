// Adam (Kingma and Ba 2015) and AdamW (Loshchilov and Hutter 2019), with exactly the update
// of torch.optim.Adam / torch.optim.AdamW (no amsgrad), t counting from 1:
//
//   w  *= 1 - lr * weight_decay     (decoupled, AdamW)
//   g   = grad + weight_decay * w   (not decoupled, Adam with L2)
//   m   = beta1 * m + (1 - beta1) * g
//   v   = beta2 * v + (1 - beta2) * g * g
//   w  -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/io/binary.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/optim/detail/state.hpp"
#include "advaug/optim/optimizer.hpp"

namespace advaug {

/// Options of adam. Setters validate at once and throw std::invalid_argument naming the
/// option and the value. Defaults are PyTorch's: beta1 0.9, beta2 0.999, eps 1e-8, no
/// weight decay, coupled (L2) decay.
class adam_options {
public:
    /// Decay of the first-moment average. requires: 0 <= b < 1.
    adam_options& beta1(double b) {
        if (!(b >= 0 && b < 1)) {
            detail::invalid("adam_options::beta1", "beta1 must be in [0, 1), got ", b);
        }
        beta1_ = b;
        return *this;
    }
    /// Decay of the second-moment average. requires: 0 <= b < 1.
    adam_options& beta2(double b) {
        if (!(b >= 0 && b < 1)) {
            detail::invalid("adam_options::beta2", "beta2 must be in [0, 1), got ", b);
        }
        beta2_ = b;
        return *this;
    }
    /// Added to the denominator. requires: finite, > 0.
    adam_options& eps(double e) {
        if (!std::isfinite(e) || e <= 0) {
            detail::invalid("adam_options::eps", "eps must be finite and > 0, got ", e);
        }
        eps_ = e;
        return *this;
    }
    /// requires: finite, >= 0.
    adam_options& weight_decay(double wd) {
        if (!std::isfinite(wd) || wd < 0) {
            detail::invalid("adam_options::weight_decay",
                            "weight_decay must be finite and >= 0, got ", wd);
        }
        weight_decay_ = wd;
        return *this;
    }
    /// false: L2 decay added to the gradient (torch.optim.Adam); true: decoupled decay
    /// w *= 1 - lr * weight_decay before the update (torch.optim.AdamW).
    adam_options& decoupled(bool d) {
        decoupled_ = d;
        return *this;
    }

    double beta1() const { return beta1_; }
    double beta2() const { return beta2_; }
    double eps() const { return eps_; }
    double weight_decay() const { return weight_decay_; }
    bool decoupled() const { return decoupled_; }

    friend bool operator==(const adam_options&, const adam_options&) = default;

private:
    double beta1_ = 0.9;
    double beta2_ = 0.999;
    double eps_ = 1e-8;
    double weight_decay_ = 0;
    bool decoupled_ = false;
};

/// AdamW options: decoupled weight decay, PyTorch's default 0.01.
inline adam_options adamw_options(double weight_decay = 0.01) {
    return adam_options{}.weight_decay(weight_decay).decoupled(true);
}

/// Adam over a model's parameter views, T = float or double.
///   State: moments m and v per parameter, allocated on the first step and keyed by the
///   position of each parameter in the vector given to step(), and the step count t.
///   Every later step() must pass the same number of parameters with the same sizes; it
///   then allocates nothing.
template <class T>
class adam {
    static_assert(std::is_floating_point_v<T>, "advaug::adam<T>: T must be float or double");

public:
    using value_type = T;

    explicit adam(adam_options options = {}) : options_(options) {}

    /// One update of every parameter from its gradient (gradients are read, not cleared).
    ///   requires: lr finite and >= 0; each parameter's value and grad of equal size; after
    ///   the first step, the same parameter count and sizes as at the first step.
    ///   ensures: on an error nothing was changed.
    void step(std::vector<parameter_view<T>>& params, double lr);

    /// Appends the tag "adam", the options, t and the moments m and v of each parameter.
    void save_state(io::binary_writer& out) const;

    /// Restores a state written by save_state() for a model with the parameters `params`.
    ///   A malformed or truncated state, or another optimizer's, is an io_error; a state for
    ///   a different parameter count or sizes, of the other value type, or saved with
    ///   different options is std::invalid_argument naming the mismatch.
    ///   ensures: on an error this optimizer is unchanged.
    void load_state(io::binary_reader& in, const std::vector<parameter_view<T>>& params);

    const adam_options& options() const { return options_; }
    /// Steps taken, t (restored by load_state).
    std::uint64_t step_count() const { return steps_; }

private:
    adam_options options_;
    std::uint64_t steps_ = 0;
    detail::optimizer_layout layout_;
    std::vector<T> m_;  // flat: parameter i owns [layout_.offset(i), + layout_.size(i))
    std::vector<T> v_;
};

// --- implementation -----------------------------------------------------------------------

template <class T>
void adam<T>::step(std::vector<parameter_view<T>>& params, double lr) {
    detail::check_lr("adam::step", lr);
    if (steps_ == 0) {
        auto layout = detail::optimizer_layout::of("adam::step", params);
        m_.assign(layout.total(), T(0));
        v_.assign(layout.total(), T(0));
        layout_ = std::move(layout);
    } else {
        layout_.check("adam::step", params);
    }

    const double t = static_cast<double>(steps_ + 1);
    const double b1 = options_.beta1(), b2 = options_.beta2(), wd = options_.weight_decay();
    // Scalars in double, applied in T, as PyTorch does.
    const T beta1 = static_cast<T>(b1), one_minus_beta1 = static_cast<T>(1 - b1);
    const T beta2 = static_cast<T>(b2), one_minus_beta2 = static_cast<T>(1 - b2);
    const T neg_step_size = static_cast<T>(-lr / (1 - std::pow(b1, t)));
    const T bias2_sqrt = static_cast<T>(std::sqrt(1 - std::pow(b2, t)));
    const T eps = static_cast<T>(options_.eps());
    const bool l2 = wd != 0 && !options_.decoupled();
    const bool shrink = wd != 0 && options_.decoupled();
    const T l2_decay = static_cast<T>(wd);
    const T shrink_factor = static_cast<T>(1 - lr * wd);

    for (std::size_t p = 0; p < params.size(); ++p) {
        T* w = params[p].value.data();
        const T* grad = params[p].grad.data();
        T* m = m_.data() + layout_.offset(p);
        T* v = v_.data() + layout_.offset(p);
        for (std::size_t i = 0, n = params[p].value.size(); i < n; ++i) {
            T g = grad[i];
            if (l2) g += l2_decay * w[i];
            if (shrink) w[i] *= shrink_factor;
            m[i] = beta1 * m[i] + one_minus_beta1 * g;
            v[i] = beta2 * v[i] + one_minus_beta2 * (g * g);
            const T denom = std::sqrt(v[i]) / bias2_sqrt + eps;
            w[i] += neg_step_size * (m[i] / denom);
        }
    }
    ++steps_;
}

template <class T>
void adam<T>::save_state(io::binary_writer& out) const {
    detail::write_state_header<T>(out, "adam");
    out.write<double>(options_.beta1());
    out.write<double>(options_.beta2());
    out.write<double>(options_.eps());
    out.write<double>(options_.weight_decay());
    out.write<std::uint8_t>(options_.decoupled() ? 1 : 0);
    out.write<std::uint64_t>(steps_);
    layout_.write(out);
    if (steps_ > 0) {
        for (std::size_t i = 0; i < layout_.count(); ++i) {
            out.write_array(m_.data() + layout_.offset(i), layout_.size(i));
            out.write_array(v_.data() + layout_.offset(i), layout_.size(i));
        }
    }
}

template <class T>
void adam<T>::load_state(io::binary_reader& in, const std::vector<parameter_view<T>>& params) {
    constexpr const char* fn = "adam::load_state";
    detail::read_state_header<T>(in, fn, "adam");
    detail::check_saved_option(fn, "beta1", in.read<double>("adam beta1"), options_.beta1());
    detail::check_saved_option(fn, "beta2", in.read<double>("adam beta2"), options_.beta2());
    detail::check_saved_option(fn, "eps", in.read<double>("adam eps"), options_.eps());
    detail::check_saved_option(fn, "weight_decay", in.read<double>("adam weight_decay"),
                               options_.weight_decay());
    detail::check_saved_option(fn, "decoupled", in.read<std::uint8_t>("adam decoupled") != 0,
                               options_.decoupled());
    const auto steps = in.read<std::uint64_t>("step count");
    auto layout = detail::optimizer_layout::read(in, fn, params, steps);
    std::vector<T> m, v;
    if (steps > 0) {
        m.resize(layout.total());
        v.resize(layout.total());
        for (std::size_t i = 0; i < layout.count(); ++i) {
            in.read_array_into("adam first moment", m.data() + layout.offset(i), layout.size(i));
            in.read_array_into("adam second moment", v.data() + layout.offset(i), layout.size(i));
        }
    }
    // Everything was read and checked: commit.
    steps_ = steps;
    layout_ = std::move(layout);
    m_ = std::move(m);
    v_ = std::move(v);
}

static_assert(optimizer<adam<float>, float> && optimizer<adam<double>, double>);

}  // namespace advaug
