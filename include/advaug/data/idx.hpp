// Reader for the IDX format used by MNIST and Fashion-MNIST, plain or gzip-compressed.
//
// An IDX file is a big-endian magic number 0x0000TTRR (two zero bytes, a type code TT,
// a rank RR), then RR big-endian uint32 dimensions, then the payload: the product of the
// dimensions times the element size, row-major, nothing after it. A file that starts
// with the gzip magic 1f 8b is decompressed in memory first (concatenated gzip members
// are accepted, as gunzip does).
//
// Every malformed input is reported by an exception, never by a crash:
//   advaug::io_error          the file cannot be read or its content is malformed;
//   std::invalid_argument     a caller's argument is out of range.
// Messages name the function, the path and the offending value.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// IDX element type codes (the third byte of the magic number).
namespace idx_type {
inline constexpr std::uint8_t u8 = 0x08;   ///< unsigned byte
inline constexpr std::uint8_t i8 = 0x09;   ///< signed byte
inline constexpr std::uint8_t i16 = 0x0B;  ///< big-endian int16
inline constexpr std::uint8_t i32 = 0x0C;  ///< big-endian int32
inline constexpr std::uint8_t f32 = 0x0D;  ///< big-endian IEEE float
inline constexpr std::uint8_t f64 = 0x0E;  ///< big-endian IEEE double
}  // namespace idx_type

/// The content of an IDX file, undecoded.
struct idx_array {
    std::uint8_t dtype = 0;          ///< type code, one of idx_type
    std::vector<std::size_t> dims;   ///< at least one dimension, each >= 1
    std::vector<std::uint8_t> data;  ///< payload as stored in the file (big-endian elements)

    /// Number of elements: the product of dims.
    std::size_t element_count() const;
};

/// Size in bytes of one element of IDX type `dtype`, or 0 if the type code is unknown.
constexpr std::size_t idx_element_size(std::uint8_t dtype) noexcept;

/// Reads any IDX file.
/// requires: `path` names a readable IDX file, plain or gzip-compressed, of one of the
///           idx_type types, rank >= 1, every dimension >= 1.
/// ensures:  result.data.size() == element_count() * idx_element_size(dtype).
/// throws:   io_error on a missing/unreadable file, a truncated or corrupt gzip stream,
///           a bad magic number, an unsupported type, a zero or overflowing dimension,
///           or a payload size that disagrees with the header.
inline idx_array read_idx(const std::string& path);

/// Reads an IDX image file (magic 0x00000803: unsigned bytes, dims N, rows, cols).
/// ensures: result.shape() == {N, rows, cols}.
/// throws:  io_error as read_idx, and if the magic number is not 0x00000803.
inline tensor<std::uint8_t, 3> read_idx_images(const std::string& path);

/// Reads an IDX label file (magic 0x00000801: unsigned bytes, dims N).
/// ensures: result.shape() == {N}, every label in [0, 255].
/// throws:  io_error as read_idx, and if the magic number is not 0x00000801.
inline label_vector read_idx_labels(const std::string& path);

/// The Fashion-MNIST data set: 60000 training and 10000 test images of 28x28 pixels.
struct fashion_mnist {
    tensor<std::uint8_t, 3> train_images;
    label_vector train_labels;
    tensor<std::uint8_t, 3> test_images;
    label_vector test_labels;
};

/// The directory load_fashion_mnist() reads by default: $ADVAUG_FASHION_MNIST if set and
/// non-empty, else /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist).
inline std::string default_fashion_mnist_dir();

/// Loads Fashion-MNIST from `dir`, which holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each with or without a .gz suffix
/// (the .gz file is preferred when both exist).
/// ensures: train_images.shape(0) == train_labels.size(), likewise for test; train and
///          test images have the same rows and cols.
/// throws:  io_error if a file is missing or malformed, or if the counts or sizes disagree.
inline fashion_mnist load_fashion_mnist(const std::string& dir = default_fashion_mnist_dir());

/// Images first .. first+count-1 as rows of pixels scaled to [0, 1] (pixel / 255).
/// requires: T is a floating-point type; first + count <= images.shape(0) (count may be 0).
/// ensures:  result.shape() == {count, rows * cols}.
/// throws:   std::invalid_argument if the range is out of bounds.
template <class T>
tensor<T, 2> images_to_rows(const tensor<std::uint8_t, 3>& images, std::size_t first,
                            std::size_t count);

