// Options of the trainer. Setters check their own value at once; the trainer's constructor
// checks how they fit together (validate()). Nothing falls back silently: options without a
// natural default (the learning rate, epsilon for an attack) must be set, and the defaults
// that exist are listed here and printed at the start of a run.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <variant>

#include "advaug/detail/error.hpp"
#include "advaug/detail/format.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/perturbations/any_family.hpp"
#include "advaug/perturbations/augment_and_mix.hpp"
#include "advaug/perturbations/search_options.hpp"
#include "advaug/training/data_parallel.hpp"
#include "advaug/training/method.hpp"
#include "advaug/training/reports.hpp"
#include "advaug/training/schedule.hpp"

namespace advaug {

enum class progress_style {
    automatic,  ///< a bar when the output is a terminal, plain lines otherwise
    bar,        ///< an updating bar with ETA, samples/s and the running losses
    lines,      ///< the seed's log line every log_every batches and epoch summaries
    none,
};

/// What the catastrophic-overfitting guard does when robust accuracy collapses.
enum class collapse_action { warn, stop_and_restore };

class train_options {
public:
    train_options& method(training_method m) {
        method_ = m;
        return *this;
    }
    /// Attack radius in raw units (see input_domain). For plain training it only sets the
    /// attack of the epoch summary and of the collapse guard.
    train_options& epsilon(double eps) {
        if (!std::isfinite(eps) || eps < 0) bad("epsilon", "must be finite and >= 0", eps);
        epsilon_ = eps;
        return *this;
    }
    /// Weight of the adversarial loss, in [0, 1]. Default: see default_alpha().
    train_options& alpha(double a) {
        if (!(a >= 0 && a <= 1)) bad("alpha", "must be in [0, 1]", a);
        alpha_ = a;
        return *this;
    }
    /// The learning-rate schedule (required).
    train_options& learning_rate(lr_schedule s) {
        lr_ = std::move(s);
        return *this;
    }
    /// Method family: the perturbation family whose worst case each batch trains on, and the
    /// search that finds it (perturbations/search.hpp; its seed is mixed with each batch's).
    /// Every start draws from the family's budget, so `search.random_start(false)` with one
    /// gradient step is the seed's recipe in theta, and its forward pass at x is the clean
    /// loss's too. The family takes the trainer's input domain (give both the same one).
    /// Any kind of family: a continuous one is searched as `search` says; a gradient-free one
    /// (quantize) takes search_method::random only; a discrete one (dropped_sensors) is searched
    /// greedily by its relaxed gradient (gradient), by random masks (random), by both, or
    /// exhaustively (exhaustive: every mask, for each batch).
    /// requires: a family of the model's value type (checked when the trainer is built); a
    ///           search method the family's kind admits (checked here).
    template <class F>
    train_options& family(F f, worst_case_options search = {}) {
        using T = typename F::value_type;
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                      "advaug: train_options::family takes a family of float or double");
        any_family<T> held(std::move(f));
        const perturbation_kind kind = held.held_kind();
        if (kind == perturbation_kind::gradient_free && search.method() != search_method::random) {
            detail::invalid("train_options::family", "search method ", to_string(search.method()),
                            " needs gradients, and the family is gradient-free (its output is "
                            "piecewise constant in theta); use search_method::random");
        }
        if (kind != perturbation_kind::discrete && search.method() == search_method::exhaustive) {
            detail::invalid("train_options::family", "search method exhaustive needs a discrete "
                            "family (a mask); use gradient, random or both");
        }
        family_ = family_settings{std::move(held), search};
        return *this;
    }
    /// Methods augmix and augmax: the mixture family the augmented views are drawn from, the
    /// weight lambda of the Jensen-Shannon consistency loss (AugMix's 12), and for augmax the
    /// search of the worst mixture (default: gradient ascent, 5 steps of step fraction 0.25 from
    /// a random draw, the AugMix draw it hardens). The mixture takes the trainer's input domain.
    /// requires: weight finite and > 0; a search method other than exhaustive.
    template <class T>
    train_options& consistency(augment_and_mix<T> mixture, double weight = 12,
                               worst_case_options search = default_consistency_search()) {
        static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                      "advaug: train_options::consistency takes a mixture of float or double");
        if (!std::isfinite(weight) || weight <= 0) bad("consistency", "weight must be finite and > 0", weight);
        if (search.method() == search_method::exhaustive) {
            detail::invalid("train_options::consistency", "search method exhaustive needs a discrete "
                            "family (a mask); use gradient, random or both");
        }
        consistency_ = consistency_settings{std::move(mixture), weight, search};
        return *this;
    }
    /// The search augmax uses unless told otherwise.
    static worst_case_options default_consistency_search() {
        return worst_case_options{}.steps(5).step_fraction(0.25).random_start(true);
    }
    /// Ramps epsilon linearly from 0 over the first `epochs` epochs (0: no warm-up). With
    /// method family it ramps the family's budget about the identity (docs/training.md).
    train_options& epsilon_warmup(double epochs) {
        if (!std::isfinite(epochs) || epochs < 0) bad("epsilon_warmup", "must be finite and >= 0", epochs);
        warmup_ = epochs;
        return *this;
    }
    train_options& epochs(std::size_t e) {
        if (e == 0) bad("epochs", "must be >= 1", e);
        epochs_ = e;
        return *this;
    }
    train_options& batch_size(std::size_t b) {
        if (b == 0) bad("batch_size", "must be >= 1", b);
        batch_size_ = b;
        return *this;
    }
    /// Seeds shuffling and every random start; with the same thread count a run is bitwise
    /// reproducible.
    train_options& seed(std::uint64_t s) {
        seed_ = s;
        return *this;
    }
    /// PGD training only: number of steps (default 7) and step size (default 2.5 eps / steps).
    train_options& pgd_steps(std::size_t k) {
        if (k == 0) bad("pgd_steps", "must be >= 1", k);
        pgd_steps_ = k;
        return *this;
    }
    train_options& pgd_step_size(double s) {
        if (!std::isfinite(s) || s <= 0) bad("pgd_step_size", "must be finite and > 0", s);
        pgd_step_size_ = s;
        return *this;
    }
    /// Mode of the model while the attack runs (default eval: batch norm uses its running
    /// statistics and dropout is off, and the attack never updates statistics either way).
    train_options& attack_mode(advaug::mode m) {
        attack_mode_ = m;
        return *this;
    }
    train_options& domain(input_domain d) {
        domain_ = std::move(d);
        return *this;
    }
    /// The seed's log line every n batches (default 100; 0: never).
    train_options& log_every(std::size_t n) {
        log_every_ = n;
        return *this;
    }
    train_options& progress(progress_style p) {
        progress_ = p;
        return *this;
    }
    /// Where progress goes (default std::cout). The stream must outlive the trainer.
    train_options& output(std::ostream& out) {
        output_ = &out;
        return *this;
    }
    /// A JSON-lines log: one object per logged batch and per epoch (empty: none).
    train_options& json_log(std::string path) {
        json_log_ = std::move(path);
        return *this;
    }
    /// Epoch summary: clean and PGD-k accuracy (k = pgd_steps, default 20, step
    /// 2.5 eps / k, random start) on the first `samples` of the validation set (default 1000).
    train_options& evaluation(std::size_t samples, std::size_t pgd_steps) {
        if (samples == 0) bad("evaluation", "samples must be >= 1", samples);
        if (pgd_steps == 0) bad("evaluation", "pgd_steps must be >= 1", pgd_steps);
        evaluation_ = evaluation_settings{samples, pgd_steps};
        return *this;
    }
    /// The catastrophic-overfitting guard: every `every_batches` batches (0: at the end of
    /// each epoch) it measures PGD accuracy on a fixed batch of `samples` training samples;
    /// a drop of more than `drop` (absolute, e.g. 0.2) below the best so far is a collapse.
    train_options& collapse_guard(std::size_t every_batches, double drop, collapse_action action,
                                  std::size_t samples = 512, std::size_t pgd_steps = 10) {
        if (!(drop > 0 && drop <= 1)) bad("collapse_guard", "drop must be in (0, 1]", drop);
        if (samples == 0) bad("collapse_guard", "samples must be >= 1", samples);
        if (pgd_steps == 0) bad("collapse_guard", "pgd_steps must be >= 1", pgd_steps);
        guard_ = guard_settings{every_batches, drop, action, samples, pgd_steps};
        return *this;
    }
    train_options& no_collapse_guard() {
        guard_.reset();
        return *this;
    }
    /// Save the whole training state to `path` every `every_batches` batches (0: at the end
    /// of each epoch only) and at the end of each epoch, atomically.
    train_options& checkpoint(std::string path, std::size_t every_batches = 0) {
        if (path.empty()) bad("checkpoint", "path must not be empty", "''");
        checkpoint_ = checkpoint_settings{std::move(path), every_batches};
        return *this;
    }
    /// No checkpoints (the default).
    train_options& no_checkpoint() {
        checkpoint_ = checkpoint_settings{};
        return *this;
    }
    /// Data parallelism (training/data_parallel.hpp): each global batch of batch_size() is
    /// split across the processes of `s`, and their gradients summed before each step.
    /// Empty (the default): this process trains alone.
    train_options& sharing(std::shared_ptr<gradient_sharing> s) {
        sharing_ = std::move(s);
        return *this;
    }
    train_options& on_batch(std::function<void(const batch_report&)> f) {
        on_batch_ = std::move(f);
        return *this;
    }
    train_options& on_epoch(std::function<void(const epoch_report&)> f) {
        on_epoch_ = std::move(f);
        return *this;
    }

    /// What collapse_guard() was given.
    struct guard_settings {
        std::size_t every_batches;
        double drop;
        collapse_action action;
        std::size_t samples;
        std::size_t pgd_steps;
    };
    /// What evaluation() was given (or its defaults).
    struct evaluation_settings {
        std::size_t samples = 1000;
        std::size_t pgd_steps = 20;
    };
    /// What family() was given: the family, held as an any_family of its value type.
    struct family_settings {
        std::variant<any_family<float>, any_family<double>> family;
        worst_case_options search;
    };
    /// What consistency() was given.
    struct consistency_settings {
        std::variant<augment_and_mix<float>, augment_and_mix<double>> mixture;
        double weight;
        worst_case_options search;
    };
    /// What checkpoint() was given; an empty path means no checkpoints.
    struct checkpoint_settings {
        std::string path;
        std::size_t every_batches = 0;
    };

    // Each getter has its setter's name and returns what the setter was given.
    training_method method() const { return method_; }
    std::optional<double> epsilon() const { return epsilon_; }
    double alpha() const { return alpha_ ? *alpha_ : default_alpha(method_); }
    const std::optional<lr_schedule>& learning_rate() const { return lr_; }
    double epsilon_warmup() const { return warmup_; }
    std::size_t epochs() const { return epochs_; }
    std::size_t batch_size() const { return batch_size_; }
    std::uint64_t seed() const { return seed_; }
    std::size_t pgd_steps() const { return pgd_steps_ ? *pgd_steps_ : 7; }
    double pgd_step_size() const {
        return pgd_step_size_ ? *pgd_step_size_ : 2.5 * epsilon_.value_or(0) / static_cast<double>(pgd_steps());
    }
    advaug::mode attack_mode() const { return attack_mode_; }
    const input_domain& domain() const { return domain_; }
    std::size_t log_every() const { return log_every_; }
    progress_style progress() const { return progress_; }
    std::ostream* output() const { return output_; }
    const std::string& json_log() const { return json_log_; }
    const evaluation_settings& evaluation() const { return evaluation_; }
    /// Empty when there is no guard (the default, or after no_collapse_guard()).
    const std::optional<guard_settings>& collapse_guard() const { return guard_; }
    const checkpoint_settings& checkpoint() const { return checkpoint_; }
    /// Empty unless family() was called.
    const std::optional<family_settings>& family() const { return family_; }
    /// Empty unless consistency() was called.
    const std::optional<consistency_settings>& consistency() const { return consistency_; }
    const std::shared_ptr<gradient_sharing>& sharing() const { return sharing_; }
    const std::function<void(const batch_report&)>& on_batch() const { return on_batch_; }
    const std::function<void(const epoch_report&)>& on_epoch() const { return on_epoch_; }

    /// How the options fit together; the trainer calls this when it is built.
    void validate(const char* fn) const {
        if (!lr_) detail::invalid(fn, "learning_rate was not set; call .learning_rate(...)");
        const bool consistency = is_consistency(method_);
        const bool attacks = method_ != training_method::plain && !consistency;
        const bool family = method_ == training_method::family;
        if (consistency && !consistency_) {
            detail::invalid(fn, "method ", to_string(method_), " needs a mixture; call .consistency(...)");
        }
        if (!consistency && consistency_) {
            detail::invalid(fn, "a consistency mixture is set but the method is ", to_string(method_),
                            ", not augmix or augmax");
        }
        if (consistency && alpha_) {
            detail::invalid(fn, "alpha is set (", *alpha_, ") but method ", to_string(method_),
                            " trains on CE(x) + weight * JS; set the weight with .consistency(...)");
        }
        if (family && family_ && warmup_ > 0) {
            const bool mask = std::visit(
                [](const auto& f) { return f.held_kind() == perturbation_kind::discrete; },
                family_->family);
            if (mask) {
                detail::invalid(fn, "epsilon_warmup is set but the family is discrete (a mask of "
                                "0s and 1s), whose budget cannot be scaled; leave the warm-up out");
            }
        }
        if (consistency && warmup_ > 0) {
            detail::invalid(fn, "epsilon_warmup is set but method ", to_string(method_), " has no epsilon to ramp");
        }
        if (family && !family_) detail::invalid(fn, "method family needs a family; call .family(...)");
        if (!family && family_) {
            detail::invalid(fn, "a family is set but the method is ", to_string(method_), ", not family");
        }
        if (family && epsilon_) {
            detail::invalid(fn, "epsilon is set (", detail::format_shortest(*epsilon_), ") but method family takes its budget "
                            "from the family; the epoch summary and the guard search the family too");
        }
        if (attacks && !family && !epsilon_) {
            detail::invalid(fn, "method ", to_string(method_), " needs epsilon; call .epsilon(...)");
        }
        if (!attacks && !consistency && alpha_ && *alpha_ != 0) {
            detail::invalid(fn, "alpha is ", *alpha_, " but method plain has no adversarial loss");
        }
        if (method_ != training_method::pgd && (pgd_steps_ || pgd_step_size_)) {
            detail::invalid(fn, "pgd_steps/pgd_step_size are set but the method is ",
                            to_string(method_), ", not pgd");
        }
        if (attacks && !family && *epsilon_ == 0) {
            detail::invalid(fn, "method ", to_string(method_), " with epsilon 0 is plain training; "
                            "use method plain");
        }
        if (warmup_ > 0 && !attacks && !consistency) {
            detail::invalid(fn, "epsilon_warmup is set but method plain has no attack");
        }
        if (guard_ && !epsilon_ && !family) {
            detail::invalid(fn, "the collapse guard needs epsilon for its PGD attack");
        }
    }

