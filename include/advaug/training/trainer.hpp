// The adversarial training loop, generic over a trainable classifier and an optimizer: batches,
// schedules, the optimizer step, the collapse guard and checkpoints. What each piece computes
// lives beside it: the batch gradient in batch_gradient.hpp, the log in progress.hpp and
// reports.hpp, the guard's decision in collapse_guard.hpp, the file format in checkpoint.hpp.
//
// Randomness is counter-based: the shuffle of epoch e and the random start of batch b of
// epoch e are drawn from generators seeded by (seed, e) and (seed, e, b). A run is therefore
// bitwise reproducible for a seed and a thread count, and a checkpoint only needs the
// position (epoch, batch) to resume the exact same sequence.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/pgd.hpp"
#include "advaug/data/dataset.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/evaluation/accuracy.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/training/batch_gradient.hpp"
#include "advaug/training/checkpoint.hpp"
#include "advaug/training/collapse_guard.hpp"
#include "advaug/training/method.hpp"
#include "advaug/training/progress.hpp"
#include "advaug/training/reports.hpp"
#include "advaug/training/static_checks.hpp"
#include "advaug/training/train_options.hpp"

namespace advaug {

namespace detail {

/// The samples `indices` of `data` as a model's batch: formed in place for host tensors,
/// formed on the host and uploaded once (from_host) for a device model's.
template <class S, class T, std::size_t R>
void load_batch(const dataset<S>& data, std::span<const std::size_t> indices, tensor<T, R>& x,
                label_vector& y, tensor<T, R>&, label_vector&) {
    data.batch(indices, x, y);
}
template <class S, class X, class Y, class T, std::size_t R>
void load_batch(const dataset<S>& data, std::span<const std::size_t> indices, X& x, Y& y,
                tensor<T, R>& host_x, label_vector& host_y) {
    data.batch(indices, host_x, host_y);
    from_host(x, host_x);
    from_host(y, host_y);
}

}  // namespace detail

/// Trains M with Optimizer. The third parameter says whether both meet their contracts;
/// leave it defaulted.
/// requires: M is a trainable_classifier (model/classifier.hpp) and Optimizer an optimizer
///           for its value_type (optim/optimizer.hpp); one error names a missing member.
template <class M, class Optimizer, bool = detail::trainer_arguments<M, Optimizer>>
class trainer {
public:
    using value_type = typename M::value_type;
    /// The model's input: advaug::tensor, or cuda::device_tensor for a device model (batches
    /// are formed on the host and cross to the device once each).
    using input_type = detail::model_input_t<M>;
    using labels_type = detail::labels_t<input_type>;

    /// requires: the model and optimizer outlive the trainer.
    /// throws:   std::invalid_argument when the options do not fit together.
    trainer(M& model, Optimizer& optimizer, train_options options);

    const train_options& options() const { return options_; }

    /// One batch's gradient: zero_grad(), then the method's gradient at the given epsilon (raw
    /// units; for method family the fraction of its budget, in [0, 1]), without an optimizer step. `batch_seed` seeds the random start;
    /// `clean_loss_wanted` also computes CE(x) when alpha is 1 (for the log line).
    /// ensures: every parameter gradient equals (1 - alpha) grad CE(x) + alpha grad CE(x_adv),
    ///          x_adv is adversarial_batch(), and the model's mode is as before.
    batch_losses compute_gradient(const input_type& x, const labels_type& y, double epsilon,
                                  std::uint64_t batch_seed, bool clean_loss_wanted = false) {
        return gradient_("trainer::compute_gradient", options_, x, y, epsilon, batch_seed, clean_loss_wanted);
    }

    /// The adversarial batch of the last compute_gradient() (empty for plain training).
    const input_type& adversarial_batch() const { return gradient_.adversarial_batch(); }

    /// Trains for the configured epochs from the current position (the start, or where
    /// resume() left off). `validation` (optional) feeds the epoch summary.
    template <class S>
    training_result fit(const dataset<S>& train, const dataset<S>* validation = nullptr);

    /// Writes the whole training state atomically (checkpoint.hpp): weights, optimizer state,
    /// position, seed, the epoch's running losses and the collapse guard's state.
    /// throws: numeric_error, leaving `path` as it was, when a weight is NaN or infinite;
    ///         io_error naming `path` when it cannot be written (the old file stays).
    void save_checkpoint(const std::string& path) const;

    /// Loads a checkpoint written by a trainer with the same model architecture, method,
    /// seed and batch size; the next fit() continues exactly where it was written.
    void resume(const std::string& path);

