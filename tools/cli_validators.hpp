// CLI11 validators shared by advaug's command-line programs (tools/advaug_eval.cpp and
// examples/fashion_mnist_ada.cpp), so that both say the same thing about the same mistake.
// Not library API: it needs CLI11, which the library does not.
//
// Each returns an empty string for a good value, else the message CLI11 prints after the
// option's name ("--epochs: must be a whole number >= 1, got '-1'").
#pragma once

#include <CLI/CLI.hpp>
#include <advaug/advaug.hpp>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <string>
#include <system_error>

namespace advaug_cli {

/// The shortest text that reads back as exactly `v` ("0.1", "1e-05", "3").
inline std::string shortest(double v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// A whole number >= min. CLI11 2.1 parses unsigned options with std::stoull, which wraps
/// "-1" around; this refuses it.
inline CLI::Validator whole_number(unsigned long long min, const char* description) {
    return CLI::Validator(
        [min](std::string& text) -> std::string {
            unsigned long long value = 0;
            const char* end = text.data() + text.size();
            const auto [ptr, ec] = std::from_chars(text.data(), end, value);
            if (ec != std::errc{} || ptr != end || value < min) {
                return "must be a whole number >= " + std::to_string(min) + ", got '" + text + "'";
            }
            return {};
        },
        description);
}

/// A number in (lo, hi], or [lo, hi] when lo_included; hi = infinity asks for a finite number.
/// (CLI11 2.1's PositiveNumber reports its range as "0.000000 to 1797693...".)
inline CLI::Validator number_in(double lo, double hi, bool lo_included, const char* description) {
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            double value = 0;
            const char* end = text.data() + text.size();
            const auto [ptr, ec] = std::from_chars(text.data(), end, value);
            const bool above = lo_included ? value >= lo : value > lo;
            if (ec == std::errc{} && ptr == end && above && std::isfinite(value) && value <= hi) {
                return {};
            }
            const auto f = shortest;
            const std::string range =
                std::isinf(hi)
                    ? std::string("a finite number ") + (lo_included ? ">= " : "> ") + f(lo)
                    : std::string("a number in ") + (lo_included ? "[" : "(") + f(lo) + ", " +
                          f(hi) + "]";
            return "must be " + range + ", got '" + text + "'";
        },
        description);
}

/// An existing regular file (after following links), or with `or_directory` a directory too.
/// CLI::ExistingFile takes anything that is not a directory: /dev/zero would be read until
/// memory runs out, and a FIFO without a writer blocks the open() for ever.
inline CLI::Validator regular_file(bool or_directory) {
    namespace fs = std::filesystem;
    return CLI::Validator(
        [or_directory](std::string& path) -> std::string {
            std::error_code ec;
            const fs::file_status st = fs::status(path, ec);
            if (!fs::exists(st)) return "'" + path + "' does not exist";
            if (fs::is_regular_file(st) || (or_directory && fs::is_directory(st))) return {};
            const char* what = fs::is_directory(st)        ? "a directory"
                               : fs::is_fifo(st)           ? "a FIFO"
                               : fs::is_character_file(st) ? "a character device"
                               : fs::is_block_file(st)     ? "a block device"
                               : fs::is_socket(st)         ? "a socket"
                                                           : "not a regular file";
            return "'" + path + "' is " + what + "; give a regular file" +
                   (or_directory ? " or a directory" : "");
        },
        or_directory ? "FILE_OR_DIR" : "FILE");
}

}  // namespace advaug_cli
