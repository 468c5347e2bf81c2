// FAB, the Fast Adaptive Boundary attack (Croce and Hein, "Minimally distorted adversarial
// examples with a fast adaptive boundary attack", ICML 2020), under L-infinity or L2:
//   fab()    untargeted: at each step, the class whose linearized decision boundary is nearest;
//   fab_t()  targeted (FAB-T, AutoAttack's member): the boundary towards each of the top
//            n_target_classes other classes in turn.
//
// FAB looks for the smallest perturbation that changes the prediction, not for the highest loss
// in the ball: each step linearizes the boundary f_t(x) - f_y(x) = 0 at the iterate, projects
// both the iterate and the original point onto that hyperplane within the input's box (the
// projections of the paper's section 3), and moves to a mix of the two that leans towards the
// original point (alpha at most alpha_max), overshooting by eta. Once the iterate is
// misclassified, it is recorded if closer than the best so far and pulled back towards the
// original point by beta. A sample counts as broken when the closest misclassified point found is
// within epsilon; the attack returns that point, and x itself for every other sample.
// Constants and the order of the updates follow the authors' implementation
// (github.com/fra31/auto-attack, autoattack/fab_base.py and fab_projections.py, as torchattacks
// 3.5.1 ships it): 100 steps, alpha_max 0.1, eta 1.05, beta 0.9; restarts after the first start
// at a random point at half min(epsilon, best norm found).
//
// advaug differences: the projections run in double, per sample, in raw units (epsilon's units)
// with the domain's box per feature (the reference's box is [0, 1]); a side of the domain that is
// unbounded counts as 1e6 raw units away from the original point; the L-infinity projection
// finds its step by selection instead of a sort (fab_projection_linf); each sample draws its
// random starts from its own stream, as the other attacks do.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "advaug/attacks/apgd.hpp"
#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/detail/margin_losses.hpp"
#include "advaug/attacks/options.hpp"
#include "advaug/detail/random.hpp"

namespace advaug {

namespace detail {

/// The options fab() and fab_t() share: search_attack_options' (n_iter: steps per run;
/// restarts: runs per sample, or per target class for fab_t, after the first from a random
/// point) and alpha_max, eta, beta.
template <class Derived, const char* Name>
class fab_common_options : public search_attack_options<Derived, Name> {
public:
    /// The largest weight of the original point's projection in a step (0.1).
    /// requires: 0 <= alpha_max <= 1.
    Derived& alpha_max(double a) {
        if (!(a >= 0 && a <= 1)) {
            invalid(this->name("alpha_max").c_str(), "alpha_max must be in [0, 1], got ", a);
        }
        alpha_max_ = a;
        return this->self();
    }
    /// The overshoot of a projection step (1.05). requires: finite, >= 1.
    Derived& eta(double e) {
        if (!(std::isfinite(e) && e >= 1)) {
            invalid(this->name("eta").c_str(), "eta must be finite and >= 1, got ", e);
        }
        eta_ = e;
        return this->self();
    }
    /// The pull back towards the original point after a success (0.9). requires: 0 < beta < 1.
    Derived& beta(double b) {
        if (!(b > 0 && b < 1)) invalid(this->name("beta").c_str(), "beta must be in (0, 1), got ", b);
        beta_ = b;
        return this->self();
    }

