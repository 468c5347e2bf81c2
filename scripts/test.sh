#!/usr/bin/env bash
# Installs dependencies, builds everything and runs the whole test suite, then the
# reliability checks of docs/reliability.md and docs/fuzzing.md:
#   1. the Release build: every test, example smoke run, downstream build and the benchmark
#      smoke run (ctest), plus the CUDA targets compiled when nvcc is found (their GPU tests
#      skip without a device);
#   2. the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the multi-threaded tests under ThreadSanitizer;
#   4. each libFuzzer target for 30 seconds.
#
#   bash scripts/test.sh                  # all of it (what CI runs)
#   bash scripts/test.sh --release-only   # step 1 only, for a quick local check
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

release_only=0
case "${1:-}" in
    "") ;;
    --release-only) release_only=1 ;;
    *) echo "usage: $0 [--release-only]" >&2; exit 2 ;;
esac

step() { printf '\n=== test.sh: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "dependencies"
bash scripts/deps.sh

step "Release build and the whole suite"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2 --output-junit ctest-junit.xml
bash scripts/ctest_skips.sh build/ctest-junit.xml

if [[ $release_only -eq 1 ]]; then
    exit 0
fi

step "AddressSanitizer + UndefinedBehaviorSanitizer, the whole suite"
bash scripts/sanitize.sh address
step "ThreadSanitizer, the multi-threaded tests"
bash scripts/sanitize.sh thread
step "fuzz targets, 30 s each"
bash scripts/fuzz.sh --seconds 30
step "done"
