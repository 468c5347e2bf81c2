// Named arrays in .npz files, the format numpy.savez writes and numpy.load reads, and model
// weights stored that way.
//
//   io::npz_archive out;
//   out.add("x", x);                                  // any xt::xtensor<T, N>, see npz_element
//   out.save("arrays.npz");                           // atomically, see io/atomic_file.hpp
//   auto in = io::npz_archive::load("arrays.npz");
//   tensor<float, 2> x2 = in.get_tensor<float, 2>("x");
//
//   io::save_parameters("mlp.npz", net.parameters(), {{"architecture", "mlp 784-256-256-10"}});
//   io::load_parameters("mlp.npz", other.parameters());   // all or nothing
//
// An .npz file is a zip archive (libzip builds and reads it) with one member "<name>.npy"
// per array. Arrays are written with xtensor's .npy writer and stored uncompressed, as
// numpy.savez does; reading accepts stored and deflated members (numpy.savez_compressed).
// Each member's .npy header goes through io/npy.hpp's parser, which trusts nothing: every
// declared size is checked against the bytes that are really there, and any malformed,
// truncated or corrupted file (zip CRCs included) throws io_error naming the file, the
// member and the problem.
//
// Parameters are stored under their parameter_view names ("0.weight", "0.bias", ...) with
// their shapes ([out, in] for a dense weight, like torch.nn.Linear). Metadata strings go
// into 1-D uint8 arrays named "__advaug__.<key>".
#pragma once

#include <zip.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/io/atomic_file.hpp"
#include "advaug/io/npy.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug::io {

/// Prefix of the names under which save_parameters() stores metadata.
inline constexpr std::string_view npz_metadata_prefix = "__advaug__.";

class npz_archive;
}  // namespace advaug::io

namespace advaug::detail::npz {
inline io::npz_archive read_npz_bytes(std::span<const std::uint8_t> bytes,
                                      const std::string& source, const char* function);
}  // namespace advaug::detail::npz

namespace advaug::io {

/// An ordered set of named arrays, read from or written to an .npz file.
class npz_archive {
public:
    /// Adds a copy of `values` as array `name`.
    /// requires: `name` non-empty, without '\0', not in the archive yet (else
    ///           std::invalid_argument).
    template <npz_element T, std::size_t N>
    void add(std::string name, const xt::xtensor<T, N>& values);

    /// Adds `values`, a row-major array of shape `shape`.
    /// requires: as above, and values.size() == product(shape) (else std::invalid_argument).
    template <npz_element T>
    void add(std::string name, std::span<const T> values, std::vector<std::size_t> shape);
    template <npz_element T>
    void add(std::string name, const std::vector<T>& values, std::vector<std::size_t> shape) {
        add(std::move(name), std::span<const T>(values), std::move(shape));
    }

    /// Adds `text` as a 1-D "|u1" array of its bytes (how save_parameters stores metadata).
    void add_string(std::string name, std::string_view text);

    /// Adds an untyped array. requires: a valid name (see add), a supported dtype, and
    /// data.size() == product(shape) * item size (else std::invalid_argument).
    void add(npz_array array);

    /// Writes the archive to `path` atomically: the old file, if any, survives any failure.
    /// throws: io_error naming the path.
    void save(const std::string& path) const;

    /// The archive as the bytes of an .npz file (what save() writes).
    std::vector<std::uint8_t> to_bytes() const;

    /// Reads an .npz file. throws: io_error naming the path, the member and the problem.
    static npz_archive load(const std::string& path);

    /// Reads .npz bytes; `source` stands for the file in error messages.
    static npz_archive from_bytes(std::span<const std::uint8_t> bytes,
                                  const std::string& source = "<memory>");

    /// Array names, in the order they were added or stored in the file.
    std::vector<std::string> names() const;
    bool contains(const std::string& name) const { return index_.count(name) != 0; }
    std::size_t size() const { return arrays_.size(); }

    /// The array `name`. throws: io_error if there is none.
    const npz_array& at(const std::string& name) const;

    /// The elements of array `name`, whose dtype must be npy_dtype<T>() and whose shape must
    /// be `expected_shape`. throws: io_error naming the array and, for a wrong shape, both
    /// shapes.
    template <npz_element T>
    std::vector<T> get(const std::string& name,
                       const std::vector<std::size_t>& expected_shape) const;