    double alpha_max() const { return alpha_max_; }
    double eta() const { return eta_; }
    double beta() const { return beta_; }

private:
    double alpha_max_ = 0.1, eta_ = 1.05, beta_ = 0.9;
};

inline constexpr char fab_name[] = "fab";
inline constexpr char fab_t_name[] = "fab_t";

}  // namespace detail

/// FAB (untargeted). Defaults: L-infinity, 100 steps, 1 restart, alpha_max 0.1, eta 1.05,
/// beta 0.9, seed 0.
class fab_options : public detail::fab_common_options<fab_options, detail::fab_name> {};

/// FAB-T. Defaults as fab_options, and 9 target classes (AutoAttack's standard version).
class fab_t_options : public detail::fab_common_options<fab_t_options, detail::fab_t_name> {
public:
    /// The targets are the classes ranked 2nd, 3rd, ... n + 1st by the clean logits; each gets
    /// `restarts` runs. requires: >= 1 (and < the model's classes, checked by fab_t()).
    fab_t_options& n_target_classes(std::size_t n) {
        if (n == 0) {
            detail::invalid("fab_t_options::n_target_classes", "n_target_classes must be >= 1, got ", n);
        }
        n_target_classes_ = n;
        return *this;
    }
    std::size_t n_target_classes() const { return n_target_classes_; }

private:
    std::size_t n_target_classes_ = 9;
};

/// requires: as apgd(); at least 2 classes (fab_t: more than n_target_classes).
/// ensures:  the result has x's shape, stays in the epsilon-ball of the chosen norm (raw units)
///           and in the domain; a sample differs from x only where the result is misclassified;
///           samples misclassified at x are returned unchanged; the same seed gives the same
///           result, for any number of threads.
/// throws:   std::invalid_argument for bad arguments, numeric_error for a non-finite gradient.
template <class M, class X>
requires detail::attack_tensor<X> X fab(const M& model, const X& x, const detail::labels_t<X>& y,
                                        const fab_options& options, attack_workspace<M>& workspace);

template <class M, class X>
requires detail::attack_tensor<X> X fab(const M& model, const X& x, const detail::labels_t<X>& y,
                                        const fab_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return fab(model, x, y, options, workspace);
    } else {
        return x;
    }
}

/// requires: as fab(); y holds the true labels (not targets); the model has more classes than
///           n_target_classes.
/// ensures:  as fab().
template <class M, class X>
requires detail::attack_tensor<X> X fab_t(const M& model, const X& x, const detail::labels_t<X>& y,
                                          const fab_t_options& options, attack_workspace<M>& workspace);

template <class M, class X>
requires detail::attack_tensor<X> X fab_t(const M& model, const X& x, const detail::labels_t<X>& y,
                                          const fab_t_options& options) {
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return fab_t(model, x, y, options, workspace);
    } else {
        return x;
    }
}

namespace detail {

/// The indices of v in ascending order of their values, ties by index (a stable argsort).
inline std::vector<std::size_t> ascending_order(const std::vector<double>& v) {
    std::vector<std::size_t> order(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t c) { return v[a] < v[c]; });
    return order;
}

/// Scratch space of fab_projection_linf, reused across calls (one per thread): the
/// (distance to the box's side, |w_i|) of the coordinates not yet known to be free or saturated.
struct fab_projection_scratch {
    std::vector<std::pair<double, double>> open;
};

