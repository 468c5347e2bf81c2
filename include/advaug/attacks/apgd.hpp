// APGD, Auto-PGD (Croce and Hein, "Reliable evaluation of adversarial robustness with an
// ensemble of diverse parameter-free attacks", ICML 2020), under L-infinity or L2:
//   apgd()    maximizes the cross-entropy (APGD-CE) or the DLR loss (APGD-DLR);
//   apgd_t()  the targeted DLR loss towards each of the top n_target_classes other classes
//             in turn (APGD-T).
//
// PGD with momentum 0.75 and a step size that starts at 2 epsilon and is halved, per sample,
// at checkpoints w_j = ceil(p_j n_iter), p_0 = 0, p_1 = 0.22,
// p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), when (1) the loss rose in at most
// rho = 75% of the steps since the last checkpoint, or (2) the step was not halved at the last
// checkpoint and the best loss has not improved since; a halving restarts from the best point.
// Constants and the order of the updates follow the authors' implementation
// (github.com/fra31/auto-attack, autoattack/autopgd_base.py, APGDAttack.attack_single_run).
//
// Only samples the model classifies correctly are attacked, and each restart (or target class)
// attacks only those not broken yet. The result holds, per sample, the last
// misclassified iterate found, or for a sample never broken the iterate of lowest margin
// z_y - max_{j != y} z_j over all runs; a sample misclassified at x is returned unchanged.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/detail/margin_losses.hpp"
#include "advaug/attacks/options.hpp"
#include "advaug/detail/random.hpp"

namespace advaug {

/// The loss that apgd() maximizes.
enum class apgd_loss {
    ce,   ///< cross-entropy (APGD-CE)
    dlr,  ///< difference of logits ratio (APGD-DLR); needs at least 3 classes
};

namespace detail {

/// The options apgd() and apgd_t() share: search_attack_options' and rho, eot_iter.
template <class Derived, const char* Name>
class apgd_common_options : public search_attack_options<Derived, Name> {
public:
    /// The fraction of rising steps below which the step size is halved (0.75).
    /// requires: 0 < rho < 1.
    Derived& rho(double r) {
        if (!(r > 0 && r < 1)) invalid(this->name("rho").c_str(), "rho must be in (0, 1), got ", r);
        rho_ = r;
        return this->self();
    }
    /// Gradients averaged per step, for models with randomness (expectation over
    /// transformation; AutoAttack's "rand" version uses 20). requires: >= 1.
    Derived& eot_iter(std::size_t k) {
        if (k == 0) invalid(this->name("eot_iter").c_str(), "eot_iter must be >= 1, got ", k);
        eot_iter_ = k;
        return this->self();
    }

    double rho() const { return rho_; }
    std::size_t eot_iter() const { return eot_iter_; }

private:
    double rho_ = 0.75;
    std::size_t eot_iter_ = 1;
};

inline constexpr char apgd_name[] = "apgd";
inline constexpr char apgd_t_name[] = "apgd_t";

}  // namespace detail

/// APGD-CE / APGD-DLR. Defaults: L-infinity, 100 iterations, 1 restart, rho 0.75, one
/// gradient per step, seed 0, cross-entropy.
class apgd_options : public detail::apgd_common_options<apgd_options, detail::apgd_name> {
public:
    apgd_options& loss(apgd_loss l) {
        loss_ = l;
        return *this;
    }
    apgd_loss loss() const { return loss_; }

private:
    apgd_loss loss_ = apgd_loss::ce;
};

/// APGD-T. Defaults as apgd_options, and 9 target classes (AutoAttack's standard version).
class apgd_t_options : public detail::apgd_common_options<apgd_t_options, detail::apgd_t_name> {
public:
    /// The targets are the classes ranked 2nd, 3rd, ... n + 1st by the clean logits; each
    /// gets `restarts` runs. requires: >= 1 (and < the model's classes, checked by apgd_t()).
    apgd_t_options& n_target_classes(std::size_t n) {
        if (n == 0) {
            detail::invalid("apgd_t_options::n_target_classes",
                            "n_target_classes must be >= 1, got ", n);
        }
        n_target_classes_ = n;
        return *this;
    }
    std::size_t n_target_classes() const { return n_target_classes_; }

private:
    std::size_t n_target_classes_ = 9;
};

/// requires: as fgsm(); X a host tensor; for apgd_loss::dlr at least 3 classes.
/// ensures:  the result has x's shape, stays in the epsilon-ball of the chosen norm (raw units)
///           and in the domain; samples misclassified at x are returned unchanged; epsilon == 0
///           returns x; the same seed gives the same result, for any number of threads, and a
///           sample's random start does not depend on the other samples of the batch.
/// throws:   std::invalid_argument for bad arguments, numeric_error for a non-finite gradient.
template <class M, class X>
requires detail::attack_tensor<X> X apgd(const M& model, const X& x, const detail::labels_t<X>& y,
                                         const apgd_options& options,
                                         attack_workspace<M>& workspace);

/// The same with buffers of its own.
template <class M, class X>
requires detail::attack_tensor<X> X apgd(const M& model, const X& x, const detail::labels_t<X>& y,
                                         const apgd_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return apgd(model, x, y, options, workspace);
    } else {
        return x;
    }
}

