#!/usr/bin/env python3
"""Joins the JSON lines of advaug_bench and pytorch_bench.py into the Markdown report that
scripts/bench.sh prints (docs/benchmarks.md explains every column). Standard library only.

  bench_report.py rss OUT.json -- COMMAND...   runs COMMAND, appends its peak RSS (from
                                               getrusage(RUSAGE_CHILDREN)) and its JSON output
  bench_report.py report DIR                   DIR holds advaug.jsonl, pytorch.jsonl, rss.jsonl
"""
import json
import statistics
import os
import platform
import resource
import subprocess
import sys
import time

# Issue 15's targets, against the first PyTorch side (the newest torch 2.x from PyPI).
SPEED_TARGETS = {
    # (model, workload): [(PyTorch variant, minimum ratio)]
    ("mlp", "plain"): [("efficient", 1.3)],
    ("mlp", "seed-fgsm"): [("as-written", 2.0), ("efficient", 1.5)],
    ("mlp", "fgsm-rs"): [("efficient", 1.3)],
    ("mlp", "pgd7"): [("efficient", 1.3)],
    ("cnn", "plain"): [("efficient", 1.5)],
    ("cnn", "seed-fgsm"): [("efficient", 1.5)],
    ("cnn", "fgsm-rs"): [("efficient", 1.5)],
}
# "Every GEMM-heavy step >= 80% of its GEMM bound": the MLP's steps, whose time is the GEMMs'.
BOUND_TARGET = 80.0
GEMM_HEAVY = {"mlp"}
RSS_TARGET = 0.25  # advaug's peak RSS / PyTorch's
FULL_RUN_TARGET = 1.5  # PyTorch's seconds / advaug's for the full epoch of the seed's recipe
FAMILY_TARGET_PCT = 20.0  # issue 16: a family's worst-case step, % of the MLP's forward and backward
TRAINING = {"plain", "seed-fgsm", "fgsm-rs", "n-fgsm", "pgd7"}


