// The checkpoint file: a paused training run, written and read here, so that the trainer
// only gathers what goes in and applies what comes out; and the copies of a model's values
// that checkpoints and the collapse guard's snapshot are made of.
//
// Format 2 (little-endian, io/binary.hpp):
//   magic "ADVAUGCK", uint32 version, uint8 sizeof(value_type),
//   string method, uint64 seed, uint64 batch size,         (the run it belongs to)
//   uint64 next epoch, uint64 next batch, double[3] loss sums, uint64[3] counts,
//   uint64 tensor count, then (string name, uint64[] shape, value_type[] values) per tensor,
//   the optimizer's state (optim/detail/state.hpp),
//   double guard best, uint8 guard collapsed, uint64 snapshot count, value_type[] per snapshot,
//   uint32 crc32 of everything before it.
// Version 2 stores the model's state() (parameters and buffers such as batch norm's running
// statistics) where version 1 stored parameters() only; version 1 files are still read.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <zlib.h>

#include "advaug/backend/host.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/io/atomic_file.hpp"
#include "advaug/io/binary.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/training/reports.hpp"

namespace advaug {

namespace detail {

inline constexpr char checkpoint_magic[8] = {'A', 'D', 'V', 'A', 'U', 'G', 'C', 'K'};
inline constexpr std::uint32_t checkpoint_version = 2;

/// The values of `views` in host vectors, and back (read_parameter / write_parameter of
/// backend/host.hpp: a copy for a host model, a download / upload for a device model).
template <class M, class T>
std::vector<std::vector<T>> read_values(const M& model, const std::vector<parameter_view<T>>& views) {
    std::vector<std::vector<T>> out(views.size());
    for (std::size_t i = 0; i < views.size(); ++i) {
        out[i].resize(views[i].value.size());
        read_parameter(model, views[i], std::span<T>(out[i]));
    }
    return out;
}
template <class M, class T>
void write_values(M& model, const std::vector<parameter_view<T>>& views,
                  const std::vector<std::vector<T>>& values) {
    for (std::size_t i = 0; i < views.size() && i < values.size(); ++i) {
        write_parameter(model, views[i], std::span<const T>(values[i]));
    }
}

/// What ties a checkpoint to a run: resume() refuses a file written with other values.
struct checkpoint_run {
    std::string method;
    std::uint64_t seed = 0;
    std::uint64_t batch_size = 0;
};

/// What a checkpoint holds besides the run and the optimizer's state.
template <class T>
struct checkpoint_contents {
    training_position position;
    bool parameters_only = false;          // version 1: values are parameters(), not state()
    std::vector<std::vector<T>> values;    // one per tensor, in the model's order
    double guard_best = -1;
    bool guard_collapsed = false;
    std::vector<std::vector<T>> best_weights;  // the guard's snapshot; empty when none
};

/// Writes a checkpoint atomically. `state` names and shapes the tensors, `values` holds
/// their host values in the same order.
/// throws: numeric_error, leaving `path` as it was, when a value is NaN or infinite;
///         io_error naming `path` when it cannot be written (the old file stays).
template <class T, class Optimizer>
void write_checkpoint(const std::string& path, const checkpoint_run& run,
                      const std::vector<parameter_view<T>>& state, const checkpoint_contents<T>& c,
                      const Optimizer& optimizer) {
    // A diverged model must not replace the last good checkpoint.
    for (std::size_t k = 0; k < state.size(); ++k) {
        const auto& v = c.values[k];
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!std::isfinite(v[i])) {
                throw numeric_error(concat("trainer::save_checkpoint(): parameter '", state[k].name,
                                           "' element ", i, " is ", v[i], "; the model diverged, and '",
                                           path, "' keeps its last good checkpoint"));
            }
        }
    }
    const training_position& p = c.position;
    io::binary_writer w;
    for (char ch : checkpoint_magic) w.write(ch);
    w.write(checkpoint_version);
    w.write<std::uint8_t>(sizeof(T));
    w.write_string(run.method);
    w.write<std::uint64_t>(run.seed);
    w.write<std::uint64_t>(run.batch_size);
    w.write<std::uint64_t>(p.epoch);
    w.write<std::uint64_t>(p.batch);
    w.write(p.sum_loss);
    w.write(p.sum_clean);
    w.write(p.sum_adv);
    w.write<std::uint64_t>(p.count_loss);
    w.write<std::uint64_t>(p.count_clean);
    w.write<std::uint64_t>(p.count_adv);
    w.write<std::uint64_t>(state.size());
    for (std::size_t k = 0; k < state.size(); ++k) {
        w.write_string(state[k].name);
        std::vector<std::uint64_t> shape(state[k].shape.begin(), state[k].shape.end());
        w.write_vector(shape);
        w.write_array(c.values[k].data(), c.values[k].size());
    }
    optimizer.save_state(w);
    w.write(c.guard_best);
    w.write<std::uint8_t>(c.guard_collapsed ? 1 : 0);
    w.write<std::uint64_t>(c.best_weights.size());
    for (const auto& b : c.best_weights) w.write_vector(b);
    const auto crc = static_cast<std::uint32_t>(
        ::crc32(0L, w.bytes().data(), static_cast<uInt>(w.bytes().size())));
    w.write(crc);
    io::write_file_atomically(path, w.bytes());
}

