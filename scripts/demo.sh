#!/usr/bin/env bash
# Builds and runs the demo example. Extra arguments are passed on to it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DADVAUG_BUILD_EXAMPLES=ON
cmake --build build -j2 --target custom_model
./build/examples/custom_model "$@"
