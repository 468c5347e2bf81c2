// Single arrays in .npy files, the format numpy.save writes and numpy.load reads.
//
//   io::write_npy("adversarial.npy", x_adv);          // exact values, atomically
//   io::npz_array a = io::read_npy("adversarial.npy");  // checked, untyped: dtype, shape, bytes
//
// Arrays are written with xtensor's .npy writer (format 1.0, C order, little-endian). The
// header is parsed here rather than by xt::load_npy, which trusts its input: every read is
// bounds-checked, every declared size is checked against the bytes that are really there,
// and a malformed or truncated file throws io_error naming the file and the problem.
// io/npz.hpp stores the same members in a zip archive.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/io/atomic_file.hpp"

// xtensor's .npy writer. TODO: move into detail/xtensor.hpp, the single place for xtensor
// includes; it is here until that header lists it.
#if __has_include(<xtensor/io/xnpy.hpp>)
#include <xtensor/io/xnpy.hpp>
#else
#include <xtensor/xnpy.hpp>
#endif

namespace advaug::io {

static_assert(std::endian::native == std::endian::little,
              "advaug's .npy and .npz files assume a little-endian machine");

/// The element types that write_npy and an npz_archive convert to and from typed arrays,
/// with their numpy dtype strings: float "<f4", double "<f8", std::int64_t "<i8",
/// std::uint8_t "|u1".
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

/// One array as stored in a .npy file or an .npz member, untyped (`name` is empty for a file
/// read by read_npy).
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

/// Writes `array` to `path` as a .npy file (numpy format 1.0, C order, little-endian), the
/// values bit for bit, atomically (io/atomic_file.hpp).
/// requires: T one of float, double, std::int64_t, std::uint8_t (npz_element).
/// throws:   io_error naming the path and the reason.
template <npz_element T, std::size_t N>
void write_npy(const std::string& path, const tensor<T, N>& array);

/// Reads the .npy file at `path` (format 1.0 to 3.0, C order, any plain little-endian or
/// one-byte numeric dtype) without trusting its header.
/// ensures:  result.dtype normalized as npz_array says, result.data.size() ==
///           product(result.shape) * item size; result.name empty.
/// throws:   io_error "read_npy(): '<path>' <what is wrong>" for an unreadable, malformed,
///           truncated, Fortran-order or big-endian file.
inline npz_array read_npy(const std::string& path);

// ---------------------------------------------------------------------------------------------

}  // namespace advaug::io

namespace advaug::detail::npy {

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

}  // namespace advaug::detail::npy

namespace advaug::io {

template <npz_element T, std::size_t N>
void write_npy(const std::string& path, const tensor<T, N>& array) {
    const std::string bytes = xt::dump_npy(array);
    try {
        write_file_atomically(
            path, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                                bytes.size()));
    } catch (const io_error& e) {
        throw io_error(detail::concat("write_npy(): ", e.what()));
    }
}

inline npz_array read_npy(const std::string& path) {
    std::vector<std::uint8_t> bytes;
    try {
        bytes = read_file(path);
    } catch (const io_error& e) {
        throw io_error(detail::concat("read_npy(): ", e.what()));
    }
    const auto fail = [&](const std::string& what) -> void {
        throw io_error(detail::concat("read_npy(): '", path, "' ", what));
    };
    const detail::npy::npy_header header = detail::npy::parse_npy(bytes.data(), bytes.size(), fail);
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header.data_offset));
    return npz_array{"", header.dtype, header.shape, std::move(bytes)};
}

}  // namespace advaug::io
