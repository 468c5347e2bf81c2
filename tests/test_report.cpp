// Tests for advaug/report/: the report folder (JSON, CSV, SVG charts, README.md) and the
// example grid PNG. Files are read back by independent parsers where one is at hand:
// nlohmann-json for results.json, stb_image for PNGs, xmllint for the SVGs, and a small
// tag-balance checker here that always runs. The .npy export is tested in test_npy.cpp.
//
// Set ADVAUG_REPORT_OUT=<folder> to keep a copy of the sample report there (docs/report.md's
// pictures are rendered from it).
#include "support/check_throws.hpp"
#include "support/child_process.hpp"
#include "support/png_decode.hpp"
#include "support/temp_dir.hpp"
#include "support/skip.hpp"
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "advaug/report/report.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_report {

namespace fs = std::filesystem;
using advaug::model_evaluation;
using advaug::tensor;

namespace {

using advaug::testing::check_throws;
using advaug::testing::decoded_png;
using advaug::testing::read_png;
using advaug::testing::temp_dir;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::size_t count(const std::string& haystack, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + needle.size())) {
        ++n;
    }
    return n;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

/// A minimal XML well-formedness check: one root element, tags balanced and properly nested,
/// attributes quoted, no raw '<' in text or attribute values, every '&' an entity.
/// Returns "" when well-formed, else what is wrong.
std::string xml_problem(const std::string& s) {
    std::vector<std::string> open;
    std::size_t roots = 0, i = 0;
    auto entity_ok = [&](std::size_t at) {
        for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"}) {
            if (s.compare(at, std::string(e).size(), e) == 0) return true;
        }
        return false;
    };
    auto is_name = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' ||
               c == '.';
    };
    while (i < s.size()) {
        if (s[i] == '&' && !entity_ok(i)) return "bare '&' at " + std::to_string(i);
        if (s[i] != '<') {
            if (open.empty() && !std::isspace(static_cast<unsigned char>(s[i])))
                return "text outside the root at " + std::to_string(i);
            ++i;
            continue;
        }
        if (s.compare(i, 2, "<?") == 0) {
            const auto end = s.find("?>", i);
            if (end == std::string::npos) return "unterminated <?";
            i = end + 2;
            continue;
        }
        if (s.compare(i, 4, "<!--") == 0) {
            const auto end = s.find("-->", i);
            if (end == std::string::npos) return "unterminated comment";
            i = end + 3;
            continue;
        }
        if (s.compare(i, 2, "</") == 0) {
            std::size_t j = i + 2;
            while (j < s.size() && is_name(s[j])) ++j;
            const std::string name = s.substr(i + 2, j - i - 2);
            while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
            if (j >= s.size() || s[j] != '>') return "malformed end tag </" + name;
            if (open.empty() || open.back() != name) {
                return "end tag </" + name + "> does not match <" +
                       (open.empty() ? std::string("nothing") : open.back()) + ">";
            }
            open.pop_back();
            i = j + 1;
            continue;
        }
        std::size_t j = i + 1;
        while (j < s.size() && is_name(s[j])) ++j;
        const std::string name = s.substr(i + 1, j - i - 1);
        if (name.empty()) return "'<' without a tag name at " + std::to_string(i);
        if (open.empty() && ++roots > 1) return "more than one root element";
        for (;;) {
            while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
            if (j >= s.size()) return "unterminated tag <" + name;
            if (s.compare(j, 2, "/>") == 0) {
                j += 2;
                break;
            }
            if (s[j] == '>') {
                open.push_back(name);
                ++j;
                break;
            }
            const std::size_t a = j;
            while (j < s.size() && is_name(s[j])) ++j;
            if (j == a || j >= s.size() || s[j] != '=')
                return "malformed attribute in <" + name + "> at " + std::to_string(a);
            ++j;
            if (j >= s.size() || (s[j] != '"' && s[j] != '\''))
                return "unquoted attribute in <" + name + ">";
            const char q = s[j];
            const auto end = s.find(q, j + 1);
            if (end == std::string::npos) return "unterminated attribute in <" + name + ">";
            for (std::size_t k = j + 1; k < end; ++k) {
                if (s[k] == '<') return "'<' inside an attribute of <" + name + ">";
                if (s[k] == '&' && !entity_ok(k))
                    return "bare '&' in an attribute of <" + name + ">";
            }
            j = end + 1;
        }
        i = j;
    }
    if (!open.empty()) return "element <" + open.back() + "> is never closed";
    if (roots != 1) return "no root element";
    return "";
}

bool have_program(const std::string& check) {
    return std::system((check + " > /dev/null 2>&1").c_str()) == 0;
}

