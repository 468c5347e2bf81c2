// augment_and_mix<T>: AugMix's mixtures of augmentation chains (Hendrycks et al., ICLR 2020) as
// a perturbation family, so that AugMix draws from it and AugMax (Wang et al., NeurIPS 2021)
// searches it with the worst-case search of perturbations/search.hpp.
//
// Per sample, `width` chains each apply 1 to `max_depth` operations, each operation one of the
// continuous families given (a rotation, a contrast change, a blur, ...) at its own theta; the
// chains' outputs are mixed with the input:
//   out = m x + (1 - m) sum_c w_c chain_c(x),   w_c = v_c / sum_c' v_c'
// theta of one sample, side by side:
//   m                   in [0, 1]                the weight of the clean input
//   v_1 .. v_width      in [min_weight, 1]       the chains' unnormalized weights
//   d_1 .. d_width      integer codes            chain c's depth is d_c + 1 (0 .. max_depth - 1)
//   per chain c, per position j < max_depth:
//     k_cj              integer code             which operation (0 .. operations - 1)
//     u_cj (P_max)      the operation's theta in scaled units: theta_op = id_op + s_op * u,
//                       s_op its param_scale(); positions past P_op and past the depth are 0
// The codes are part of theta, so row n of the output depends on row n of x and theta only, and
// a random draw picks the chains' structure too. Their derivative is 0 (they are snapped to the
// nearest integer in range by apply and project), so a gradient search leaves the structure as
// drawn and moves the mixing weights and the operations' parameters: that is AugMax's search
// with the operations' parameters searched too. A random draw is AugMix's: m ~ U(0, 1) (Beta(1,
// 1)), w ~ Dirichlet(1, ..., 1) (v_c = e_c / max e, e_c ~ Exp(1), floored at min_weight),
// depths and operations uniform, each operation's theta a draw from its own budget.
//
// The identity is m = 1 (out = x bit for bit). Every operation must take the same features and
// produce outputs in one input domain (the mixture of points of a box stays in it).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/parallel/threads.hpp"
#include "advaug/perturbations/any_family.hpp"
#include "advaug/perturbations/budget.hpp"

namespace advaug {

/// The shape of AugMix's mixtures. Defaults are the paper's: 3 chains of depth 1 to 3.
class mixture_options {
public:
    /// Chains per sample. requires: >= 1.
    mixture_options& width(std::size_t k) {
        if (k == 0) detail::invalid("mixture_options::width", "width must be >= 1, got ", k);
        width_ = k;
        return *this;
    }
    /// The most operations a chain applies (each chain draws its depth in 1 .. d). requires: >= 1.
    mixture_options& max_depth(std::size_t d) {
        if (d == 0) detail::invalid("mixture_options::max_depth", "max_depth must be >= 1, got ", d);
        max_depth_ = d;
        return *this;
    }
    /// The floor of the chains' unnormalized weights v_c. requires: in (0, 1].
    mixture_options& min_weight(double w) {
        if (!(w > 0 && w <= 1)) {
            detail::invalid("mixture_options::min_weight", "min_weight must be in (0, 1], got ", w);
        }
        min_weight_ = w;
        return *this;
    }
    std::size_t width() const { return width_; }
    std::size_t max_depth() const { return max_depth_; }
    double min_weight() const { return min_weight_; }

private:
    std::size_t width_ = 3, max_depth_ = 3;
    double min_weight_ = 0.01;
};

template <class T>
class augment_and_mix {
public:
    using value_type = T;
    using batch = tensor<T, 2>;
    static constexpr perturbation_kind kind = perturbation_kind::continuous;

