// Composition: chain<F1, F2, ...> applies F1, then F2, ... to the same batch; theta is the
// parameters of each family side by side ([theta_1 | theta_2 | ...]) and the budget is each
// family's own. AugMax (Wang et al. 2021) searches over such compositions;
// chain<linf_ball<T>, affine<T>> puts the L-inf ball beside a warp.
//
// The chain is continuous when every member is; a gradient-free or discrete member makes the
// whole chain gradient-free (searched by sampling). The identity is every member's identity,
// and returns x bit for bit since each member does.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/perturbations/family.hpp"

namespace advaug {

template <class... Fs>
class chain {
    static_assert(sizeof...(Fs) >= 1, "advaug: chain<> needs at least one family");
    static_assert((perturbation_family<Fs> && ...),
                  "advaug: every member of chain<...> must be a perturbation family; "
                  "check_perturbation_family<F>() names what one lacks");
    static_assert(!(kind_known_at_run_time<Fs> || ...),
                  "advaug: chain<...> takes no any_family member (its kind is known at run time "
                  "only); put the chain in an any_family instead");

public:
    using value_type = typename std::tuple_element_t<0, std::tuple<Fs...>>::value_type;
    using batch = tensor<value_type, 2>;
    static_assert((std::is_same_v<typename Fs::value_type, value_type> && ...),
                  "advaug: the members of chain<...> must share one value_type");
    static constexpr perturbation_kind kind =
        ((kind_of<Fs>() == perturbation_kind::continuous) && ...)
            ? perturbation_kind::continuous
            : perturbation_kind::gradient_free;

    /// requires: every member takes the same number of features.
    explicit chain(Fs... families) : parts_(std::move(families)...) {
        std::size_t k = 0, offset = 0;
        for_each([&](const auto& f) {
            if (f.input_size() != input_size()) {
                detail::invalid("chain", "member ", k, " takes ", f.input_size(),
                                " features, member 0 takes ", input_size());
            }
            offsets_[k++] = offset;
            offset += f.num_params();
        });
        p_ = offset;
    }

    std::size_t input_size() const { return std::get<0>(parts_).input_size(); }
    std::size_t num_params() const { return p_; }
    const std::tuple<Fs...>& parts() const { return parts_; }

    void apply(const batch& x, const batch& theta, batch& out) const {
        check("chain::apply", x, theta);
        batch current = x, th;
        std::size_t k = 0;
        for_each([&](const auto& f) {
            columns(theta, k++, f.num_params(), th);
            f.apply(current, th, out);
            current = out;
        });
    }

    void vjp_theta(const batch& x, const batch& theta, const batch& dout, batch& dtheta) const {
        backward("chain::vjp_theta", x, theta, dout, &dtheta, nullptr);
    }
    void vjp_input(const batch& x, const batch& theta, const batch& dout, batch& dx) const {
        backward("chain::vjp_input", x, theta, dout, nullptr, &dx);
    }
    /// Both products in one pass (the contract's optional vjp); either pointer may be null.
    void vjp(const batch& x, const batch& theta, const batch& dout, batch* dtheta, batch* dx) const {
        backward("chain::vjp", x, theta, dout, dtheta, dx);
    }

    void identity(std::size_t n, batch& theta) const {
        theta.resize({n, p_});
        batch part;
        std::size_t k = 0;
        for_each([&](const auto& f) {
            f.identity(n, part);
            put_columns(theta, k++, part);
        });
    }

    /// Member k samples from the stream mix_seed(key, k): element (i, j) depends on key, i, j.
    void sample(std::size_t n, std::uint64_t key, batch& theta) const {
        theta.resize({n, p_});
        batch part;
        std::size_t k = 0;
        for_each([&](const auto& f) {
            f.sample(n, detail::mix_seed(key, k), part);
            put_columns(theta, k++, part);
        });
    }

    void project(batch& theta) const {
        batch part;
        std::size_t k = 0;
        for_each([&](const auto& f) {
            columns(theta, k, f.num_params(), part);
            f.project(part);
            put_columns(theta, k++, part);
        });
    }

