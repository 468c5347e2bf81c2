#!/usr/bin/python3
"""The PyTorch side of advaug's benchmark (docs/benchmarks.md): the workloads of
benchmarks/advaug_bench.cpp, with the same architectures, data and timing.

  GOMP_SPINCOUNT=0 PYTHON benchmarks/pytorch_bench.py [--smoke] [--json out.jsonl] [--side NAME]
  GOMP_SPINCOUNT=0 PYTHON benchmarks/pytorch_bench.py --compile-only [--json out.jsonl]
  GOMP_SPINCOUNT=0 PYTHON benchmarks/pytorch_bench.py --full-run mlp:seed-fgsm

PYTHON is any interpreter with torch: scripts/bench.sh runs the newest torch 2.x from PyPI in a
virtual environment (side "pytorch") and Debian's python3-torch (side "pytorch-debian").

MLP 784-256-256-10 and advaug's bundled CNN, float32, batch 128, torch.set_num_threads(2),
SGD lr 0.05 momentum 0.9, epsilon 0.1. Each workload runs in up to two variants:

  as-written  the seed blog post's code: its attack sets requires_grad on the images and calls
              loss.backward() on the model, so every step also computes (and, in training, adds
              to the step) a parameter gradient of the clean loss;
  efficient   the same algorithm written well: torch.autograd.grad for the attack (no
              parameter gradients), the model in eval mode for attacks, the clean forward
              reused for the seed's recipe, zero_grad(set_to_none=True).
  compiled    efficient, with the model wrapped in torch.compile(mode="max-autotune-no-cudagraphs")
              (--compile-only; training steps only; torch 2.x). Compilation happens in the
              warm-up; a workload that fails to compile is reported with its error.

Timing is the C++ side's: a warm-up of at least 3 steps and 0.3 s, one probe step, then 7
repeats of k steps (k chosen so a repeat lasts 0.25 s); the median of the repeats' per-step
times. Each result is one JSON object per line (stdout, or --json PATH).
"""
import argparse
import gzip
import json
import math
import os
import resource
import sys
import time

