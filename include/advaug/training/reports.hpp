// What training reports: the record of each logged batch and each epoch, the losses of one
// batch's gradient, the running sums an epoch's summary is made of, and fit()'s result. Plain
// records, read by progress.hpp, the callbacks of train_options, checkpoints and the caller.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace advaug {

/// What a user's callback sees every `log_every` batches (and what the seed printed).
struct batch_report {
    std::size_t epoch = 0;             // 0-based
    std::size_t batch = 0;             // 0-based within the epoch
    std::size_t batches_per_epoch = 0;
    double lr = 0, epsilon = 0;
    double loss = 0;                   // (1 - alpha) * clean + alpha * adversarial
    double clean_loss = 0;             // CE(x)
    double adversarial_loss = 0;       // CE(x_adv); NaN for plain training
    double samples_per_second = 0;
};

/// One epoch's summary. Accuracies are NaN when not measured.
struct epoch_report {
    std::size_t epoch = 0;
    double loss = 0, clean_loss = 0, adversarial_loss = 0;  // means over the epoch's batches
    std::size_t batches = 0;
    std::size_t clean_loss_batches = 0;  // with alpha = 1 CE(x) is only computed on logged batches
    double clean_accuracy = std::numeric_limits<double>::quiet_NaN();
    double pgd_accuracy = std::numeric_limits<double>::quiet_NaN();
    double guard_pgd_accuracy = std::numeric_limits<double>::quiet_NaN();
    double seconds = 0;
    double samples_per_second = 0;
    bool collapse_detected = false;
};

/// The three losses of one batch; NaN where not computed.
struct batch_losses {
    double loss = std::numeric_limits<double>::quiet_NaN();
    double clean = std::numeric_limits<double>::quiet_NaN();
    double adversarial = std::numeric_limits<double>::quiet_NaN();
};

/// What fit() returns.
struct training_result {
    std::vector<epoch_report> epochs;
    bool collapse_detected = false;  // the guard saw robust accuracy collapse
    bool stopped_early = false;      // ... and stopped, restoring the best weights
};

/// Where a run stands: the next epoch and batch to run, and the running loss sums of the
/// current epoch, so that a resumed epoch reports the means an uninterrupted one would.
struct training_position {
    std::size_t epoch = 0, batch = 0;
    double sum_loss = 0, sum_clean = 0, sum_adv = 0;
    std::size_t count_loss = 0, count_clean = 0, count_adv = 0;

    /// Adds one batch's losses; a NaN (not computed) loss is not counted.
    void add(const batch_losses& l) {
        sum_loss += l.loss;
        ++count_loss;
        if (std::isfinite(l.clean)) sum_clean += l.clean, ++count_clean;
        if (std::isfinite(l.adversarial)) sum_adv += l.adversarial, ++count_adv;
    }

    /// The epoch's mean losses and batch counts, written into `r`.
    void summarize(epoch_report& r) const {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        r.loss = count_loss ? sum_loss / count_loss : nan;
        r.clean_loss = count_clean ? sum_clean / count_clean : nan;
        r.adversarial_loss = count_adv ? sum_adv / count_adv : nan;
        r.batches = count_loss;
        r.clean_loss_batches = count_clean;
    }

    /// Clears the running sums for the next epoch.
    void clear_sums() {
        sum_loss = sum_clean = sum_adv = 0;
        count_loss = count_clean = count_adv = 0;
    }
};

}  // namespace advaug
