"""Rebuild the first tables of docs/results/fidelity.md: the reference classifier of
PneumoniaMNIST's partial file (No Finding rare) and what label fidelity and FD_cxr do with
real held-out images (the test split scored as if a generator had made it), as they are and
blurred, against the val images; the ceiling is the reference's recall on the val patients it
was not selected on (issue 21).

    python scripts/experiments/fidelity_page.py --out results/fidelity [--models resnet18,tiny]

Writes OUT/fidelity.json and prints the tables. Reruns reuse the prepared data and the
reference classifiers (their cache under OUT/cache).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
NPZ = ROOT.parent / "shared" / "data" / "medmnist" / "pneumoniamnist_partial.npz"


def blur(images: np.ndarray, passes: int) -> np.ndarray:
    """``passes`` of a 5-point box blur (each pixel and its 4 neighbours, edges replicated)."""
    x = images.astype(np.float64)
    for _ in range(passes):
        p = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
        x = (p[:, 1:-1, 1:-1] + p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]) / 5
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def test_source(data: Any, passes: int) -> Any:
    from cxraug.metrics.sources import FakeSource

    images, labels = np.asarray(data.images("test")), np.asarray(data.labels("test"))

    def draw(class_name: str, n: int, reporter: Any) -> np.ndarray:
        return blur(images[labels == data.classes.index(class_name)][:n], passes)

    return FakeSource(classes=list(data.classes), size=data.size, draw=draw, info={"real": "test", "blur": passes})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default="resnet18,tiny")
    args = ap.parse_args()
    data_dir = args.out / "pneumoniamnist_partial32"
    if not (data_dir / "dataset.json").is_file():
        if not NPZ.is_file():
            sys.exit(f"the partial PneumoniaMNIST file is not at {NPZ} (see ../shared/data/README.md)")
        cmd = [sys.executable, "-m", "cxraug", "prepare", "--source", "medmnist", "--npz", str(NPZ), "--size", "32"]
        subprocess.run([*cmd, "--out", str(data_dir)], check=True)

    from cxraug.data.prepared import open_prepared
    from cxraug.metrics.features import load_feature_extractor
    from cxraug.metrics.reference import ReferenceConfig, load_reference
    from cxraug.metrics.score import ScoreConfig, score

    data = open_prepared(data_dir)
    extractor = load_feature_extractor(None, "auto")  # score's real side needs the FID network too
    out: dict[str, Any] = {"data": str(data_dir), "models": {}}
    for model in args.models.split(","):
        ref_cfg = ReferenceConfig(model=model)
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        reference = load_reference(data, ref_cfg, args.out / "cache", "cpu")
        cost = {"wall_s": round(time.perf_counter() - t_wall, 1), "cpu_s": round(time.process_time() - t_cpu, 1)}
        rows = {}
        for passes in (0, 1, 3):
            cfg = ScoreConfig(split="val", n=10**6, metrics=["fidelity", "fd_cxr"], memorization=False,
                              reference=ref_cfg, cache_dir=args.out / "cache")  # fmt: skip
            res = score(data, test_source(data, passes), cfg, extractor, reference=reference)
            keep = ("n_real", "n_fake", "fd_cxr", "kid_cxr", "fidelity", "fidelity_n", "real_fidelity",
                    "real_fidelity_n", "fidelity_ratio")  # fmt: skip
            rows[str(passes)] = {r["class"]: {k: r.get(k) for k in keep} for r in res.rows}
        out["models"][model] = {"reference": reference.describe(), "load_cost": cost, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fidelity.json").write_text(json.dumps(out, indent=1, default=str))
    print(report(out))


def report(out: dict[str, Any]) -> str:
    lines = ["| reference | class | images | FD_cxr | KID_cxr | fidelity | ceiling (held-out val patients) |",
             "|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for model, m in out["models"].items():
        for c in ("No Finding", "Pneumonia"):
            for passes, what in (("0", "test"), ("1", "blurred x1"), ("3", "blurred x3")):
                r = m["rows"][passes].get(c, {})
                ceiling = f"{r['real_fidelity']:.3f} (n={r['real_fidelity_n']})" if passes == "0" else ""
                lines.append(
                    f"| {model} | {c} | {what} ({r.get('n_fake')}) | {_g(r.get('fd_cxr'))} | {_g(r.get('kid_cxr'))} | "
                    f"{_g(r.get('fidelity'), 3)} | {ceiling} |"
                )
    for model, m in out["models"].items():
        ref = m["reference"]
        lines.append(
            f"\n{model}: best epoch {ref['selected_on'].get('best_epoch')} on {ref['selected_on']['n']} val images, "
            f"macro AUROC on the {ref['ceiling_on']['n']} held-out val images {ref['val_macro_auroc']:.3f}; "
            f"trained in {ref['seconds_to_train']} s wall (this load: {m['load_cost']})"
        )
    return "\n".join(lines)


def _g(v: float | None, d: int = 3) -> str:
    return "-" if v is None else f"{v:.{d}g}" if abs(v) < 100 else f"{v:,.0f}"


if __name__ == "__main__":
    main()