/// As images_to_rows, shaped for a convolutional network.
/// ensures: result.shape() == {count, 1, rows, cols}.
template <class T>
tensor<T, 4> images_to_nchw(const tensor<std::uint8_t, 3>& images, std::size_t first,
                            std::size_t count);

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail {

inline constexpr std::uint32_t idx_images_magic = 0x00000803;
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;

/// "0x0000ABCD".
inline std::string hex32(std::uint32_t value) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "0x%08X", static_cast<unsigned>(value));
    return buffer;
}

/// "0x0D".
inline std::string hex8(std::uint8_t value) {
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "0x%02X", static_cast<unsigned>(value));
    return buffer;
}

inline std::uint32_t read_be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

/// a * b, or nullopt on overflow.
inline std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) {
    if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a) return std::nullopt;
    return a * b;
}

[[noreturn]] inline void idx_fail(const char* function, const std::string& path,
                                  const std::string& what) {
    throw io_error(concat(function, "(): '", path, "' ", what));
}

/// The whole content of the file at `path`.
inline std::vector<std::uint8_t> read_file_bytes(const char* function, const std::string& path) {
    struct closer {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    const std::unique_ptr<std::FILE, closer> owner(std::fopen(path.c_str(), "rb"));
    std::FILE* const file = owner.get();
    if (file == nullptr) {
        const int err = errno;
        throw io_error(concat(function, "(): cannot open '", path, "': ", std::strerror(err)));
    }
    std::vector<std::uint8_t> bytes;
    // Room for the whole file (and the byte that shows its end) at once, when its size is
    // known: doubling growth would hold 1.5 times the file during its last step.
    std::error_code size_error;
    const auto size = std::filesystem::file_size(path, size_error);
    if (!size_error && size < std::numeric_limits<std::size_t>::max()) {
        bytes.resize(static_cast<std::size_t>(size) + 1);
    }
    std::size_t used = 0;
    for (;;) {
        if (bytes.size() - used < 65536)
            bytes.resize(std::max<std::size_t>(2 * bytes.size(), used + 65536));
        const std::size_t wanted = bytes.size() - used;
        const std::size_t got = std::fread(bytes.data() + used, 1, wanted, file);
        used += got;
        if (got < wanted) break;  // end of file or error
    }
    const bool failed = std::ferror(file) != 0;
    const int err = errno;
    if (failed) {
        throw io_error(concat(function, "(): cannot read '", path,
                              "': ", err != 0 ? std::strerror(err) : "read error"));
    }
    bytes.resize(used);
    return bytes;
}

/// The number of leading bytes of an IDX file worth keeping once `head` (a prefix of the
/// file) is known: header plus declared payload, or just the header if the header is
/// invalid (parsing will then fail without looking at the payload). nullopt while the
/// header is still incomplete.
inline std::optional<std::size_t> idx_keep_limit(const std::vector<std::uint8_t>& head) {
    if (head.size() < 4) return std::nullopt;
    const std::size_t header = 4 + 4 * std::size_t{head[3]};
    if (head.size() < header) return std::nullopt;
    std::optional<std::size_t> payload = idx_element_size(head[2]);
    if (head[0] != 0 || head[1] != 0 || *payload == 0 || head[3] == 0) return header;
    for (std::size_t i = 0; i < head[3] && payload; ++i) {
        const std::size_t dim = read_be32(head.data() + 4 + 4 * i);
        if (dim == 0) return header;
        payload = checked_mul(*payload, dim);
    }
    if (!payload || *payload > std::numeric_limits<std::size_t>::max() - header) return header;
    return header + *payload;
}

/// A decompressed file. `bytes` may hold fewer than `total` bytes: the part past the
/// size the IDX header declares is counted but not stored, so that a stream that
/// inflates to far more than it claims cannot exhaust memory.
struct inflated {
    std::vector<std::uint8_t> bytes;
    std::size_t total = 0;
};

inline bool is_gzip(const std::vector<std::uint8_t>& bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

/// Decompresses the gzip data `in` (one or more concatenated members).
inline inflated gunzip(const char* function, const std::string& path,
                       const std::vector<std::uint8_t>& in) {
    struct stream_guard {
        z_stream stream{};
        bool live = false;
        ~stream_guard() {
            if (live) inflateEnd(&stream);
        }
    } guard;
    z_stream& zs = guard.stream;
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        idx_fail(function, path, concat("cannot be decompressed: inflateInit2 failed"));
    }
    guard.live = true;

    inflated result;
    std::optional<std::size_t> limit;
    std::vector<std::uint8_t> chunk(1 << 16);
    const std::uint8_t* const base = in.data();
    std::size_t pos = 0;  // bytes of `in` consumed by inflate
    zs.next_in = const_cast<Bytef*>(base);
    zs.avail_in = 0;

    for (;;) {
        if (zs.avail_in == 0 && pos < in.size()) {
            zs.next_in = const_cast<Bytef*>(base + pos);
            zs.avail_in = static_cast<uInt>(std::min<std::size_t>(in.size() - pos, UINT_MAX));
        }
        zs.next_out = chunk.data();
        zs.avail_out = static_cast<uInt>(chunk.size());
        const uInt fed = zs.avail_in;
        const int rc = inflate(&zs, Z_NO_FLUSH);
        pos += fed - zs.avail_in;
        const std::size_t produced = chunk.size() - zs.avail_out;

        if (produced > 0) {
            if (produced > std::numeric_limits<std::size_t>::max() - result.total) {
                idx_fail(function, path, "decompresses to more bytes than a size_t can count");
            }
            result.total += produced;
            std::size_t store = produced;
            if (limit) store = std::min(store, *limit - std::min(*limit, result.bytes.size()));
            result.bytes.insert(result.bytes.end(), chunk.data(), chunk.data() + store);
            if (!limit) {
                limit = idx_keep_limit(result.bytes);
                if (limit && result.bytes.size() > *limit) result.bytes.resize(*limit);
                // One allocation of the declared size instead of doubling growth, whose last
                // step held 1.5 times the payload (training images: 96 MB at once for 47 MB);
                // capped at deflate's maximum ratio (1032:1), so a forged header cannot make
                // a small file allocate gigabytes up front.
                if (limit) {
                    const std::size_t most = in.size() > std::numeric_limits<std::size_t>::max() / 1032
                                                 ? *limit
                                                 : in.size() * 1032;
                    result.bytes.reserve(std::min(*limit, most));
                }
            }
        }

        if (rc == Z_STREAM_END) {
            const std::size_t rest = in.size() - pos;
            if (rest == 0) return result;
            if (rest >= 2 && base[pos] == 0x1f && base[pos + 1] == 0x8b) {
                if (inflateReset(&zs) != Z_OK) {
                    idx_fail(function, path, "cannot be decompressed: inflateReset failed");
                }
                zs.next_in = const_cast<Bytef*>(base + pos);
                zs.avail_in = 0;
                continue;
            }
            idx_fail(
                function, path,
                concat("has ", rest, " unexpected trailing bytes after the gzip stream (at offset ",
                       pos, " of ", in.size(), ")"));
        }
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && pos == in.size() && zs.avail_in == 0) {
            idx_fail(function, path,
                     concat("is a truncated gzip stream: all ", in.size(),
                            " compressed bytes were read without reaching the end of the stream (",
                            result.total, " bytes decompressed)"));
        }
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        idx_fail(function, path,
                 concat("is a corrupt gzip stream at compressed offset ", pos, ": ",
                        zs.msg != nullptr ? zs.msg : "inflate error", " (zlib code ", rc, ")"));
    }
}

