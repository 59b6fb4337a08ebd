"""From stored runs to numbers: per-run and per-class test metrics; for every metric and
every paired difference from the reference arm, the point estimate (mean over seeds), a
bootstrap interval over test patients (resampled within each class's stratum) and seeds, and
the seed-only t interval (training noise only); the primary family (primary.py) with adjusted
p-values and verdicts; and per rare class the smallest difference in AUROC its test patients
could detect. Differences outside the primary family are exploratory: intervals and raw p,
no verdict words.

Metrics are recomputed from each run's stored probabilities and validation thresholds, so
changing reporting options (rare classes, confidence, reference, bootstrap) never retrains
anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from cxraug.benchmark.bootstrap import Draws, StoredRun, arm_draws, make_draws
from cxraug.benchmark.metrics import CLASS_METRICS, RUN_METRICS, overall, per_class
from cxraug.benchmark.plan import rare_classes
from cxraug.benchmark.primary import Comparison, answer_primary, arm_answers, best_baselines, family_size
from cxraug.benchmark.question import changes, declare
from cxraug.benchmark.statistics import MIN_SEEDS, Estimate, Stat, mean_ci, paired_difference
from cxraug.progress import NullReporter, Reporter
from cxraug.significance import detectable_difference, percentile_interval, seed_aware_p_value, seed_df

if TYPE_CHECKING:
    import pandas as pd

    from cxraug.benchmark.arms import Arm
    from cxraug.benchmark.config import BenchmarkConfig
    from cxraug.benchmark.plan import Plan, RunRecord

NOT_CHANGED = "not changed by this arm"  # the Δ cell of an arm that adds no image of the class
EXPLORATORY_METRICS = ("auroc", "f1")  # per rare class x arm, vs the reference: shown, never a verdict
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
    class_diff: dict[tuple[str, str], dict[str, Stat]]  # exploratory: vs the reference, raw p only
    predictions: dict[str, list[tuple[int, np.ndarray, np.ndarray]]]  # arm -> [(seed, probs, labels)]
    trained: int
    reused: int
    n_test_patients: int = 0
    class_patients: dict[str, int] = field(default_factory=dict)  # class -> test patients with it
    question: dict = field(default_factory=dict)  # the primary question this report answers
    post_hoc: list[str] = field(default_factory=list)  # how it differs from the declared one
    primary: list[Comparison] = field(default_factory=list)
    answers: dict[tuple[str, str], str] = field(default_factory=dict)  # (class, arm) -> helped/hurt/...
    best_baseline: dict[str, tuple[str, float]] = field(default_factory=dict)  # class -> (arm, val AUROC)
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str | None:
        ref = self.plan.cfg.reference
        return ref if ref in [a.name for a in self.arms] else None

    @property
    def n_test_images(self) -> int:
        return int(self.runs["n_test"].iloc[0]) if len(self.runs) else 0

    @property
    def family_size(self) -> int:
        """Comparisons of the primary family with a p-value (the m of the adjustment)."""
        return family_size(self.primary)

    def exploratory(self, metric: str = "auroc") -> list[dict]:
        """Per rare class and non-reference arm that changes the class: the paired difference
        from the reference arm, outside the primary family (an interval and a raw p, no verdict).
        An arm that adds no image of a class has no difference reported there."""
        out = []
        if self.reference is None:
            return out
        for c in self.rare:
            name = self.classes[c]
            for arm in self.arms:
                if arm.name != self.reference and arm.changes_class(c):
                    d = self.class_diff[(arm.name, name)][metric]
                    out.append({"class": name, "arm": arm.name, "synthetic": arm.uses_synthetic, "diff": d})
        return out

    def changes(self, arm: str, name: str) -> bool:
        """Whether ``arm`` changes class ``name`` (see Arm.changes_class); True for a name not run."""
        found = next((a for a in self.arms if a.name == arm), None)
        return found is None or found.changes_class(self.classes.index(name))

    def changes_rare(self, arm: str) -> bool:
        """Whether ``arm`` changes any rare class: its rare-class averages differ from the
        reference's only then (the differences are reported only then)."""
        return any(self.changes(arm, self.classes[c]) for c in self.rare)

    def n_test(self, name: str) -> int:
        """Positive test images of a class."""
        return int(self.per_class.loc[self.per_class["class"] == name, "n_pos"].iloc[0])


def images(n: int, kind: str) -> str:
    """'1 test image', '12 test images'."""
    return f"{n} {kind} image{'' if n == 1 else 's'}"


def patients(n: int, kind: str = "test") -> str:
    """'1 test patient', '12 test patients'."""
    return f"{n} {kind} patient{'' if n == 1 else 's'}"


