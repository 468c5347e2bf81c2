#!/usr/bin/python3
"""The PyTorch side of docs/training.md: the same recipes as examples/fashion_mnist_ada.cpp.

MLP 784-256-256-10 (or, with --arch cnn, advaug's bundled CNN) with PyTorch's default
initialization, SGD lr 0.05 momentum 0.9,
batch 128, Fashion-MNIST from Debian's dataset-fashion-mnist; evaluation on the full test set
with FGSM and PGD-20 (20 L-inf steps of 2.5 * eps / 20 from a random start).

  GOMP_SPINCOUNT=0 /usr/bin/python3 benchmarks/pytorch_training_reference.py --method fgsm-rs --seed 0

Methods: plain; fgsm (the seed's recipe with the gradient leak fixed, alpha 0.5);
seed-as-written (the seed's code, with loss.backward() inside the attack); fgsm-rs (Wong et
al. 2020, alpha 1).
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def load(kind):
    with gzip.open(f"{DATA}/{kind}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(f"{DATA}/{kind}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(x.astype(np.float32) / 255), torch.from_numpy(y.astype(np.int64))


def model(arch):
    nn = torch.nn
    if arch == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def input_grad(net, x, y):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(net(x), y)
    return torch.autograd.grad(loss, x)[0]


def pgd(net, x, y, eps, steps, step):
    delta = torch.empty_like(x).uniform_(-eps, eps)
    adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        g = input_grad(net, adv, y)
        adv = torch.min(torch.max(adv + step * g.sign(), x - eps), x + eps).clamp(0, 1)
    return adv


def seed_fgsm_attack(net, images, labels, epsilon):
    """The seed's attack, as written: model.zero_grad(); loss.backward() (leaks into .grad)."""
    images.requires_grad = True
    loss = F.cross_entropy(net(images), labels)
    net.zero_grad()
    loss.backward()
    adv = (images + epsilon * images.grad.data.sign()).clamp(0, 1)
    images.requires_grad = False
    return adv.detach()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--method", default="fgsm-rs", choices=["plain", "fgsm", "seed-as-written", "fgsm-rs"])
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--arch", default="mlp", choices=["mlp", "cnn"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    if a.arch == "cnn":
        xtr, xte = xtr.reshape(-1, 1, 28, 28), xte.reshape(-1, 1, 28, 28)
    net = model(a.arch)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    eps = a.eps
    start = time.time()
    for _ in range(a.epochs):
        order = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            idx = order[i:i + 128]
            x, y = xtr[idx], ytr[idx]
            if a.method == "plain":
                opt.zero_grad()
                F.cross_entropy(net(x), y).backward()
            elif a.method == "seed-as-written":
                opt.zero_grad()
                standard = F.cross_entropy(net(x), y)
                adv = seed_fgsm_attack(net, x, y, eps)
                total = 0.5 * standard + 0.5 * F.cross_entropy(net(adv), y)
                total.backward()
            elif a.method == "fgsm":
                adv = (x + eps * input_grad(net, x, y).sign()).clamp(0, 1)
                opt.zero_grad()
                (0.5 * F.cross_entropy(net(x), y) + 0.5 * F.cross_entropy(net(adv), y)).backward()
            else:
                delta = torch.empty_like(x).uniform_(-eps, eps)
                start_x = (x + delta).clamp(0, 1)
                g = input_grad(net, start_x, y)
                adv = torch.min(torch.max(start_x + 1.25 * eps * g.sign(), x - eps), x + eps).clamp(0, 1)
                opt.zero_grad()
                F.cross_entropy(net(adv), y).backward()
            opt.step()
    train_seconds = time.time() - start
    net.eval()
    correct_clean = correct_pgd = 0
    for i in range(0, len(xte), 500):
        x, y = xte[i:i + 500], yte[i:i + 500]
        with torch.no_grad():
            correct_clean += (net(x).argmax(1) == y).sum().item()
        adv = pgd(net, x, y, 0.1, 20, 2.5 * 0.1 / 20)
        with torch.no_grad():
            correct_pgd += (net(adv).argmax(1) == y).sum().item()
    print(f"pytorch {a.arch} method {a.method} seed {a.seed} epochs {a.epochs}: clean {100 * correct_clean / len(xte):.2f}% "
          f"PGD-20 {100 * correct_pgd / len(xte):.2f}% (training {train_seconds:.1f} s)")


if __name__ == "__main__":
    main()