    /// Array `name` as a tensor of rank N. throws: io_error for a wrong dtype or rank.
    template <npz_element T, std::size_t N>
    xt::xtensor<T, N> get_tensor(const std::string& name) const;

    /// The text stored by add_string(). throws: io_error unless `name` is a 1-D "|u1" array.
    std::string get_string(const std::string& name) const;

    /// The file this archive was read from ("<memory>" for one built in memory).
    const std::string& source() const { return source_; }

private:
    friend npz_archive detail::npz::read_npz_bytes(std::span<const std::uint8_t>,
                                                   const std::string&, const char*);
    void check_new_name(const char* function, const std::string& name) const;
    void append(npz_array&& array);
    std::vector<std::uint8_t> build(const std::string& target) const;
    const npz_array& find(const char* function, const std::string& name) const;

    std::vector<npz_array> arrays_;
    std::map<std::string, std::size_t> index_;
    std::string source_ = "<memory>";
};

/// Writes one array per parameter, named exactly parameter_view::name and shaped
/// parameter_view::shape, and each metadata entry as the string array
/// "__advaug__.<key>", to `path` (atomically).
/// requires: T float or double; names unique, non-empty, not starting with "__advaug__.";
///           value.size() == product(shape); metadata keys non-empty (else
///           std::invalid_argument). throws: io_error if the file cannot be written.
template <class T>
void save_parameters(const std::string& path, const std::vector<parameter_view<T>>& params,
                     const std::map<std::string, std::string>& metadata = {});

/// Reads the values of `params` (written through the views) from a file of save_parameters().
/// The file must hold exactly one array per parameter, with the parameter's name, shape and
/// dtype, plus any "__advaug__." metadata; otherwise io_error names the problem
/// ("missing array '1.bias'", "unexpected array 'foo'", "array '0.weight' has shape
/// [256, 784], the model expects [256, 700]", a dtype) and no parameter is changed: the
/// file is checked completely before the first value is copied.
template <class T>
void load_parameters(const std::string& path, const std::vector<parameter_view<T>>& params);

/// The metadata that save_parameters() stored, keyed without the "__advaug__." prefix.
/// throws: io_error as npz_archive::load, or if a metadata array is not a 1-D "|u1" array.
inline std::map<std::string, std::string> load_metadata(const std::string& path);

// ---------------------------------------------------------------------------------------------

}  // namespace advaug::io

