// A model's robustness in one pass over a test set: clean accuracy, per-class accuracy and the
// confusion matrix, accuracy-versus-epsilon curves under FGSM and PGD, and accuracy under
// common image corruptions at severities 1..5. Fills the plain records of results.hpp.
//
//   const auto options = evaluation_options{}
//                            .epsilons({0, 0.05, 0.1, 0.2})
//                            .attacks({attack_spec::fgsm(), attack_spec::pgd(20)})
//                            .corruptions(all_corruptions())
//                            .image_size(28, 28)
//                            .threads(4);
//   model_evaluation plain = evaluate_robustness(model, test, options, "plain");
//   model_evaluation robust = evaluate_robustness(robust_model, test, options, "pgd-at");
//   set_relative_mce(robust, plain);  // plain is the baseline
//
// How the numbers are made
//   - The test set is walked in batches of batch_size in dataset order. Every batch is loaded
//     once; its clean, adversarial and corrupted versions are all classified before the next
//     batch, so the data set is converted once, whatever the number of attacks.
//   - The prediction is the first maximal logit (ties go to the lowest class), as in
//     accuracy.hpp; a non-finite logit is a numeric_error.
//   - Randomness (PGD's random start, the random corruptions) is drawn per batch from a seed
//     mixed from (seed, what, batch index), never from a generator shared across batches. So
//     the results depend on (seed, batch_size) and not on the number of threads or on which
//     thread ran which batch: they are bitwise equal for 1 or 8 threads. An attack uses the
//     same seed at every epsilon and a corruption the same seed at every severity (common
//     random numbers), which keeps noise out of the differences between points of a curve.
//   - At epsilon 0 both attacks return x itself, so that point is the clean accuracy and is
//     not recomputed.
//   - An attack of attack_spec::samples(n) runs on the rows of each batch among the first n of
//     the set, with the batch's own seed; its curve's shares are of those n samples.
//   - Corruptions act on raw pixels in [0, 1]: when the domain has a normalization, each
//     batch is mapped back to raw units, corrupted and normalized again.
//   - Progress: with evaluation_options::on_progress(f), f receives an evaluation_progress
//     (fraction of the work done, rate, time left) at most every `every_seconds` and once at
//     the end, always from one thread at a time. Work is counted in forward passes of a
//     batch (an attack of k steps is k + 1 of them), so the fraction moves steadily inside a
//     long batch. progress_printer(std::cerr) prints those reports as lines.
//   - The model is put in eval mode for the call (mode_guard: restored afterwards, also on an
//     exception) and only its const members forward() and input_gradient() are used: weights,
//     gradients and running statistics are untouched.
//
// Threads
//   threads(n > 1) hands batches to n std::threads (never more than there are batches), each
//   with its own cache and buffers, sharing the model as const; this relies on the contract's
//   promise that forward() and input_gradient() on a const model with separate caches may run
//   concurrently. While one of them uses advaug's own threads (parallel/threads.hpp) the
//   others run their work on their own thread, with BLAS on one thread. With
//   set_num_threads(1), OpenBLAS starts its own threads inside every GEMM: then set
//   OPENBLAS_NUM_THREADS=1 before the run, or the two kinds of threads oversubscribe the cores
//   and the run gets slower, not faster.
//   When batches fail, the error of the lowest-numbered failing batch is rethrown, the same
//   error a single-threaded run would give. std::thread needs Threads::Threads (-pthread)
//   on platforms whose C library does not include it (glibc before 2.34).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <chrono>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <ostream>
#include <numeric>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "advaug/attacks/autoattack.hpp"
#include "advaug/attacks/fgsm.hpp"
#include "advaug/attacks/options.hpp"
#include "advaug/attacks/pgd.hpp"
#include "advaug/data/dataset.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/format.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/evaluation/accuracy.hpp"
#include "advaug/evaluation/results.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/static_checks.hpp"
#include "advaug/shifts/image_corruptions.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// One L-infinity attack of an evaluation; its strength comes from the evaluation's epsilons.
///   fgsm():       one signed-gradient step of size epsilon (attacks/fgsm.hpp).
///   pgd(steps):   `steps` steps of step_factor * epsilon / steps, projected onto the
///                 epsilon-ball and the domain, from a random start (attacks/pgd.hpp).
///                 Defaults: 20 steps, step_factor 2.5 (Madry et al. 2018), random start.
///   autoattack(v): the AutoAttack ensemble (attacks/autoattack.hpp), its `standard`, `plus`
///                 or `rand` version with the authors' settings; its curve also says which
///                 member broke each sample. The report takes it as the headline.
/// Its name in the results is "fgsm", "pgd-<steps>", or "bim-<steps>" without random start,
/// followed by "-step<factor>" when step_factor is not 2.5, and "autoattack",
/// "autoattack-plus" or "autoattack-rand".
/// Any attack can be limited to the first samples of the set with samples(n): AutoAttack on a
/// CNN takes minutes per thousand samples, and published AutoAttack figures are often on the
/// first 1,000 test images; its curve then records how many it ran on (eps_curve::samples).
class attack_spec {
public:
    enum class kind { fgsm, pgd, autoattack };

    static attack_spec fgsm() { return attack_spec(kind::fgsm, 1); }
    static attack_spec autoattack(autoattack_version v = autoattack_version::standard) {
        attack_spec a(kind::autoattack, 1);
        a.version_ = v;
        return a;
    }
    /// requires: steps >= 1.
    static attack_spec pgd(std::size_t steps = 20) {
        if (steps == 0) detail::invalid("attack_spec::pgd", "steps must be >= 1, got 0");
        return attack_spec(kind::pgd, steps);
    }

