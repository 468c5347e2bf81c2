// What the bundled families share: the trip from the model's units to raw units and back, the
// clip to the input domain, the identity fast path and the argument checks. A family derived
// from raw_family writes two row kernels in raw units:
//   forward_row(u, theta, v)           v = f(u, theta) for one sample (D values, P parameters)
//   backward_row(u, theta, g, dth, du) dth = J_theta^T g, du = J_u^T g; either may be null
// A family whose rows need scratch memory, or whose backward needs what its forward computed,
// declares `workspace make_workspace() const` and takes a `workspace&` as the kernels' last
// argument: one workspace per thread's chunk of rows, and backward_row is always called right
// after forward_row on the same row and workspace, so it may read the forward's intermediates
// (the clip mask needs the forward pass anyway) instead of computing them again. Such a family
// also has the contract's recorded pass (family.hpp): apply(..., tape) keeps each row's
// values before the clip and its workspace, and vjp(..., tape) runs backward_row on them, so
// that the search's apply-model-vjp_theta step takes each row's forward pass once; so
// backward_row leaves what forward_row wrote as it found it (scratch of its own aside), and one
// record serves any number of vjps (tests/test_perturbations_families.cpp takes three).
// Rows are independent (the contract's "row n of out depends on row n of x and theta only"), so
// apply and the vjps split the batch's rows over advaug's threads (parallel/threads.hpp): each
// row is computed the same way on any thread, so the results do not depend on the thread count.
// The shapes are checked up front; the finiteness of x and theta in the same pass as the rows
// (each row checked while it is in cache: separate scans of the batch were a third of the
// L-inf ball's step), and a non-finite value then throws check_batch_values' error after the
// pass, with the output unspecified.
// Internal: a user's own family implements the contract directly (family.hpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/parallel/threads.hpp"
#include "advaug/perturbations/budget.hpp"
#include "advaug/perturbations/family.hpp"

namespace advaug::detail {

/// An input_domain resolved per feature of a row: raw bounds, mean and std.
template <class T>
struct element_domain {
    std::vector<T> lo, hi, mean, sd;  // raw units
    bool unit = true;                 // mean 0 and std 1: model units are raw units

    T to_raw(T z, std::size_t d) const { return unit ? z : z * sd[d] + mean[d]; }
    T from_raw(T r, std::size_t d) const { return unit ? r : (r - mean[d]) / sd[d]; }
};

/// Rows of `groups` * `inner` features; the domain gives one value or one per group
/// (per channel of an image, per feature of a table).
template <class T>
element_domain<T> resolve_elements(const char* function, const input_domain& dom,
                                   std::size_t groups, std::size_t inner) {
    auto check = [&](const char* what, std::size_t length) {
        if (length != 1 && length != groups) {
            invalid(function, "the input domain's ", what, " has ", length, " entries; need 1 or ",
                    groups, " (one per channel or feature)");
        }
    };
    check("bounds", dom.lo().size());
    check("normalization", dom.mean().size());
    element_domain<T> e;
    const std::size_t d_size = groups * inner;
    e.lo.resize(d_size);
    e.hi.resize(d_size);
    e.mean.resize(d_size);
    e.sd.resize(d_size);
    for (std::size_t d = 0; d < d_size; ++d) {
        const std::size_t g = d / inner;
        e.lo[d] = static_cast<T>(dom.lo()[domain_entry(dom.lo(), g)]);
        e.hi[d] = static_cast<T>(dom.hi()[domain_entry(dom.hi(), g)]);
        e.mean[d] = static_cast<T>(dom.mean()[domain_entry(dom.mean(), g)]);
        e.sd[d] = static_cast<T>(dom.stddev()[domain_entry(dom.stddev(), g)]);
        if (e.mean[d] != T(0) || e.sd[d] != T(1)) e.unit = false;
    }
    return e;
}

template <class Derived, class T>
class raw_family {
    /// Whether the family's row kernels take a workspace (see above); asked from inside the
    /// family's friend, since the kernels are private.
    static constexpr bool has_workspace() {
        return requires(const Derived& d) { d.make_workspace(); };
    }

public:
    using value_type = T;

    std::size_t input_size() const { return d_; }
    std::size_t num_params() const { return p_; }
    const input_domain& domain() const { return domain_; }

