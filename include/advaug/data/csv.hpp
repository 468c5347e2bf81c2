// Numeric CSV files, read with every problem reported by line and column.
//
//   advaug::csv_table t = advaug::read_csv("sensors.csv", advaug::csv_options{}.has_header(true));
//   advaug::tensor<double, 2> x = t.to_tensor();          // [rows, columns]
//
// The reader accepts what a numeric table needs and refuses the rest with an io_error naming
// the function, the file, the line and the column:
//   - every cell is a number in C syntax ("1", "-2.5", "+3e-4"; surrounding spaces and tabs are
//     ignored); a cell may be quoted ("1.5"), with "" for a quote inside quotes; a quoted field
//     that spans lines is refused, as is a quote inside an unquoted field;
//   - NaN and infinity ("nan", "inf") are refused unless csv_options::allow_non_finite(true);
//   - every row has as many fields as the header (or, without a header, the first row);
//   - blank lines are skipped; a UTF-8 byte order mark is ignored; "\r\n" line ends are accepted;
//   - an empty file, a file without data rows and a file holding a NUL byte are errors.
// Line numbers count physical lines from 1 (skipped and blank lines included), columns count
// fields from 1. The parser never reads outside its input and allocates only in proportion to
// it, so arbitrary bytes give a table or an io_error, nothing else.
//
// read_sklearn_csv() reads the format of the data sets bundled with scikit-learn (a first line
// "n_samples,n_features,class names...", then rows of features and an integer label), checking
// the counts of its first line against the rows; load_breast_cancer() and load_wine() read two
// of its tables from Debian's python3-sklearn.
#pragma once

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"

namespace advaug {

// ---------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------

/// How a CSV file is laid out. Setters check their value at once.
class csv_options {
public:
    /// The field separator (default ','). requires: not a quote, line break, NUL, letter,
    /// digit, '.', '+' or '-' (characters that can be part of a number or of the syntax).
    csv_options& delimiter(char c);
    /// The first line read (after skip_rows) holds column names (default false).
    csv_options& has_header(bool h) {
        has_header_ = h;
        return *this;
    }
    /// Physical lines skipped at the start of the file before anything is parsed (default 0).
    csv_options& skip_rows(std::size_t n) {
        skip_rows_ = n;
        return *this;
    }
    /// Accept "nan", "inf", "infinity" cells (default false: they are errors).
    csv_options& allow_non_finite(bool a) {
        allow_non_finite_ = a;
        return *this;
    }

    char delimiter() const { return delimiter_; }
    bool has_header() const { return has_header_; }
    std::size_t skip_rows() const { return skip_rows_; }
    bool allow_non_finite() const { return allow_non_finite_; }

private:
    char delimiter_ = ',';
    bool has_header_ = false;
    std::size_t skip_rows_ = 0;
    bool allow_non_finite_ = false;
};

/// A numeric table. Invariants: rows >= 1, columns >= 1, values.size() == rows * columns
/// (row-major); header is empty or has `columns` names.
struct csv_table {
    std::vector<std::string> header;
    std::size_t rows = 0;
    std::size_t columns = 0;
    std::vector<double> values;
    /// The file line of each row (1-based), for messages about a row found later.
    std::vector<std::size_t> lines;