    bool contains(const batch& theta) const {
        bool inside = true;
        batch part;
        std::size_t k = 0;
        for_each([&](const auto& f) {
            columns(theta, k++, f.num_params(), part);
            inside = inside && f.contains(part);
        });
        return inside;
    }

    std::vector<double> param_scale() const {
        std::vector<double> s;
        for_each([&](const auto& f) {
            const std::vector<double> part = f.param_scale();
            s.insert(s.end(), part.begin(), part.end());
        });
        return s;
    }

private:
    template <class Fn>
    void for_each(Fn&& fn) const {
        std::apply([&](const auto&... f) { (fn(f), ...); }, parts_);
    }

    void check(const char* fn, const batch& x, const batch& theta) const {
        if (x.shape()[1] != input_size()) {
            detail::invalid(fn, "x has shape ", detail::shape_string(x.shape()),
                            "; the family takes ", input_size(), " features per sample");
        }
        if (theta.shape()[0] != x.shape()[0] || theta.shape()[1] != p_) {
            detail::invalid(fn, "theta has shape ", detail::shape_string(theta.shape()),
                            ", expected [", x.shape()[0], ", ", p_, "]");
        }
    }

    /// Member k's columns of theta.
    void columns(const batch& theta, std::size_t k, std::size_t p, batch& part) const {
        const std::size_t n = theta.shape()[0];
        part.resize({n, p});
        for (std::size_t i = 0; i < n; ++i) {
            std::copy_n(theta.data() + i * p_ + offsets_[k], p, part.data() + i * p);
        }
    }

    void put_columns(batch& theta, std::size_t k, const batch& part) const {
        const std::size_t n = part.shape()[0], p = part.shape()[1];
        for (std::size_t i = 0; i < n; ++i) {
            std::copy_n(part.data() + i * p, p, theta.data() + i * p_ + offsets_[k]);
        }
    }

    void backward(const char* fn, const batch& x, const batch& theta, const batch& dout,
                  batch* dtheta, batch* dx) const {
        check(fn, x, theta);
        if (dout.shape() != x.shape()) {
            detail::invalid(fn, "dout has shape ", detail::shape_string(dout.shape()),
                            ", x has shape ", detail::shape_string(x.shape()));
        }
        // The inputs of every member, then the gradient back through them in reverse.
        std::array<batch, sizeof...(Fs)> inputs;
        std::array<batch, sizeof...(Fs)> thetas;
        std::size_t k = 0;
        batch current = x;
        for_each([&](const auto& f) {
            columns(theta, k, f.num_params(), thetas[k]);
            inputs[k] = current;
            f.apply(inputs[k], thetas[k], current);
            ++k;
        });
        if (dtheta) dtheta->resize({x.shape()[0], p_});
        batch g = dout, dpart, dprev;
        backward_from<sizeof...(Fs)>(inputs, thetas, g, dpart, dprev, dtheta, dx != nullptr);
        if (dx) *dx = g;
    }

    template <std::size_t K>
    void backward_from(const std::array<batch, sizeof...(Fs)>& inputs,
                       const std::array<batch, sizeof...(Fs)>& thetas, batch& g, batch& dpart,
                       batch& dprev, batch* dtheta, bool want_dx) const {
        if constexpr (K > 0) {
            const auto& f = std::get<K - 1>(parts_);
            const bool input = K > 1 || want_dx;  // the first member's input gradient only for dx
            vjp_both(f, inputs[K - 1], thetas[K - 1], g, dtheta ? &dpart : nullptr,
                     input ? &dprev : nullptr);
            if (dtheta) put_columns(*dtheta, K - 1, dpart);
            if (input) g = dprev;
            backward_from<K - 1>(inputs, thetas, g, dpart, dprev, dtheta, want_dx);
        }
    }

    std::tuple<Fs...> parts_;
    std::array<std::size_t, sizeof...(Fs)> offsets_{};
    std::size_t p_ = 0;
};

}  // namespace advaug