    /// PGD's step size as a multiple of epsilon / steps. requires: finite and > 0; PGD only.
    attack_spec& step_factor(double f);
    /// Start at a uniform random point of the epsilon-ball (true) or at x (false: BIM). PGD only.
    attack_spec& random_start(bool b);
    /// Run the attack on the first n samples of the data set only (clean accuracy and the
    /// corruptions still use every sample). requires: n >= 1; evaluate_robustness() requires
    /// n <= the data set's size.
    attack_spec& samples(std::size_t n);

    kind type() const { return kind_; }
    std::size_t steps() const { return steps_; }
    double step_factor() const { return step_factor_; }
    bool random_start() const { return random_start_; }
    /// AutoAttack's version (standard for the other kinds).
    autoattack_version version() const { return version_; }
    /// The samples(n) limit; 0 (the default) when the attack runs on every sample.
    std::size_t samples() const { return samples_; }
    std::string name() const;

private:
    attack_spec(kind k, std::size_t steps) : kind_(k), steps_(steps) {}

    kind kind_;
    std::size_t steps_;
    double step_factor_ = 2.5;
    bool random_start_ = true;
    autoattack_version version_ = autoattack_version::standard;
    std::size_t samples_ = 0;
};

/// A report of evaluate_robustness() while it runs (evaluation_options::on_progress).
struct evaluation_progress {
    std::string model;              ///< the label passed to evaluate_robustness()
    double fraction = 0;            ///< of the work done, in [0, 1] (1 in the last report)
    std::size_t batches_done = 0;   ///< batches whose every measurement is finished
    std::size_t batches = 0;        ///< batches in the test set
    std::size_t samples = 0;        ///< samples in the test set
    double seconds = 0;             ///< since the call started
    double samples_per_second = 0;  ///< fraction * samples / seconds: test samples fully evaluated
    double seconds_left = 0;        ///< seconds * (1 - fraction) / fraction
};

/// A progress callback that prints one line per report to `out` (which must outlive it):
////   advaug: evaluating plain: 43.1% (1 of 20 batches), 512.3 samples/s, 1:12 left
/// and "advaug: evaluated plain: 10000 samples in 3:04 (54.3 samples/s)" at the end.
inline std::function<void(const evaluation_progress&)> progress_printer(std::ostream& out);

/// What evaluate_robustness() measures and how. Each setter checks its value at once and
/// throws std::invalid_argument naming the setter and the value; how the options fit the model
/// and the data is checked by evaluate_robustness().
/// Defaults: no epsilons, attacks or corruptions (clean accuracy only), batch_size 500,
/// 1 thread, seed 0, domain [0, 1] without normalization, image size taken from a
/// [1, H, W] sample shape.
class evaluation_options {
public:
    /// Attack radii in raw units (see input_domain), stored in ascending order.
    /// requires: each finite and >= 0, no value twice.
    evaluation_options& epsilons(std::vector<double> eps);
    /// The attacks, one eps_curve each, in this order. requires: no two with the same name.
    evaluation_options& attacks(std::vector<attack_spec> a);
    /// The corruptions, one corruption_result each (severities 1..5), in this order.
    /// requires: valid enumerators, none twice.
    evaluation_options& corruptions(std::vector<corruption> c);
    /// Image size for the corruptions; needed for flat [H * W] samples, optional for
    /// [1, H, W] samples (which must then agree). requires: height, width >= 1.
    evaluation_options& image_size(std::size_t height, std::size_t width);
    /// requires: >= 1.
    evaluation_options& batch_size(std::size_t n);
    /// Evaluation threads. requires: >= 1. See "Threads" at the top of this header.
    evaluation_options& threads(std::size_t n);
    evaluation_options& seed(std::uint64_t s) {
        seed_ = s;
        return *this;
    }
    /// The attacks' input domain (valid range and normalization), also used to map batches to
    /// raw pixels for the corruptions.
    evaluation_options& domain(input_domain d) {
        domain_ = std::move(d);
        return *this;
    }
    /// Calls `f` while the evaluation runs: at most once every `every_seconds`, and once at the
    /// end. An exception from f ends the evaluation with that exception.
    /// requires: f non-empty; every_seconds finite and >= 0.
    evaluation_options& on_progress(std::function<void(const evaluation_progress&)> f,
                                    double every_seconds = 1.0);

    const std::vector<double>& epsilons() const { return epsilons_; }
    const std::vector<attack_spec>& attacks() const { return attacks_; }
    const std::vector<corruption>& corruptions() const { return corruptions_; }
    /// {0, 0} when not set.
    std::pair<std::size_t, std::size_t> image_size() const { return {height_, width_}; }
    std::size_t batch_size() const { return batch_size_; }
    std::size_t threads() const { return threads_; }
    std::uint64_t seed() const { return seed_; }
    const input_domain& domain() const { return domain_; }
    /// Empty when not set.
    const std::function<void(const evaluation_progress&)>& on_progress() const { return progress_; }
    double progress_every_seconds() const { return progress_every_; }

private:
    std::vector<double> epsilons_;
    std::vector<attack_spec> attacks_;
    std::vector<corruption> corruptions_;
    std::size_t height_ = 0, width_ = 0;
    std::size_t batch_size_ = 500;
    std::size_t threads_ = 1;
    std::uint64_t seed_ = 0;
    input_domain domain_;
    std::function<void(const evaluation_progress&)> progress_;
    double progress_every_ = 1.0;
};