namespace advaug::detail::npz {

using detail::concat;
using detail::shape_string;
using io::npy_dtype;
using io::npz_archive;
using io::npz_array;
using io::npz_element;
using npy::byte_count;
using npy::element_count;
using npy::npy_header;
using npy::parse_dtype;
using npy::parse_npy;
using npy::too_big;

/// Owns a zip_error_t.
struct zip_error_holder {
    zip_error_t error;
    zip_error_holder() { zip_error_init(&error); }
    ~zip_error_holder() { zip_error_fini(&error); }
    zip_error_holder(const zip_error_holder&) = delete;
    zip_error_holder& operator=(const zip_error_holder&) = delete;
    std::string message() { return zip_error_strerror(&error); }
};

struct zip_discarder {
    void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct zip_file_closer {
    void operator()(zip_file_t* file) const { zip_fclose(file); }
};
struct zip_source_freer {
    void operator()(zip_source_t* source) const { zip_source_free(source); }
};
using zip_ptr = std::unique_ptr<zip_t, zip_discarder>;
using zip_file_ptr = std::unique_ptr<zip_file_t, zip_file_closer>;
using zip_source_ptr = std::unique_ptr<zip_source_t, zip_source_freer>;

/// The .npy bytes of `array`, written by xtensor.
template <npz_element T>
std::string encode_typed(const npz_array& array) {
    const std::size_t count = element_count(array.shape);
    std::vector<T> values(count);
    if (count != 0) std::memcpy(values.data(), array.data.data(), count * sizeof(T));
    auto view = xt::adapt(values.data(), count, xt::no_ownership(), array.shape);
    return xt::dump_npy(view);
}

/// The .npy bytes of `array`: xtensor's writer for the npz_element types, numpy's layout
/// (format 1.0, header padded to 64 bytes) for other plain dtypes.
inline std::string encode_npy(const npz_array& array) {
    std::string out;
    if (array.dtype == npy_dtype<float>())
        out = encode_typed<float>(array);
    else if (array.dtype == npy_dtype<double>())
        out = encode_typed<double>(array);
    else if (array.dtype == npy_dtype<std::int64_t>())
        out = encode_typed<std::int64_t>(array);
    else if (array.dtype == npy_dtype<std::uint8_t>())
        out = encode_typed<std::uint8_t>(array);
    else {
        // Python's tuple syntax: "()", "(3,)", "(3, 4)".
        std::string shape = "(";
        for (std::size_t d : array.shape) shape += std::to_string(d) + ", ";
        if (array.shape.size() == 1) shape.pop_back();
        if (array.shape.size() > 1) shape.resize(shape.size() - 2);
        shape += ")";
        std::string dict =
            "{'descr': '" + array.dtype + "', 'fortran_order': False, 'shape': " + shape + ", }";
        dict.append(63 - (10 + dict.size()) % 64, ' ');
        dict += '\n';
        out.assign("\x93NUMPY\x01\x00", 8);
        out += static_cast<char>(dict.size() & 0xff);
        out += static_cast<char>(dict.size() >> 8);
        out += dict;
        out.append(reinterpret_cast<const char*>(array.data.data()), array.data.size());
    }
    // Cheap guard against a change in the writer: the result must read back as what it holds.
    const auto* p = reinterpret_cast<const std::uint8_t*>(out.data());
    const npy_header check = parse_npy(p, out.size(), [&](const std::string& why) -> void {
        throw std::logic_error(
            concat("npz_archive::save(): the .npy writer produced a member for '", array.name,
                   "' that ", why));
    });
    if (check.dtype != array.dtype || check.shape != array.shape) {
        throw std::logic_error(concat("npz_archive::save(): the .npy writer wrote '", array.name,
                                      "' as ", check.dtype, " ", shape_string(check.shape)));
    }
    return out;
}

/// A fixed modification time (1980-01-01 00:00 local time, the earliest a zip can hold, the
/// time numpy.savez uses), so that equal archives are equal files.
inline std::time_t zip_epoch() {
    std::tm tm{};
    tm.tm_year = 80;
    tm.tm_mon = 0;
    tm.tm_mday = 1;
    tm.tm_isdst = -1;
    return std::mktime(&tm);
}

}  // namespace advaug::detail::npz

namespace advaug::io {

// --- npz_archive -----------------------------------------------------------------------------

inline void npz_archive::check_new_name(const char* function, const std::string& name) const {
    if (name.empty()) advaug::detail::invalid(function, "an array name must not be empty");
    if (name.find('\0') != std::string::npos) {
        advaug::detail::invalid(function, "array name '", name.c_str(),
                                "' contains a NUL character");
    }
    if (contains(name))
        advaug::detail::invalid(function, "array '", name, "' is already in the archive");
}

inline void npz_archive::append(npz_array&& array) {
    arrays_.push_back(std::move(array));
    try {
        index_.emplace(arrays_.back().name, arrays_.size() - 1);
    } catch (...) {
        arrays_.pop_back();
        throw;
    }
}

template <npz_element T, std::size_t N>
void npz_archive::add(std::string name, const xt::xtensor<T, N>& values) {
    std::vector<std::size_t> shape(values.shape().begin(), values.shape().end());
    add(std::move(name), std::span<const T>(values.data(), values.size()), std::move(shape));
}

template <npz_element T>
void npz_archive::add(std::string name, std::span<const T> values, std::vector<std::size_t> shape) {
    const char* fn = "npz_archive::add";
    check_new_name(fn, name);
    std::size_t bytes = 0;
    if (!detail::npz::byte_count(shape, sizeof(T), bytes)) {
        advaug::detail::invalid(fn, "array '", name, "' has ",
                                detail::npz::too_big(shape, sizeof(T)));
    }
    if (bytes != values.size_bytes()) {
        advaug::detail::invalid(fn, "array '", name, "' has ", values.size(), " values, shape ",
                                advaug::detail::shape_string(shape), " needs ",
                                detail::npz::element_count(shape));
    }
    npz_array array{std::move(name), npy_dtype<T>(), std::move(shape), {}};
    array.data.resize(bytes);
    if (bytes != 0) std::memcpy(array.data.data(), values.data(), bytes);
    append(std::move(array));
}

inline void npz_archive::add_string(std::string name, std::string_view text) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
    add(std::move(name), std::span<const std::uint8_t>(p, text.size()), {text.size()});
}

inline void npz_archive::add(npz_array array) {
    const char* fn = "npz_archive::add";
    check_new_name(fn, array.name);
    std::string dtype;
    std::size_t item_size = 0;
    if (const char* why = detail::npz::parse_dtype(array.dtype, dtype, item_size)) {
        advaug::detail::invalid(fn, "array '", array.name, "' has unsupported dtype '", array.dtype,
                                "' (", why, ")");
    }
    std::size_t bytes = 0;
    if (!detail::npz::byte_count(array.shape, item_size, bytes)) {
        advaug::detail::invalid(fn, "array '", array.name, "' has ",
                                detail::npz::too_big(array.shape, item_size));
    }
    if (bytes != array.data.size()) {
        advaug::detail::invalid(fn, "array '", array.name, "' has ", array.data.size(),
                                " data bytes, shape ", advaug::detail::shape_string(array.shape),
                                " of dtype '", array.dtype, "' needs ", bytes);
    }
    array.dtype = dtype;
    append(std::move(array));
}

inline std::vector<std::string> npz_archive::names() const {
    std::vector<std::string> out;
    out.reserve(arrays_.size());
    for (const auto& a : arrays_) out.push_back(a.name);
    return out;
}

inline const npz_array& npz_archive::find(const char* function, const std::string& name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) {
        throw io_error(
            advaug::detail::concat(function, "(): '", source_, "' has no array '", name, "'"));
    }
    return arrays_[it->second];
}