    double operator()(std::size_t row, std::size_t column) const {
        return values[row * columns + column];
    }
    /// The values as a [rows, columns] tensor.
    tensor<double, 2> to_tensor() const;
};

/// Reads the CSV file at `path`.
/// throws: io_error "read_csv(): '<path>' ..." for a missing or unreadable file and for every
///         malformed content listed at the top of this header.
inline csv_table read_csv(const std::string& path, const csv_options& options = {});

/// Parses CSV text held in memory; `source` names it in messages (default "<text>").
/// throws: io_error "parse_csv(): '<source>' ..." as read_csv().
inline csv_table parse_csv(std::string_view text, const csv_options& options = {},
                           const std::string& source = "<text>");

/// A labelled data set in scikit-learn's bundled CSV format.
struct labelled_table {
    tensor<double, 2> features;            // [samples, features]
    label_vector labels;                   // [samples], each in [0, class_names.size())
    std::vector<std::string> class_names;  // label k is class_names[k]
};

/// Reads scikit-learn's format: a first line "n_samples,n_features,name_0,name_1,...", then
/// n_samples rows of n_features numbers and an integer label in [0, number of names).
/// throws: io_error "read_sklearn_csv(): '<path>' ..." for any problem of read_csv(), a first
///         line that is not of that form, a row count or field count that differs from the
///         first line, or a label that is not a class index.
inline labelled_table read_sklearn_csv(const std::string& path);

/// $ADVAUG_BREAST_CANCER if set, else the file of Debian 12's python3-sklearn.
inline std::string default_breast_cancer_path();

/// The Wisconsin diagnostic breast cancer data (569 samples, 30 real features, label 0 =
/// malignant, 1 = benign), read with read_sklearn_csv().
/// throws: io_error "load_breast_cancer(): ..." also when the file does not have 30 features
///         and the classes malignant and benign.
inline labelled_table load_breast_cancer(const std::string& path = default_breast_cancer_path());

/// The 30 feature names of the breast cancer data, in column order (as in scikit-learn).
inline const std::vector<std::string>& breast_cancer_feature_names();

/// $ADVAUG_WINE if set, else the file of Debian 12's python3-sklearn.
inline std::string default_wine_path();

/// The UCI wine recognition data (178 samples, 13 chemical measurements, three cultivars:
/// class_0 (59), class_1 (71), class_2 (48)), read with read_sklearn_csv().
/// throws: io_error "load_wine(): ..." also when the file does not have 13 features and the
///         classes class_0, class_1 and class_2.
inline labelled_table load_wine(const std::string& path = default_wine_path());

/// The 13 feature names of the wine data, in column order (as in scikit-learn).
inline const std::vector<std::string>& wine_feature_names();

// ---------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------

namespace detail::csv {

/// `s` for a message: printable ASCII as is, other bytes as \xNN, at most 40 characters.
inline std::string printable(std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    const std::size_t limit = 40;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i == limit) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

[[noreturn]] inline void csv_fail(const char* function, const std::string& source,
                                  const std::string& what) {
    throw io_error(concat(function, "(): '", source, "' ", what));
}

inline std::string read_text_file(const char* function, const std::string& path) {
    struct closer {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    const std::unique_ptr<std::FILE, closer> owner(std::fopen(path.c_str(), "rb"));
    if (!owner) {
        const int err = errno;
        throw io_error(concat(function, "(): cannot open '", path, "': ", std::strerror(err)));
    }
    std::string text;
    char chunk[65536];
    for (;;) {
        const std::size_t got = std::fread(chunk, 1, sizeof chunk, owner.get());
        text.append(chunk, got);
        if (got < sizeof chunk) break;
    }
    if (std::ferror(owner.get()) != 0) {  // e.g. a directory
        const int err = errno;
        throw io_error(concat(function, "(): cannot read '", path,
                              "': ", err != 0 ? std::strerror(err) : "read error"));
    }
    return text;
}

struct csv_field {
    std::string text;
    bool quoted = false;
};

inline bool csv_blank(char c, char delimiter) { return (c == ' ' || c == '\t') && c != delimiter; }

/// Splits one line (without its line end) into fields.
inline void split_csv_line(const char* fn, const std::string& source, std::string_view line,
                           std::size_t line_no, char delimiter, std::vector<csv_field>& fields) {
    fields.clear();
    const std::size_t len = line.size();
    std::size_t pos = 0;
    for (std::size_t column = 1;; ++column) {
        csv_field field;
        while (pos < len && csv_blank(line[pos], delimiter)) ++pos;
        if (pos < len && line[pos] == '"') {
            field.quoted = true;
            ++pos;
            bool closed = false;
            while (pos < len) {
                const char c = line[pos++];
                if (c != '"') {
                    field.text += c;
                } else if (pos < len && line[pos] == '"') {
                    field.text += '"';
                    ++pos;
                } else {
                    closed = true;
                    break;
                }
            }
            if (!closed) {
                csv_fail(fn, source,
                         concat("line ", line_no, ", column ", column,
                                ": the quoted field is not closed on this line (fields that span "
                                "lines are not supported)"));
            }
            while (pos < len && csv_blank(line[pos], delimiter)) ++pos;
            if (pos < len && line[pos] != delimiter) {
                csv_fail(fn, source,
                         concat("line ", line_no, ", column ", column, ": unexpected '",
                                printable(line.substr(pos, 1)),
                                "' after the closing quote; expected the delimiter '",
                                printable(std::string_view(&delimiter, 1)), "'"));
            }
        } else {
            const std::size_t start = pos;
            while (pos < len && line[pos] != delimiter) {
                if (line[pos] == '"') {
                    csv_fail(fn, source,
                             concat("line ", line_no, ", column ", column,
                                    ": a quote inside an unquoted field; quote the whole field"));
                }
                ++pos;
            }
            std::size_t end = pos;
            while (end > start && csv_blank(line[end - 1], delimiter)) --end;
            field.text.assign(line.substr(start, end - start));
        }
        fields.push_back(std::move(field));
        if (pos >= len) return;
        ++pos;  // the delimiter; a delimiter at the end of the line leaves one empty field
    }
}

/// Parses one cell as a double.
inline double parse_csv_number(const char* fn, const std::string& source, const csv_field& field,
                               std::size_t line_no, std::size_t column, bool allow_non_finite) {
    const std::string& s = field.text;
    const auto where = [&] { return concat("line ", line_no, ", column ", column, ": "); };
    if (s.empty()) {
        csv_fail(fn, source,
                 concat(where(),
                        "empty cell; expected a number (missing values are "
                        "not supported)"));
    }
    const char* first = s.data();
    const char* const last = s.data() + s.size();
    // from_chars refuses a leading '+'; accept exactly one before a digit, '.', 'i' or 'n'
    if (*first == '+' && s.size() > 1 && first[1] != '+' && first[1] != '-') ++first;
    double value = 0;
    const auto [ptr, ec] = std::from_chars(first, last, value, std::chars_format::general);
    if (ec == std::errc::result_out_of_range && ptr == last) {
        csv_fail(fn, source, concat(where(), "'", printable(s), "' is out of the range of double"));
    }
    if (ec != std::errc{} || ptr != last) {
        csv_fail(fn, source, concat(where(), "'", printable(s), "' is not a number"));
    }
    if (!allow_non_finite && !std::isfinite(value)) {
        csv_fail(fn, source,
                 concat(where(), "'", printable(s),
                        "' is not a finite number (csv_options::allow_non_finite(true) accepts "
                        "NaN and infinity)"));
    }
    return value;
}

inline csv_table parse_csv_text(const char* fn, const std::string& source, std::string_view text,
                                const csv_options& options) {
    if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    if (text.empty()) csv_fail(fn, source, "is empty");

    csv_table table;
    std::vector<csv_field> fields;
    std::size_t line_no = 0, skipped = 0, blank = 0;
    bool header_pending = options.has_header();
    std::size_t header_line = 0, first_row_line = 0;
    const char delimiter = options.delimiter();

    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (line_no <= options.skip_rows()) {
            ++skipped;
            continue;
        }
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (const std::size_t nul = line.find('\0'); nul != std::string_view::npos) {
            csv_fail(fn, source,
                     concat("line ", line_no, " holds a NUL byte (at byte ", nul + 1,
                            " of the line); a CSV file is text"));
        }
        std::size_t i = 0;
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i == line.size()) {
            ++blank;
            continue;
        }

        split_csv_line(fn, source, line, line_no, delimiter, fields);
        if (header_pending) {
            header_pending = false;
            header_line = line_no;
            table.columns = fields.size();
            for (auto& f : fields) table.header.push_back(std::move(f.text));
            continue;
        }
        if (table.columns == 0) {
            table.columns = fields.size();
            first_row_line = line_no;
        }
        if (fields.size() != table.columns) {
            const std::size_t reference = header_line != 0 ? header_line : first_row_line;
            csv_fail(
                fn, source,
                concat("line ", line_no, " has ", fields.size(), " field",
                       fields.size() == 1 ? "" : "s", ", expected ", table.columns, " (as the ",
                       header_line != 0 ? "header on line " : "first row on line ", reference,
                       ")"));
        }
        for (std::size_t c = 0; c < fields.size(); ++c) {
            table.values.push_back(parse_csv_number(fn, source, fields[c], line_no, c + 1,
                                                    options.allow_non_finite()));
        }
        table.lines.push_back(line_no);
        ++table.rows;
    }