    /// requires: at least one operation, all continuous and taking the same number of features.
    /// throws:   std::invalid_argument naming the operation that differs.
    explicit augment_and_mix(std::vector<any_family<T>> operations, mixture_options options = {})
        : ops_(std::move(operations)), opt_(options) {
        if (ops_.empty()) detail::invalid("augment_and_mix", "operations is empty; give at least one family");
        for (std::size_t k = 0; k < ops_.size(); ++k) {
            if (ops_[k].held_kind() != perturbation_kind::continuous) {
                detail::invalid("augment_and_mix", "operation ", k, " is ",
                                ops_[k].held_kind() == perturbation_kind::discrete ? "discrete" : "gradient-free",
                                "; the mixture takes continuous families only (its search moves every "
                                "operation's parameters by their gradient)");
            }
            if (ops_[k].input_size() != ops_[0].input_size()) {
                detail::invalid("augment_and_mix", "operation ", k, " takes ", ops_[k].input_size(),
                                " features, operation 0 takes ", ops_[0].input_size());
            }
            pmax_ = std::max(pmax_, ops_[k].num_params());
            batch id;
            ops_[k].identity(1, id);
            op_identity_.emplace_back(id.begin(), id.end());
            // a parameter the budget pins (scale 0) keeps unit scale; the projection pins it
            std::vector<double> scale = ops_[k].param_scale();
            for (double& e : scale) e = e > 0 ? e : 1.0;
            op_scale_.push_back(std::move(scale));
        }
        const std::size_t k = opt_.width();
        slot_ = 1 + pmax_;
        chains_at_ = 1 + 2 * k;
        p_ = chains_at_ + k * opt_.max_depth() * slot_;
    }

    std::size_t input_size() const { return ops_[0].input_size(); }
    std::size_t num_params() const { return p_; }
    const std::vector<any_family<T>>& operations() const { return ops_; }
    const mixture_options& options() const { return opt_; }

    void apply(const batch& x, const batch& theta, batch& out) const {
        check("augment_and_mix::apply", x, theta);
        out.resize(x.shape());
        over_rows(x, theta, nullptr, &out, nullptr,
                  [&](const batch& xs, const batch& ts, const batch*, batch* os, batch*) {
                      work w;
                      forward(xs, ts, w, false);
                      mix(xs, ts, w, *os);
                  });
    }

    void vjp_theta(const batch& x, const batch& theta, const batch& dout, batch& dtheta) const {
        products("augment_and_mix::vjp_theta", x, theta, dout, &dtheta, nullptr);
    }

    void vjp_input(const batch& x, const batch& theta, const batch& dout, batch& dx) const {
        products("augment_and_mix::vjp_input", x, theta, dout, nullptr, &dx);
    }

    /// Both products in one pass (the contract's optional vjp); either pointer may be null.
    void vjp(const batch& x, const batch& theta, const batch& dout, batch* dtheta, batch* dx) const {
        products("augment_and_mix::vjp", x, theta, dout, dtheta, dx);
    }

    void identity(std::size_t n, batch& theta) const {
        theta.resize({n, p_});
        std::fill(theta.begin(), theta.end(), T(0));
        for (std::size_t i = 0; i < n; ++i) {
            T* t = theta.data() + i * p_;
            t[0] = T(1);
            for (std::size_t c = 0; c < opt_.width(); ++c) t[1 + c] = T(1);
        }
    }

    void sample(std::size_t n, std::uint64_t key, batch& theta) const {
        const std::size_t k = opt_.width(), depth = opt_.max_depth();
        theta.resize({n, p_});
        std::fill(theta.begin(), theta.end(), T(0));
        const std::uint64_t own = detail::mix_seed(key, 0xa46f1c);
        for (std::size_t i = 0; i < n; ++i) {
            T* t = theta.data() + i * p_;
            auto u = [&](std::size_t j) { return detail::counter_uniform(own, i * p_ + j, 0.0, 1.0); };
            t[0] = static_cast<T>(u(0));
            double largest = 0;
            std::vector<double> e(k);
            for (std::size_t c = 0; c < k; ++c) {
                e[c] = -std::log1p(-u(1 + c));  // Exp(1)
                largest = std::max(largest, e[c]);
            }
            for (std::size_t c = 0; c < k; ++c) {
                t[1 + c] = static_cast<T>(std::max(opt_.min_weight(), largest > 0 ? e[c] / largest : 1.0));
                t[1 + k + c] = static_cast<T>(std::min<std::size_t>(
                    depth - 1, static_cast<std::size_t>(u(1 + k + c) * static_cast<double>(depth))));
                for (std::size_t j = 0; j <= static_cast<std::size_t>(t[1 + k + c]); ++j) {
                    const std::size_t at = slot(c, j);
                    t[at] = static_cast<T>(std::min<std::size_t>(
                        ops_.size() - 1, static_cast<std::size_t>(u(at) * static_cast<double>(ops_.size()))));
                }
            }
        }
        // Each position's parameters: a draw from its operation's own budget, row i of a batch
        // drawn for all n rows (so element i depends on key and i only).
        batch drawn;
        for (std::size_t c = 0; c < k; ++c) {
            for (std::size_t j = 0; j < depth; ++j) {
                for (std::size_t op = 0; op < ops_.size(); ++op) {
                    const auto rows = rows_at(theta, c, j, op);
                    if (rows.empty()) continue;
                    ops_[op].sample(n, detail::mix_seed(key, 1 + (c * depth + j), op), drawn);
                    const std::size_t q = ops_[op].num_params();
                    for (std::size_t i : rows) {
                        T* u = theta.data() + i * p_ + slot(c, j) + 1;
                        for (std::size_t a = 0; a < q; ++a) u[a] = scaled(op, a, drawn(i, a));
                    }
                }
            }
        }
    }

