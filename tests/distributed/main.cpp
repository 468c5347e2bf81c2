// The doctest runner of the distributed tests: every rank of an mpirun job runs the same test
// cases, between MPI_Init and MPI_Finalize. Exit codes as in tests/main.cpp (77: skipped).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "advaug/distributed/communicator.hpp"
#include "support/skip.hpp"

int main(int argc, char** argv) {
    advaug::distributed::environment env(argc, argv);
    doctest::Context context(argc, argv);
    const int result = context.run();
    if (context.shouldExit() || result != 0) return result;
    const auto& reasons = advaug::testing::skip_reasons();
    if (reasons.empty()) return 0;
    for (const auto& r : reasons) std::printf("SKIPPED: %s\n", r.c_str());
    return advaug::testing::skip_exit_code;
}