private:
    template <class V>
    [[noreturn]] static void bad(const char* option, const char* rule, const V& value) {
        const std::string fn = std::string("train_options::") + option;
        detail::invalid(fn.c_str(), option, " ", rule, ", got ", value);
    }

    training_method method_ = training_method::plain;
    std::optional<double> epsilon_;
    std::optional<double> alpha_;
    std::optional<lr_schedule> lr_;
    double warmup_ = 0;
    std::size_t epochs_ = 1;
    std::size_t batch_size_ = 128;
    std::uint64_t seed_ = 0;
    std::optional<std::size_t> pgd_steps_;
    std::optional<double> pgd_step_size_;
    advaug::mode attack_mode_ = advaug::mode::eval;
    input_domain domain_;
    std::size_t log_every_ = 100;
    progress_style progress_ = progress_style::automatic;
    std::ostream* output_ = nullptr;
    std::string json_log_;
    evaluation_settings evaluation_;
    std::optional<guard_settings> guard_;
    checkpoint_settings checkpoint_;
    std::shared_ptr<gradient_sharing> sharing_;
    std::function<void(const batch_report&)> on_batch_;
    std::function<void(const epoch_report&)> on_epoch_;
    std::optional<family_settings> family_;
    std::optional<consistency_settings> consistency_;
};

}  // namespace advaug
