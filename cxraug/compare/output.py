"""The compare folder: compare.json, compare.csv, compare.md, one side-by-side PNG per class,
quality_vs_cost.png and compare.html, written together atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cxraug.classes import file_stem
from cxraug.compare import report
from cxraug.compare.core import CompareResult
from cxraug.compare.html import page
from cxraug.fsutil import TOOL, atomic_dir, write_json


def to_csv(result: CompareResult) -> str:
    cost = {r["label"]: r for r in result.runs}
    columns = report.csv_columns()
    extra = [
        k
        for r in [*result.rows, *result.replicates]
        for k, v in r.items()
        if k not in columns and not isinstance(v, dict)
    ]
    buf = io.StringIO()  # keys no column names (extra) after ours
    w = csv.DictWriter(buf, fieldnames=[*columns, *dict.fromkeys(extra)], extrasaction="ignore")
    w.writeheader()
    for row in [*result.rows, *result.replicates]:  # an arm of several runs has no one cost: its replicates do
        r = cost.get(row["run"])
        if r is None:
            w.writerow(row)
            continue
        t, s = r["training"], r["sampling"]
        w.writerow({**row, "plugin": r["plugin"], "step": r["step"], "train_steps_images": t["images_seen"],
                    "train_min": t["train_min"], "train_clock": t.get("clock", "wall"), "train_img_per_s": t["train_img_per_s"],
                    "export_parameters": r["export_parameters"], "sample_img_per_s": s["img_per_s"],
                    "sample_peak_mb": s["peak_mb"]})  # fmt: skip
    return buf.getvalue()


def images(result: CompareResult) -> dict[str, tuple[bytes, str]]:
    """File name -> (PNG bytes, alt text)."""
    from cxraug.compare.plots import quality_vs_cost, side_by_side

    out = {}
    for c, per_run in result.samples.items():
        if any(len(v) for v in per_run.values()):
            out[f"samples_{file_stem(c)}.png"] = (side_by_side(c, per_run, result.context["seed"]), f"{c}: samples")
    out["quality_vs_cost.png"] = (quality_vs_cost(result), "FID vs training minutes and vs sampling img/s")
    return out


def write_outputs(result: CompareResult, out: Path, overwrite: bool = False) -> Path:
    pngs = images(result)
    with atomic_dir(out, overwrite=overwrite) as stage:
        write_json(stage / "compare.json", {"tool": TOOL, **result.to_json(), "outputs": str(out)})
        (stage / "compare.csv").write_text(to_csv(result))
        for name, (data, _) in pngs.items():
            (stage / name).write_bytes(data)
        (stage / "compare.md").write_text(report.markdown(result, {n: alt for n, (_, alt) in pngs.items()}))
        (stage / "compare.html").write_text(page(result, pngs))
    return out
