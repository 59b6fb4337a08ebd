"""The benchmark's one primary question, declared before any training and stored in
benchmark.json: for each rare class, does each synthetic arm beat (a) its ``copy`` control and
(b) the best cheap baseline, chosen per class on the *validation* split? AUROC is the primary
metric; the family of these comparisons is what the multiple-comparison adjustment and the
word "helped" use. Everything else the report shows is exploratory.

A report whose question differs from the stored one (other rare classes, reference, arms,
confidence or adjustment, e.g. through ``--report-only --set``) is marked post hoc: the
question changed after the test results could be seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cxraug.benchmark.plan import Plan

PRIMARY_METRIC = "auroc"
COPY, BASELINE = "copy control", "best baseline"
BASELINE_RULE = "per rare class, the baseline arm with the highest validation AUROC of that class (mean over seeds)"


def declare(plan: Plan, rare: list[int]) -> dict:
    """The primary family of comparisons, from what is known before training."""
    controls = {n: a.name for a in plan.arms if a.kind == "copy" for n in a.controls_for}
    baselines = [a.name for a in plan.arms if a.is_baseline]
    comparisons = []
    for c in rare:
        for arm in plan.arms:
            # Plain synthetic arms that add images of this class: NAME+classic is exploratory
            # (its fair control would need classical augmentation too).
            if arm.kind != "synthetic" or arm.augment or not dict(arm.quota).get(c):
                continue
            name = plan.classes[c]
            if arm.name in controls:
                comparisons.append({"class": name, "arm": arm.name, "against": COPY, "other": controls[arm.name]})
            if baselines:
                comparisons.append({"class": name, "arm": arm.name, "against": BASELINE, "other": None})
    return {
        "metric": PRIMARY_METRIC,
        "rare_classes": [plan.classes[c] for c in rare],
        "baselines": baselines,
        "baseline_rule": BASELINE_RULE,
        "comparisons": comparisons,
        "adjust": plan.cfg.adjust,
        "confidence": plan.cfg.confidence,
        "reference": plan.cfg.reference,
    }


def changes(stored: dict | None, now: dict) -> list[str]:
    """What differs between the declared question and the one a report would answer now."""
    if not isinstance(stored, dict):
        return ["no question was declared before training"]
    out = []
    for key in ("rare_classes", "comparisons", "baselines", "adjust", "confidence", "reference", "metric"):
        if stored.get(key) != now.get(key):
            out.append(f"{key.replace('_', ' ')}: {_short(stored.get(key))} -> {_short(now.get(key))}")
    return out


def _short(v: object) -> str:
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return f"{len(v)} comparisons"
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."
