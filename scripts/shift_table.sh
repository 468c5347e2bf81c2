#!/usr/bin/env bash
# The recipe table of docs/shift_robustness.md: Fashion-MNIST, the MLP 784-256-256-10 for 5
# epochs (or --model cnn), seeds 0, 1 and 2; plain training, random and worst-case augmentation
# with AugMix's mixture, AugMix and AugMax (fashion_mnist_ada's flags, listed in the doc); every
# model scored by advaug-eval on the whole test set (10,000 images): clean, PGD-20 at eps 0.1,
# the 17 corruptions (with the covered and not-covered means of the protocol), and the worst
# case of each family part at its training budget; seconds per training epoch from the log.
#
#   bash scripts/shift_table.sh [--out DIR] [--seeds "0 1 2"] [--epochs 5] [--model mlp]
#                               [--recipes "random-mixture worst-mixture augmix augmax fgsm-rs combined ada me-ada"]
#
# Recipes (docs/shift_robustness.md lists their flags): random-mixture, worst-mixture, augmix,
# augmax, fgsm-rs, combined, ada, me-ada, fgsm-0.01, fgsm-0.1, worst-of-4-mixture,
# random-mixture-full, worst-mixture-full, combined-rs.
#
# Builds fashion_mnist_ada and advaug-eval in build/ (Release). The example's own table looks at
# 1,000 test images only (advaug-eval scores the whole test set). The plain model of a seed is
# trained once (its checkpoint is copied into the other recipes' runs, which resume it at its
# end); every model, log and report stays in DIR (default shift_table/), and a finished step is
# not redone. Prints the Markdown table: mean over the seeds, and the spread max - min.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=shift_table
seeds="0 1 2"
epochs=5
model=mlp
recipes="random-mixture worst-mixture augmix augmax fgsm-rs combined ada me-ada"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="${2:?--out needs a folder}"; shift ;;
        --seeds) seeds="${2:?--seeds needs a list}"; shift ;;
        --epochs) epochs="${2:?--epochs needs a number}"; shift ;;
        --model) model="${2:?--model needs mlp or cnn}"; shift ;;
        --recipes) recipes="${2:?--recipes needs a list}"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "shift_table.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

flags_of() {
    case "$1" in
        random-mixture) echo "--method family --family mixture --family-search random" ;;
        worst-mixture) echo "--method family --family mixture" ;;
        augmix) echo "--method augmix" ;;
        augmax) echo "--method augmax" ;;
        fgsm-rs) echo "--method fgsm-rs" ;;
        combined) echo "--method family --family mixture-linf" ;;
        ada) echo "--method ada" ;;
        me-ada) echo "--method me-ada" ;;
        fgsm-0.01) echo "--method fgsm --eps 0.01" ;;
        fgsm-0.1) echo "--method fgsm --eps 0.1" ;;
        worst-of-4-mixture) echo "--method family --family mixture --family-search random --family-draws 4" ;;
        random-mixture-full) echo "--method family --family mixture-full --family-search random" ;;
        worst-mixture-full) echo "--method family --family mixture-full" ;;
        combined-rs) echo "--method family --family mixture-linf --alpha 1" ;;
        *) echo "shift_table.sh: unknown recipe '$1'" >&2; exit 2 ;;
    esac
}
method_of() { flags_of "$1" | awk '{print $2}'; }
for r in $recipes; do flags_of "$r" >/dev/null; done

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target fashion_mnist_ada advaug-eval -j2 >/dev/null
mkdir -p "$out"

# Each family part at the example's training budgets (fashion_mnist_ada --help).
worst="rotation:0,15;translation:0,2;brightness:0,0.2;contrast:0,0.3;gamma:0,0.3;blur:0,1.5;displacement:0,1"
export OPENBLAS_NUM_THREADS=1  # advaug-eval's threads do the parallel work

score() {  # score MODEL_FILE EVAL_DIR SEED
    if [[ ! -f "$2/results.json" ]]; then
        echo "shift_table.sh: scoring $2" >&2
        ./build/tools/advaug-eval --model "$1" --attacks pgd --eps 0,0.1 --corruptions all \
            --families "$worst" --seed "$3" --progress 0 --out "$2" >"$2.log"
    fi
}