inline const npz_array& npz_archive::at(const std::string& name) const {
    return find("npz_archive::at", name);
}

template <npz_element T>
std::vector<T> npz_archive::get(const std::string& name,
                                const std::vector<std::size_t>& expected_shape) const {
    using advaug::detail::concat;
    const char* fn = "npz_archive::get";
    const npz_array& a = find(fn, name);
    if (a.dtype != npy_dtype<T>()) {
        throw io_error(concat(fn, "(): '", source_, "' array '", name, "' has dtype '", a.dtype,
                              "', expected '", npy_dtype<T>(), "'"));
    }
    if (a.shape != expected_shape) {
        throw io_error(concat(fn, "(): '", source_, "' array '", name, "' has shape ",
                              advaug::detail::shape_string(a.shape), ", expected ",
                              advaug::detail::shape_string(expected_shape)));
    }
    std::vector<T> out(a.data.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), a.data.data(), a.data.size());
    return out;
}

template <npz_element T, std::size_t N>
xt::xtensor<T, N> npz_archive::get_tensor(const std::string& name) const {
    using advaug::detail::concat;
    const char* fn = "npz_archive::get_tensor";
    const npz_array& a = find(fn, name);
    if (a.dtype != npy_dtype<T>()) {
        throw io_error(concat(fn, "(): '", source_, "' array '", name, "' has dtype '", a.dtype,
                              "', expected '", npy_dtype<T>(), "'"));
    }
    if (a.shape.size() != N) {
        throw io_error(concat(fn, "(): '", source_, "' array '", name, "' has shape ",
                              advaug::detail::shape_string(a.shape), " of rank ", a.shape.size(),
                              ", expected rank ", N));
    }
    std::array<std::size_t, N> shape{};
    std::copy(a.shape.begin(), a.shape.end(), shape.begin());
    auto out = xt::xtensor<T, N>::from_shape(shape);
    if (!a.data.empty()) std::memcpy(out.data(), a.data.data(), a.data.size());
    return out;
}

inline std::string npz_archive::get_string(const std::string& name) const {
    const char* fn = "npz_archive::get_string";
    const npz_array& a = find(fn, name);
    if (a.dtype != npy_dtype<std::uint8_t>() || a.shape.size() != 1) {
        throw io_error(advaug::detail::concat(
            fn, "(): '", source_, "' array '", name, "' has dtype '", a.dtype, "' and shape ",
            advaug::detail::shape_string(a.shape), ", expected a 1-D '|u1' array"));
    }
    return std::string(a.data.begin(), a.data.end());
}

inline std::vector<std::uint8_t> npz_archive::to_bytes() const { return build("<memory>"); }

