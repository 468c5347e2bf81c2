// The catastrophic-overfitting guard's decision, apart from how its readings are measured.
//
// The trainer measures PGD accuracy on a fixed guard batch (train_options::collapse_guard)
// and feeds each reading to a collapse_detector; the detector alone decides whether the
// reading is a new best, within the allowed drop, or a collapse. Keeping the decision here
// lets it be tested on scripted readings, whatever a real training trajectory does.
#pragma once

#include <cmath>

#include "advaug/detail/error.hpp"

namespace advaug {

/// What one guard reading means.
enum class guard_verdict {
    new_best,     ///< higher than every reading before: the trainer snapshots the weights
    within_drop,  ///< at most `drop` below the best so far
    collapsed,    ///< more than `drop` below the best so far
};

/// Tracks the best guard accuracy and calls a drop of more than `drop` below it a collapse.
///
/// requires: 0 < drop <= 1; each reading is an accuracy in [0, 1].
/// ensures:  observe() returns new_best exactly when the reading beats every earlier one (the
///           first reading always does); collapsed exactly when best() - reading > drop;
///           collapsed() stays true once any reading collapsed.
class collapse_detector {
public:
    explicit collapse_detector(double drop) : drop_(drop) {
        if (!(drop > 0 && drop <= 1)) detail::invalid("collapse_detector", "drop must be in (0, 1], got ", drop);
    }

    guard_verdict observe(double accuracy) {
        if (!(accuracy >= 0 && accuracy <= 1)) {
            detail::invalid("collapse_detector::observe", "accuracy must be in [0, 1], got ", accuracy);
        }
        if (accuracy > best_) {
            best_ = accuracy;
            return guard_verdict::new_best;
        }
        if (best_ - accuracy <= drop_) return guard_verdict::within_drop;
        collapsed_ = true;
        return guard_verdict::collapsed;
    }

    double drop() const { return drop_; }
    /// The best reading so far; -1 before the first.
    double best() const { return best_; }
    bool collapsed() const { return collapsed_; }

    /// Puts back the state a checkpoint kept (best() and collapsed()).
    void restore(double best, bool collapsed) {
        if (!(best == -1 || (best >= 0 && best <= 1))) {
            detail::invalid("collapse_detector::restore", "best must be -1 or in [0, 1], got ", best);
        }
        best_ = best;
        collapsed_ = collapsed;
    }

private:
    double drop_;
    double best_ = -1;
    bool collapsed_ = false;
};

}  // namespace advaug
