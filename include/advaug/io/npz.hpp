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
// The .npy headers are parsed here rather than by xt::load_npy, which trusts its input:
// every read is bounds-checked, every declared size is checked against the bytes that are
// really there, and any malformed, truncated or corrupted file (zip CRCs included) throws
// io_error naming the file, the member and the problem.
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
#include "advaug/model/parameter.hpp"

// xtensor's .npy writer. TODO: move into detail/xtensor.hpp, the single place for xtensor
// includes; it is here until that header lists it.
#if __has_include(<xtensor/io/xnpy.hpp>)
#include <xtensor/io/xnpy.hpp>
#else
#include <xtensor/xnpy.hpp>
#endif

namespace advaug::io {

static_assert(std::endian::native == std::endian::little,
              "advaug's .npz files assume a little-endian machine");

/// The element types an npz_archive converts to and from typed arrays, with their numpy
/// dtype strings: float "<f4", double "<f8", std::int64_t "<i8", std::uint8_t "|u1".
template <class T>
concept npz_element = std::same_as<T, float> || std::same_as<T, double> ||
    std::same_as<T, std::int64_t> || std::same_as<T, std::uint8_t>;

/// numpy's dtype string for T ("<f4", ...).
template <npz_element T>
constexpr const char* npy_dtype() {
    if constexpr (std::same_as<T, float>)
        return "<f4";
    else if constexpr (std::same_as<T, double>)
        return "<f8";
    else if constexpr (std::same_as<T, std::int64_t>)
        return "<i8";
    else
        return "|u1";
}

/// One array as stored in a .npz file, untyped.
///   dtype: a numpy dtype string of a plain numeric type ("<f4", "<f8", "<i8", "|u1", ...);
///          one-byte types are written with '|', little-endian types with '<'.
///   shape: row-major (C order); empty for a 0-d array.
///   data:  the elements' little-endian bytes, product(shape) * item size of them.
struct npz_array {
    std::string name;
    std::string dtype;
    std::vector<std::size_t> shape;
    std::vector<std::uint8_t> data;
};

/// Prefix of the names under which save_parameters() stores metadata.
inline constexpr std::string_view npz_metadata_prefix = "__advaug__.";

class npz_archive;
namespace detail_npz {
inline npz_archive read_npz_bytes(std::span<const std::uint8_t> bytes, const std::string& source,
                                  const char* function);
}  // namespace detail_npz

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
    friend npz_archive detail_npz::read_npz_bytes(std::span<const std::uint8_t>, const std::string&,
                                                  const char*);
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

namespace detail_npz {

using advaug::detail::concat;
using advaug::detail::shape_string;

/// Parses a numpy dtype string of a plain numeric type. On success stores the normalized
/// form ('|' for one-byte types, '<' for '=') and the item size and returns nullptr; else
/// returns why it is not supported ("big-endian").
inline const char* parse_dtype(std::string_view descr, std::string& normalized,
                               std::size_t& item_size) {
    if (descr.size() < 3 || descr.size() > 4) return "not a plain numeric type";
    char order = descr[0];
    const char kind = descr[1];
    if (order != '<' && order != '>' && order != '|' && order != '=') {
        return "not a plain numeric type";
    }
    if (std::string_view("biufc").find(kind) == std::string_view::npos) {
        return "not bool, int, uint, float or complex";
    }
    std::size_t size = 0;
    for (std::size_t i = 2; i < descr.size(); ++i) {
        if (descr[i] < '0' || descr[i] > '9') return "not a plain numeric type";
        size = size * 10 + static_cast<std::size_t>(descr[i] - '0');
    }
    if (size == 0 || size > 32) return "an implausible item size";
    if (size == 1) {
        order = '|';
    } else if (order == '=') {
        order = '<';
    } else if (order == '|') {
        return "no byte order for a multi-byte type";
    } else if (order == '>') {
        return "big-endian";
    }
    normalized.assign(1, order);
    normalized.append(descr.substr(1));
    item_size = size;
    return nullptr;
}

/// product(shape) * item_size, or false if the shape is too big: as numpy ("array is too
/// big"), the non-zero dimensions times the item size must fit in a signed 64-bit integer,
/// also when another dimension is 0, since xtensor computes strides from them in signed
/// arithmetic (fuzz_npz found the overflow).
inline bool byte_count(const std::vector<std::size_t>& shape, std::size_t item_size,
                       std::size_t& bytes) {
    constexpr auto limit = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
    std::size_t count = item_size;
    bool empty = false;
    for (std::size_t d : shape) {
        if (d == 0) {
            empty = true;
        } else {
            if (count > limit / d) return false;
            count *= d;
        }
    }
    bytes = empty ? 0 : count;
    return true;
}

/// The message part for a shape byte_count() refuses.
inline std::string too_big(const std::vector<std::size_t>& shape, std::size_t item_size) {
    return concat("shape ", shape_string(shape), " of ", item_size,
                  "-byte items is too big: its non-zero dimensions hold more than 2^63 - 1 bytes");
}

inline std::size_t element_count(const std::vector<std::size_t>& shape) {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    return n;
}

struct npy_header {
    std::string dtype;
    std::size_t item_size = 0;
    bool fortran_order = false;
    std::vector<std::size_t> shape;
    std::size_t data_offset = 0;
};

/// A parser of the header dict, e.g. "{'descr': '<f4', 'fortran_order': False,
/// 'shape': (3, 4), }", the Python literal numpy writes. `fail(what)` must throw.
template <class Fail>
class header_parser {
public:
    header_parser(std::string_view text, const Fail& fail) : s_(text), fail_(fail) {}

