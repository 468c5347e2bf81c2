// Train/eval mode of a model, and a scope guard that switches it temporarily.
#pragma once

namespace advaug {

/// What a mode-dependent layer does: batch norm uses batch statistics and dropout drops
/// units in `train`; in `eval` both are deterministic functions of the input.
enum class mode { train, eval };

/// Sets a model's mode for the lifetime of the guard and restores the previous mode after,
/// also when an exception leaves the scope.
///   requires: Model has `advaug::mode mode() const` and `void set_mode(advaug::mode)`.
template <class Model>
class mode_guard {
public:
    mode_guard(Model& model, mode m) : model_(model), previous_(model.mode()) { model_.set_mode(m); }
    ~mode_guard() { model_.set_mode(previous_); }
    mode_guard(const mode_guard&) = delete;
    mode_guard& operator=(const mode_guard&) = delete;

private:
    Model& model_;
    mode previous_;
};

}  // namespace advaug
