// Model files: a sequential model's parameters and buffers, and a description of its
// architecture, in one .npz that numpy.load and examples/pytorch_interop.py read.
//
//   advaug::io::save_model("cnn.npz", net);
//   advaug::io::load_model("cnn.npz", other);   // same architecture, or an error; all or nothing
//   advaug::io::read_architecture("cnn.npz");    // which bundled model the file holds
//
// Array names are torch.nn.Sequential's state_dict keys ("0.weight", "1.running_mean", ...);
// tensors keep PyTorch's layouts (dense [out, in], conv [out, in, kh, kw], NCHW activations).
#pragma once

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/io/npz.hpp"
#include "advaug/models/cnn.hpp"

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

/// Which of advaug's bundled architectures a model file's description names.
enum class architecture_kind {
    none,    // the file records no architecture (io::save_parameters without one)
    mlp,     // dense layers of any widths with relu (advaug::mlp) or tanh between them
    cnn,     // advaug::cnn without batch norm
    cnn_bn,  // advaug::cnn with batch norm
    other    // a description that is none of these (a sequential of other layers)
};

/// "none", "mlp", "cnn", "cnn-bn" or "other".
inline const char* to_string(architecture_kind k) {
    switch (k) {
        case architecture_kind::none: return "none";
        case architecture_kind::mlp: return "mlp";
        case architecture_kind::cnn: return "cnn";
        case architecture_kind::cnn_bn: return "cnn-bn";
        case architecture_kind::other: break;
    }
    return "other";
}

/// What a model file says about its architecture.
struct architecture_info {
    architecture_kind kind = architecture_kind::none;
    std::string description;          // the stored model.describe(); empty for none
    std::vector<std::size_t> widths;  // mlp: inputs, hidden widths..., classes
    std::string activation;           // mlp: "relu" or "tanh"
};

/// Classifies a model description (sequential::describe()), e.g.
/// "sequential [784] -> dense(784->256) -> relu -> dense(256->10)": an mlp with widths
/// {784, 256, 10} and relu; one activation, relu or tanh, between every two dense layers.
/// An empty text is `none`, a text of no bundled architecture `other`.
inline architecture_info parse_architecture(const std::string& description);

/// parse_architecture() of the "__advaug__.architecture" metadata that save_model() wrote.
/// throws: io_error as load_metadata() (a missing or damaged file).
inline architecture_info read_architecture(const std::string& path) {
    const auto meta = load_metadata(path);
    const auto it = meta.find("architecture");
    return parse_architecture(it == meta.end() ? std::string() : it->second);
}

}  // namespace advaug::io

namespace advaug::detail {

inline std::optional<std::size_t> parse_size(std::string_view text) {
    std::size_t value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
    return value;
}

/// The widths and activation of a dense stack into `out`, or false if `text` is not one.
inline bool parse_dense_stack(const std::string& text, io::architecture_info& out) {
    std::vector<std::string_view> parts;
    std::string_view rest(text);
    for (std::size_t at; (at = rest.find(" -> ")) != std::string_view::npos; rest.remove_prefix(at + 4)) {
        parts.push_back(rest.substr(0, at));
    }
    parts.push_back(rest);
    const std::string_view head = "sequential [";
    if (parts.size() < 2 || parts.size() % 2 != 0 || !parts[0].starts_with(head) || !parts[0].ends_with("]")) {
        return false;
    }
    const auto inputs = parse_size(parts[0].substr(head.size(), parts[0].size() - head.size() - 1));
    if (!inputs || *inputs == 0) return false;
    std::vector<std::size_t> widths{*inputs};
    const std::string activation = parts.size() > 2 ? std::string(parts[2]) : "relu";
    if (activation != "relu" && activation != "tanh") return false;
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const std::string_view p = parts[i];
        if (i % 2 == 0) {
            if (p != activation) return false;
            continue;
        }
        const std::size_t arrow = p.find("->");
        if (!p.starts_with("dense(") || !p.ends_with(")") || arrow == std::string_view::npos) return false;
        const auto in = parse_size(p.substr(6, arrow - 6));
        const auto width = parse_size(p.substr(arrow + 2, p.size() - arrow - 3));
        if (!in || !width || *in != widths.back() || *width == 0) return false;
        widths.push_back(*width);
    }
    out.widths = std::move(widths);
    out.activation = activation;
    return true;
}

}  // namespace advaug::detail

namespace advaug::io {

inline architecture_info parse_architecture(const std::string& description) {
    architecture_info info;
    info.description = description;
    if (description.empty()) return info;
    if (detail::parse_dense_stack(description, info)) {
        info.kind = architecture_kind::mlp;
    } else if (description == cnn<float>(0, weight_init::he_normal, false).describe()) {
        info.kind = architecture_kind::cnn;
    } else if (description == cnn<float>(0, weight_init::he_normal, true).describe()) {
        info.kind = architecture_kind::cnn_bn;
    } else {
        info.kind = architecture_kind::other;
    }
    return info;
}

}  // namespace advaug::io
