// The adversarial training loop, generic over a trainable classifier and an optimizer.
//
// Each batch is trained on (1 - alpha) * CE(x) + alpha * CE(x_adv), and the parameter gradient
// is exactly (1 - alpha) * grad CE(x) + alpha * grad CE(x_adv): the attack only calls
// forward() and input_gradient(), which never touch parameter gradients, and the two halves
// reach the parameters through parameter_gradient() with their dlogits scaled by (1 - alpha)
// and alpha. The seed's code ran loss.backward() inside its attack, which added one more
// grad CE(x) to every step (docs/training.md measures what that costs).
//
// Randomness is counter-based: the shuffle of epoch e and the random start of batch b of
// epoch e are drawn from generators seeded by (seed, e) and (seed, e, b). A run is therefore
// bitwise reproducible for a seed and a thread count, and a checkpoint only needs the
// position (epoch, batch) to resume the exact same sequence.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <chrono>
#include <concepts>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <zlib.h>

#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/pgd.hpp"
#include "advaug/data/dataset.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/random.hpp"
#include "advaug/evaluation/accuracy.hpp"
#include "advaug/io/atomic_file.hpp"
#include "advaug/io/binary.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/static_checks.hpp"
#include "advaug/training/collapse_guard.hpp"
#include "advaug/training/method.hpp"
#include "advaug/training/progress.hpp"
#include "advaug/training/train_options.hpp"

namespace advaug {

/// What fit() returns.
struct training_result {
    std::vector<epoch_report> epochs;
    bool collapse_detected = false;  // the guard saw robust accuracy collapse
    bool stopped_early = false;      // ... and stopped, restoring the best weights
};

/// The three losses of one batch; NaN where not computed.
struct batch_losses {
    double loss = std::numeric_limits<double>::quiet_NaN();
    double clean = std::numeric_limits<double>::quiet_NaN();
    double adversarial = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

/// An optional model member (sequential has it): the input gradient and `scale` times the
/// parameter gradient of one dlogits in one backward pass.
template <class M>
concept combined_backward =
    requires(M& m, typename M::cache_type& c, const logits_t<M>& g, input_t<M>& dx, typename M::value_type s) {
        m.input_and_parameter_gradient(c, g, dx, s);
    };

template <class T, std::size_t N>
void copy_into(tensor<T, N>& dst, const tensor<T, N>& src) {
    if (dst.shape() != src.shape()) dst.resize(src.shape());
    std::copy(src.data(), src.data() + src.size(), dst.data());
}

inline constexpr char checkpoint_magic[8] = {'A', 'D', 'V', 'A', 'U', 'G', 'C', 'K'};
// Version 2 stores the model's state() (parameters and buffers such as batch norm's running
// statistics) where version 1 stored parameters() only; version 1 files are still read.
inline constexpr std::uint32_t checkpoint_version = 2;

}  // namespace detail

template <class M, class Optimizer>
class trainer {
public:
    using value_type = typename M::value_type;
    /// The model's input: advaug::tensor, or cuda::device_tensor for a device model (batches
    /// are formed on the host and cross to the device once each).
    using input_type = detail::model_input_t<M>;
    using labels_type = detail::labels_t<input_type>;

    /// requires: M is a trainable_classifier; the model and optimizer outlive the trainer.
    /// throws:   std::invalid_argument when the options do not fit together.
    trainer(M& model, Optimizer& optimizer, train_options options)
        : model_(model), optimizer_(optimizer), options_(std::move(options)) {
        if constexpr (detail::declares_tensor_types<M>) {
            static_assert(detail::typed_trainable_classifier<M>,
                          "advaug: the model declares input_type/logits_type but lacks a member of "
                          "trainable_classifier for them; see docs/model_contract.md");
        } else {
            static_assert(check_trainable_classifier<M>());
        }
        options_.validate("trainer");
        params_ = model_.parameters();
        // What a checkpoint and the collapse guard's snapshot keep: the whole state where the
        // model has one (batch norm's running statistics are not parameters), else parameters.
        if constexpr (requires { { model_.state() } -> std::same_as<std::vector<parameter_view<T>>>; }) {
            state_ = model_.state();
        } else {
            state_ = params_;
        }
        // dropout masks: the three passes of a batch draw from different streams
        if constexpr (requires { clean_cache_.stream = 0; }) {
            clean_cache_.stream = 0;
            adv_cache_.stream = 1;
            attack_cache_.stream = 2;
        }
    }