    if (table.rows == 0) {
        const std::size_t header_lines = header_line != 0 ? 1 : 0;
        csv_fail(
            fn, source,
            concat("has no data rows (", line_no, " line", line_no == 1 ? "" : "s", ": ", skipped,
                   " skipped by skip_rows, ", header_lines, " header, ", blank, " blank)"));
    }
    return table;
}

}  // namespace detail::csv

inline csv_options& csv_options::delimiter(char c) {
    const auto u = static_cast<unsigned char>(c);
    const bool number_char = (u < 0x80 && std::isalnum(u) != 0) || c == '.' || c == '+' || c == '-';
    if (number_char || c == '"' || c == '\n' || c == '\r' || c == '\0') {
        detail::invalid("csv_options::delimiter",
                        "delimiter must not be a quote, a line break, NUL, a letter, a digit, "
                        "'.', '+' or '-', got '",
                        detail::csv::printable(std::string_view(&c, 1)), "'");
    }
    delimiter_ = c;
    return *this;
}

inline tensor<double, 2> csv_table::to_tensor() const {
    auto t = tensor<double, 2>::from_shape({rows, columns});
    std::copy(values.begin(), values.end(), t.data());
    return t;
}

inline csv_table read_csv(const std::string& path, const csv_options& options) {
    const std::string text = detail::csv::read_text_file("read_csv", path);
    return detail::csv::parse_csv_text("read_csv", path, text, options);
}