    void parse(npy_header& out) {
        bool have_descr = false, have_fortran = false, have_shape = false;
        std::string descr;
        skip_space();
        expect('{');
        for (;;) {
            skip_space();
            if (peek() == '}') break;
            const std::string key = parse_string("a key");
            skip_space();
            expect(':');
            skip_space();
            if (key == "descr") {
                if (have_descr) fail_("header has the key 'descr' twice");
                if (peek() != '\'' && peek() != '"') {
                    fail_("has a structured or non-numeric dtype, which is not supported");
                }
                descr = parse_string("the value of 'descr'");
                have_descr = true;
            } else if (key == "fortran_order") {
                if (have_fortran) fail_("header has the key 'fortran_order' twice");
                out.fortran_order = parse_bool();
                have_fortran = true;
            } else if (key == "shape") {
                if (have_shape) fail_("header has the key 'shape' twice");
                parse_shape(out.shape);
                have_shape = true;
            } else {
                fail_(concat("header has an unexpected key '", key, "'"));
            }
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() != '}')
                fail_(concat("header has '", printable(peek()), "' where ',' or '}' belongs"));
        }
        ++pos_;  // '}'
        skip_space();
        if (pos_ != s_.size()) fail_("header has trailing characters after its dict");
        if (!have_descr) fail_("header lacks the key 'descr'");
        if (!have_fortran) fail_("header lacks the key 'fortran_order'");
        if (!have_shape) fail_("header lacks the key 'shape'");
        if (const char* why = parse_dtype(descr, out.dtype, out.item_size)) {
            fail_(concat("has unsupported dtype '", descr, "' (", why, ")"));
        }
    }

private:
    static std::string printable(int c) {
        if (c < 0) return "end of header";
        if (c < 0x20 || c > 0x7e)
            return concat("\\x", "0123456789abcdef"[(c >> 4) & 15], "0123456789abcdef"[c & 15]);
        return std::string(1, static_cast<char>(c));
    }
    int peek() const { return pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_]) : -1; }
    void skip_space() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
            ++pos_;
    }
    void expect(char c) {
        if (peek() != static_cast<unsigned char>(c)) {
            fail_(concat("header has '", printable(peek()), "' where '", c, "' belongs"));
        }
        ++pos_;
    }
    std::string parse_string(const char* what) {
        const int quote = peek();
        if (quote != '\'' && quote != '"') fail_(concat("header lacks ", what, " in quotes"));
        ++pos_;
        const std::size_t end = s_.find(static_cast<char>(quote), pos_);
        if (end == std::string_view::npos)
            fail_(concat("header has an unterminated string in ", what));
        std::string out(s_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return out;
    }
    bool parse_bool() {
        if (s_.substr(pos_, 5) == "False") {
            pos_ += 5;
            return false;
        }
        if (s_.substr(pos_, 4) == "True") {
            pos_ += 4;
            return true;
        }
        fail_("header has a 'fortran_order' that is neither True nor False");
        return false;
    }
    void parse_shape(std::vector<std::size_t>& shape) {
        shape.clear();
        expect('(');
        bool comma = false;
        for (;;) {
            skip_space();
            if (peek() == ')') break;
            if (peek() < '0' || peek() > '9')
                fail_("header has a 'shape' that is not a tuple of integers");
            std::size_t d = 0;
            while (peek() >= '0' && peek() <= '9') {
                const std::size_t digit = static_cast<std::size_t>(peek() - '0');
                if (d > (std::numeric_limits<std::size_t>::max() - digit) / 10) {
                    fail_("header has a 'shape' with a dimension that overflows");
                }
                d = d * 10 + digit;
                ++pos_;
            }
            if (shape.size() == 64) fail_("header has a 'shape' of more than 64 dimensions");
            shape.push_back(d);
            skip_space();
            if (peek() == ',') {
                ++pos_;
                comma = true;
                continue;
            }
            if (peek() != ')') fail_("header has a 'shape' that is not a tuple of integers");
        }
        ++pos_;  // ')'
        // "(3)" is an int in Python, not a tuple; numpy never writes it.
        if (shape.size() == 1 && !comma)
            fail_("header has a 'shape' that is not a tuple of integers");
    }

    std::string_view s_;
    const Fail& fail_;
    std::size_t pos_ = 0;
};