/// Parses the IDX content of `path`. `bytes` holds its first bytes, `total` its size;
/// bytes.size() == total unless the content is longer than its header declares.
/// If `expected_magic` is given, any other magic number is refused.
/// `bytes` is consumed: the payload moves into the result rather than being copied.
inline idx_array parse_idx(const char* function, const std::string& path,
                           std::vector<std::uint8_t>&& bytes, std::size_t total, bool gzipped,
                           std::optional<std::uint32_t> expected_magic) {
    const char* const has = gzipped ? "decompresses to" : "has";
    if (total < 4 || bytes.size() < 4) {
        idx_fail(
            function, path,
            concat(has, " ", total, " bytes, too few for an IDX magic number (4 bytes); expected ",
                   expected_magic ? hex32(*expected_magic) : std::string("0x0000TTRR")));
    }
    const std::uint32_t magic = read_be32(bytes.data());
    if (expected_magic && magic != *expected_magic) {
        idx_fail(function, path,
                 concat("has magic number ", hex32(magic), ", expected ", hex32(*expected_magic)));
    }
    if (bytes[0] != 0 || bytes[1] != 0) {
        idx_fail(
            function, path,
            concat("has magic number ", hex32(magic),
                   ", not an IDX file: expected 0x0000TTRR (two zero bytes, a type code, a rank)"));
    }
    const std::uint8_t dtype = bytes[2];
    const std::size_t element = idx_element_size(dtype);
    if (element == 0) {
        idx_fail(function, path,
                 concat("has unsupported IDX type code ", hex8(dtype), " (magic number ",
                        hex32(magic), "); supported: 0x08 0x09 0x0B 0x0C 0x0D 0x0E"));
    }
    const std::size_t rank = bytes[3];
    if (rank == 0) {
        idx_fail(
            function, path,
            concat("has rank 0 (magic number ", hex32(magic), "); expected at least 1 dimension"));
    }
    const std::size_t header = 4 + 4 * rank;
    if (total < header || bytes.size() < header) {
        idx_fail(function, path,
                 concat(has, " ", total, " bytes, too few for the header of a rank-", rank,
                        " IDX file (", header, " bytes)"));
    }

    idx_array result;
    result.dtype = dtype;
    result.dims.reserve(rank);
    std::optional<std::size_t> payload = element;
    for (std::size_t i = 0; i < rank; ++i) {
        const std::size_t dim = read_be32(bytes.data() + 4 + 4 * i);
        result.dims.push_back(dim);
        if (dim == 0) {
            idx_fail(
                function, path,
                concat("has dimension ", i, " equal to 0 (dims ", shape_string(result.dims), ")"));
        }
        if (payload) payload = checked_mul(*payload, dim);
    }
    if (!payload) {
        idx_fail(function, path,
                 concat("has dims ", shape_string(result.dims), " of ", element,
                        "-byte elements whose payload size overflows size_t"));
    }
    const std::size_t actual = total - header;
    if (*payload != actual) {
        idx_fail(function, path,
                 concat("has a header (dims ", shape_string(result.dims), ", type ", hex8(dtype),
                        ") that declares ", *payload, " payload bytes, but the ",
                        gzipped ? "decompressed " : "", "file has ", actual, " bytes after its ",
                        header, "-byte header"));
    }
    if (bytes.size() != total) {  // cannot happen: bytes is short only when actual > payload
        idx_fail(function, path, "internal error: decompressed content was not kept");
    }
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
    result.data = std::move(bytes);
    return result;
}

