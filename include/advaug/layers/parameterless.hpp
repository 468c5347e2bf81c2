// A base for layers without parameters (activations, pooling, flatten, dropout): the members of
// the layer contract (layers/layer.hpp) that such a layer would otherwise write out by hand.
//
//   template <class T>
//   class my_activation : public advaug::parameterless_layer<T> { /* forward, backward_input */ };
//
// The derived layer still writes value_type, the ranks, cache_type, forward and backward_input,
// and reads its mode through mode().
#pragma once

#include <vector>

#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug {

template <class T>
class parameterless_layer {
public:
    /// No parameters and no statistics: nothing to accumulate, with or without a scale.
    template <class Cache, class OutputGradient>
    void accumulate_gradient(const Cache&, const OutputGradient&, T = T(1)) {}
    void zero_grad() {}
    std::vector<parameter_view<T>> parameters() { return {}; }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

private:
    advaug::mode mode_ = advaug::mode::train;
};

}  // namespace advaug