    const train_options& options() const { return options_; }

    /// One batch's gradient: zero_grad(), then the method's gradient at the given epsilon
    /// (raw units), without an optimizer step. `batch_seed` seeds the random start;
    /// `clean_loss_wanted` also computes CE(x) when alpha is 1 (for the log line).
    /// ensures: every parameter gradient equals (1 - alpha) grad CE(x) + alpha grad CE(x_adv),
    ///          x_adv is adversarial_batch(), and the model's mode is as before.
    batch_losses compute_gradient(const input_type& x, const labels_type& y, double epsilon,
                                  std::uint64_t batch_seed, bool clean_loss_wanted = false);

    /// The adversarial batch of the last compute_gradient() (empty for plain training).
    const input_type& adversarial_batch() const { return x_adv_; }

    /// Trains for the configured epochs from the current position (the start, or where
    /// resume() left off). `validation` (optional) feeds the epoch summary.
    template <class S>
    training_result fit(const dataset<S>& train, const dataset<S>* validation = nullptr);

    /// Writes the whole training state atomically: weights, optimizer state, position,
    /// seed, the epoch's running losses and the collapse guard's state.
    /// throws: numeric_error, leaving `path` as it was, when a weight is NaN or infinite;
    ///         io_error naming `path` when it cannot be written (the old file stays).
    void save_checkpoint(const std::string& path) const;

    /// Loads a checkpoint written by a trainer with the same model architecture, method,
    /// seed and batch size; the next fit() continues exactly where it was written.
    void resume(const std::string& path);

    std::size_t next_epoch() const { return next_epoch_; }
    std::size_t next_batch() const { return next_batch_; }

private:
    using T = value_type;

    /// Robust accuracy of the current model on (x, y) under PGD at the full epsilon.
    double pgd_accuracy(const input_type& x, const labels_type& y, std::size_t steps) const;
    double clean_accuracy(const input_type& x, const labels_type& y) const;
    /// Copies state_'s values into host vectors (a download for a device model).
    void read_state(std::vector<std::vector<T>>& out) const;
    void snapshot_best();
    void restore_best();
    /// A host batch as the model's tensors (moved for a host model, uploaded for a device one).
    std::pair<input_type, labels_type> to_model(std::pair<tensor<T, M::input_rank>, label_vector> batch) const;

    M& model_;
    Optimizer& optimizer_;
    train_options options_;
    std::vector<parameter_view<T>> params_;
    std::vector<parameter_view<T>> state_;  // params_, then the model's buffers, if any

    // buffers reused by every batch: after the first batch a step allocates nothing
    input_type x_, x_adv_;
    labels_type y_;
    // a device model's batches are formed here on the host, then uploaded into x_ and y_
    tensor<T, M::input_rank> host_x_;
    label_vector host_y_;
    typename M::cache_type attack_cache_, clean_cache_, adv_cache_;
    detail::model_logits_t<M> logits_, dlogits_;
    input_type grad_;
    typename detail::tensor_traits<input_type>::domain_type domain_;
    bool domain_bounded_ = false;  // every bound of domain_ is finite

    // position and the running sums of the current epoch
    std::size_t next_epoch_ = 0, next_batch_ = 0;
    double sum_loss_ = 0, sum_clean_ = 0, sum_adv_ = 0;
    std::size_t count_loss_ = 0, count_clean_ = 0, count_adv_ = 0;

