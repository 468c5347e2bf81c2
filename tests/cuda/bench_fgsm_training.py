#!/usr/bin/env python3
"""PyTorch's samples per second for the step of bench_fgsm_training.cu, on the same GPU.

MLP 784-256-256-10 (nn.Linear's default initialization), FGSM at eps 0.1 with alpha 0.5,
SGD with momentum 0.9, a pool of 8 synthetic batches resident on the device.

    python3 bench_fgsm_training.py [BATCH ...]      (default 128 1024)
"""
import sys
import time

import torch
import torch.nn.functional as F


def samples_per_second(batch: int, steps: int) -> float:
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xs = [torch.rand(batch, 784, device=dev) for _ in range(8)]
    ys = [(torch.arange(batch, device=dev) + b) % 10 for b in range(8)]
    eps = 0.1

    def step(k: int) -> None:
        x = xs[k % 8].clone().requires_grad_(True)
        y = ys[k % 8]
        loss_clean = F.cross_entropy(model(x), y)
        (g,) = torch.autograd.grad(loss_clean, x, retain_graph=True)
        x_adv = (x.detach() + eps * g.sign()).clamp_(0, 1)
        loss = 0.5 * loss_clean + 0.5 * F.cross_entropy(model(x_adv), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for k in range(20):
        step(k)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(steps):
        step(k)
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> int:
    if not torch.cuda.is_available():
        print("bench_fgsm_training.py: no CUDA device")
        return 77
    batches = [int(a) for a in sys.argv[1:]] or [128, 1024]
    for b in batches:
        steps = 300 if b >= 1024 else 1000
        print(f"pytorch {torch.__version__}: FGSM training, MLP 784-256-256-10, batch {b}: "
              f"{samples_per_second(b, steps):.0f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