# libgomp reads this when torch loads: without it PyTorch's OpenMP threads spin and fight
# OpenBLAS's threads for the two cores.
os.environ.setdefault("GOMP_SPINCOUNT", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DATA = os.environ.get("ADVAUG_FASHION_MNIST") or "/usr/share/datasets/fashion-mnist"
COMPILE_MODE = "max-autotune-no-cudagraphs"
COMPILED_WORKLOADS = ("plain", "seed-fgsm", "fgsm-rs", "pgd7")
EPS = 0.1
LR = 0.05


# ------------------------------------------------------------------------------------------
# Data and models
# ------------------------------------------------------------------------------------------

def read_idx(path):
    """An IDX file (plain or .gz) as a numpy array, read with numpy alone."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)


def idx_path(stem):
    for name in (f"{DATA}/{stem}.gz", f"{DATA}/{stem}"):
        if os.path.exists(name):
            return name
    raise FileNotFoundError(f"{DATA}/{stem}[.gz] not found")


def load_train():
    """Training images [N, 784] as uint8 and labels as int64, kept as bytes until a batch is made."""
    x = read_idx(idx_path("train-images-idx3-ubyte")).reshape(-1, 784)
    y = read_idx(idx_path("train-labels-idx1-ubyte")).astype(np.int64)
    return x, y


def make_model(arch, width=256):
    nn = torch.nn
    if arch == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 10))


def make_batches(data, arch, n, count, random_inputs):
    """`count` float batches of n samples: training images 0 .. count * n - 1 (as advaug_bench)."""
    out = []
    gen = torch.Generator().manual_seed(n * 7919 + count)
    for b in range(count):
        if data is not None and not random_inputs:
            idx = np.arange(b * n, (b + 1) * n) % len(data[0])
            x = torch.from_numpy(data[0][idx].astype(np.float32) / 255)
            y = torch.from_numpy(data[1][idx])
        else:
            x = torch.rand(n, 784, generator=gen)
            y = torch.randint(0, 10, (n,), generator=gen)
        if arch == "cnn":
            x = x.reshape(n, 1, 28, 28)
        out.append((x.contiguous(), y))
    return out


# ------------------------------------------------------------------------------------------
# The steps
# ------------------------------------------------------------------------------------------

def seed_fgsm_attack(model, images, labels, epsilon):
    """The seed's attack, as written (zero_grad, then loss.backward() on the model)."""
    images.requires_grad = True
    outputs = model(images)
    loss = F.cross_entropy(outputs, labels)
    model.zero_grad()
    loss.backward()
    data_grad = images.grad.data
    sign_data_grad = data_grad.sign()
    perturbed_image = images + epsilon * sign_data_grad
    perturbed_image = torch.clamp(perturbed_image, 0, 1)
    images.requires_grad = False
    return perturbed_image


def input_grad(net, x, y):
    """grad_x CE(net(x), y) only: autograd computes no parameter gradient on the way."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(net(x), y)
    return torch.autograd.grad(loss, x)[0]


def linf_step(adv, x, g, step, ball):
    """adv + step * sign(g), projected to the ball around x and to [0, 1], in place."""
    adv.add_(g.sign_(), alpha=step)
    if ball is not None:
        adv.copy_(torch.min(torch.max(adv, x - ball), x + ball))
    return adv.clamp_(0, 1)


def random_start(x, radius):
    return (x + torch.empty_like(x).uniform_(-radius, radius)).clamp_(0, 1)


def step_function(name, variant, net, opt):
    """The callable for one step of workload `name`, taking (x, y)."""
    if name == "fgsm-attack":
        net.eval()
        if variant == "as-written":
            return lambda x, y: seed_fgsm_attack(net, x.detach(), y, EPS)

        def fgsm(x, y):
            g = input_grad(net, x, y)
            with torch.no_grad():
                return (x + EPS * g.sign_()).clamp_(0, 1)
        return fgsm
    if name == "pgd10-attack":
        net.eval()

        def pgd(x, y, steps=10):
            with torch.no_grad():
                adv = random_start(x, EPS)
            for _ in range(steps):
                g = input_grad(net, adv, y)
                with torch.no_grad():
                    linf_step(adv, x, g, 2.5 * EPS / steps, EPS)
            return adv
        return pgd

    net.train()
    if name == "plain":
        def plain(x, y):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss
        return plain
    if name == "seed-fgsm":
        if variant == "as-written":
            # The seed's training loop, verbatim apart from names (EPSILON 0.1, ALPHA 0.5).
            def seed(data, target):
                opt.zero_grad()
                output = net(data)
                standard_loss = F.cross_entropy(output, target)
                adv_data = seed_fgsm_attack(net, data.detach(), target, EPS)
                adv_output = net(adv_data)
                adv_loss = F.cross_entropy(adv_output, target)
                total_loss = 0.5 * standard_loss + 0.5 * adv_loss
                total_loss.backward()
                opt.step()
                return total_loss
            return seed

        def seed_fixed(x, y):
            # One clean forward serves the attack (input gradient only) and the clean loss.
            xg = x.detach().requires_grad_(True)
            clean = F.cross_entropy(net(xg), y)
            g = torch.autograd.grad(clean, xg, retain_graph=True)[0]
            with torch.no_grad():
                adv = (x + EPS * g.sign_()).clamp_(0, 1)
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * clean + 0.5 * F.cross_entropy(net(adv), y)
            loss.backward()
            opt.step()
            return loss
        return seed_fixed

    # fgsm-rs, n-fgsm, pgd7: alpha 1, the attack in eval mode (no batch norm here: the same).
    def adversarial(x, y):
        net.eval()
        with torch.no_grad():
            adv = random_start(x, 2 * EPS if name == "n-fgsm" else EPS)
        if name == "pgd7":
            for _ in range(7):
                g = input_grad(net, adv, y)
                with torch.no_grad():
                    linf_step(adv, x, g, 2.5 * EPS / 7, EPS)
        else:
            g = input_grad(net, adv, y)
            with torch.no_grad():
                if name == "fgsm-rs":
                    linf_step(adv, x, g, 1.25 * EPS, EPS)
                else:
                    linf_step(adv, x, g, EPS, None)
        net.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(adv), y)
        loss.backward()
        opt.step()
        return loss
    return adversarial


WORKLOADS = [
    ("fgsm-attack", ["as-written", "efficient"]),
    ("pgd10-attack", ["efficient"]),
    ("plain", ["efficient"]),
    ("seed-fgsm", ["as-written", "efficient"]),
    ("fgsm-rs", ["efficient"]),
    ("n-fgsm", ["efficient"]),
    ("pgd7", ["efficient"]),
]


# ------------------------------------------------------------------------------------------
# Timing (the same method as advaug_bench.cpp)
# ------------------------------------------------------------------------------------------

def measure(step, warmup_steps, warmup_seconds, repeats, repeat_seconds):
    start = time.perf_counter()
    i = 0
    while i < warmup_steps or time.perf_counter() - start < warmup_seconds:
        step()
        i += 1
    t0 = time.perf_counter()
    step()
    estimate = max(time.perf_counter() - t0, 1e-7)
    k = max(1, math.ceil(repeat_seconds / estimate)) if repeat_seconds > 0 else 1
    per_step = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        for _ in range(k):
            step()
        per_step.append((time.perf_counter() - t0) / k)
    per_step.sort()
    n = len(per_step)
    median = per_step[n // 2] if n % 2 else 0.5 * (per_step[n // 2 - 1] + per_step[n // 2])
    return median, per_step[0], per_step[-1], k, n


def run(name, variant, arch, batches, timing, width=256):
    torch.manual_seed(0)
    net = make_model(arch, width)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9)
    if variant == "compiled":
        # The seed's recipe keeps the clean graph for a second backward (retain_graph=True),
        # which AOTAutograd's donated buffers forbid; without them it compiles.
        if hasattr(torch, "_functorch") and hasattr(torch._functorch.config, "donated_buffer"):
            torch._functorch.config.donated_buffer = False
        fn = step_function(name, "efficient", torch.compile(net, mode=COMPILE_MODE), opt)
    else:
        fn = step_function(name, variant, net, opt)
    state = {"next": 0}

    def step():
        x, y = batches[state["next"]]
        state["next"] = (state["next"] + 1) % len(batches)
        out = fn(x, y)
        if out.dim() == 0 and not math.isfinite(out.item()):
            raise RuntimeError(f"{arch}/{name} {variant}: the training loss is not finite")

    median, lo, hi, k, n = measure(step, *timing)
    b = len(batches[0][1])
    return {"samples_per_s": round(b / median, 1), "step_ms": round(1e3 * median, 4),
            "step_ms_min": round(1e3 * lo, 4), "step_ms_max": round(1e3 * hi, 4),
            "repeats": n, "steps_per_repeat": k, "batch": b}


def kernels():
    """What PyTorch's CPU kernels are: its BLAS, oneDNN, and the instruction set it dispatches to."""
    out = {}
    try:
        out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # torch 1.x
        out["cpu_capability"] = "?"
    config = torch.__config__.show()
    for line in config.splitlines():
        line = line.strip()
        if line.startswith("- Intel(R) Math Kernel Library") or line.startswith("- Intel(R) oneAPI Math Kernel Library"):
            out["mkl"] = line[2:]
        elif line.startswith("- Intel(R) MKL-DNN") or line.startswith("- oneDNN"):
            out["onednn"] = line[2:]
        elif line.startswith("- BLAS_INFO="):
            out["blas"] = line[len("- BLAS_INFO="):]
        elif "BLAS_INFO=" in line and "blas" not in out:
            out["blas"] = line.split("BLAS_INFO=")[1].split(",")[0]
    out["mkldnn_enabled"] = bool(torch.backends.mkldnn.is_available())
    return out


# ------------------------------------------------------------------------------------------
# The full training run (peak RSS)
# ------------------------------------------------------------------------------------------

def full_run(spec, epochs, batch, samples, side="pytorch"):
    arch, _, name = spec.partition(":")
    if arch not in ("mlp", "cnn") or name not in ("plain", "seed-fgsm", "fgsm-rs", "n-fgsm", "pgd7"):
        sys.exit(f"pytorch_bench.py: --full-run expects MODEL:WORKLOAD such as mlp:seed-fgsm, got '{spec}'")
    start = time.time()
    images, labels = load_train()
    if samples:
        images, labels = images[:samples], labels[:samples]
    torch.manual_seed(0)
    net = make_model(arch)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9)
    fn = step_function(name, "efficient", net, opt)
    loss = float("nan")
    for _ in range(epochs):
        order = torch.randperm(len(images)).numpy()
        for i in range(0, len(images), batch):
            idx = order[i:i + batch]
            x = torch.from_numpy(images[idx]).float().div_(255)
            if arch == "cnn":
                x = x.reshape(-1, 1, 28, 28)
            loss = fn(x, torch.from_numpy(labels[idx])).item()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"side": side, "table": "full-run", "model": arch, "workload": name,
                      "variant": "efficient", "epochs": epochs, "samples": len(images),
                      "seconds": round(time.time() - start, 2), "final_loss": round(loss, 4),
                      "self_max_rss_kib": rss}))
    return 0 if math.isfinite(loss) else 1