/// The point of {z : w.z = b} inside the box [lo, hi] closest to t in the L-infinity norm, as
/// the displacement d (z = t + d); where the hyperplane does not meet the box, the box's corner
/// that moves w.z furthest towards b. The reference's projection_linf for one sample, with the
/// box per feature instead of [0, 1].
///
/// Each coordinate with w_i != 0 moves towards the side of the box that brings w.z towards b
/// (down where the oriented w_i > 0, up where it is < 0), by min(lambda, p_i), p_i its distance
/// to that side; lambda solves h(lambda) = sum_i |w_i| min(p_i, lambda) = |w.t - b|. The
/// reference sorts p and binary-searches the cumulative sums for the piece of h that holds
/// lambda; this finds the same piece by selection (quickselect on p: each round takes the median
/// of the open coordinates, evaluates h there and settles the half on one side of it), in linear
/// expected time instead of a sort per sample and step. The result is the reference's in exact
/// arithmetic; the sums run in another order, so the last bits can differ.
inline void fab_projection_linf(const std::vector<double>& t, const std::vector<double>& w, double b,
                                const std::vector<double>& lo, const std::vector<double>& hi,
                                std::vector<double>& d, fab_projection_scratch& scratch) {
    const std::size_t n = t.size();
    d.assign(n, 0.0);
    double wt = 0;
    for (std::size_t i = 0; i < n; ++i) wt += w[i] * t[i];
    // orient the hyperplane so that t lies on its positive side: w.z must fall by need >= 0
    const double sign = wt - b < 0 ? -1.0 : 1.0;
    const double need = sign * (wt - b);
    auto& open = scratch.open;
    open.clear();
    double total = 0;  // h at lambda = infinity: every coordinate at its side of the box
    for (std::size_t i = 0; i < n; ++i) {
        if (w[i] == 0) continue;
        const double a = std::abs(w[i]);
        const double p = sign * w[i] < 0 ? hi[i] - t[i] : t[i] - lo[i];
        open.emplace_back(p, a);
        total += a * p;
    }
    double lambda = std::numeric_limits<double>::infinity();  // out of reach: the corner
    if (need < total) {
        double saturated = 0;  // sum of |w_i| p_i over the coordinates with p_i <= lambda
        double free_weight = 0;  // sum of |w_i| over those with p_i > lambda
        auto first = open.begin(), last = open.end();
        const auto by_distance = [](const auto& u, const auto& v) { return u.first < v.first; };
        while (first != last) {
            const auto mid = first + (last - first) / 2;
            std::nth_element(first, mid, last, by_distance);
            const double v = mid->first;
            double below = 0, above = 0;  // [first, mid] have p <= v, (mid, last) p >= v
            for (auto k = first; k <= mid; ++k) below += k->second * k->first;
            for (auto k = mid + 1; k < last; ++k) above += k->second;
            if (saturated + below + (free_weight + above) * v > need) {
                free_weight += above + mid->second;  // lambda < v: p >= v moves by lambda
                last = mid;
            } else {
                saturated += below;  // lambda >= v: p <= v moves by p
                first = mid + 1;
            }
        }
        // free_weight > 0 unless rounding made the last pieces' sums reach `need` exactly
        if (free_weight > 0) lambda = std::max((need - saturated) / free_weight, 0.0);
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (w[i] == 0) continue;
        if (sign * w[i] < 0) {
            d[i] = std::min(lambda, hi[i] - t[i]);
        } else {
            d[i] = -std::min(lambda, t[i] - lo[i]);
        }
    }
}

/// The same in the L2 norm: the reference's projection_l2 for one sample, box per feature.
inline void fab_projection_l2(const std::vector<double>& t, std::vector<double> w, double b,
                              const std::vector<double>& lo, const std::vector<double>& hi,
                              std::vector<double>& d) {
    const std::size_t n = t.size();
    d.assign(n, 0.0);
    if (n == 0) return;
    constexpr double big = 1e12, tiny = 1e-8;
    double c = -b;
    for (std::size_t i = 0; i < n; ++i) c += w[i] * t[i];
    if (c < 0) {
        for (double& v : w) v = -v;
        c = -c;
    }
    // r_i: the step along -w at which coordinate i reaches its side of the box.
    std::vector<double> r(n);
    for (std::size_t i = 0; i < n; ++i) {
        if (std::abs(w[i]) < tiny) {
            r[i] = big;
            continue;
        }
        const double v = std::clamp(std::max((t[i] - lo[i]) / w[i], (t[i] - hi[i]) / w[i]), -big, big);
        r[i] = v == -big ? big : v;
    }
    const std::vector<std::size_t> order = ascending_order(r);
    std::vector<double> rs(n), rs2(n, 0.0), ws(n);
    for (std::size_t k = 0; k < n; ++k) rs[k] = r[order[k]];
    for (std::size_t k = 0; k + 1 < n; ++k) rs2[k] = rs[k + 1];
    for (double& v : rs) v = v == big ? 0.0 : v;
    for (double& v : rs2) v = v == big ? 0.0 : v;
    double w5 = 0;
    for (double v : w) w5 += v * v;
    double cum = 0;
    for (std::size_t k = 0; k < n; ++k) {
        cum += w[order[k]] * w[order[k]];
        ws[k] = w5 - cum;
    }
    double dw = 0;
    for (std::size_t i = 0; i < n; ++i) {
        d[i] = std::abs(w[i]) > tiny ? -(r[i] * w[i]) : 0.0;
        dw += d[i] * w[i];
    }
    // s[k]: w.d when the step is rs[k] (coordinates before k saturated)
    std::vector<double> s(n + 1);
    s[0] = -w5 * rs[0];
    double acc = 0;
    for (std::size_t k = 0; k < n; ++k) {
        acc += (-rs2[k] + rs[k]) * ws[k];
        s[k + 1] = acc - w5 * rs[0];
    }
    const bool unconstrained = s[0] + c < 0;  // reached before any coordinate saturates
    const bool unreachable = dw + c > 0;      // not reached even with every one saturated
    if (unconstrained) {
        const double alpha = c / w5;
        for (std::size_t i = 0; i < n; ++i) d[i] = -alpha * w[i];
    } else if (!unreachable) {
        double lb = 0, ub = static_cast<double>(n - 1);
        const auto iterations = static_cast<std::size_t>(std::ceil(std::log2(static_cast<double>(n))));
        for (std::size_t it = 0; it < iterations; ++it) {
            const double mid = std::floor((lb + ub) / 2);
            if (s[static_cast<std::size_t>(mid)] + c > 0) {
                lb = mid;
            } else {
                ub = mid;
            }
        }
        const auto k = static_cast<std::size_t>(lb);
        double alpha = ws[k] == 0 ? 0.0 : (s[k] + c) / ws[k] + rs[k];
        for (std::size_t i = 0; i < n; ++i) {
            if (!(alpha > r[i])) d[i] = -alpha * w[i];
        }
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (!(std::abs(w[i]) > tiny)) d[i] = 0;
    }
}

