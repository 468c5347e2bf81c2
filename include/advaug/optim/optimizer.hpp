// The optimizer contract the trainer is written against, and the optimizers advaug ships.
//
// An optimizer O over parameters of type T provides:
//   void step(std::vector<parameter_view<T>>& params, double lr)
//     One update of every parameter's value from its grad, with learning rate lr (>= 0).
//     Per-parameter state is keyed by position in `params`; later steps pass the same
//     parameters in the same order.
//   void save_state(io::binary_writer&) const
//     Appends everything needed to continue the run bitwise identically.
//   void load_state(io::binary_reader&, const std::vector<parameter_view<T>>& params)
//     Restores a saved state; throws, leaving the optimizer unchanged, if it does not fit
//     `params` (another architecture), is malformed or belongs to another optimizer.
#pragma once

#include <vector>

#include "advaug/io/binary.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/optim/adam.hpp"
#include "advaug/optim/sgd.hpp"

namespace advaug {

template <class O, class T>
concept optimizer = requires(O& opt, const O& copt, std::vector<parameter_view<T>>& params,
                             const std::vector<parameter_view<T>>& cparams, double lr,
                             io::binary_writer& out, io::binary_reader& in) {
    opt.step(params, lr);
    copt.save_state(out);
    opt.load_state(in, cparams);
};

static_assert(optimizer<sgd<float>, float> && optimizer<sgd<double>, double>);
static_assert(optimizer<adam<float>, float> && optimizer<adam<double>, double>);

}  // namespace advaug
