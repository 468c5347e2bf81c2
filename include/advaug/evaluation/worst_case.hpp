// Accuracy under the worst natural perturbation within a budget: "accuracy under the worst
// rotation within 15 degrees", one point per budget, as a family_curve of results.hpp that the
// report draws like the eps curves.
//
//   const auto options = worst_case_evaluation_options{}.image_size(28, 28);
//   model_evaluation m = evaluate_robustness(model, test, evaluation, "plain");
//   m.families.push_back(evaluate_worst_case(model, test, natural_family::rotation,
//                                            {0, 5, 10, 15}, options));
//
// How the numbers are made
//   - The test set is walked in batches of batch_size in dataset order. For each budget b > 0
//     the family is built with that budget and worst_case() (perturbations/search.hpp) looks,
//     per sample, for the parameters of the largest cross-entropy; the sample counts as correct
//     when the model still predicts its label on that perturbed input. Budget 0 is the clean
//     accuracy (the identity is the only point of an empty budget).
//   - The search maximizes the loss, not the error: the accuracy is an upper bound on the true
//     worst-case accuracy, tight when the search is strong (Engstrom et al. 2019 found worst-of-10
//     random draws strong for rotations and translations; the default adds gradient steps).
//   - Seeds are mixed from (seed, budget index, batch index), so the result depends on (seed,
//     batch_size) only and is the same on every run and any number of advaug threads.
//   - The model is put in eval mode for the call (mode_guard) and used through its const
//     forward() and input_gradient() only.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/data/dataset.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/format.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/evaluation/accuracy.hpp"
#include "advaug/evaluation/results.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/static_checks.hpp"
#include "advaug/perturbations/natural.hpp"
#include "advaug/perturbations/search.hpp"

namespace advaug {

/// How evaluate_worst_case() searches and batches. Setters validate at once and throw
/// std::invalid_argument naming the setter and the value.
/// Defaults: search worst of 10 draws refined by 5 gradient steps (search_method::both), batch
/// size 500, seed 0, domain [0, 1], image size from a [1, H, W] sample shape.
class worst_case_evaluation_options {
public:
    worst_case_evaluation_options& search(worst_case_options o) {
        search_ = std::move(o);
        return *this;
    }
    /// requires: height, width >= 1. Needed for flat [C * H * W] samples.
    worst_case_evaluation_options& image_size(std::size_t height, std::size_t width) {
        if (height == 0 || width == 0) {
            detail::invalid("worst_case_evaluation_options::image_size",
                            "height and width must be >= 1, got height ", height, " and width ", width);
        }
        height_ = height;
        width_ = width;
        return *this;
    }
    /// requires: >= 1.
    worst_case_evaluation_options& batch_size(std::size_t n) {
        if (n == 0) detail::invalid("worst_case_evaluation_options::batch_size", "batch_size must be >= 1, got 0");
        batch_size_ = n;
        return *this;
    }
    worst_case_evaluation_options& seed(std::uint64_t s) {
        seed_ = s;
        return *this;
    }
    /// The families' input domain (their bounds and normalization; see input_domain).
    worst_case_evaluation_options& domain(input_domain d) {
        domain_ = std::move(d);
        return *this;
    }