    void identity(std::size_t n, tensor<T, 2>& theta) const {
        theta.resize({n, p_});
        for (std::size_t i = 0; i < n; ++i) std::copy(id_.begin(), id_.end(), &theta(i, 0));
    }

    void apply(const tensor<T, 2>& x, const tensor<T, 2>& theta, tensor<T, 2>& out) const {
        const std::string fn = name_ + "::apply";
        check_batch_shapes(fn.c_str(), x, theta, d_, p_);
        const std::size_t n = x.shape()[0];
        out.resize({n, d_});
        std::atomic<bool> non_finite{false};
        parallel_for(n, row_grain(), [&](std::size_t first, std::size_t last, std::size_t) {
            std::vector<T> u(d_), v(d_);
            auto ws = workspace();
            bool finite = true;
            for (std::size_t i = first; i < last; ++i) {
                finite &= row_finite(x, theta, i);
                if (!identity_row(x, theta, i, out)) forward_clip(x, theta, i, u.data(), v.data(), ws, out);
            }
            if (!finite) non_finite.store(true, std::memory_order_relaxed);
        });
        if (non_finite.load()) check_batch_values(fn.c_str(), x, theta, d_, p_);
    }

    /// apply, keeping in tape each row's forward pass (its values before the clip and its
    /// workspace) for vjp(..., tape): the contract's recorded pass (family.hpp). Declared by
    /// the families with a workspace, whose forward pass is worth keeping (photometric, the
    /// spatial families, the blur); the others (the balls, the tabular families) compute theirs
    /// again in less time than a record takes to write and read (the balls' theta alone is as
    /// large as x).
    void apply(const tensor<T, 2>& x, const tensor<T, 2>& theta, tensor<T, 2>& out,
               family_tape& tape) const
        requires(has_workspace())
    {
        const std::string fn = name_ + "::apply";
        check_batch_shapes(fn.c_str(), x, theta, d_, p_);
        const std::size_t n = x.shape()[0];
        out.resize({n, d_});
        auto& rec = tape.state<record_t<raw_family>>();
        rec.owner = nullptr;  // no record until this pass ends well
        rec.v.resize(n * d_);
        rec.forwarded.assign(n, 0);
        if (rec.ws.size() < n) {
            rec.ws.reserve(n);
            while (rec.ws.size() < n) rec.ws.push_back(workspace());
        }
        std::atomic<bool> non_finite{false};
        parallel_for(n, row_grain(), [&](std::size_t first, std::size_t last, std::size_t) {
            std::vector<T> u(d_);
            bool finite = true;
            for (std::size_t i = first; i < last; ++i) {
                finite &= row_finite(x, theta, i);
                if (identity_row(x, theta, i, out)) continue;
                forward_clip(x, theta, i, u.data(), rec.v.data() + i * d_, rec.ws[i], out);
                rec.forwarded[i] = 1;
            }
            if (!finite) non_finite.store(true, std::memory_order_relaxed);
        });
        if (non_finite.load()) check_batch_values(fn.c_str(), x, theta, d_, p_);
        rec.owner = this;
        rec.x = x.data();
        rec.theta = theta.data();
        rec.n = n;
        rec.theta_values.assign(theta.begin(), theta.end());
    }

    void vjp_theta(const tensor<T, 2>& x, const tensor<T, 2>& theta, const tensor<T, 2>& dout,
                   tensor<T, 2>& dtheta) const {
        backward((name_ + "::vjp_theta").c_str(), x, theta, dout, &dtheta, nullptr, nullptr);
    }

    void vjp_input(const tensor<T, 2>& x, const tensor<T, 2>& theta, const tensor<T, 2>& dout,
                   tensor<T, 2>& dx) const {
        backward((name_ + "::vjp_input").c_str(), x, theta, dout, nullptr, &dx, nullptr);
    }

    /// Both products in one pass (the contract's optional vjp): the row's forward pass for
    /// the clip mask is taken once. Either pointer may be null.
    void vjp(const tensor<T, 2>& x, const tensor<T, 2>& theta, const tensor<T, 2>& dout,
             tensor<T, 2>* dtheta, tensor<T, 2>* dx) const {
        backward((name_ + "::vjp").c_str(), x, theta, dout, dtheta, dx, nullptr);
    }

