"""The benchmark's answer in words: did the synthetic images of a rare class beat both their
copy control and the best cheap baseline (the primary question, declared before training), by
how much, with intervals. Shared by summary.md / summary.html, the terminal and the study page.

A number without an interval is shown bare; why it has none is said once: for the whole
report when there are too few seeds, once per class when the class has too few test images.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cxraug.benchmark.aggregate import images, patients
from cxraug.benchmark.primary import Comparison, comparison_word
from cxraug.benchmark.question import BASELINE, COPY
from cxraug.benchmark.statistics import ADJUSTMENT_NAMES, HELPED, HURT, NO_EVIDENCE, Stat
from cxraug.significance import format_p
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
    test patients), else ""."""
    arm = report.reference or report.arms[0].name
    reason = report.class_summary[(arm, name)]["auroc"].reason
    return "" if reason == shared_reason(report) else reason


def no_verdicts_reason(report: BenchmarkReport) -> str | None:
    """Why the primary family has not a single verdict, in a few words; None when it has."""
    if not report.rare:
        return "no rare class"
    if not any(a.kind == "synthetic" for a in report.arms):
        return "no synthetic arm"
    if not report.primary:
        return "no synthetic arm adds images of a rare class, or there is nothing to compare it with"
    if report.family_size:
        return None
    if shared := shared_reason(report):
        return shared
    reasons = sorted({c.diff.reason for c in report.primary if c.diff.reason})
    return "; ".join(reasons) or "no comparison has an interval"


def _class_header(report: BenchmarkReport, c: int) -> str:
    name = report.classes[c]
    n_img, n_pat = report.n_test(name), report.class_patients.get(name, 0)
    return (
        f"**{name}** ({images(int(report.train_counts[c]), 'real training')}; "
        f"{images(n_img, 'test')} of {patients(n_pat)})"
    )


def _mde(diffs: list[Stat]) -> str:
    found = [d.mde for d in diffs if d.mde is not None and not math.isnan(d.mde)]
    if not found:
        return ""
    lo, hi = min(found), max(found)
    about = f"{lo:.3f}" if hi - lo < 0.005 else f"{lo:.3f} to {hi:.3f}"
    return f"its test patients could detect a difference in AUROC of about {about} (80% power, unadjusted)"


def _against(c: Comparison, report: BenchmarkReport) -> str:
    if c.against == COPY:
        return f"its copy control ({c.other})"
    if c.other is None:
        return "the best baseline (none)"
    val = report.best_baseline.get(c.class_name, (None, math.nan))[1]
    return f"the best baseline ({c.other}, chosen on validation: AUROC {val:.3f})"


def _comparison_words(c: Comparison, report: BenchmarkReport) -> str:
    d = c.diff
    text = f"vs {_against(c, report)}: Δ AUROC {value(d, signed=True)}"
    if d.reason:
        return text + f" (no verdict: {d.reason})"
    p = "" if d.p_adjusted is None else f", adjusted p {format_p(d.p_adjusted)}"
    word = f"**{comparison_word(c.verdict)}**" if c.verdict in (HELPED, HURT) else "no evidence of a gain"
    if c.verdict == NO_EVIDENCE and d.has_interval:
        word += f" (the interval rules out a gain above {d.high:+.3f})"
    return f"{text}{p} → {word}"


def _answer_word(verdict: str) -> str:
    return {HELPED: "**helped**", HURT: "**hurt**"}.get(verdict, verdict)


def lead(report: BenchmarkReport) -> str:
    """One or two sentences: the answer to the declared question, with sizes and intervals."""
    post_hoc = ""
    if report.post_hoc:
        post_hoc = (
            f"**Post hoc: the question changed after the test results were seen** ({'; '.join(report.post_hoc)}). "
        )
    why = no_verdicts_reason(report)
    if not report.rare:
        return post_hoc + f"Nothing to answer: {why}."
    if not any(a.kind == "synthetic" for a in report.arms):
        return post_hoc + "No synthetic arm was run; the other arms are compared with the reference below."
    if why:
        return post_hoc + f"**No verdicts** ({why}); the differences below are estimates without a verdict."
    m = report.family_size
    adj = (
        f"{ADJUSTMENT_NAMES[report.plan.cfg.adjust]}-adjusted over the m = {m} primary comparisons "
        "declared before training"
    )
    helped = [k for k, v in report.answers.items() if v == HELPED]
    hurt = [k for k, v in report.answers.items() if v == HURT]

    def both(cls: str, arm: str) -> str:
        parts = [c for c in report.primary if (c.class_name, c.arm) == (cls, arm)]
        return "; ".join(f"vs {c.other}: Δ AUROC {value(c.diff, signed=True)}" for c in parts)

    if helped:
        text = "**Yes**: " + "; ".join(
            f"{arm} helped {cls}, beating its copy control and the best baseline ({both(cls, arm)})"
            for cls, arm in helped
        )
        text += f" ({adj})."
    elif hurt:
        text = (
            "**No: the synthetic images did worse** than their copy control or the best cheap baseline (" + adj + "): "
        )
        text += "; ".join(f"{arm} on {cls} ({both(cls, arm)})" for cls, arm in hurt) + "."
    else:
        tested = [c for c in report.primary if c.diff.has_interval and c.against == BASELINE]
        tested = tested or [c for c in report.primary if c.diff.has_interval]
        best = max(tested, key=lambda c: c.diff.mean)
        ceiling = f"; the interval rules out a gain above {best.diff.high:+.3f}" if best.diff.has_interval else ""
        text = (
            f"**No evidence that the synthetic images help** beyond what their copy control and the best cheap "
            f"baseline give ({adj}). Closest: {best.arm} on {best.class_name} vs {best.other}, "
            f"Δ AUROC {value(best.diff, signed=True)}{ceiling}."
        )
    if helped and hurt:
        text += " Worse than a control or baseline: " + "; ".join(
            f"{arm} on {cls} ({both(cls, arm)})" for cls, arm in hurt
        )
        text += "."
    return post_hoc + text


def class_lines(report: BenchmarkReport) -> list[tuple[str, list[str]]]:
    """Per rare class: a header (class, images, patients, detectable difference) and one line
    per synthetic arm of the primary family with its two comparisons and its answer."""
    out = []
    for c in report.rare:
        name = report.classes[c]
        comps = [x for x in report.primary if x.class_name == name]
        if not comps:
            continue
        header = _class_header(report, c)
        detect = _mde([x.diff for x in comps])
        lines = []
        for arm in dict.fromkeys(x.arm for x in comps):
            mine = [x for x in comps if x.arm == arm]
            answer = _answer_word(report.answers.get((name, arm), ""))
            lines.append(f"{arm}: {answer}; " + "; ".join(_comparison_words(x, report) for x in mine))
        out.append((f"{header}" + (f"; {detect}" if detect else "") + ":", lines))
    return out


def answer_json(report: BenchmarkReport) -> dict:
    """The answer as results.json stores it (Markdown marks kept), for pages built later."""
    return {
        "lead": lead(report),
        "classes": [{"header": h, "lines": lines} for h, lines in class_lines(report)],
        "no_verdicts_reason": no_verdicts_reason(report),
        "post_hoc": report.post_hoc,
    }