inline csv_table parse_csv(std::string_view text, const csv_options& options,
                           const std::string& source) {
    return detail::csv::parse_csv_text("parse_csv", source, text, options);
}

namespace detail::csv {

/// A count on the first line of a scikit-learn file: decimal digits only, >= 1.
inline std::size_t sklearn_count(const char* fn, const std::string& path, const csv_field& field,
                                 std::size_t column, const char* what) {
    std::size_t value = 0;
    const char* first = field.text.data();
    const char* last = first + field.text.size();
    const auto [ptr, ec] = std::from_chars(first, last, value);
    if (field.text.empty() || ec != std::errc{} || ptr != last || value == 0) {
        csv_fail(fn, path,
                 concat("line 1, column ", column, ": the number of ", what,
                        " must be an integer "
                        ">= 1, got '",
                        printable(field.text), "'"));
    }
    return value;
}

inline labelled_table read_sklearn_csv(const char* fn, const std::string& path) {
    const std::string text = read_text_file(fn, path);
    std::string_view first_line(text);
    if (first_line.size() >= 3 && first_line.substr(0, 3) == "\xEF\xBB\xBF")
        first_line.remove_prefix(3);
    if (first_line.empty()) csv_fail(fn, path, "is empty");
    first_line = first_line.substr(0, first_line.find('\n'));
    if (!first_line.empty() && first_line.back() == '\r') first_line.remove_suffix(1);
    if (first_line.find('\0') != std::string_view::npos) {
        csv_fail(fn, path, "line 1 holds a NUL byte; a CSV file is text");
    }
    std::vector<csv_field> head;
    split_csv_line(fn, path, first_line, 1, ',', head);
    if (head.size() < 4) {
        csv_fail(fn, path,
                 concat("line 1 has ", head.size(), " field", head.size() == 1 ? "" : "s",
                        ", expected at least 4: n_samples, n_features and two or more class "
                        "names"));
    }
    const std::size_t samples = sklearn_count(fn, path, head[0], 1, "samples");
    const std::size_t features = sklearn_count(fn, path, head[1], 2, "features");
    labelled_table out;
    for (std::size_t i = 2; i < head.size(); ++i) {
        if (head[i].text.empty()) {
            csv_fail(fn, path, concat("line 1, column ", i + 1, ": empty class name"));
        }
        out.class_names.push_back(head[i].text);
    }

    const csv_table table = parse_csv_text(fn, path, text, csv_options{}.skip_rows(1));
    if (table.columns != features + 1) {
        csv_fail(fn, path,
                 concat("line ", table.lines.front(), " has ", table.columns,
                        " fields, but line 1 declares ", features, " features (expected ",
                        features + 1, " fields: the features and a label)"));
    }
    if (table.rows != samples) {
        csv_fail(fn, path,
                 concat("has ", table.rows, " data row", table.rows == 1 ? "" : "s",
                        ", but line 1 declares ", samples, " samples"));
    }
    out.features = tensor<double, 2>::from_shape({samples, features});
    out.labels = label_vector::from_shape({samples});
    const double classes = static_cast<double>(out.class_names.size());
    for (std::size_t r = 0; r < samples; ++r) {
        const double* row = table.values.data() + r * table.columns;
        std::copy(row, row + features, out.features.data() + r * features);
        const double y = row[features];
        if (!(y >= 0 && y < classes && y == std::floor(y))) {
            csv_fail(fn, path,
                     concat("line ", table.lines[r], ", column ", features + 1, ": label ", y,
                            " is not a class index in [0, ", out.class_names.size(), ")"));
        }
        out.labels(r) = static_cast<std::int64_t>(y);
    }
    return out;
}

}  // namespace detail::csv

