#!/usr/bin/python3
"""Cross-checks advaug's APGD-CE, APGD-T, FAB-T, Square and AutoAttack against torchattacks 3.5.1.

For each model file and attack, runs advaug's side (the attack_accuracy driver) and
torchattacks on the same first N Fashion-MNIST test images, and requires the clean
accuracies to agree exactly (sample by sample) and the robust accuracies to lie within
--tolerance points. Prints a table; exits 1 if any row disagrees. tests/crosscheck/run.sh
runs it in a virtual environment that holds torchattacks (docs/attacks.md, "Cross-check").

Settings, the same on both sides: L-inf, eps 0.1, pixels in [0, 1], one restart each;
  apgd-ce     torchattacks.APGD(loss="ce", steps=100)
  apgd-t      torchattacks.APGDT(steps=100, n_classes=10): 9 target classes
  fab-t       torchattacks.FAB(steps=100, multi_targeted=True, n_classes=10): 9 target classes
  square      torchattacks.Square(n_queries=5000, p_init=0.8), its rescaled schedule
  autoattack  torchattacks.MultiAttack of the four above with Square's schedule not rescaled:
              the authors' AutoAttack standard version (apgd-ce, apgd-t, fab-t, square).
--full-autoattack adds torchattacks.AutoAttack(version="standard") as it is (APGD with its
default 10 steps, FAB-T, Square with the rescaled schedule), reported beside advaug's
AutoAttack but not required to agree.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import pytorch_interop  # noqa: E402  (build() and load_advaug(): the same network in torch)

import torchattacks  # noqa: E402

ATTACKS = ["apgd-ce", "apgd-t", "fab-t", "square", "autoattack"]


def read_idx(path, offset):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_test(data_dir, n):
    """The first n test images as float32 [n, 1, 28, 28] in [0, 1] (pixel / 255) and labels."""
    def find(name):
        for candidate in (os.path.join(data_dir, name), os.path.join(data_dir, name + ".gz")):
            if os.path.exists(candidate):
                return candidate
        raise FileNotFoundError(f"{data_dir} holds no {name}")
    images = read_idx(find("t10k-images-idx3-ubyte"), 16).reshape(-1, 1, 28, 28)[:n]
    labels = read_idx(find("t10k-labels-idx1-ubyte"), 8)[:n]
    x = torch.from_numpy(images.astype(np.float32)) / torch.tensor(255.0, dtype=torch.float32)
    return x, torch.from_numpy(labels.astype(np.int64))


class Flatten(torch.nn.Module):
    """Shows the MLP images: torchattacks' Square needs [N, C, H, W] inputs."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x.reshape(x.shape[0], -1))


def load_model(path):
    arch = None
    _, metadata = pytorch_interop.read_advaug(path)
    for name, text in pytorch_interop.ARCHITECTURES.items():
        if metadata.get("architecture") == text:
            arch = name
    if arch is None:
        raise SystemExit(f"torchattacks_crosscheck.py: '{path}' holds no bundled mlp or cnn")
    net = pytorch_interop.build(arch)
    pytorch_interop.load_advaug(net, path, pytorch_interop.ARCHITECTURES[arch])
    net = Flatten(net) if arch == "mlp" else net
    return net.eval(), arch


def torch_attack(name, net, eps, seed):
    a = torchattacks
    apgd = a.APGD(net, norm="Linf", eps=eps, steps=100, n_restarts=1, seed=seed, loss="ce")
    apgdt = a.APGDT(net, norm="Linf", eps=eps, steps=100, n_restarts=1, seed=seed, n_classes=10)
    if name == "apgd-ce":
        return apgd
    fabt = a.FAB(net, norm="Linf", eps=eps, steps=100, n_restarts=1, alpha_max=0.1, eta=1.05, beta=0.9,
                 seed=seed, multi_targeted=True, n_classes=10)
    if name == "apgd-t":
        return apgdt
    if name == "fab-t":
        return fabt
    if name == "square":
        return a.Square(net, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, p_init=0.8, seed=seed)
    if name == "autoattack":
        square = a.Square(net, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, p_init=0.8,
                          resc_schedule=False, seed=seed)
        return a.MultiAttack([apgd, apgdt, fabt, square])
    if name == "autoattack-full":
        return a.AutoAttack(net, norm="Linf", eps=eps, version="standard", n_classes=10, seed=seed)
    raise ValueError(name)


def correct(net, x, y):
    with torch.no_grad():
        return (net(x).argmax(1) == y).numpy()


def run_torch(name, net, x, y, eps, seed):
    start = time.time()
    adv = torch_attack(name, net, eps, seed)(x, y)
    seconds = time.time() - start
    linf = float((adv - x).abs().max())
    if linf > eps + 1e-6:
        raise SystemExit(f"torchattacks_crosscheck.py: torchattacks' {name} moved a pixel by {linf} > eps {eps}")
    return {"clean_flags": correct(net, x, y), "robust_flags": correct(net, adv, y), "seconds": seconds}


