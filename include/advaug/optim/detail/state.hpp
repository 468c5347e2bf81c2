// Pieces shared by the optimizers: the lr check, the parameter layout an optimizer's state is
// built for, and the common header of a saved state.
//
// Saved state layout (little-endian, see io/binary.hpp):
//   string tag ("sgd", "adam"), uint32 format version, uint32 sizeof(T),
//   optimizer options, uint64 step count,
//   uint64 parameter count, then (string name, uint64 size) per parameter,
//   then the optimizer's buffers, one array per parameter and buffer.
// A state saved before the first step has a parameter count of 0 and no buffers.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/io/binary.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug::detail {

inline constexpr std::uint32_t optimizer_state_version = 1;

/// requires: lr finite and >= 0 (0 is allowed: the state still advances).
inline void check_lr(const char* function, double lr) {
    if (!std::isfinite(lr) || lr < 0) invalid(function, "lr must be finite and >= 0, got ", lr);
}

/// The names and sizes of the parameters an optimizer's state was built for, in order, and
/// where each one's slice starts in the optimizer's flat buffers.
class optimizer_layout {
public:
    /// Builds the layout of `params` (allocates). requires: value and grad of equal size.
    template <class T>
    static optimizer_layout of(const char* function, const std::vector<parameter_view<T>>& params) {
        optimizer_layout l;
        l.offsets_.reserve(params.size() + 1);
        l.names_.reserve(params.size());
        l.offsets_.push_back(0);
        for (const auto& p : params) {
            check_value_grad(function, p);
            l.names_.push_back(p.name);
            l.offsets_.push_back(l.offsets_.back() + p.value.size());
        }
        return l;
    }

    /// `params` matches this layout in count and sizes, and each value and grad agree.
    /// Never allocates unless it throws.
    template <class T>
    void check(const char* function, const std::vector<parameter_view<T>>& params) const {
        if (params.size() != count()) {
            invalid(function, "got ", params.size(),
                    " parameters, the optimizer state was built for ", count(),
                    " at the first step");
        }
        for (std::size_t i = 0; i < params.size(); ++i) {
            check_value_grad(function, params[i]);
            if (params[i].value.size() != size(i)) {
                invalid(function, "parameter '", params[i].name, "' has ", params[i].value.size(),
                        " elements, its optimizer state has ", size(i), " (built for '", names_[i],
                        "' at the first step)");
            }
        }
    }

    std::size_t count() const { return names_.size(); }
    std::size_t offset(std::size_t i) const { return offsets_[i]; }
    std::size_t size(std::size_t i) const { return offsets_[i + 1] - offsets_[i]; }
    /// Elements over all parameters: the length of each flat buffer.
    std::size_t total() const { return offsets_.empty() ? 0 : offsets_.back(); }

    void write(io::binary_writer& out) const {
        out.write<std::uint64_t>(count());
        for (std::size_t i = 0; i < count(); ++i) {
            out.write_string(names_[i]);
            out.write<std::uint64_t>(size(i));
        }
    }

    /// Reads the parameter table of a saved state and checks it against `params`: a mismatch
    /// is std::invalid_argument naming the parameter and both sizes. Returns the layout of
    /// `params` (empty for a state that took no step).
    template <class T>
    static optimizer_layout read(io::binary_reader& in, const char* function,
                                 const std::vector<parameter_view<T>>& params,
                                 std::uint64_t steps) {
        const auto n = in.read<std::uint64_t>("parameter count");
        if (steps == 0) {
            if (n != 0)
                in.fail("parameter count", concat("is ", n, " in a state that took no step"));
            return {};
        }
        if (n != params.size()) {
            invalid(function, "the model has ", params.size(), " parameters, the saved state has ",
                    n, " (a state from another architecture?)");
        }
        for (std::size_t i = 0; i < params.size(); ++i) {
            const std::string name = in.read_string("parameter name", 1 << 16);
            const auto size = in.read<std::uint64_t>("parameter size");
            if (size != params[i].value.size()) {
                invalid(function, "parameter '", params[i].name, "' has ", params[i].value.size(),
                        " elements, the saved state has ", size, " for '", name,
                        "' (a state from another architecture?)");
            }
        }
        return of(function, params);
    }

private:
    template <class T>
    static void check_value_grad(const char* function, const parameter_view<T>& p) {
        if (p.value.size() != p.grad.size()) {
            invalid(function, "parameter '", p.name, "' has a value of ", p.value.size(),
                    " elements and a gradient of ", p.grad.size());
        }
    }

    std::vector<std::string> names_;
    std::vector<std::size_t> offsets_;
};

template <class T>
void write_state_header(io::binary_writer& out, const char* tag) {
    out.write_string(tag);
    out.write<std::uint32_t>(optimizer_state_version);
    out.write<std::uint32_t>(sizeof(T));
}

/// A wrong tag or version is an io_error (not this optimizer's state); a float state read
/// by a double optimizer, or the reverse, is std::invalid_argument.
template <class T>
void read_state_header(io::binary_reader& in, const char* function, const char* tag) {
    const std::string got = in.read_string("optimizer tag", 64);
    if (got != tag) in.fail("optimizer tag", concat("is '", got, "', expected '", tag, "'"));
    const auto version = in.read<std::uint32_t>("optimizer state version");
    if (version != optimizer_state_version) {
        in.fail("optimizer state version",
                concat("is ", version, ", this build reads version ", optimizer_state_version));
    }
    const auto width = in.read<std::uint32_t>("optimizer value size");
    if (width != sizeof(T)) {
        invalid(function, "the saved state holds ", width, "-byte values, this optimizer ",
                sizeof(T), "-byte values (float and double states do not mix)");
    }
}

/// Saved and configured option values must agree exactly.
template <class V>
void check_saved_option(const char* function, const char* option, const V& saved, const V& own) {
    if (saved == own) return;
    if constexpr (std::is_same_v<V, bool>) {
        invalid(function, "the saved state has ", option, " ", saved ? "true" : "false",
                ", this optimizer has ", own ? "true" : "false");
    } else {
        invalid(function, "the saved state has ", option, " ", saved, ", this optimizer has ", own);
    }
}

}  // namespace advaug::detail
