// The worst case of a perturbation family for a model: per sample, the theta in the family's
// budget that maximizes the model's cross-entropy at family.apply(x, theta).
//
// The gradient in theta is the chain rule through advaug's own code: the model gives only the
// contract's input gradient dL/dx' (model/classifier.hpp), and the family's vjp_theta carries it
// to theta. Methods (search_options.hpp):
//   gradient    from each start (a random draw of the budget, or the identity), `steps` sign
//               steps theta_j += step_fraction * param_scale_j * sign(dL/dtheta_j), each
//               projected onto the budget; a discrete family instead adds, one at a time, the
//               feature whose relaxed gradient promises the largest gain (greedy, up to
//               max_active(); restarts and steps do not apply).
//   random      the worst of `samples` draws from the budget (no gradient at all).
//   both        the worst of `samples` draws per sample, refined by `steps` gradient steps
//               (discrete: the worst of the draws and of the greedy search).
//   exhaustive  every mask of a discrete family with at most max_active() ones.
// The result is, per sample, the worst theta met anywhere in the search: every start and every
// iterate, so no method ends below its own starts or samples. A gradient-free family
// (quantize, or a chain holding one) refuses the gradient methods. A family whose kind is known
// at run time only (any_family) is searched by the algorithm its held kind takes.
//
// Seeding: start or draw s samples with family.sample(n, perturbation_start_key(seed, s), ...),
// whose values are counter-based per (row, parameter): the same seed gives the same result,
// bit for bit, whatever the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "advaug/detail/check.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/static_checks.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/perturb.hpp"
#include "advaug/perturbations/search_options.hpp"
#include "advaug/perturbations/static_checks.hpp"

namespace advaug {

template <class T, std::size_t R>
struct worst_case_result {
    tensor<T, 2> theta;      // [N, P], in the family's budget
    tensor<T, R> perturbed;  // family.apply(x, theta), in x's shape
    tensor<T, 1> loss;       // per-sample cross-entropy of the model at `perturbed`
};

/// The stream that start (or random draw) `start` of a search with `seed` samples from.
inline std::uint64_t perturbation_start_key(std::uint64_t seed, std::uint64_t start) {
    return detail::mix_seed(seed, start, 0x7065727475726221ULL);
}

/// requires: model a classifier and family a perturbation family of one value type; x of the
///           model's input rank with input_size() features per sample, finite, N > 0; one
///           label per sample in [0, num_classes()).
/// ensures:  result.theta is in the budget, result.loss[n] is the model's loss at
///           result.perturbed[n] and is at least the loss of every start and draw the search
///           made; the model is unchanged.
template <class M, class F, class T, std::size_t R>
worst_case_result<T, R> worst_case(const M& model, const F& family, const tensor<T, R>& x,
                                   const label_vector& y, const worst_case_options& options);

namespace detail {

/// Loss and gradient in theta at family.apply(x, theta), through the model contract.
template <class M, class F, class T, std::size_t R>
struct perturbation_oracle {
    perturbation_oracle(const char* function, const M& m, const F& f, const tensor<T, R>& x0,
                        const label_vector& labels)
        : fn(function), model(m), family(f), x(x0), y(labels) {
        to_rows(x, flat);
    }

    /// Fills loss (and dtheta when `gradient`).
    void evaluate(const tensor<T, 2>& theta, bool gradient) {
        // With the gradient, the family keeps its forward pass for vjp_theta (family.hpp's
        // recorded pass) rather than taking it again there.
        if (gradient) {
            apply_recorded(family, flat, theta, perturbed, tape);
        } else {
            family.apply(flat, theta, perturbed);
        }
        from_rows(perturbed, x.shape(), shaped);
        try {
            model.forward(shaped, cache, logits);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(concat(fn, "(): ", e.what()));
        }
        loss = cross_entropy_per_sample(logits, y);
        if (!gradient) return;
        cross_entropy_gradient(logits, y, dlogits);
        model.input_gradient(cache, dlogits, dx);
        to_rows(dx, dflat);
        vjp_recorded(family, flat, theta, dflat, &dtheta, static_cast<tensor<T, 2>*>(nullptr),
                     tape);
        for (std::size_t i = 0; i < dtheta.size(); ++i) {
            if (!std::isfinite(dtheta.data()[i])) {
                throw numeric_error(concat(fn, "(): the loss gradient in theta is not finite (",
                                           dtheta.data()[i], " at row ", i / dtheta.shape()[1],
                                           ", parameter ", i % dtheta.shape()[1], ")"));
            }
        }
    }

    /// family.apply(x, theta) at the last evaluate()'s theta.
    const tensor<T, 2>& outputs() const { return perturbed; }

    const char* fn;
    const M& model;
    const F& family;
    const tensor<T, R>& x;
    const label_vector& y;
    tensor<T, 2> flat, perturbed, dflat, dtheta;
    tensor<T, R> shaped, dx;
    typename M::cache_type cache;
    tensor<T, 2> logits, dlogits;
    tensor<T, 1> loss;
    family_tape tape;  // the family's record between its apply and vjp_theta
};

/// The worst theta per sample seen so far, and the family's output there, so that the caller
/// need not apply the family once more.
template <class T>
struct worst_so_far {
    tensor<T, 2> theta;
    tensor<T, 1> loss;
    tensor<T, 2> rows;  // [N, D]: family.apply(x, theta)
    bool empty = true;

