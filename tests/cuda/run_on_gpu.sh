#!/bin/bash
# The CUDA backend's checks on a machine with a GPU, in one run: build the CUDA tests and the
# benchmark with nvcc directly (no CMake, no BLAS, no libzip: the GPU machine may lack them),
# run the CPU-versus-GPU tests, then advaug's and PyTorch's FGSM-training benchmarks.
#
#   tests/cuda/run_on_gpu.sh prepare [DIR]   here: copy the header-only dependencies (xtensor,
#                                            xtl, doctest) to DIR (default build-cuda/gpu-deps)
#   tests/cuda/run_on_gpu.sh run [DIR]       there: build, test, benchmark; logs in $OUT
#                                            (default build-cuda/gpu-run)
#
# Builds for sm_90 only (H100/H200), to keep the compile short; CUDA_ARCH=80 for an A100.
set -u
mode=${1:-run}
deps=${2:-build-cuda/gpu-deps}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1

if [ "$mode" = prepare ]; then
    mkdir -p "$deps/include"
    for d in xtensor xtl doctest; do cp -r "/usr/include/$d" "$deps/include/"; done
    echo "copied xtensor, xtl and doctest headers to $deps/include ($(du -sh "$deps" | cut -f1))"
    exit 0
fi

out=${OUT:-$root/build-cuda/gpu-run}
bin="$root/build-cuda/gpu-bin"
mkdir -p "$out" "$bin"
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
arch=${CUDA_ARCH:-90}
log() { echo "$*" | tee -a "$out/summary.txt"; }

{
    log "== $(date -u) on $(hostname)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$out/summary.txt"
    "$nvcc" --version | tail -2 | tee -a "$out/summary.txt"
} 2>&1

flags=(-std=c++20 -O2 "-gencode=arch=compute_$arch,code=sm_$arch" -DADVAUG_NO_BLAS
       -Iinclude -Itests "-I$deps/include")
build() {  # name, sources...
    local name=$1
    shift
    local start=$SECONDS
    if "$nvcc" "${flags[@]}" "$@" -o "$bin/$name" -lcublas > "$out/build_$name.log" 2>&1; then
        log "built $name in $((SECONDS - start)) s"
    else
        log "FAILED to build $name (see build_$name.log)"
        tail -20 "$out/build_$name.log"
        return 1
    fi
}
build test_cuda_host tests/cuda/test_cuda_host.cu tests/main.cpp
build test_cuda_equivalence tests/cuda/test_cuda_equivalence.cu
build bench_fgsm_training tests/cuda/bench_fgsm_training.cu

status=0
for t in test_cuda_host test_cuda_equivalence; do
    [ -x "$bin/$t" ] || { status=1; continue; }
    "$bin/$t" > "$out/$t.log" 2>&1
    rc=$?
    if [ $rc -eq 77 ]; then
        log "$t: SKIPPED (no CUDA device)"
    else
        log "$t: exit $rc ($(grep -E 'test cases:' "$out/$t.log" | tail -1))"
    fi
    [ $rc -eq 0 ] || status=1
done
if [ -x "$bin/bench_fgsm_training" ]; then
    "$bin/bench_fgsm_training" 128 1024 2>&1 | tee -a "$out/summary.txt"
fi
py=${PYTHON:-python3}
GOMP_SPINCOUNT=0 "$py" tests/cuda/bench_fgsm_training.py 128 1024 2>&1 | tee -a "$out/summary.txt"
exit $status
