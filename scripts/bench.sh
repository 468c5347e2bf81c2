#!/usr/bin/env bash
# advaug against PyTorch on this machine, in one run (docs/benchmarks.md):
#   1. builds benchmarks/advaug_bench (Release, in build-bench/);
#   2. runs it and benchmarks/pytorch_bench.py: samples/s of every workload at batch 128 on
#      2 threads, the GEMM bound, allocations per step, the scaling tables. The PyTorch side is
#      the newest torch 2.x from PyPI, in a virtual environment this script creates outside the
#      repository and reuses; Debian's python3-torch, when present, is a second column, and
#      torch.compile (mode max-autotune-no-cudagraphs) a third, for the training steps;
#   3. trains the MLP with the seed's recipe on all 60,000 Fashion-MNIST images, once with
#      advaug and once with the newest PyTorch, as child processes: seconds and peak RSS;
#   4. prints one Markdown report with issue 15's targets as PASS/FAIL.
#
#   bash scripts/bench.sh                 the whole run (about 20 minutes on 2 cores, plus the
#                                         first download of torch, about 5 GB)
#   bash scripts/bench.sh --smoke         one step of everything, a short training run
#   bash scripts/bench.sh --no-scaling    skip the scaling tables
#   bash scripts/bench.sh --rss-cnn       also the peak RSS of a CNN training epoch (slow)
#   bash scripts/bench.sh --rounds 3      measure the batch-128 table 3 times, the sides
#                                         alternating, and report the median round (for a
#                                         machine shared with other work)
#   bash scripts/bench.sh --out DIR       keep the JSON lines in DIR (default: a temporary one)
#   bash scripts/bench.sh --venv DIR      the PyPI torch's virtual environment
#                                         (default: $ADVAUG_TORCH_VENV or ~/.cache/advaug/torch2)
#   bash scripts/bench.sh --upgrade-torch upgrade torch in that environment to the newest 2.x
#   bash scripts/bench.sh --no-pypi       only Debian's python3-torch (no download; the report
#                                         then compares against torch 1.x and says so)
#   bash scripts/bench.sh --no-compile    skip the torch.compile column
#
# Exits non-zero when a benchmark fails to build or run; targets not met are reported, not
# fatal (the figures depend on the machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

smoke=0
pypi=1
compile=1
upgrade=0
venv="${ADVAUG_TORCH_VENV:-$HOME/.cache/advaug/torch2}"
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
        --venv) venv="${2:?--venv needs a folder}"; shift ;;
        --upgrade-torch) upgrade=1 ;;
        --no-pypi) pypi=0 ;;
        --no-compile) compile=0 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# The PyTorch sides: "pytorch" is the newest torch 2.x from PyPI (the targets are against it),
# "pytorch-debian" is Debian's python3-torch. Each entry is SIDE=INTERPRETER.
sides=()
debian_python=/usr/bin/python3
if [[ $pypi == 1 ]]; then
    case "$venv" in
        "$PWD"|"$PWD"/*) echo "bench.sh: --venv $venv is inside the repository; put it outside" >&2; exit 2 ;;
    esac
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import torch, numpy' 2>/dev/null; then
        echo "bench.sh: creating $venv with the newest torch 2.x and numpy from PyPI (about 5 GB, once)" >&2
        "$debian_python" -m venv "$venv" || { echo "bench.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
        "$venv/bin/pip" install --quiet --upgrade pip
        "$venv/bin/pip" install --quiet 'torch>=2,<3' numpy
    elif [[ $upgrade == 1 ]]; then
        echo "bench.sh: upgrading torch in $venv" >&2
        "$venv/bin/pip" install --quiet --upgrade 'torch>=2,<3' numpy
    fi
    sides+=("pytorch=$venv/bin/python")
fi
if "$debian_python" -c 'import torch' 2>/dev/null; then
    sides+=("pytorch-debian=$debian_python")
elif [[ $pypi == 0 ]]; then
    echo "bench.sh: no PyTorch: $debian_python cannot import torch (Debian: apt-get install python3-torch) and --no-pypi was given" >&2
    exit 1
fi
# The side the targets are checked against: the first one.
main_python="${sides[0]#*=}"
if [[ -z "$out" ]]; then
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"
rm -f "$out"/*.jsonl
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
    cat "$out/advaug.$round.jsonl" >>"$out/advaug.jsonl"
    for side in "${sides[@]}"; do
        name="${side%%=*}" py="${side#*=}"
        echo "bench.sh: round $round of $rounds: $name workloads ($py)" >&2
        "$py" benchmarks/pytorch_bench.py "${args[@]}" --side "$name" --json "$out/$name.$round.jsonl"
        cat "$out/$name.$round.jsonl" >>"$out/pytorch.jsonl"
    done
    # torch.compile: once per round, training steps only; reported, not a target.
    if [[ $compile == 1 && $pypi == 1 ]]; then
        echo "bench.sh: round $round of $rounds: torch.compile (max-autotune-no-cudagraphs) training steps" >&2
        "$main_python" benchmarks/pytorch_bench.py "${args[@]}" --compile-only --side pytorch \
            --json "$out/compiled.$round.jsonl" 2>"$out/compile.$round.log" || {
            echo "bench.sh: the torch.compile run failed (its log: $out/compile.$round.log); the column stays empty" >&2; }
        [[ -f "$out/compiled.$round.jsonl" ]] && cat "$out/compiled.$round.jsonl" >>"$out/pytorch.jsonl"
    fi
done

# Peak RSS of whole training runs, each side a child process of its own.
full=(--epochs 1)
[[ $smoke == 1 ]] && full+=(--train-samples 2000)
runs=(mlp:seed-fgsm)
[[ $rss_cnn == 1 ]] && runs+=(cnn:plain)
for run in "${runs[@]}"; do
    echo "bench.sh: full training run $run (advaug, then PyTorch)" >&2
    "$debian_python" benchmarks/bench_report.py rss "$out/rss.jsonl" -- "$bench" --full-run "$run" "${full[@]}"
    "$debian_python" benchmarks/bench_report.py rss "$out/rss.jsonl" -- "$main_python" benchmarks/pytorch_bench.py \
        --full-run "$run" --side "${sides[0]%%=*}" "${full[@]}"
done

"$debian_python" benchmarks/bench_report.py report "$out"