def run_advaug(driver, path, name, n, eps, seed, data_dir):
    cmd = [driver, path, name, "--n", str(n), "--eps", str(eps), "--seed", str(seed), "--data", data_dir]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"torchattacks_crosscheck.py: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    r = json.loads(done.stdout)
    if r["max_linf"] > eps + 1e-6:
        raise SystemExit(f"torchattacks_crosscheck.py: advaug's {name} moved a pixel by {r['max_linf']} > eps {eps}")
    for key in ("clean_flags", "robust_flags"):
        r[key] = np.array([c == "1" for c in r[key]])
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--driver", required=True, help="the attack_accuracy executable")
    p.add_argument("--model", action="append", required=True, metavar="NAME=FILE.npz[:N]",
                   help="a model file, its name in the table, and optionally its own number of images")
    p.add_argument("--data", default=os.environ.get("ADVAUG_FASHION_MNIST") or "/usr/share/datasets/fashion-mnist")
    p.add_argument("--n", type=int, default=1000, help="test images per model (default 1000)")
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--seed", type=int, action="append", help="seeds of both sides (default 0); several: one row each")
    p.add_argument("--attacks", default=",".join(ATTACKS))
    p.add_argument("--tolerance", type=float, default=0.5, help="robust accuracy, points (default 0.5)")
    p.add_argument("--full-autoattack", action="store_true",
                   help="also run torchattacks.AutoAttack as it is (with FAB-T; reported, not checked)")
    p.add_argument("--json", help="write every row here")
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get("ADVAUG_CROSSCHECK_THREADS", "2")))
    attacks = a.attacks.split(",")
    for name in attacks:
        if name not in ATTACKS:
            raise SystemExit(f"torchattacks_crosscheck.py: unknown attack '{name}', expected one of {ATTACKS}")
    seeds = a.seed or [0]

    print(f"torchattacks {torchattacks.__version__}, torch {torch.__version__}, eps {a.eps} L-inf, "
          f"tolerance {a.tolerance} points", flush=True)
    header = (f"{'model':<14} {'attack':<16} {'seed':>4} {'n':>5} {'clean':>7} {'advaug':>7} "
              f"{'torchatk':>8} {'diff':>6} {'advaug s':>9} {'torch s':>8}  verdict")
    print(header, flush=True)
    rows, failures = [], []
    for spec in a.model:
        name, _, rest = spec.partition("=")
        path, _, count = rest.partition(":")
        n = int(count) if count else a.n
        net, _ = load_model(path)
        x, y = load_test(a.data, n)
        for seed in seeds:
            for attack in attacks + (["autoattack-full"] if a.full_autoattack else []):
                t = run_torch(attack, net, x, y, a.eps, seed)
                checked = attack != "autoattack-full"
                v = run_advaug(a.driver, path, "autoattack" if not checked else attack, n, a.eps, seed, a.data)
                n_used = len(y)
                clean_same = bool((v["clean_flags"] == t["clean_flags"]).all())
                adv_acc = 100.0 * v["robust_flags"].sum() / n_used
                tor_acc = 100.0 * t["robust_flags"].sum() / n_used
                diff = adv_acc - tor_acc
                verdict = "ok"
                if not clean_same:
                    verdict = "FAIL: clean predictions differ"
                elif checked and abs(diff) > a.tolerance:
                    verdict = f"FAIL: |diff| > {a.tolerance}"
                elif not checked:
                    verdict = "reported (torchattacks.AutoAttack as is, with FAB-T)"
                row = {"model": name, "attack": attack, "seed": seed, "n": n_used,
                       "clean": 100.0 * v["clean_flags"].sum() / n_used,
                       "clean_torch": 100.0 * t["clean_flags"].sum() / n_used,
                       "advaug": adv_acc, "torchattacks": tor_acc, "diff": diff,
                       "advaug_seconds": v["seconds"], "torch_seconds": t["seconds"], "verdict": verdict}
                rows.append(row)
                if verdict.startswith("FAIL"):
                    failures.append(row)
                print(f"{name:<14} {attack:<16} {seed:>4} {n_used:>5} {row['clean']:>6.1f}% {adv_acc:>6.1f}% "
                      f"{tor_acc:>7.1f}% {diff:>+6.1f} {v['seconds']:>9.1f} {t['seconds']:>8.1f}  {verdict}",
                      flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    if failures:
        print(f"\n{len(failures)} row(s) disagree: advaug and torchattacks differ by more than "
              f"{a.tolerance} points in robust accuracy, or in clean predictions:", flush=True)
        for r in failures:
            print(f"  {r['model']} {r['attack']} seed {r['seed']}: advaug {r['advaug']:.1f}%, "
                  f"torchattacks {r['torchattacks']:.1f}% ({r['diff']:+.1f}), clean {r['clean']:.1f}% vs "
                  f"{r['clean_torch']:.1f}%: {r['verdict']}")
        sys.exit(1)
    print(f"\nall {len(rows)} rows agree")


if __name__ == "__main__":
    main()