inline idx_array read_idx_checked(const char* function, const std::string& path,
                                  std::optional<std::uint32_t> expected_magic) {
    std::vector<std::uint8_t> raw = read_file_bytes(function, path);
    if (is_gzip(raw)) {
        inflated content = gunzip(function, path, raw);
        raw.clear();
        raw.shrink_to_fit();
        return parse_idx(function, path, std::move(content.bytes), content.total, true, expected_magic);
    }
    const std::size_t total = raw.size();
    return parse_idx(function, path, std::move(raw), total, false, expected_magic);
}

/// `dir`/`name`.gz if it exists, else `dir`/`name` if it exists.
inline std::string find_dataset_file(const char* function, const std::string& dir,
                                     const std::string& name) {
    namespace fs = std::filesystem;
    const fs::path plain = fs::path(dir) / name;
    const fs::path gz = fs::path(dir) / (name + ".gz");
    std::error_code ec;
    if (fs::is_regular_file(gz, ec)) return gz.string();
    if (fs::is_regular_file(plain, ec)) return plain.string();
    throw io_error(concat(function, "(): cannot find '", gz.string(), "' or '", plain.string(),
                          "' (set ADVAUG_FASHION_MNIST to the data set directory, or install "
                          "the Debian package dataset-fashion-mnist)"));
}

inline void check_counts(const char* function, const std::string& images_path,
                         const tensor<std::uint8_t, 3>& images, const std::string& labels_path,
                         const label_vector& labels) {
    if (images.shape(0) != labels.shape(0)) {
        throw io_error(concat(function, "(): '", images_path, "' holds ", images.shape(0),
                              " images but '", labels_path, "' holds ", labels.shape(0),
                              " labels"));
    }
}

template <class T>
void check_image_range(const char* function, const tensor<std::uint8_t, 3>& images,
                       std::size_t first, std::size_t count) {
    static_assert(std::is_floating_point_v<T>, "images are converted to a floating-point type");
    const std::size_t n = images.shape(0);
    if (first > n || count > n - first) {
        invalid(function, "first + count must be <= the number of images ", n, ", got first ",
                first, " and count ", count);
    }
}

