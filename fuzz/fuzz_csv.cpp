// Fuzz target: the CSV reader (include/advaug/data/csv.hpp).
//
// Each input is parsed in memory with the default options and with options chosen by its
// first byte (delimiter, header, skipped rows, non-finite values), then read from a scratch
// file with read_csv (which must agree with parse_csv) and read_sklearn_csv. Every table
// returned is checked against the invariants csv_table documents.
#include <advaug/data/csv.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "fuzz_common.hpp"

namespace {

using namespace advaug_fuzz;

void check_table(const advaug::csv_table& t, const advaug::csv_options& o) {
    require(t.rows >= 1 && t.columns >= 1, "a table with no rows or no columns");
    require(t.values.size() == t.rows * t.columns, "values.size() != rows * columns");
    require(t.lines.size() == t.rows, "lines.size() != rows");
    require(t.header.empty() || t.header.size() == t.columns, "a header of the wrong width");
    require(o.has_header() == !t.header.empty(),
            "a header without has_header(true), or none with it");
    for (std::size_t r = 1; r < t.lines.size(); ++r) {
        require(t.lines[r] > t.lines[r - 1], "line numbers that do not increase");
    }
    if (!o.allow_non_finite()) {
        for (double v : t.values) require(std::isfinite(v), "a non-finite value was accepted");
    }
    const auto x = t.to_tensor();
    require(x.shape(0) == t.rows && x.shape(1) == t.columns, "to_tensor() has the wrong shape");
}

bool same(const advaug::csv_table& a, const advaug::csv_table& b) {
    return a.rows == b.rows && a.columns == b.columns && a.header == b.header &&
           a.lines == b.lines && a.values.size() == b.values.size() &&
           (a.values.empty() ||
            std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(double)) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static scratch_dir dir("csv");
    static const std::string path = dir.file("input.csv");
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    const advaug::csv_options defaults;
    advaug::csv_table parsed;
    const bool parsed_ok = refused_cleanly(
        [&] { parsed = advaug::parse_csv(text, defaults, "input"); }, {"parse_csv(): 'input' "});
    if (parsed_ok) check_table(parsed, defaults);

    if (size > 0) {
        static constexpr char delimiters[] = {',', ';', '\t', ' ', '|', ':'};
        const std::uint8_t s = data[0];
        advaug::csv_options o;
        must_succeed("csv_options", [&] {
            o.delimiter(delimiters[s % sizeof delimiters])
                .has_header((s & 0x08) != 0)
                .skip_rows((s >> 4) & 3)
                .allow_non_finite((s & 0x40) != 0);
        });
        refused_cleanly([&] { check_table(advaug::parse_csv(text, o, "input"), o); },
                        {"parse_csv(): 'input' "});
    }

    write_bytes(path, data, size);
    const bool read_ok = refused_cleanly(
        [&] {
            const advaug::csv_table t = advaug::read_csv(path);
            require(parsed_ok && same(t, parsed), "read_csv accepts what parse_csv refuses");
        },
        {"read_csv(): '"});
    require(read_ok == parsed_ok, "read_csv refuses what parse_csv accepts");
    refused_cleanly(
        [&] {
            const advaug::labelled_table t = advaug::read_sklearn_csv(path);
            require(t.class_names.size() >= 2, "fewer than two class names");
            require(t.features.shape(0) == t.labels.size() && t.labels.size() >= 1,
                    "features and labels disagree");
            for (auto l : t.labels) {
                require(l >= 0 && static_cast<std::size_t>(l) < t.class_names.size(),
                        "a label that is not a class index");
            }
        },
        {"read_sklearn_csv(): '"});
    return 0;
}
