#!/usr/bin/env bash
# Installs the Debian 12 packages advaug builds, tests and demos with.
# Does nothing (and needs no network) when they are all installed already.
set -euo pipefail

packages=(
    build-essential cmake ccache
    libxtensor-dev libxtensor-blas-dev libopenblas-dev
    libdnnl-dev  # oneDNN: the default kernel backend (ADVAUG_BACKEND=auto picks it)
    # Debian builds oneDNN with its OpenCL GPU runtime: dnnl-config.cmake calls
    # find_package(OpenCL REQUIRED), and libdnnl-dev only recommends these
    ocl-icd-opencl-dev opencl-c-headers
    doctest-dev zlib1g-dev libzip-dev libcli11-dev libstb-dev nlohmann-json3-dev
    # libzip-dev's CMake package also imports these tools and fails without them (Debian 12)
    zipcmp zipmerge ziptool
    dataset-fashion-mnist
    python3-sklearn  # ships breast_cancer.csv, read by examples/tabular_drift.cpp
    python3-numpy python3-torch  # tests/test_npz.cpp and test_pytorch_interop.cpp, both directions
    python3-venv python3-scipy  # tests/crosscheck/run.sh: a venv for torchattacks, which imports scipy
    libxml2-utils  # xmllint, the SVG parser of tests/test_report.cpp
    libopenmpi-dev openmpi-bin  # advaug::mpi, tests/distributed and the distributed example
    clang-14 libclang-rt-14-dev  # libFuzzer and its runtime, for scripts/fuzz.sh
)

missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$package")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps.sh: all ${#packages[@]} packages already installed"
    exit 0
fi

echo "deps.sh: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
fi
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${packages[@]}"
