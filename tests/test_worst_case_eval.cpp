// evaluate_worst_case (evaluation/worst_case.hpp) and the report's worst-case section: budget 0
// is the clean accuracy, a budget that turns one class into another (rotating rows into
// columns) takes the accuracy down, results repeat bit for bit, the model is left as it was,
// bad arguments fail before any search, and the report writes what was measured.
#include <doctest/doctest.h>

#include <advaug/advaug.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/models.hpp"
#include "support/striped_images.hpp"
#include "support/temp_dir.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_worst_case_eval {

using namespace advaug;
using testing::linear_model;
using testing::striped_images;
using testing::train_linear;

namespace {

std::string read_all(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("evaluate_worst_case: budget 0 is clean, a quarter turn swaps rows and columns") {
    const auto data = striped_images(120);
    linear_model<float> model(64, 3, 4);
    train_linear(model, data, 60, 1.0f);
    const auto before = testing::snapshot(model);
    const double clean = accuracy(model, data, 50);
    REQUIRE(clean > 0.9);

    const auto options = worst_case_evaluation_options{}.image_size(8, 8).batch_size(50).seed(1);
    const family_curve rotation =
        evaluate_worst_case(model, data, natural_family::rotation, {90, 0, 3}, options);
    CHECK(rotation.family == "rotation");
    CHECK(rotation.parameter == "degrees");
    CHECK(rotation.search == "worst of 10 random draws, then 5 gradient steps of 0.25 of the budget");
    CHECK(rotation.budget == std::vector<double>{0, 3, 90});
    REQUIRE(rotation.accuracy.size() == 3);
    CHECK(rotation.accuracy[0] == clean);
    // Within 90 degrees the search finds the quarter turn that makes a row a column: the linear
    // model, which learned where the bright pixels are, loses most of what it had.
    CHECK(rotation.accuracy[2] < clean - 0.4);
    CHECK(model.mode() == mode::train);
    CHECK(testing::snapshot(model) == before);

    // The same bits on every run and for any number of advaug threads.
    CHECK(evaluate_worst_case(model, data, natural_family::rotation, {0, 3, 90}, options).accuracy ==
          rotation.accuracy);
    const std::size_t threads = num_threads();
    set_num_threads(threads == 1 ? 2 : 1);
    const auto other_threads = evaluate_worst_case(model, data, natural_family::rotation, {0, 3, 90}, options);
    set_num_threads(threads);
    CHECK(other_threads.accuracy == rotation.accuracy);

    // Every named family runs on these images; each accuracy is a share of the samples.
    for (natural_family f : all_natural_families()) {
        CAPTURE(to_string(f));
        const double budget = f == natural_family::rotation ? 10 : f == natural_family::blur ? 1.0 : 0.2;
        const auto curve = evaluate_worst_case(model, data, f, {0, budget},
                                               worst_case_evaluation_options(options).search(
                                                   worst_case_options{}.method(search_method::random).samples(3)));
        CHECK(curve.accuracy[0] == clean);
        CHECK(curve.accuracy[1] >= 0);
        CHECK(curve.accuracy[1] <= 1);
        CHECK(curve.parameter == budget_unit(f));
    }
}

TEST_CASE("evaluate_worst_case: bad arguments fail before any search, naming the value") {
    const auto data = striped_images(30);
    linear_model<float> model(64, 3, 4);
    const auto options = worst_case_evaluation_options{}.image_size(8, 8);
    auto fails = [&](std::vector<double> budgets, const std::string& message) {
        CAPTURE(message);
        CHECK_THROWS_WITH_AS(evaluate_worst_case(model, data, natural_family::rotation, budgets, options),
                             message.c_str(), std::invalid_argument);
    };
    fails({}, "evaluate_worst_case(): budgets is empty; give at least one, e.g. {0, 5, 10, 15}");
    fails({5, -1}, "evaluate_worst_case(): budgets[1] must be finite and >= 0, got -1");
    fails({5, 5}, "evaluate_worst_case(): budget 5 is given twice");
    CHECK_THROWS_WITH_AS(evaluate_worst_case(model, data, natural_family::rotation, {5},
                                             worst_case_evaluation_options{}),
                         "evaluate_worst_case(): the rotation family needs the image size: set "
                         "worst_case_evaluation_options::image_size() for samples of shape [64]",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_worst_case(model, data, natural_family::rotation, {5},
                                             worst_case_evaluation_options{}.image_size(7, 7)),
                         doctest::Contains("evaluate_worst_case()"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(evaluate_worst_case(model, data, "a b", "units", {1},
                                             [](double b) { return linf_ball<float>(64, b); }, options),
                         "evaluate_worst_case(): family 'a b' names a report file: use letters, digits, '-' and '_'",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(worst_case_evaluation_options{}.batch_size(0),
                         "worst_case_evaluation_options::batch_size(): batch_size must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_natural_family("advaug-eval", "spin"),
                         "advaug-eval(): unknown perturbation family 'spin'; expected one of: rotation, "
                         "translation, scale, shear, brightness, contrast, gamma, blur, displacement",
                         std::invalid_argument);
    CHECK(parse_natural_family("f", "blur") == natural_family::blur);
}

TEST_CASE("the report shows worst-case curves: JSON, CSV, Markdown and a chart per family") {
    model_evaluation m;
    m.model = "plain";
    m.samples = 100;
    m.clean_accuracy = 0.9;
    m.mean_corruption_accuracy = std::nan("");
    m.relative_mce = std::nan("");
    m.families.push_back({"rotation", "degrees", "worst of 10 random draws", {0, 15}, {0.9, 0.4}});
    const testing::temp_dir dir;
    write_report(dir.path.string(), {m}, report_options{}.title("t"));
    const std::string json = read_all(dir.path / "results.json");
    CHECK(json.find("\"families\": [\n        {\"family\": \"rotation\", \"parameter\": \"degrees\", "
                    "\"search\": \"worst of 10 random draws\", \"budget\": [0, 15], \"accuracy\": [0.9, 0.4]}") !=
          std::string::npos);
    const std::string csv = read_all(dir.path / "results.csv");
    CHECK(csv.find("plain,family,rotation,15,0.4\n") != std::string::npos);
    const std::string md = read_all(dir.path / "README.md");
    CHECK(md.find("## Worst-case natural perturbations") != std::string::npos);
    CHECK(md.find("| plain | 90.0% | 40.0% |") != std::string::npos);
    CHECK(md.find("(worst_case_rotation.svg)") != std::string::npos);
    const std::string svg = read_all(dir.path / "worst_case_rotation.svg");
    CHECK(svg.find("budget (degrees)") != std::string::npos);

    model_evaluation bad = m;
    bad.families[0].accuracy.pop_back();
    CHECK_THROWS_WITH_AS(write_report(dir.path.string(), {bad}, report_options{}),
                         "write_report(): model 'plain', family 'rotation': 2 budgets but 1 accuracies",
                         std::invalid_argument);
    bad = m;
    bad.families[0].budget = {15, 0};
    CHECK_THROWS_WITH_AS(write_report(dir.path.string(), {bad}, report_options{}),
                         "write_report(): model 'plain', family 'rotation': budgets must be strictly ascending, got 15 then 0",
                         std::invalid_argument);
}

}  // namespace test_worst_case_eval