/// Evaluates `model` on `data` as described at the top of this header.
/// requires: M is a classifier (model/classifier.hpp) with input_rank == data.batch_rank() and
///           num_classes() == data.num_classes(); label non-empty; if attacks are given, at
///           least one epsilon; if corruptions are given, samples of shape [H * W] or
///           [1, H, W] with H and W from image_size() (or the sample shape), pixels in [0, 1]
///           in raw units.
/// ensures:  result.model == label, result.samples == data.size();
///           clean_accuracy, per_class_accuracy (NaN for a class without samples) and
///           confusion[true][predicted] come from the same clean predictions;
///           one curve per attack with epsilon == options.epsilons();
///           one corruption_result per corruption with 5 accuracies and their mean;
///           mean_corruption_accuracy is the mean over all corruptions and severities (NaN
///           without corruptions); relative_mce is NaN (see set_relative_mce());
///           the model's mode is as before the call and nothing else of it changed.
/// throws:   std::invalid_argument naming "evaluate_robustness", the argument and the value;
///           the attacks' and corrupt_batch's own errors (an input outside the domain);
///           numeric_error for a non-finite logit or gradient.
template <class M, class S>
model_evaluation evaluate_robustness(M& model, const dataset<S>& data,
                                     const evaluation_options& options, const std::string& label);

/// Sets model.relative_mce to the relative mean corruption error against `baseline`
/// (Hendrycks and Dietterich, ICLR 2019), with errors E = 1 - accuracy:
///
///   relative CE_c = sum_s (E(c, s) - E_clean) / sum_s (E_base(c, s) - E_base_clean)
///   relative mCE  = mean over corruptions c of relative CE_c
///
/// i.e. the clean error is subtracted at every severity, as in the paper (equivalently
/// sum_s E(c, s) - S * E_clean for S severities). It measures how much a model degrades under
/// corruption relative to how much the baseline degrades: 1 for the baseline itself, below 1
/// for a model that loses less. Corruptions are matched by name.
/// A corruption whose baseline denominator is 0 (up to rounding) (the baseline loses nothing under it)
/// has an undefined ratio: it is left out of the mean; if every corruption is left out, the
/// result is NaN. A negative denominator (the baseline does better corrupted) is used as is.
/// requires: both records hold the same corruption names (in any order) with the same number
///           of severities each, at least one corruption.
/// throws:   std::invalid_argument naming "set_relative_mce", the argument and the value;
///           `model` is unchanged then.
inline void set_relative_mce(model_evaluation& model, const model_evaluation& baseline);

/// Sets model.absolute_mce to the mean corruption error against `baseline` (Hendrycks and
/// Dietterich 2019, without subtracting the clean error):
///   CE_c = sum_s E(c, s) / sum_s E_base(c, s),   absolute mCE = mean over c of CE_c
/// Below 1: fewer errors under corruption than the baseline. A corruption on which the
/// baseline makes no error is left out (NaN if all are). requires and throws: as
/// set_relative_mce, naming "set_absolute_mce".
inline void set_absolute_mce(model_evaluation& model, const model_evaluation& baseline);


// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

inline attack_spec& attack_spec::step_factor(double f) {
    const char* fn = "attack_spec::step_factor";
    if (kind_ != kind::pgd)
        detail::invalid(fn, "only PGD has a step size; this attack is ", name());
    if (!std::isfinite(f) || f <= 0)
        detail::invalid(fn, "step_factor must be finite and > 0, got ", f);
    step_factor_ = f;
    return *this;
}

inline attack_spec& attack_spec::random_start(bool b) {
    if (kind_ != kind::pgd) {
        detail::invalid("attack_spec::random_start", "only PGD has a random start; this attack is ",
                        name());
    }
    random_start_ = b;
    return *this;
}

inline attack_spec& attack_spec::samples(std::size_t n) {
    if (n == 0) {
        detail::invalid("attack_spec::samples", "n must be >= 1, got 0 (an attack runs on every sample unless "
                        "samples() is called)");
    }
    samples_ = n;
    return *this;
}

inline std::string attack_spec::name() const {
    if (kind_ == kind::fgsm) return "fgsm";
    if (kind_ == kind::autoattack) {
        return version_ == autoattack_version::standard ? "autoattack"
               : version_ == autoattack_version::plus   ? "autoattack-plus"
                                                        : "autoattack-rand";
    }
    std::string out = detail::concat(random_start_ ? "pgd-" : "bim-", steps_);
    if (step_factor_ != 2.5) {
        std::ostringstream f;  // shortest readable form: 1.5, not 1.5000000000000000
        f << step_factor_;
        out += "-step" + f.str();
    }
    return out;
}

inline evaluation_options& evaluation_options::epsilons(std::vector<double> eps) {
    const char* fn = "evaluation_options::epsilons";
    for (std::size_t i = 0; i < eps.size(); ++i) {
        if (!std::isfinite(eps[i]) || eps[i] < 0) {
            detail::invalid(fn, "epsilons[", i, "] must be finite and >= 0, got ", eps[i]);
        }
    }
    std::sort(eps.begin(), eps.end());
    const auto twice = std::adjacent_find(eps.begin(), eps.end());
    if (twice != eps.end()) detail::invalid(fn, "epsilon ", *twice, " is given twice");
    epsilons_ = std::move(eps);
    return *this;
}

inline evaluation_options& evaluation_options::attacks(std::vector<attack_spec> a) {
    for (std::size_t i = 0; i < a.size(); ++i) {
        for (std::size_t j = 0; j < i; ++j) {
            if (a[i].name() == a[j].name()) {
                detail::invalid("evaluation_options::attacks", "attacks[", j, "] and attacks[", i,
                                "] are both ", a[i].name());
            }
        }
    }
    attacks_ = std::move(a);
    return *this;
}

inline evaluation_options& evaluation_options::corruptions(std::vector<corruption> c) {
    const char* fn = "evaluation_options::corruptions";
    const std::size_t known = all_corruptions().size();
    for (std::size_t i = 0; i < c.size(); ++i) {
        if (static_cast<std::size_t>(c[i]) >= known) {
            detail::invalid(fn, "corruptions[", i, "] is not a corruption, got value ",
                            static_cast<int>(c[i]));
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (c[i] == c[j]) {
                detail::invalid(fn, "corruptions[", j, "] and corruptions[", i, "] are both ",
                                to_string(c[i]));
            }
        }
    }
    corruptions_ = std::move(c);
    return *this;
}