/// Reads a checkpoint for a run `run` of a model with these parameters and state, and loads
/// the optimizer's part into `optimizer`. Everything else is returned for the caller to apply.
/// throws: io_error for a file that is not a sound checkpoint, std::invalid_argument for one
///         of another run or architecture; the optimizer is then as it was.
template <class T, class Optimizer>
checkpoint_contents<T> read_checkpoint(const std::string& path, const checkpoint_run& run,
                                       const std::vector<parameter_view<T>>& params,
                                       const std::vector<parameter_view<T>>& state,
                                       Optimizer& optimizer) {
    const char* fn = "trainer::resume";
    const auto bytes = io::read_file(path);
    const std::string source = concat(fn, "(): '", path, "'");
    if (bytes.size() < sizeof(checkpoint_magic) + 8 ||
        !std::equal(std::begin(checkpoint_magic), std::end(checkpoint_magic), bytes.begin())) {
        throw io_error(source + " is not an advaug checkpoint (bad magic)");
    }
    std::uint32_t stored_crc;
    std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
    const auto crc = static_cast<std::uint32_t>(::crc32(0L, bytes.data(), static_cast<uInt>(bytes.size() - 4)));
    if (crc != stored_crc) throw io_error(source + " is corrupted or truncated (checksum mismatch)");

    io::binary_reader r(bytes.data(), bytes.size() - 4, source);
    for (std::size_t i = 0; i < sizeof(checkpoint_magic); ++i) r.read<char>("magic");
    const auto version = r.read<std::uint32_t>("version");
    if (version != 1 && version != checkpoint_version) {
        r.fail("version", concat(version, " is not supported (expected 1 to ", checkpoint_version, ")"));
    }
    checkpoint_contents<T> c;
    // Version 1 holds the parameters only; the model's buffers then stay as they are.
    c.parameters_only = version == 1;
    const auto& stored = c.parameters_only ? params : state;
    if (const auto size = r.read<std::uint8_t>("value size"); size != sizeof(T)) {
        r.fail("value size", concat("is ", int(size), " bytes, this model uses ", sizeof(T)));
    }
    auto expect = [&](const char* what, const auto& in_file, const auto& current) {
        if (!(in_file == current)) {
            throw std::invalid_argument(concat(fn, "(): the checkpoint '", path, "' was written with ",
                                               what, " ", in_file, ", this trainer has ", current));
        }
    };
    expect("method", r.read_string("method"), run.method);
    expect("seed", r.read<std::uint64_t>("seed"), run.seed);
    expect("batch_size", r.read<std::uint64_t>("batch size"), run.batch_size);
    training_position& p = c.position;
    p.epoch = r.read<std::uint64_t>("epoch");
    p.batch = r.read<std::uint64_t>("batch");
    p.sum_loss = r.read<double>("loss sum");
    p.sum_clean = r.read<double>("clean loss sum");
    p.sum_adv = r.read<double>("adversarial loss sum");
    p.count_loss = r.read<std::uint64_t>("loss count");
    p.count_clean = r.read<std::uint64_t>("clean count");
    p.count_adv = r.read<std::uint64_t>("adversarial count");
    const auto count = r.read<std::uint64_t>("parameter count");
    if (count != stored.size()) {
        throw std::invalid_argument(concat(fn, "(): the checkpoint '", path, "' holds ", count,
                                           " parameter tensors, the model has ", stored.size(),
                                           " (another architecture)"));
    }
    c.values.resize(stored.size());
    for (std::size_t i = 0; i < stored.size(); ++i) {
        const auto& s = stored[i];
        const std::string name = r.read_string("parameter name");
        const auto shape = r.read_vector<std::uint64_t>("parameter shape", 16);
        const std::vector<std::uint64_t> want(s.shape.begin(), s.shape.end());
        if (name != s.name || shape != want) {
            std::vector<std::size_t> got(shape.begin(), shape.end());
            throw std::invalid_argument(concat(
                fn, "(): the checkpoint '", path, "' has parameter ", i, " '", name, "' of shape ",
                shape_string(got), ", the model has '", s.name, "' of shape ",
                shape_string(s.shape), " (another architecture)"));
        }
        auto& v = c.values[i];
        v.resize(s.value.size());
        r.read_array_into("parameter values", v.data(), v.size());
        // write_checkpoint() never writes a diverged model, so such values mean a damaged file.
        for (std::size_t k = 0; k < v.size(); ++k) {
            if (!std::isfinite(v[k])) {
                throw io_error(concat(source, " has parameter '", s.name, "' element ", k, " = ", v[k],
                                      "; save_checkpoint() never writes a non-finite weight, so the "
                                      "file is damaged"));
            }
        }
    }
    // The optimizer reads its part in place: keep its state, so that an error further on in
    // the file puts it back.
    io::binary_writer kept_state;
    optimizer.save_state(kept_state);
    bool optimizer_loaded = false;
    try {
        optimizer.load_state(r, params);
        optimizer_loaded = true;
        c.guard_best = r.read<double>("guard best accuracy");
        if (!(c.guard_best == -1 || (c.guard_best >= 0 && c.guard_best <= 1))) {
            r.fail("guard best accuracy", "is not -1 or in [0, 1]");
        }
        c.guard_collapsed = r.read<std::uint8_t>("guard collapse flag") != 0;
        const auto snapshots = r.read<std::uint64_t>("guard snapshot count");
        if (snapshots != 0 && snapshots != stored.size()) r.fail("guard snapshot count", "does not match the model");
        c.best_weights.resize(snapshots);
        for (std::size_t i = 0; i < snapshots; ++i) {
            c.best_weights[i] = r.read_vector<T>("guard snapshot");
            if (c.best_weights[i].size() != stored[i].value.size()) r.fail("guard snapshot", "has the wrong size");
        }
        if (r.remaining() != 0) r.fail("end of checkpoint", concat("has ", r.remaining(), " unexpected bytes"));
    } catch (...) {
        if (optimizer_loaded) {
            io::binary_reader previous(kept_state.bytes().data(), kept_state.bytes().size(), source);
            optimizer.load_state(previous, params);
        }
        throw;
    }
    return c;
}

}  // namespace detail
}  // namespace advaug
