#!/usr/bin/env bash
# Installs dependencies, builds everything and runs the whole test suite, then the
# reliability checks of docs/reliability.md and docs/fuzzing.md:
#   1. the Release build: every test, example smoke run, downstream build and the benchmark
#      smoke run (ctest), plus the CUDA targets compiled when nvcc is found (their GPU tests
#      skip without a device); the default backend must be oneDNN;
#   2. the other kernel backends (ADVAUG_BACKEND=blas, none): the tests that exercise the
#      products (GEMM, dense, conv2d, layer gradients, threads) and one small training test;
#   3. the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer, built with
#      clang (the examples, advaug-eval, the downstream builds and the cross-check run in
#      step 1 only);
#   4. the multi-threaded tests under ThreadSanitizer;
#   5. each libFuzzer target for 30 seconds, two at a time.
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
step "Release: ctest"
ctest --test-dir build --output-on-failure -j2 --output-junit ctest-junit.xml -LE long
bash scripts/ctest_skips.sh build/ctest-junit.xml
# A fresh machine with deps.sh's packages must get oneDNN by default (ADVAUG_BACKEND=auto).
if ! grep -q '^ADVAUG_BACKEND_RESOLVED:INTERNAL=onednn$' build/CMakeCache.txt; then
    echo "test.sh: the default build did not pick the oneDNN backend:" >&2
    grep '^ADVAUG_BACKEND' build/CMakeCache.txt >&2 || true
    exit 1
fi

# The other backends: only what their products reach, so CI does not build the suite twice
# more (test_backend_info also checks that the build has the backend it asked for). The eight
# files build as two unity batches (ADVAUG_UNIT_TESTS, tests/CMakeLists.txt).
backend_tests=(test_gemm test_backend_info test_dense test_conv2d test_layer test_threads test_mlp test_trainer)
backend_regex="^($(IFS='|'; echo "${backend_tests[*]}"))\$"
for backend in blas none; do
    step "ADVAUG_BACKEND=$backend: ${backend_tests[*]}"
    cmake -S . -B "build-$backend" -DCMAKE_BUILD_TYPE=Release -DADVAUG_BACKEND="$backend" \
        -DADVAUG_BUILD_EXAMPLES=OFF -DADVAUG_BUILD_TOOLS=OFF -DADVAUG_BUILD_BENCHMARKS=OFF \
        -DADVAUG_ENABLE_CUDA=OFF "-DADVAUG_UNIT_TESTS=$(IFS=';'; echo "${backend_tests[*]}")"
    cmake --build "build-$backend" -j2 --target advaug_unit_tests
    ctest --test-dir "build-$backend" --output-on-failure -j2 -R "$backend_regex"
done

if [[ $release_only -eq 1 ]]; then
    exit 0
fi

step "AddressSanitizer + UndefinedBehaviorSanitizer (clang), the unit tests"
bash scripts/sanitize.sh address
step "ThreadSanitizer, the multi-threaded tests"
bash scripts/sanitize.sh thread
step "fuzz targets, 30 s each, two at a time"
bash scripts/fuzz.sh --seconds 30
step "done"