inline evaluation_options& evaluation_options::image_size(std::size_t height, std::size_t width) {
    if (height == 0 || width == 0) {
        detail::invalid("evaluation_options::image_size",
                        "height and width must be >= 1, got height ", height, " and width ", width);
    }
    height_ = height;
    width_ = width;
    return *this;
}

inline evaluation_options& evaluation_options::batch_size(std::size_t n) {
    if (n == 0) detail::invalid("evaluation_options::batch_size", "batch_size must be >= 1, got 0");
    batch_size_ = n;
    return *this;
}

inline evaluation_options& evaluation_options::threads(std::size_t n) {
    if (n == 0) detail::invalid("evaluation_options::threads", "threads must be >= 1, got 0");
    threads_ = n;
    return *this;
}

inline evaluation_options& evaluation_options::on_progress(
    std::function<void(const evaluation_progress&)> f, double every_seconds) {
    const char* fn = "evaluation_options::on_progress";
    if (!f) detail::invalid(fn, "the callback is empty");
    if (!std::isfinite(every_seconds) || every_seconds < 0)
        detail::invalid(fn, "every_seconds must be finite and >= 0, got ", every_seconds);
    progress_ = std::move(f);
    progress_every_ = every_seconds;
    return *this;
}

inline std::function<void(const evaluation_progress&)> progress_printer(std::ostream& out) {
    return [&out](const evaluation_progress& p) {
        if (p.fraction >= 1) {
            out << "advaug: evaluated " << p.model << ": " << p.samples << " samples in "
                << detail::format_duration(p.seconds) << " ("
                << detail::fixed(p.samples_per_second, 1) << " samples/s)\n"
                << std::flush;
            return;
        }
        out << "advaug: evaluating " << p.model << ": " << detail::percent(p.fraction) << " ("
            << p.batches_done << " of " << p.batches << " batches), "
            << detail::fixed(p.samples_per_second, 1) << " samples/s, "
            << detail::format_duration(p.seconds_left) << " left\n"
            << std::flush;
    };
}

