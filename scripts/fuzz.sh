#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ and runs each one for a given time.
#
#   bash scripts/fuzz.sh --seconds 30                  # CI smoke: every target, 30 s each
#   bash scripts/fuzz.sh --seconds 600 fuzz_npz        # one long run
#
# Options:
#   --seconds N      run each target N seconds (default 30)
#   --build-dir DIR  build directory (default build-fuzz)
#   --keep-corpus    continue from the corpus a previous run grew in the build directory
#                    (default: start from a fresh copy of fuzz/corpus/<target>)
#   --jobs N         targets run at once (default 2: a libFuzzer process uses one core)
#   targets          any of fuzz_idx fuzz_npz fuzz_checkpoint fuzz_csv (default: all)
#
# Each target runs in one process (N at a time), against a copy of the committed corpus in
# DIR/corpus/<target> (the repository is never modified). Logs go to DIR/logs/<target>.log.
# Any finding (crash, sanitizer report, leak, timeout, out-of-memory, unexpected exception)
# makes the script exit 1 after the remaining targets ran, printing where libFuzzer saved the
# input (DIR/findings/<target>/...); reproduce with `DIR/<target> <input>`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

all_targets=(fuzz_idx fuzz_npz fuzz_checkpoint fuzz_csv)
seconds=30
build_dir=build-fuzz
keep_corpus=0
jobs=2
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
        --build-dir) build_dir="${2:?--build-dir needs a value}"; shift 2 ;;
        --keep-corpus) keep_corpus=1; shift ;;
        --jobs) jobs="${2:?--jobs needs a value}"; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *)
            if [[ ! " ${all_targets[*]} " == *" $1 "* ]]; then
                echo "fuzz.sh: unknown target $1 (known: ${all_targets[*]})" >&2
                exit 2
            fi
            targets+=("$1"); shift ;;
    esac
done
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: --seconds must be a positive integer, got '$seconds'" >&2
    exit 2
fi
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: --jobs must be a positive integer, got '$jobs'" >&2
    exit 2
fi
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")

# --- toolchain: clang 14 and its libFuzzer runtime ------------------------------------------
cxx="${ADVAUG_FUZZ_CXX:-clang++-14}"
if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "fuzz.sh: $cxx not found; install the Debian 12 packages clang-14 and libclang-rt-14-dev" >&2
    exit 1
fi
runtime="$("$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null || true)"
if [[ ! -f "$runtime" ]]; then
    runtime="$(dirname "$("$cxx" -print-libgcc-file-name -rtlib=compiler-rt 2>/dev/null || echo /nonexistent/x)")/libclang_rt.fuzzer-x86_64.a"
fi
if [[ ! -f "$runtime" ]]; then
    echo "fuzz.sh: $cxx has no libFuzzer runtime (libclang_rt.fuzzer-x86_64.a); install the Debian 12 package libclang-rt-14-dev" >&2
    exit 1
fi

# --- build ----------------------------------------------------------------------------------
cmake -S fuzz -B "$build_dir" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$build_dir" -j2 --target "${targets[@]}"

# --- run ------------------------------------------------------------------------------------
# Inputs larger than this are never generated: enough for every format's corner cases, and a
# gzip or deflate stream of that size can still inflate to megabytes.
max_len() {
    case "$1" in
        fuzz_idx) echo 8192 ;;
        fuzz_npz) echo 16384 ;;
        fuzz_checkpoint) echo 8192 ;;
        fuzz_csv) echo 4096 ;;
    esac
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OPENBLAS_NUM_THREADS=1

# One target, in the background: its verdict goes to DIR/logs/<target>.summary, and on a
# finding the report to DIR/logs/<target>.finding, both printed in target order at the end.
run_target() {
    local target="$1"
    local name="${target#fuzz_}"
    local corpus="$build_dir/corpus/$target"
    local findings="$build_dir/findings/$target"
    local log="$build_dir/logs/$target.log"
    local summary_file="$build_dir/logs/$target.summary" finding_file="$build_dir/logs/$target.finding"
    mkdir -p "$findings" "$(dirname "$log")"
    rm -f "$summary_file" "$finding_file"
    if [[ $keep_corpus -eq 0 || ! -d "$corpus" ]]; then
        rm -rf "$corpus"
        mkdir -p "$corpus"
        cp fuzz/corpus/"$name"/* "$corpus"/
    fi
    local start_files
    start_files=$(find "$corpus" -type f | wc -l)
    echo "fuzz.sh: $target for $seconds s (corpus $corpus: $start_files files, log $log)"
    # -timeout: an input that takes longer is a hang. -rss_limit_mb/-malloc_limit_mb: a reader
    # must allocate in proportion to its input, never gigabytes.
    local rc=0
    nice -n 10 "$build_dir/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -max_len="$(max_len "$target")" -print_final_stats=1 \
        -artifact_prefix="$findings/" "$corpus" >"$log" 2>&1 || rc=$?
    local execs end_files end_bytes input
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    end_files=$(find "$corpus" -type f | wc -l)
    end_bytes=$(du -sb "$corpus" | cut -f1)
    if [[ $rc -ne 0 ]]; then
        input=$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')
        {
            echo "fuzz.sh: FINDING in $target (exit $rc); last lines of $log:"
            tail -n 40 "$log"
            echo "fuzz.sh: $target: crash input: ${input:-see $log}"
        } > "$finding_file"
        echo "$target: FINDING (${input:-see $log}), ${execs:-?} executions" > "$summary_file"
    else
        echo "$target: ok, ${seconds} s, ${execs:-?} executions, corpus $start_files -> $end_files files ($end_bytes bytes)" \
            > "$summary_file"
    fi
}

for target in "${targets[@]}"; do
    while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
    run_target "$target" &
done
wait

failed=()
summary=()
for target in "${targets[@]}"; do
    finding_file="$build_dir/logs/$target.finding"
    summary_file="$build_dir/logs/$target.summary"
    if [[ -f "$finding_file" ]]; then
        cat "$finding_file" >&2
        failed+=("$target")
    fi
    if [[ -f "$summary_file" ]]; then
        summary+=("$(cat "$summary_file")")
    else
        summary+=("$target: did not finish (see $build_dir/logs/$target.log)")
        failed+=("$target")
    fi
done

echo "fuzz.sh: summary"
for line in "${summary[@]}"; do echo "  $line"; done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: findings in ${failed[*]}" >&2
    exit 1
fi