def build_report(
    plan: Plan,
    records: list[RunRecord],
    real_index: np.ndarray,
    train_labels: np.ndarray,
    test_patients: np.ndarray,
    reporter: Reporter | None = None,
    declared: dict | None = None,
) -> BenchmarkReport:
    """``declared``: the question stored before training (a report whose question differs is post hoc)."""
    classes = plan.classes
    train_counts = np.bincount(train_labels[real_index], minlength=len(classes))
    rare, rule = rare_classes(plan)
    per_class_df, runs_df, predictions = _tables(records, classes, rare)
    test_labels = records[0].predictions["test_labels"] if records else np.zeros(0, dtype=np.int64)
    with_class = {
        name: len(set(np.asarray(test_patients, dtype=str)[test_labels == c])) for c, name in enumerate(classes)
    }
    stats = _statistics(
        plan, records, per_class_df, runs_df, rare, test_patients, with_class, reporter or NullReporter()
    )
    question = declare(plan, rare)
    best = best_baselines(records, [a.name for a in plan.arms if a.is_baseline], classes, rare)
    primary = answer_primary(question, best, stats.pop("diff_of"), plan.cfg.confidence, plan.cfg.adjust)
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
        class_patients=with_class,
        question=question,
        post_hoc=changes(declared, question) if declared is not None else [],
        primary=primary,
        answers=arm_answers(primary),
        best_baseline=best,
        notes=list(plan.notes),
    )


def _tables(
    records: list[RunRecord], classes: list[str], rare: list[int]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[tuple[int, np.ndarray, np.ndarray]]]]:
    """Per arm x seed x class and per arm x seed, the test metrics recomputed from each run's
    stored probabilities and thresholds; and each arm's test predictions by seed."""
    import pandas as pd

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
                "steps": rec.result["steps"],
                "best_step": rec.result["best_step"],
                "evaluations": rec.result["evaluations"],
                "seconds": rec.result["seconds"],
                "device": rec.result["device"],
                "reused": rec.reused,
            }
        )
        predictions.setdefault(rec.arm, []).append((rec.seed, probs, y))
    return pd.DataFrame(class_rows), pd.DataFrame(run_rows), predictions


def _statistics(
    plan: Plan,
    records: list[RunRecord],
    per_class_df: pd.DataFrame,
    runs_df: pd.DataFrame,
    rare: list[int],
    test_patients: np.ndarray,
    with_class: dict[str, int],
    reporter: Reporter,
) -> dict:
    """Point estimates, bootstrap and t intervals, raw p-values and detectable differences; and
    ``diff_of``, the test AUROC difference of any two arms on a class, for the primary family."""
    cfg, classes = plan.cfg, plan.classes
    ref = cfg.reference
    arm_names = [a.name for a in plan.arms]
    have_ref = ref in arm_names
    seeds = list(plan.seeds)
    enough_seeds = len(seeds) >= MIN_SEEDS
    seed_reason = "" if enough_seeds else f"{len(seeds)} seed{'s' * (len(seeds) != 1)}, {MIN_SEEDS} needed"
    draws = _bootstrap(plan, records, rare, test_patients, reporter) if enough_seeds and len(records) else {}
    est = _Estimator(cfg=cfg, classes=classes, per_class_df=per_class_df, draws=draws, with_class=with_class,
                     seed_reason=seed_reason)  # fmt: skip
    conf = cfg.confidence

    arm_summary: dict[str, dict[str, Stat]] = {}
    arm_diff: dict[str, dict[str, Stat]] = {}
    ref_runs = runs_df[runs_df["arm"] == ref]
    for a in arm_names:
        sub = runs_df[runs_df["arm"] == a]
        arm_summary[a] = {
            m: est.stat(mean_ci(sub[m].tolist(), conf), draws.get(a, {}).get(m), "", False) for m in RUN_METRICS
        }
        secs = mean_ci(sub["seconds"].tolist(), conf)
        arm_summary[a]["seconds"] = Stat(secs.mean, math.nan, math.nan, secs.n, reason="time, not a test metric")
        if have_ref:
            arm_diff[a] = {
                m: est.stat(est.paired(sub, ref_runs, m), _diff(draws, a, ref, m), "", True) for m in RUN_METRICS
            }
    class_summary: dict[tuple[str, str], dict[str, Stat]] = {}
    class_diff: dict[tuple[str, str], dict[str, Stat]] = {}
    for a in arm_names:
        for c, name in enumerate(classes):
            boots = draws.get(a, {})
            class_summary[(a, name)] = {
                m: est.stat(mean_ci(est.rows_of(a, name)[m].tolist(), conf), boots[m][:, c] if m in boots else None,
                            est.class_reason(name), False)
                for m in CLASS_METRICS
            }  # fmt: skip
            if have_ref:
                class_diff[(a, name)] = {m: est.diff_of(a, ref, name, m) for m in CLASS_METRICS}
    return {
        "arm_summary": arm_summary,
        "arm_diff": arm_diff,
        "class_summary": class_summary,
        "class_diff": class_diff,
        "diff_of": est.diff_of,
    }