def rss(out_path, command):
    """Runs command as a child; appends {its JSON line, child_max_rss_kib} to out_path."""
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stdout if proc.returncode else "")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    if proc.returncode != 0:
        sys.exit(f"bench_report.py rss: {' '.join(command)} exited with {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"bench_report.py rss: {' '.join(command)} printed no JSON result")
    obj = json.loads(lines[-1])
    obj["child_max_rss_kib"] = peak
    with open(out_path, "a") as f:
        f.write(json.dumps(obj) + "\n")


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def median_row(rows):
    """The row with the median samples/s (the lower middle one of an even count), or None."""
    if not rows:
        return None
    return sorted(rows, key=lambda r: r["samples_per_s"])[(len(rows) - 1) // 2]


def verdict(ok):
    return "PASS" if ok else "FAIL"


def describe_torch(meta):
    if not meta:
        return "not run"
    k = meta.get("kernels", {})
    libs = ", ".join(v for v in (k.get("mkl"), k.get("onednn"), k.get("blas") and f"BLAS_INFO={k['blas']}") if v)
    return (f"torch {meta.get('torch', '?')} ({meta.get('python', '?')}), numpy {meta.get('numpy', '?')}; "
            f"kernels: {libs or '?'}; CPU capability {k.get('cpu_capability', '?')}; "
            f"GOMP_SPINCOUNT={meta.get('gomp_spincount')}, torch threads {meta.get('threads')}")


def machine(meta_a, metas_p, load_start, version):
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True).stdout.strip()
        except OSError:
            return ""
    model = sh("lscpu | sed -n 's/^Model name:[[:space:]]*//p'") or platform.processor()
    flags = sh("grep -m1 '^flags' /proc/cpuinfo")
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
              "amx_tile", "amx_bf16", "amx_int8")
    simd = ", ".join(f for f in wanted if f" {f} " in flags + " ") or "?"
    openblas = sh("dpkg-query -W -f '${Version}' libopenblas0-pthread 2>/dev/null || true")
    dnnl = sh("dpkg-query -W -f '${Version}' libdnnl2 2>/dev/null || true")
    backend = meta_a.get("backend")
    rows = [
        ("CPU", f"{model}; flags: {simd}"),
        ("cores", f"{os.cpu_count()} online; the benchmark uses 2 threads"),
        ("advaug kernels", f"{meta_a.get('kernels') or meta_a.get('openblas', '?')}"
         + (f" (ADVAUG_BACKEND {backend})" if backend else "")
         + f"; Debian packages: OpenBLAS {openblas or 'not installed'}, oneDNN {dnnl or 'not installed'}"),
    ]
    for side, meta in metas_p.items():
        rows.append((side, describe_torch(meta)))
    return rows + [
        ("compiler", sh("c++ --version | head -1")),
        ("inputs", meta_a.get("inputs", "?")),
        ("load average", f"{load_start or '?'} at the start, " + sh("cut -d' ' -f1-3 /proc/loadavg")
         + " at the end (1, 5, 15 min; 2 or more means other work shared the cores)"),
        ("advaug", version or "?"),
        ("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
    ]


def report(folder):
    adv = read_jsonl(os.path.join(folder, "advaug.jsonl"))
    pt = read_jsonl(os.path.join(folder, "pytorch.jsonl"))
    rss_runs = read_jsonl(os.path.join(folder, "rss.jsonl"))
    meta_a = next((r for r in adv if r.get("table") == "meta"), {})
    metas_p = {}
    for r in pt:
        if r.get("table") == "meta" and r["side"] not in metas_p:
            metas_p[r["side"]] = r
    # The targets are against the first side bench.sh ran: the newest torch 2.x, or Debian's
    # torch with --no-pypi.
    main_side = next(iter(metas_p), "pytorch")
    other_sides = [side for side in metas_p if side != main_side]
    smoke = meta_a.get("smoke", False)
    failures = []
    out = []
    w = out.append

    w("# advaug versus PyTorch" + (" (SMOKE RUN: one step each, the figures mean nothing)" if smoke else ""))
    w("")
    w("| machine | |")
    w("| --- | --- |")
    def text(name):
        path = os.path.join(folder, name)
        return open(path).read().strip() if os.path.exists(path) else ""
    for k, v in machine(meta_a, metas_p, text("load_start"), text("version")):
        w(f"| {k} | {v} |")
    w("")
    torch_major = str(metas_p.get(main_side, {}).get("torch", "?")).split(".")[0]
    if torch_major != "2":
        w(f"**The targets below are checked against torch {metas_p.get(main_side, {}).get('torch', '?')}, "
          "not the newest torch 2.x a user would install (run without --no-pypi).**")
        w("")

    def pyt(table, model, workload, variant, batch=None, width=None, side=None):
        side = side or main_side
        rows = [r for r in pt
                if (r.get("side"), r.get("table"), r.get("model"), r.get("workload"), r.get("variant"))
                == (side, table, model, workload, variant) and "samples_per_s" in r
                and (batch is None or r.get("batch") == batch) and (width is None or r.get("width") == width)]
        return median_row(rows)

    # With --rounds N each workload was measured N times, the sides alternating: the
    # round with the median speed stands for it, so a burst of load from elsewhere that hit
    # one side in one round does not decide a ratio. Allocations: the most seen in any round.
    main_rows = []
    for r in (r for r in adv if r.get("table") == "main"):
        if all((m["model"], m["workload"]) != (r["model"], r["workload"]) for m in main_rows):
            same = [x for x in adv if x.get("table") == "main" and (x["model"], x["workload"]) == (r["model"], r["workload"])]
            chosen = dict(median_row(same))
            chosen["allocations_per_step"] = max(x["allocations_per_step"] for x in same)
            chosen["rounds"] = len(same)
            main_rows.append(chosen)
    rounds = max((r["rounds"] for r in main_rows), default=1)

    def bound_gflops(r):
        return r.get("gemm_gflops", r.get("openblas_gflops", 0.0))

    # The main table.
    batch = next((r["batch"] for r in adv if r.get("table") == "main"), 128)
    w(f"## Samples per second at batch {batch}, 2 threads ("
      + ("one step each" if smoke else "median of 7 repeats")
      + (f"; the median of {rounds} rounds, advaug and PyTorch alternating" if rounds > 1 else "") + ")")
    w("")
    w(f"Ratios and targets are against `{main_side}` "
      f"(torch {metas_p.get(main_side, {}).get('torch', '?')}). torch.compile and the other sides are reported, "
      "not targets; `error` means torch.compile failed on that step here (the log is in bench.sh's --out folder).")
    w("")
    extra = "".join(f" | {side} efficient" for side in other_sides)
    w(f"| workload | advaug | PyTorch as written | PyTorch efficient | torch.compile{extra} | x as written "
      "| x efficient | x compiled | speed target | GFLOP/s advaug / GEMM | % of GEMM bound | bound target "
      "| allocs/step | alloc target |")
    w("| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(other_sides)
      + " ---: | ---: | ---: | --- | ---: | ---: | --- | ---: | --- |")
    for r in main_rows:
        model, name = r["model"], r["workload"]
        aw = pyt("main", model, name, "as-written")
        ef = pyt("main", model, name, "efficient")
        co = pyt("main", model, name, "compiled")
        co_error = next((x for x in pt if x.get("variant") == "compiled" and x.get("model") == model
                         and x.get("workload") == name and "error" in x), None)
        ratio_aw = r["samples_per_s"] / aw["samples_per_s"] if aw else None
        ratio_ef = r["samples_per_s"] / ef["samples_per_s"] if ef else None
        ratio_co = r["samples_per_s"] / co["samples_per_s"] if co else None
        cells = []
        for variant, target in SPEED_TARGETS.get((model, name), []):
            ratio = ratio_aw if variant == "as-written" else ratio_ef
            if ratio is None:
                cells.append(f">= {target}x {variant}: not measured")
                failures.append(f"{model}/{name}: PyTorch {variant} not measured, target >= {target}x")
                continue
            ok = ratio >= target
            cells.append(f">= {target}x {variant}: {verdict(ok)}")
            if not ok:
                failures.append(f"{model}/{name}: {ratio:.2f}x PyTorch {variant}, target >= {target}x")
        bound_cell = ""
        if model in GEMM_HEAVY and name != "n-fgsm":
            ok = r["gemm_bound_pct"] >= BOUND_TARGET
            bound_cell = f">= {BOUND_TARGET:.0f}%: {verdict(ok)}"
            if not ok:
                failures.append(f"{model}/{name}: {r['gemm_bound_pct']:.1f}% of the GEMM bound, target >= {BOUND_TARGET:.0f}%")
        alloc_cell = ""
        if name in TRAINING:
            ok = r["allocations_per_step"] == 0
            alloc_cell = f"0: {verdict(ok)}"
            if not ok:
                failures.append(f"{model}/{name}: {r['allocations_per_step']:g} heap allocations per step, target 0")
        compiled_cell = fmt(co and co["samples_per_s"]) if co or not co_error else "error"
        others = "".join(f" | {fmt((o := pyt('main', model, name, 'efficient', side=side)) and o['samples_per_s'])}"
                         for side in other_sides)
        w(f"| {model}/{name} | {fmt(r['samples_per_s'])} | {fmt(aw and aw['samples_per_s'])} "
          f"| {fmt(ef and ef['samples_per_s'])} | {compiled_cell}{others} | {fmt(ratio_aw, 2)} | {fmt(ratio_ef, 2)} "
          f"| {fmt(ratio_co, 2)} | {'; '.join(cells)} "
          f"| {r['gflops']:.1f} / {bound_gflops(r):.1f} | {r['gemm_bound_pct']:.1f} "
          f"({fmt(r['gemm_bound_samples_per_s'])}/s) | {bound_cell} | {r['allocations_per_step']:g} | {alloc_cell} |")
    w("")

    # Peak RSS.
    w("## Peak RSS of a full training run (child process, getrusage(RUSAGE_CHILDREN))")
    w("")
    w("| run | images x epochs | advaug peak RSS | PyTorch peak RSS | advaug / PyTorch | RSS target | advaug s "
      "| PyTorch s | x PyTorch | time target |")
    w("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |")
    keys = []
    for r in rss_runs:
        key = (r["model"], r["workload"])
        if key not in keys:
            keys.append(key)
    for key in keys:
        a = next((r for r in rss_runs if r["side"] == "advaug" and (r["model"], r["workload"]) == key), None)
        p = next((r for r in rss_runs if r["side"] == main_side and (r["model"], r["workload"]) == key), None)
        ratio = a["child_max_rss_kib"] / p["child_max_rss_kib"] if a and p else None
        cell = "-"
        if ratio is not None:
            ok = ratio <= RSS_TARGET
            cell = f"<= 1/4: {verdict(ok)}"
            if not ok:
                failures.append(f"{key[0]}:{key[1]} full run: advaug RSS is {ratio:.2f} of PyTorch's, target <= 0.25")
        speed = p["seconds"] / a["seconds"] if a and p and a["seconds"] > 0 else None
        time_cell = ""
        if key == ("mlp", "seed-fgsm") and speed is not None:
            ok = speed >= FULL_RUN_TARGET
            time_cell = f">= {FULL_RUN_TARGET}x: {verdict(ok)}"
            if not ok:
                failures.append(f"{key[0]}:{key[1]} full run: {speed:.2f}x PyTorch's speed, target >= {FULL_RUN_TARGET}x")
        some = a or p
        w(f"| {key[0]}:{key[1]} | {some['samples']:,} x {some['epochs']} "
          f"| {fmt(a and a['child_max_rss_kib'] / 1024, 1)} MiB | {fmt(p and p['child_max_rss_kib'] / 1024, 1)} MiB "
          f"| {fmt(ratio, 3)} | {cell} | {fmt(a and a['seconds'], 1)} | {fmt(p and p['seconds'], 1)} "
          f"| {fmt(speed, 2)} | {time_cell} |")
    if not keys:
        w("| (not run) | | | | | | | | | |")
    w("")

    # Scaling.
    for table, title, key in (("batch", "Scaling over the batch size (plain and FGSM-RS training steps)", "batch"),
                              ("width", "Scaling over the MLP's hidden width (784-w-w-10, batch 128)", "width")):
        rows = [r for r in adv if r.get("table") == table]
        if not rows:
            continue
        w(f"## {title}")
        w("")
        w("| model | workload | batch | width | advaug samples/s | PyTorch samples/s | x PyTorch "
          "| advaug GFLOP/s | GEMM GFLOP/s | % of GEMM bound | allocs/step |")
        w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            p = pyt(table, r["model"], r["workload"], "efficient", batch=r["batch"],
                    width=r["width"] if r["model"] == "mlp" else None)
            ratio = r["samples_per_s"] / p["samples_per_s"] if p else None
            width = r["width"] if r["model"] == "mlp" else "-"
            w(f"| {r['model']} | {r['workload']} | {r['batch']} | {width} | {fmt(r['samples_per_s'])} "
              f"| {fmt(p and p['samples_per_s'])} | {fmt(ratio, 2)} | {r['gflops']:.1f} | {bound_gflops(r):.1f} "
              f"| {r['gemm_bound_pct']:.1f} | {r['allocations_per_step']:g} |")
        w("")

    # Issue 16's row: each perturbation family's worst-case step against the MLP's forward and
    # backward, measured back to back in the same advaug run (the median round of each).
    fam = [r for r in adv if r.get("table") == "families"]
    family_failures = []
    if fam:
        base_rows = [r for r in fam if r["model"] == "mlp"]
        w(f"## Perturbation families: one worst-case step at batch {base_rows[0]['batch'] if base_rows else '?'} "
          "against the MLP's forward and backward (issue 16)")
        w("")
        w("A step's family work is apply (the perturbed batch) and vjp_theta (the gradient in theta), "
          "apply alone for a gradient-free family; the MLP's is forward, input and parameter gradients "
          "(784-256-256-10), on the same batch and threads. Target: at most 20 %.")
        w("")
        w("| work | ms per step | % of the MLP's forward and backward | target |")
        w("| --- | ---: | ---: | --- |")
        base_ms = statistics.median(r["step_ms"] for r in base_rows) if base_rows else None
        w(f"| MLP forward and backward | {fmt(base_ms, 3)} | | |")
        names = []
        for r in fam:
            if r["model"] == "family" and r["workload"] not in names:
                names.append(r["workload"])
        for name in names:
            ms = statistics.median(r["step_ms"] for r in fam if r["model"] == "family" and r["workload"] == name)
            pct = 100 * ms / base_ms if base_ms else None
            ok = pct is not None and pct <= FAMILY_TARGET_PCT
            if not ok:
                family_failures.append(f"{name}: {fmt(pct, 1)} % of the MLP's forward and backward, target <= {FAMILY_TARGET_PCT:.0f} %")
            w(f"| {name} | {ms:.3f} | {fmt(pct, 1)} | <= {FAMILY_TARGET_PCT:.0f} %: {verdict(ok)} |")
        w("")
        w("## Issue 16's target")
        w("")
        if family_failures:
            w(f"{len(family_failures)} famil{'y' if len(family_failures) == 1 else 'ies'} over the target:")
            w("")
            for f in family_failures:
                w(f"- FAIL {f}")
        else:
            w("Every family is within the target.")
        w("")

    w("## Issue 15's targets")
    w("")
    if failures:
        w(f"{len(failures)} target(s) not met:")
        w("")
        for f in failures:
            w(f"- FAIL {f}")
    else:
        w("All targets measured in this run are met.")
    print("\n".join(out))
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "rss" and argv[3] == "--":
        rss(argv[2], argv[4:])
        return 0
    if len(argv) == 3 and argv[1] == "report":
        return report(argv[2])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
