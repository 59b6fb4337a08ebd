"""Downstream deltas from a ``cxraug benchmark`` folder: per class, the paired difference
(arm minus the reference arm, usually ``real``) in AUROC, recall and F1 of every arm whose
synthetic set was made from one of the compared runs, matched through the set's provenance
(``synth`` records the run's resolved path and step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxraug.errors import UserError
from cxraug.fsutil import read_json

METRICS = ("auroc", "recall", "f1")


def _set_dir(value: str, bench: Path) -> Path | None:
    """A synthetic set named in the benchmark's config: absolute, or relative to where the
    benchmark may have been started (here, or beside its folder)."""
    p = Path(value)
    for cand in [p] if p.is_absolute() else [Path.cwd() / p, bench.parent / p, bench / p]:
        if (cand / "provenance.json").is_file():
            return cand
    return None


def benchmark_deltas(bench: Path, entries: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows ``{run, arm, class, metric, diff, low, high, ...}`` and notes on what did not match."""
    bench = Path(bench)
    if not (bench / "results.json").is_file():
        raise UserError(f"{bench} is not a benchmark folder (no results.json); make one with `cxraug benchmark`")
    res = read_json(bench / "results.json")
    if not isinstance(res, dict) or not isinstance(res.get("arms"), list):
        raise UserError(f"{bench / 'results.json'} does not look like a cxraug benchmark's results")
    by_path = {str(e.path.resolve()): e for e in entries}
    sets = (res.get("config") or {}).get("synthetic") or {}
    notes, matched = [], {}
    for name, value in sets.items():
        d = _set_dir(str(value), bench)
        if d is None:
            notes.append(f"benchmark synthetic set {name} ({value}) not found: its run cannot be matched")
            continue
        prov = read_json(d / "provenance.json")
        e = by_path.get(str(prov.get("run")))
        if e is None:
            continue
        matched[name] = e
        if prov.get("step") != e.meta.get("step"):
            notes.append(
                f"benchmark set {name} was synthesized at step {prov.get('step')} of {e.label}; "
                f"the compared export is step {e.meta.get('step')}"
            )
    reference = res.get("reference")
    rows = []
    arms = {a["name"]: a.get("synthetic") for a in res["arms"] if isinstance(a, dict)}
    for item in res.get("per_class_summary") or []:
        syn = arms.get(item.get("arm"))
        if syn not in matched:
            continue
        for m in METRICS:
            d = (item.get("diff") or {}).get(m) or {}
            rows.append(
                {"run": matched[syn].label, "arm": item["arm"], "reference": reference, "class": item.get("class"),
                 "metric": m, "diff": d.get("mean"), "low": d.get("low"), "high": d.get("high"),
                 "p_adjusted": d.get("p_adjusted"), "reason": d.get("reason") or ""}
            )  # fmt: skip
    if sets and not matched:
        notes.append(f"no synthetic set of the benchmark {bench} came from the compared runs")
    return rows, notes