/// A 3-class model: the confusion matrix decides clean and per-class accuracy, so the
/// numbers are consistent with each other as a real evaluation's would be.
model_evaluation make_model(const std::string& name, bool robust) {
    model_evaluation m;
    m.model = name;
    m.confusion = robust
                      ? std::vector<std::vector<std::uint64_t>>{{97, 2, 1}, {3, 95, 2}, {1, 4, 95}}
                      : std::vector<std::vector<std::uint64_t>>{{99, 1, 0}, {1, 98, 1}, {0, 2, 98}};
    m.samples = 300;
    double correct = 0;
    for (std::size_t k = 0; k < 3; ++k) {
        m.per_class_accuracy.push_back(static_cast<double>(m.confusion[k][k]) / 100.0);
        correct += static_cast<double>(m.confusion[k][k]);
    }
    m.clean_accuracy = correct / 300.0;
    const std::vector<double> eps = {0, 0.05, 0.1, 0.2};
    const double c = m.clean_accuracy;
    const auto curve = [&](const char* attack, std::vector<double> accuracy) {
        advaug::eps_curve k;  // field by field: -Wmissing-field-initializers on gcc and clang
        k.attack = attack;
        k.epsilon = eps;
        k.accuracy = std::move(accuracy);
        return k;
    };
    if (robust) {
        m.curves.push_back(curve("fgsm", {c, 0.95, 0.91, 0.62}));
        m.curves.push_back(curve("pgd-20", {c, 0.94, 0.87, 0.41}));
    } else {
        m.curves.push_back(curve("fgsm", {c, 0.62, 0.21, 0.03}));
        m.curves.push_back(curve("pgd-20", {c, 0.41, 0.04, 0.0}));
    }
    const double drop = robust ? 0.6 : 1.0;
    const std::vector<std::pair<std::string, double>> corruptions = {
        {"shot_noise", 0.05}, {"motion_blur", 0.09}, {"fog", 0.14}};
    for (const auto& [cname, per_severity] : corruptions) {
        advaug::corruption_result r;
        r.name = cname;
        double sum = 0;
        for (int s = 1; s <= 5; ++s) {
            r.accuracy.push_back(std::max(0.0, c - drop * per_severity * s));
            sum += r.accuracy.back();
        }
        r.mean_accuracy = sum / 5;
        m.corruptions.push_back(r);
        m.mean_corruption_accuracy += r.mean_accuracy / 3;
    }
    m.relative_mce = robust ? 0.853 : 1.0;
    return m;
}

std::vector<model_evaluation> sample_models() {
    return {make_model("plain", false), make_model("fgsm-rs", true)};
}

}  // namespace

