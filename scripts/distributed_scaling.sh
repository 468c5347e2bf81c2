#!/usr/bin/env bash
# The scaling figures of docs/distributed.md, measured with the distributed example:
#   1. samples/s of FGSM-RS training, 1 rank x 2 threads against 2 ranks x 1 thread (and
#      1 rank x 1 thread, the compute the model below starts from), for the MLP and the CNN;
#   2. the time of one gradient all-reduce (the model's parameter count of floats) on 2 ranks.
# Each figure is repeated REPEATS times (default 3): the machine may be shared.
#   bash scripts/distributed_scaling.sh [BUILD_DIR]      # after building distributed_fashion_mnist
set -euo pipefail
build=${1:-build}
repeats=${REPEATS:-3}
exe="$build/distributed_fashion_mnist"
[[ -x "$exe" ]] || { echo "build $exe first: cmake --build $build --target distributed_fashion_mnist" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
# MPI busy-polls while it waits; on a shared machine a waiting rank must yield its core.
export OMPI_MCA_mpi_yield_when_idle=1
mpi=(mpirun --oversubscribe)

rate() {  # ranks threads model samples -> samples/s of the epoch
    "${mpi[@]}" -np "$1" "$exe" --threads "$2" --model "$3" --train-samples "$4" --test-samples 200 2>&1 |
        sed -n 's/.*(\([0-9]*\) samples\/s in the last epoch).*/\1/p'
}

for model in mlp cnn; do
    samples=$([[ $model == mlp ]] && echo 10240 || echo 1280)
    for r in $(seq "$repeats"); do
        echo "$model run $r: 1x1 $(rate 1 1 $model $samples) samples/s," \
             "1x2 $(rate 1 2 $model $samples) samples/s, 2x1 $(rate 2 1 $model $samples) samples/s"
    done
    for r in $(seq "$repeats"); do
        "${mpi[@]}" -np 2 "$exe" --model $model --bench 200 2>&1 | grep all-reduce
    done
done
