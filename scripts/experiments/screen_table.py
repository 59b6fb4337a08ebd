"""The recipe screen's table over training seeds: variant NAME and its replicates NAME-t1, NAME-t2
(gan_recipe_screen.sh's naming) grouped; per run the mean over sampling seeds, then the mean and
sd over training runs. Usage: python scripts/experiments/screen_table.py OUT/results/val [CLASS ...]"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

METRICS = ("fid", "kid", "precision", "recall", "fd_cxr", "kid_cxr", "precision_cxr", "recall_cxr")


def main(folder: Path, classes: list[str]) -> None:
    runs: dict[str, list[tuple[str, dict]]] = {}
    for f in sorted(folder.glob("*-*min.json")):
        name = re.sub(r"-\d+min$", "", f.stem)
        runs.setdefault(re.sub(r"-t\d+$", "", name), []).append((name, json.loads(f.read_text())))
    print(f"{folder}: mean ± sd over training runs (each the mean over its sampling seeds)\n")
    print("| variant | runs | steps | class | n real | " + " | ".join(METRICS) + " |")
    print("|---|---:|---:|---|---:|" + "---:|" * len(METRICS))
    for variant, items in runs.items():
        for c in classes:
            cells = []
            for k in METRICS:
                vals = [r["mean"][c][k] for _, r in items if r.get("mean", {}).get(c, {}).get(k) is not None]
                if not vals:
                    cells.append("-")
                    continue
                sd = f" ± {statistics.stdev(vals):.3g}" if len(vals) > 1 else ""
                cells.append(f"{statistics.fmean(vals):.3g}{sd}")
            n_real = items[0][1]["rows"].get(c, {}).get("n_real", "-")
            steps = ",".join(str(r.get("steps", "?")) for _, r in items)
            print(f"| {variant} | {len(items)} | {steps} | {c} | {n_real} | " + " | ".join(cells) + " |")
    per_run = {name: r["mean"].get(classes[0], {}).get("fd_cxr") for items in runs.values() for name, r in items}
    print(f"\nper run, {classes[0]} FD_cxr: " + ", ".join(f"{k} {v:.1f}" for k, v in per_run.items() if v is not None))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or ["No Finding", "all"])
