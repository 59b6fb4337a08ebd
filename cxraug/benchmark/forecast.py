"""The benchmark's plan in words, before any training: its rare classes and the rule that chose
them, which of them each synthetic arm adds images to, whether each can get a verdict at all,
the difference in AUROC its test images could detect, and the runs to train with an estimate
of their time measured on a few classifier steps. ``cxraug benchmark --plan`` prints it and
stops; every benchmark prints it first, and stops there when no verdict is reachable (unless
``--force``).

The detectable difference is an approximation from the test counts alone (no run needed):
2.8 x the Hanley-McNeil (1982) standard error of one AUROC of 0.80 with the class's positive
and negative test images, i.e. a two-sided test at alpha 0.05 with 80% power
((z_0.975 + z_0.8) = 2.80). It counts images, not patients, and ignores the pairing of two
arms on the same test images (which lowers the error when the arms agree) and the seeds. The
report's own detectable difference, from the paired bootstrap, replaces it after training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cxraug.benchmark.plan import Plan
from cxraug.benchmark.statistics import MIN_SEEDS
from cxraug.classify.timing import StepTiming
from cxraug.progress import duration_text

ASSUMED_AUROC = 0.80  # the AUROC the standard error is taken at (it changes little from 0.7 to 0.9)
ALPHA, POWER = 0.05, 0.80


def hanley_mcneil_se(auroc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC from n_pos positive and n_neg negative images (Hanley &
    McNeil, Radiology 143, 1982), NaN when either is 0."""
    if n_pos < 1 or n_neg < 1:
        return math.nan
    a = auroc
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def detectable_auroc_difference(n_pos: int, n_neg: int, auroc: float = ASSUMED_AUROC) -> float:
    """(z_{1-alpha/2} + z_power) x the Hanley-McNeil SE: 2.80 x SE at alpha 0.05, 80% power."""
    from scipy.stats import norm

    return float((norm.isf(ALPHA / 2) + norm.ppf(POWER)) * hanley_mcneil_se(auroc, n_pos, n_neg))


@dataclass(frozen=True)
class ClassOutlook:
    """One rare class before training."""

    name: str
    train_images: int  # real training images every arm starts from
    test_images: int  # positive test images
    test_negatives: int
    test_patients: int
    added_by: tuple[str, ...]  # synthetic arms of the primary question that add images of it
    detectable: float  # ΔAUROC its test images could detect (see the module's note), NaN: none
    why_not: tuple[str, ...]  # why no verdict can be reached; empty: reachable

    @property
    def reachable(self) -> bool:
        return not self.why_not


@dataclass
class BenchmarkForecast:
    data: str
    rare_rule: str
    rare: list[ClassOutlook]
    adds: dict[str, dict[str, int]]  # synthetic arm -> class -> images it adds
    not_rare: dict[str, list[str]]  # synthetic arm -> classes it adds to that are not rare
    seeds: int
    runs: int  # arms x seeds
    pending: int  # of them, not stored yet
    steps: int
    batch_size: int
    evaluations: int
    eval_images: int  # images predicted per run (validation checks and the test split once)
    has_synthetic: bool
    timing: StepTiming | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def run_seconds(self) -> float | None:
        return None if self.timing is None else self.timing.run_seconds(self.steps, self.eval_images)

    def unreachable(self) -> str | None:
        """One line saying why no verdict of the benchmark is reachable; None when one is (or
        when there is no synthetic arm, so no verdict is asked for)."""
        if not self.has_synthetic or any(c.reachable for c in self.rare):
            return None
        if not self.rare:
            return f"there is no rare class ({self.rare_rule})"
        why = "; ".join(f"{c.name}: {', '.join(c.why_not)}" for c in self.rare)
        return f"no rare class can get a verdict ({why})"

    def lines(self) -> list[str]:
        """The plan, one line per item (Rich-free text)."""
        out = [f"plan of the benchmark on {self.data}:"]
        names = ", ".join(c.name for c in self.rare) or "none"
        out.append(f"  rare classes: {names} ({self.rare_rule})")
        for arm, counts in self.adds.items():
            added = ", ".join(f"{n} {c}" for c, n in counts.items()) or "nothing"
            out.append(f"  {arm} adds synthetic images: {added}")
        rare_names = [c.name for c in self.rare]
        for arm, classes in self.not_rare.items():
            out.append(
                f"  note: {arm} adds images of {', '.join(classes)}, not rare by that rule: no verdict there "
                f"(to ask about it, --set rare_classes=[{','.join(sorted({*classes, *rare_names}))}])"
            )
        out.append(
            f"  seeds: {self.seeds} ({MIN_SEEDS} needed for intervals and verdicts); detectable ΔAUROC: "
            f"2.8 x Hanley-McNeil SE at AUROC {ASSUMED_AUROC:.2f} from the class's test images "
            "(alpha 0.05 two-sided, 80% power; unpaired, so a paired comparison may detect less)"
        )
        for c in self.rare:
            detect = "no test image" if math.isnan(c.detectable) else f"about {c.detectable:.3f}"
            verdict = "verdict reachable" if c.reachable else f"no verdict possible: {', '.join(c.why_not)}"
            out.append(
                f"  {c.name}: {_n(c.train_images, 'real training image')}; test: {_n(c.test_images, 'image')} of "
                f"{_n(c.test_patients, 'patient')}, {c.test_negatives} negatives; detectable ΔAUROC {detect}; {verdict}"
            )
        runs = f"  runs: {self.runs} ({self.runs // max(self.seeds, 1)} arms x {self.seeds} seeds), {self.pending} to train"
        runs += f", {self.steps} steps of batch {self.batch_size} and {self.evaluations} validation checks each"
        out.append(runs)
        if self.timing is not None and self.run_seconds is not None:
            t = self.timing
            out.append(
                f"  estimated time: {duration_text(self.run_seconds * self.pending)} on one process "
                f"({duration_text(self.run_seconds)} a run; {t.train_step_s:.3f} s a step measured over "
                f"{t.steps_timed} steps on {t.device}, x {self.steps} steps, plus {self.eval_images} images predicted)"
            )
        out += [f"  note: {n}" for n in self.notes]
        return out


