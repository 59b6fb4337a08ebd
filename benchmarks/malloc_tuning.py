"""Effect of cxraug's glibc malloc settings (cxraug/malloc.py) on CPU tensor work.

Each workload runs in a fresh subprocess, once with glibc's defaults (CXRAUG_MALLOC=default)
and once with the settings the CLI applies, interleaved over rounds so that load from other
programs hits both alike. Printed: median wall time, minor page faults and system CPU time
per side, and the ratio default / tuned (above 1: the tuned side is faster).

  sample   diffusion plugin, default config (2.47M-parameter UNet, 32 px), DPM-Solver++ 20
           steps, guidance 2, 64 images (untrained weights: the cost does not depend on them)
  train    cgan plugin, default config, 64 px, batch 64, 15 training steps

    .venv/bin/python benchmarks/malloc_tuning.py             # both workloads, 3 rounds
    .venv/bin/python benchmarks/malloc_tuning.py --rounds 1 --workloads sample
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def child_code(workload: str) -> str:
    return f"""
import json, os, resource, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from cxraug.malloc import tune_malloc
applied = tune_malloc()
import torch
torch.set_num_threads(int(os.environ.get("CXRAUG_THREADS", os.cpu_count() or 1)))
from accelerate import Accelerator
from cxraug import registry
from cxraug.generator import DataSpec
classes = tuple(f"c{{i}}" for i in range(15))
workload = {workload!r}
torch.manual_seed(0)
if workload == "sample":
    cls = registry.get("diffusion")
    gen = cls(cls.Config(), DataSpec(classes=classes, size=32), seed=0)
    opts = gen.parse_sample_options({{"sampler": "dpmsolver++", "steps": 20, "guidance": 2}})
    labels = torch.arange(64) % 15
    gen.sample(labels[:4], generator=torch.Generator().manual_seed(1), options=opts)  # warm-up
    t0 = time.perf_counter(); r0 = resource.getrusage(resource.RUSAGE_SELF)
    gen.sample(labels, generator=torch.Generator().manual_seed(0), options=opts)
else:
    cls = registry.get("cgan")
    gen = cls(cls.Config(), DataSpec(classes=classes, size=64), seed=0)
    acc = Accelerator(cpu=True)
    gen.setup(acc)
    x = torch.rand(64, 1, 64, 64) * 2 - 1
    y = torch.arange(64) % 15
    gen.train_step(x, y, acc)  # warm-up
    t0 = time.perf_counter(); r0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(15):
        gen.train_step(x, y, acc)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"applied": applied, "wall": time.perf_counter() - t0,
                  "minflt": r1.ru_minflt - r0.ru_minflt, "sys": r1.ru_stime - r0.ru_stime}}))
"""


def run(workload: str, tuned: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "CXRAUG_MALLOC"}
    if not tuned:
        env["CXRAUG_MALLOC"] = "default"
    out = subprocess.run([sys.executable, "-c", child_code(workload)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["applied"] != tuned:
        raise SystemExit(f"{workload}: tuning applied={result['applied']}, expected {tuned} (not glibc?)")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="sample,train")
    args = ap.parse_args()
    report = {}
    for workload in args.workloads.split(","):
        sides: dict[str, list[dict]] = {"default": [], "tuned": []}
        for _ in range(args.rounds):
            sides["default"].append(run(workload, tuned=False))
            sides["tuned"].append(run(workload, tuned=True))
        med = {
            s: {k: statistics.median(r[k] for r in rs) for k in ("wall", "minflt", "sys")} for s, rs in sides.items()
        }
        report[workload] = {**med, "speedup": med["default"]["wall"] / med["tuned"]["wall"], "rounds": args.rounds}
        d, t = med["default"], med["tuned"]
        print(
            f"{workload}: wall {d['wall']:.1f}s -> {t['wall']:.1f}s (default/tuned {report[workload]['speedup']:.2f}x), "
            f"minor faults {d['minflt']:,.0f} -> {t['minflt']:,.0f}, sys {d['sys']:.1f}s -> {t['sys']:.1f}s "
            f"(median of {args.rounds} interleaved rounds, {os.cpu_count()} cores)"
        )
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