TEST_CASE("write_report writes every file, and each holds the numbers") {
    temp_dir dir;
    const auto models = sample_models();
    const std::string out = dir.file("report/nested");  // created with its parent
    advaug::write_report(out, models, advaug::report_options().title("MNIST, 3 classes"));
    if (const char* keep = std::getenv("ADVAUG_REPORT_OUT")) {
        advaug::write_report(keep, models, advaug::report_options().title("MNIST, 3 classes"));
        MESSAGE("sample report kept in " << keep);
    }
    auto path = [&](const std::string& f) { return (fs::path(out) / f).string(); };

    const std::vector<std::string> files = {
        "results.json",    "results.csv",         "accuracy_vs_eps.svg",
        "corruptions.svg", "confusion_plain.svg", "confusion_fgsm-rs.svg",
        "README.md"};
    for (const auto& f : files) {
        INFO(f);
        REQUIRE(fs::is_regular_file(path(f)));
        CHECK(fs::file_size(path(f)) > 0);
    }
    // Nothing else, in particular no temporary files left behind.
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(out)) ++entries;
    CHECK(entries == files.size());

    SUBCASE("results.json parses and holds every number exactly") {
        const auto j = nlohmann::json::parse(slurp(path("results.json")));
        CHECK(j["format"] == "advaug robustness report");
        CHECK(j["title"] == "MNIST, 3 classes");
        REQUIRE(j["models"].size() == 2);
        for (std::size_t mi = 0; mi < 2; ++mi) {
            const auto& jm = j["models"][mi];
            const auto& m = models[mi];
            CHECK(jm["model"] == m.model);
            CHECK(jm["samples"] == m.samples);
            CHECK(jm["clean_accuracy"].get<double>() == m.clean_accuracy);
            CHECK(jm["mean_corruption_accuracy"].get<double>() == m.mean_corruption_accuracy);
            CHECK(jm["relative_mce"].get<double>() == m.relative_mce);
            CHECK(jm["per_class_accuracy"].get<std::vector<double>>() == m.per_class_accuracy);
            CHECK(jm["confusion"].get<std::vector<std::vector<std::uint64_t>>>() == m.confusion);
            REQUIRE(jm["curves"].size() == 2);
            for (std::size_t c = 0; c < 2; ++c) {
                CHECK(jm["curves"][c]["attack"] == m.curves[c].attack);
                CHECK(jm["curves"][c]["epsilon"].get<std::vector<double>>() == m.curves[c].epsilon);
                CHECK(jm["curves"][c]["accuracy"].get<std::vector<double>>() ==
                      m.curves[c].accuracy);
            }
            REQUIRE(jm["corruptions"].size() == 3);
            for (std::size_t c = 0; c < 3; ++c) {
                CHECK(jm["corruptions"][c]["name"] == m.corruptions[c].name);
                CHECK(jm["corruptions"][c]["accuracy"].get<std::vector<double>>() ==
                      m.corruptions[c].accuracy);
                CHECK(jm["corruptions"][c]["mean_accuracy"].get<double>() ==
                      m.corruptions[c].mean_accuracy);
            }
        }
    }

    SUBCASE("results.csv has a header and one row per model and measurement") {
        const auto rows = lines(slurp(path("results.csv")));
        REQUIRE(!rows.empty());
        CHECK(rows[0] == "model,kind,name,parameter,accuracy");
        // Per model: 1 clean + 2 attacks x 4 eps + 3 corruptions x 5 severities + 3 classes.
        CHECK(rows.size() == 1 + 2 * (1 + 8 + 15 + 3));
        for (const auto& r : rows) CHECK(count(r, ",") == 4);
        auto has = [&](const std::string& row) {
            return std::find(rows.begin(), rows.end(), row) != rows.end();
        };
        CHECK(has("fgsm-rs,attack,pgd-20,0.1,0.87"));
        CHECK(has("plain,attack,fgsm,0.2,0.03"));
        CHECK(has("plain,class,class,2,0.98"));
        CHECK(
            has("plain,clean,clean,," + advaug::detail::format_shortest(models[0].clean_accuracy)));
        CHECK(has("fgsm-rs,corruption,fog,5," +
                  advaug::detail::format_shortest(models[1].corruptions[2].accuracy[4])));
    }

    SUBCASE("the SVGs are well-formed and show every model and series") {
        // xmllint is the independent parser (scripts/deps.sh installs libxml2-utils); without
        // it this part has not run and says so.
        const bool xmllint = have_program("xmllint --version");
        if (!xmllint) advaug::testing::skip("xmllint not found (apt-get install libxml2-utils): the SVGs were not parsed");
        for (const auto& f : {"accuracy_vs_eps.svg", "corruptions.svg", "confusion_plain.svg",
                              "confusion_fgsm-rs.svg"}) {
            INFO(f);
            const std::string svg = slurp(path(f));
            CHECK(xml_problem(svg) == "");
            CHECK(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
            if (xmllint) CHECK(std::system(("xmllint --noout '" + path(f) + "'").c_str()) == 0);
        }
        const std::string eps = slurp(path("accuracy_vs_eps.svg"));
        CHECK(count(eps, "<polyline") == 4);  // 2 models x 2 attacks
        CHECK(count(eps, "<g class=\"series\"") == 4);
        for (const char* label : {"plain \xC2\xB7 fgsm", "plain \xC2\xB7 pgd-20",
                                  "fgsm-rs \xC2\xB7 fgsm", "fgsm-rs \xC2\xB7 pgd-20"}) {
            CHECK(eps.find(std::string(">") + label + "</text>") != std::string::npos);
        }
        CHECK(eps.find("Accuracy under attack") != std::string::npos);

        const std::string bars = slurp(path("corruptions.svg"));
        CHECK(count(bars, "<g class=\"group\"") == 4);  // 3 corruptions and the mean
        CHECK(count(bars, "<g class=\"clean\"") == 2);  // a reference line per model
        for (const char* label : {">plain</text>", ">fgsm-rs</text>", ">shot noise</text>",
                                  ">motion blur</text>", ">fog</text>"}) {
            CHECK(bars.find(label) != std::string::npos);
        }
        const std::string confusion = slurp(path("confusion_plain.svg"));
        CHECK(count(confusion, "<rect") >= 9);
        CHECK(confusion.find(">98</text>") != std::string::npos);  // a diagonal count
    }

    SUBCASE("README.md links and embeds every file, and tabulates the main numbers") {
        const std::string md = slurp(path("README.md"));
        CHECK(md.rfind("# MNIST, 3 classes\n", 0) == 0);
        for (const auto& f : files) {
            if (f == "README.md") continue;
            CHECK_MESSAGE(md.find("](" + f + ")") != std::string::npos, "no link to " << f);
        }
        for (const char* svg : {"accuracy_vs_eps.svg", "corruptions.svg", "confusion_plain.svg",
                                "confusion_fgsm-rs.svg"}) {
            const auto at = md.find("](" + std::string(svg) + ")\n\n");
            REQUIRE_MESSAGE(at != std::string::npos, "no embedded " << svg);
            CHECK(md.rfind("\n![", at) == md.rfind("\n", at));  // the line is an image
        }
        // Summary: clean, PGD at each nonzero eps, mean corruption, relative mCE.
        CHECK(md.find("| model | clean | pgd-20 \xCE\xB5=0.05 | pgd-20 \xCE\xB5=0.1 | pgd-20 "
                      "\xCE\xB5=0.2 | corruptions (mean) | relative mCE |") != std::string::npos);
        CHECK(md.find("| fgsm-rs | 95.7% | 94.0% | 87.0% | 41.0% |") != std::string::npos);
        CHECK(md.find("| 85.3% |") != std::string::npos);
    }
}

