"""The primary family (question.py) answered: per rare class, each synthetic arm against its
copy control and against the best baseline chosen on validation, in test AUROC; p-values
adjusted over this family only; and per (class, arm) the answer: "helped" only when it beats
both.

The best baseline is chosen from the *validation* predictions each run stored (mean over
seeds of the class's validation AUROC), so the test split decides nothing but the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from cxraug.benchmark.question import COPY
from cxraug.benchmark.statistics import ADJUSTMENTS, HELPED, HURT, NO_EVIDENCE, Stat, verdict
from cxraug.classify.scores import one_vs_rest_auroc

if TYPE_CHECKING:
    from cxraug.benchmark.plan import RunRecord


@dataclass(frozen=True)
class Comparison:
    class_name: str
    arm: str
    against: str  # COPY or BASELINE
    other: str | None  # the arm compared with (None: no baseline arm was run)
    diff: Stat  # test AUROC, arm minus other
    verdict: str

    def row(self) -> dict:
        return {"class": self.class_name, "arm": self.arm, "against": self.against, "other": self.other,
                "diff": self.diff, "verdict": self.verdict}  # fmt: skip


def best_baselines(
    records: list[RunRecord], baselines: list[str], classes: list[str], rare: list[int]
) -> dict[str, tuple[str, float]]:
    """Per rare class: the baseline arm with the highest mean validation AUROC of the class
    (the first in arm order on ties), and that AUROC."""
    out: dict[str, tuple[str, float]] = {}
    for c in rare:
        best: tuple[str, float] | None = None
        for arm in baselines:
            vals = [
                one_vs_rest_auroc(r.predictions["val_labels"], r.predictions["val_probs"], c)
                for r in records
                if r.arm == arm
            ]
            vals = [v for v in vals if not math.isnan(v)]
            if vals and (best is None or float(np.mean(vals)) > best[1]):
                best = (arm, float(np.mean(vals)))
        if best is not None:
            out[classes[c]] = best
    return out


def answer_primary(
    question: dict,
    best: dict[str, tuple[str, float]],
    diff_of,  # (arm, other, class name) -> Stat of the test AUROC difference, with p
    confidence: float,
    adjust: str,
) -> list[Comparison]:
    """Every declared comparison with its difference, its p adjusted over the family, and its verdict."""
    found: list[Comparison] = []
    for item in question.get("comparisons", []):
        name, arm = item["class"], item["arm"]
        other = item["other"] if item["against"] == COPY else best.get(name, (None, 0.0))[0]
        if other is None:
            d = Stat(math.nan, math.nan, math.nan, 0, reason="no baseline arm has validation predictions")
        else:
            d = diff_of(arm, other, name)
        found.append(Comparison(class_name=name, arm=arm, against=item["against"], other=other, diff=d, verdict=""))
    tested = [i for i, c in enumerate(found) if c.diff.p is not None and not c.diff.reason]
    adjusted = ADJUSTMENTS[adjust]([found[i].diff.p for i in tested])  # type: ignore[misc]
    for i, p in zip(tested, adjusted, strict=True):
        found[i] = replace(found[i], diff=replace(found[i].diff, p_adjusted=p))
    return [replace(c, verdict=verdict(c.diff, confidence, adjusted=True)) for c in found]


def comparison_word(verdict: str) -> str:
    """A primary comparison's verdict as the pages and the terminal say it."""
    return {HELPED: "better", HURT: "worse"}.get(verdict, verdict)


def arm_answers(primary: list[Comparison]) -> dict[tuple[str, str], str]:
    """Per (class, arm): HELPED when it beats every one of its comparisons (copy control and best
    baseline), HURT when it loses to one, else no evidence (or why there is no verdict)."""
    out: dict[tuple[str, str], str] = {}
    for key in dict.fromkeys((c.class_name, c.arm) for c in primary):
        verdicts = [c.verdict for c in primary if (c.class_name, c.arm) == key]
        if all(v == HELPED for v in verdicts):
            out[key] = HELPED
        elif any(v == HURT for v in verdicts):
            out[key] = HURT
        else:
            out[key] = next((v for v in verdicts if v.startswith("no verdict")), NO_EVIDENCE)
    return out


def family_size(primary: list[Comparison]) -> int:
    return sum(c.diff.p_adjusted is not None for c in primary)