    std::size_t next_epoch() const { return pos_.epoch; }
    std::size_t next_batch() const { return pos_.batch; }

private:
    using T = value_type;
    using host_input = tensor<T, M::input_rank>;

    /// Robust accuracy of the current model on (x, y): PGD at the full epsilon, or the family's worst case.
    double pgd_accuracy(const input_type& x, const labels_type& y, std::size_t steps) const;
    double clean_accuracy(const input_type& x, const labels_type& y) const;
    detail::checkpoint_run run() const {
        return {detail::checkpoint_method(options_), options_.seed(), options_.batch_size()};
    }
    /// The guard's reading on its batch; snapshots a new best, restores it on a collapse that
    /// stops training. Returns whether to stop.
    bool check_collapse(const std::pair<input_type, labels_type>& batch, detail::progress_reporter& progress,
                        training_result& result, epoch_report* report);

    M& model_;
    Optimizer& optimizer_;
    train_options options_;
    std::vector<parameter_view<T>> params_;
    std::vector<parameter_view<T>> state_;  // params_, then the model's buffers, if any

    // buffers reused by every batch: after the first batch a step allocates nothing
    detail::batch_gradient<M> gradient_{model_};
    input_type x_;
    labels_type y_;
    host_input host_x_;  // a device model's batches are formed here, then uploaded
    label_vector host_y_;

