"""Run-level parallelism of `cxraug benchmark` on this machine's CPU cores: the same arms and
seeds as P processes x 1 thread (`--spread runs` under torchrun) against 1 process x P
threads; the wall-time ratio is printed (target >= 1.6x for P=2) and the results checked.

Three legs on one prepared dataset, each into a fresh output folder:
  A  1 process, P threads              what the cores give one process today
  B  P processes x 1 thread, --spread runs (torchrun, gloo)
  C  1 process, 1 thread               the identity reference of B: the same threads per run
B must equal C bit for bit (a run's seed and data order do not depend on the process that
trained it); exit code 1 otherwise. A is compared too, but CPU kernels with P threads sum in
another order than with 1, so its largest difference from B is printed, not required to be 0.
The load average is printed before and after: the machine may be shared.

    python benchmarks/spread_speed.py [--data DIR] [--arms real,oversample] [--seeds 2]
        [--model resnet18] [--epochs 2] [--procs 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def leg(name: str, data: Path, out: Path, opts: list[str], procs: int, threads: int) -> dict:
    """One benchmark from scratch; its wall time including start-up, as a user would see it."""
    env = {**os.environ, "CXRAUG_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "COLUMNS": "160"}
    cli = ["-m", "cxraug", "benchmark", "--data", str(data), "--out", str(out), *opts]
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs), *cli]
        cmd += ["--spread", "runs"]
    else:
        cmd = [sys.executable, *cli]
    print(f"leg {name}: {procs} process(es) x {threads} thread(s) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"leg {name} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/*/result.json"))]
    return {
        "processes": procs,
        "threads_per_process": threads,
        "wall_s": round(wall, 1),
        "runs": len(runs),
        "train_s_per_run": [round(x["seconds"], 1) for x in runs],
        "by_process": sorted({x.get("process_index", 0) for x in runs}),
    }


def predictions(out: Path) -> dict[str, dict[str, np.ndarray]]:
    found = {}
    for path in sorted(out.glob("runs/*/*/predictions.npz")):
        with np.load(path) as z:
            found[path.parent.relative_to(out).as_posix()] = {k: z[k] for k in z.files}
    return found


def compare(a: Path, b: Path) -> dict:
    """Bit-identity of every stored array, and the largest test-probability difference."""
    pa, pb = predictions(a), predictions(b)
    if sorted(pa) != sorted(pb):
        return {"identical": False, "why": f"different runs: {sorted(pa)} vs {sorted(pb)}"}
    same = all(np.array_equal(v, pb[r][k]) for r in pa for k, v in pa[r].items())
    worst = max(float(np.abs(pa[r]["test_probs"] - pb[r]["test_probs"]).max()) for r in pa)
    return {"identical": same, "runs": len(pa), "max_abs_test_prob_diff": worst}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="prepared dataset (default: phantom, prepared here)")
    ap.add_argument("--arms", default="real,oversample")
    ap.add_argument("--seeds", default="2")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--procs", type=int, default=2, help="processes of leg B = threads of leg A")
    ap.add_argument("--phantom-n", type=int, default=800, help="images of the phantom set when --data is not given")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = ap.parse_args()
    if args.procs < 2:
        sys.exit("--procs must be at least 2")
    work = args.work or Path(tempfile.mkdtemp(prefix="cxraug-spread-"))
    data = args.data
    if data is None:
        from cxraug.data.prepare import PrepareConfig, prepare

        data = work / "phantom32"
        if not data.is_dir():
            prepare(PrepareConfig(source="phantom", out=data, size=32, n=args.phantom_n, workers=1, seed=0))
    opts = ["--arms", args.arms, "--seeds", args.seeds, "--set", f"model={args.model}", "--set",
            f"epochs={args.epochs}", "--set", "plots=false", "--set", "bootstrap_draws=100"]  # fmt: skip
    for name in ("A", "B", "C"):
        shutil.rmtree(work / name, ignore_errors=True)
    report: dict = {"data": str(data), "arms": args.arms, "seeds": args.seeds, "model": args.model,
                    "epochs": args.epochs, "cpu_count": os.cpu_count(), "load_avg_before": os.getloadavg()}  # fmt: skip
    report["A"] = leg("A", data, work / "A", opts, 1, args.procs)
    report["B"] = leg("B", data, work / "B", opts, args.procs, 1)
    report["C"] = leg("C", data, work / "C", opts, 1, 1)
    report["load_avg_after"] = os.getloadavg()
    report["ratio_A_over_B"] = round(report["A"]["wall_s"] / report["B"]["wall_s"], 2)
    report["ratio_C_over_B"] = round(report["C"]["wall_s"] / report["B"]["wall_s"], 2)
    report["B_equals_C"] = compare(work / "B", work / "C")
    report["B_vs_A"] = compare(work / "B", work / "A")
    print(json.dumps(report, indent=1))
    print(
        f"{args.procs} processes x 1 thread vs 1 process x {args.procs} threads, {report['A']['runs']} runs "
        f"({args.arms} x {args.seeds} seeds, {args.model}, {args.epochs} epochs): "
        f"{report['A']['wall_s']} s / {report['B']['wall_s']} s = {report['ratio_A_over_B']}x (target >= 1.6x); "
        f"bit-identical to one process at 1 thread: {report['B_equals_C']['identical']}"
    )
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    if not report["B_equals_C"]["identical"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
