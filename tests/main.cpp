// The doctest runner, compiled once and linked into every test executable. A run in which
// some test case called testing::skip() and nothing failed exits with skip_exit_code, so
// ctest lists the executable as skipped rather than passed, and the reasons are printed.
// A run whose filters match no test case fails: ctest runs each file of the unity-built
// suite as `advaug_unit_tests --source-file=*/tests/test_x.cpp` (tests/CMakeLists.txt), and a
// mistyped or stale filter must not pass with nothing checked.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "support/skip.hpp"

namespace {

/// Records how many test cases passed the run's filters (doctest's own count).
struct filter_count : doctest::IReporter {
    explicit filter_count(const doctest::ContextOptions&) {}
    static unsigned& matched() {
        static unsigned n = 0;
        return n;
    }
    void test_run_end(const doctest::TestRunStats& stats) override {
        matched() = stats.numTestCasesPassingFilters;
    }
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("advaug_filter_count", 1, filter_count);

}  // namespace

int main(int argc, char** argv) {
    doctest::Context context(argc, argv);
    const int result = context.run();
    if (context.shouldExit() || result != 0) return result;
    if (filter_count::matched() == 0) {
        std::printf("no test case matched this run's filters: nothing was checked\n");
        return 1;
    }
    const auto& reasons = advaug::testing::skip_reasons();
    if (reasons.empty()) return 0;
    for (const auto& r : reasons) std::printf("SKIPPED: %s\n", r.c_str());
    std::printf("%zu test case(s) could not run: reported to ctest as skipped\n", reasons.size());
    return advaug::testing::skip_exit_code;
}