template <class T>
void scale_pixels(const tensor<std::uint8_t, 3>& images, std::size_t first, std::size_t count,
                  T* out) {
    const std::size_t pixels = images.shape(1) * images.shape(2);
    const std::uint8_t* in = images.data() + first * pixels;
    const std::size_t n = count * pixels;
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(in[i]) / T(255);
}

}  // namespace detail

inline std::size_t idx_array::element_count() const {
    std::size_t n = 1;
    for (auto d : dims) n *= d;
    return n;
}

constexpr std::size_t idx_element_size(std::uint8_t dtype) noexcept {
    switch (dtype) {
        case idx_type::u8:
        case idx_type::i8:
            return 1;
        case idx_type::i16:
            return 2;
        case idx_type::i32:
        case idx_type::f32:
            return 4;
        case idx_type::f64:
            return 8;
        default:
            return 0;
    }
}

inline idx_array read_idx(const std::string& path) {
    return detail::read_idx_checked("read_idx", path, std::nullopt);
}

inline tensor<std::uint8_t, 3> read_idx_images(const std::string& path) {
    idx_array raw = detail::read_idx_checked("read_idx_images", path, detail::idx_images_magic);
    tensor<std::uint8_t, 3> images(
        typename tensor<std::uint8_t, 3>::shape_type{raw.dims[0], raw.dims[1], raw.dims[2]});
    std::copy(raw.data.begin(), raw.data.end(), images.data());
    return images;
}

inline label_vector read_idx_labels(const std::string& path) {
    idx_array raw = detail::read_idx_checked("read_idx_labels", path, detail::idx_labels_magic);
    label_vector labels(typename label_vector::shape_type{raw.dims[0]});
    std::copy(raw.data.begin(), raw.data.end(), labels.data());
    return labels;
}

inline std::string default_fashion_mnist_dir() {
    const char* env = std::getenv("ADVAUG_FASHION_MNIST");
    if (env != nullptr && *env != '\0') return env;
    return "/usr/share/datasets/fashion-mnist";
}

inline fashion_mnist load_fashion_mnist(const std::string& dir) {
    const char* const function = "load_fashion_mnist";
    const std::string train_images =
        detail::find_dataset_file(function, dir, "train-images-idx3-ubyte");
    const std::string train_labels =
        detail::find_dataset_file(function, dir, "train-labels-idx1-ubyte");
    const std::string test_images =
        detail::find_dataset_file(function, dir, "t10k-images-idx3-ubyte");
    const std::string test_labels =
        detail::find_dataset_file(function, dir, "t10k-labels-idx1-ubyte");

    fashion_mnist data;
    data.train_images = read_idx_images(train_images);
    data.train_labels = read_idx_labels(train_labels);
    data.test_images = read_idx_images(test_images);
    data.test_labels = read_idx_labels(test_labels);
    detail::check_counts(function, train_images, data.train_images, train_labels,
                         data.train_labels);
    detail::check_counts(function, test_images, data.test_images, test_labels, data.test_labels);
    if (data.train_images.shape(1) != data.test_images.shape(1) ||
        data.train_images.shape(2) != data.test_images.shape(2)) {
        throw io_error(detail::concat(
            function, "(): '", train_images, "' holds ", data.train_images.shape(1), "x",
            data.train_images.shape(2), " images but '", test_images, "' holds ",
            data.test_images.shape(1), "x", data.test_images.shape(2), " images"));
    }
    return data;
}

template <class T>
tensor<T, 2> images_to_rows(const tensor<std::uint8_t, 3>& images, std::size_t first,
                            std::size_t count) {
    detail::check_image_range<T>("images_to_rows", images, first, count);
    tensor<T, 2> rows(typename tensor<T, 2>::shape_type{count, images.shape(1) * images.shape(2)});
    detail::scale_pixels(images, first, count, rows.data());
    return rows;
}

template <class T>
tensor<T, 4> images_to_nchw(const tensor<std::uint8_t, 3>& images, std::size_t first,
                            std::size_t count) {
    detail::check_image_range<T>("images_to_nchw", images, first, count);
    tensor<T, 4> out(typename tensor<T, 4>::shape_type{count, 1, images.shape(1), images.shape(2)});
    detail::scale_pixels(images, first, count, out.data());
    return out;
}

}  // namespace advaug
