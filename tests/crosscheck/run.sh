#!/usr/bin/env bash
# The CTest test torchattacks_crosscheck: installs torchattacks 3.5.1 into a virtual environment
# that sees Debian's python3-torch, then runs torchattacks_crosscheck.py on the demo models.
# Exit 77 (skipped) only when the data set is missing or PyPI cannot be reached.
#
#   bash tests/crosscheck/run.sh --driver build/tests/attack_accuracy --venv build/torchattacks-venv \
#        --mlp DIR --cnn DIR [--n-cnn N] [--json FILE] [-- more torchattacks_crosscheck.py options]
#   bash tests/crosscheck/run.sh --venv DIR --setup-only     # only install torchattacks (the fixture)
#
# --mlp and --cnn are directories holding plain.npz and fgsm-rs.npz, as the example's
# `--quick --report DIR` (and `--quick --model cnn --report DIR`) writes them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
driver="" venv="" mlp="" cnn="" n_cnn=1000 json="" setup_only=0
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --driver) driver="$2"; shift 2 ;;
        --venv) venv="$2"; shift 2 ;;
        --mlp) mlp="$2"; shift 2 ;;
        --cnn) cnn="$2"; shift 2 ;;
        --n-cnn) n_cnn="$2"; shift 2 ;;
        --json) json="$2"; shift 2 ;;
        --setup-only) setup_only=1; shift ;;
        --) shift; extra=("$@"); break ;;
        *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ -n "$venv" && ($setup_only == 1 || (-n "$driver" && (-n "$mlp" || -n "$cnn"))) ]] ||
    { echo "run.sh: --venv, and --driver with --mlp or --cnn (or --setup-only) are required" >&2; exit 2; }

data="${ADVAUG_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
if ! ls "$data"/t10k-images-idx3-ubyte* > /dev/null 2>&1; then
    echo "SKIPPED: no Fashion-MNIST test images in $data (Debian package dataset-fashion-mnist)"
    exit 77
fi

# torchattacks' own requirements (torchvision, tqdm, requests ~= 2.25) would replace or shadow
# Debian's packages: --no-deps, and the few modules it imports come from Debian (python3-scipy).
version=3.5.1
python="$venv/bin/python"
if ! "$python" -c "import torchattacks, sys; sys.exit(torchattacks.__version__ != '$version')" > /dev/null 2>&1; then
    if [[ -e "$venv" && ! -f "$venv/pyvenv.cfg" ]]; then
        echo "run.sh: $venv exists and is not a virtual environment; not replacing it" >&2; exit 1
    fi
    rm -rf "$venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    if ! "$venv/bin/pip" install --disable-pip-version-check --no-deps "torchattacks==$version"; then
        if ! "$python" -c "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/torchattacks/', timeout=20)" > /dev/null 2>&1; then
            echo "SKIPPED: PyPI is unreachable, cannot install torchattacks==$version"
            exit 77
        fi
        echo "run.sh: pip could not install torchattacks==$version although PyPI answers" >&2
        exit 1
    fi
fi
# The venv must use Debian's torch, the one the project is tested with.
"$python" -c "import torch, sys; sys.exit(not torch.__file__.startswith('/usr/lib/python3/dist-packages/'))" || {
    echo "run.sh: the venv's torch is not Debian's python3-torch" >&2; exit 1; }
if [[ $setup_only == 1 ]]; then
    echo "run.sh: torchattacks $version ready in $venv"
    exit 0
fi

models=()
[[ -n "$mlp" ]] && models+=(--model "mlp-plain=$mlp/plain.npz" --model "mlp-fgsm-rs=$mlp/fgsm-rs.npz")
[[ -n "$cnn" ]] && models+=(--model "cnn-plain=$cnn/plain.npz:$n_cnn" --model "cnn-fgsm-rs=$cnn/fgsm-rs.npz:$n_cnn")
args=(--driver "$driver" --data "$data" "${models[@]}")
[[ -n "$json" ]] && args+=(--json "$json")
start=$SECONDS
GOMP_SPINCOUNT=0 OMP_NUM_THREADS=2 "$python" "$here/torchattacks_crosscheck.py" "${args[@]}" "${extra[@]}"
echo "run.sh: $((SECONDS - start)) s"