inline std::vector<std::uint8_t> npz_archive::build(const std::string& target) const {
    using namespace detail::npz;
    const char* fn = "npz_archive::save";
    if (arrays_.empty()) {
        // libzip writes nothing for an empty archive; this is the empty zip numpy.savez()
        // writes: an end-of-central-directory record alone.
        std::vector<std::uint8_t> empty(22, 0);
        empty[0] = 'P', empty[1] = 'K', empty[2] = 5, empty[3] = 6;
        return empty;
    }
    auto fail = [&](const std::string& why) -> void {
        throw io_error(concat(fn, "(): cannot build the zip archive for '", target, "': ", why));
    };
    // The members' bytes must stay alive until zip_close().
    std::vector<std::string> members;
    members.reserve(arrays_.size());
    for (const auto& a : arrays_) members.push_back(encode_npy(a));

    zip_error_holder error;
    zip_source_ptr buffer(zip_source_buffer_create(nullptr, 0, 0, &error.error));
    if (!buffer) fail(error.message());
    zip_ptr archive(zip_open_from_source(buffer.get(), ZIP_TRUNCATE, &error.error));
    if (!archive) fail(error.message());
    // The archive took our reference; keep one for reading the result after zip_close().
    zip_source_keep(buffer.get());
    const std::time_t mtime = zip_epoch();
    for (std::size_t i = 0; i < arrays_.size(); ++i) {
        zip_source_t* member =
            zip_source_buffer(archive.get(), members[i].data(), members[i].size(), 0);
        if (!member) fail(zip_strerror(archive.get()));
        const std::string member_name = arrays_[i].name + ".npy";
        const zip_int64_t index =
            zip_file_add(archive.get(), member_name.c_str(), member, ZIP_FL_ENC_UTF_8);
        if (index < 0) {
            zip_source_free(member);
            fail(concat("member '", member_name, "': ", zip_strerror(archive.get())));
        }
        const auto at = static_cast<zip_uint64_t>(index);
        if (zip_set_file_compression(archive.get(), at, ZIP_CM_STORE, 0) != 0 ||
            zip_file_set_mtime(archive.get(), at, mtime, 0) != 0) {
            fail(concat("member '", member_name, "': ", zip_strerror(archive.get())));
        }
    }
    if (zip_close(archive.get()) != 0) fail(zip_strerror(archive.get()));
    archive.release();  // zip_close() freed it

    zip_source_t* src = buffer.get();
    if (zip_source_open(src) != 0) fail(zip_error_strerror(zip_source_error(src)));
    std::vector<std::uint8_t> out;
    zip_int64_t size = -1;
    if (zip_source_seek(src, 0, SEEK_END) == 0) size = zip_source_tell(src);
    if (size < 0 || zip_source_seek(src, 0, SEEK_SET) != 0) {
        const std::string why = zip_error_strerror(zip_source_error(src));
        zip_source_close(src);
        fail(why);
    }
    out.resize(static_cast<std::size_t>(size));
    const zip_int64_t got = zip_source_read(src, out.data(), out.size());
    zip_source_close(src);
    if (got != size) fail("cannot read back the archive from memory");
    return out;
}

inline void npz_archive::save(const std::string& path) const {
    const std::vector<std::uint8_t> bytes = build(path);
    write_file_atomically(path, bytes);
}

}  // namespace advaug::io

namespace advaug::detail::npz {

/// Reads .npz bytes; errors start with "<function>(): '<source>' ".
inline npz_archive read_npz_bytes(std::span<const std::uint8_t> bytes, const std::string& source,
                                  const char* function) {
    auto fail = [&](const std::string& why) -> void {
        throw io_error(concat(function, "(): '", source, "' ", why));
    };
    npz_archive result;
    result.source_ = source;
    // libzip takes an empty buffer for an empty archive; a zip file has at least its 22-byte
    // end-of-central-directory record.
    if (bytes.size() < 22) fail(concat("has ", bytes.size(), " bytes, too few for a zip archive"));

    zip_error_holder error;
    zip_source_ptr buffer(zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error.error));
    if (!buffer) fail(concat("cannot be read: ", error.message()));
    zip_ptr archive(zip_open_from_source(buffer.get(), ZIP_RDONLY | ZIP_CHECKCONS, &error.error));
    if (!archive) fail(concat("is not a valid zip archive: ", error.message()));
    buffer.release();  // the archive owns it now

