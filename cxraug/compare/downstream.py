"""Downstream deltas from a ``cxraug benchmark`` folder: per class, the paired difference
(arm minus the reference arm, usually ``real``) in AUROC, recall and F1 of every arm whose
synthetic set was made from one of the compared runs, matched through the set's provenance
(``synth`` records the run's resolved path and step). The folder is read by
:func:`cxraug.benchmark.results_file.load_results`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxraug.benchmark.results_file import Difference, load_results
from cxraug.fsutil import read_json

METRICS = ("auroc", "recall", "f1")
NO_DIFFERENCE = Difference(None, None, None, None, "")


def benchmark_deltas(bench: Path, entries: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows ``{run, arm, class, metric, diff, low, high, ...}`` and notes on what did not match."""
    res = load_results(bench)
    by_path = {str(e.path.resolve()): e for e in entries}
    notes, matched = [], {}
    for name, value in res.synthetic.items():
        d = res.set_dir(name)
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
    rows = []
    for item in res.per_class:
        syn = res.arm_sets.get(item.arm)
        if syn not in matched or not item.diff:  # no difference: the arm adds no image of the class
            continue
        for m in METRICS:
            d = item.diff.get(m, NO_DIFFERENCE)
            rows.append(
                {"run": matched[syn].label, "arm": item.arm, "reference": res.reference, "class": item.class_name,
                 "metric": m, "diff": d.mean, "low": d.low, "high": d.high, "p_adjusted": d.p_adjusted,
                 "reason": d.reason}
            )  # fmt: skip
    if res.synthetic and not matched:
        notes.append(f"no synthetic set of the benchmark {bench} came from the compared runs")
    return rows, notes