TEST_CASE("report numbers: NaN is null in JSON, empty in CSV and a dash in README.md") {
    auto models = sample_models();
    models[0].relative_mce = std::nan("");
    models[1].curves[1].accuracy[3] = std::nan("");
    const auto j = nlohmann::json::parse(advaug::results_json(models));
    CHECK(j["models"][0]["relative_mce"].is_null());
    CHECK(j["models"][1]["curves"][1]["accuracy"][3].is_null());
    const std::string csv = advaug::results_csv(models);
    CHECK(csv.find("\nfgsm-rs,attack,pgd-20,0.2,\n") != std::string::npos);
    const std::string md = advaug::report_markdown(models);
    CHECK(md.find("| 87.0% | \xE2\x80\x93 |") != std::string::npos);       // fgsm-rs at 0.2
    CHECK(md.find("% | \xE2\x80\x93 |\n| fgsm-rs") != std::string::npos);  // plain's mCE
    // A missing point breaks the line: the series still has a polyline for its other points.
    const std::string svg = advaug::accuracy_vs_eps_svg(models);
    CHECK(xml_problem(svg) == "");
    CHECK(count(svg, "<polyline") == 4);
}

TEST_CASE("report text is escaped: odd names give well-formed files") {
    auto models = sample_models();
    models[0].model = "a<b & \"c\", 'd' \xff";  // markup, a comma, invalid UTF-8
    models[0].corruptions[0].name = "x</text>";
    const auto options =
        advaug::report_options().title("T & <T>").class_names({"zero", "o,ne", "<2>"});
    for (const std::string& svg :
         {advaug::accuracy_vs_eps_svg(models, options), advaug::corruptions_svg(models, options),
          advaug::confusion_svg(models[0], options)}) {
        CHECK(xml_problem(svg) == "");
        CHECK(svg.find("a&lt;b &amp; &quot;c&quot;, &apos;d&apos; \xEF\xBF\xBD") !=
              std::string::npos);
    }
    const auto j = nlohmann::json::parse(advaug::results_json(models, options));
    CHECK(j["models"][0]["model"] == "a<b & \"c\", 'd' \xEF\xBF\xBD");
    CHECK(j["class_names"][1] == "o,ne");
    const std::string csv = advaug::results_csv(models, options);
    CHECK(csv.find("\n\"a<b & \"\"c\"\", 'd' \xEF\xBF\xBD\",clean,clean,,") != std::string::npos);
    CHECK(csv.find(",class,\"o,ne\",1,") != std::string::npos);
    CHECK(advaug::confusion_file_name(models[0].model) == "confusion_a_b____c____d___.svg");
    const std::string md = advaug::report_markdown(models, options);
    CHECK(md.find("a&lt;b &amp; \"c\", 'd'") != std::string::npos);
    CHECK(md.find("](confusion_a_b____c____d___.svg)") != std::string::npos);
}