inline labelled_table read_sklearn_csv(const std::string& path) {
    return detail::csv::read_sklearn_csv("read_sklearn_csv", path);
}

namespace detail::csv {

/// $<env> if set, else `file` in python3-sklearn's data folder.
inline std::string sklearn_data_path(const char* env, const char* file) {
    const char* value = std::getenv(env);
    if (value != nullptr && *value != '\0') return value;
    return std::string("/usr/lib/python3/dist-packages/sklearn/datasets/data/") + file;
}

/// read_sklearn_csv() as `fn`, then a check that the file is the named table: `features`
/// columns and exactly the classes `classes`. A missing file says where to get it.
inline labelled_table load_sklearn_table(const char* fn, const std::string& path, const char* what,
                                         const char* env, std::size_t features,
                                         const std::vector<std::string>& classes) {
    labelled_table data = [&] {
        try {
            return read_sklearn_csv(fn, path);
        } catch (const io_error& e) {
            if (std::string_view(e.what()).find("cannot open") == std::string_view::npos) throw;
            throw io_error(concat(e.what(), " (install the Debian package python3-sklearn,"
                                            " or set ", env, " to the file)"));
        }
    }();
    if (data.features.shape(1) != features || data.class_names != classes) {
        const auto join = [](const std::vector<std::string>& names) {
            std::string out;
            for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
            return out;
        };
        csv_fail(fn, path,
                 concat("is not the ", what, " data: it has ", data.features.shape(1),
                        " features and the classes ", join(data.class_names), "; expected ",
                        features, " features and the classes ", join(classes)));
    }
    return data;
}

}  // namespace detail::csv

inline std::string default_breast_cancer_path() {
    return detail::csv::sklearn_data_path("ADVAUG_BREAST_CANCER", "breast_cancer.csv");
}

inline labelled_table load_breast_cancer(const std::string& path) {
    return detail::csv::load_sklearn_table("load_breast_cancer", path, "breast cancer",
                                           "ADVAUG_BREAST_CANCER", 30, {"malignant", "benign"});
}

inline std::string default_wine_path() {
    return detail::csv::sklearn_data_path("ADVAUG_WINE", "wine_data.csv");
}

inline labelled_table load_wine(const std::string& path) {
    return detail::csv::load_sklearn_table("load_wine", path, "wine", "ADVAUG_WINE", 13,
                                           {"class_0", "class_1", "class_2"});
}

inline const std::vector<std::string>& wine_feature_names() {
    static const std::vector<std::string> names = {
        "alcohol",         "malic_acid",           "ash",
        "alcalinity_of_ash", "magnesium",          "total_phenols",
        "flavanoids",      "nonflavanoid_phenols", "proanthocyanins",
        "color_intensity", "hue",                  "od280/od315_of_diluted_wines",
        "proline"};
    return names;
}

inline const std::vector<std::string>& breast_cancer_feature_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        const char* measures[] = {"radius",     "texture",          "perimeter", "area",
                                  "smoothness", "compactness",      "concavity", "concave points",
                                  "symmetry",   "fractal dimension"};
        for (const char* m : measures) out.push_back(std::string("mean ") + m);
        for (const char* m : measures) out.push_back(std::string(m) + " error");
        for (const char* m : measures) out.push_back(std::string("worst ") + m);
        return out;
    }();
    return names;
}

}  // namespace advaug