    // catastrophic-overfitting guard
    collapse_detector guard_{options_.collapse_guard() ? options_.collapse_guard()->drop : 1.0};
    std::vector<std::vector<T>> best_weights_;
};

// ---------------------------------------------------------------------------------------------

template <class M, class Optimizer>
batch_losses trainer<M, Optimizer>::compute_gradient(const input_type& x, const labels_type& y,
                                                     double epsilon, std::uint64_t batch_seed,
                                                     bool clean_loss_wanted) {
    const char* fn = "trainer::compute_gradient";
    // The batch's element-wise work goes through the customization points of
    // detail/tensor_ops.hpp: host loops here, kernels for a device model's tensors.
    using detail::attack_rng, detail::copy_tensor, detail::linf_step, detail::random_start,
        detail::resize_like, detail::scale_in_place;
    if constexpr (detail::declares_tensor_types<M>) {
        domain_ = check_attack_inputs(fn, model_, x, y, options_.domain());
    } else {
        detail::check_nonempty_batch(fn, "inputs", x);
        detail::check_labels(fn, y, x.shape()[0], model_.num_classes());
    }
    if (!std::isfinite(epsilon) || epsilon < 0) {
        detail::invalid(fn, "epsilon must be finite and >= 0, got ", epsilon);
    }
    if constexpr (!detail::declares_tensor_types<M>) {
        if (domain_.sample_size != x.size() / x.shape()[0]) {
            domain_ = detail::resolve<T>(fn, options_.domain(), x.shape());
            auto finite = [](T v) { return std::isfinite(v); };
            domain_bounded_ = std::all_of(domain_.lo.begin(), domain_.lo.end(), finite) &&
                              std::all_of(domain_.hi.begin(), domain_.hi.end(), finite);
        }
        // The domain check lets inf through where the domain is unbounded; where every bound is
        // finite it refuses inf and NaN itself, and the extra pass over the batch is skipped.
        if (!domain_bounded_) detail::check_finite(fn, "inputs", x);
        detail::check_in_domain(fn, x, domain_);
    }

    const training_method method = options_.method();
    const T alpha = static_cast<T>(options_.alpha());
    model_.zero_grad();
    batch_losses out;
    const bool same_in_both_modes = detail::mode_independent(model_);

    if (method == training_method::plain) {
        model_.forward(x, clean_cache_, logits_);
        out.clean = cross_entropy_gradient(logits_, y, dlogits_, T(1));
        model_.parameter_gradient(clean_cache_, dlogits_);
        out.loss = out.clean;
        return out;
    }

    // 1. The adversarial example, with the model in the attack's mode.
    const bool attack_is_training_mode = options_.attack_mode() == model_.mode() || same_in_both_modes;
    // The seed's FGSM starts at x itself: its forward pass is the clean forward pass.
    const bool reuse_clean = method == training_method::fgsm && attack_is_training_mode;
    // ... and its backward pass is the clean half's: one pass gives the attack's input gradient
    // and (1 - alpha) grad CE(x), where the model has that member.
    const bool fuse_clean = reuse_clean && alpha < 1;
    bool clean_done = false;
    const T eps = static_cast<T>(epsilon);
    {
        std::optional<mode_guard<M>> guard;
        if (model_.mode() != options_.attack_mode()) guard.emplace(model_, options_.attack_mode());
        auto gen = attack_rng(x, batch_seed);
        T step = eps, ball = eps;
        std::size_t steps = 1;
        switch (method) {
            case training_method::fgsm:
                copy_tensor(x_adv_, x);
                break;
            case training_method::fgsm_rs:
                resize_like(x_adv_, x);
                random_start(x_adv_, x, domain_, norm::linf, epsilon, gen);
                step = T(1.25) * eps;
                break;
            case training_method::n_fgsm:
                resize_like(x_adv_, x);
                random_start(x_adv_, x, domain_, norm::linf, 2 * epsilon, gen);
                ball = std::numeric_limits<T>::infinity();
                break;
            case training_method::pgd: {
                resize_like(x_adv_, x);
                random_start(x_adv_, x, domain_, norm::linf, epsilon, gen);
                steps = options_.pgd_steps();
                // the step size follows epsilon during a warm-up
                const double full = options_.epsilon().value_or(epsilon);
                step = static_cast<T>(options_.pgd_step_size() * (full > 0 ? epsilon / full : 1.0));
                break;
            }
            case training_method::plain:
                break;
        }
        for (std::size_t k = 0; k < steps; ++k) {
            // The seed's FGSM takes its gradient at x itself; the cache must refer to x, not
            // to x_adv_, which the step below changes in place.
            model_.forward(method == training_method::fgsm ? x : x_adv_, attack_cache_, logits_);
            const double loss = cross_entropy_gradient(logits_, y, dlogits_, T(1));
            if (reuse_clean) out.clean = loss;
            if constexpr (detail::combined_backward<M>) {
                if (fuse_clean) {
                    model_.input_and_parameter_gradient(attack_cache_, dlogits_, grad_, T(1) - alpha);
                    clean_done = true;
                } else {
                    model_.input_gradient(attack_cache_, dlogits_, grad_);
                }
            } else {
                model_.input_gradient(attack_cache_, dlogits_, grad_);
            }
            linf_step(fn, x_adv_, x, grad_, domain_, step, ball, T(1));
        }
        check_gradients_finite(fn, domain_);  // what a device model's step kernels recorded
    }

    // 2. The clean half: (1 - alpha) * grad CE(x). Without dropout the passes need no separate
    // random streams, so they share the attack's cache: a batch of activations less (tens of MB
    // for a CNN).
    auto& clean_cache = same_in_both_modes ? attack_cache_ : clean_cache_;
    if (alpha < 1 || clean_loss_wanted) {
        if (reuse_clean) {
            // attack_cache_ and dlogits_ still hold the forward pass at x and dCE/dlogits
            if (alpha < 1 && !clean_done) {
                scale_in_place(dlogits_, T(1) - alpha);
                model_.parameter_gradient(attack_cache_, dlogits_);
            }
        } else if (alpha < 1) {
            model_.forward(x, clean_cache, logits_);
            out.clean = cross_entropy_gradient(logits_, y, dlogits_, T(1) - alpha);
            model_.parameter_gradient(clean_cache, dlogits_);
        } else {
            model_.forward(x, clean_cache, logits_);
            if constexpr (detail::declares_tensor_types<M>) {
                out.clean = cross_entropy(logits_, y);  // cuda::cross_entropy, found by ADL
            } else {
                out.clean = detail::cross_entropy_kernel<T>(fn, logits_, y, nullptr, nullptr, T(1), nullptr);
            }
        }
    }

    // 3. The adversarial half: alpha * grad CE(x_adv).
    if (alpha > 0) {
        auto& cache = same_in_both_modes ? attack_cache_ : adv_cache_;
        model_.forward(x_adv_, cache, logits_);
        out.adversarial = cross_entropy_gradient(logits_, y, dlogits_, alpha);
        model_.parameter_gradient(cache, dlogits_);
    }
    const double a = static_cast<double>(alpha);
    out.loss = (a < 1 ? (1 - a) * out.clean : 0.0) + (a > 0 ? a * out.adversarial : 0.0);
    return out;
}

template <class M, class Optimizer>
double trainer<M, Optimizer>::pgd_accuracy(const input_type& x, const labels_type& y,
                                           std::size_t steps) const {
    const double eps = *options_.epsilon();
    const auto attack = pgd_options{}.epsilon(eps).steps(steps).seed(options_.seed() ^ 0x5eed)
                            .domain(options_.domain());
    const input_type adv = pgd(model_, x, y, attack);
    return clean_accuracy(adv, y);
}

template <class M, class Optimizer>
double trainer<M, Optimizer>::clean_accuracy(const input_type& x, const labels_type& y) const {
    typename M::cache_type cache;
    detail::model_logits_t<M> logits;
    model_.forward(x, cache, logits);
    using detail::host_copy;  // the identity for host tensors, a download for device ones
    return static_cast<double>(count_correct(host_copy(logits), host_copy(y))) /
           static_cast<double>(y.size());
}

template <class M, class Optimizer>
auto trainer<M, Optimizer>::to_model(std::pair<tensor<T, M::input_rank>, label_vector> batch) const
    -> std::pair<input_type, labels_type> {
    if constexpr (std::is_same_v<input_type, tensor<T, M::input_rank>>) {
        return batch;
    } else {
        using detail::from_host;
        std::pair<input_type, labels_type> out;
        from_host(out.first, batch.first);
        from_host(out.second, batch.second);
        return out;
    }
}

template <class M, class Optimizer>
void trainer<M, Optimizer>::read_state(std::vector<std::vector<T>>& out) const {
    using detail::read_parameter;
    out.resize(state_.size());
    for (std::size_t i = 0; i < state_.size(); ++i) {
        out[i].resize(state_[i].value.size());
        read_parameter(model_, state_[i], std::span<T>(out[i]));
    }
}

template <class M, class Optimizer>
void trainer<M, Optimizer>::snapshot_best() {
    read_state(best_weights_);
}

template <class M, class Optimizer>
void trainer<M, Optimizer>::restore_best() {
    using detail::write_parameter;
    for (std::size_t i = 0; i < state_.size() && i < best_weights_.size(); ++i) {
        write_parameter(model_, state_[i], std::span<const T>(best_weights_[i]));
    }
}

template <class M, class Optimizer>
template <class S>
training_result trainer<M, Optimizer>::fit(const dataset<S>& train, const dataset<S>* validation) {
    const char* fn = "trainer::fit";
    const std::size_t n = train.size(), batch = options_.batch_size();
    if (train.num_classes() != model_.num_classes()) {
        detail::invalid(fn, "the training set has ", train.num_classes(),
                        " classes, the model has ", model_.num_classes());
    }
    const std::size_t batches = batches_per_epoch(n, batch, false);
    const lr_schedule& lr = *options_.learning_rate();
    const double eps_full = options_.epsilon().value_or(0.0);
    const bool attacks = options_.method() != training_method::plain;
    detail::progress_reporter progress(options_, options_.epochs());

    {
        std::ostringstream h;
        h << "advaug: training " << to_string(options_.method()) << " on " << n << " samples, "
          << options_.epochs() << " epochs of " << batches << " batches of " << batch
          << ", lr " << lr.describe();
        if (attacks) {
            h << ", epsilon " << eps_full << " (raw units), alpha " << options_.alpha();
            if (options_.epsilon_warmup() > 0) h << ", epsilon warm-up " << options_.epsilon_warmup() << " epochs";
            if (options_.method() == training_method::pgd) {
                h << ", " << options_.pgd_steps() << " steps of " << options_.pgd_step_size();
            }
            h << ", attack in " << (options_.attack_mode() == mode::eval ? "eval" : "train") << " mode";
        }
        h << ", seed " << options_.seed();
        if (next_epoch_ > 0 || next_batch_ > 0) {
            h << "; resuming at epoch " << next_epoch_ + 1 << " batch " << next_batch_ + 1;
        }
        progress.header(h.str());
    }

    // Fixed batches for the epoch summary and the collapse guard, built once.
    std::optional<std::pair<input_type, labels_type>> val, guard;
    if (validation) {
        const std::size_t count = std::min(options_.evaluation().samples, validation->size());
        val = to_model(validation->template slice<T, M::input_rank>(0, count));
    }
    const auto& guard_settings = options_.collapse_guard();
    if (guard_settings) {
        auto order = shuffled_indices(n, detail::mix_seed(options_.seed(), 0x9a4d));
        order.resize(std::min(guard_settings->samples, n));
        tensor<T, M::input_rank> gx;
        label_vector gy;
        train.batch(std::span<const std::size_t>(order), gx, gy);
        guard = to_model({std::move(gx), std::move(gy)});
    }

    training_result result;
    model_.set_mode(mode::train);
    auto check_collapse = [&](epoch_report* report) -> bool {
        if (!guard) return false;
        double acc;
        {
            mode_guard<M> eval(model_, mode::eval);
            acc = pgd_accuracy(guard->first, guard->second, guard_settings->pgd_steps);
        }
        if (report) report->guard_pgd_accuracy = acc;
        const double best = guard_.best();
        switch (guard_.observe(acc)) {
            case guard_verdict::new_best: snapshot_best(); return false;
            case guard_verdict::within_drop: return false;
            case guard_verdict::collapsed: break;
        }
        result.collapse_detected = true;
        if (report) report->collapse_detected = true;
        std::ostringstream m;
        m << "advaug: warning: catastrophic overfitting: PGD accuracy on the guard batch fell from "
          << 100 * best << "% to " << 100 * acc << "% (epoch " << next_epoch_ + 1 << ", batch "
          << next_batch_ << ")";
        if (guard_settings->action == collapse_action::stop_and_restore) {
            restore_best();
            m << "; stopping and restoring the best weights";
        }
        progress.message(m.str());
        return guard_settings->action == collapse_action::stop_and_restore;
    };

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
    for (; next_epoch_ < options_.epochs(); ++next_epoch_) {
        const std::size_t epoch = next_epoch_;
        order = shuffled_indices(n, detail::mix_seed(options_.seed(), epoch));
        const auto start = std::chrono::steady_clock::now();
        std::size_t samples_done = 0;
        for (; next_batch_ < batches; ++next_batch_) {
            const std::size_t b = next_batch_;
            const std::size_t first = b * batch, count = std::min(batch, n - first);
            if constexpr (std::is_same_v<input_type, tensor<T, M::input_rank>>) {
                train.batch(std::span<const std::size_t>(order.data() + first, count), x_, y_);
            } else {
                // formed on the host, uploaded once
                train.batch(std::span<const std::size_t>(order.data() + first, count), host_x_, host_y_);
                using detail::from_host;
                from_host(x_, host_x_);
                from_host(y_, host_y_);
            }
            const double progress_epoch =
                static_cast<double>(epoch) + static_cast<double>(b) / static_cast<double>(batches);
            const double rate = lr.at(progress_epoch);
            const double eps = epsilon.at(progress_epoch);
            const bool logged = options_.log_every() > 0 && b % options_.log_every() == 0;
            batch_losses losses;
            try {
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
            if (!std::isfinite(losses.loss)) {
                throw numeric_error(detail::concat(fn, "(): the training loss is ",
                                                   std::isnan(losses.loss) ? "nan" : losses.loss > 0 ? "inf" : "-inf",
                                                   " at epoch ", epoch + 1, ", batch ", b + 1, stopped()));
            }
            optimizer_.step(params_, rate);

            sum_loss_ += losses.loss;
            ++count_loss_;
            if (std::isfinite(losses.clean)) sum_clean_ += losses.clean, ++count_clean_;
            if (std::isfinite(losses.adversarial)) sum_adv_ += losses.adversarial, ++count_adv_;
            samples_done += count;

            const double seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            batch_report r{epoch, b, batches, rate, eps, losses.loss, losses.clean,
                           losses.adversarial, seconds > 0 ? samples_done / seconds : 0.0};
            progress.batch(r, logged);
            if (logged && options_.on_batch()) options_.on_batch()(r);

            bool stop = false;
            if (guard_settings && guard_settings->every_batches > 0 &&
                (b + 1) % guard_settings->every_batches == 0) {
                stop = check_collapse(nullptr);
            }
            if (stop) {
                result.stopped_early = true;
                ++next_batch_;
                return result;
            }
            if (!options_.checkpoint().path.empty() && options_.checkpoint().every_batches > 0 &&
                (b + 1) % options_.checkpoint().every_batches == 0 && b + 1 < batches) {
                ++next_batch_;  // the position saved is the next batch to run
                checkpoint(epoch, b);
                --next_batch_;
            }
        }

        epoch_report report;
        report.epoch = epoch;
        report.loss = count_loss_ ? sum_loss_ / count_loss_ : std::numeric_limits<double>::quiet_NaN();
        report.clean_loss = count_clean_ ? sum_clean_ / count_clean_ : std::numeric_limits<double>::quiet_NaN();
        report.adversarial_loss = count_adv_ ? sum_adv_ / count_adv_ : std::numeric_limits<double>::quiet_NaN();
        report.batches = count_loss_;
        report.clean_loss_batches = count_clean_;
        report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        report.samples_per_second = report.seconds > 0 ? samples_done / report.seconds : 0.0;
        bool stop = false;
        if (guard_settings && guard_settings->every_batches == 0) stop = check_collapse(&report);
        if (val) {
            mode_guard<M> eval(model_, mode::eval);
            report.clean_accuracy = clean_accuracy(val->first, val->second);
            if (eps_full > 0) report.pgd_accuracy = pgd_accuracy(val->first, val->second, options_.evaluation().pgd_steps);
        }
        report.collapse_detected = report.collapse_detected || (guard_.collapsed() && stop);
        progress.epoch(report);
        if (options_.on_epoch()) options_.on_epoch()(report);
        result.epochs.push_back(report);

        next_batch_ = 0;
        sum_loss_ = sum_clean_ = sum_adv_ = 0;
        count_loss_ = count_clean_ = count_adv_ = 0;
        if (stop) {
            result.stopped_early = true;
            ++next_epoch_;
            return result;
        }
        if (!options_.checkpoint().path.empty()) {
            ++next_epoch_;
            checkpoint(epoch, batches - 1);
            --next_epoch_;
        }
    }
    return result;
}

template <class M, class Optimizer>
void trainer<M, Optimizer>::save_checkpoint(const std::string& path) const {
    // The weights as host memory: the views themselves for a host model, a download for a
    // device model (whose views point to device memory).
    std::vector<std::vector<T>> downloaded;
    auto values = [&](std::size_t i) -> std::span<const T> {
        if constexpr (detail::declares_tensor_types<M>) {
            return downloaded[i];
        } else {
            return state_[i].value;
        }
    };
    if constexpr (detail::declares_tensor_types<M>) read_state(downloaded);
    // A diverged model must not replace the last good checkpoint.
    for (std::size_t k = 0; k < state_.size(); ++k) {
        const auto& p = state_[k];
        const auto v = values(k);
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!std::isfinite(v[i])) {
                throw numeric_error(detail::concat("trainer::save_checkpoint(): parameter '", p.name, "' element ", i,
                                                   " is ", v[i], "; the model diverged, and '", path,
                                                   "' keeps its last good checkpoint"));
            }
        }
    }
    io::binary_writer w;
    for (char c : detail::checkpoint_magic) w.write(c);
    w.write(detail::checkpoint_version);
    w.write<std::uint8_t>(sizeof(T));
    w.write_string(std::string(to_string(options_.method())));
    w.write<std::uint64_t>(options_.seed());
    w.write<std::uint64_t>(options_.batch_size());
    w.write<std::uint64_t>(next_epoch_);
    w.write<std::uint64_t>(next_batch_);
    w.write(sum_loss_);
    w.write(sum_clean_);
    w.write(sum_adv_);
    w.write<std::uint64_t>(count_loss_);
    w.write<std::uint64_t>(count_clean_);
    w.write<std::uint64_t>(count_adv_);
    w.write<std::uint64_t>(state_.size());
    for (std::size_t k = 0; k < state_.size(); ++k) {
        const auto& p = state_[k];
        w.write_string(p.name);
        std::vector<std::uint64_t> shape(p.shape.begin(), p.shape.end());
        w.write_vector(shape);
        w.write_array(values(k).data(), values(k).size());
    }
    optimizer_.save_state(w);
    w.write(guard_.best());
    w.write<std::uint8_t>(guard_.collapsed() ? 1 : 0);
    w.write<std::uint64_t>(best_weights_.size());
    for (const auto& b : best_weights_) w.write_vector(b);
    const auto crc = static_cast<std::uint32_t>(
        ::crc32(0L, w.bytes().data(), static_cast<uInt>(w.bytes().size())));
    w.write(crc);
    io::write_file_atomically(path, w.bytes());
}

