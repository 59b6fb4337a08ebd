"""From stored runs to numbers: per-run and per-class test metrics, means with CIs over
seeds, paired differences from the reference arm, and a verdict per arm and rare class.

Metrics are recomputed from each run's stored probabilities and validation thresholds, so
changing reporting options (rare classes, confidence, reference) never retrains anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cxraug.benchmark.metrics import CLASS_METRICS, RUN_METRICS, overall, per_class
from cxraug.benchmark.statistics import Estimate, mean_ci, paired_difference, verdict

if TYPE_CHECKING:
    import pandas as pd

    from cxraug.benchmark.arms import Arm
    from cxraug.benchmark.runner import Plan, RunRecord


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
    arm_summary: dict[str, dict[str, Estimate]]  # arm -> metric -> estimate
    arm_diff: dict[str, dict[str, Estimate]]  # arm -> metric -> paired difference from reference
    class_summary: dict[tuple[str, str], dict[str, Estimate]]  # (arm, class) -> metric -> estimate
    class_diff: dict[tuple[str, str], dict[str, Estimate]]
    predictions: dict[str, list[tuple[int, np.ndarray, np.ndarray]]]  # arm -> [(seed, probs, labels)]
    trained: int
    reused: int
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str | None:
        ref = self.plan.cfg.reference
        return ref if ref in [a.name for a in self.arms] else None

    def verdicts(self, metric: str = "auroc") -> list[dict]:
        """Per rare class and non-reference arm: the paired difference and what it says."""
        out = []
        if self.reference is None:
            return out
        for c in self.rare:
            name = self.classes[c]
            for arm in self.arms:
                if arm.name == self.reference:
                    continue
                d = self.class_diff[(arm.name, name)][metric]
                v = self.verdict(name, d)
                out.append({"class": name, "arm": arm.name, "synthetic": arm.uses_synthetic, "diff": d, "verdict": v})
        return out

    def n_test(self, name: str) -> int:
        """Positive test images of a class."""
        return int(self.per_class.loc[self.per_class["class"] == name, "n_pos"].iloc[0])

    def verdict(self, name: str, diff: Estimate) -> str:
        return verdict(diff, self.n_test(name), self.plan.cfg.min_test_images)


def rare_classes(plan: Plan, train_counts: np.ndarray) -> tuple[list[int], str]:
    cfg = plan.cfg
    if cfg.rare_classes:
        from cxraug.benchmark.runner import class_index

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
    plan: Plan, records: list[RunRecord], real_index: np.ndarray, train_labels: np.ndarray
) -> BenchmarkReport:
    import pandas as pd

    cfg, classes = plan.cfg, plan.classes
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

    conf, ref = cfg.confidence, cfg.reference
    arm_names = [a.name for a in plan.arms]
    have_ref = ref in arm_names

    def by_seed(df: pd.DataFrame, metric: str) -> dict[int, float]:
        return {int(s): float(v) for s, v in zip(df["seed"], df[metric], strict=True)}

    arm_summary, arm_diff = {}, {}
    for a in arm_names:
        sub = runs_df[runs_df["arm"] == a]
        arm_summary[a] = {m: mean_ci(sub[m].tolist(), conf) for m in (*RUN_METRICS, "seconds")}
        if have_ref:
            ref_sub = runs_df[runs_df["arm"] == ref]
            arm_diff[a] = {m: paired_difference(by_seed(sub, m), by_seed(ref_sub, m), conf) for m in RUN_METRICS}
    class_summary, class_diff = {}, {}
    for a in arm_names:
        for name in classes:
            sub = per_class_df[(per_class_df["arm"] == a) & (per_class_df["class"] == name)]
            class_summary[(a, name)] = {m: mean_ci(sub[m].tolist(), conf) for m in CLASS_METRICS}
            if have_ref:
                ref_sub = per_class_df[(per_class_df["arm"] == ref) & (per_class_df["class"] == name)]
                class_diff[(a, name)] = {
                    m: paired_difference(by_seed(sub, m), by_seed(ref_sub, m), conf) for m in CLASS_METRICS
                }
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
        arm_summary=arm_summary,
        arm_diff=arm_diff,
        class_summary=class_summary,
        class_diff=class_diff,
        predictions=predictions,
        trained=sum(not r.reused for r in records),
        reused=sum(r.reused for r in records),
        notes=list(plan.notes),
    )
