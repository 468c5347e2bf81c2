#!/usr/bin/env bash
# advaug against PyTorch on this machine, in one run (docs/benchmarks.md):
#   1. builds benchmarks/advaug_bench (Release, in build-bench/);
#   2. runs it and benchmarks/pytorch_bench.py: samples/s of every workload at batch 128 on
#      2 threads, the GEMM bound, allocations per step, the scaling tables;
#   3. trains the MLP with the seed's recipe on all 60,000 Fashion-MNIST images, once with
#      each, as child processes, and takes their peak RSS;
#   4. prints one Markdown report with issue 6's targets as PASS/FAIL.
#
#   bash scripts/bench.sh                 the whole run (about 10 minutes on 2 cores)
#   bash scripts/bench.sh --smoke         one step of everything, a short training run (CI)
#   bash scripts/bench.sh --no-scaling    skip the scaling tables
#   bash scripts/bench.sh --rss-cnn       also the peak RSS of a CNN training epoch (slow)
#   bash scripts/bench.sh --rounds 3      measure the batch-128 table 3 times, the two sides
#                                         alternating, and report the median round (for a
#                                         machine shared with other work)
#   bash scripts/bench.sh --out DIR       keep the JSON lines in DIR (default: a temporary one)
#
# Exits non-zero when a benchmark fails to build or run; targets not met are reported, not
# fatal (the figures depend on the machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

smoke=0
scaling=1
rss_cnn=0
rounds=1
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) smoke=1 ;;
        --no-scaling) scaling=0 ;;
        --rss-cnn) rss_cnn=1 ;;
        --rounds)
            rounds="${2:?--rounds needs a number}"
            [[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench.sh: --rounds must be a whole number >= 1, got '$rounds'" >&2; exit 2; }
            shift ;;
        --out) out="${2:?--out needs a folder}"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

python=/usr/bin/python3  # the interpreter that has python3-torch
if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "bench.sh: $python cannot import torch (Debian: apt-get install python3-torch)" >&2
    exit 1
fi
if [[ -z "$out" ]]; then
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
rm -f "$out"/advaug*.jsonl "$out"/pytorch*.jsonl "$out"/rss.jsonl
cut -d' ' -f1-3 /proc/loadavg >"$out/load_start"
# The headers measured: the commit, and whether include/ differs from it.
{
    git log -1 --format='%h %s' 2>/dev/null | cut -c1-72 | tr -d '\n'
    if [[ -n "$(git status --porcelain --untracked-files=no include 2>/dev/null)" ]]; then
        echo -n " (with uncommitted changes in include/)"
    fi
} >"$out/version"

# Both sides on the same two threads; GOMP_SPINCOUNT=0 keeps PyTorch's idle OpenMP threads
# from spinning against OpenBLAS's (the MLP step runs 3.3 times slower without it).
export GOMP_SPINCOUNT=0 OPENBLAS_NUM_THREADS=2

echo "bench.sh: building advaug_bench (Release, build-bench)" >&2
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DADVAUG_BUILD_TESTS=OFF -DADVAUG_BUILD_EXAMPLES=OFF \
    -DADVAUG_BUILD_TOOLS=OFF -DADVAUG_BUILD_BENCHMARKS=ON >"$out/cmake.log" 2>&1 || { cat "$out/cmake.log" >&2; exit 1; }
cmake --build build-bench --target advaug_bench -j2 >"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; exit 1; }
bench=build-bench/benchmarks/advaug_bench

args=()
[[ $smoke == 1 ]] && args+=(--smoke)
[[ $scaling == 0 ]] && args+=(--no-scaling)

# Round 1 also runs the scaling tables; later rounds only the batch-128 table. Each program
# appends to its JSON lines through a per-round file.
for ((round = 1; round <= rounds; ++round)); do
    [[ $round == 2 && $scaling == 1 ]] && args+=(--no-scaling)
    echo "bench.sh: round $round of $rounds: advaug workloads (progress on stderr; the report follows)" >&2
    "$bench" "${args[@]}" --json "$out/advaug.$round.jsonl" >&2
    echo "bench.sh: round $round of $rounds: PyTorch workloads" >&2
    "$python" benchmarks/pytorch_bench.py "${args[@]}" --json "$out/pytorch.$round.jsonl"
    cat "$out/advaug.$round.jsonl" >>"$out/advaug.jsonl"
    cat "$out/pytorch.$round.jsonl" >>"$out/pytorch.jsonl"
done

# Peak RSS of whole training runs, each side a child process of its own.
full=(--epochs 1)
[[ $smoke == 1 ]] && full+=(--train-samples 2000)
runs=(mlp:seed-fgsm)
[[ $rss_cnn == 1 ]] && runs+=(cnn:plain)
for run in "${runs[@]}"; do
    echo "bench.sh: full training run $run (advaug, then PyTorch)" >&2
    "$python" benchmarks/bench_report.py rss "$out/rss.jsonl" -- "$bench" --full-run "$run" "${full[@]}"
    "$python" benchmarks/bench_report.py rss "$out/rss.jsonl" -- "$python" benchmarks/pytorch_bench.py --full-run "$run" "${full[@]}"
done

"$python" benchmarks/bench_report.py report "$out"