TEST_CASE("write_report refuses bad records before writing anything") {
    temp_dir dir;
    const std::string out = dir.file("report");
    auto models = sample_models();
    using E = std::invalid_argument;
    check_throws<E>([&] { advaug::write_report(out, {}); }, {"write_report()", "models is empty"});
    SUBCASE("duplicate names") {
        models[1].model = "plain";
        check_throws<E>([&] { advaug::write_report(out, models); },
                        {"model 'plain' appears twice"});
    }
    SUBCASE("names equal as file names") {
        models[1].model = "plain?";
        models[0].model = "plain*";
        check_throws<E>([&] { advaug::write_report(out, models); }, {"same file name 'plain_'"});
    }
    SUBCASE("a curve with fewer accuracies than epsilons") {
        models[1].curves[0].accuracy.pop_back();
        check_throws<E>([&] { advaug::write_report(out, models); },
                        {"model 'fgsm-rs', attack 'fgsm'", "4 epsilons but 3 accuracies"});
    }
    SUBCASE("descending epsilons") {
        std::swap(models[0].curves[1].epsilon[1], models[0].curves[1].epsilon[2]);
        check_throws<E>([&] { advaug::write_report(out, models); },
                        {"attack 'pgd-20'", "strictly ascending", "0.1 then 0.05"});
    }
    SUBCASE("an accuracy outside [0, 1]") {
        models[0].corruptions[1].accuracy[2] = 1.5;
        check_throws<E>([&] { advaug::write_report(out, models); },
                        {"corruption 'motion_blur': severity 3", "[0, 1]", "1.5"});
    }
    SUBCASE("a confusion matrix that is not square") {
        models[0].confusion[1].pop_back();
        check_throws<E>([&] { advaug::write_report(out, models); }, {"must be square", "row 1"});
    }
    SUBCASE("class names that do not fit") {
        check_throws<E>(
            [&] {
                advaug::write_report(out, models, advaug::report_options().class_names({"a", "b"}));
            },
            {"3 classes", "2 names"});
    }
    SUBCASE("a table attack nobody measured") {
        check_throws<E>(
            [&] {
                advaug::write_report(out, models, advaug::report_options().table_attacks({"cw"}));
            },
            {"table_attacks", "'cw'"});
    }
    CHECK_FALSE(fs::exists(out));
    check_throws<E>([] { advaug::report_options().title(""); }, {"report_options::title"});
    check_throws<E>(
        [] {
            advaug::report_options().table_attacks({"pgd", "pgd"});
        },
        {"'pgd' is listed twice"});
    check_throws<E>(
        [&] {
            advaug::model_evaluation m;
            m.model = "m";
            advaug::confusion_svg(m);
        },
        {"confusion_svg()", "no confusion matrix"});
}

TEST_CASE("table_attacks chooses the summary columns; no curves or corruptions still report") {
    auto models = sample_models();
    const std::string md =
        advaug::report_markdown(models, advaug::report_options().table_attacks({"fgsm"}));
    CHECK(md.find("| model | clean | fgsm \xCE\xB5=0.05 |") != std::string::npos);
    CHECK(md.find("pgd-20 \xCE\xB5=0.05 | pgd") == std::string::npos);

    for (auto& m : models) {
        m.curves.clear();
        m.corruptions.clear();
        m.confusion.clear();
    }
    temp_dir dir;
    advaug::write_report(dir.path.string(), models);
    const std::string eps = slurp(dir.file("accuracy_vs_eps.svg"));
    CHECK(xml_problem(eps) == "");
    CHECK(eps.find("no attack was evaluated") != std::string::npos);
    CHECK(slurp(dir.file("corruptions.svg")).find("no corruption was evaluated") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(dir.file("confusion_plain.svg")));
    const std::string readme = slurp(dir.file("README.md"));
    CHECK(readme.find("| model | clean |\n") != std::string::npos);
    CHECK(readme.find("No attack was evaluated.") != std::string::npos);
}

TEST_CASE("an unwritable folder gives io_error") {
    temp_dir dir;
    const auto models = sample_models();
    const std::string file = dir.file("a_file");
    std::ofstream(file) << "x";
    // A folder below a regular file cannot be created, not even by root.
    check_throws<advaug::io_error>([&] { advaug::write_report(file + "/report", models); },
                                   {"write_report()", "cannot create the folder", "a_file/report"});
    check_throws<advaug::io_error>([&] { advaug::write_report(file, models); },
                                   {"write_report()", "a_file", "not a folder"});
    CHECK(slurp(file) == "x");
    // Permissions do not stop root: the write runs in a child that drops to `nobody`.
    const std::string locked = dir.file("locked");
    fs::create_directories(locked);
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    // Not a structured binding: clang before 16 cannot capture one (INFO does).
    const auto child = advaug::testing::in_child([&]() -> std::string {
        if (!advaug::testing::drop_root()) return "cannot drop root";
        try {
            advaug::write_report(locked, models);
        } catch (const advaug::io_error& e) {
            return e.what();
        }
        return "no error";
    });
    fs::permissions(locked, fs::perms::owner_all);
    const int status = child.first;
    const std::string& message = child.second;
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    INFO(message);
    CHECK(message.find("write_report()") != std::string::npos);
    CHECK(message.find("locked") != std::string::npos);
    check_throws<advaug::io_error>(
        [&] { advaug::io::write_npy(file + "/x.npy", tensor<float, 1>{1.0f}); },
        {"write_npy()", "a_file"});
}

