"""The benchmark's answer in words: did synthetic data help the rare classes, by how much, with
its interval. Shared by summary.md / summary.html, the terminal and the study page.

A number without an interval is shown bare; why it has none is said once: for the whole
report when there are too few seeds, once per class when the class has too few test images.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cxraug.benchmark.aggregate import images
from cxraug.benchmark.statistics import ADJUSTMENT_NAMES, HELPED, HURT, Stat
from cxraug.tables import Cell

if TYPE_CHECKING:
    from cxraug.benchmark.aggregate import BenchmarkReport


def stat_cell(s: Stat, signed: bool = False, digits: int = 3) -> Cell:
    """The mean with its interval apart (a page shows ``mean [low, high]``, the terminal the
    interval under it), or the bare mean where there is none (the reason is said elsewhere, once)."""
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    if math.isnan(s.mean):  # undefined: no seed, or no test image
        return Cell("n/a")
    if not s.has_interval:
        return Cell(fmt.format(s.mean))
    return Cell(fmt.format(s.mean), f"[{fmt.format(s.low)}, {fmt.format(s.high)}]")


def value(s: Stat, signed: bool = False, digits: int = 3) -> str:
    """``mean [low, high]``, or the bare mean where there is no interval, in a line of text."""
    return stat_cell(s, signed, digits).page()


def shared_reason(report: BenchmarkReport) -> str:
    """Why no number of the report has an interval (too few seeds), or "" when they can."""
    for metrics in report.arm_summary.values():
        for m, s in metrics.items():
            if m != "seconds" and s.reason:
                return s.reason
    return ""


def class_reason(report: BenchmarkReport, name: str) -> str:
    """Why this class's numbers have no interval when the class itself is the cause (too few
    test images), else ""."""
    arm = report.reference or report.arms[0].name
    reason = report.class_summary[(arm, name)]["auroc"].reason
    return "" if reason == shared_reason(report) else reason


def no_verdicts_reason(report: BenchmarkReport) -> str | None:
    """Why there is not a single verdict, in a few words; None when there are verdicts."""
    cfg = report.plan.cfg
    if report.reference is None:
        return f"no reference arm ({cfg.reference}) was run"
    if not report.rare:
        return "no rare class"
    if not any(a.name != report.reference for a in report.arms):
        return f"no arm besides {report.reference}"
    if report.families.get("auroc", 0):
        return None
    if shared := shared_reason(report):
        return shared
    few = ", ".join(f"{report.classes[c]} {report.n_test(report.classes[c])}" for c in report.rare)
    return f"every rare class has fewer than {cfg.min_test_images} positive test images: {few}"


def _class_header(report: BenchmarkReport, c: int) -> str:
    name = report.classes[c]
    return f"**{name}** ({images(int(report.train_counts[c]), 'real training')}, {images(report.n_test(name), 'test')})"


def _mde(diffs: list[Stat]) -> str:
    found = [d.mde for d in diffs if d.mde is not None and not math.isnan(d.mde)]
    if not found:
        return ""
    lo, hi = min(found), max(found)
    about = f"{lo:.3f}" if hi - lo < 0.005 else f"{lo:.3f} to {hi:.3f}"
    return f"its test images could detect a difference in AUROC of about {about} (80% power)"


def _verdict_words(v: dict) -> str:
    d = v["diff"]
    p = "" if d.p_adjusted is None else f" (adjusted p {d.p_adjusted:.3f})"
    return {HELPED: "**helped**", HURT: "**hurt**"}.get(v["verdict"], v["verdict"]) + p


def lead(report: BenchmarkReport) -> str:
    """One or two sentences: the answer, with the size of the effect and its interval."""
    why = no_verdicts_reason(report)
    auroc = report.verdicts("auroc")
    synthetic = [v for v in auroc if v["synthetic"]]
    if report.reference is None or not report.rare:
        return f"Nothing to answer: {why}."
    if not synthetic:
        return f"No synthetic arm was run; the other arms against {report.reference} are below."
    if why:
        return f"**No verdicts** ({why}); the differences below are point estimates without intervals."
    tested = [v for v in synthetic if v["diff"].has_interval]
    n = report.families.get("auroc", 0)
    adj = f"{ADJUSTMENT_NAMES[report.plan.cfg.adjust]}-adjusted over the {n} comparisons of every arm with {report.reference}"
    helped = [v for v in tested if v["verdict"] == HELPED]
    hurt = [v for v in tested if v["verdict"] == HURT]
    if helped:
        text = "**Yes**: " + "; ".join(
            f"{v['arm']} helped {v['class']} (Δ AUROC {value(v['diff'], signed=True)})" for v in helped
        )
        text += f" ({adj})."
    else:
        best = max(tested, key=lambda v: v["diff"].mean)
        text = (
            f"**No evidence that synthetic data helps** ({adj}): the largest gain is {best['arm']} on "
            f"{best['class']}, Δ AUROC {value(best['diff'], signed=True)}."
        )
    if hurt:
        text += " It hurt: " + "; ".join(
            f"{v['arm']} on {v['class']} (Δ AUROC {value(v['diff'], signed=True)})" for v in hurt
        )
        text += "."
    return text


def class_lines(report: BenchmarkReport) -> list[tuple[str, list[str]]]:
    """Per rare class: a header (class, images, detectable difference) and one line per arm
    (synthetic arms first) with its paired differences and verdicts; a class without an
    interval gets one line with its estimates and the reason once."""
    ref = report.reference
    if ref is None:
        return []
    f1 = {(v["arm"], v["class"]): v for v in report.verdicts("f1")}
    out = []
    for c in report.rare:
        name = report.classes[c]
        rows = sorted((v for v in report.verdicts("auroc") if v["class"] == name), key=lambda v: not v["synthetic"])
        if not rows:
            continue
        header = _class_header(report, c)
        detect = _mde([v["diff"] for v in rows])
        if not rows[0]["diff"].has_interval:
            reason = class_reason(report, name)
            est = ", ".join(f"{v['arm']} {value(v['diff'], signed=True)}" for v in rows)
            why = f"no verdict ({reason}); " if reason else ""
            out.append((f"{header}: {why}Δ AUROC vs {ref}: {est}" + (f"; {detect}" if detect else ""), []))
            continue
        lines = [
            f"{v['arm']} vs {ref}: Δ AUROC {value(v['diff'], signed=True)} → {_verdict_words(v)}; "
            f"Δ F1 {value(f1[(v['arm'], name)]['diff'], signed=True)} → {_verdict_words(f1[(v['arm'], name)])}"
            for v in rows
        ]
        out.append((f"{header}" + (f"; {detect}" if detect else "") + ":", lines))
    return out


def answer_json(report: BenchmarkReport) -> dict:
    """The answer as results.json stores it (Markdown marks kept), for pages built later."""
    return {
        "lead": lead(report),
        "classes": [{"header": h, "lines": lines} for h, lines in class_lines(report)],
        "no_verdicts_reason": no_verdicts_reason(report),
    }
