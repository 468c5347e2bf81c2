// Text formatting shared by every writer: numbers (shortest round trip, JSON, fixed, percent,
// epsilon, duration), UTF-8 clean-up, and escaping for XML, JSON, CSV and Markdown.
//
// Every string that reaches a report or log file (model names, attack and corruption names,
// class names, the title) passes through one of the escape functions here, so that a name such
// as `a<b & "c"` or one with invalid UTF-8 still gives well-formed files.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace advaug::detail {

/// `s` with every invalid UTF-8 sequence (stray continuation bytes, overlong forms,
/// surrogates, code points above U+10FFFF) replaced by U+FFFD.
inline std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            len = 1;
            cp = c;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07u;
        }
        bool ok = len != 0 && i + len <= n;
        for (std::size_t k = 1; ok && k < len; ++k) {
            ok = (p[i + k] & 0xC0) == 0x80;
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if (ok) {
            static constexpr std::uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min_for_len[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (ok) {
            out.append(s.substr(i, len));
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

/// Text for XML character data and attribute values. Control characters that XML 1.0 does
/// not allow (all below U+0020 except tab, newline, carriage return) become U+FFFD.
inline std::string xml_escape(std::string_view s) {
    std::string out;
    for (char ch : valid_utf8(s)) {
        switch (ch) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&apos;";
                break;
            default:
                if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' &&
                    ch != '\r') {
                    out += "\xEF\xBF\xBD";
                } else {
                    out += ch;
                }
        }
    }
    return out;
}

/// A JSON string literal, quotes included.
inline std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : valid_utf8(s)) {
        const auto u = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (u < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", u);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
    return out;
}

/// The shortest decimal text that reads back as exactly `v` ("0.1", "1e-05", "3"; "nan",
/// "inf" and "-inf" for the others).
inline std::string format_shortest(double v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// A JSON number, the shortest text that reads back as exactly `v`; NaN and infinities,
/// which JSON cannot hold, become null.
inline std::string json_number(double v) { return std::isfinite(v) ? format_shortest(v) : "null"; }

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
inline std::string csv_field(std::string_view s) {
    const std::string clean = valid_utf8(s);
    if (clean.find_first_of(",\"\r\n") == std::string::npos) return clean;
    std::string out = "\"";
    for (char ch : clean) {
        if (ch == '"') out += '"';
        out += ch;
    }
    out += '"';
    return out;
}

/// Text for a Markdown table cell or paragraph: Markdown's punctuation is backslash-escaped,
/// HTML is neutralized and line breaks become spaces.
inline std::string markdown_escape(std::string_view s) {
    std::string out;
    for (char ch : valid_utf8(s)) {
        switch (ch) {
            case '\\':
            case '`':
            case '*':
            case '_':
            case '[':
            case ']':
            case '|':
            case '#':
                out += '\\';
                out += ch;
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '&':
                out += "&amp;";
                break;
            case '\n':
            case '\r':
                out += ' ';
                break;
            default:
                out += ch;
        }
    }
    return out;
}

/// `v` with `decimals` digits after the point, trailing zeros removed ("12.5", "3", "-0.25").
inline std::string fixed(double v, int decimals = 2) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    std::string s(buf);
    if (s.find('.') != std::string::npos) {
        while (s.back() == '0') s.pop_back();
        if (s.back() == '.') s.pop_back();
    }
    if (s == "-0") s = "0";
    return s;
}

/// An accuracy as a percentage with one decimal ("97.3%"); "–" for NaN (not measured).
inline std::string percent(double fraction, int decimals = 1) {
    if (!std::isfinite(fraction)) return "\xE2\x80\x93";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f%%", decimals, fraction * 100.0);
    return buf;
}

/// An epsilon as people write it: "0.1", "0.3", and "8/255" for a multiple of 1/255 that has
/// no short decimal form (8/255 = 0.0313725...).
inline std::string format_epsilon(double eps) {
    if (!std::isfinite(eps)) return "nan";
    const std::string exact = format_shortest(eps);
    std::size_t digits = 0;
    bool leading = true;
    for (char ch : exact) {
        if (ch == 'e') break;
        if (ch >= '1' && ch <= '9') leading = false;
        if (ch >= '0' && ch <= '9' && !leading) ++digits;
    }
    if (digits <= 4) return exact;
    const double k = eps * 255.0;
    const double rounded = std::round(k);
    if (rounded >= 1 && std::abs(k - rounded) < 1e-6) {
        return fixed(rounded, 0) + "/255";
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", eps);
    return buf;
}

/// A duration as minutes:seconds ("1:05"), for progress lines; negative or non-finite is 0:00.
inline std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
    const auto s = static_cast<long>(seconds + 0.5);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

}  // namespace advaug::detail
