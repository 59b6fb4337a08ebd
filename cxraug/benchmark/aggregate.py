"""From stored runs to numbers: per-run and per-class test metrics; for every metric and
every paired difference from the reference arm, the point estimate (mean over seeds), a
bootstrap interval over test patients and seeds, and the seed-only t interval (training
noise only); adjusted p-values and a verdict per arm and rare class; and per rare class the
smallest difference in AUROC its test images could detect.

Metrics are recomputed from each run's stored probabilities and validation thresholds, so
changing reporting options (rare classes, confidence, reference, bootstrap) never retrains
anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from cxraug.benchmark.bootstrap import StoredRun, arm_draws, make_draws
from cxraug.benchmark.metrics import CLASS_METRICS, RUN_METRICS, overall, per_class
from cxraug.benchmark.statistics import ADJUSTMENTS, MIN_SEEDS, Estimate, Stat, mean_ci, paired_difference, verdict
from cxraug.progress import NullReporter, Reporter
from cxraug.significance import detectable_difference, normal_p_value, percentile_interval

if TYPE_CHECKING:
    import pandas as pd

    from cxraug.benchmark.arms import Arm
    from cxraug.benchmark.plan import Plan, RunRecord

VERDICT_METRICS = ("auroc", "f1")  # one family: every rare class x arm x these metrics
MDE_POWER = 0.8


@dataclass
class BenchmarkReport:
    plan: Plan
    arms: list[Arm]
    seeds: list[int]
    classes: list[str]
    rare: list[int]
    rare_rule: str
    train_counts: np.ndarray  # real training images per class after any controlled imbalance
    per_class: pd.DataFrame  # one row per arm x seed x class
    runs: pd.DataFrame  # one row per arm x seed
    arm_summary: dict[str, dict[str, Stat]]  # arm -> metric -> estimate
    arm_diff: dict[str, dict[str, Stat]]  # arm -> metric -> paired difference from reference
    class_summary: dict[tuple[str, str], dict[str, Stat]]  # (arm, class) -> metric -> estimate
    class_diff: dict[tuple[str, str], dict[str, Stat]]
    predictions: dict[str, list[tuple[int, np.ndarray, np.ndarray]]]  # arm -> [(seed, probs, labels)]
    trained: int
    reused: int
    n_test_patients: int = 0
    families: dict[str, int] = field(default_factory=dict)  # metric -> size of the family it is adjusted in
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str | None:
        ref = self.plan.cfg.reference
        return ref if ref in [a.name for a in self.arms] else None

    @property
    def n_test_images(self) -> int:
        return int(self.runs["n_test"].iloc[0]) if len(self.runs) else 0

    def verdicts(self, metric: str = "auroc") -> list[dict]:
        """Per rare class and non-reference arm: the paired difference and what it says."""
        out = []
        if self.reference is None:
            return out
        conf = self.plan.cfg.confidence
        for c in self.rare:
            name = self.classes[c]
            for arm in self.arms:
                if arm.name == self.reference:
                    continue
                d = self.class_diff[(arm.name, name)][metric]
                out.append(
                    {
                        "class": name,
                        "arm": arm.name,
                        "synthetic": arm.uses_synthetic,
                        "diff": d,
                        "verdict": verdict(d, conf, adjusted=True),
                        "verdict_unadjusted": verdict(d, conf, adjusted=False),
                    }
                )
        return out

    def n_test(self, name: str) -> int:
        """Positive test images of a class."""
        return int(self.per_class.loc[self.per_class["class"] == name, "n_pos"].iloc[0])

    def verdict(self, diff: Stat) -> str:
        return verdict(diff, self.plan.cfg.confidence)


def images(n: int, kind: str) -> str:
    """'1 test image', '12 test images'."""
    return f"{n} {kind} image{'' if n == 1 else 's'}"


def rare_classes(plan: Plan, train_counts: np.ndarray) -> tuple[list[int], str]:
    cfg = plan.cfg
    if cfg.rare_classes:
        from cxraug.benchmark.plan import class_index

        idx = sorted({class_index(c, plan.classes, "rare_classes") for c in cfg.rare_classes})
        return idx, "chosen with option rare_classes"
    total = max(int(train_counts.sum()), 1)
    below = {c for c in range(len(train_counts)) if train_counts[c] / total < cfg.rare_threshold}
    idx = sorted(below | set(plan.controlled))
    rule = f"classes below {cfg.rare_threshold:.0%} of the real training images ({total})"
    if plan.controlled:
        rule += ", plus the classes reduced by --controlled-imbalance"
    return idx, rule


def build_report(
    plan: Plan,
    records: list[RunRecord],
    real_index: np.ndarray,
    train_labels: np.ndarray,
    test_patients: np.ndarray,
    reporter: Reporter | None = None,
) -> BenchmarkReport:
    import pandas as pd

    classes = plan.classes
    train_counts = np.bincount(train_labels[real_index], minlength=len(classes))
    rare, rule = rare_classes(plan, train_counts)
    class_rows, run_rows = [], []
    predictions: dict[str, list] = {}
    for rec in records:
        probs, y = rec.predictions["test_probs"], rec.predictions["test_labels"]
        rows = per_class(y, probs, np.asarray(rec.result["thresholds"]))
        run = overall(rows, y, probs, rare)
        real_n, synth_n = rec.result["train_real"], rec.result["train_synthetic"]
        for c, r in enumerate(rows):
            class_rows.append(
                {
                    "arm": rec.arm,
                    "seed": rec.seed,
                    "class": classes[c],
                    "rare": c in rare,
                    **r,
                    "n_train_real": real_n[c],
                    "n_train_synthetic": synth_n[c],
                }
            )
        run_rows.append(
            {
                "arm": rec.arm,
                "seed": rec.seed,
                **run,
                "n_train_real": sum(real_n),
                "n_train_synthetic": sum(synth_n),
                "best_epoch": rec.result["best_epoch"],
                "epochs": rec.result["epochs"],
                "seconds": rec.result["seconds"],
                "device": rec.result["device"],
                "reused": rec.reused,
            }
        )
        predictions.setdefault(rec.arm, []).append((rec.seed, probs, y))
    per_class_df, runs_df = pd.DataFrame(class_rows), pd.DataFrame(run_rows)
    stats = _statistics(plan, records, per_class_df, runs_df, rare, test_patients, reporter or NullReporter())
    return BenchmarkReport(
        plan=plan,
        arms=plan.arms,
        seeds=plan.seeds,
        classes=classes,
        rare=rare,
        rare_rule=rule,
        train_counts=train_counts,
        per_class=per_class_df,
        runs=runs_df,
        **stats,
        predictions=predictions,
        trained=sum(not r.reused for r in records),
        reused=sum(r.reused for r in records),
        n_test_patients=len(set(map(str, test_patients))),
        notes=list(plan.notes),
    )


def _statistics(
    plan: Plan,
    records: list[RunRecord],
    per_class_df: pd.DataFrame,
    runs_df: pd.DataFrame,
    rare: list[int],
    test_patients: np.ndarray,
    reporter: Reporter,
) -> dict:
    """Point estimates, bootstrap and t intervals, adjusted p-values and detectable differences."""
    cfg, classes = plan.cfg, plan.classes
    conf, ref = cfg.confidence, cfg.reference
    arm_names = [a.name for a in plan.arms]
    have_ref = ref in arm_names
    seeds = list(plan.seeds)
    enough_seeds = len(seeds) >= MIN_SEEDS
    seed_reason = "" if enough_seeds else f"{len(seeds)} seed{'s' * (len(seeds) != 1)}, {MIN_SEEDS} needed"

    draws: dict[str, dict[str, np.ndarray]] = {}
    if enough_seeds and len(records):
        by_arm = {(r.arm, r.seed): r for r in records}
        labels = records[0].predictions["test_labels"]
        plan_draws = make_draws(test_patients, len(seeds), cfg.bootstrap_draws, cfg.bootstrap_seed)
        with reporter.task(f"bootstrap: {cfg.bootstrap_draws} draws", len(arm_names) * len(seeds)) as advance:
            for a in arm_names:
                runs = [
                    StoredRun(by_arm[(a, s)].predictions["test_probs"], np.asarray(by_arm[(a, s)].result["thresholds"]))
                    for s in seeds
                ]
                draws[a] = arm_draws(runs, labels, plan_draws, rare, advance)

    def stat(t: Estimate, boot: np.ndarray | None, reason: str, diff: bool) -> Stat:
        base = Stat(t.mean, math.nan, math.nan, t.n, t_low=t.low, t_high=t.high, reason=reason or seed_reason)
        if boot is None:
            return base
        low, high, n_ok = percentile_interval(boot, conf)
        sd = float(np.nanstd(boot, ddof=1)) if n_ok > 1 else math.nan
        # The detectable difference is worth saying exactly where a class is too small for a verdict;
        # here at the unadjusted level, then at the family's level for the verdicts (_adjust).
        extra = {"mde": detectable_difference(sd, 1 - conf, 1, MDE_POWER)} if diff else {}
        if reason:
            return replace(base, n_draws=n_ok, sd=sd, **extra)
        if diff:
            extra["p"] = normal_p_value(t.mean, boot)
        return replace(base, low=low, high=high, n_draws=n_ok, sd=sd, **extra)

    def by_seed(df: pd.DataFrame, metric: str) -> dict[int, float]:
        return {int(s): float(v) for s, v in zip(df["seed"], df[metric], strict=True)}

    def paired(df: pd.DataFrame, ref_df: pd.DataFrame, metric: str) -> Estimate:
        return paired_difference(by_seed(df, metric), by_seed(ref_df, metric), conf)

    arm_summary: dict[str, dict[str, Stat]] = {}
    arm_diff: dict[str, dict[str, Stat]] = {}
    ref_runs = runs_df[runs_df["arm"] == ref]
    for a in arm_names:
        sub = runs_df[runs_df["arm"] == a]
        arm_summary[a] = {
            m: stat(mean_ci(sub[m].tolist(), conf), draws.get(a, {}).get(m), "", False) for m in RUN_METRICS
        }
        secs = mean_ci(sub["seconds"].tolist(), conf)
        arm_summary[a]["seconds"] = Stat(secs.mean, math.nan, math.nan, secs.n, reason="time, not a test metric")
        if have_ref:
            arm_diff[a] = {m: stat(paired(sub, ref_runs, m), _diff(draws, a, ref, m), "", True) for m in RUN_METRICS}
    class_summary: dict[tuple[str, str], dict[str, Stat]] = {}
    class_diff: dict[tuple[str, str], dict[str, Stat]] = {}
    n_pos = {name: int(per_class_df.loc[per_class_df["class"] == name, "n_pos"].iloc[0]) for name in classes}
    for a in arm_names:
        for c, name in enumerate(classes):
            few = n_pos[name] < cfg.min_test_images
            reason = f"{images(n_pos[name], 'test')}, {cfg.min_test_images} needed" if few else ""
            rows = per_class_df[(per_class_df["arm"] == a) & (per_class_df["class"] == name)]
            boots = draws.get(a, {})
            class_summary[(a, name)] = {
                m: stat(mean_ci(rows[m].tolist(), conf), boots[m][:, c] if m in boots else None, reason, False)
                for m in CLASS_METRICS
            }
            if have_ref:
                ref_rows = per_class_df[(per_class_df["arm"] == ref) & (per_class_df["class"] == name)]
                class_diff[(a, name)] = {}
                for m in CLASS_METRICS:
                    d = _diff(draws, a, ref, m)
                    class_diff[(a, name)][m] = stat(
                        paired(rows, ref_rows, m), None if d is None else d[:, c], reason, True
                    )
    families = _adjust(plan, class_diff, rare, cfg.adjust) if have_ref else {}
    return {
        "arm_summary": arm_summary,
        "arm_diff": arm_diff,
        "class_summary": class_summary,
        "class_diff": class_diff,
        "families": families,
    }


def _diff(draws: dict[str, dict[str, np.ndarray]], arm: str, ref: str, metric: str) -> np.ndarray | None:
    if arm not in draws or ref not in draws:
        return None
    return draws[arm][metric] - draws[ref][metric]


def _adjust(plan: Plan, class_diff: dict[tuple[str, str], dict[str, Stat]], rare: list[int], method: str) -> dict:
    """Adjust the p-values of arms x rare classes x verdict metrics (AUROC and F1: one family,
    since a reader takes both verdicts) in place, and give every rare class's difference the
    detectable difference at the family's level. Return the family's size per metric
    (comparisons without an interval are not tested, so not counted)."""
    arms = [a.name for a in plan.arms if a.name != plan.cfg.reference]
    cells = [(a, plan.classes[c], m) for m in VERDICT_METRICS for c in rare for a in arms]
    tested = [(a, name, m) for a, name, m in cells if class_diff[(a, name)][m].p is not None]
    adjusted = ADJUSTMENTS[method]([class_diff[(a, name)][m].p for a, name, m in tested])  # type: ignore[misc]
    for (a, name, m), p in zip(tested, adjusted, strict=True):
        class_diff[(a, name)][m] = replace(class_diff[(a, name)][m], p_adjusted=p)
    size = len(tested)
    alpha = 1 - plan.cfg.confidence
    for a, name, m in cells:
        d = class_diff[(a, name)][m]
        if d.mde is not None:
            class_diff[(a, name)][m] = replace(d, mde=detectable_difference(d.sd, alpha, max(size, 1), MDE_POWER))
    return dict.fromkeys(VERDICT_METRICS, size)
