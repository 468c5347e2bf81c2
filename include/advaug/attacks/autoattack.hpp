// AutoAttack (Croce and Hein 2020): an ensemble of parameter-free attacks run in sequence,
// each on the samples that all attacks before it failed to break, so that a sample counts as
// robust only if no member breaks it (the per-sample worst case).
//
//   standard  apgd-ce, apgd-t (9 targets), fab-t (9 targets), square (5000 queries)
//   plus      apgd-ce (5 restarts), apgd-dlr (5 restarts), fab (5 restarts), square,
//             apgd-t, fab-t
//   rand      apgd-ce, apgd-dlr, each gradient averaged over 20 passes (eot_iter), for models
//             with randomness
//
// as set in the authors' implementation (github.com/fra31/auto-attack, autoattack/autoattack.py,
// AutoAttack.set_version); the result's `attacks` lists the members that ran.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "advaug/attacks/apgd.hpp"
#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/detail/margin_losses.hpp"
#include "advaug/attacks/fab.hpp"
#include "advaug/attacks/options.hpp"
#include "advaug/attacks/square.hpp"

namespace advaug {

enum class autoattack_version { standard, plus, rand };

/// Defaults: L-infinity, the standard version, 100 APGD iterations, 9 target classes, 5000
/// Square queries, 20 gradients per step in the rand version, seed 0.
class autoattack_options {
public:
    autoattack_options& epsilon(double eps) {
        eps_ = detail::checked_epsilon("autoattack_options::epsilon", eps);
        return *this;
    }
    autoattack_options& norm(advaug::norm n) {
        norm_ = n;
        return *this;
    }
    autoattack_options& version(autoattack_version v) {
        version_ = v;
        return *this;
    }
    /// Iterations of each APGD and FAB run. requires: >= 1.
    autoattack_options& n_iter(std::size_t k) {
        if (k == 0) detail::invalid("autoattack_options::n_iter", "n_iter must be >= 1, got ", k);
        n_iter_ = k;
        return *this;
    }
    /// APGD-T's and FAB-T's target classes. requires: >= 1 (and < the model's classes, checked by
    /// autoattack()).
    autoattack_options& n_target_classes(std::size_t n) {
        if (n == 0) {
            detail::invalid("autoattack_options::n_target_classes",
                            "n_target_classes must be >= 1, got ", n);
        }
        n_target_classes_ = n;
        return *this;
    }
    /// Square's queries. requires: >= 1.
    autoattack_options& n_queries(std::size_t q) {
        if (q == 0)
            detail::invalid("autoattack_options::n_queries", "n_queries must be >= 1, got ", q);
        n_queries_ = q;
        return *this;
    }
    /// Gradients averaged per APGD step in the rand version. requires: >= 1.
    autoattack_options& eot_iter(std::size_t k) {
        if (k == 0)
            detail::invalid("autoattack_options::eot_iter", "eot_iter must be >= 1, got ", k);
        eot_iter_ = k;
        return *this;
    }
    /// Square's view of a sample as an image (square_options::image_shape); needed for rank-2
    /// inputs by the versions that run Square.
    autoattack_options& image_shape(std::size_t channels, std::size_t height, std::size_t width) {
        square_options{}.image_shape(channels, height, width);  // validates
        shape_ = std::array<std::size_t, 3>{channels, height, width};
        return *this;
    }
    autoattack_options& seed(std::uint64_t s) {
        seed_ = s;
        return *this;
    }
    autoattack_options& domain(input_domain d) {
        domain_ = std::move(d);
        return *this;
    }

    double epsilon() const { return detail::require_epsilon("autoattack", eps_); }
    advaug::norm norm() const { return norm_; }
    autoattack_version version() const { return version_; }
    std::size_t n_iter() const { return n_iter_; }
    std::size_t n_target_classes() const { return n_target_classes_; }
    std::size_t n_queries() const { return n_queries_; }
    std::size_t eot_iter() const { return eot_iter_; }
    const std::optional<std::array<std::size_t, 3>>& image_shape() const { return shape_; }
    std::uint64_t seed() const { return seed_; }
    const input_domain& domain() const { return domain_; }

private:
    std::optional<double> eps_;
    advaug::norm norm_ = advaug::norm::linf;
    autoattack_version version_ = autoattack_version::standard;
    std::size_t n_iter_ = 100;
    std::size_t n_target_classes_ = 9;
    std::size_t n_queries_ = 5000;
    std::size_t eot_iter_ = 20;
    std::optional<std::array<std::size_t, 3>> shape_;
    std::uint64_t seed_ = 0;
    input_domain domain_;
};

/// What AutoAttack found, per sample and per member: the record an evaluation or a report
/// reads (robust accuracy, which attack broke each sample, accuracy after each member).
template <class X>
struct autoattack_result {
    /// broken_by[s] for a sample that no member broke.
    static constexpr int not_broken = -1;
    /// broken_by[s] for a sample misclassified before any attack.
    static constexpr int misclassified = -2;