    const worst_case_options& search() const { return search_; }
    /// {0, 0} when not set.
    std::pair<std::size_t, std::size_t> image_size() const { return {height_, width_}; }
    std::size_t batch_size() const { return batch_size_; }
    std::uint64_t seed() const { return seed_; }
    const input_domain& domain() const { return domain_; }

private:
    worst_case_options search_ = worst_case_options{}.method(search_method::both).samples(10).steps(5);
    std::size_t height_ = 0, width_ = 0;
    std::size_t batch_size_ = 500;
    std::uint64_t seed_ = 0;
    input_domain domain_;
};

/// How a search is described in the report: "worst of 10 draws, then 5 gradient steps".
inline std::string describe(const worst_case_options& o) {
    using detail::concat;
    switch (o.method()) {
        case search_method::gradient:
            return concat(o.steps(), " gradient steps of ", o.step_fraction(), " of the budget, ", o.restarts(),
                          o.restarts() == 1 ? " start" : " starts", o.random_start() ? " (random)" : " (identity)");
        case search_method::random: return concat("worst of ", o.samples(), " random draws");
        case search_method::both:
            return concat("worst of ", o.samples(), " random draws, then ", o.steps(), " gradient steps of ",
                          o.step_fraction(), " of the budget");
        case search_method::exhaustive: return "exhaustive";
    }
    return "?";
}

/// Accuracy under the worst perturbation from `make(budget)` at each budget, as a
/// family_curve named `family` with budget unit `parameter`.
/// requires: M a classifier of data's rank and class count; budgets each finite and >= 0, no
///           value twice (sorted here); family a file-name-safe name; make(b) a perturbation
///           family (perturbations/family.hpp) over the samples' features, for every b > 0.
/// throws:   std::invalid_argument naming "evaluate_worst_case", the argument and the value,
///           before any search; the family's and the search's own errors.
template <class M, class S, class Make>
family_curve evaluate_worst_case(M& model, const dataset<S>& data, const std::string& family,
                                 const std::string& parameter, std::vector<double> budgets, Make&& make,
                                 const worst_case_evaluation_options& options);

/// The same for a natural_family on images: samples [C, H, W], or flat [C * H * W] with
/// options.image_size().
template <class M, class S>
family_curve evaluate_worst_case(M& model, const dataset<S>& data, natural_family family, std::vector<double> budgets,
                                 const worst_case_evaluation_options& options);

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail::worst_case_eval {

inline constexpr std::uint64_t stream = 0x776f727374637276ULL;  // "worstcrv"

inline void check_budgets(const char* fn, std::vector<double>& budgets) {
    if (budgets.empty()) invalid(fn, "budgets is empty; give at least one, e.g. {0, 5, 10, 15}");
    for (std::size_t i = 0; i < budgets.size(); ++i) {
        if (!std::isfinite(budgets[i]) || budgets[i] < 0)
            invalid(fn, "budgets[", i, "] must be finite and >= 0, got ", budgets[i]);
    }
    std::sort(budgets.begin(), budgets.end());
    const auto twice = std::adjacent_find(budgets.begin(), budgets.end());
    if (twice != budgets.end()) invalid(fn, "budget ", *twice, " is given twice");
}

}  // namespace detail::worst_case_eval

template <class M, class S, class Make>
family_curve evaluate_worst_case(M& model, const dataset<S>& data, const std::string& family,
                                 const std::string& parameter, std::vector<double> budgets, Make&& make,
                                 const worst_case_evaluation_options& options) {
    if constexpr (check_classifier<M>()) {
        const char* fn = "evaluate_worst_case";
        detail::worst_case_eval::check_budgets(fn, budgets);
        if (family.empty()) detail::invalid(fn, "family is empty; name it, e.g. \"rotation\"");
        for (char ch : family) {
            const auto u = static_cast<unsigned char>(ch);
            if (!((std::isalnum(u) && u < 0x80) || ch == '-' || ch == '_'))
                detail::invalid(fn, "family '", family, "' names a report file: use letters, digits, '-' and '_'");
        }
        if (data.size() == 0) detail::invalid(fn, "data is empty");
        if (data.batch_rank() != M::input_rank) {
            detail::invalid(fn, "the model takes inputs of rank ", M::input_rank, ", but the dataset's samples of shape ",
                            detail::shape_string(data.sample_shape()), " make batches of rank ", data.batch_rank());
        }
        if (data.num_classes() != model.num_classes()) {
            detail::invalid(fn, "the dataset has ", data.num_classes(), " classes but the model has ",
                            model.num_classes(), " logits; they must be equal");
        }
        // Build every family before the first batch: a bad budget fails here, not after minutes.
        using family_type = std::decay_t<decltype(make(budgets.back()))>;
        std::vector<std::optional<family_type>> families;
        for (double b : budgets) {
            if (b == 0) {
                families.emplace_back();
            } else {
                families.emplace_back(make(b));
            }
        }

        const mode_guard<M> guard(model, mode::eval);
        const M& frozen = model;
        const std::size_t n = data.size(), bs = options.batch_size();
        std::vector<std::uint64_t> correct(budgets.size(), 0);
        std::vector<std::size_t> indices;
        input_t<M> x;
        label_vector y;
        typename M::cache_type cache;
        logits_t<M> logits;
        auto count = [&](const input_t<M>& input) {
            frozen.forward(input, cache, logits);
            const std::size_t rows = logits.shape()[0], k = logits.shape()[1];
            std::uint64_t hits = 0;
            for (std::size_t i = 0; i < rows; ++i) {
                if (static_cast<std::int64_t>(detail::predicted_class(fn, logits.data() + i * k, k, i)) == y(i)) ++hits;
            }
            return hits;
        };
        for (std::size_t b = 0, first = 0; first < n; ++b, first += bs) {
            const std::size_t rows = std::min(bs, n - first);
            indices.resize(rows);
            std::iota(indices.begin(), indices.end(), first);
            data.batch(std::span<const std::size_t>(indices), x, y);
            for (std::size_t j = 0; j < budgets.size(); ++j) {
                if (!families[j]) {
                    correct[j] += count(x);
                    continue;
                }
                const auto search =
                    worst_case_options(options.search()).seed(detail::mix_seed(options.seed(), detail::worst_case_eval::stream + j, b));
                const auto r = worst_case(frozen, *families[j], x, y, search);
                correct[j] += count(r.perturbed);
            }
        }
        family_curve out;
        out.family = family;
        out.parameter = parameter;
        out.search = describe(options.search());
        out.budget = budgets;
        for (std::uint64_t c : correct) out.accuracy.push_back(static_cast<double>(c) / static_cast<double>(n));
        return out;
    } else {
        return {};
    }
}

template <class M, class S>
family_curve evaluate_worst_case(M& model, const dataset<S>& data, natural_family family, std::vector<double> budgets,
                                 const worst_case_evaluation_options& options) {
    using T = typename M::value_type;
    const char* fn = "evaluate_worst_case";
    const auto& shape = data.sample_shape();
    auto [h, w] = options.image_size();
    image_shape img{};
    if (h == 0) {
        if (shape.size() != 3) {
            detail::invalid(fn, "the ", to_string(family), " family needs the image size: set "
                            "worst_case_evaluation_options::image_size() for samples of shape ",
                            detail::shape_string(shape));
        }
        img = image_shape{shape[0], shape[1], shape[2]};
    } else {
        std::size_t features = 1;
        for (std::size_t d : shape) features *= d;
        img = image_shape_for(fn, features, h, w);
    }
    const std::string name(to_string(family)), unit(budget_unit(family));
    return with_natural_family<T>(family, img, options.domain(), [&](auto make) {
        return evaluate_worst_case(model, data, name, unit, std::move(budgets), make, options);
    });
}

}  // namespace advaug