    /// vjp from the record of apply(x, theta, out, tape): each row's forward pass is read, not
    /// taken again (a row of identity theta, which apply copied, is taken here as vjp does).
    void vjp(const tensor<T, 2>& x, const tensor<T, 2>& theta, const tensor<T, 2>& dout,
             tensor<T, 2>* dtheta, tensor<T, 2>* dx, family_tape& tape) const
        requires(has_workspace())
    {
        const std::string fn = name_ + "::vjp";
        auto* rec = tape.find<record_t<raw_family>>();
        if (!rec || rec->owner != this || rec->x != x.data() || rec->theta != theta.data() ||
            rec->n != x.shape()[0] || x.size() != rec->n * d_ ||
            !std::equal(theta.begin(), theta.end(), rec->theta_values.begin(),
                        rec->theta_values.end())) {
            invalid(fn.c_str(), "the tape holds no record of this family at this x and theta: "
                                "call apply(x, theta, out, tape) first, and change neither in between");
        }
        backward(fn.c_str(), x, theta, dout, dtheta, dx, rec);
    }

protected:
    /// `name` names the family in messages; `groups` x `inner` features per row resolve the
    /// domain; `identity` is the parameter row that leaves x unchanged.
    raw_family(std::string name, input_domain dom, std::size_t groups, std::size_t inner,
               std::vector<T> identity)
        : name_(std::move(name)),
          domain_(std::move(dom)),
          dom_(resolve_elements<T>(name_.c_str(), domain_, groups, inner)),
          d_(groups * inner),
          p_(identity.size()),
          id_(std::move(identity)) {}

    const element_domain<T>& elements() const { return dom_; }
    const std::string& name() const { return name_; }

private:
    const Derived& self() const { return static_cast<const Derived&>(*this); }

    /// The products from each row's forward pass: taken here, or read from rec (a pointer to
    /// the record of apply(..., tape), or nullptr) where it holds the row.
    template <class Record>
    void backward(const char* fn, const tensor<T, 2>& x, const tensor<T, 2>& theta,
                  const tensor<T, 2>& dout, tensor<T, 2>* dtheta, tensor<T, 2>* dx,
                  Record rec) const {
        check_batch_shapes(fn, x, theta, d_, p_);
        check_upstream(fn, x, dout);
        const std::size_t n = x.shape()[0];
        if (dtheta) dtheta->resize({n, p_});
        if (dx) dx->resize({n, d_});
        const T* lo = dom_.lo.data();
        const T* hi = dom_.hi.data();
        const T* sd = dom_.sd.data();
        std::atomic<bool> non_finite{false};
        parallel_for(n, row_grain(), [&](std::size_t first, std::size_t last, std::size_t) {
            std::vector<T> u(d_), v_own(d_), g(d_);
            auto ws_own = workspace();
            bool finite = true;
            for (std::size_t i = first; i < last; ++i) {
                const T* xi = x.data() + i * d_;
                const T* ti = theta.data() + i * p_;
                const T* gi = dout.data() + i * d_;
                // Rows the record holds were checked by its apply.
                bool recorded = false;
                if constexpr (!std::is_null_pointer_v<Record>) recorded = rec->forwarded[i] != 0;
                if (!recorded) {
                    finite &= all_finite(xi, d_);
                    finite &= all_finite(ti, p_);
                }
                const T* ui = xi;
                if (!dom_.unit) {
                    for (std::size_t d = 0; d < d_; ++d) u[d] = dom_.to_raw(xi[d], d);
                    ui = u.data();
                }
                auto& ws = [&]() -> auto& {
                    if constexpr (std::is_null_pointer_v<Record>) {
                        return ws_own;
                    } else {
                        return recorded ? rec->ws[i] : ws_own;
                    }
                }();
                const T* v = v_own.data();
                if (recorded) {
                    if constexpr (!std::is_null_pointer_v<Record>) v = rec->v.data() + i * d_;
                } else {
                    forward(ui, ti, v_own.data(), ws);
                }
                // Clipped outputs pass no gradient; dL/draw = dL/dmodel / std. The tests are
                // combined with & (no branch) and the unit domain has its own loop, so that the
                // loops vectorize.
                if (dom_.unit) {
                    for (std::size_t d = 0; d < d_; ++d) {
                        const T vd = v[d];
                        const bool inside = (vd >= lo[d]) & (vd <= hi[d]);
                        const T up = gi[d];  // loaded either way: a select, not a branch
                        g[d] = inside ? up : T(0);
                    }
                } else {
                    for (std::size_t d = 0; d < d_; ++d) {
                        const T vd = v[d];
                        const bool inside = (vd >= lo[d]) & (vd <= hi[d]);
                        const T up = gi[d] / sd[d];
                        g[d] = inside ? up : T(0);
                    }
                }
                T* dth = dtheta ? dtheta->data() + i * p_ : nullptr;
                T* du = dx ? dx->data() + i * d_ : nullptr;
                if constexpr (has_workspace()) {
                    self().backward_row(ui, ti, g.data(), dth, du, ws);
                } else {
                    self().backward_row(ui, ti, g.data(), dth, du);
                }
                if (du && !dom_.unit) {
                    for (std::size_t d = 0; d < d_; ++d) du[d] *= dom_.sd[d];
                }
            }
            if (!finite) non_finite.store(true, std::memory_order_relaxed);
        });
        if (non_finite.load()) check_batch_values(fn, x, theta, d_, p_);
    }