TEST_CASE("write_example_grid: clean | adversarial | amplified perturbation, enlarged") {
    temp_dir dir;
    const std::size_t n = 3, h = 5, w = 7, scale = 4, gap = advaug::example_grid_gap;
    tensor<float, 3> clean = tensor<float, 3>::from_shape({n, h, w});
    for (std::size_t i = 0; i < clean.size(); ++i)
        clean.data()[i] = static_cast<float>(i % 11) / 10.0f;
    tensor<float, 3> adv = clean;
    adv(0, 1, 2) = clean(0, 1, 2) + 0.05f;  // raised: lighter in the perturbation column
    adv(2, 4, 6) = clean(2, 4, 6) - 0.05f;  // lowered: darker
    const std::string png = dir.file("grid.png");
    advaug::write_example_grid(png, clean, adv, 5.0, scale);

    const decoded_png img = read_png(png);
    CHECK(img.channels == 1);
    CHECK(img.width == static_cast<int>(3 * w * scale + 4 * gap));
    CHECK(img.height == static_cast<int>(n * h * scale + (n + 1) * gap));
    // Cell origin of image r, column c; pixel (y, x) of the source is a scale x scale block.
    auto px = [&](std::size_t r, std::size_t c, std::size_t y, std::size_t x, std::size_t dy = 0,
                  std::size_t dx = 0) {
        const auto X = static_cast<int>(gap + c * (w * scale + gap) + x * scale + dx);
        const auto Y = static_cast<int>(gap + r * (h * scale + gap) + y * scale + dy);
        return img.at(X, Y);
    };
    auto to8 = [](double v) {
        return static_cast<int>(std::lround(std::clamp(v, 0.0, 1.0) * 255));
    };
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t y = 0; y < h; ++y) {
            for (std::size_t x = 0; x < w; ++x) {
                CHECK(px(r, 0, y, x, 3, 1) == to8(clean(r, y, x)));
                CHECK(px(r, 1, y, x, 2, 3) == to8(adv(r, y, x)));
                const bool changed = adv(r, y, x) != clean(r, y, x);
                if (!changed) CHECK(px(r, 2, y, x) == 128);  // mid-grey: no perturbation
            }
        }
    }
    CHECK(px(0, 2, 1, 2) == to8(0.5 + 5.0 * (adv(0, 1, 2) - clean(0, 1, 2))));
    CHECK(px(0, 2, 1, 2) > 128 + 50);
    CHECK(px(2, 2, 4, 6) < 128 - 50);
    CHECK(img.at(0, 0) == 255);                                       // the white frame
    CHECK(img.at(static_cast<int>(gap + w * scale + 1), 10) == 255);  // a gap between columns

    SUBCASE("RGB images, channels last") {
        tensor<float, 4> c4 = tensor<float, 4>::from_shape({2, 3, 4, 3});
        c4.fill(0.25f);
        tensor<float, 4> a4 = c4;
        a4(1, 2, 3, 0) = 0.35f;  // red raised in the last pixel of image 1
        advaug::write_example_grid(png, c4, a4, 1.5, 2);
        const decoded_png rgb = read_png(png);
        CHECK(rgb.channels == 3);
        CHECK(rgb.width == static_cast<int>(3 * 4 * 2 + 4 * gap));
        CHECK(rgb.height == static_cast<int>(2 * 3 * 2 + 3 * gap));
        const int x = static_cast<int>(gap + 2 * (4 * 2 + gap) + 3 * 2);
        const int y = static_cast<int>(gap + (3 * 2 + gap) + 2 * 2);
        CHECK(rgb.at(x, y, 0) == to8(0.5 + 1.5 * (double(0.35f) - double(0.25f))));
        CHECK(rgb.at(x, y, 0) > 128 + 30);
        CHECK(rgb.at(x, y, 1) == 128);
        CHECK(rgb.at(x, y, 2) == 128);
    }
    SUBCASE("bad input") {
        using E = std::invalid_argument;
        tensor<float, 3> other = tensor<float, 3>::from_shape({n, h, w + 1});
        check_throws<E>([&] { advaug::write_example_grid(png, clean, other, 5.0); },
                        {"write_example_grid()", "[3, 5, 7]", "[3, 5, 8]"});
        check_throws<E>([&] { advaug::write_example_grid(png, clean, adv, 0.0); },
                        {"amplification"});
        check_throws<E>([&] { advaug::write_example_grid(png, clean, adv, 1.0, 0); }, {"scale"});
        tensor<float, 3> nan = adv;
        nan(1, 2, 3) = std::nanf("");
        check_throws<E>([&] { advaug::write_example_grid(png, clean, nan, 1.0); },
                        {"adversarial must be finite", "image 1 at (2, 3)"});
        tensor<float, 4> two = tensor<float, 4>::from_shape({1, 2, 2, 2});
        two.fill(0.f);
        check_throws<E>([&] { advaug::write_example_grid(png, two, two, 1.0); },
                        {"1 or 3 channels"});
    }
}

