// Feature-space adversarial data augmentation: Volpi et al. 2018 ("Generalizing to unseen
// domains via adversarial data augmentation", ADA) and Zhao et al. 2020 (ME-ADA, with the
// maximum-entropy term).
//
// Each generated sample starts at a training sample x0 and climbs, by `steps` gradient steps of
// `step_size` (raw units, clipped to the domain),
//   L(x) = CE(x, y) - gamma ||phi(x) - phi(x0)||^2 + eta H(p(x))
// where phi is the model's penultimate features (the contract's optional feature_classifier
// members) and H the entropy of its prediction (eta = entropy_weight: 0 is ADA, > 0 ME-ADA). The
// distance in feature space keeps the sample's meaning while its pixels may move far: unlike an
// L-p ball, nothing bounds the input change but the domain. fit_ada() trains plainly, and after
// every `epochs_between` epochs, for `phases` phases, appends `samples` such points (from random
// training samples, with their labels) to the training set, then trains on the union.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "advaug/data/dataset.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/static_checks.hpp"
#include "advaug/training/train_options.hpp"
#include "advaug/training/trainer.hpp"

namespace advaug {

/// Options of feature-space ADA. Defaults are Volpi et al.'s for digits: gamma 1, 15 ascent
/// steps of 1.0; 3 phases; 10,000 samples per phase; no entropy term (ADA).
class ada_options {
public:
    ada_options& gamma(double g) {
        if (!std::isfinite(g) || g < 0) bad("gamma", "must be finite and >= 0", g);
        gamma_ = g;
        return *this;
    }
    /// eta of the entropy term: 0 is ADA, > 0 ME-ADA (Zhao et al. use 1 to 10 on digits).
    ada_options& entropy_weight(double e) {
        if (!std::isfinite(e) || e < 0) bad("entropy_weight", "must be finite and >= 0", e);
        entropy_ = e;
        return *this;
    }
    ada_options& steps(std::size_t k) {
        if (k == 0) bad("steps", "must be >= 1", k);
        steps_ = k;
        return *this;
    }
    /// Gradient ascent step in raw units per unit of gradient (not a sign step).
    ada_options& step_size(double s) {
        if (!std::isfinite(s) || s <= 0) bad("step_size", "must be finite and > 0", s);
        step_ = s;
        return *this;
    }
    ada_options& phases(std::size_t k) {
        if (k == 0) bad("phases", "must be >= 1", k);
        phases_ = k;
        return *this;
    }
    /// Training epochs before each phase (on the set as it then is).
    ada_options& epochs_between(std::size_t e) {
        if (e == 0) bad("epochs_between", "must be >= 1", e);
        between_ = e;
        return *this;
    }
    /// Samples generated per phase, from training samples drawn without replacement.
    ada_options& samples(std::size_t n) {
        if (n == 0) bad("samples", "must be >= 1", n);
        samples_ = n;
        return *this;
    }
    /// Batch size of the generation (memory only; every sample climbs on its own).
    ada_options& batch_size(std::size_t b) {
        if (b == 0) bad("batch_size", "must be >= 1", b);
        batch_ = b;
        return *this;
    }
    double gamma() const { return gamma_; }
    double entropy_weight() const { return entropy_; }
    std::size_t steps() const { return steps_; }
    double step_size() const { return step_; }
    std::size_t phases() const { return phases_; }
    std::size_t epochs_between() const { return between_; }
    std::size_t samples() const { return samples_; }
    std::size_t batch_size() const { return batch_; }

private:
    template <class V>
    [[noreturn]] static void bad(const char* option, const char* rule, const V& value) {
        const std::string fn = std::string("ada_options::") + option;
        detail::invalid(fn.c_str(), option, " ", rule, ", got ", value);
    }
    double gamma_ = 1, entropy_ = 0, step_ = 1;
    std::size_t steps_ = 15, phases_ = 3, between_ = 1, samples_ = 10'000, batch_ = 256;
};

/// The objective per sample at x, with phi(x0) = `anchor`, and its input gradient into dx (of
/// the sum over samples, so every sample's gradient is its own).
/// requires: a feature_classifier; x in the model's shape; labels of x's rows; anchor of the
///           features' shape.
template <class M, std::size_t R>
tensor<typename M::value_type, 1> ada_objective_gradient(const M& model, const tensor<typename M::value_type, R>& x,
                                                         const label_vector& y,
                                                         const tensor<typename M::value_type, 2>& anchor,
                                                         const ada_options& options,
                                                         tensor<typename M::value_type, R>& dx) {
    using T = typename M::value_type;
    typename M::cache_type cache;
    tensor<T, 2> logits, dlogits;
    model.forward(x, cache, logits);
    const std::size_t n = logits.shape()[0], c = logits.shape()[1];
    auto value = cross_entropy_per_sample(logits, y);
    cross_entropy_gradient(logits, y, dlogits, static_cast<T>(n));  // the sum's gradient
    const tensor<T, 2>& f = model.features(cache);
    if (f.shape() != anchor.shape()) {
        detail::invalid("ada_objective_gradient", "the anchor has shape ", detail::shape_string(anchor.shape()),
                        ", the features have ", detail::shape_string(f.shape()));
    }
    tensor<T, 2> dfeatures(f.shape());
    const double gamma = options.gamma(), eta = options.entropy_weight();
    const std::size_t width = f.shape()[1];
    for (std::size_t i = 0; i < n; ++i) {
        double d2 = 0;
        for (std::size_t j = 0; j < width; ++j) {
            const double d = static_cast<double>(f(i, j)) - static_cast<double>(anchor(i, j));
            d2 += d * d;
            dfeatures(i, j) = static_cast<T>(-2 * gamma * d);
        }
        double v = static_cast<double>(value(i)) - gamma * d2;
        if (eta > 0) {
            // H = -sum p log p; dH/dz_j = -p_j (log p_j + H)
            const T* z = logits.data() + i * c;
            const double top = static_cast<double>(*std::max_element(z, z + c));
            double s = 0;
            for (std::size_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(z[j]) - top);
            const double lse = top + std::log(s);
            double h = 0;
            for (std::size_t j = 0; j < c; ++j) {
                const double lp = static_cast<double>(z[j]) - lse;
                h -= std::exp(lp) * lp;
            }
            for (std::size_t j = 0; j < c; ++j) {
                const double lp = static_cast<double>(z[j]) - lse;
                dlogits(i, j) += static_cast<T>(eta * -std::exp(lp) * (lp + h));
            }
            v += eta * h;
        }
        value(i) = static_cast<T>(v);
    }
    model.input_gradient_with_features(cache, dlogits, dfeatures, dx);
    return value;
}

/// The ADA points of (x, y): `steps` ascent steps of the objective from x, each step_size times
/// the gradient (model units), clipped to `domain`. The model's mode is left as it is (callers
/// use eval mode). requires: a feature_classifier; x inside the domain.
template <class M, std::size_t R>
tensor<typename M::value_type, R> ada_perturb(const M& model, const tensor<typename M::value_type, R>& x,
                                              const label_vector& y, const ada_options& options,
                                              const input_domain& domain = {}) {
    using T = typename M::value_type;
    tensor<T, R> out = x;
    if constexpr (check_feature_classifier<M>()) {
        const char* fn = "ada_perturb";
        if (y.size() != x.shape()[0]) detail::invalid(fn, "labels has ", y.size(), " entries, x has ", x.shape()[0], " rows");
        const auto dom = detail::resolve<T>(fn, domain, x.shape());
        detail::check_in_domain(fn, x, dom);
        typename M::cache_type cache;
        tensor<T, 2> logits;
        model.forward(x, cache, logits);
        const tensor<T, 2> anchor = model.features(cache);
        const std::size_t d = dom.sample_size;
        const auto& lo = dom.lo;
        const auto& hi = dom.hi;
        tensor<T, R> dx;
        for (std::size_t k = 0; k < options.steps(); ++k) {
            ada_objective_gradient(model, out, y, anchor, options, dx);
            for (std::size_t e = 0; e < out.size(); ++e) {
                const std::size_t f = e % d;
                const double v = static_cast<double>(out.data()[e]) + options.step_size() * static_cast<double>(dx.data()[e]);
                if (!std::isfinite(v)) {
                    throw numeric_error(detail::concat(fn, "(): the ascent step is not finite at step ", k + 1,
                                                       ", sample ", e / d, "; lower step_size"));
                }
                out.data()[e] = std::clamp(static_cast<T>(v), lo[f], hi[f]);
            }
        }
    }
    return out;
}

/// Trains `model` plainly on `train`, and after every epochs_between() epochs, phases() times,
/// appends ADA points of samples() random training samples (generated in eval mode) to the set.
/// options.epochs() is the total; it must exceed phases() * epochs_between(). The trainer is
/// rebuilt at every stage (its seed mixed with the stage), the optimizer's state carries over.
/// Returns each stage's result in order. requires: a feature_classifier; method plain; a
/// constant learning rate (a schedule would restart at every stage).
template <class M, class Optimizer, class S>
std::vector<training_result> fit_ada(M& model, Optimizer& optimizer, const train_options& options,
                                     const dataset<S>& train, const ada_options& ada,
                                     const dataset<S>* validation = nullptr) {
    std::vector<training_result> results;
    if constexpr (check_feature_classifier<M>()) {
        using T = typename M::value_type;
        const char* fn = "fit_ada";
        if (options.method() != training_method::plain) {
            detail::invalid(fn, "the method is ", to_string(options.method()),
                            "; ADA trains plainly on the growing set (use method plain)");
        }
        const auto& lr = options.learning_rate();
        // (one_cycle starts at 0, which no constant schedule is)
        if (lr && (lr->at(0) <= 0 || *lr != lr_schedule::constant(lr->at(0)))) {
            detail::invalid(fn, "the learning rate is ", options.learning_rate()->describe(),
                            "; a schedule would restart at every stage, use lr_schedule::constant");
        }
        if (options.epochs() <= ada.phases() * ada.epochs_between()) {
            detail::invalid(fn, "epochs is ", options.epochs(), "; ", ada.phases(), " phases after every ",
                            ada.epochs_between(), " epoch(s) need more than ", ada.phases() * ada.epochs_between());
        }
        if (ada.samples() > train.size()) {
            detail::invalid(fn, "samples per phase is ", ada.samples(), ", the training set has ", train.size());
        }
        // The growing set, in T: the training set, then every phase's points.
        const std::size_t n0 = train.size();
        std::vector<std::size_t> all(n0);
        for (std::size_t i = 0; i < n0; ++i) all[i] = i;
        tensor<T, M::input_rank> x0;
        label_vector y0;
        train.batch(all, x0, y0);
        std::vector<std::size_t> sample_shape(x0.shape().begin() + 1, x0.shape().end());
        std::vector<T> features(x0.begin(), x0.end());
        std::vector<std::int64_t> labels(y0.begin(), y0.end());
        // the validation set in T once, for the epoch summaries
        std::optional<dataset<T>> val;
        if (validation) {
            std::vector<std::size_t> vi(validation->size());
            for (std::size_t i = 0; i < vi.size(); ++i) vi[i] = i;
            tensor<T, M::input_rank> vx;
            label_vector vy;
            validation->batch(vi, vx, vy);
            val.emplace(std::vector<T>(vx.begin(), vx.end()), sample_shape, vy, validation->num_classes());
        }

        for (std::size_t stage = 0; stage <= ada.phases(); ++stage) {
            const std::size_t epochs = stage < ada.phases() ? ada.epochs_between()
                                                            : options.epochs() - ada.phases() * ada.epochs_between();
            label_vector y = xt::adapt(labels, {labels.size()});
            const dataset<T> current(features, sample_shape, y, train.num_classes());
            trainer<M, Optimizer> tr(model, optimizer,
                                     train_options(options).epochs(epochs).seed(detail::mix_seed(options.seed(), 0xada, stage)));
            results.push_back(tr.fit(current, val ? &*val : nullptr));
            if (stage == ada.phases()) break;

            // A phase: ADA points of random training samples, in eval mode.
            auto pick = shuffled_indices(n0, detail::mix_seed(options.seed(), 0xada5, stage));
            pick.resize(ada.samples());
            mode_guard<M> eval(model, mode::eval);
            for (std::size_t first = 0; first < pick.size(); first += ada.batch_size()) {
                const std::size_t count = std::min(ada.batch_size(), pick.size() - first);
                tensor<T, M::input_rank> xb;
                label_vector yb;
                train.batch(std::span<const std::size_t>(pick.data() + first, count), xb, yb);
                const auto moved = ada_perturb(model, xb, yb, ada, options.domain());
                features.insert(features.end(), moved.begin(), moved.end());
                labels.insert(labels.end(), yb.begin(), yb.end());
            }
        }
    }
    return results;
}

}  // namespace advaug