    void project(batch& theta) const {
        const std::size_t n = theta.shape()[0], k = opt_.width(), depth = opt_.max_depth();
        for (std::size_t i = 0; i < n; ++i) {
            T* t = theta.data() + i * p_;
            t[0] = std::clamp(t[0], T(0), T(1));
            for (std::size_t c = 0; c < k; ++c) {
                t[1 + c] = std::clamp(t[1 + c], static_cast<T>(opt_.min_weight()), T(1));
                t[1 + k + c] = static_cast<T>(code(t[1 + k + c], depth));
                for (std::size_t j = 0; j < depth; ++j) t[slot(c, j)] = static_cast<T>(code(t[slot(c, j)], ops_.size()));
            }
        }
        batch raw;
        for_each_position(theta, [&](std::size_t c, std::size_t j, std::size_t op, const std::vector<std::size_t>& rows) {
            gather_raw(theta, rows, c, j, op, raw);
            ops_[op].project(raw);
            scatter_scaled(raw, rows, c, j, op, theta);
        });
        // positions past a chain's depth and parameters past an operation's count are 0
        for (std::size_t i = 0; i < n; ++i) {
            T* t = theta.data() + i * p_;
            for (std::size_t c = 0; c < k; ++c) {
                for (std::size_t j = 0; j < depth; ++j) {
                    T* u = t + slot(c, j) + 1;
                    const std::size_t used = j <= code(t[1 + k + c], depth) ? ops_[code(t[slot(c, j)], ops_.size())].num_params() : 0;
                    if (j > code(t[1 + k + c], depth)) t[slot(c, j)] = T(0);
                    std::fill(u + used, u + pmax_, T(0));
                }
            }
        }
    }

    bool contains(const batch& theta) const {
        if (theta.dimension() != 2 || theta.shape()[1] != p_) return false;
        batch copy = theta;
        project(copy);
        for (std::size_t i = 0; i < theta.size(); ++i) {
            const double a = theta.data()[i], b = copy.data()[i];
            if (!(std::abs(a - b) <= 1e-5 * std::max(1.0, std::abs(a)))) return false;
        }
        return true;
    }

    std::vector<double> param_scale() const {
        std::vector<double> s(p_, 1.0);  // the codes never move (their derivative is 0)
        s[0] = 0.5;
        for (std::size_t c = 0; c < opt_.width(); ++c) s[1 + c] = (1 - opt_.min_weight()) / 2;
        return s;  // an operation's scaled parameters: 1 is its param_scale()
    }

    /// The operation at chain c, position j of row `row` of theta, or operations().size() where
    /// the chain is shorter.
    std::size_t operation_at(const batch& theta, std::size_t row, std::size_t c, std::size_t j) const {
        const T* t = theta.data() + row * p_;
        return j <= code(t[1 + opt_.width() + c], opt_.max_depth()) ? code(t[slot(c, j)], ops_.size()) : ops_.size();
    }

private:
    struct work {
        std::vector<batch> inputs;  // [c * depth + j]: chain c's input to position j (kept for vjps)
        std::vector<batch> chains;  // chain c's output
    };

