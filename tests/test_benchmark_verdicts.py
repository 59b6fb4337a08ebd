"""Verdicts are reachable by construction: a clear effect gets its verdict in a family of 56
rare class x arm comparisons (x AUROC and F1), with only 200 bootstrap draws, where a
percentile p (floor 2 / (B + 1)) could never pass Holm; the family is AUROC and F1 together,
and the detectable difference is at the family's level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxraug.benchmark.aggregate import build_report
from cxraug.benchmark.arms import Arm
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.benchmark.plan import Plan, RunRecord
from cxraug.benchmark.statistics import HELPED, NO_EVIDENCE
from cxraug.data.prepared import PreparedData
from cxraug.significance import detectable_difference

N_RARE, N_ARMS, SEEDS = 8, 7, [0, 1, 2]


def _report(effect: float, draws: int = 200):
    rng = np.random.default_rng(0)
    classes = ["common", *(f"rare{i}" for i in range(N_RARE))]
    k = len(classes)
    per_class = 40
    labels = np.repeat(np.arange(k), [200] + [per_class] * N_RARE)
    patients = (np.arange(len(labels)) // 2).astype(str)  # two images per patient
    noise = rng.normal(size=(len(labels), k))
    arms = [Arm("real", "real"), *(Arm(f"arm{a}", "reweight") for a in range(N_ARMS))]
    cfg = BenchmarkConfig(
        rare_classes=classes[1:], bootstrap_draws=draws, seeds=SEEDS, arms=[a.name for a in arms], plots=False
    )
    records = []
    for i, arm in enumerate(arms):
        for s in SEEDS:
            # The reference scores the true class weakly; every other arm scores it much better.
            strength = 1.0 + (effect if i else 0.0)
            logits = noise + strength * np.eye(k)[labels] + 0.05 * rng.normal(size=noise.shape)
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            result = {
                "thresholds": [0.2] * k,
                "train_real": [100] * k,
                "train_synthetic": [0] * k,
                "best_epoch": 1,
                "epochs": 1,
                "seconds": 1.0,
                "device": "cpu",
            }
            records.append(RunRecord(arm.name, s, result, {"test_probs": probs, "test_labels": labels}, False))
    data = PreparedData(Path("phantom"), {"classes": classes, "size": 32})
    train = np.arange(k).repeat(100)
    plan = Plan(data, cfg, arms, SEEDS, {}, {}, None, train, np.arange(len(train)))
    return build_report(plan, records, np.arange(len(train)), train, patients)


@pytest.fixture(scope="module")
def clear() -> object:
    return _report(effect=2.0)


def test_a_clear_effect_gets_its_verdict_in_a_family_of_56(clear) -> None:
    rows = clear.verdicts("auroc") + clear.verdicts("f1")
    assert len(rows) == 2 * N_RARE * N_ARMS == 112
    # One family over AUROC and F1: every comparison is adjusted over all 112.
    assert clear.families == {"auroc": 112, "f1": 112}
    auroc = clear.verdicts("auroc")
    assert all(v["verdict"] == HELPED for v in auroc), [v["diff"].p_adjusted for v in auroc]
    # With 200 draws a percentile p could not go below 2/201; Holm over 112 would make it 1.
    assert max(v["diff"].p_adjusted for v in auroc) < 0.05 < 112 * 2 / 201


def test_no_effect_gets_no_verdict() -> None:
    report = _report(effect=0.0)
    assert all(v["verdict"] == NO_EVIDENCE for v in report.verdicts("auroc"))


def test_detectable_difference_is_at_the_family_level(clear) -> None:
    d = clear.verdicts("auroc")[0]["diff"]
    assert d.mde == pytest.approx(detectable_difference(d.sd, 0.05, 112))
    assert d.mde > detectable_difference(d.sd, 0.05, 1)  # stricter than one test's level
    # A run metric outside the family keeps the single-test level.
    run = clear.arm_diff["arm0"]["rare_auroc"]
    assert run.mde == pytest.approx(detectable_difference(run.sd, 0.05, 1))


def test_the_report_says_m_and_the_smallest_attainable_p(clear) -> None:
    from cxraug.benchmark.summary import adjustment_line

    line = adjustment_line(clear)
    assert "m = 112" in line and "smallest attainable adjusted p is 0" in line