    training_position pos_;
    collapse_detector guard_{options_.collapse_guard() ? options_.collapse_guard()->drop : 1.0};
    std::vector<std::vector<T>> best_weights_;
};

/// What trainer<M, Optimizer> is when M or Optimizer misses a member: its constructor prints
/// the one error that names the member, and every call compiles, so that no second follows.
template <class M, class Optimizer>
class trainer<M, Optimizer, false> {
public:
    template <class... A>
    trainer(A&&...) {
        [[maybe_unused]] constexpr bool checked = detail::check_trainer<M, Optimizer>();
    }
    train_options options() const { return {}; }
    template <class... A>
    batch_losses compute_gradient(A&&...) { return {}; }
    template <class... A>
    training_result fit(A&&...) { return {}; }
    template <class... A>
    void save_checkpoint(A&&...) const {}
    template <class... A>
    void resume(A&&...) {}
    std::size_t next_epoch() const { return 0; }
    std::size_t next_batch() const { return 0; }
};

// ---------------------------------------------------------------------------------------------

template <class M, class Optimizer, bool B>
trainer<M, Optimizer, B>::trainer(M& model, Optimizer& optimizer, train_options options)
    : model_(model), optimizer_(optimizer), options_(std::move(options)) {
    options_.validate("trainer");
    detail::check_value_types<T>("trainer", options_);  // a family's or mixture's, up front
    params_ = model_.parameters();
    // What a checkpoint and the collapse guard's snapshot keep: the whole state where the
    // model has one (batch norm's running statistics are not parameters), else parameters.
    if constexpr (requires { { model_.state() } -> std::same_as<std::vector<parameter_view<T>>>; }) {
        state_ = model_.state();
    } else {
        state_ = params_;
    }
}

template <class M, class Optimizer, bool B>
double trainer<M, Optimizer, B>::pgd_accuracy(const input_type& x, const labels_type& y,
                                              std::size_t steps) const {
    const std::uint64_t seed = options_.seed() ^ 0x5eed;
    const auto& f = options_.family();  // method family: the family's worst case
    return clean_accuracy(f ? detail::family_worst_case("trainer", model_, *f, x, y, steps, seed)
                            : pgd(model_, x, y, pgd_options{}.epsilon(*options_.epsilon()).steps(steps).seed(seed)
                                                     .domain(options_.domain())), y);
}

template <class M, class Optimizer, bool B>
double trainer<M, Optimizer, B>::clean_accuracy(const input_type& x, const labels_type& y) const {
    typename M::cache_type cache;
    detail::model_logits_t<M> logits;
    model_.forward(x, cache, logits);
    using detail::host_copy;  // the identity for host tensors, a download for device ones
    return static_cast<double>(count_correct(host_copy(logits), host_copy(y))) /
           static_cast<double>(y.size());
}

template <class M, class Optimizer, bool B>
bool trainer<M, Optimizer, B>::check_collapse(const std::pair<input_type, labels_type>& batch,
                                              detail::progress_reporter& progress,
                                              training_result& result, epoch_report* report) {
    const auto& settings = *options_.collapse_guard();
    double acc;
    {
        mode_guard<M> eval(model_, mode::eval);
        acc = pgd_accuracy(batch.first, batch.second, settings.pgd_steps);
    }
    if (report) report->guard_pgd_accuracy = acc;
    const double best = guard_.best();
    switch (guard_.observe(acc)) {
        case guard_verdict::new_best: best_weights_ = detail::read_values(model_, state_); return false;
        case guard_verdict::within_drop: return false;
        case guard_verdict::collapsed: break;
    }
    result.collapse_detected = true;
    if (report) report->collapse_detected = true;
    std::ostringstream m;
    m << "advaug: warning: catastrophic overfitting: PGD accuracy on the guard batch fell from "
      << 100 * best << "% to " << 100 * acc << "% (epoch " << pos_.epoch + 1 << ", batch " << pos_.batch << ")";
    const bool stop = settings.action == collapse_action::stop_and_restore;
    if (stop) {
        detail::write_values(model_, state_, best_weights_);
        m << "; stopping and restoring the best weights";
    }
    progress.message(m.str());
    return stop;
}

template <class M, class Optimizer, bool B>
template <class S>
training_result trainer<M, Optimizer, B>::fit(const dataset<S>& train, const dataset<S>* validation) {
    const char* fn = "trainer::fit";
    const std::size_t n = train.size(), batch = options_.batch_size();
    if (train.num_classes() != model_.num_classes()) {
        detail::invalid(fn, "the training set has ", train.num_classes(),
                        " classes, the model has ", model_.num_classes());
    }
    const std::size_t batches = batches_per_epoch(n, batch, false);
    const lr_schedule& lr = *options_.learning_rate();
    const double eps_full = options_.family() ? 1.0 : options_.epsilon().value_or(0.0);  // family: the budget
    detail::progress_reporter progress(options_, options_.epochs());
    progress.header(detail::training_header(options_, n, batches, pos_.epoch, pos_.batch));

    // Fixed batches for the epoch summary and the collapse guard, built once.
    auto fixed_batch = [&](const dataset<S>& data, std::span<const std::size_t> indices) {
        std::pair<input_type, labels_type> b;
        detail::load_batch(data, indices, b.first, b.second, host_x_, host_y_);
        return b;
    };
    std::optional<std::pair<input_type, labels_type>> val, guard;
    if (validation) {
        std::vector<std::size_t> first(std::min(options_.evaluation().samples, validation->size()));
        for (std::size_t i = 0; i < first.size(); ++i) first[i] = i;
        val = fixed_batch(*validation, first);
    }
    const auto& guard_settings = options_.collapse_guard();
    if (guard_settings) {
        auto order = shuffled_indices(n, detail::mix_seed(options_.seed(), 0x9a4d));
        order.resize(std::min(guard_settings->samples, n));
        guard = fixed_batch(train, order);
    }

    training_result result;
    model_.set_mode(mode::train);
    const epsilon_schedule epsilon = options_.epsilon_warmup() > 0
                                         ? epsilon_schedule::warmup(eps_full, options_.epsilon_warmup())
                                         : epsilon_schedule::constant(eps_full);
    // The end of a numeric-error message; built only when one is thrown.
    auto stopped = [&] {
        return options_.checkpoint().path.empty()
                   ? std::string("; training stopped")
                   : "; training stopped; the last checkpoint '" + options_.checkpoint().path + "' is unchanged";
    };
    // save_checkpoint() refuses non-finite weights; say where training was when they appeared.
    auto checkpoint = [&](std::size_t epoch, std::size_t b) {
        try {
            save_checkpoint(options_.checkpoint().path);
        } catch (const numeric_error& e) {
            throw numeric_error(detail::concat(fn, "(): after epoch ", epoch + 1, ", batch ", b + 1, ": ",
                                               e.what(), "; training stopped"));
        }
    };
    std::vector<std::size_t> order;
    for (; pos_.epoch < options_.epochs(); ++pos_.epoch) {
        const std::size_t epoch = pos_.epoch;
        order = shuffled_indices(n, detail::mix_seed(options_.seed(), epoch));
        const auto start = std::chrono::steady_clock::now();
        std::size_t samples_done = 0;
        for (; pos_.batch < batches; ++pos_.batch) {
            const std::size_t b = pos_.batch;
            const std::size_t first = b * batch, count = std::min(batch, n - first);
            const auto mine = detail::shard_of(fn, options_.sharing(), {order.data() + first, count});
            detail::load_batch(train, mine, x_, y_, host_x_, host_y_);
            const double progress_epoch =
                static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(batches);
            const double rate = lr.at(progress_epoch);
            const double eps = epsilon.at(progress_epoch);
            const bool logged = options_.log_every() > 0 && b % options_.log_every() == 0;
            batch_losses losses;
            try {
                const detail::shard_scope shard(options_.sharing(), mine.data() - order.data() - first, mine.size(), count);
                losses = compute_gradient(x_, y_, eps, detail::mix_seed(options_.seed(), epoch, b + 1), logged);
            } catch (const numeric_error& e) {
                throw numeric_error(detail::concat(fn, "(): at epoch ", epoch + 1, ", batch ", b + 1, ": ",
                                                   e.what(), stopped()));
            } catch (const std::invalid_argument& e) {
                // Bad data (outside the domain) is the caller's fit(), not compute_gradient().
                std::string_view what = e.what(), inner = "trainer::compute_gradient(): ";
                if (what.starts_with(inner)) what.remove_prefix(inner.size());
                throw std::invalid_argument(detail::concat(fn, "(): at epoch ", epoch + 1, ", batch ", b + 1,
                                                           ": ", what));
            }
            losses = detail::share_gradient(fn, options_.sharing(), model_, params_, losses, mine.size(), count);
            if (!std::isfinite(losses.loss)) {
                throw numeric_error(detail::concat(fn, "(): the training loss is ",
                                                   std::isnan(losses.loss) ? "nan" : losses.loss > 0 ? "inf" : "-inf",
                                                   " at epoch ", epoch + 1, ", batch ", b + 1, stopped()));
            }
            optimizer_.step(params_, rate);

            pos_.add(losses);
            samples_done += count;

            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            batch_report r{epoch, b, batches, rate, eps, losses.loss, losses.clean,
                           losses.adversarial, seconds > 0 ? samples_done / seconds : 0.0};
            progress.batch(r, logged);
            if (logged && options_.on_batch()) options_.on_batch()(r);

            if (guard && guard_settings->every_batches > 0 && (b + 1) % guard_settings->every_batches == 0 &&
                check_collapse(*guard, progress, result, nullptr)) {
                result.stopped_early = true;
                ++pos_.batch;
                return result;
            }
            if (!options_.checkpoint().path.empty() && options_.checkpoint().every_batches > 0 &&
                (b + 1) % options_.checkpoint().every_batches == 0 && b + 1 < batches) {
                ++pos_.batch;  // the position saved is the next batch to run
                checkpoint(epoch, b);
                --pos_.batch;
            }
        }

        epoch_report report;
        report.epoch = epoch;
        pos_.summarize(report);
        report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        report.samples_per_second = report.seconds > 0 ? samples_done / report.seconds : 0.0;
        const bool stop = guard && guard_settings->every_batches == 0 && check_collapse(*guard, progress, result, &report);
        if (val) {
            mode_guard<M> eval(model_, mode::eval);
            report.clean_accuracy = clean_accuracy(val->first, val->second);
            if (eps_full > 0) report.pgd_accuracy = pgd_accuracy(val->first, val->second, options_.evaluation().pgd_steps);
        }
        report.collapse_detected = report.collapse_detected || (guard_.collapsed() && stop);
        progress.epoch(report);
        if (options_.on_epoch()) options_.on_epoch()(report);
        result.epochs.push_back(report);

        pos_.batch = 0;
        pos_.clear_sums();
        if (stop) {
            result.stopped_early = true;
            ++pos_.epoch;
            return result;
        }
        if (!options_.checkpoint().path.empty()) {
            ++pos_.epoch;
            checkpoint(epoch, batches - 1);
            --pos_.epoch;
        }
    }
    return result;
}

template <class M, class Optimizer, bool B>
void trainer<M, Optimizer, B>::save_checkpoint(const std::string& path) const {
    const detail::checkpoint_contents<T> c{pos_, false, detail::read_values(model_, state_), guard_.best(),
                                           guard_.collapsed(), best_weights_};
    detail::write_checkpoint(path, run(), state_, c, optimizer_);
}

template <class M, class Optimizer, bool B>
void trainer<M, Optimizer, B>::resume(const std::string& path) {
    auto c = detail::read_checkpoint(path, run(), params_, state_, optimizer_);
    detail::write_values(model_, c.parameters_only ? params_ : state_, c.values);
    pos_ = c.position;
    guard_.restore(c.guard_best, c.guard_collapsed);
    best_weights_ = std::move(c.best_weights);
}

}  // namespace advaug