inline double fab_norm(advaug::norm n, const std::vector<double>& d) {
    double v = 0;
    for (double e : d) v = n == advaug::norm::linf ? std::max(v, std::abs(e)) : v + e * e;
    return n == advaug::norm::linf ? v : std::sqrt(v);
}

struct fab_params {
    double eps = 0;
    advaug::norm n = advaug::norm::linf;
    std::size_t n_iter = 100;
    double alpha_max = 0.1, eta = 1.05, beta = 0.9;
};

/// One FAB run on every sample of x0 (model units). targets[s] is the class whose boundary
/// sample s crosses, or num_classes for the nearest boundary (untargeted). Returns, per sample,
/// the norm (raw units) of the closest misclassified point found (infinity if none) and that
/// point in `adv`. With `random_start`, the run starts at a random point at half
/// min(eps, best[s]) from x0 (the reference's restarts after the first).
template <class M, class T, std::size_t R>
void fab_single_run(const char* fn, loss_gradient<M>& oracle, const tensor<T, R>& x0,
                    const label_vector& y, const std::vector<std::size_t>& targets,
                    const resolved_domain<T>& dom, const fab_params& p, bool random_start,
                    std::uint64_t key, const std::vector<std::size_t>& ids, std::vector<double>& best,
                    tensor<T, R>& adv) {
    const std::size_t n = x0.shape()[0], d_size = dom.sample_size;
    const std::size_t classes = oracle.model.num_classes();
    // Raw units relative to the mean (raw - mean = model * std): norms are epsilon's, and
    // the box is the domain's.
    auto to_raw = [&](const T* xs, std::vector<double>& out) {
        out.resize(d_size);
        for (std::size_t d = 0; d < d_size; ++d) out[d] = static_cast<double>(xs[d]) * dom.raw_per_model[d];
    };
    // The box: the domain's, one for every sample, unless a side is unbounded, where each
    // sample's box ends 1e6 raw units from its own original point.
    bool bounded = true;
    for (std::size_t d = 0; d < d_size; ++d) {
        bounded = bounded && std::isfinite(static_cast<double>(dom.lo[d]) * dom.raw_per_model[d]) &&
                  std::isfinite(static_cast<double>(dom.hi[d]) * dom.raw_per_model[d]);
    }
    std::vector<std::vector<double>> orig(n), cur(n), lo(bounded ? 1 : n), hi(bounded ? 1 : n);
    const auto box = [&](std::size_t s) { return bounded ? std::size_t{0} : s; };
    for (std::size_t s = 0; s < n; ++s) {
        to_raw(x0.data() + s * d_size, orig[s]);
        if (s == box(s)) {
            lo[s].resize(d_size);
            hi[s].resize(d_size);
            for (std::size_t d = 0; d < d_size; ++d) {
                const double l = static_cast<double>(dom.lo[d]) * dom.raw_per_model[d];
                const double h = static_cast<double>(dom.hi[d]) * dom.raw_per_model[d];
                lo[s][d] = std::isfinite(l) ? l : orig[s][d] - 1e6;
                hi[s][d] = std::isfinite(h) ? h : orig[s][d] + 1e6;
            }
        }
        const auto& lo_s = lo[box(s)];
        const auto& hi_s = hi[box(s)];
        cur[s] = orig[s];
        if (random_start) {
            const std::uint64_t k = mix_seed(key, ids[s]);
            std::vector<double> dir(d_size);
            double size = 0;
            for (std::size_t d = 0; d < d_size; ++d) {
                if (p.n == advaug::norm::linf) {
                    dir[d] = counter_uniform(k, d, -1.0, 1.0);
                    size = std::max(size, std::abs(dir[d]));
                } else {
                    dir[d] = counter_normal(k, d);
                    size += dir[d] * dir[d];
                }
            }
            if (p.n != advaug::norm::linf) size = std::sqrt(size);
            const double radius = std::min(best[s], p.eps);
            for (std::size_t d = 0; d < d_size; ++d) {
                const double v = orig[s][d] + (size > 0 ? radius * dir[d] / size * 0.5 : 0.0);
                cur[s][d] = std::clamp(v, lo_s[d], hi_s[d]);
            }
        }
    }
    tensor<T, R> x = x0;
    auto store = [&](const std::vector<double>& raw, T* out) {  // raw units into model units
        for (std::size_t d = 0; d < d_size; ++d) {
            out[d] = std::clamp(static_cast<T>(raw[d] * dom.model_per_raw[d]), dom.lo[d], dom.hi[d]);
        }
    };
    for (std::size_t s = 0; s < n; ++s) store(cur[s], x.data() + s * d_size);

    std::vector<std::vector<double>> w(n, std::vector<double>(d_size));
    std::vector<double> f(n), dist(n);
    tensor<T, R> grad;
    // fab_t: one backward pass, each row towards its own target; fab: one per class, each row
    // towards that class, keeping the nearest boundary (targets are all set or none).
    const bool targeted = targets[0] < classes;
    bool at_x = false;  // fab: the oracle's forward pass (cache and logits) is x's
    for (std::size_t it = 0; it < p.n_iter; ++it) {
        // The boundary to project on: f = z_t - z_y and its gradient w (raw units).
        const auto set_dlogits = [&](std::size_t j, std::size_t first, std::size_t count) {
            for (std::size_t s = first; s < first + count; ++s) {
                T* g = oracle.dlogits.data() + s * classes;
                std::fill_n(g, classes, T(0));
                const std::size_t ys = static_cast<std::size_t>(y(s)), b = targeted ? targets[s] : j;
                if (b == ys) continue;
                g[b] = T(1);
                g[ys] = T(-1);
            }
        };
        // The last iteration's pass at x serves this one where it kept a record (one pass);
        // fab_t takes its logits and gradient anew otherwise, in passes where the model has them.
        const bool reuse = at_x && oracle.has_record();
        if (targeted && !reuse) {
            oracle.gradient(x, [&](std::size_t first, std::size_t count) { set_dlogits(0, first, count); }, grad);
        } else if (!at_x) {
            oracle.forward(x);
        }
        const auto& logits = oracle.logits;  // input_gradient leaves them as they are
        std::fill(dist.begin(), dist.end(), std::numeric_limits<double>::infinity());
        for (std::size_t j = 0; j < (targeted ? 1 : classes); ++j) {
            const auto boundary = [&](std::size_t s) { return targeted ? targets[s] : j; };
            const auto crosses = [&](std::size_t s) { return boundary(s) != static_cast<std::size_t>(y(s)); };
            bool any = false;
            for (std::size_t s = 0; s < n && !any; ++s) any = crosses(s);
            if (!any) continue;
            if (!targeted || reuse) {
                oracle.dlogits.resize({n, classes});
                set_dlogits(j, 0, n);
                // the contract: input_gradient leaves the forward pass's record intact, so
                // every class's backward pass reuses the one forward pass
                oracle.backward(oracle.dlogits, grad);
            }
            for (std::size_t s = 0; s < n; ++s) {
                if (!crosses(s)) continue;
                const std::size_t ys = static_cast<std::size_t>(y(s)), c = boundary(s);
                const T* g = grad.data() + s * d_size;
                double dual = 0;
                for (std::size_t d = 0; d < d_size; ++d) {
                    const double v = static_cast<double>(g[d]) * dom.model_per_raw[d];
                    if (!std::isfinite(v)) {
                        throw numeric_error(concat(fn, "(): the gradient of logit ", c, " - logit ", ys,
                                                   " is not finite at sample ", s));
                    }
                    dual = p.n == advaug::norm::linf ? dual + std::abs(v) : dual + v * v;
                }
                if (p.n != advaug::norm::linf) dual = std::sqrt(dual);
                const double fc = static_cast<double>(logits(s, c)) - static_cast<double>(logits(s, ys));
                const double dc = std::abs(fc) / (1e-12 + dual);
                if (dc < dist[s]) {  // strictly: ties keep the lower class, as argmin does
                    dist[s] = dc;
                    f[s] = fc;
                    for (std::size_t d = 0; d < d_size; ++d) {
                        w[s][d] = static_cast<double>(g[d]) * dom.model_per_raw[d];
                    }
                }
            }
        }
        // Project the iterate and the original point, and step.
        parallel_for(n, 1, [&](std::size_t first, std::size_t last, std::size_t) {
            std::vector<double> d1, d2;
            fab_projection_scratch scratch;
            for (std::size_t s = first; s < last; ++s) {
                if (!std::isfinite(dist[s])) continue;
                const auto& lo_s = lo[box(s)];
                const auto& hi_s = hi[box(s)];
                double b = -f[s];
                for (std::size_t d = 0; d < d_size; ++d) b += w[s][d] * cur[s][d];
                if (p.n == advaug::norm::linf) {
                    fab_projection_linf(cur[s], w[s], b, lo_s, hi_s, d1, scratch);
                    fab_projection_linf(orig[s], w[s], b, lo_s, hi_s, d2, scratch);
                } else {
                    fab_projection_l2(cur[s], w[s], b, lo_s, hi_s, d1);
                    fab_projection_l2(orig[s], w[s], b, lo_s, hi_s, d2);
                }
                const double a1 = std::max(fab_norm(p.n, d1), 1e-8), a2 = std::max(fab_norm(p.n, d2), 1e-8);
                const double alpha = std::min(std::max(a1 / (a1 + a2), 0.0), p.alpha_max);
                for (std::size_t d = 0; d < d_size; ++d) {
                    const double v = (cur[s][d] + p.eta * d1[d]) * (1 - alpha) + (orig[s][d] + d2[d] * p.eta) * alpha;
                    cur[s][d] = std::clamp(v, lo_s[d], hi_s[d]);
                }
                store(cur[s], x.data() + s * d_size);
            }
        });
        // Misclassified iterates: keep the closest, then pull back towards x0. Where none was,
        // x is unchanged and this pass serves the next step too.
        if (targeted) {
            oracle.predict(x);
        } else {
            oracle.forward(x);
        }
        at_x = true;
        for (std::size_t s = 0; s < n; ++s) {
            if (predicted_class(oracle.logits.data() + s * classes, classes) == static_cast<std::size_t>(y(s))) {
                continue;
            }
            at_x = false;
            T* xs = x.data() + s * d_size;
            const T* x0s = x0.data() + s * d_size;
            double norm = 0;
            for (std::size_t d = 0; d < d_size; ++d) {
                const double e = (static_cast<double>(xs[d]) - static_cast<double>(x0s[d])) * dom.raw_per_model[d];
                norm = p.n == advaug::norm::linf ? std::max(norm, std::abs(e)) : norm + e * e;
            }
            if (p.n != advaug::norm::linf) norm = std::sqrt(norm);
            if (norm < best[s]) {
                best[s] = norm;
                std::copy_n(xs, d_size, adv.data() + s * d_size);
            }
            for (std::size_t d = 0; d < d_size; ++d) cur[s][d] = orig[s][d] + (cur[s][d] - orig[s][d]) * p.beta;
            store(cur[s], xs);
        }
    }
}