template <class M, class Optimizer>
void trainer<M, Optimizer>::resume(const std::string& path) {
    const char* fn = "trainer::resume";
    const auto bytes = io::read_file(path);
    const std::string source = detail::concat(fn, "(): '", path, "'");
    if (bytes.size() < sizeof(detail::checkpoint_magic) + 8 ||
        !std::equal(std::begin(detail::checkpoint_magic), std::end(detail::checkpoint_magic), bytes.begin())) {
        throw io_error(source + " is not an advaug checkpoint (bad magic)");
    }
    std::uint32_t stored_crc;
    std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
    const auto crc = static_cast<std::uint32_t>(::crc32(0L, bytes.data(), static_cast<uInt>(bytes.size() - 4)));
    if (crc != stored_crc) throw io_error(source + " is corrupted or truncated (checksum mismatch)");

    io::binary_reader r(bytes.data(), bytes.size() - 4, source);
    for (std::size_t i = 0; i < sizeof(detail::checkpoint_magic); ++i) r.read<char>("magic");
    const auto version = r.read<std::uint32_t>("version");
    if (version != 1 && version != detail::checkpoint_version) {
        r.fail("version", detail::concat(version, " is not supported (expected 1 to ", detail::checkpoint_version, ")"));
    }
    // Version 1 holds the parameters only; the model's buffers then stay as they are.
    const auto& stored = version == 1 ? params_ : state_;
    if (const auto size = r.read<std::uint8_t>("value size"); size != sizeof(T)) {
        r.fail("value size", detail::concat("is ", int(size), " bytes, this model uses ", sizeof(T)));
    }
    auto expect = [&](const char* what, const auto& stored, const auto& current) {
        if (!(stored == current)) {
            throw std::invalid_argument(detail::concat(fn, "(): the checkpoint '", path, "' was written with ",
                                                       what, " ", stored, ", this trainer has ", current));
        }
    };
    expect("method", r.read_string("method"), std::string(to_string(options_.method())));
    expect("seed", r.read<std::uint64_t>("seed"), std::uint64_t(options_.seed()));
    expect("batch_size", r.read<std::uint64_t>("batch size"), std::uint64_t(options_.batch_size()));
    const auto epoch = r.read<std::uint64_t>("epoch");
    const auto batch = r.read<std::uint64_t>("batch");
    const auto sums = std::array{r.read<double>("loss sum"), r.read<double>("clean loss sum"),
                                 r.read<double>("adversarial loss sum")};
    const auto counts = std::array{r.read<std::uint64_t>("loss count"), r.read<std::uint64_t>("clean count"),
                                   r.read<std::uint64_t>("adversarial count")};
    const auto count = r.read<std::uint64_t>("parameter count");
    if (count != stored.size()) {
        throw std::invalid_argument(detail::concat(fn, "(): the checkpoint '", path, "' holds ", count,
                                                   " parameter tensors, the model has ", stored.size(),
                                                   " (another architecture)"));
    }
    // Read everything into scratch first, so a bad file leaves the model untouched.
    std::vector<std::vector<T>> values(stored.size());
    for (std::size_t i = 0; i < stored.size(); ++i) {
        const auto& p = stored[i];
        const std::string name = r.read_string("parameter name");
        const auto shape = r.read_vector<std::uint64_t>("parameter shape", 16);
        const std::vector<std::uint64_t> want(p.shape.begin(), p.shape.end());
        if (name != p.name || shape != want) {
            std::vector<std::size_t> got(shape.begin(), shape.end());
            throw std::invalid_argument(detail::concat(
                fn, "(): the checkpoint '", path, "' has parameter ", i, " '", name, "' of shape ",
                detail::shape_string(got), ", the model has '", p.name, "' of shape ",
                detail::shape_string(p.shape), " (another architecture)"));
        }
        values[i].resize(p.value.size());
        r.read_array_into("parameter values", values[i].data(), values[i].size());
        // save_checkpoint() never writes a diverged model, so such values mean a damaged file.
        for (std::size_t k = 0; k < values[i].size(); ++k) {
            if (!std::isfinite(values[i][k])) {
                throw io_error(detail::concat(source, " has parameter '", p.name, "' element ", k, " = ",
                                              values[i][k], "; save_checkpoint() never writes a non-finite "
                                              "weight, so the file is damaged"));
            }
        }
    }
    // The optimizer reads its part in place: keep its state, so that an error further on in
    // the file puts it back (found by fuzz/fuzz_checkpoint.cpp).
    io::binary_writer kept_state;
    optimizer_.save_state(kept_state);
    bool optimizer_loaded = false;
    double best = 0;
    bool collapsed = false;
    std::vector<std::vector<T>> best_weights;
    try {
        optimizer_.load_state(r, params_);
        optimizer_loaded = true;
        best = r.read<double>("guard best accuracy");
        if (!(best == -1 || (best >= 0 && best <= 1))) r.fail("guard best accuracy", "is not -1 or in [0, 1]");
        collapsed = r.read<std::uint8_t>("guard collapse flag") != 0;
        const auto snapshots = r.read<std::uint64_t>("guard snapshot count");
        if (snapshots != 0 && snapshots != stored.size()) r.fail("guard snapshot count", "does not match the model");
        best_weights.resize(snapshots);
        for (std::size_t i = 0; i < snapshots; ++i) {
            best_weights[i] = r.read_vector<T>("guard snapshot");
            if (best_weights[i].size() != stored[i].value.size()) r.fail("guard snapshot", "has the wrong size");
        }
        if (r.remaining() != 0) r.fail("end of checkpoint", detail::concat("has ", r.remaining(), " unexpected bytes"));
    } catch (...) {
        if (optimizer_loaded) {
            io::binary_reader previous(kept_state.bytes().data(), kept_state.bytes().size(), source);
            optimizer_.load_state(previous, params_);
        }
        throw;
    }

    using detail::write_parameter;
    for (std::size_t i = 0; i < stored.size(); ++i) {
        write_parameter(model_, stored[i], std::span<const T>(values[i]));
    }
    next_epoch_ = epoch;
    next_batch_ = batch;
    sum_loss_ = sums[0];
    sum_clean_ = sums[1];
    sum_adv_ = sums[2];
    count_loss_ = counts[0];
    count_clean_ = counts[1];
    count_adv_ = counts[2];
    guard_.restore(best, collapsed);
    best_weights_ = std::move(best_weights);
}

}  // namespace advaug
