#!/usr/bin/env bash
# Builds advaug's tests with a sanitizer and runs them; any report fails the run.
#
#   bash scripts/sanitize.sh address   # AddressSanitizer + UndefinedBehaviorSanitizer, the unit
#                                      # tests but two learning cases (ADVAUG_ASAN_ALL=1: those,
#                                      # the examples and the CLI cases too)
#   bash scripts/sanitize.sh thread    # ThreadSanitizer, the tests that start threads
#
# Each mode has its own build directory (build-asan, build-tsan), so the plain build in
# build/ is untouched. Extra arguments go to ctest (e.g. `-R test_npz`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mode="${1:-}"
shift || true
jobs="${ADVAUG_SANITIZE_JOBS:-2}"
extra_cmake=()

# -O1 keeps xtensor fast enough to run and compiles faster than -O2; -g1 (line tables) is
# all a stack trace needs. No NDEBUG: assert()s stay armed. -fno-sanitize-recover makes the
# first UBSan finding fatal, so it cannot scroll past unnoticed in a passing test.
common_flags="-O1 -g1 -fno-omit-frame-pointer"
case "$mode" in
    address)
        build_dir=build-asan
        sanitize_flags="-fsanitize=address,undefined -fno-sanitize-recover=all"
        # clang, where gcc builds everything else: the unit tests compiled in 30 % less time
        # and half the memory under these flags (a batch of 8 files: 198 s against 279 s, AMD
        # EPYC Zen 3), and the headers get a second compiler in CI. scripts/deps.sh installs
        # clang-14 for the fuzz targets already. ADVAUG_SANITIZE_CXX names another compiler.
        sanitize_cxx="${ADVAUG_SANITIZE_CXX:-clang++-14}"
        # Some suppressed test must not hide a report: every report is an error.
        export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:print_stacktrace=1"
        export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
        export LSAN_OPTIONS="print_suppressions=0"
        # What runs: the unit tests, which exercise the library's code. What does not:
        # - the examples and advaug-eval (with them the torchattacks cross-check and the CLI
        #   cases): 7 heavy translation units under these flags, a third of this step's build
        #   by their -O3 compile times, for paths the unit tests run; the tool's file parsers
        #   are fuzzed under ASan (step 5). CI on an AMD EPYC (Zen 3) ran past its 90 minutes
        #   with them (stop 33). ADVAUG_ASAN_ALL=1 builds and runs them too.
        # - the downstream builds: they test packaging (find_package, add_subdirectory), run in
        #   the plain build, and took 288 s and 30 s of test time here in CI (stop 29).
        #   ADVAUG_ASAN_DOWNSTREAM=1 includes them (with `-L downstream`: them alone).
        # - the compile-fail tests and the README snippets: they only compile (-fsyntax-only,
        #   without this build's flags), so they would repeat step 1 to the bit; 43 compiles of
        #   3 to 15 s each.
        # - the two cases that train on Fashion-MNIST to test what a trained model does, as
        #   the ThreadSanitizer run leaves out the first: test_robustness's "an MLP trained on
        #   Fashion-MNIST" (39 s under these flags, AMD EPYC Zen 3) and the file
        #   test_collapse_guard_fashion_mnist (57 s, then skipped: the run collapses on some
        #   CPUs only, not on that one). The code they reach runs here on small data:
        #   evaluate_robustness in the file's other cases, the guard in test_collapse_guard,
        #   the IDX reader in test_idx, test_dataset and the fuzzer.
        ctest_selection=(-LE 'crosscheck|long|downstream|compile_fail|docs')
        if [[ "${ADVAUG_ASAN_DOWNSTREAM:-0}" == 1 ]]; then ctest_selection=(-LE 'crosscheck|long|compile_fail|docs'); fi
        if [[ "${ADVAUG_ASAN_ALL:-0}" != 1 ]]; then
            ctest_selection+=(-E '^test_collapse_guard_fashion_mnist$')
            extra_cmake=(-DADVAUG_BUILD_EXAMPLES=OFF -DADVAUG_BUILD_TOOLS=OFF
                         "-DADVAUG_UNIT_TEST_ARGS=--test-case-exclude=*an MLP trained on Fashion-MNIST*")
        else
            extra_cmake=(-DADVAUG_UNIT_TEST_ARGS=)
        fi
        ;;
    thread)
        build_dir=build-tsan
        sanitize_flags="-fsanitize=thread"
        sanitize_cxx="${ADVAUG_SANITIZE_CXX:-c++}"
        export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0"
        # The tests about threads: advaug's pool and what runs on it (test_threads),
        # evaluate_robustness(threads > 1), the shared-model attack/evaluation tests and the
        # attacks' passes, whose threads run the model concurrently on their own caches
        # (test_attack_passes), and augment_and_mix, whose rows split over the pool with each
        # thread running the mixture's operations. The rest run on the pool too, and are
        # covered by the address run.
        tsan_tests=(test_threads test_robustness test_concurrency test_attack_passes test_augment_and_mix)
        ctest_selection=(-R "^($(IFS='|'; echo "${tsan_tests[*]}"))\$")
        # These five files only, as unity batches (tests/CMakeLists.txt). Without the learning
        # case of test_robustness (it trains an MLP on Fashion-MNIST, then evaluates it): under
        # TSan it took 180 of the file's 184 s on an AMD EPYC (Zen 3), for the pool's work that
        # the file's "bitwise the same for any thread count" case runs too; this step's ctest
        # went from 2.9 minutes to 35 s. The Release and address runs keep it.
        extra_cmake=("-DADVAUG_UNIT_TESTS=$(IFS=';'; echo "${tsan_tests[*]}")"
                     "-DADVAUG_UNIT_TEST_ARGS=--test-case-exclude=*an MLP trained on Fashion-MNIST*"
                     -DADVAUG_BUILD_EXAMPLES=OFF -DADVAUG_BUILD_TOOLS=OFF)
        ;;
    *)
        echo "usage: $0 address|thread [ctest arguments...]" >&2
        exit 2
        ;;