TEST_CASE("format helpers") {
    using namespace advaug::detail;
    using advaug::detail::report::nice_ticks;
    using advaug::detail::report::ticks;
    CHECK(format_epsilon(0.1) == "0.1");
    CHECK(format_epsilon(0.2) == "0.2");
    CHECK(format_epsilon(8.0 / 255.0) == "8/255");
    CHECK(format_epsilon(0.0123456) == "0.01235");
    CHECK(json_number(std::numeric_limits<double>::infinity()) == "null");
    CHECK(json_number(0.1) == "0.1");
    CHECK(json_string("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\u0001\"");
    CHECK(valid_utf8("ok \xC3\xA9 \xC0\xAF \xED\xA0\x80") ==
          "ok \xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    const ticks t = nice_ticks(0.2);
    CHECK(t.values.size() == 5);
    CHECK(t.end() == doctest::Approx(0.2));
    CHECK(t.decimals == 2);
    CHECK(nice_ticks(8.0 / 255).end() >= 8.0 / 255);
}

TEST_CASE("report: AutoAttack is the headline, its breakdown is shown, and masking is flagged") {
    using advaug::eps_curve, advaug::report_options, advaug::report_markdown, advaug::masking_flags,
        advaug::write_report;
    auto curve = [](std::string attack, std::vector<double> acc) {
        eps_curve c;
        c.attack = std::move(attack);
        c.epsilon = {0, 0.05, 0.1};
        c.accuracy = std::move(acc);
        return c;
    };
    model_evaluation m;
    m.model = "net";
    m.samples = 1000;
    m.clean_accuracy = 0.9;
    m.mean_corruption_accuracy = std::nan("");
    m.relative_mce = std::nan("");
    m.curves = {curve("fgsm", {0.9, 0.5, 0.4}), curve("pgd-20", {0.9, 0.45, 0.3}),
                curve("autoattack", {0.9, 0.4, 0.2})};
    m.curves[2].members = {"apgd-ce", "apgd-t", "square"};
    m.curves[2].broken_by = {{0, 0, 0}, {0.4, 0.1, 0}, {0.6, 0.1, 0}};

    const std::string clean_md = report_markdown({m}, report_options{});
    CHECK(clean_md.find("| model | clean | autoattack \xCE\xB5=0.05 | autoattack \xCE\xB5=0.1 | pgd-20 \xCE\xB5=0.05 |") !=
          std::string::npos);
    CHECK(clean_md.find("### autoattack: the attack that broke each sample, net") != std::string::npos);
    CHECK(clean_md.find("| 0.1 | 60.0% | 10.0% | 0.0% | 20.0% |") != std::string::npos);
    CHECK(clean_md.find("None of the signs checked was found") != std::string::npos);
    CHECK(masking_flags({m}).empty());

    // FGSM beats PGD at 0.1, PGD's accuracy rises from 0.05 to 0.1, Square breaks 2%.
    model_evaluation masked = m;
    masked.curves[0].accuracy = {0.9, 0.5, 0.3};
    masked.curves[1].accuracy = {0.9, 0.45, 0.5};
    masked.curves[2].broken_by[2] = {0.6, 0.08, 0.02};
    const auto flags = masking_flags({masked});
    REQUIRE(flags.size() == 3);
    CHECK(flags[0] == "net: under pgd-20 the accuracy rises from 45.0% at \xCE\xB5=0.05 to 50.0% at \xCE\xB5=0.1: "
                      "a larger budget should never help the model");
    CHECK(flags[1] == "net: at \xCE\xB5=0.1 Square, which uses no gradients, broke 2.0% of the samples that every "
                      "gradient attack of autoattack left");
    CHECK(flags[2] == "net: at \xCE\xB5=0.1 FGSM (30.0%) breaks more than pgd-20 (50.0%): the many-step attack is stuck");
    CHECK(report_markdown({masked}, report_options{}).find("**Likely gradient masking**") != std::string::npos);

    // Two samples of 1000 (0.2 points) is within the margin.
    model_evaluation close = m;
    close.curves[1].accuracy = {0.9, 0.45, 0.302};
    close.curves[0].accuracy = {0.9, 0.5, 0.3};
    CHECK(masking_flags({close}).empty());

    // The records' contract covers the new fields.
    model_evaluation bad = m;
    bad.curves[2].broken_by[1] = {0.4};
    CHECK_THROWS_WITH_AS(write_report("unused", {bad}, report_options{}),
                         "write_report(): model 'net', attack 'autoattack': 3 members but broken_by 1 has 1 shares",
                         std::invalid_argument);
}

TEST_CASE("report: an attack on the first samples only says so, and is compared only on the same samples") {
    using advaug::report_options, advaug::report_markdown, advaug::masking_flags, advaug::results_json,
        advaug::write_report;
    auto models = sample_models();  // 300 samples each
    models[0].curves[1].samples = 100;  // plain's pgd-20 on the first 100
    models[1].curves[1].samples = 100;
    CHECK(advaug::attacked_samples(models[0], models[0].curves[0]) == 300);
    CHECK(advaug::attacked_samples(models[0], models[0].curves[1]) == 100);

    const std::string md = report_markdown(models, report_options{});
    CHECK(md.find("Attacks on part of the set: pgd-20 on the first 100 of 300 samples") != std::string::npos);
    CHECK(md.find("### pgd-20\n\nRun on the first 100 of 300 samples.") != std::string::npos);
    CHECK(md.find("### fgsm\n\nRun") == std::string::npos);
    const std::string json = results_json(models, report_options{});
    CHECK(json.find("{\"attack\": \"fgsm\", \"samples\": 300,") != std::string::npos);
    CHECK(json.find("{\"attack\": \"pgd-20\", \"samples\": 100,") != std::string::npos);
    CHECK(advaug::accuracy_vs_eps_svg(models, report_options{}).find("pgd-20 on the first 100 of 300 samples") !=
          std::string::npos);

    // Different subsets per model are named per model.
    models[1].curves[1].samples = 0;  // all 300
    CHECK(report_markdown(models, report_options{})
              .find("pgd-20 on the first 100 of 300 samples for plain; on all 300 samples for fgsm-rs") !=
          std::string::npos);

    // FGSM breaking more than PGD on other samples is no sign of masking; on the same, it is.
    auto m = make_model("net", true);
    m.curves[0].accuracy = {m.clean_accuracy, 0.5, 0.3, 0.2};  // FGSM below PGD-20 everywhere
    CHECK(masking_flags({m}).size() == 3);
    m.curves[1].samples = 100;
    CHECK(masking_flags({m}).empty());
    m.curves[0].samples = 100;
    CHECK(masking_flags({m}).size() == 3);

    // A curve cannot have attacked more samples than its model has.
    m.curves[0].samples = 301;
    CHECK_THROWS_WITH_AS(write_report("unused", {m}, report_options{}),
                         "write_report(): model 'net', attack 'fgsm': ran on 301 samples, more than the model's 300",
                         std::invalid_argument);
}

TEST_CASE("report: covered and not-covered means, mCE, and no praise for a model less accurate under shift") {
    using advaug::corruption_result, advaug::report_options, advaug::report_markdown;
    auto corruption = [](std::string name, double acc) {
        corruption_result c;
        c.name = std::move(name);
        c.accuracy.assign(5, acc);
        c.mean_accuracy = acc;
        return c;
    };
    model_evaluation plain, fgsm;
    plain.model = "plain";
    fgsm.model = "fgsm-rs";
    plain.samples = fgsm.samples = 100;
    plain.clean_accuracy = 0.9;
    fgsm.clean_accuracy = 0.7;
    plain.corruptions = {corruption("rotate", 0.6), corruption("fog", 0.5)};
    fgsm.corruptions = {corruption("rotate", 0.55), corruption("fog", 0.45)};
    plain.mean_corruption_accuracy = 0.55;
    fgsm.mean_corruption_accuracy = 0.5;
    plain.relative_mce = 1.0;
    fgsm.relative_mce = 0.8;  // it degrades less from its lower clean accuracy
    plain.absolute_mce = 1.0;
    fgsm.absolute_mce = 1.1;
    fgsm.covered_corruptions = {"rotate"};
    plain.mean_corruption_accuracy = 0.55;
    const std::string md = report_markdown({fgsm, plain}, report_options{});
    CHECK(md.find("| model | clean | corruptions (mean) | covered | not covered | mCE | relative mCE |") !=
          std::string::npos);
    CHECK(md.find("| fgsm-rs | 70.0% | 50.0% | 55.0% | 45.0% | 110.0% | 80.0% |") != std::string::npos);
    CHECK(md.find("| plain | 90.0% | 55.0% | \xE2\x80\x93 | 55.0% | 100.0% | 100.0% |") != std::string::npos);
    CHECK(md.find("**fgsm-rs degrades less than plain (relative mCE 80.0%) but is less accurate under corruption "
                  "(50.0% against 55.0%): it is not more robust.**") != std::string::npos);
}

}  // namespace test_report