    /// Per sample: the example that broke it, or x itself (not broken, or misclassified).
    X adversarial;
    /// The members that ran, in order: "apgd-ce", "apgd-t", "fab-t", "square" (standard), with
    /// "apgd-dlr" and "fab" in the plus and rand versions.
    std::vector<std::string> attacks;
    /// Per sample: the index into `attacks` of the member that broke it, not_broken or
    /// misclassified.
    std::vector<int> broken_by;
    /// Samples still classified correctly: [0] before any attack, [k + 1] after attacks[k].
    std::vector<std::size_t> correct_after;

    std::size_t samples() const { return broken_by.size(); }
    std::size_t clean_correct() const { return correct_after.front(); }
    std::size_t robust() const { return correct_after.back(); }
    double clean_accuracy() const { return fraction(clean_correct()); }
    double robust_accuracy() const { return fraction(robust()); }

private:
    double fraction(std::size_t k) const {
        return samples() ? static_cast<double>(k) / static_cast<double>(samples()) : 0.0;
    }
};

/// requires: as apgd(); for the standard and plus versions at least 4 classes and more than
///           n_target_classes, and for rank-2 inputs an image_shape (Square).
/// ensures:  adversarial has x's shape and stays in the ball and the domain; a sample counts as
///           robust only if every member failed on it; the same seed gives the same result.
template <class M, class X>
requires detail::attack_tensor<X> autoattack_result<X> autoattack(const M& model, const X& x,
                                                                  const detail::labels_t<X>& y,
                                                                  const autoattack_options& options,
                                                                  attack_workspace<M>& workspace);

template <class M, class X>
requires detail::attack_tensor<X> autoattack_result<X> autoattack(
    const M& model, const X& x, const detail::labels_t<X>& y, const autoattack_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return autoattack(model, x, y, options, workspace);
    } else {
        return {};
    }
}

