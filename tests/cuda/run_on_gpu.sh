#!/bin/bash
# The CUDA backend's checks on a machine with a GPU, in one run: build the CUDA tests and the
# benchmark with nvcc directly (no CMake, no BLAS: the GPU machine may lack them), run the
# CPU-versus-GPU tests, then advaug's and PyTorch's FGSM-training benchmarks.
#
#   tests/cuda/run_on_gpu.sh prepare [DIR]  here: copy what the build needs and a GPU machine
#                                           may lack to DIR (default build-cuda/gpu-deps): the
#                                           header-only xtensor, xtl and doctest, and zlib's
#                                           headers and static library (the trainer's
#                                           checkpoints call crc32)
#   tests/cuda/run_on_gpu.sh build [DIR]    anywhere with nvcc, with or without a device: only
#                                           the build, with the very command lines `run` uses
#   tests/cuda/run_on_gpu.sh run [DIR]      there: build, test, benchmark
#
# Logs go to $OUT (default build-cuda/gpu-run). Builds for sm_80 (A100, and sm_86/sm_89 cards)
# and sm_90 (H100/H200), plus compute_90 PTX that the driver compiles for newer cards, so an
# unexpected GPU still runs. libzip is not linked: no CUDA test includes io/npz.hpp, and the
# link would fail if one did.
set -u
mode=${1:-run}
deps=${2:-build-cuda/gpu-deps}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
case "$mode" in
    prepare | build | run) ;;
    *) echo "usage: $0 prepare|build|run [DEPS_DIR]" >&2; exit 2 ;;
esac

if [ "$mode" = prepare ]; then
    mkdir -p "$deps/include" "$deps/lib"
    for d in xtensor xtl doctest; do cp -r "/usr/include/$d" "$deps/include/"; done
    cp /usr/include/zlib.h /usr/include/zconf.h "$deps/include/"
    zlib_a=$(find /usr/lib /usr/lib64 /usr/local/lib -name libz.a 2>/dev/null | head -1)
    [ -n "$zlib_a" ] || { echo "no libz.a here (Debian: apt-get install zlib1g-dev)" >&2; exit 1; }
    cp "$zlib_a" "$deps/lib/"
    echo "copied xtensor, xtl, doctest and zlib to $deps ($(du -sh "$deps" | cut -f1))"
    exit 0
fi
[ -f "$deps/lib/libz.a" ] || { echo "$deps/lib/libz.a is missing: run '$0 prepare' first" >&2; exit 1; }

out=${OUT:-$root/build-cuda/gpu-run}
bin="$root/build-cuda/gpu-bin"
mkdir -p "$out" "$bin"
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
cuda_lib=$(cd "$(dirname "$nvcc")/../lib64" 2>/dev/null && pwd)
log() { echo "$*" | tee -a "$out/summary.txt"; }

{
    log "== $mode: $(date -u) on $(hostname)"
    [ "$mode" = run ] &&
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$out/summary.txt"
    "$nvcc" --version | tail -2 | tee -a "$out/summary.txt"
} 2>&1

flags=(-std=c++20 -O2 --threads 0
       -gencode arch=compute_80,code=sm_80
       -gencode arch=compute_90,code=sm_90
       -gencode arch=compute_90,code=compute_90
       -DADVAUG_NO_BLAS -Iinclude -Itests "-I$deps/include")
# zlib from the copy (a static archive: nothing to find at run time); cuBLAS found at run time
# next to the nvcc that built the program.
libs=("$deps/lib/libz.a" -lcublas)
[ -n "$cuda_lib" ] && libs+=(-Xlinker -rpath -Xlinker "$cuda_lib")
build() {  # name, sources...
    local name=$1
    shift
    local start=$SECONDS
    echo "$nvcc ${flags[*]} $* -o $bin/$name ${libs[*]}" > "$out/build_$name.log"
    if "$nvcc" "${flags[@]}" "$@" -o "$bin/$name" "${libs[@]}" >> "$out/build_$name.log" 2>&1; then
        log "built $name in $((SECONDS - start)) s"
    else
        log "FAILED to build $name (see build_$name.log)"
        tail -20 "$out/build_$name.log"
        return 1
    fi
}
status=0
# Three translation units in parallel: the GPU machine's time is short, and it has the cores.
build test_cuda_host tests/cuda/test_cuda_host.cu tests/main.cpp &
host_job=$!
build test_cuda_equivalence tests/cuda/test_cuda_equivalence.cu &
equivalence_job=$!
build bench_fgsm_training tests/cuda/bench_fgsm_training.cu &
bench_job=$!
for job in $host_job $equivalence_job $bench_job; do wait "$job" || status=1; done
if [ "$mode" = build ]; then
    log "build only: $([ $status -eq 0 ] && echo "all built" || echo FAILED); binaries in $bin"
    exit $status
fi

device=1
for t in test_cuda_host test_cuda_equivalence; do
    [ -x "$bin/$t" ] || { status=1; continue; }
    if [ "$t" = test_cuda_host ]; then  # needs no device, and checks the no-device path
        CUDA_VISIBLE_DEVICES= "$bin/$t" > "$out/$t.log" 2>&1
    else
        "$bin/$t" > "$out/$t.log" 2>&1
    fi
    rc=$?
    if [ $rc -eq 77 ]; then
        log "$t: SKIPPED ($(grep -m1 -iE 'no CUDA device|SKIPPED' "$out/$t.log"))"
        [ "$t" = test_cuda_equivalence ] && device=0
        continue
    fi
    log "$t: exit $rc ($(grep -E 'test cases:' "$out/$t.log" | tail -1))"
    [ $rc -eq 0 ] || { status=1; tail -30 "$out/$t.log"; }
done
if [ $device -eq 0 ]; then
    log "no CUDA device: the benchmarks are not run"
    exit $status
fi
if [ -x "$bin/bench_fgsm_training" ]; then
    "$bin/bench_fgsm_training" 128 1024 2>&1 | tee -a "$out/summary.txt"
fi
py=${PYTHON:-python3}
GOMP_SPINCOUNT=0 "$py" tests/cuda/bench_fgsm_training.py 128 1024 2>&1 | tee -a "$out/summary.txt"
exit $status
