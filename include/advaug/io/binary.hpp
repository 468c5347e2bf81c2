// A little-endian binary archive for checkpoints and optimizer state.
//
// binary_writer appends fixed-width values to a byte buffer; binary_reader reads them back
// with bounds checks, so a truncated or corrupted buffer throws io_error naming what was
// being read, and never reads past the end.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "advaug/detail/error.hpp"

namespace advaug::io {

static_assert(std::endian::native == std::endian::little,
              "advaug's binary archives assume a little-endian machine");

class binary_writer {
public:
    /// Appends a trivially copyable value (integers, floats, enums) as its bytes.
    template <class V>
        requires std::is_trivially_copyable_v<V>
    void write(const V& v) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
        bytes_.insert(bytes_.end(), p, p + sizeof(V));
    }
    /// Length (uint64) then the characters.
    void write_string(const std::string& s) {
        write<std::uint64_t>(s.size());
        bytes_.insert(bytes_.end(), s.begin(), s.end());
    }
    /// Length (uint64) then the elements.
    template <class V>
        requires std::is_trivially_copyable_v<V>
    void write_array(const V* data, std::size_t count) {
        write<std::uint64_t>(count);
        const auto* p = reinterpret_cast<const std::uint8_t*>(data);
        bytes_.insert(bytes_.end(), p, p + count * sizeof(V));
    }
    template <class V>
    void write_vector(const std::vector<V>& v) {
        write_array(v.data(), v.size());
    }

    const std::vector<std::uint8_t>& bytes() const { return bytes_; }
    std::vector<std::uint8_t>& bytes() { return bytes_; }

private:
    std::vector<std::uint8_t> bytes_;
};

class binary_reader {
public:
    /// `source` names the buffer in error messages (a file path, "optimizer state").
    binary_reader(const std::uint8_t* data, std::size_t size, std::string source)
        : data_(data), size_(size), source_(std::move(source)) {}

    template <class V>
        requires std::is_trivially_copyable_v<V>
    V read(const char* what) {
        need(sizeof(V), what);
        V v;
        std::memcpy(&v, data_ + pos_, sizeof(V));
        pos_ += sizeof(V);
        return v;
    }
    std::string read_string(const char* what, std::size_t max_length = 1 << 20) {
        const auto n = read<std::uint64_t>(what);
        if (n > max_length) fail(what, detail::concat("a length of ", n, " is implausible"));
        need(n, what);
        std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
        pos_ += n;
        return s;
    }
    /// Reads an array written by write_array(); its length must equal `expected`.
    template <class V>
        requires std::is_trivially_copyable_v<V>
    void read_array_into(const char* what, V* out, std::size_t expected) {
        const auto n = read<std::uint64_t>(what);
        if (n != expected) {
            fail(what, detail::concat("has ", n, " elements, expected ", expected));
        }
        need(n * sizeof(V), what);
        // memcpy's pointers must not be null even for 0 bytes (an empty vector's data())
        if (n != 0) std::memcpy(out, data_ + pos_, n * sizeof(V));
        pos_ += n * sizeof(V);
    }
    template <class V>
    std::vector<V> read_vector(const char* what, std::size_t max_count = std::size_t(1) << 32) {
        const auto n = read<std::uint64_t>(what);
        if (n > max_count || n > remaining() / sizeof(V)) {
            fail(what, detail::concat("claims ", n, " elements, more than the data holds"));
        }
        std::vector<V> v(n);
        if (n != 0) std::memcpy(v.data(), data_ + pos_, n * sizeof(V));  // data() is null if n == 0
        pos_ += n * sizeof(V);
        return v;
    }

    std::size_t remaining() const { return size_ - pos_; }
    std::size_t position() const { return pos_; }
    const std::string& source() const { return source_; }

    [[noreturn]] void fail(const char* what, const std::string& why) const {
        throw io_error(detail::concat(source_, ": ", what, " ", why, " (at byte ", pos_, ")"));
    }

private:
    void need(std::size_t n, const char* what) const {
        if (n > size_ - pos_) {
            fail(what, detail::concat("is truncated: needs ", n, " bytes, ", size_ - pos_, " left"));
        }
    }

    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
    std::string source_;
};

}  // namespace advaug::io