/// requires: as apgd(); y holds the true labels (not targets); the model has at least 4
///           classes and more than n_target_classes.
/// ensures:  as apgd().
template <class M, class X>
requires detail::attack_tensor<X> X apgd_t(const M& model, const X& x, const detail::labels_t<X>& y,
                                           const apgd_t_options& options,
                                           attack_workspace<M>& workspace);

template <class M, class X>
requires detail::attack_tensor<X> X apgd_t(const M& model, const X& x, const detail::labels_t<X>& y,
                                           const apgd_t_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return apgd_t(model, x, y, options, workspace);
    } else {
        return x;
    }
}

namespace detail {

enum class apgd_objective { ce, dlr, dlr_targeted };

struct apgd_params {
    double eps = 0;
    advaug::norm n = advaug::norm::linf;
    std::size_t n_iter = 100;
    double rho = 0.75;
    std::size_t eot_iter = 1;
    apgd_objective objective = apgd_objective::ce;
};

/// The checkpoint lengths of the reference implementation (init_hyperparam): the first
/// interval is 0.22 n_iter, each next one 0.03 n_iter shorter, never below 0.06 n_iter.
struct apgd_checkpoints {
    explicit apgd_checkpoints(std::size_t n_iter)
        : first(at_least_one(0.22, n_iter)),
          shortest(at_least_one(0.06, n_iter)),
          decrease(at_least_one(0.03, n_iter)) {}
    static std::size_t at_least_one(double f, std::size_t n) {
        return std::max<std::size_t>(1, static_cast<std::size_t>(f * static_cast<double>(n)));
    }
    std::size_t next(std::size_t k) const {
        return k > shortest + decrease ? k - decrease : shortest;
    }
    std::size_t first, shortest, decrease;
};

/// What one run leaves per sample: the misclassified iterate if one was found, else the
/// iterate of highest loss, and the margin at it.
template <class T, std::size_t R>
struct apgd_run_result {
    tensor<T, R> adv;
    std::vector<char> fooled;
    std::vector<double> margin;
};

/// The random start of the reference: L-inf, uniform noise rescaled so that its largest entry
/// is epsilon; L2, a Gaussian direction of length epsilon; raw units, then into the domain.
/// Sample s draws from its own counter-based stream mix_seed(key, ids[s]).
template <class T, std::size_t R>
void apgd_start(tensor<T, R>& x, const tensor<T, R>& x0, const resolved_domain<T>& dom,
                advaug::norm n, double eps, std::uint64_t key,
                const std::vector<std::size_t>& ids) {
    const std::size_t d_size = dom.sample_size;
    resize_like(x, x0);
    parallel_for(x0.shape()[0], rows_per_chunk(d_size),
                 [&](std::size_t first, std::size_t last, std::size_t) {
                     std::vector<double> t(d_size);
                     for (std::size_t s = first; s < last; ++s) {
                         const std::uint64_t k = mix_seed(key, ids[s]);
                         double size = 0;
                         for (std::size_t d = 0; d < d_size; ++d) {
                             if (n == advaug::norm::linf) {
                                 t[d] = counter_uniform(k, d, -1.0, 1.0);
                                 size = std::max(size, std::abs(t[d]));
                             } else {
                                 t[d] = counter_normal(k, d);
                                 size += t[d] * t[d];
                             }
                         }
                         if (n == advaug::norm::l2) size = std::sqrt(size);
                         const double f = eps / (size + 1e-12);
                         T* xs = x.data() + s * d_size;
                         const T* x0s = x0.data() + s * d_size;
                         for (std::size_t d = 0; d < d_size; ++d) {
                             xs[d] = std::clamp(
                                 x0s[d] + static_cast<T>(f * t[d] * dom.model_per_raw[d]),
                                 dom.lo[d], dom.hi[d]);
                         }
                     }
                 });
}

/// One APGD step with momentum `a` (1 on the first step), per sample step sizes, in place:
///   z = P(x + step * dir(g)),  x_new = P(x + a (z - x) + (1 - a) (x - x_old)),  x_old = x,
/// P the projection onto the ball (raw units) and then into the domain, dir the sign (L-inf)
/// or the raw-unit L2-normalized gradient. ids[s] names row s in messages.
template <class T, std::size_t R>
void apgd_step(const char* fn, tensor<T, R>& x, tensor<T, R>& x_old, const tensor<T, R>& x0,
               const tensor<T, R>& g, const resolved_domain<T>& dom, advaug::norm n,
               const std::vector<double>& step, double eps, double a,
               const std::vector<std::size_t>& ids) {
    const std::size_t d_size = dom.sample_size;
    parallel_for(
        x.shape()[0], rows_per_chunk(d_size),
        [&](std::size_t first, std::size_t last, std::size_t) {
            std::vector<double> z(n == advaug::norm::l2 ? d_size : 0);
            for (std::size_t s = first; s < last; ++s) {
                T* xs = x.data() + s * d_size;
                T* olds = x_old.data() + s * d_size;
                const T* x0s = x0.data() + s * d_size;
                const T* gs = g.data() + s * d_size;
                for (std::size_t d = 0; d < d_size; ++d) {
                    if (!std::isfinite(gs[d]))  // named by its place in the caller's batch
                        non_finite_gradient(fn, ids[s] * d_size + d, d_size, gs[d]);
                }
                if (n == advaug::norm::linf) {
                    const T st = static_cast<T>(step[s]), ta = static_cast<T>(a);
                    for (std::size_t d = 0; d < d_size; ++d) {
                        const T e = static_cast<T>(eps) * dom.model_per_raw[d];
                        auto project = [&](T v) {
                            return std::clamp(std::clamp(v, x0s[d] - e, x0s[d] + e), dom.lo[d],
                                              dom.hi[d]);
                        };
                        const T zd = project(xs[d] + st * dom.model_per_raw[d] *
                                                         backend::element::sign(gs[d]));
                        const T v =
                            project(xs[d] + ta * (zd - xs[d]) + (T(1) - ta) * (xs[d] - olds[d]));
                        olds[d] = xs[d];
                        xs[d] = v;
                    }
                    continue;
                }
                // L2, in raw units: delta_raw = (x - x0) * std, grad_raw = g / std.
                double gnorm = 0;
                for (std::size_t d = 0; d < d_size; ++d) {
                    const double gr = static_cast<double>(gs[d]) * dom.model_per_raw[d];
                    gnorm += gr * gr;
                }
                const double gf = step[s] / (std::sqrt(gnorm) + 1e-12);
                // z: the projected plain step, in model units
                double unorm = 0;
                for (std::size_t d = 0; d < d_size; ++d) {
                    z[d] = static_cast<double>(xs[d] - x0s[d]) * dom.raw_per_model[d] +
                           gf * static_cast<double>(gs[d]) * dom.model_per_raw[d];
                    unorm += z[d] * z[d];
                }
                unorm = std::sqrt(unorm);
                double f = std::min(eps, unorm) / (unorm + 1e-12);
                for (std::size_t d = 0; d < d_size; ++d) {
                    z[d] = static_cast<double>(
                        std::clamp(x0s[d] + static_cast<T>(f * z[d] * dom.model_per_raw[d]),
                                   dom.lo[d], dom.hi[d]));
                }
                // the momentum combination, then projected again
                double wnorm = 0;
                for (std::size_t d = 0; d < d_size; ++d) {
                    const double xd = xs[d];
                    const double v =
                        xd + a * (z[d] - xd) + (1 - a) * (xd - static_cast<double>(olds[d]));
                    z[d] = (v - static_cast<double>(x0s[d])) * dom.raw_per_model[d];
                    wnorm += z[d] * z[d];
                }
                wnorm = std::sqrt(wnorm);
                f = std::min(eps, wnorm) / (wnorm + 1e-12);
                for (std::size_t d = 0; d < d_size; ++d) {
                    olds[d] = xs[d];
                    xs[d] = std::clamp(x0s[d] + static_cast<T>(f * z[d] * dom.model_per_raw[d]),
                                       dom.lo[d], dom.hi[d]);
                }
            }
        });
}

/// The loss of every sample at x and its input gradient (averaged over eot_iter passes),
/// leaving the last pass's logits in oracle.logits.
template <class M, class T, std::size_t R>
void apgd_evaluate(loss_gradient<M>& oracle, const tensor<T, R>& x, const label_vector& y,
                   const std::vector<std::size_t>& targets, const apgd_params& p,
                   std::vector<double>& loss, tensor<T, R>& grad) {
    const std::size_t n = x.shape()[0];
    loss.resize(n);
    for (std::size_t e = 0; e < p.eot_iter; ++e) {
        oracle.gradient(x, [&](std::size_t first, std::size_t count) {  // on any thread
            const std::size_t c = oracle.logits.shape()[1];
            thread_local std::vector<std::size_t> order;  // sorted_classes' scratch, kept
            for (std::size_t s = first; s < first + count; ++s) {
                const T* z = oracle.logits.data() + s * c;
                T* g = oracle.dlogits.data() + s * c;
                const auto ys = static_cast<std::size_t>(y(s));
                if (p.objective == apgd_objective::ce) {
                    loss[s] = ce_row(z, c, ys, g);
                } else {
                    sorted_classes(z, c, order);
                    loss[s] = p.objective == apgd_objective::dlr
                                  ? dlr_row(z, c, ys, order, g)
                                  : dlr_targeted_row(z, c, ys, targets[s], order, g);
                }
            }
        }, oracle.grad);
        if (e == 0) {
            copy_tensor(grad, oracle.grad);
        } else {
            grad += oracle.grad;
        }
    }
    if (p.eot_iter > 1) grad /= static_cast<T>(p.eot_iter);
}

/// One APGD run on every sample of x0 (Algorithm 1 of the paper).
template <class M, class T, std::size_t R>
apgd_run_result<T, R> apgd_single_run(const char* fn, loss_gradient<M>& oracle,
                                      const tensor<T, R>& x0, const label_vector& y,
                                      const std::vector<std::size_t>& targets,
                                      const resolved_domain<T>& dom, const apgd_params& p,
                                      std::uint64_t key, const std::vector<std::size_t>& ids) {
    const std::size_t n = x0.shape()[0], d_size = dom.sample_size;
    auto row = [d_size](auto& t, std::size_t s) { return t.data() + s * d_size; };
    auto copy_row = [&](const tensor<T, R>& from, tensor<T, R>& to, std::size_t s) {
        std::copy_n(from.data() + s * d_size, d_size, row(to, s));
    };

    tensor<T, R> x, grad;
    apgd_start(x, x0, dom, p.n, p.eps, key, ids);
    std::vector<double> loss;
    apgd_evaluate(oracle, x, y, targets, p, loss, grad);

    apgd_run_result<T, R> out{x, std::vector<char>(n, 0), std::vector<double>(n)};
    tensor<T, R> x_best = x, grad_best = grad, x_old = x;
    std::vector<double> loss_best = loss, best_margin(n), prev_loss = loss;
    const std::size_t c = oracle.logits.shape()[1];
    auto record = [&](std::size_t s) {  // after an evaluation at x: the fooled iterate
        const T* z = oracle.logits.data() + s * c;
        const auto ys = static_cast<std::size_t>(y(s));
        if (predicted_class(z, c) != ys) {
            out.fooled[s] = 1;
            copy_row(x, out.adv, s);
            out.margin[s] = margin_row(z, c, ys);
        }
        return margin_row(z, c, ys);
    };
    for (std::size_t s = 0; s < n; ++s) best_margin[s] = record(s);

    std::vector<double> step(n, 2.0 * p.eps), best_at_check = loss_best;
    std::vector<char> reduced_at_check(n, 1);
    std::vector<std::size_t> rises(n, 0);
    const apgd_checkpoints schedule(p.n_iter);
    std::size_t interval = schedule.first, since_check = 0;
    for (std::size_t i = 0; i < p.n_iter; ++i) {
        apgd_step(fn, x, x_old, x0, grad, dom, p.n, step, p.eps, i > 0 ? 0.75 : 1.0, ids);
        apgd_evaluate(oracle, x, y, targets, p, loss, grad);
        for (std::size_t s = 0; s < n; ++s) {
            const double m = record(s);
            if (loss[s] > prev_loss[s]) ++rises[s];
            prev_loss[s] = loss[s];
            if (loss[s] > loss_best[s]) {
                loss_best[s] = loss[s];
                best_margin[s] = m;
                copy_row(x, x_best, s);
                copy_row(grad, grad_best, s);
            }
        }
        if (++since_check < interval) continue;
        for (std::size_t s = 0; s < n; ++s) {
            const bool oscillates =
                static_cast<double>(rises[s]) <= p.rho * static_cast<double>(interval);
            const bool stalled = !reduced_at_check[s] && best_at_check[s] >= loss_best[s];
            const bool reduce = oscillates || stalled;
            reduced_at_check[s] = reduce;
            best_at_check[s] = loss_best[s];
            rises[s] = 0;
            if (reduce) {
                step[s] /= 2.0;
                copy_row(x_best, x, s);
                copy_row(grad_best, grad, s);
            }
        }
        interval = schedule.next(interval);
        since_check = 0;
    }
    for (std::size_t s = 0; s < n; ++s) {
        if (out.fooled[s]) continue;
        copy_row(x_best, out.adv, s);
        out.margin[s] = best_margin[s];
    }
    return out;
}

/// The samples of x that the model classifies correctly.
template <class M, class T, std::size_t R>
std::vector<std::size_t> correctly_classified(loss_gradient<M>& oracle, const tensor<T, R>& x,
                                              const label_vector& y) {
    oracle.predict(x);
    const std::size_t c = oracle.logits.shape()[1];
    std::vector<std::size_t> idx;
    for (std::size_t s = 0; s < x.shape()[0]; ++s) {
        if (predicted_class(oracle.logits.data() + s * c, c) == static_cast<std::size_t>(y(s)))
            idx.push_back(s);
    }
    return idx;
}

/// The class count that a loss needs.
inline void check_apgd_classes(const char* fn, apgd_objective objective, std::size_t classes,
                               std::size_t n_targets) {
    if (objective == apgd_objective::dlr && classes < 3) {
        invalid(fn, "the DLR loss needs at least 3 classes, the model has ", classes);
    }
    if (objective == apgd_objective::dlr_targeted) {
        if (classes < 4) {
            invalid(fn, "the targeted DLR loss needs at least 4 classes, the model has ", classes);
        }
        if (n_targets >= classes) {
            invalid(fn, "n_target_classes = ", n_targets, " needs more classes than the model's ",
                    classes, " (at most num_classes - 1 = ", classes - 1, ")");
        }
    }
}

/// apgd() and apgd_t(): runs (restarts, target classes) on the samples not broken yet.
/// `sample_ids` name x's rows for the random streams (autoattack() passes the rows' places in
/// its own batch); null means 0, 1, ...
template <class M, class T, std::size_t R, class Options>
tensor<T, R> apgd_attack(const char* fn, const M& model, const tensor<T, R>& x,
                         const label_vector& y, const Options& options, apgd_objective objective,
                         std::size_t n_targets, attack_workspace<M>& workspace,
                         const std::vector<std::size_t>* sample_ids = nullptr) {
    apgd_params p;
    p.eps = options.epsilon();
    const auto dom = check_attack_inputs(fn, model, x, y, options.domain());
    check_apgd_classes(fn, objective, model.num_classes(), n_targets);
    p.n = options.norm();
    p.n_iter = options.n_iter();
    p.rho = options.rho();
    p.eot_iter = options.eot_iter();
    p.objective = objective;

    tensor<T, R> out = x;
    if (p.eps == 0) return out;
    const std::size_t n = x.shape()[0], d_size = dom.sample_size;
    std::vector<std::size_t> all_ids(n);
    for (std::size_t s = 0; s < n; ++s) all_ids[s] = sample_ids ? (*sample_ids)[s] : s;

    loss_gradient<M> oracle(fn, model, &workspace);
    std::vector<std::size_t> alive = correctly_classified(oracle, x, y);
    std::vector<double> best_margin(n, std::numeric_limits<double>::infinity());
    const std::size_t rounds = objective == apgd_objective::dlr_targeted ? n_targets : 1;
    std::vector<std::size_t> order, targets;
    for (std::size_t t = 0; t < rounds; ++t) {
        for (std::size_t r = 0; r < options.restarts() && !alive.empty(); ++r) {
            const auto xs = gather_rows(x, alive);
            const auto ys = gather_labels(y, alive);
            std::vector<std::size_t> ids(alive.size());
            for (std::size_t i = 0; i < alive.size(); ++i) ids[i] = all_ids[alive[i]];
            targets.assign(alive.size(), 0);
            if (objective == apgd_objective::dlr_targeted) {
                // the class ranked t + 2 by the clean logits (the reference's
                // output.sort()[1][:, -target_class], target_class = t + 2)
                oracle.predict(xs);
                const std::size_t c = oracle.logits.shape()[1];
                for (std::size_t i = 0; i < alive.size(); ++i) {
                    sorted_classes(oracle.logits.data() + i * c, c, order);
                    targets[i] = order[t + 1];
                }
            }
            const std::uint64_t key = mix_seed(
                options.seed(), static_cast<std::uint64_t>(objective), t * options.restarts() + r);
            const auto run = apgd_single_run(fn, oracle, xs, ys, targets, dom, p, key, ids);
            std::vector<std::size_t> still;
            for (std::size_t i = 0; i < alive.size(); ++i) {
                const std::size_t s = alive[i];
                if (!run.fooled[i] && run.margin[i] >= best_margin[s]) {
                    still.push_back(s);
                    continue;
                }
                best_margin[s] = run.margin[i];
                std::copy_n(run.adv.data() + i * d_size, d_size, out.data() + s * d_size);
                if (!run.fooled[i]) still.push_back(s);
            }
            alive = std::move(still);
        }
    }
    check_gradients_finite(fn, dom);
    return out;
}

template <class M, class X>
consteval bool check_host_attack() {
    static_assert(is_host_tensor_v<X>,
                  "advaug: apgd(), apgd_t(), fab(), fab_t(), square() and autoattack() take advaug::tensor "
                  "inputs: run a device model through advaug::cuda::host_model (advaug/cuda/host_model.hpp)");
    return is_host_tensor_v<X> && check_attack_model<M, X>();
}

}  // namespace detail

template <class M, class X>
requires detail::attack_tensor<X> X apgd(const M& model, const X& x, const detail::labels_t<X>& y,
                                         const apgd_options& options,
                                         attack_workspace<M>& workspace) {
    if constexpr (detail::check_host_attack<M, X>()) {
        const auto objective = options.loss() == apgd_loss::ce ? detail::apgd_objective::ce
                                                               : detail::apgd_objective::dlr;
        return detail::apgd_attack("apgd", model, x, y, options, objective, 0, workspace);
    } else {
        return x;
    }
}

template <class M, class X>
requires detail::attack_tensor<X> X apgd_t(const M& model, const X& x, const detail::labels_t<X>& y,
                                           const apgd_t_options& options,
                                           attack_workspace<M>& workspace) {
    if constexpr (detail::check_host_attack<M, X>()) {
        return detail::apgd_attack("apgd_t", model, x, y, options,
                                   detail::apgd_objective::dlr_targeted, options.n_target_classes(),
                                   workspace);
    } else {
        return x;
    }
}

}  // namespace advaug