def _n(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def forecast(
    plan: Plan, rare: list[int], rule: str, pending: int, timing: StepTiming | None = None
) -> BenchmarkForecast:
    """What the benchmark will be able to say, from the plan and the test split's counts."""
    from cxraug.classify.trainset import split_patients

    cfg, classes = plan.cfg, plan.classes
    test_labels = plan.data.labels("test")
    test_patients = np.asarray(split_patients(plan.data, "test"), dtype=str)
    primary = [a for a in plan.arms if a.kind == "synthetic" and not a.augment]
    adds = {a.name: {classes[c]: n for c, n in a.quota if n} for a in plan.arms if a.kind == "synthetic"}
    not_rare = {}
    for a in primary:
        extra = [classes[c] for c, n in a.quota if n and c not in rare]
        if extra:
            not_rare[a.name] = extra
    has_controls = any(a.kind == "copy" for a in plan.arms) or any(a.is_baseline for a in plan.arms)
    outlook = []
    counts = plan.train_counts
    for c in rare:
        pos = test_labels == c
        n_pat = len(set(test_patients[pos]))
        by = tuple(a.name for a in primary if dict(a.quota).get(c))
        why = []
        if not by:
            why.append("no synthetic arm adds images of it")
        if n_pat < cfg.min_test_patients:
            why.append(f"{_n(n_pat, 'test patient')}, {cfg.min_test_patients} needed")
        if len(plan.seeds) < MIN_SEEDS:
            why.append(f"{_n(len(plan.seeds), 'seed')}, {MIN_SEEDS} needed")
        if by and not has_controls:
            why.append("no copy control or baseline arm to compare with")
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        outlook.append(
            ClassOutlook(name=classes[c], train_images=int(counts[c]), test_images=n_pos, test_negatives=n_neg,
                         test_patients=n_pat, added_by=by, detectable=detectable_auroc_difference(n_pos, n_neg),
                         why_not=tuple(why))
        )  # fmt: skip
    n_val, n_test = len(plan.data.labels("val")), len(test_labels)
    return BenchmarkForecast(
        data=plan.data.name,
        rare_rule=rule,
        rare=outlook,
        adds=adds,
        not_rare=not_rare,
        seeds=len(plan.seeds),
        runs=len(plan.arms) * len(plan.seeds),
        pending=pending,
        steps=plan.steps,
        batch_size=cfg.batch_size,
        evaluations=plan.evaluations,
        eval_images=plan.evaluations * n_val + n_test,
        has_synthetic=any(a.kind == "synthetic" for a in plan.arms),
        timing=timing,
    )


def measure(plan: Plan) -> StepTiming:
    """A few classifier steps of this benchmark's model, batch and image size, timed here."""
    from cxraug.accel import resolve_device, use_cpu
    from cxraug.classify.timing import measure_step

    device = resolve_device("cpu" if use_cpu(plan.cfg.cpu) else None)
    return measure_step(plan.cfg.classifier(plan.steps, plan.evaluations), plan.data.size, len(plan.classes), device)