    const zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
    if (entries < 0) fail(concat("is not a valid zip archive: ", zip_strerror(archive.get())));
    for (zip_uint64_t i = 0; i < static_cast<zip_uint64_t>(entries); ++i) {
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(archive.get(), i, 0, &st) != 0) {
            fail(concat("member #", i, " cannot be read: ", zip_strerror(archive.get())));
        }
        const std::uint64_t need_valid =
            ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
        if ((st.valid & need_valid) != need_valid || st.name == nullptr) {
            fail(concat("member #", i, " has an incomplete zip directory entry"));
        }
        const std::string member = st.name;
        auto member_fail = [&](const std::string& why) -> void {
            throw io_error(concat(function, "(): '", source, "' member '", member, "' ", why));
        };
        if (member.size() <= 4 || member.compare(member.size() - 4, 4, ".npy") != 0) {
            member_fail("is not a .npy file (its name does not end in '.npy')");
        }
        std::string name = member.substr(0, member.size() - 4);
        if (result.contains(name)) member_fail("occurs twice");

        // A declared size is only trusted as far as the compressed bytes can back it.
        if (st.comp_size > bytes.size()) {
            member_fail(concat("claims ", st.comp_size, " compressed bytes, more than the file's ",
                               bytes.size()));
        }
        if (st.comp_method == ZIP_CM_STORE && st.size != st.comp_size) {
            member_fail(concat("is stored uncompressed with a size of ", st.size, " but ",
                               st.comp_size, " stored bytes"));
        }
        if (st.comp_method == ZIP_CM_DEFLATE && st.size / 1100 > st.comp_size) {
            member_fail(concat("claims ", st.size, " bytes from ", st.comp_size,
                               " deflated bytes, more than deflate can produce"));
        }
        if (st.size > std::numeric_limits<std::size_t>::max() / 2) {
            member_fail(concat("claims an implausible size of ", st.size, " bytes"));
        }
        zip_file_ptr file(zip_fopen_index(archive.get(), i, 0));
        if (!file) member_fail(concat("cannot be opened: ", zip_strerror(archive.get())));

        // Read in chunks, so memory grows with the bytes really there, not with the claim.
        const std::size_t declared = static_cast<std::size_t>(st.size);
        std::vector<std::uint8_t> content;
        std::size_t done = 0;
        while (done < declared) {
            const std::size_t chunk = std::min<std::size_t>(declared - done, std::size_t(1) << 20);
            content.resize(done + chunk);
            const zip_int64_t n = zip_fread(file.get(), content.data() + done, chunk);
            if (n < 0) member_fail(concat("cannot be read: ", zip_file_strerror(file.get())));
            if (n == 0) member_fail(concat("is truncated: ", done, " of ", declared, " bytes"));
            done += static_cast<std::size_t>(n);
        }
        // Reading past the end makes libzip check the CRC.
        std::uint8_t extra = 0;
        const zip_int64_t n = zip_fread(file.get(), &extra, 1);
        if (n < 0) member_fail(concat("is corrupt: ", zip_file_strerror(file.get())));
        if (n > 0) member_fail(concat("holds more than its declared ", declared, " bytes"));
        file.reset();

        const npy_header header = parse_npy(content.data(), content.size(), member_fail);
        content.erase(content.begin(),
                      content.begin() + static_cast<std::ptrdiff_t>(header.data_offset));
        result.append(npz_array{std::move(name), header.dtype, header.shape, std::move(content)});
    }
    return result;
}

}  // namespace advaug::detail::npz

