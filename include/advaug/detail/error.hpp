// Error reporting shared by every advaug header.
//
// Messages follow one pattern: "<function>(): <argument> <what is wrong>, got <value>".
// Cheap checks are always on; they never depend on NDEBUG.
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace advaug {

/// A numerical failure detected during a computation (a NaN gradient, a non-finite loss).
class numeric_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A file that cannot be read or written, or whose content is malformed.
class io_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
    std::ostringstream out;
    out.precision(17);
    (out << ... << parts);
    return out.str();
}

/// Throws std::invalid_argument with "<function>(): <message parts...>".
template <class... Parts>
[[noreturn]] void invalid(const char* function, const Parts&... parts) {
    throw std::invalid_argument(concat(function, "(): ", parts...));
}

/// Formats a shape as "[a, b, c]".
template <class Shape>
std::string shape_string(const Shape& shape) {
    std::ostringstream out;
    out << '[';
    bool first = true;
    for (auto d : shape) {
        out << (first ? "" : ", ") << d;
        first = false;
    }
    out << ']';
    return out.str();
}

}  // namespace detail
}  // namespace advaug