namespace detail::robustness {

// Stream tags: attacks and corruptions never share a seed.
inline constexpr std::uint64_t attack_stream = 1, corruption_stream = 2;

inline constexpr int severities = max_corruption_severity - min_corruption_severity + 1;

/// The first maximal logit of every row, as count_correct() picks it.
template <class T>
void predict(const char* fn, const tensor<T, 2>& logits, std::vector<std::size_t>& out) {
    const std::size_t n = logits.shape()[0], k = logits.shape()[1];
    out.resize(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = predicted_class(fn, logits.data() + i * k, k, i);
}

/// AutoAttack's work per sample in forward passes, roughly: 100 APGD steps per member and
/// restart (APGD-T: per target), Square's 5000 queries; the attack stops early on broken
/// samples, so progress runs ahead of this estimate near the end.
inline double autoattack_work(const attack_spec& a) {
    switch (a.version()) {
        // FAB: per step, two forward passes and one backward pass per boundary (fab: 9)
        case autoattack_version::standard: return 100 + 9 * 100 + 9 * 100 * 3 + 5000;
        case autoattack_version::plus: return 5 * 100 + 5 * 100 + 5 * 100 * 11 + 5000 + 9 * 100 + 9 * 100 * 3;
        case autoattack_version::rand: return 2 * 100 * 20;
    }
    return 1;
}

/// The number of samples attack `a` runs on in a set of n: the first a.samples(), else all.
inline std::size_t attacked_samples(const attack_spec& a, std::size_t n) {
    return a.samples() == 0 ? n : std::min(a.samples(), n);
}

/// The work of an evaluation of n samples, in forward passes of one sample: the clean one,
/// each attack at each non-zero epsilon on the samples it attacks (FGSM: a gradient and a
/// forward; PGD with k steps: k gradients and a forward), and each corruption at each severity.
inline double total_work(const evaluation_options& o, std::size_t n) {
    double units = static_cast<double>(n) * (1 + static_cast<double>(o.corruptions().size() * severities));
    for (const attack_spec& a : o.attacks()) {
        const double per_eps = a.type() == attack_spec::kind::fgsm         ? 2.0
                               : a.type() == attack_spec::kind::autoattack ? autoattack_work(a)
                                                                           : static_cast<double>(a.steps()) + 1;
        for (double e : o.epsilons()) {
            if (e != 0.0) units += per_eps * static_cast<double>(attacked_samples(a, n));
        }
    }
    return units;
}

/// Counts the work done and calls the user's progress callback, one thread at a time.
class progress_tracker {
public:
    using clock = std::chrono::steady_clock;

    progress_tracker(const evaluation_options& o, const std::string& label, std::size_t samples,
                     std::size_t batches)
        : callback_(o.on_progress()), every_(o.progress_every_seconds()),
          total_(total_work(o, samples)), start_(clock::now()),
          last_(start_) {
        report_.model = label;
        report_.batches = batches;
        report_.samples = samples;
    }

    /// `units` forward passes of `rows` samples are done; `batch_done` after a batch's last.
    void add(double units, std::size_t rows, bool batch_done = false) {
        if (!callback_) return;
        const std::lock_guard<std::mutex> lock(mutex_);
        done_ += units * static_cast<double>(rows);
        if (batch_done) ++report_.batches_done;
        const auto now = clock::now();
        if (std::chrono::duration<double>(now - last_).count() < every_) return;
        if (done_ >= total_ || report_.batches_done == report_.batches) return;  // finish() reports the end
        last_ = now;
        call(now, std::min(done_ / total_, 1.0));
    }

    /// The last report, fraction 1; after every batch succeeded.
    void finish() {
        if (!callback_) return;
        const std::lock_guard<std::mutex> lock(mutex_);
        call(clock::now(), 1.0);
    }

private:
    void call(clock::time_point now, double fraction) {
        report_.fraction = fraction;
        report_.seconds = std::chrono::duration<double>(now - start_).count();
        report_.samples_per_second =
            report_.seconds > 0 ? fraction * static_cast<double>(report_.samples) / report_.seconds : 0.0;
        report_.seconds_left =
            fraction > 0 ? report_.seconds * (1 - fraction) / fraction : std::numeric_limits<double>::infinity();
        callback_(report_);
    }

    const std::function<void(const evaluation_progress&)>& callback_;
    const double every_;
    const double total_;
    const clock::time_point start_;
    clock::time_point last_;
    double done_ = 0;
    evaluation_progress report_;
    std::mutex mutex_;
};

/// The counts one batch (or one thread's batches) contributes; integers, so that summing
/// them in any order gives the same result.
/// The most members an ensemble attack has (AutoAttack's plus version runs 4).
inline constexpr std::size_t max_members = 8;

struct tally {
    std::uint64_t clean = 0;
    std::vector<std::uint64_t> attacked;        // [attack][epsilon], flat
    std::vector<std::uint64_t> attacked_class;  // [attack][epsilon][class], flat
    std::vector<std::uint64_t> attacked_rows;   // [attack][class]: the samples each attack ran on
    std::vector<std::uint64_t> broken;          // [attack][epsilon][member < max_members], flat
    std::vector<std::uint64_t> corrupted;       // [corruption][severity - 1], flat
    std::vector<std::uint64_t> confusion;       // [true][predicted], flat

    tally(std::size_t attacks, std::size_t attack_points, std::size_t corruption_points, std::size_t classes)
        : attacked(attack_points, 0),
          attacked_class(attack_points * classes, 0),
          attacked_rows(attacks * classes, 0),
          broken(attack_points * max_members, 0),
          corrupted(corruption_points, 0),
          confusion(classes * classes, 0) {}

    void add(const tally& o) {
        clean += o.clean;
        auto sum = [](std::vector<std::uint64_t>& a, const std::vector<std::uint64_t>& b) {
            for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
        };
        sum(attacked, o.attacked);
        sum(attacked_class, o.attacked_class);
        sum(attacked_rows, o.attacked_rows);
        sum(broken, o.broken);
        sum(corrupted, o.corrupted);
        sum(confusion, o.confusion);
    }
};

/// Everything one thread needs; nothing is shared between threads but the const model.
template <class M>
struct worker {
    using T = typename M::value_type;
    std::vector<std::size_t> indices, predicted, predicted_clean;
    input_t<M> x, scratch, x_part;  // x_part, y_part: the rows of x an attack of samples(n) runs on
    label_vector y, y_part;
    logits_t<M> logits;
    attack_workspace<M> attack;  // reused by every attack on this thread's batches
    tally counts;

    explicit worker(tally zero) : counts(std::move(zero)) {}
};

/// Checks everything that can be checked before the first batch; returns the image size
/// for the corruptions ({0, 0} without corruptions).
template <class M, class S>
std::pair<std::size_t, std::size_t> check_evaluation(const char* fn, const M& model,
                                                     const dataset<S>& data,
                                                     const evaluation_options& options,
                                                     const std::string& label) {
    if (label.empty()) invalid(fn, "label is empty; name the model, e.g. \"plain\"");
    if (data.size() == 0) invalid(fn, "data is empty");
    if (data.batch_rank() != M::input_rank) {
        invalid(fn, "the model takes inputs of rank ", M::input_rank,
                ", but the dataset's samples of shape ", shape_string(data.sample_shape()),
                " make batches of rank ", data.batch_rank());
    }
    if (data.num_classes() != model.num_classes()) {
        invalid(fn, "the dataset has ", data.num_classes(), " classes but the model has ",
                model.num_classes(), " logits; they must be equal");
    }
    if (!options.attacks().empty() && options.epsilons().empty()) {
        invalid(fn, "options has ", options.attacks().size(),
                " attack(s) but no epsilons; set evaluation_options::epsilons()");
    }
    for (const attack_spec& a : options.attacks()) {
        if (a.samples() > data.size()) {
            invalid(fn, "attack ", a.name(), " runs on the first ", a.samples(),
                    " samples (attack_spec::samples), but the dataset has only ", data.size());
        }
        if (a.type() == attack_spec::kind::autoattack && a.version() != autoattack_version::rand &&
            model.num_classes() < 4) {
            invalid(fn, "attack ", a.name(), " needs a model with at least 4 classes (its targeted "
                    "members attack the 3 classes after the top one and more), the model has ", model.num_classes());
        }
    }
    if (options.corruptions().empty()) return {0, 0};

    const auto& shape = data.sample_shape();
    auto [h, w] = options.image_size();
    const bool chw = shape.size() == 3 && shape[0] == 1;
    if (h == 0) {
        if (!chw) {
            invalid(fn,
                    "corruptions need the image size: set evaluation_options::image_size() "
                    "for samples of shape ",
                    shape_string(shape));
        }
        h = shape[1];
        w = shape[2];
    }
    const bool fits = chw ? (shape[1] == h && shape[2] == w)
                          : (shape.size() == 1 && shape[0] % w == 0 && shape[0] / w == h);
    if (!fits) {
        invalid(fn, "corruptions need samples of shape [", h * w, "] or [1, ", h, ", ", w,
                "] for image_size ", h, " x ", w, ", got samples of shape ", shape_string(shape));
    }
    return {h, w};
}

inline bool is_identity_normalization(const input_domain& d) {
    for (double m : d.mean()) {
        if (m != 0.0) return false;
    }
    for (double s : d.stddev()) {
        if (s != 1.0) return false;
    }
    return true;
}

/// x (model units) -> corrupted copy in `out` (model units).
template <class T, std::size_t R>
void corrupt_copy(const char* fn, const tensor<T, R>& x, tensor<T, R>& out, const input_domain& dom,
                  bool raw_is_model, std::size_t h, std::size_t w, corruption c, int severity,
                  std::uint64_t seed) {
    try {
        if (raw_is_model) {
            if (out.shape() != x.shape()) out.resize(x.shape());
            std::copy(x.data(), x.data() + x.size(), out.data());
            corrupt_batch(out, h, w, c, severity, seed);
        } else {
            tensor<T, R> raw = dom.denormalize(x);
            // Undo the rounding of normalize/denormalize at the ends of [0, 1] only.
            for (auto& v : raw) {
                if (v < T(0) && v > T(-1e-5)) v = T(0);
                if (v > T(1) && v < T(1) + T(1e-5)) v = T(1);
            }
            corrupt_batch(raw, h, w, c, severity, seed);
            out = dom.normalize(raw);
        }
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(
            concat(fn, "(): corruption ", to_string(c), " at severity ", severity, ": ", e.what()));
    }
}

/// Classifies `input` and returns the number of rows predicted as their label in y; with
/// `per_class`, also adds each correct row to per_class[its label].
template <class M>
std::uint64_t count(const char* fn, const M& model, worker<M>& s, const input_t<M>& input,
                    const label_vector& y, std::uint64_t* per_class = nullptr) {
    model.forward(input, s.attack.model_cache(), s.logits);
    predict(fn, s.logits, s.predicted);
    std::uint64_t correct = 0;
    for (std::size_t i = 0; i < s.predicted.size(); ++i) {
        if (static_cast<std::int64_t>(s.predicted[i]) == y(i)) {
            ++correct;
            if (per_class) ++per_class[static_cast<std::size_t>(y(i))];
        }
    }
    return correct;
}

/// AutoAttack's options for an evaluation: the evaluation's domain and seed, at most
/// classes - 1 targets, and Square's view of a rank-2 sample (the image size, else a row).
template <class M>
autoattack_options autoattack_for(const attack_spec& spec, const evaluation_options& options,
                                  double eps, std::uint64_t seed, std::size_t classes,
                                  std::size_t features, std::size_t h, std::size_t w) {
    auto o = autoattack_options{}
                 .epsilon(eps)
                 .version(spec.version())
                 .n_target_classes(std::min<std::size_t>(9, classes > 1 ? classes - 1 : 1))
                 .seed(seed)
                 .domain(options.domain());
    if constexpr (M::input_rank == 2) {
        if (h > 0 && features % (h * w) == 0) {
            o.image_shape(features / (h * w), h, w);
        } else {
            o.image_shape(1, 1, features);
        }
    }
    return o;
}

/// All measurements on batch b, added to s.counts.
template <class M, class S>
void run_batch(const char* fn, const M& model, const dataset<S>& data,
               const evaluation_options& options, std::size_t h, std::size_t w, std::size_t b,
               worker<M>& s, progress_tracker& progress) {
    const std::size_t n = data.size(), bs = options.batch_size();
    const std::size_t first = b * bs, rows = std::min(bs, n - first);
    s.indices.resize(rows);
    std::iota(s.indices.begin(), s.indices.end(), first);
    data.batch(std::span<const std::size_t>(s.indices), s.x, s.y);

    // Clean: accuracy and confusion matrix.
    const std::size_t classes = model.num_classes();
    const std::uint64_t clean = count(fn, model, s, s.x, s.y);
    s.counts.clean += clean;
    s.predicted_clean = s.predicted;
    for (std::size_t i = 0; i < rows; ++i) {
        s.counts.confusion[static_cast<std::size_t>(s.y(i)) * classes + s.predicted[i]] += 1;
    }
    progress.add(1, rows);

    // Attacks: one seed per (attack, batch), shared by all epsilons. An attack of samples(n)
    // runs on the batch's rows among the first n of the set: all, a prefix, or none.
    const auto& eps = options.epsilons();
    for (std::size_t a = 0; a < options.attacks().size(); ++a) {
        const attack_spec& spec = options.attacks()[a];
        const std::size_t limit = attacked_samples(spec, n);
        if (first >= limit) continue;
        const std::size_t k = std::min(rows, limit - first);
        if (k < rows) {
            data.batch(std::span<const std::size_t>(s.indices.data(), k), s.x_part, s.y_part);
        }
        const input_t<M>& x = k < rows ? s.x_part : s.x;
        const label_vector& y = k < rows ? s.y_part : s.y;
        for (std::size_t i = 0; i < k; ++i) ++s.counts.attacked_rows[a * classes + static_cast<std::size_t>(y(i))];
        const std::uint64_t seed = mix_seed(options.seed(), attack_stream + 16 * a, b);
        for (std::size_t e = 0; e < eps.size(); ++e) {
            const std::size_t point = a * eps.size() + e;
            std::uint64_t& slot = s.counts.attacked[point];
            std::uint64_t* per_class = s.counts.attacked_class.data() + point * classes;
            if (eps[e] == 0.0) {  // every attack returns x itself
                for (std::size_t i = 0; i < k; ++i) {
                    if (static_cast<std::int64_t>(s.predicted_clean[i]) == y(i)) {
                        ++slot;
                        ++per_class[static_cast<std::size_t>(y(i))];
                    }
                }
                continue;
            }
            if (spec.type() == attack_spec::kind::autoattack) {
                const auto r = advaug::autoattack(
                    model, x, y,
                    autoattack_for<M>(spec, options, eps[e], seed, classes, x.size() / k, h, w),
                    s.attack);
                for (int by : r.broken_by) {
                    if (by >= 0 && static_cast<std::size_t>(by) < max_members) ++s.counts.broken[point * max_members + static_cast<std::size_t>(by)];
                }
                slot += count(fn, model, s, r.adversarial, y, per_class);
                progress.add(autoattack_work(spec), k);
                continue;
            }
            if (spec.type() == attack_spec::kind::fgsm) {
                s.scratch =
                    advaug::fgsm(model, x, y,
                                 fgsm_options{}.epsilon(eps[e]).domain(options.domain()), s.attack);
            } else {
                const double steps = static_cast<double>(spec.steps());
                s.scratch = advaug::pgd(model, x, y,
                                        pgd_options{}
                                            .epsilon(eps[e])
                                            .steps(spec.steps())
                                            .step_size(spec.step_factor() * eps[e] / steps)
                                            .random_start(spec.random_start())
                                            .seed(seed)
                                            .domain(options.domain()),
                                        s.attack);
            }
            slot += count(fn, model, s, s.scratch, y, per_class);
            progress.add(spec.type() == attack_spec::kind::fgsm ? 2.0 : static_cast<double>(spec.steps()) + 1,
                         k);
        }
    }

    // Corruptions: one seed per (corruption, batch), shared by all severities.
    const bool raw_is_model = is_identity_normalization(options.domain());
    for (std::size_t c = 0; c < options.corruptions().size(); ++c) {
        const corruption kind = options.corruptions()[c];
        const std::uint64_t seed =
            mix_seed(options.seed(), corruption_stream + 16 * static_cast<std::uint64_t>(kind), b);
        for (int sev = min_corruption_severity; sev <= max_corruption_severity; ++sev) {
            corrupt_copy(fn, s.x, s.scratch, options.domain(), raw_is_model, h, w, kind, sev, seed);
            s.counts.corrupted[c * severities + static_cast<std::size_t>(sev - 1)] +=
                count(fn, model, s, s.scratch, s.y);
            progress.add(1, rows);
        }
    }
    progress.add(0, rows, true);
}

}  // namespace detail::robustness

template <class M, class S>
model_evaluation evaluate_robustness(M& model, const dataset<S>& data,
                                     const evaluation_options& options, const std::string& label) {
    if constexpr (check_classifier<M>()) {
        namespace rb = detail::robustness;
        const char* fn = "evaluate_robustness";
        // Plain variables, not structured bindings: lambdas below capture them (clang < 16).
        const auto image_size = rb::check_evaluation(fn, model, data, options, label);
        const std::size_t h = image_size.first, w = image_size.second;

        const std::size_t classes = model.num_classes();
        const std::size_t n_eps = options.epsilons().size();
        const std::size_t n_attacks = options.attacks().size();
        const std::size_t n_corruptions = options.corruptions().size();
        const rb::tally zero(n_attacks, n_attacks * n_eps, n_corruptions * rb::severities, classes);
        const std::size_t batches = batches_per_epoch(data.size(), options.batch_size(), false);

        rb::tally total = zero;
        rb::progress_tracker progress(options, label, data.size(), batches);
        {
            const mode_guard<M> guard(model, mode::eval);
            const M& frozen = model;
            const std::size_t n_threads = std::min(options.threads(), batches);
            if (n_threads == 1) {
                rb::worker<M> s(zero);
                for (std::size_t b = 0; b < batches; ++b) {
                    rb::run_batch(fn, frozen, data, options, h, w, b, s, progress);
                }
                total.add(s.counts);
            } else {
                // Batches are claimed in increasing order; after a failure no new batch is
                // claimed, so every batch before the failing one still completes.
                std::atomic<std::size_t> next{0};
                std::atomic<bool> failed{false};
                std::vector<rb::tally> counts(n_threads, zero);
                std::vector<std::pair<std::size_t, std::exception_ptr>> errors(n_threads);
                auto work = [&](std::size_t t) noexcept {
                    std::size_t b = 0;
                    try {
                        rb::worker<M> s(zero);  // this thread's cache and buffers
                        while (!failed.load() && (b = next.fetch_add(1)) < batches) {
                            rb::run_batch(fn, frozen, data, options, h, w, b, s, progress);
                        }
                        counts[t] = std::move(s.counts);
                    } catch (...) {
                        errors[t] = {b, std::current_exception()};
                        failed.store(true);
                    }
                };
                std::vector<std::thread> pool;
                pool.reserve(n_threads - 1);
                try {
                    for (std::size_t t = 1; t < n_threads; ++t) pool.emplace_back(work, t);
                } catch (...) {  // no thread may outlive this scope, not even on failure
                    failed.store(true);
                    for (auto& th : pool) th.join();
                    throw;
                }
                work(0);
                for (auto& th : pool) th.join();
                const std::pair<std::size_t, std::exception_ptr>* first = nullptr;
                for (const auto& e : errors) {
                    if (e.second && (!first || e.first < first->first)) first = &e;
                }
                if (first) std::rethrow_exception(first->second);
                for (const auto& c : counts) total.add(c);
            }
        }
        progress.finish();

        const double n = static_cast<double>(data.size());
        const double nan = std::numeric_limits<double>::quiet_NaN();
        model_evaluation out;
        out.model = label;
        out.samples = data.size();
        out.clean_accuracy = static_cast<double>(total.clean) / n;
        out.confusion.assign(classes, std::vector<std::uint64_t>(classes, 0));
        out.per_class_accuracy.assign(classes, nan);
        for (std::size_t t = 0; t < classes; ++t) {
            std::uint64_t row = 0;
            for (std::size_t p = 0; p < classes; ++p) {
                out.confusion[t][p] = total.confusion[t * classes + p];
                row += out.confusion[t][p];
            }
            if (row > 0) {
                out.per_class_accuracy[t] =
                    static_cast<double>(out.confusion[t][t]) / static_cast<double>(row);
            }
        }
        for (std::size_t a = 0; a < n_attacks; ++a) {
            eps_curve curve;
            curve.attack = options.attacks()[a].name();
            curve.epsilon = options.epsilons();
            const attack_spec& spec = options.attacks()[a];
            curve.samples = rb::attacked_samples(spec, data.size());
            const double attacked = static_cast<double>(curve.samples);
            if (spec.type() == attack_spec::kind::autoattack) {
                for (const auto& m : detail::autoattack_members(spec.version()))
                    curve.members.emplace_back(detail::member_name(m.member));
            }
            for (std::size_t e = 0; e < n_eps; ++e) {
                const std::size_t point = a * n_eps + e;
                curve.accuracy.push_back(static_cast<double>(total.attacked[point]) / attacked);
                std::vector<double> per_class(classes, nan);
                for (std::size_t t = 0; t < classes; ++t) {
                    const std::uint64_t row = total.attacked_rows[a * classes + t];
                    if (row > 0) {
                        per_class[t] = static_cast<double>(total.attacked_class[point * classes + t]) /
                                       static_cast<double>(row);
                    }
                }
                curve.per_class_accuracy.push_back(std::move(per_class));
                if (!curve.members.empty()) {
                    std::vector<double> broken;
                    for (std::size_t m = 0; m < curve.members.size(); ++m)
                        broken.push_back(static_cast<double>(total.broken[point * rb::max_members + m]) / attacked);
                    curve.broken_by.push_back(std::move(broken));
                }
            }
            out.curves.push_back(std::move(curve));
        }
        double sum_all = 0;
        for (std::size_t c = 0; c < n_corruptions; ++c) {
            corruption_result r;
            r.name = std::string(to_string(options.corruptions()[c]));
            double sum = 0;
            for (int s = 0; s < rb::severities; ++s) {
                const double acc =
                    static_cast<double>(
                        total.corrupted[c * rb::severities + static_cast<std::size_t>(s)]) /
                    n;
                r.accuracy.push_back(acc);
                sum += acc;
            }
            r.mean_accuracy = sum / rb::severities;
            sum_all += sum;
            out.corruptions.push_back(std::move(r));
        }
        out.mean_corruption_accuracy =
            n_corruptions == 0 ? nan
                               : sum_all / static_cast<double>(n_corruptions * rb::severities);
        out.relative_mce = nan;
        out.absolute_mce = nan;
        return out;
    } else {
        return {};
    }
}

namespace detail::robustness {

/// The mean over corruptions of numerator(model's, baseline's) / denominator, as both mCEs
/// compute it; corruptions matched by name, a vanishing denominator left out.
template <class Ratio>
double mean_ratio(const char* fn, const model_evaluation& model, const model_evaluation& baseline, Ratio&& ratio) {
    if (model.corruptions.empty()) {
        invalid(fn, "model '", model.model, "' has no corruption results");
    }
    if (model.corruptions.size() != baseline.corruptions.size()) {
        invalid(fn, "model '", model.model, "' has ", model.corruptions.size(),
                " corruptions but baseline '", baseline.model, "' has ", baseline.corruptions.size());
    }
    double sum = 0;
    std::size_t used = 0;
    for (const corruption_result& c : model.corruptions) {
        const auto it = std::find_if(baseline.corruptions.begin(), baseline.corruptions.end(),
                                     [&](const corruption_result& b) { return b.name == c.name; });
        if (it == baseline.corruptions.end()) {
            invalid(fn, "corruption '", c.name, "' of model '", model.model, "' is missing from baseline '",
                    baseline.model, "'");
        }
        if (it->accuracy.size() != c.accuracy.size() || c.accuracy.empty()) {
            invalid(fn, "corruption '", c.name, "' has ", c.accuracy.size(), " severities in model '",
                    model.model, "' and ", it->accuracy.size(), " in baseline '", baseline.model,
                    "'; need the same number, >= 1");
        }
        const auto [num, den] = ratio(c, *it);
        // Accuracies are counts over N <= 10^9 samples, so a genuinely non-zero sum is far above
        // 1e-9; below it the difference is rounding and the ratio undefined: left out of the mean.
        if (std::abs(den) < 1e-9) continue;
        sum += num / den;
        ++used;
    }
    return used == 0 ? std::numeric_limits<double>::quiet_NaN() : sum / static_cast<double>(used);
}

}  // namespace detail::robustness

inline void set_relative_mce(model_evaluation& model, const model_evaluation& baseline) {
    const double model_clean = 1.0 - model.clean_accuracy;
    const double base_clean = 1.0 - baseline.clean_accuracy;
    model.relative_mce = detail::robustness::mean_ratio(
        "set_relative_mce", model, baseline, [&](const corruption_result& c, const corruption_result& b) {
            double num = 0, den = 0;
            for (std::size_t s = 0; s < c.accuracy.size(); ++s) {
                num += (1.0 - c.accuracy[s]) - model_clean;
                den += (1.0 - b.accuracy[s]) - base_clean;
            }
            return std::pair{num, den};
        });
}

inline void set_absolute_mce(model_evaluation& model, const model_evaluation& baseline) {
    model.absolute_mce = detail::robustness::mean_ratio(
        "set_absolute_mce", model, baseline, [&](const corruption_result& c, const corruption_result& b) {
            double num = 0, den = 0;
            for (std::size_t s = 0; s < c.accuracy.size(); ++s) {
                num += 1.0 - c.accuracy[s];
                den += 1.0 - b.accuracy[s];
            }
            return std::pair{num, den};
        });
}


}  // namespace advaug
