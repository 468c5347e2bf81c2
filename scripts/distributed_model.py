#!/usr/bin/env python3
"""The step-time model of docs/distributed.md: R machines, one rank each, global batch B.

  step(R) = B / (R * rate1) + allreduce(R)
  allreduce(R) = 2 (R - 1) / R * bytes / bandwidth + 2 (R - 1) * latency     (ring all-reduce)

rate1 is the measured samples/s of one rank on one machine (compute only; the all-reduce of a
single rank is free), bytes the gradient's size. Prints samples/s and the speed-up over R = 1.

  python3 scripts/distributed_model.py NAME RATE1 FLOATS [BATCH]
"""
import sys

name, rate1, floats = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 128
size = 4 * floats
networks = [("10 Gbit/s, 20 us", 10e9 / 8, 20e-6), ("100 Gbit/s, 5 us", 100e9 / 8, 5e-6)]
print(f"{name}: {rate1:.0f} samples/s on one rank, gradient {size / 1e6:.2f} MB, global batch {batch}")
print(f"{'R':>3} " + " ".join(f"{n:>34}" for n, _, _ in networks))
for r in (1, 2, 4, 8, 16, 32):
    cells = []
    for _, bandwidth, latency in networks:
        compute = batch / (r * rate1)
        reduce = 2 * (r - 1) / r * size / bandwidth + 2 * (r - 1) * latency
        step = compute + reduce
        cells.append(f"{step * 1e3:7.2f} ms ({100 * reduce / step:3.0f}% comm) {batch / step:7.0f}/s x{batch / step / rate1:4.1f}")
    print(f"{r:>3} " + " ".join(f"{c:>34}" for c in cells))