def _bootstrap(
    plan: Plan, records: list[RunRecord], rare: list[int], test_patients: np.ndarray, reporter: Reporter
) -> dict[str, dict[str, np.ndarray]]:
    """Per arm and metric, the bootstrap draws over test patients and seeds (a replicated
    synthetic set's arms: with hierarchical seed weights)."""
    cfg, seeds = plan.cfg, list(plan.seeds)
    arm_names = [a.name for a in plan.arms]
    draws: dict[str, dict[str, np.ndarray]] = {}
    by_arm = {(r.arm, r.seed): r for r in records}
    labels = records[0].predictions["test_labels"]
    plan_draws = make_draws(test_patients, len(seeds), cfg.bootstrap_draws, cfg.bootstrap_seed, labels)
    of_arm = {a.name: a.synthetic for a in plan.arms}
    replicated = _replicated_draws(plan, plan_draws)
    with reporter.task(f"bootstrap: {cfg.bootstrap_draws} draws", len(arm_names) * len(seeds)) as advance:
        for a in arm_names:
            runs = [
                StoredRun(by_arm[(a, s)].predictions["test_probs"], np.asarray(by_arm[(a, s)].result["thresholds"]))
                for s in seeds
            ]
            draws[a] = arm_draws(runs, labels, replicated.get(of_arm.get(a) or "", plan_draws), rare, advance)
    return draws


@dataclass
class _Estimator:
    """Estimates with their intervals: the seeds' t interval and, from the bootstrap draws, the
    percentile interval, p-value and detectable difference; why one is left out (``reason``)."""

    cfg: BenchmarkConfig
    classes: list[str]
    per_class_df: pd.DataFrame
    draws: dict[str, dict[str, np.ndarray]]
    with_class: dict[str, int]
    seed_reason: str

    def stat(self, t: Estimate, boot: np.ndarray | None, reason: str, diff: bool) -> Stat:
        conf = self.cfg.confidence
        base = Stat(t.mean, math.nan, math.nan, t.n, t_low=t.low, t_high=t.high, reason=reason or self.seed_reason)
        if boot is None:
            return base
        low, high, n_ok = percentile_interval(boot, conf)
        sd = float(np.nanstd(boot, ddof=1)) if n_ok > 1 else math.nan
        # The detectable difference is worth saying exactly where a class is too small for a verdict.
        df = seed_df(sd, t.sd, t.n)
        extra = {"mde": detectable_difference(sd, 1 - conf, 1, MDE_POWER, df)} if diff else {}
        if reason:
            return replace(base, n_draws=n_ok, sd=sd, **extra)
        if diff:
            extra["p"] = seed_aware_p_value(t.mean, boot, t.n, t.sd)
        return replace(base, low=low, high=high, n_draws=n_ok, sd=sd, **extra)

    @staticmethod
    def by_seed(frame: pd.DataFrame, metric: str) -> dict[int, float]:
        return {int(s): float(v) for s, v in zip(frame["seed"], frame[metric], strict=True)}

    def paired(self, frame: pd.DataFrame, ref_frame: pd.DataFrame, metric: str) -> Estimate:
        return paired_difference(self.by_seed(frame, metric), self.by_seed(ref_frame, metric), self.cfg.confidence)

    def class_reason(self, name: str) -> str:
        n, need = self.with_class.get(name, 0), self.cfg.min_test_patients
        return f"{patients(n)} with {name}, {need} needed" if n < need else ""

    def rows_of(self, a: str, name: str) -> pd.DataFrame:
        df = self.per_class_df
        return df[(df["arm"] == a) & (df["class"] == name)]

    def diff_of(self, a: str, other: str, name: str, metric: str = "auroc") -> Stat:
        c = self.classes.index(name)
        d = _diff(self.draws, a, other, metric)
        return self.stat(self.paired(self.rows_of(a, name), self.rows_of(other, name), metric),
                         None if d is None else d[:, c], self.class_reason(name), True)  # fmt: skip


def _diff(draws: dict[str, dict[str, np.ndarray]], arm: str, ref: str, metric: str) -> np.ndarray | None:
    if arm not in draws or ref not in draws:
        return None
    return draws[arm][metric] - draws[ref][metric]


def _replicated_draws(plan: Plan, draws: Draws) -> dict[str, Draws]:
    """Per replicated synthetic set, the draws with hierarchical seed weights (generator
    replicate, then classifier seed; benchmark/replicates.py): one replicate draw per set, shared
    by every arm that uses it (NAME, NAME+classic)."""
    from cxraug.benchmark.replicates import hierarchical_weights

    rng = np.random.default_rng([plan.cfg.bootstrap_seed, 33])  # apart from the patient and seed draws
    out = {}
    for name in sorted(plan.cfg.synthetic_replicates):
        if plan.n_replicates(name) > 1:
            groups = [plan.replicate_index(name, s) for s in plan.seeds]
            out[name] = replace(draws, seed_weights=hierarchical_weights(draws.seed_weights, groups, rng))
    return out