    /// candidate_rows: the family's output at candidate (the oracle's outputs()).
    void offer(const tensor<T, 2>& candidate, const tensor<T, 1>& candidate_loss,
               const tensor<T, 2>& candidate_rows) {
        const std::size_t n = candidate.shape()[0], p = candidate.shape()[1];
        if (empty) {
            theta = candidate;
            loss = candidate_loss;
            rows = candidate_rows;
            empty = false;
            return;
        }
        const std::size_t d = rows.shape()[1];
        for (std::size_t i = 0; i < n; ++i) {
            if (candidate_loss(i) > loss(i)) {  // strictly: ties keep the earlier theta
                loss(i) = candidate_loss(i);
                std::copy_n(candidate.data() + i * p, p, theta.data() + i * p);
                std::copy_n(candidate_rows.data() + i * d, d, rows.data() + i * d);
            }
        }
    }
};

/// Projected sign-gradient ascent from theta (in place), offering every iterate.
template <class Oracle, class T>
void ascend(Oracle& oracle, tensor<T, 2>& theta, const std::vector<double>& scale,
            const worst_case_options& options, worst_so_far<T>& worst) {
    const std::size_t p = theta.shape()[1];
    for (std::size_t k = 0; k < options.steps(); ++k) {
        oracle.evaluate(theta, true);
        worst.offer(theta, oracle.loss, oracle.outputs());
        for (std::size_t i = 0; i < theta.size(); ++i) {
            const T g = oracle.dtheta.data()[i];
            const T s = static_cast<T>(options.step_fraction() * scale[i % p]);
            theta.data()[i] += g > T(0) ? s : g < T(0) ? -s : T(0);
        }
        oracle.family.project(theta);
    }
    oracle.evaluate(theta, false);
    worst.offer(theta, oracle.loss, oracle.outputs());
}

/// Greedy mask search for a discrete family: from the empty mask, add per sample the feature
/// with the largest positive relaxed gradient, up to max_active() times.
template <class Oracle, class T>
void greedy_mask(Oracle& oracle, std::size_t n, worst_so_far<T>& worst) {
    tensor<T, 2> theta;
    oracle.family.identity(n, theta);
    const std::size_t p = theta.shape()[1];
    for (std::size_t t = 0; t < oracle.family.max_active(); ++t) {
        oracle.evaluate(theta, true);
        worst.offer(theta, oracle.loss, oracle.outputs());
        bool changed = false;
        for (std::size_t i = 0; i < n; ++i) {
            std::size_t best = p;
            for (std::size_t j = 0; j < p; ++j) {
                if (theta(i, j) == T(0) && oracle.dtheta(i, j) > T(0) &&
                    (best == p || oracle.dtheta(i, j) > oracle.dtheta(i, best))) {
                    best = j;
                }
            }
            if (best < p) {
                theta(i, best) = T(1);
                changed = true;
            }
        }
        if (!changed) return;
    }
    oracle.evaluate(theta, false);
    worst.offer(theta, oracle.loss, oracle.outputs());
}

/// Every mask with at most k ones out of p, the same mask for every sample at a time.
template <class Oracle, class T>
void exhaustive_masks(const char* fn, Oracle& oracle, std::size_t n, std::size_t limit,
                      worst_so_far<T>& worst) {
    tensor<T, 2> theta;
    oracle.family.identity(n, theta);
    const std::size_t p = theta.shape()[1];
    const std::size_t k = std::min<std::size_t>(oracle.family.max_active(), p);
    // Count the masks first (sum of binomials), stopping as soon as the limit is passed.
    std::size_t count = 0;
    double binomial = 1;
    for (std::size_t s = 0; s <= k && count <= limit; ++s) {
        if (s > 0) binomial = binomial * static_cast<double>(p - s + 1) / static_cast<double>(s);
        count += binomial > static_cast<double>(limit) ? limit + 1
                                                       : static_cast<std::size_t>(binomial + 0.5);
    }
    if (count > limit) {
        invalid(fn, "exhaustive search over masks of up to ", k, " of ", p,
                " features needs more than max_candidates = ", limit,
                " candidates; raise max_candidates or use search_method::gradient or random");
    }
    std::vector<std::size_t> chosen;
    for (std::size_t s = 0; s <= k; ++s) {
        chosen.resize(s);
        for (std::size_t j = 0; j < s; ++j) chosen[j] = j;
        while (true) {
            theta.fill(T(0));
            for (std::size_t i = 0; i < n; ++i) {
                for (std::size_t j : chosen) theta(i, j) = T(1);
            }
            oracle.evaluate(theta, false);
            worst.offer(theta, oracle.loss, oracle.outputs());
            // Next combination in lexicographic order.
            std::size_t j = s;
            while (j > 0 && chosen[j - 1] == p - s + j - 1) --j;
            if (j == 0) break;
            ++chosen[j - 1];
            for (std::size_t q = j; q < s; ++q) chosen[q] = chosen[q - 1] + 1;
        }
    }
}

template <class Oracle, class T>
void random_draws(Oracle& oracle, std::size_t n, const worst_case_options& options,
                  worst_so_far<T>& worst) {
    tensor<T, 2> theta;
    for (std::size_t s = 0; s < options.samples(); ++s) {
        oracle.family.sample(n, perturbation_start_key(options.seed(), s), theta);
        oracle.evaluate(theta, false);
        worst.offer(theta, oracle.loss, oracle.outputs());
    }
}

/// The search methods a family of kind `kind` admits; otherwise names `fn` and the method.
inline void check_search_method(const char* fn, perturbation_kind kind, search_method method) {
    if (kind == perturbation_kind::gradient_free &&
        (method == search_method::gradient || method == search_method::both)) {
        invalid(fn,
                "the family is gradient-free (its output is piecewise constant in theta); "
                "use search_method::random");
    }
    if (kind != perturbation_kind::discrete && method == search_method::exhaustive) {
        invalid(fn,
                "search_method::exhaustive needs a discrete family (a mask, such as "
                "dropped_sensors); use gradient, random or both");
    }
}

/// The search itself, for any oracle with the members of perturbation_oracle (`family`,
/// `evaluate(theta, gradient)`, `loss`, `dtheta`, `outputs()`): worst_case() and the trainer's family method
/// (training/family_step.hpp) run this one search. `worst` receives every candidate.
/// requires: the method fits the family's kind (check_search_method).
template <class Oracle, class T>
void search_theta(const char* fn, Oracle& oracle, std::size_t n, const std::vector<double>& scale,
                  const worst_case_options& options, worst_so_far<T>& worst) {
    using F = std::remove_cvref_t<decltype(oracle.family)>;
    const perturbation_kind kind = kind_of(oracle.family);  // any_family's at run time
    const search_method method = options.method();
    if (kind == perturbation_kind::discrete) {
        // max_active() exists only where the family may be discrete
        if constexpr (kind_known_at_run_time<F> || kind_of<F>() == perturbation_kind::discrete) {
            if (method == search_method::exhaustive) {
                exhaustive_masks(fn, oracle, n, options.max_candidates(), worst);
            } else {
                if (method != search_method::gradient) random_draws(oracle, n, options, worst);
                if (method != search_method::random) greedy_mask(oracle, n, worst);
            }
        }
        return;
    }
    if (method == search_method::random || method == search_method::both) {
        random_draws(oracle, n, options, worst);
    }
    if (kind != perturbation_kind::continuous) return;
    tensor<T, 2> theta;
    if (method == search_method::both) {
        theta = worst.theta;
        ascend(oracle, theta, scale, options, worst);
    } else if (method == search_method::gradient) {
        for (std::size_t r = 0; r < options.restarts(); ++r) {
            if (options.random_start()) {
                oracle.family.sample(n, perturbation_start_key(options.seed(), r), theta);
            } else {
                oracle.family.identity(n, theta);
            }
            oracle.family.project(theta);
            ascend(oracle, theta, scale, options, worst);
        }
    }
}

template <class M, class F, class T, std::size_t R>
worst_case_result<T, R> worst_case_search(const M& model, const F& family, const tensor<T, R>& x,
                                          const label_vector& y,
                                          const worst_case_options& options) {
    const char* fn = "worst_case";
    check_nonempty_batch(fn, "x", x);
    const std::size_t n = x.shape()[0], d = x.size() / n;
    if (d != family.input_size()) {
        invalid(fn, "x has shape ", shape_string(x.shape()), " (", d,
                " features per sample); the family takes ", family.input_size());
    }
    check_labels(fn, y, n, model.num_classes());
    check_finite(fn, "x", x);
    const std::vector<double> scale = family.param_scale();
    if (scale.size() != family.num_params()) {
        invalid(fn, "the family's param_scale() has ", scale.size(), " entries, num_params() is ",
                family.num_params());
    }
    check_search_method(fn, kind_of(family), options.method());

    perturbation_oracle<M, F, T, R> oracle(fn, model, family, x, y);
    worst_so_far<T> worst;
    search_theta(fn, oracle, n, scale, options, worst);

    worst_case_result<T, R> result;
    result.theta = worst.theta;
    result.loss = worst.loss;
    from_rows(worst.rows, x.shape(), result.perturbed);  // each candidate came with its output
    return result;
}

}  // namespace detail

template <class M, class F, class T, std::size_t R>
worst_case_result<T, R> worst_case(const M& model, const F& family, const tensor<T, R>& x,
                                   const label_vector& y, const worst_case_options& options) {
    if constexpr (check_classifier<M>() && check_perturbation_family<F>()) {
        static_assert(
            std::is_same_v<typename M::value_type, T> && std::is_same_v<typename F::value_type, T>,
            "advaug: worst_case() needs the model, the family and x to share one "
            "value type");
        static_assert(M::input_rank == R, "advaug: x's rank differs from the model's input_rank");
        return detail::worst_case_search(model, family, x, y, options);
    } else {
        return {};
    }
}

}  // namespace advaug
