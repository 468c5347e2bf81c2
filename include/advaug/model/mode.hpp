// Train/eval mode of a model, and a scope guard that switches it temporarily.
#pragma once

namespace advaug {

/// What a mode-dependent layer does: batch norm uses batch statistics and dropout drops
/// units in `train`; in `eval` both are deterministic functions of the input.
enum class mode { train, eval };

/// Sets a model's mode for the lifetime of the guard and restores the previous mode after,
/// also when an exception leaves the scope. A model already in mode `m` is only read, never
/// written: evaluations on a shared model in eval mode may then run in several threads at
/// once (docs/reliability.md), which an unconditional set_mode() would turn into a data race.
///   requires: Model has `advaug::mode mode() const` and `void set_mode(advaug::mode)`.
template <class Model>
class mode_guard {
public:
    mode_guard(Model& model, mode m) : model_(model), previous_(model.mode()) {
        if (previous_ != m) model_.set_mode(m);
    }
    ~mode_guard() {
        if (model_.mode() != previous_) model_.set_mode(previous_);
    }
    mode_guard(const mode_guard&) = delete;
    mode_guard& operator=(const mode_guard&) = delete;

private:
    Model& model_;
    mode previous_;
};

}  // namespace advaug