/// Parses the .npy member in bytes[0, size): header, dtype, shape, and the data size.
template <class Fail>
npy_header parse_npy(const std::uint8_t* bytes, std::size_t size, const Fail& fail) {
    static constexpr std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (size < 10) fail(concat("has ", size, " bytes, too few for a .npy header"));
    if (std::memcmp(bytes, magic, 6) != 0) fail("is not a .npy file (no \\x93NUMPY magic)");
    const unsigned major = bytes[6], minor = bytes[7];
    std::size_t header_length = 0, start = 0;
    if (major == 1 && minor == 0) {
        header_length = std::size_t(bytes[8]) | std::size_t(bytes[9]) << 8;
        start = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (size < 12) fail(concat("has ", size, " bytes, too few for a .npy header"));
        header_length = std::size_t(bytes[8]) | std::size_t(bytes[9]) << 8 |
                        std::size_t(bytes[10]) << 16 | std::size_t(bytes[11]) << 24;
        start = 12;
    } else {
        fail(concat("has unsupported .npy format version ", major, ".", minor));
    }
    if (header_length > size - start) {
        fail(concat("has a .npy header of ", header_length, " bytes, but only ", size - start,
                    " follow"));
    }
    const std::string_view text(reinterpret_cast<const char*>(bytes + start), header_length);
    if (text.empty() || text.back() != '\n')
        fail("has a .npy header that does not end in a newline");
    npy_header header;
    header_parser<Fail>(text, fail).parse(header);
    if (header.fortran_order) {
        fail("is stored in Fortran order (fortran_order: True); only C order is supported");
    }
    header.data_offset = start + header_length;
    std::size_t bytes_needed = 0;
    if (!byte_count(header.shape, header.item_size, bytes_needed)) {
        fail(concat("has ", too_big(header.shape, header.item_size)));
    }
    const std::size_t present = size - header.data_offset;
    if (bytes_needed != present) {
        fail(concat("has ", present, " data bytes, but shape ", shape_string(header.shape),
                    " of dtype '", header.dtype, "' needs ", bytes_needed));
    }
    return header;
}

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

}  // namespace detail_npz

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
    if (!detail_npz::byte_count(shape, sizeof(T), bytes)) {
        advaug::detail::invalid(fn, "array '", name, "' has ", detail_npz::too_big(shape, sizeof(T)));
    }
    if (bytes != values.size_bytes()) {
        advaug::detail::invalid(fn, "array '", name, "' has ", values.size(), " values, shape ",
                                advaug::detail::shape_string(shape), " needs ",
                                detail_npz::element_count(shape));
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
    if (const char* why = detail_npz::parse_dtype(array.dtype, dtype, item_size)) {
        advaug::detail::invalid(fn, "array '", array.name, "' has unsupported dtype '", array.dtype,
                                "' (", why, ")");
    }
    std::size_t bytes = 0;
    if (!detail_npz::byte_count(array.shape, item_size, bytes)) {
        advaug::detail::invalid(fn, "array '", array.name, "' has ",
                                detail_npz::too_big(array.shape, item_size));
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
    using namespace detail_npz;
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

/// Reads .npz bytes; errors start with "<function>(): '<source>' ".
inline npz_archive detail_npz::read_npz_bytes(std::span<const std::uint8_t> bytes,
                                              const std::string& source, const char* function) {
    using namespace detail_npz;
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

inline npz_archive npz_archive::from_bytes(std::span<const std::uint8_t> bytes,
                                           const std::string& source) {
    return detail_npz::read_npz_bytes(bytes, source, "npz_archive::load");
}

inline npz_archive npz_archive::load(const std::string& path) {
    const std::vector<std::uint8_t> bytes = read_file(path);
    return detail_npz::read_npz_bytes(bytes, path, "npz_archive::load");
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
        if (p.value.size() != detail_npz::element_count(p.shape)) {
            advaug::detail::invalid(fn, "parameter '", p.name, "' has ", p.value.size(),
                                    " values, its shape ", advaug::detail::shape_string(p.shape),
                                    " needs ", detail_npz::element_count(p.shape));
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
        if (p.value.size() != detail_npz::element_count(p.shape)) {
            advaug::detail::invalid(fn, "parameter '", p.name, "' has ", p.value.size(),
                                    " values, its shape ", shape_string(p.shape), " needs ",
                                    detail_npz::element_count(p.shape));
        }
    }
    const std::vector<std::uint8_t> bytes = read_file(path);
    const npz_archive archive = detail_npz::read_npz_bytes(bytes, path, fn);

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
    const npz_archive archive = detail_npz::read_npz_bytes(bytes, path, fn);
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