for seed in $seeds; do
    first=""
    for recipe in $recipes; do
        run="$out/$model-seed$seed-$recipe"
        if [[ ! -f "$run/$(method_of "$recipe").npz" ]]; then
            echo "shift_table.sh: training seed $seed, $recipe" >&2
            mkdir -p "$run.ckpt"
            # the seed's plain run, once: later recipes resume its finished checkpoint
            [[ -n "$first" ]] && cp "$out/$model-seed$seed-$first.ckpt/run.plain" "$run.ckpt/run.plain"
            # shellcheck disable=SC2046
            ./build/examples/fashion_mnist_ada $(flags_of "$recipe") --model "$model" --epochs "$epochs" \
                --seed "$seed" --log-every 0 --test-samples 1000 --report-samples 100 --report "$run" \
                --checkpoint "$run.ckpt/run" --resume >"$run.log" 2>&1
        fi
        [[ -z "$first" ]] && first=$recipe
        score "$run/$(method_of "$recipe").npz" "$out/eval-$model-seed$seed-$recipe" "$seed"
    done
    score "$out/$model-seed$seed-$first/plain.npz" "$out/eval-$model-seed$seed-plain" "$seed"
done

python3 - "$out" "$model" "$seeds" "plain $recipes" "$epochs" <<'PY'
import json, re, sys, statistics
out, model, seeds, rows = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
epochs = int(sys.argv[5])
parts = ["rotation", "translation", "brightness", "contrast", "gamma", "blur", "displacement"]
# what each recipe's training perturbations cover (docs/shift_robustness.md), as the example
# recorded it in its report; plain covers nothing
def covered_of(seed, row):
    if row == "plain":
        return set()
    m = json.load(open(f"{out}/{model}-seed{seed}-{row}/results.json"))["models"][1]
    return set(m["covered_corruptions"])
def seconds(seed, row):
    if row == "plain":
        return None
    log = open(f"{out}/{model}-seed{seed}-{row}.log").read()
    # the recipe's epoch summaries are the last `epochs` ones: "epoch k/n done in ... R samples/s"
    rates = [float(r) for r in re.findall(r"epoch \d+/\d+ done in .*? (\d+) samples/s", log)][-epochs:]
    wall = re.findall(r"total wall time: \S+ \(([0-9.]+) s\)", log)
    return (statistics.mean(60000 / r for r in rates) if rates else None, float(wall[-1]) if wall else None)
def load(seed, row):
    m = json.load(open(f"{out}/eval-{model}-seed{seed}-{row}/results.json"))["models"][0]
    pgd = next(c for c in m["curves"] if c["attack"].startswith("pgd"))
    covered = covered_of(seed, row)
    cov = [c["mean_accuracy"] for c in m["corruptions"] if c["name"] in covered]
    rest = [c["mean_accuracy"] for c in m["corruptions"] if c["name"] not in covered]
    vals = {"clean": m["clean_accuracy"], "pgd": pgd["accuracy"][pgd["epsilon"].index(0.1)],
            "corruptions": m["mean_corruption_accuracy"], "covered": statistics.mean(cov) if cov else float("nan"),
            "not covered": statistics.mean(rest)}
    for f in m["families"]:
        vals[f["family"]] = f["accuracy"][-1]
    return vals
cols = ["clean", "pgd", "corruptions", "covered", "not covered"] + parts
print("| training | clean | PGD-20 eps 0.1 | 17 corruptions | covered | not covered | "
      + " | ".join(f"worst {p}" for p in parts) + " |")
print("| --- |" + " ---: |" * (5 + len(parts)))
for row in rows:
    runs = [load(s, row) for s in seeds]
    cells = []
    for c in cols:
        v = [100 * r[c] for r in runs]
        if all(x != x for x in v):  # NaN: nothing covered (plain)
            cells.append("-")
            continue
        cells.append(f"{statistics.mean(v):.1f} ({max(v) - min(v):.1f})")
    print(f"| {row} | " + " | ".join(cells) + " |")
print()
for row in rows[1:]:
    t = [seconds(s, row) for s in seeds]
    epoch = [x[0] for x in t if x[0] is not None]
    wall = [x[1] for x in t if x[1] is not None]
    if epoch and wall:
        print(f"{row}: {statistics.mean(epoch):.1f} s per training epoch of 60,000 images, "
              f"{statistics.mean(wall):.0f} s for the whole example run (mean over seeds; the run's "
              f"training, with ADA's phases, plus its 1,000-image table and 100-image report)")
PY
