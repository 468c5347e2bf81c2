#!/usr/bin/env bash
# Builds and runs the main example, examples/fashion_mnist_ada.cpp: an MLP trained on
# Fashion-MNIST plainly and with adversarial data augmentation, then compared on clean,
# attacked and shifted test images. Extra arguments are passed on to it
# (`bash scripts/demo.sh --quick` for a run of seconds, `--help` for every option).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DADVAUG_BUILD_EXAMPLES=ON
cmake --build build -j2 --target fashion_mnist_ada
./build/examples/fashion_mnist_ada "$@"
