// Model files: a sequential model's parameters and buffers, and a description of its
// architecture, in one .npz that numpy.load and examples/pytorch_interop.py read.
//
//   advaug::io::save_model("cnn.npz", net);
//   advaug::io::load_model("cnn.npz", other);   // same architecture, or an error; all or nothing
//
// Array names are torch.nn.Sequential's state_dict keys ("0.weight", "1.running_mean", ...);
// tensors keep PyTorch's layouts (dense [out, in], conv [out, in, kh, kw], NCHW activations).
#pragma once

#include <string>

#include "advaug/detail/error.hpp"
#include "advaug/io/npz.hpp"

namespace advaug::io {

/// Writes model.state() and "__advaug__.architecture" = model.describe(), atomically.
template <class Model>
void save_model(const std::string& path, Model& model) {
    save_parameters(path, model.state(), {{"architecture", model.describe()}});
}

/// Reads a file of save_model() (or of pytorch_interop.py) into `model`. The names, shapes and
/// dtypes of every array must match the model's state, and a stored architecture must equal
/// model.describe(); otherwise io_error or std::invalid_argument, and the model is unchanged.
template <class Model>
void load_model(const std::string& path, Model& model) {
    const auto meta = load_metadata(path);
    if (const auto it = meta.find("architecture"); it != meta.end() && it->second != model.describe()) {
        throw io_error(detail::concat("load_model(): '", path, "' holds the architecture '", it->second,
                                      "', the model is '", model.describe(), "'"));
    }
    load_parameters(path, model.state());
}

}  // namespace advaug::io