    /// Row i of x and theta finite.
    bool row_finite(const tensor<T, 2>& x, const tensor<T, 2>& theta, std::size_t i) const {
        return all_finite(x.data() + i * d_, d_) & all_finite(theta.data() + i * p_, p_);
    }

    /// Copies row i of x to out when its theta is the identity (x bit for bit); says whether.
    bool identity_row(const tensor<T, 2>& x, const tensor<T, 2>& theta, std::size_t i,
                      tensor<T, 2>& out) const {
        const T* ti = theta.data() + i * p_;
        if (!std::equal(id_.begin(), id_.end(), ti)) return false;
        const T* xi = x.data() + i * d_;
        std::copy(xi, xi + d_, out.data() + i * d_);
        return true;
    }

    /// Row i's forward pass into v (in raw units, before the clip; u: scratch for the row in
    /// raw units), then out's row: v clipped to the domain, in model units.
    template <class W>
    void forward_clip(const tensor<T, 2>& x, const tensor<T, 2>& theta, std::size_t i, T* u,
                      T* v, W& ws, tensor<T, 2>& out) const {
        const T* xi = x.data() + i * d_;
        const T* ti = theta.data() + i * p_;
        T* oi = out.data() + i * d_;
        const T* lo = dom_.lo.data();
        const T* hi = dom_.hi.data();
        if (dom_.unit) {  // raw units are model units: no trip, loops that vectorize
            forward(xi, ti, v, ws);
            for (std::size_t d = 0; d < d_; ++d) oi[d] = std::clamp(v[d], lo[d], hi[d]);
            return;
        }
        for (std::size_t d = 0; d < d_; ++d) u[d] = dom_.to_raw(xi[d], d);
        forward(u, ti, v, ws);
        for (std::size_t d = 0; d < d_; ++d) oi[d] = dom_.from_raw(std::clamp(v[d], lo[d], hi[d]), d);
    }

    struct no_workspace {};

    auto workspace() const {
        if constexpr (has_workspace()) {
            return self().make_workspace();
        } else {
            return no_workspace{};
        }
    }

    /// What apply(..., tape) keeps: whose record it is and of which x and theta (their data
    /// and theta's values: vjp refuses another pair), each row's values before the clip and
    /// its workspace, and which rows it took the forward pass of (not the identity rows).
    template <class W>
    struct record_of {
        const raw_family* owner = nullptr;
        const T* x = nullptr;
        const T* theta = nullptr;
        std::size_t n = 0;
        std::vector<T> theta_values, v;
        std::vector<unsigned char> forwarded;
        std::vector<W> ws;
    };
    /// In a member's body, where Derived is complete.
    template <class Self>
    using record_t = record_of<decltype(std::declval<const Self&>().workspace())>;

    template <class W>
    void forward(const T* u, const T* th, T* v, W& ws) const {
        if constexpr (has_workspace()) {
            self().forward_row(u, th, v, ws);
        } else {
            self().forward_row(u, th, v);
        }
    }

    // Rows per chunk: a row costs a few to a few dozen operations per feature, so chunks of
    // about 8192 features are worth a thread.
    std::size_t row_grain() const { return std::max<std::size_t>(1, 8192 / std::max<std::size_t>(d_, 1)); }

    std::string name_;
    input_domain domain_;
    element_domain<T> dom_;
    std::size_t d_, p_;
    std::vector<T> id_;
};

}  // namespace advaug::detail
