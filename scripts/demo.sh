#!/usr/bin/env bash
# The demo: does adversarial data augmentation deliver what the seed (a blog post) claims,
# "clean accuracy drops a little, accuracy on noisy or shifted data rises a lot"?
#
# Trains the MLP 784-256-256-10 on Fashion-MNIST three times from the same initial weights
# (examples/fashion_mnist_ada.cpp): plainly, with the seed's recipe (FGSM at eps 0.01, alpha
# 0.5) and with the shift recipe (--shift "FLAGS", default the worst case of AugMix-style mixtures,
# chosen by the 3-seed table of docs/shift_robustness.md). advaug-eval then measures the three
# models on the whole test set (clean, PGD-20 at eps 0.1, the 17 corruptions at 5 severities)
# and with AutoAttack at eps 0.1 on its first 1,000 images (the report's headline) into one report, and the claim is checked for each recipe with thresholds fixed before any
# run: clean accuracy at most 5 points below plain's ("a little") and the mean over the 17
# corruptions at least 10 points above plain's ("a lot").
#
#   bash scripts/demo.sh [--epochs 5] [--seed 0] [--out demo] [--shift "--method augmix"] [--quick]
#
# --quick: 1 epoch on 10,000 images and 2,000 test images (AutoAttack on 200), for a run of
# seconds. The default run takes about 2.5 minutes on 2 cores once built (2 min 18 s on an Intel
# Xeon: the shift recipe's training 65 s, the evaluation 62 s, AutoAttack 20 s of it). Each
# model's own log, its own table (on the first 200 test images only) and small report stay in
# OUT/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=demo
epochs=5
seed=0
shift_flags="--method family --family mixture"
quick=()
samples=()
aa_samples=1000  # AutoAttack's share of the test set: the first 1,000 images
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="${2:?--out needs a folder}"; shift ;;
        --epochs) epochs="${2:?--epochs needs a number}"; shift ;;
        --seed) seed="${2:?--seed needs a number}"; shift ;;
        --shift) shift_flags="${2:?--shift needs flags of the example}"; shift ;;
        --quick) quick=(--quick); samples=(--samples 2000); aa_samples=200; epochs=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "demo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
little=5  # points of clean accuracy a recipe may lose: "drops a little"
lot=10    # points the 17-corruption mean must gain: "rises a lot"

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target fashion_mnist_ada advaug-eval >/dev/null
rm -rf "$out"
mkdir -p "$out/checkpoints"

train() {  # train NAME FLAGS...: the plain model is trained once, then resumed at its end
    local name=$1
    shift
    echo "demo.sh: training plain and $name ($*), $epochs epochs" >&2
    [[ -f "$out/checkpoints/seed.plain" ]] && cp "$out/checkpoints/seed.plain" "$out/checkpoints/$name.plain"
    ./build/examples/fashion_mnist_ada "$@" "${quick[@]}" --epochs "$epochs" --seed "$seed" --log-every 0 \
        --test-samples 200 --report-samples 100 --report "$out/$name" \
        --checkpoint "$out/checkpoints/$name" --resume >"$out/$name.log" 2>&1 ||
        { tail -5 "$out/$name.log" >&2; exit 1; }
}
train seed --method fgsm --eps 0.01
# shellcheck disable=SC2086
train shift $shift_flags
for f in "$out"/shift/*.npz; do [[ $f == */plain.npz ]] || shift_model=$f; done
cp "$out/seed/fgsm.npz" "$out/seed-recipe.npz"
cp "$shift_model" "$out/shift-recipe.npz"

echo "demo.sh: measuring the three models with advaug-eval" >&2
OPENBLAS_NUM_THREADS=1 ./build/tools/advaug-eval --model "$out/seed-recipe.npz" --compare "$out/shift-recipe.npz" \
    --baseline "$out/seed/plain.npz" "${samples[@]}" --attacks pgd,autoattack --autoattack-samples "$aa_samples" \
    --eps 0,0.1 --corruptions all \
    --seed "$seed" --progress 0 --out "$out/report" >"$out/eval.log"

python3 - "$out/report/results.json" "$little" "$lot" "$shift_flags" <<'PY'
import json, sys
models = {m["model"]: m for m in json.load(open(sys.argv[1]))["models"]}
little, lot, shift_flags = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def at(m, attack):
    c = next(c for c in m["curves"] if c["attack"].startswith(attack))
    return c["accuracy"][c["epsilon"].index(0.1)], c["samples"]
rows = [("plain", "plain"), ("the seed's recipe (FGSM eps 0.01)", "seed-recipe"),
        (f"the shift recipe ({shift_flags})", "shift-recipe")]
aa_n = at(models["plain"], "autoattack")[1]
aa_head = f"AutoAttack ({aa_n})"
print(f"\n{'training':<54} {'clean':>7} {'PGD-20 eps 0.1':>15} {aa_head:>17} {'17 corruptions':>15} {'absolute mCE':>13}")
for name, key in rows:
    m = models[key]
    print(f"{name:<54} {100 * m['clean_accuracy']:6.2f}% {100 * at(m, 'pgd')[0]:14.2f}% "
          f"{100 * at(m, 'autoattack')[0]:16.2f}% "
          f"{100 * m['mean_corruption_accuracy']:14.2f}% {100 * m['absolute_mce']:12.1f}%")
print(f"(AutoAttack standard at eps 0.1 on the first {aa_n} test images; everything else on all "
      f"{models['plain']['samples']})")
base = models["plain"]
print(f"\nthe claim, \"clean accuracy drops a little (<= {little:g} points), accuracy on noisy or shifted "
      f"data rises a lot (>= {lot:g} points on the mean over the 17 corruptions)\":")
for name, key in rows[1:]:
    m = models[key]
    drop = 100 * (base["clean_accuracy"] - m["clean_accuracy"])
    gain = 100 * (m["mean_corruption_accuracy"] - base["mean_corruption_accuracy"])
    held = drop <= little and gain >= lot
    why = [] if held else (["the clean drop is more than a little"] if drop > little else []) + \
        (["the gain under corruption is not a lot"] if gain < lot else [])
    print(f"  {name}: {'held' if held else 'did not hold (' + '; '.join(why) + ')'}: "
          f"clean {-drop:+.2f} points, 17-corruption mean {gain:+.2f} points")
PY
echo "report: $out/report/README.md"
