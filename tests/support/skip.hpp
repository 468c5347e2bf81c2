// A test case that cannot run (a data set, a tool or a permission missing) says so here and
// returns; the test executable then exits with 77, which ctest reports as "Skipped"
// (SKIP_RETURN_CODE in tests/CMakeLists.txt), and prints each reason. Never a silent pass.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace advaug::testing {

/// The exit code ctest reads as "skipped".
inline constexpr int skip_exit_code = 77;

/// The reasons of the skips in this run, in order.
inline std::vector<std::string>& skip_reasons() {
    static std::vector<std::string> reasons;
    return reasons;
}

/// Marks the running test case as not run, for `reason`; the caller returns next.
inline void skip(const std::string& reason) {
    skip_reasons().push_back(reason);
    MESSAGE("SKIPPED: " << reason);
}

}  // namespace advaug::testing