namespace advaug::io {

inline npz_archive npz_archive::from_bytes(std::span<const std::uint8_t> bytes,
                                           const std::string& source) {
    return detail::npz::read_npz_bytes(bytes, source, "npz_archive::load");
}

inline npz_archive npz_archive::load(const std::string& path) {
    const std::vector<std::uint8_t> bytes = read_file(path);
    return detail::npz::read_npz_bytes(bytes, path, "npz_archive::load");
}

// --- model parameters ------------------------------------------------------------------------

template <class T>
void save_parameters(const std::string& path, const std::vector<parameter_view<T>>& params,
                     const std::map<std::string, std::string>& metadata) {
    static_assert(std::same_as<T, float> || std::same_as<T, double>,
                  "save_parameters(): parameters must be float or double");
    const char* fn = "save_parameters";
    npz_archive archive;
    for (const auto& p : params) {
        if (p.name.compare(0, npz_metadata_prefix.size(), npz_metadata_prefix) == 0) {
            advaug::detail::invalid(fn, "parameter '", p.name, "' uses the reserved prefix '",
                                    npz_metadata_prefix, "'");
        }
        if (p.value.size() != detail::npz::element_count(p.shape)) {
            advaug::detail::invalid(fn, "parameter '", p.name, "' has ", p.value.size(),
                                    " values, its shape ", advaug::detail::shape_string(p.shape),
                                    " needs ", detail::npz::element_count(p.shape));
        }
        if (p.name.empty()) advaug::detail::invalid(fn, "a parameter has an empty name");
        if (archive.contains(p.name))
            advaug::detail::invalid(fn, "two parameters are named '", p.name, "'");
        archive.add(p.name, std::span<const T>(p.value.data(), p.value.size()), p.shape);
    }
    for (const auto& [key, value] : metadata) {
        if (key.empty()) advaug::detail::invalid(fn, "a metadata key is empty");
        archive.add_string(std::string(npz_metadata_prefix) + key, value);
    }
    archive.save(path);
}

template <class T>
void load_parameters(const std::string& path, const std::vector<parameter_view<T>>& params) {
    static_assert(std::same_as<T, float> || std::same_as<T, double>,
                  "load_parameters(): parameters must be float or double");
    using advaug::detail::concat;
    using advaug::detail::shape_string;
    const char* fn = "load_parameters";
    auto fail = [&](const std::string& why) -> void {
        throw io_error(concat(fn, "(): '", path, "' ", why));
    };
    for (const auto& p : params) {
        if (p.value.size() != detail::npz::element_count(p.shape)) {
            advaug::detail::invalid(fn, "parameter '", p.name, "' has ", p.value.size(),
                                    " values, its shape ", shape_string(p.shape), " needs ",
                                    detail::npz::element_count(p.shape));
        }
    }
    const std::vector<std::uint8_t> bytes = read_file(path);
    const npz_archive archive = detail::npz::read_npz_bytes(bytes, path, fn);

    std::map<std::string, const parameter_view<T>*> expected;
    for (const auto& p : params) expected.emplace(p.name, &p);
    for (const auto& p : params) {
        if (!archive.contains(p.name)) fail(concat("is missing array '", p.name, "'"));
    }
    for (const auto& name : archive.names()) {
        if (name.compare(0, npz_metadata_prefix.size(), npz_metadata_prefix) == 0) continue;
        if (expected.count(name) == 0) fail(concat("has an unexpected array '", name, "'"));
    }
    for (const auto& p : params) {
        const npz_array& a = archive.at(p.name);
        if (a.dtype != npy_dtype<T>()) {
            fail(concat("array '", p.name, "' has dtype '", a.dtype, "', the model expects '",
                        npy_dtype<T>(), "'"));
        }
        if (a.shape != p.shape) {
            fail(concat("array '", p.name, "' has shape ", shape_string(a.shape),
                        ", the model expects ", shape_string(p.shape)));
        }
    }
    // Everything is checked: nothing below can fail, so the model is never half-loaded.
    for (const auto& p : params) {
        const npz_array& a = archive.at(p.name);
        if (!a.data.empty()) std::memcpy(p.value.data(), a.data.data(), a.data.size());
    }
}

inline std::map<std::string, std::string> load_metadata(const std::string& path) {
    const char* fn = "load_metadata";
    const std::vector<std::uint8_t> bytes = read_file(path);
    const npz_archive archive = detail::npz::read_npz_bytes(bytes, path, fn);
    std::map<std::string, std::string> out;
    for (const auto& name : archive.names()) {
        if (name.compare(0, npz_metadata_prefix.size(), npz_metadata_prefix) != 0) continue;
        const npz_array& a = archive.at(name);
        if (a.dtype != npy_dtype<std::uint8_t>() || a.shape.size() != 1) {
            throw io_error(advaug::detail::concat(fn, "(): '", path, "' metadata array '", name,
                                                  "' has dtype '", a.dtype, "' and shape ",
                                                  advaug::detail::shape_string(a.shape),
                                                  ", expected a 1-D '|u1' array"));
        }
        out.emplace(name.substr(npz_metadata_prefix.size()),
                    std::string(a.data.begin(), a.data.end()));
    }
    return out;
}

}  // namespace advaug::io
