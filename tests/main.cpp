// The doctest runner, compiled once and linked into every test executable. A run in which
// some test case called testing::skip() and nothing failed exits with skip_exit_code, so
// ctest lists the executable as skipped rather than passed, and the reasons are printed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "support/skip.hpp"

int main(int argc, char** argv) {
    doctest::Context context(argc, argv);
    const int result = context.run();
    if (context.shouldExit() || result != 0) return result;
    const auto& reasons = advaug::testing::skip_reasons();
    if (reasons.empty()) return 0;
    for (const auto& r : reasons) std::printf("SKIPPED: %s\n", r.c_str());
    std::printf("%zu test case(s) could not run: reported to ctest as skipped\n", reasons.size());
    return advaug::testing::skip_exit_code;
}