# ------------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="one timed step of everything")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=None, help="batch size of the main table (128; 32 with --smoke)")
    p.add_argument("--json", help="write the JSON lines to PATH instead of stdout")
    p.add_argument("--side", default="pytorch", help="the name of this side in the report (pytorch, pytorch-debian)")
    p.add_argument("--compile-only", action="store_true",
                   help=f"only the training steps, each with torch.compile(mode='{COMPILE_MODE}')")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--no-cnn-scaling", action="store_true")
    p.add_argument("--random-inputs", action="store_true")
    p.add_argument("--only", help="MODEL/WORKLOAD, e.g. mlp/seed-fgsm")
    p.add_argument("--full-run", help="MODEL:WORKLOAD: train on all 60,000 images")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-samples", type=int, default=0, help="--full-run on the first N images (default: all)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.batch is None:
        a.batch = 32 if a.smoke and not a.full_run else 128
    if a.full_run:
        return full_run(a.full_run, a.epochs, a.batch, a.train_samples, a.side)

    out = open(a.json, "w") if a.json else sys.stdout

    def emit(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    data = None
    if not a.random_inputs:
        try:
            data = load_train()
        except FileNotFoundError as e:
            if not a.smoke:
                raise
            print(f"Fashion-MNIST not available ({e}); using uniform random inputs", file=sys.stderr)
    side = a.side
    emit({"side": side, "table": "meta", "torch": torch.__version__, "threads": torch.get_num_threads(),
          "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"), "numpy": np.__version__,
          "python": sys.executable, "kernels": kernels(),
          "inputs": "Fashion-MNIST training images" if data is not None else "uniform random inputs in [0, 1]"})
    timing = (0, 0, 1, 0) if a.smoke else (3, 0.3, 7, 0.25)
    if a.compile_only:
        if not hasattr(torch, "compile"):
            emit({"side": side, "table": "compile-error", "error": f"torch {torch.__version__} has no torch.compile"})
            return 0
        for arch in ("mlp", "cnn"):
            batches = make_batches(data, arch, a.batch, 8, a.random_inputs)
            for name in COMPILED_WORKLOADS:
                if a.only and a.only != f"{arch}/{name}":
                    continue
                row = {"side": side, "table": "main", "model": arch, "workload": name, "variant": "compiled",
                       "width": 256 if arch == "mlp" else 0}
                try:
                    started = time.perf_counter()
                    r = run(name, "compiled", arch, batches, timing)
                    emit({**row, **r, "seconds_with_compilation": round(time.perf_counter() - started, 1)})
                except Exception as e:  # noqa: BLE001 - any compile failure is reported, not fatal
                    emit({**row, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"})
                    torch._dynamo.reset()
        return 0
    for arch in ("mlp", "cnn"):
        batches = make_batches(data, arch, a.batch, 8, a.random_inputs)
        for name, variants in WORKLOADS:
            if a.only and a.only != f"{arch}/{name}":
                continue
            for variant in variants:
                r = run(name, variant, arch, batches, timing)
                emit({"side": side, "table": "main", "model": arch, "workload": name, "variant": variant,
                      "width": 256 if arch == "mlp" else 0, **r})
    if a.no_scaling or a.only:
        return 0

    # The scaling tables: the efficient variant of plain and FGSM-RS training.
    scale_timing = (0, 0, 1, 0) if a.smoke else (3, 0.15, 5, 0.15)
    sizes = [32] if a.smoke else [32, 64, 128, 256, 512, 1024]
    widths = [128] if a.smoke else [128, 256, 512, 1024]
    for arch in ("mlp",) if a.no_cnn_scaling else ("mlp", "cnn"):
        timing_here = scale_timing if arch == "mlp" or a.smoke else (1, 0.15, 3, 0.15)
        for n in sizes:
            batches = make_batches(data, arch, n, 4 if arch == "mlp" else 2, a.random_inputs)
            for name in ("plain", "fgsm-rs"):
                r = run(name, "efficient", arch, batches, timing_here)
                emit({"side": side, "table": "batch", "model": arch, "workload": name, "variant": "efficient",
                      "width": 256 if arch == "mlp" else 0, **r})
    batches = make_batches(data, "mlp", a.batch, 8, a.random_inputs)
    for w in widths:
        for name in ("plain", "fgsm-rs"):
            r = run(name, "efficient", "mlp", batches, scale_timing, width=w)
            emit({"side": side, "table": "width", "model": "mlp", "workload": name, "variant": "efficient",
                  "width": w, **r})
    return 0


if __name__ == "__main__":
    sys.exit(main())
