// Tests for advaug/data/csv.hpp: the checked CSV reader, scikit-learn's bundled format and the
// breast cancer loader. Every malformed input has its own test with its exact message.
#include <doctest/doctest.h>
#include "support/skip.hpp"
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "advaug/data/csv.hpp"
#include "advaug/detail/random.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_csv {

namespace fs = std::filesystem;
using advaug::csv_options;
using advaug::io_error;
using advaug::parse_csv;
using advaug::read_csv;

namespace {

/// A fresh directory under the system temp directory, removed on destruction.
struct temp_dir {
    fs::path path;
    temp_dir() {
        static int counter = 0;
        path = fs::temp_directory_path() /
               ("advaug_test_csv_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    /// Writes `content` to a file named `name` and returns its path.
    std::string write(const std::string& name, const std::string& content) const {
        const std::string p = (path / name).string();
        std::ofstream out(p, std::ios::binary);
        out << content;
        return p;
    }
};

}  // namespace

// ----------------------------------------------------------------------------------------------
// Round trips
// ----------------------------------------------------------------------------------------------

TEST_CASE("csv: a file with a header round-trips names and values") {
    temp_dir dir;
    const std::vector<std::vector<double>> rows = {
        {1.5, -2.0, 3e-4}, {0.1, 1e10, -0.0}, {17.99, 10.38, 122.8}};
    std::string text = "a,b,c\n";
    for (const auto& r : rows) {
        char line[128];
        std::snprintf(line, sizeof line, "%.17g,%.17g,%.17g\n", r[0], r[1], r[2]);
        text += line;
    }
    const std::string path = dir.write("t.csv", text);
    const advaug::csv_table t = read_csv(path, csv_options{}.has_header(true));
    CHECK(t.header == std::vector<std::string>{"a", "b", "c"});
    REQUIRE(t.rows == 3);
    REQUIRE(t.columns == 3);
    CHECK(t.lines == std::vector<std::size_t>{2, 3, 4});
    for (std::size_t r = 0; r < 3; ++r) {
        for (std::size_t c = 0; c < 3; ++c) CHECK(t(r, c) == rows[r][c]);  // exact: %.17g
    }
    const auto m = t.to_tensor();
    CHECK(m.shape(0) == 3);
    CHECK(m.shape(1) == 3);
    CHECK(m(2, 1) == 10.38);
}

TEST_CASE("csv: quotes, spaces, CRLF, a BOM, blank lines, '+' and other delimiters") {
    const std::string text = "\xEF\xBB\xBF \"x\" ; \"y;z\"\r\n\r\n 1 ; \"2.5\" \r\n+3;-4e1\n\n";
    const auto t = parse_csv(text, csv_options{}.delimiter(';').has_header(true));
    CHECK(t.header == std::vector<std::string>{"x", "y;z"});
    REQUIRE(t.rows == 2);
    CHECK(t.values == std::vector<double>{1, 2.5, 3, -40});
    CHECK(t.lines == std::vector<std::size_t>{3, 4});

    // "" inside quotes is one quote; tabs work as delimiters; the last line needs no '\n'
    const auto h =
        parse_csv("\"say \"\"hi\"\"\"\tb\n1\t2", csv_options{}.delimiter('\t').has_header(true));
    CHECK(h.header == std::vector<std::string>{"say \"hi\"", "b"});
    CHECK(h.values == std::vector<double>{1, 2});
}

TEST_CASE("csv: skip_rows skips physical lines, and line numbers stay physical") {
    const auto t = parse_csv("# comment\nanything, at all\n1,2\n3,4\n", csv_options{}.skip_rows(2));
    CHECK(t.rows == 2);
    CHECK(t.lines == std::vector<std::size_t>{3, 4});
    CHECK_THROWS_WITH_AS(parse_csv("junk\n1,2\nx,4\n", csv_options{}.skip_rows(1)),
                         "parse_csv(): '<text>' line 3, column 1: 'x' is not a number", io_error);
}

TEST_CASE("csv: NaN and infinity only when allowed") {
    const auto t = parse_csv("nan,inf,-Infinity\n", csv_options{}.allow_non_finite(true));
    CHECK(std::isnan(t(0, 0)));
    CHECK(t(0, 1) == HUGE_VAL);
    CHECK(t(0, 2) == -HUGE_VAL);
    CHECK_THROWS_WITH_AS(parse_csv("1,2\n3,nan\n"),
                         "parse_csv(): '<text>' line 2, column 2: 'nan' is not a finite number "
                         "(csv_options::allow_non_finite(true) accepts NaN and infinity)",
                         io_error);
}

// ----------------------------------------------------------------------------------------------
// One test per bad input
// ----------------------------------------------------------------------------------------------

TEST_CASE("csv: a missing file and a directory are io_errors naming the function and path") {
    temp_dir dir;
    const std::string missing = (dir.path / "nope.csv").string();
    CHECK_THROWS_WITH_AS(
        read_csv(missing),
        ("read_csv(): cannot open '" + missing + "': No such file or directory").c_str(), io_error);
    CHECK_THROWS_WITH_AS(
        read_csv(dir.path.string()),
        ("read_csv(): cannot read '" + dir.path.string() + "': Is a directory").c_str(), io_error);
}

TEST_CASE("csv: ragged rows name the line, the field count and the reference line") {
    temp_dir dir;
    const std::string path = dir.write("r.csv", "a,b,c\n1,2,3\n\n4,5\n");
    CHECK_THROWS_WITH_AS(
        read_csv(path, csv_options{}.has_header(true)),
        ("read_csv(): '" + path + "' line 4 has 2 fields, expected 3 (as the header on line 1)")
            .c_str(),
        io_error);
    CHECK_THROWS_WITH_AS(parse_csv("1,2\n3,4,5\n"),
                         "parse_csv(): '<text>' line 2 has 3 fields, expected 2 (as the first row "
                         "on line 1)",
                         io_error);
    // a trailing delimiter is one more (empty) field
    CHECK_THROWS_WITH_AS(parse_csv("1,2\n3,4,\n"),
                         "parse_csv(): '<text>' line 2 has 3 fields, expected 2 (as the first row "
                         "on line 1)",
                         io_error);
}

TEST_CASE("csv: non-numeric and empty cells name line and column") {
    temp_dir dir;
    const std::string path = dir.write("n.csv", "1,2,3,4,5\n1,2,3,4,5\n1,2,3,4,abc\n");
    CHECK_THROWS_WITH_AS(
        read_csv(path),
        ("read_csv(): '" + path + "' line 3, column 5: 'abc' is not a number").c_str(), io_error);
    CHECK_THROWS_WITH_AS(parse_csv("1,,3\n"),
                         "parse_csv(): '<text>' line 1, column 2: empty cell; expected a number "
                         "(missing values are not supported)",
                         io_error);
    CHECK_THROWS_WITH_AS(parse_csv("1,2 3\n"),
                         "parse_csv(): '<text>' line 1, column 2: '2 3' is not a number", io_error);
    CHECK_THROWS_WITH_AS(parse_csv("0x10\n"),
                         "parse_csv(): '<text>' line 1, column 1: '0x10' is not a number",
                         io_error);
    CHECK_THROWS_WITH_AS(parse_csv("++1\n"),
                         "parse_csv(): '<text>' line 1, column 1: '++1' is not a number", io_error);
    CHECK_THROWS_WITH_AS(parse_csv("1e999\n"),
                         "parse_csv(): '<text>' line 1, column 1: '1e999' is out of the range of "
                         "double",
                         io_error);
    // a header read as data gets the same message, and bytes are shown escaped
    CHECK_THROWS_WITH_AS(parse_csv("r\xff\x01,1\n"),
                         "parse_csv(): '<text>' line 1, column 1: 'r\\xff\\x01' is not a number",
                         io_error);
}

TEST_CASE("csv: empty files and files without data rows") {
    temp_dir dir;
    const std::string empty = dir.write("e.csv", "");
    CHECK_THROWS_WITH_AS(read_csv(empty), ("read_csv(): '" + empty + "' is empty").c_str(),
                         io_error);
    CHECK_THROWS_WITH_AS(parse_csv("\xEF\xBB\xBF"), "parse_csv(): '<text>' is empty", io_error);
    CHECK_THROWS_WITH_AS(parse_csv("\n  \n\t\n"),
                         "parse_csv(): '<text>' has no data rows (3 lines: 0 skipped by skip_rows, "
                         "0 header, 3 blank)",
                         io_error);
    CHECK_THROWS_WITH_AS(parse_csv("a,b\n", csv_options{}.has_header(true)),
                         "parse_csv(): '<text>' has no data rows (1 line: 0 skipped by skip_rows, "
                         "1 header, 0 blank)",
                         io_error);
    CHECK_THROWS_WITH_AS(parse_csv("1\n2\n", csv_options{}.skip_rows(5)),
                         "parse_csv(): '<text>' has no data rows (2 lines: 2 skipped by skip_rows, "
                         "0 header, 0 blank)",
                         io_error);
}

TEST_CASE("csv: quotes that cannot be parsed are refused clearly") {
    CHECK_THROWS_WITH_AS(parse_csv("1,\"2\n3\",4\n"),
                         "parse_csv(): '<text>' line 1, column 2: the quoted field is not closed "
                         "on this line (fields that span lines are not supported)",
                         io_error);
    CHECK_THROWS_WITH_AS(parse_csv("1,\"2\"x\n"),
                         "parse_csv(): '<text>' line 1, column 2: unexpected 'x' after the closing "
                         "quote; expected the delimiter ','",
                         io_error);
    CHECK_THROWS_WITH_AS(parse_csv("1,2\"3\n"),
                         "parse_csv(): '<text>' line 1, column 2: a quote inside an unquoted "
                         "field; quote the whole field",
                         io_error);
}

TEST_CASE("csv: a NUL byte means the file is not text") {
    CHECK_THROWS_WITH_AS(parse_csv(std::string("1,2\n3,\0", 7)),
                         "parse_csv(): '<text>' line 2 holds a NUL byte (at byte 3 of the line); "
                         "a CSV file is text",
                         io_error);
}

TEST_CASE("csv: options are checked when set") {
    CHECK_THROWS_WITH_AS(csv_options{}.delimiter('.'),
                         "csv_options::delimiter(): delimiter must not be a quote, a line break, "
                         "NUL, a letter, a digit, '.', '+' or '-', got '.'",
                         std::invalid_argument);
    for (char c : {'"', '\n', '\r', '\0', 'e', 'n', '7', '+', '-'}) {
        CHECK_THROWS_AS(csv_options{}.delimiter(c), std::invalid_argument);
    }
    CHECK(csv_options{}.delimiter('|').delimiter() == '|');
}

// ----------------------------------------------------------------------------------------------
// Arbitrary bytes: a table or an io_error, nothing else
// ----------------------------------------------------------------------------------------------

TEST_CASE("csv: random byte strings either parse or throw io_error") {
    advaug::rng gen(2024);
    const auto draw = [&](std::size_t n) { return static_cast<std::size_t>(gen.uniform() * n); };
    // A third of the inputs are arbitrary bytes, a third CSV-like characters, a third tables
    // built from number tokens with a few bad ones: the last two reach the deeper paths
    // (quotes, numbers, ragged rows) and the success path far more often than bytes do.
    const std::string alphabet = "0123456789.,,,,-+eE\"\"\n\n\r \tnaifINx;";
    const std::vector<std::string> tokens = {"1",    "-2.5", "3e4", "+0.25", "\"7\"", " 8 ",
                                             "1e-3", "42",   ".5",  "-0",    "6.",    "nan",
                                             "inf",  "",     "x",   "\"9",   "1e999", "--1"};
    std::size_t parsed = 0, refused = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        std::string text;
        if (trial % 3 == 0) {
            text.resize(draw(120));
            for (auto& c : text) c = static_cast<char>(gen.engine()() & 0xff);
        } else if (trial % 3 == 1) {
            text.resize(draw(120));
            for (auto& c : text) c = alphabet[draw(alphabet.size())];
        } else {
            const std::size_t rows = 1 + draw(4), columns = 1 + draw(4);
            for (std::size_t r = 0; r < rows; ++r) {
                const std::size_t here = gen.uniform() < 0.05 ? columns + 1 : columns;
                for (std::size_t c = 0; c < here; ++c) {
                    if (c > 0) text += ',';
                    text += gen.uniform() < 0.9 ? tokens[draw(10)] : tokens[draw(tokens.size())];
                }
                text += gen.uniform() < 0.2 ? "\r\n" : "\n";
            }
        }
        csv_options options;
        options.has_header(trial % 4 == 3).allow_non_finite(trial % 5 == 0);
        options.skip_rows(trial % 7 == 0 ? 1 : 0);
        try {
            const auto t = parse_csv(text, options);
            ++parsed;
            REQUIRE(t.rows >= 1);
            REQUIRE(t.columns >= 1);
            REQUIRE(t.values.size() == t.rows * t.columns);
            REQUIRE(t.lines.size() == t.rows);
            REQUIRE((t.header.empty() || t.header.size() == t.columns));
            if (!options.allow_non_finite()) {
                for (double v : t.values) REQUIRE(std::isfinite(v));
            }
        } catch (const io_error& e) {
            ++refused;
            REQUIRE(std::string(e.what()).rfind("parse_csv(): '<text>' ", 0) == 0);
        }
    }
    CHECK(parsed + refused == 2000);
    CHECK(parsed > 200);  // the success path is exercised, not only the refusals
    CHECK(refused > 600);
}

// ----------------------------------------------------------------------------------------------
// scikit-learn's format and the breast cancer data
// ----------------------------------------------------------------------------------------------

TEST_CASE("csv: read_sklearn_csv reads counts, class names, features and labels") {
    temp_dir dir;
    const std::string path = dir.write("s.csv",
                                       "3,2,setosa,versicolor,virginica\n"
                                       "5.1,3.5,0\n4.9,3.0,2\n6.2,2.9,1\n");
    const auto d = advaug::read_sklearn_csv(path);
    CHECK(d.class_names == std::vector<std::string>{"setosa", "versicolor", "virginica"});
    REQUIRE(d.features.shape(0) == 3);
    REQUIRE(d.features.shape(1) == 2);
    CHECK(d.features(1, 0) == 4.9);
    CHECK(d.features(2, 1) == 2.9);
    CHECK(d.labels(0) == 0);
    CHECK(d.labels(1) == 2);
    CHECK(d.labels(2) == 1);
}

TEST_CASE("csv: read_sklearn_csv checks its first line against the rows") {
    temp_dir dir;
    const auto fails = [&](const std::string& content, const std::string& what) {
        const std::string path = dir.write("bad.csv", content);
        CHECK_THROWS_WITH_AS(advaug::read_sklearn_csv(path),
                             ("read_sklearn_csv(): '" + path + "' " + what).c_str(), io_error);
    };
    fails("3,2,a,b\n1,2,0\n3,4,1\n", "has 2 data rows, but line 1 declares 3 samples");
    fails("2,3,a,b\n1,2,0\n3,4,1\n",
          "line 2 has 3 fields, but line 1 declares 3 features (expected 4 fields: the features "
          "and a label)");
    fails("2,2,a\n1,2,0\n3,4,1\n",
          "line 1 has 3 fields, expected at least 4: n_samples, n_features and two or more class "
          "names");
    fails("2.0,2,a,b\n1,2,0\n3,4,1\n",
          "line 1, column 1: the number of samples must be an integer >= 1, got '2.0'");
    fails("2,0,a,b\n1,2,0\n3,4,1\n",
          "line 1, column 2: the number of features must be an integer >= 1, got '0'");
    fails("2,2,a,\n1,2,0\n3,4,1\n", "line 1, column 4: empty class name");
    fails("2,2,a,b\n1,2,0\n3,4,2\n", "line 3, column 3: label 2 is not a class index in [0, 2)");
    fails("2,2,a,b\n1,2,0.5\n3,4,1\n",
          "line 2, column 3: label 0.5 is not a class index in [0, 2)");
    fails("2,2,a,b\n1,2,0\n3,x,1\n", "line 3, column 2: 'x' is not a number");
    fails("", "is empty");
    fails("2,2,a,b\n", "has no data rows (1 line: 1 skipped by skip_rows, 0 header, 0 blank)");
}

TEST_CASE("csv: load_breast_cancer reads the 569 x 30 data of python3-sklearn") {
    const std::string path = advaug::default_breast_cancer_path();
    if (!fs::exists(path)) {
        advaug::testing::skip(path + " is missing (apt-get install python3-sklearn)");
        return;
    }
    const auto d = advaug::load_breast_cancer(path);
    REQUIRE(d.features.shape(0) == 569);
    REQUIRE(d.features.shape(1) == 30);
    CHECK(d.class_names == std::vector<std::string>{"malignant", "benign"});
    std::size_t benign = 0;
    for (std::size_t i = 0; i < 569; ++i) benign += d.labels(i) == 1 ? 1 : 0;
    CHECK(benign == 357);               // 212 malignant, as scikit-learn documents
    CHECK(d.features(0, 0) == 17.99);   // first row: mean radius
    CHECK(d.features(0, 3) == 1001);    // mean area
    CHECK(d.features(568, 0) == 7.76);  // last row
    CHECK(advaug::breast_cancer_feature_names().size() == 30);
    CHECK(advaug::breast_cancer_feature_names()[27] == "worst concave points");

    temp_dir dir;
    const std::string missing = (dir.path / "none.csv").string();
    CHECK_THROWS_WITH_AS(advaug::load_breast_cancer(missing),
                         ("load_breast_cancer(): cannot open '" + missing +
                          "': No such file or directory (install the Debian package "
                          "python3-sklearn, or set ADVAUG_BREAST_CANCER to the file)")
                             .c_str(),
                         io_error);
    const std::string iris = dir.write("iris.csv", "1,2,a,b\n1,2,0\n");
    CHECK_THROWS_WITH_AS(advaug::load_breast_cancer(iris),
                         ("load_breast_cancer(): '" + iris +
                          "' is not the breast cancer data: it has 2 features and the classes a, "
                          "b; expected 30 features and the classes malignant, benign")
                             .c_str(),
                         io_error);
}

TEST_CASE("csv: load_wine reads the 178 x 13 data of python3-sklearn") {
    const std::string path = advaug::default_wine_path();
    if (!fs::exists(path)) {
        advaug::testing::skip(path + " is missing (apt-get install python3-sklearn)");
        return;
    }
    const auto d = advaug::load_wine(path);
    REQUIRE(d.features.shape(0) == 178);
    REQUIRE(d.features.shape(1) == 13);
    CHECK(d.class_names == std::vector<std::string>{"class_0", "class_1", "class_2"});
    std::size_t count[3] = {0, 0, 0};
    for (std::size_t i = 0; i < 178; ++i) ++count[d.labels(i)];
    CHECK(count[0] == 59);  // as scikit-learn documents
    CHECK(count[1] == 71);
    CHECK(count[2] == 48);
    CHECK(d.features(0, 0) == 14.23);   // first row: alcohol
    CHECK(d.features(0, 12) == 1065);   // proline
    CHECK(d.features(177, 0) == 14.13); // last row
    CHECK(d.labels(177) == 2);
    CHECK(advaug::wine_feature_names().size() == 13);
    CHECK(advaug::wine_feature_names()[12] == "proline");

    temp_dir dir;
    const std::string missing = (dir.path / "none.csv").string();
    CHECK_THROWS_WITH_AS(advaug::load_wine(missing),
                         ("load_wine(): cannot open '" + missing +
                          "': No such file or directory (install the Debian package "
                          "python3-sklearn, or set ADVAUG_WINE to the file)")
                             .c_str(),
                         io_error);
    // a valid table with the right width but two classes is not the wine data
    const std::string two = dir.write("two.csv", "1,13,class_0,class_1\n1,2,3,4,5,6,7,8,9,10,11,12,13,0\n");
    CHECK_THROWS_WITH_AS(advaug::load_wine(two),
                         ("load_wine(): '" + two +
                          "' is not the wine data: it has 13 features and the classes class_0, "
                          "class_1; expected 13 features and the classes class_0, class_1, class_2")
                             .c_str(),
                         io_error);
}

}  // namespace test_csv
