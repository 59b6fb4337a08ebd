"""Long mode of the kill-anywhere suite: SIGKILL each stage many times at random moments,
rerun it as a user would, and check the result equals a straight run (tests/killsuite.py).

Prints one JSON object with, per stage, the kills made and survived and every problem seen;
docs/reliability.md gives the figures of one such run.

    nice -n 19 python benchmarks/kill_anywhere.py [--kills 20] [--stages prepare,synth] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import killsuite as ks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20, help="kills per stage")
    ap.add_argument("--stages", default=",".join(ks.STAGES), help="comma-separated stages")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cxraug-kill-"))
    rng = random.Random(args.seed)
    t_start = time.perf_counter()
    b = ks.make_inputs(work / "inputs", ks.cli_subprocess)
    report: dict = {"kills_per_stage": args.kills, "seed": args.seed, "stages": {}}
    for name in args.stages.split(","):
        stage = ks.STAGES[name]
        reference, span = ks.straight_subprocess(stage, b, work / f"{name}-straight")
        trials = []
        for k in range(args.kills):
            trial = ks.kill_once(stage, b, work / f"{name}-{k:03d}", reference, span * 0.95, rng, ks.cli_subprocess)
            trials.append(trial)
            shutil.rmtree(work / f"{name}-{k:03d}", ignore_errors=True)
            print(f"{name} {k + 1}/{args.kills}: kill at {trial.kill_at_s} s, reruns {trial.reruns}, "
                  f"{'ok' if trial.survived else trial.problems}", file=sys.stderr, flush=True)  # fmt: skip
        killed = [t for t in trials if t.kill_at_s is not None]
        report["stages"][name] = {
            "straight_write_s": round(span, 2),
            "trials": len(trials),
            "killed": len(killed),
            "killed_survived": sum(t.survived for t in killed),
            "finished_before_kill": len(trials) - len(killed),
            "all_survived": sum(t.survived for t in trials),
            "reruns": sum(t.reruns for t in trials),
            "problems": [p for t in trials for p in t.problems],
        }
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