namespace detail {

enum class autoattack_member { apgd_ce, apgd_dlr, apgd_t, fab, fab_t, square };

inline const char* member_name(autoattack_member m) {
    switch (m) {
        case autoattack_member::apgd_ce:
            return "apgd-ce";
        case autoattack_member::apgd_dlr:
            return "apgd-dlr";
        case autoattack_member::apgd_t:
            return "apgd-t";
        case autoattack_member::fab:
            return "fab";
        case autoattack_member::fab_t:
            return "fab-t";
        case autoattack_member::square:
            return "square";
    }
    return "?";
}

/// The members of a version, with their restarts.
struct autoattack_plan {
    autoattack_member member;
    std::size_t restarts;
};

inline std::vector<autoattack_plan> autoattack_members(autoattack_version v) {
    using m = autoattack_member;
    switch (v) {
        case autoattack_version::standard:
            return {{m::apgd_ce, 1}, {m::apgd_t, 1}, {m::fab_t, 1}, {m::square, 1}};
        case autoattack_version::plus:
            return {{m::apgd_ce, 5}, {m::apgd_dlr, 5}, {m::fab, 5},
                    {m::square, 1}, {m::apgd_t, 1}, {m::fab_t, 1}};
        case autoattack_version::rand:
            return {{m::apgd_ce, 1}, {m::apgd_dlr, 1}};
    }
    return {};
}

template <class M, class T, std::size_t R>
autoattack_result<tensor<T, R>> autoattack_run(const M& model, const tensor<T, R>& x,
                                               const label_vector& y, const autoattack_options& o,
                                               attack_workspace<M>& workspace) {
    const char* fn = "autoattack";
    const double eps = o.epsilon();
    const auto dom = check_attack_inputs(fn, model, x, y, o.domain());
    const auto plan = autoattack_members(o.version());
    const std::size_t classes = model.num_classes();
    for (const auto& p : plan) {
        if (p.member == autoattack_member::apgd_t) {
            check_apgd_classes(fn, apgd_objective::dlr_targeted, classes, o.n_target_classes());
        } else if (p.member == autoattack_member::apgd_dlr) {
            check_apgd_classes(fn, apgd_objective::dlr, classes, 0);
        } else if (p.member == autoattack_member::square && R != 4 && !o.image_shape()) {
            invalid(fn, "inputs of rank ", R,
                    " need autoattack_options::image_shape(channels, height, width) for Square "
                    "(tabular data: image_shape(1, 1, features))");
        }
    }
    if (o.image_shape()) {
        const auto& s = *o.image_shape();
        if (s[0] * s[1] * s[2] != dom.sample_size) {
            invalid(fn, "image_shape ", s[0], " x ", s[1], " x ", s[2], " holds ",
                    s[0] * s[1] * s[2], " values, the inputs have ", dom.sample_size,
                    " per sample");
        }
    }
    const bool rand = o.version() == autoattack_version::rand;
    const std::size_t eot = rand ? o.eot_iter() : 1;

    autoattack_result<tensor<T, R>> res;
    res.adversarial = x;
    const std::size_t n = x.shape()[0], d_size = dom.sample_size;
    res.broken_by.assign(n, autoattack_result<tensor<T, R>>::misclassified);
    std::vector<std::size_t> alive;
    {
        loss_gradient<M> oracle(fn, model, &workspace);
        alive = correctly_classified(oracle, x, y);
    }
    for (std::size_t s : alive) res.broken_by[s] = autoattack_result<tensor<T, R>>::not_broken;
    res.correct_after.push_back(alive.size());

    for (std::size_t k = 0; k < plan.size(); ++k) {
        const auto& p = plan[k];
        res.attacks.emplace_back(member_name(p.member));
        if (alive.empty()) {
            res.correct_after.push_back(0);
            continue;
        }
        const auto xs = gather_rows(x, alive);
        const auto ys = gather_labels(y, alive);
        tensor<T, R> adv;
        switch (p.member) {
            case autoattack_member::apgd_ce:
            case autoattack_member::apgd_dlr: {
                const auto opts = apgd_options{}
                                      .epsilon(eps)
                                      .norm(o.norm())
                                      .n_iter(o.n_iter())
                                      .restarts(p.restarts)
                                      .eot_iter(eot)
                                      .seed(o.seed())
                                      .domain(o.domain());
                const auto objective = p.member == autoattack_member::apgd_ce ? apgd_objective::ce
                                                                              : apgd_objective::dlr;
                adv = apgd_attack(fn, model, xs, ys, opts, objective, 0, workspace, &alive);
                break;
            }
            case autoattack_member::apgd_t: {
                const auto opts = apgd_t_options{}
                                      .epsilon(eps)
                                      .norm(o.norm())
                                      .n_iter(o.n_iter())
                                      .restarts(p.restarts)
                                      .n_target_classes(o.n_target_classes())
                                      .seed(o.seed())
                                      .domain(o.domain());
                adv = apgd_attack(fn, model, xs, ys, opts, apgd_objective::dlr_targeted,
                                  o.n_target_classes(), workspace, &alive);
                break;
            }
            case autoattack_member::fab: {
                const auto opts = fab_options{}
                                      .epsilon(eps)
                                      .norm(o.norm())
                                      .n_iter(o.n_iter())
                                      .restarts(p.restarts)
                                      .seed(o.seed())
                                      .domain(o.domain());
                adv = fab_attack(fn, model, xs, ys, opts, false, 0, workspace, &alive);
                break;
            }
            case autoattack_member::fab_t: {
                const auto opts = fab_t_options{}
                                      .epsilon(eps)
                                      .norm(o.norm())
                                      .n_iter(o.n_iter())
                                      .restarts(p.restarts)
                                      .n_target_classes(o.n_target_classes())
                                      .seed(o.seed())
                                      .domain(o.domain());
                adv = fab_attack(fn, model, xs, ys, opts, true, o.n_target_classes(), workspace, &alive);
                break;
            }
            case autoattack_member::square: {
                auto opts = square_options{}
                                .epsilon(eps)
                                .norm(o.norm())
                                .n_queries(o.n_queries())
                                .p_init(0.8)
                                .restarts(p.restarts)
                                .rescale_schedule(false)
                                .seed(o.seed())
                                .domain(o.domain());
                if (o.image_shape()) {
                    const auto& s = *o.image_shape();
                    opts.image_shape(s[0], s[1], s[2]);
                }
                adv = square_attack(fn, model, xs, ys, opts, workspace, &alive);
                break;
            }
        }
        // what counts is the model's verdict on the example returned
        loss_gradient<M> oracle(fn, model, &workspace);
        oracle.predict(adv);
        std::vector<std::size_t> still;
        for (std::size_t i = 0; i < alive.size(); ++i) {
            const std::size_t s = alive[i];
            if (predicted_class(oracle.logits.data() + i * classes, classes) ==
                static_cast<std::size_t>(y(s))) {
                still.push_back(s);
                continue;
            }
            res.broken_by[s] = static_cast<int>(k);
            std::copy_n(adv.data() + i * d_size, d_size, res.adversarial.data() + s * d_size);
        }
        alive = std::move(still);
        res.correct_after.push_back(alive.size());
    }
    return res;
}

}  // namespace detail

template <class M, class X>
requires detail::attack_tensor<X> autoattack_result<X> autoattack(const M& model, const X& x,
                                                                  const detail::labels_t<X>& y,
                                                                  const autoattack_options& options,
                                                                  attack_workspace<M>& workspace) {
    if constexpr (detail::check_host_attack<M, X>()) {
        return detail::autoattack_run(model, x, y, options, workspace);
    } else {
        return {};
    }
}

}  // namespace advaug