    std::size_t slot(std::size_t c, std::size_t j) const { return chains_at_ + (c * opt_.max_depth() + j) * slot_; }

    static std::size_t code(T value, std::size_t count) {
        const double r = std::nearbyint(static_cast<double>(value));
        return r <= 0 ? 0 : std::min(count - 1, static_cast<std::size_t>(r));
    }

    T scaled(std::size_t op, std::size_t a, T raw) const {
        return static_cast<T>((static_cast<double>(raw) - op_identity_[op][a]) / op_scale_[op][a]);
    }

    std::vector<std::size_t> rows_at(const batch& theta, std::size_t c, std::size_t j, std::size_t op) const {
        std::vector<std::size_t> rows;
        for (std::size_t i = 0; i < theta.shape()[0]; ++i) {
            if (operation_at(theta, i, c, j) == op) rows.push_back(i);
        }
        return rows;
    }

    template <class Fn>
    void for_each_position(const batch& theta, Fn&& fn) const {
        for (std::size_t c = 0; c < opt_.width(); ++c) {
            for (std::size_t j = 0; j < opt_.max_depth(); ++j) {
                for (std::size_t op = 0; op < ops_.size(); ++op) {
                    const auto rows = rows_at(theta, c, j, op);
                    if (!rows.empty()) fn(c, j, op, rows);
                }
            }
        }
    }

    void gather_raw(const batch& theta, const std::vector<std::size_t>& rows, std::size_t c, std::size_t j,
                    std::size_t op, batch& raw) const {
        const std::size_t q = ops_[op].num_params();
        raw.resize({rows.size(), q});
        for (std::size_t r = 0; r < rows.size(); ++r) {
            const T* u = theta.data() + rows[r] * p_ + slot(c, j) + 1;
            for (std::size_t a = 0; a < q; ++a) {
                raw(r, a) = static_cast<T>(op_identity_[op][a] + op_scale_[op][a] * static_cast<double>(u[a]));
            }
        }
    }

    void scatter_scaled(const batch& raw, const std::vector<std::size_t>& rows, std::size_t c, std::size_t j,
                        std::size_t op, batch& theta) const {
        const std::size_t q = ops_[op].num_params();
        for (std::size_t r = 0; r < rows.size(); ++r) {
            T* u = theta.data() + rows[r] * p_ + slot(c, j) + 1;
            for (std::size_t a = 0; a < q; ++a) u[a] = scaled(op, a, raw(r, a));
        }
    }

    static void gather(const batch& from, const std::vector<std::size_t>& rows, batch& to) {
        const std::size_t d = from.shape()[1];
        to.resize({rows.size(), d});
        for (std::size_t r = 0; r < rows.size(); ++r) std::copy_n(from.data() + rows[r] * d, d, to.data() + r * d);
    }
    static void scatter(const batch& from, const std::vector<std::size_t>& rows, batch& to) {
        const std::size_t d = to.shape()[1];
        for (std::size_t r = 0; r < rows.size(); ++r) std::copy_n(from.data() + r * d, d, to.data() + rows[r] * d);
    }

    void check(const char* fn, const batch& x, const batch& theta, const batch* dout = nullptr) const {
        const std::size_t n = x.shape()[0];
        if (x.shape()[1] != input_size()) {
            detail::invalid(fn, "x has ", x.shape()[1], " features per sample, the family takes ", input_size());
        }
        if (theta.shape()[0] != n || theta.shape()[1] != p_) {
            detail::invalid(fn, "theta has shape [", theta.shape()[0], ", ", theta.shape()[1], "], expected [", n,
                            ", ", p_, "]");
        }
        if (dout && (dout->shape()[0] != n || dout->shape()[1] != input_size())) {
            detail::invalid(fn, "dout has shape [", dout->shape()[0], ", ", dout->shape()[1], "], x has [", n, ", ",
                            input_size(), "]");
        }
        // up front, with the mixture's own rows: an operation would see a gathered group's
        detail::check_batch_values(fn, x, theta, input_size(), p_);
    }