/// fab() and fab_t(): runs (restarts, target classes) on the samples not broken yet.
/// `sample_ids` name x's rows for the random streams (autoattack() passes the rows' places in
/// its own batch); null means 0, 1, ...
template <class M, class T, std::size_t R, class Options>
tensor<T, R> fab_attack(const char* fn, const M& model, const tensor<T, R>& x, const label_vector& y,
                        const Options& options, bool targeted, std::size_t n_targets,
                        attack_workspace<M>& workspace, const std::vector<std::size_t>* sample_ids = nullptr) {
    fab_params p;
    p.eps = options.epsilon();
    const auto dom = check_attack_inputs(fn, model, x, y, options.domain());
    const std::size_t classes = model.num_classes();
    if (classes < 2) invalid(fn, "needs at least 2 classes, the model has ", classes);
    if (targeted && n_targets >= classes) {
        invalid(fn, "n_target_classes = ", n_targets, " needs more classes than the model's ", classes,
                " (at most num_classes - 1 = ", classes - 1, ")");
    }
    p.n = options.norm();
    p.n_iter = options.n_iter();
    p.alpha_max = options.alpha_max();
    p.eta = options.eta();
    p.beta = options.beta();

    tensor<T, R> out = x;
    if (p.eps == 0) return out;
    const std::size_t n = x.shape()[0], d_size = dom.sample_size;
    std::vector<std::size_t> all_ids(n);
    for (std::size_t s = 0; s < n; ++s) all_ids[s] = sample_ids ? (*sample_ids)[s] : s;

    loss_gradient<M> oracle(fn, model, &workspace);
    std::vector<std::size_t> alive = correctly_classified(oracle, x, y);
    const std::size_t rounds = targeted ? n_targets : 1;
    std::vector<std::size_t> order;
    for (std::size_t t = 0; t < rounds; ++t) {
        for (std::size_t r = 0; r < options.restarts() && !alive.empty(); ++r) {
            const auto xs = gather_rows(x, alive);
            const auto ys = gather_labels(y, alive);
            std::vector<std::size_t> ids(alive.size()), targets(alive.size(), classes);
            for (std::size_t i = 0; i < alive.size(); ++i) ids[i] = all_ids[alive[i]];
            if (targeted) {
                // the class ranked t + 2 by the clean logits, as apgd_t
                oracle.predict(xs);
                for (std::size_t i = 0; i < alive.size(); ++i) {
                    sorted_classes(oracle.logits.data() + i * classes, classes, order);
                    targets[i] = order[t + 1];
                }
            }
            const std::uint64_t key = mix_seed(options.seed(), targeted ? 0x6661622d74ULL : 0x666162ULL,
                                               t * options.restarts() + r);
            std::vector<double> best(alive.size(), std::numeric_limits<double>::infinity());
            tensor<T, R> adv = xs;
            fab_single_run(fn, oracle, xs, ys, targets, dom, p, r > 0, key, ids, best, adv);
            std::vector<std::size_t> still;
            for (std::size_t i = 0; i < alive.size(); ++i) {
                const std::size_t s = alive[i];
                if (best[i] <= p.eps) {
                    std::copy_n(adv.data() + i * d_size, d_size, out.data() + s * d_size);
                } else {
                    still.push_back(s);
                }
            }
            alive = std::move(still);
        }
    }
    return out;
}

}  // namespace detail

template <class M, class X>
requires detail::attack_tensor<X> X fab(const M& model, const X& x, const detail::labels_t<X>& y,
                                        const fab_options& options, attack_workspace<M>& workspace) {
    if constexpr (detail::check_host_attack<M, X>()) {
        return detail::fab_attack("fab", model, x, y, options, false, 0, workspace);
    } else {
        return x;
    }
}

template <class M, class X>
requires detail::attack_tensor<X> X fab_t(const M& model, const X& x, const detail::labels_t<X>& y,
                                          const fab_t_options& options, attack_workspace<M>& workspace) {
    if constexpr (detail::check_host_attack<M, X>()) {
        return detail::fab_attack("fab_t", model, x, y, options, true, options.n_target_classes(),
                                  workspace);
    } else {
        return x;
    }
}

}  // namespace advaug
