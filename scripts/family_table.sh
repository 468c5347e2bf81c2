#!/usr/bin/env bash
# The table of docs/perturbations.md: Fashion-MNIST, the MLP 784-256-256-10 for 5 epochs, seeds
# 0, 1 and 2; plain training and training on each image family (the example's --method family
# --family F, one step from a random start); every model scored by advaug-eval on the whole
# test set (10,000 images): clean, PGD-20 at eps 0.1, the 17 corruptions, and the worst case
# of each family's parts at its training budget.
#
#   bash scripts/family_table.sh [--out DIR] [--seeds "0 1 2"] [--epochs 5]
#
# Builds fashion_mnist_ada and advaug-eval in build/ (Release), keeps every model and report in
# DIR (default family_table/), and prints the Markdown table (mean over the seeds, and the spread
# max - min). About an hour on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=family_table
seeds="0 1 2"
epochs=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="${2:?--out needs a folder}"; shift ;;
        --seeds) seeds="${2:?--seeds needs a list}"; shift ;;
        --epochs) epochs="${2:?--epochs needs a number}"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "family_table.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target fashion_mnist_ada advaug-eval -j2 >/dev/null
mkdir -p "$out"

# Each family's parts at the example's training budgets (fashion_mnist_ada --help).
worst="rotation:0,15;translation:0,2;brightness:0,0.2;contrast:0,0.3;gamma:0,0.3;blur:0,1.5;displacement:0,1"
export OPENBLAS_NUM_THREADS=1  # advaug-eval's threads do the parallel work

for seed in $seeds; do
    for family in affine photometric blur displacement; do
        run="$out/seed$seed-$family"
        if [[ ! -f "$run/family.npz" ]]; then
            echo "family_table.sh: training seed $seed, $family" >&2
            ./build/examples/fashion_mnist_ada --method family --family "$family" --epochs "$epochs" \
                --seed "$seed" --log-every 0 --report-samples 100 --report "$run" >"$run.log" 2>&1
        fi
        for model in plain family; do
            [[ $model == plain && $family != affine ]] && continue  # plain is the same for every family
            eval_dir="$out/eval-seed$seed-$([[ $model == plain ]] && echo plain || echo "$family")"
            if [[ ! -f "$eval_dir/results.json" ]]; then
                echo "family_table.sh: scoring $eval_dir" >&2
                ./build/tools/advaug-eval --model "$run/$model.npz" --attacks pgd --eps 0,0.1 \
                    --corruptions all --families "$worst" --seed "$seed" --progress 0 --out "$eval_dir" >"$eval_dir.log"
            fi
        done
    done
done

python3 - "$out" "$seeds" <<'PY'
import json, sys, statistics
out, seeds = sys.argv[1], sys.argv[2].split()
rows = ["plain", "affine", "photometric", "blur", "displacement"]
parts = ["rotation", "translation", "brightness", "contrast", "gamma", "blur", "displacement"]
def load(seed, row):
    m = json.load(open(f"{out}/eval-seed{seed}-{row}/results.json"))["models"][0]
    pgd = next(c for c in m["curves"] if c["attack"].startswith("pgd"))
    vals = {"clean": m["clean_accuracy"], "pgd": pgd["accuracy"][pgd["epsilon"].index(0.1)],
            "corruptions": m["mean_corruption_accuracy"]}
    for f in m["families"]:
        vals[f["family"]] = f["accuracy"][-1]
    return vals
cols = ["clean", "pgd", "corruptions"] + parts
print("| training | clean | PGD-20 eps 0.1 | 17 corruptions | " + " | ".join(f"worst {p}" for p in parts) + " |")
print("| --- |" + " ---: |" * (3 + len(parts)))
for row in rows:
    runs = [load(s, row) for s in seeds]
    cells = []
    for c in cols:
        v = [100 * r[c] for r in runs]
        cells.append(f"{statistics.mean(v):.1f} ({max(v) - min(v):.1f})")
    print(f"| {row} | " + " | ".join(cells) + " |")
PY