    // The vjps: dtheta and/or dx (null: not wanted), the rows split over the threads.
    void products(const char* fn, const batch& x, const batch& theta, const batch& dout, batch* dtheta,
                  batch* dx) const {
        check(fn, x, theta, &dout);
        if (dtheta) dtheta->resize({x.shape()[0], p_});
        if (dx) dx->resize(x.shape());
        over_rows(x, theta, &dout, dx, dtheta,
                  [&](const batch& xs, const batch& ts, const batch* ds, batch* dxs, batch* dts) {
                      backward(xs, ts, *ds, dts, dxs);
                  });
    }

    // The batch's rows split over advaug's threads (parallel/threads.hpp), each thread running
    // the whole mixture on its rows, so that the operations' row loops inside run on that
    // thread. Splitting each operation's gathered group instead (18 rows on average) left one
    // core idle for much of a step, and the mixture's own loops ran on one thread. Row n of every
    // result depends on row n of the inputs only, and each row is computed the same way in any
    // split: the bits do not depend on the thread count. fn(xs, ts, ds, os, dts) computes the
    // results of a part into os ([rows, D]) and dts ([rows, P]) where they are wanted (not
    // null); the caller has sized out and dtheta.
    template <class Fn>
    void over_rows(const batch& x, const batch& theta, const batch* dout, batch* out, batch* dtheta,
                   const Fn& fn) const {
        const std::size_t n = x.shape()[0];
        detail::parallel_for(n, 1, [&](std::size_t first, std::size_t last, std::size_t) {
            if (first == 0 && last == n) {
                fn(x, theta, dout, out, dtheta);
                return;
            }
            auto part = [&](const batch& from, batch& to) {
                const std::size_t width = from.shape()[1];
                to.resize({last - first, width});
                std::copy_n(from.data() + first * width, (last - first) * width, to.data());
            };
            auto back = [&](const batch& from, batch& to) {
                std::copy_n(from.data(), from.size(), to.data() + first * to.shape()[1]);
            };
            batch xs, ts, ds, os, dts;
            part(x, xs);
            part(theta, ts);
            if (dout) part(*dout, ds);
            if (out) os.resize({last - first, x.shape()[1]});
            fn(xs, ts, dout ? &ds : nullptr, out ? &os : nullptr, dtheta ? &dts : nullptr);
            if (out) back(os, *out);
            if (dtheta) back(dts, *dtheta);
        });
    }

    // Every chain's output; with `keep`, every position's input too.
    void forward(const batch& x, const batch& theta, work& w, bool keep) const {
        const std::size_t k = opt_.width(), depth = opt_.max_depth();
        w.chains.assign(k, x);
        if (keep) w.inputs.assign(k * depth, batch{});
        batch xin, xout, raw;
        for (std::size_t c = 0; c < k; ++c) {
            for (std::size_t j = 0; j < depth; ++j) {
                if (keep) w.inputs[c * depth + j] = w.chains[c];
                for (std::size_t op = 0; op < ops_.size(); ++op) {
                    const auto rows = rows_at(theta, c, j, op);
                    if (rows.empty()) continue;
                    gather(w.chains[c], rows, xin);
                    gather_raw(theta, rows, c, j, op, raw);
                    ops_[op].apply(xin, raw, xout);
                    scatter(xout, rows, w.chains[c]);
                }
            }
        }
    }

    // The normalized weights of row i: w_c = v_c / sum v, and that sum.
    void weights(const T* t, std::vector<double>& w, double& sum) const {
        const std::size_t k = opt_.width();
        w.resize(k);
        sum = 0;
        for (std::size_t c = 0; c < k; ++c) sum += static_cast<double>(t[1 + c]);
        for (std::size_t c = 0; c < k; ++c) w[c] = static_cast<double>(t[1 + c]) / sum;
    }