esac

# OpenBLAS is not instrumented: its own worker threads would be invisible to TSan (and
# race reports in it could not be fixed here). One BLAS thread also keeps two ctest jobs
# from oversubscribing a 2-core machine.
export OPENBLAS_NUM_THREADS=1
# The same for oneDNN's OpenMP team (libgomp is not instrumented either); advaug's own threads
# are what these runs check.
export OMP_NUM_THREADS=1

# Exported so that the nested CMake projects the downstream tests configure (find_package,
# add_subdirectory) are built and run with the same sanitizers; the -D values below are
# what this build directory uses even when its cache already exists.
export CXXFLAGS="$common_flags $sanitize_flags"
export LDFLAGS="$sanitize_flags"

bash scripts/deps.sh
command -v "$sanitize_cxx" > /dev/null ||
    { echo "sanitize.sh: compiler $sanitize_cxx not found (ADVAUG_SANITIZE_CXX names another)" >&2; exit 1; }
# The CUDA backend stays off: its tests need a GPU, nvcc does not pass these flags on, and
# the CUDA runtime maps memory where AddressSanitizer keeps its shadow. MPI stays off too:
# a bare MPI_Init/MPI_Finalize program already has ~120 kB of Open MPI's own allocations
# reported by LeakSanitizer; the MPI tests run in the Release step.
cmake -S . -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=Sanitize \
    -DCMAKE_CXX_COMPILER="$sanitize_cxx" \
    -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
    -DCMAKE_CXX_FLAGS_SANITIZE="" \
    -DCMAKE_EXE_LINKER_FLAGS="$LDFLAGS" \
    -DCMAKE_SHARED_LINKER_FLAGS="$LDFLAGS" \
    -DADVAUG_BUILD_BENCHMARKS=OFF \
    -DADVAUG_ENABLE_CUDA=OFF \
    -DADVAUG_ENABLE_MPI=OFF \
    "${extra_cmake[@]}"

cmake --build "$build_dir" -j"$jobs"
printf '\n=== sanitize.sh %s: built, ctest (%s)\n' "$mode" "$(date -u +%H:%M:%S)"

ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" --output-junit ctest-junit.xml \
    "${ctest_selection[@]}" "$@"
bash scripts/ctest_skips.sh "$build_dir/ctest-junit.xml"