    void mix(const batch& x, const batch& theta, const work& wk, batch& out) const {
        const std::size_t n = x.shape()[0], d = x.shape()[1], k = opt_.width();
        std::vector<double> w;
        double sum;
        for (std::size_t i = 0; i < n; ++i) {
            const T* t = theta.data() + i * p_;
            const T* xi = x.data() + i * d;
            T* o = out.data() + i * d;
            const double m = t[0];
            if (m == 1) {
                std::copy_n(xi, d, o);  // the identity, bit for bit
                continue;
            }
            weights(t, w, sum);
            for (std::size_t e = 0; e < d; ++e) {
                double chained = 0;
                for (std::size_t c = 0; c < k; ++c) chained += w[c] * static_cast<double>(wk.chains[c](i, e));
                o[e] = static_cast<T>(m * static_cast<double>(xi[e]) + (1 - m) * chained);
            }
        }
    }

    // dtheta and/or dx (null: not wanted). Each operation gives both of its products in one
    // pass (vjp_both); without dx, the first position of each chain needs only its dtheta.
    void backward(const batch& x, const batch& theta, const batch& dout, batch* dtheta, batch* dx) const {
        const std::size_t n = x.shape()[0], d = x.shape()[1], k = opt_.width(), depth = opt_.max_depth();
        work wk;
        forward(x, theta, wk, true);
        if (dtheta) {
            dtheta->resize({n, p_});
            std::fill(dtheta->begin(), dtheta->end(), T(0));
        }
        // the mixture: d/dm, d/dv_c, and the gradient reaching each chain's output
        std::vector<batch> dchain(k, batch(x.shape()));
        if (dx) dx->resize(x.shape());
        std::vector<double> w;
        double sum;
        for (std::size_t i = 0; i < n; ++i) {
            const T* t = theta.data() + i * p_;
            const T* g = dout.data() + i * d;
            const double m = t[0];
            weights(t, w, sum);
            double dm = 0;
            std::vector<double> dv(k, 0.0);
            for (std::size_t e = 0; e < d; ++e) {
                double chained = 0;
                for (std::size_t c = 0; c < k; ++c) chained += w[c] * static_cast<double>(wk.chains[c](i, e));
                const double ge = g[e];
                dm += ge * (static_cast<double>(x(i, e)) - chained);
                for (std::size_t c = 0; c < k; ++c) {
                    dv[c] += ge * (static_cast<double>(wk.chains[c](i, e)) - chained);
                    dchain[c](i, e) = static_cast<T>((1 - m) * w[c] * ge);
                }
                if (dx) (*dx)(i, e) = static_cast<T>(m * ge);
            }
            if (dtheta) {
                T* dt = dtheta->data() + i * p_;
                dt[0] = static_cast<T>(dm);
                for (std::size_t c = 0; c < k; ++c) dt[1 + c] = static_cast<T>((1 - m) * dv[c] / sum);
            }
        }
        // each chain backwards, position by position
        batch xin, gin, raw, dop, dxin;
        for (std::size_t c = 0; c < k; ++c) {
            for (std::size_t jj = depth; jj-- > 0;) {
                for (std::size_t op = 0; op < ops_.size(); ++op) {
                    const auto rows = rows_at(theta, c, jj, op);
                    if (rows.empty()) continue;
                    gather(wk.inputs[c * depth + jj], rows, xin);
                    gather(dchain[c], rows, gin);
                    gather_raw(theta, rows, c, jj, op, raw);
                    // the gradient a chain's first position would pass on reaches only x
                    const bool input = jj > 0 || dx;
                    ops_[op].vjp(xin, raw, gin, dtheta ? &dop : nullptr, input ? &dxin : nullptr);
                    if (dtheta) {
                        const std::size_t q = ops_[op].num_params();
                        for (std::size_t r = 0; r < rows.size(); ++r) {
                            T* du = dtheta->data() + rows[r] * p_ + slot(c, jj) + 1;
                            for (std::size_t a = 0; a < q; ++a) du[a] = static_cast<T>(static_cast<double>(dop(r, a)) * op_scale_[op][a]);
                        }
                    }
                    if (input) scatter(dxin, rows, dchain[c]);
                }
            }
            if (dx) *dx += dchain[c];
        }
    }

    std::vector<any_family<T>> ops_;
    mixture_options opt_;
    std::vector<std::vector<double>> op_identity_, op_scale_;
    std::size_t pmax_ = 0, slot_ = 0, chains_at_ = 0, p_ = 0;
};

}  // namespace advaug
