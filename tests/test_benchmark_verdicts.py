"""The primary question and its verdicts, on stored predictions made to order: a synthetic arm
that beats its copy control and the best baseline (chosen on validation) "helped", in a family
of 64 comparisons with only 200 bootstrap draws; one that beats `real` but not its controls
never does; Holm runs over the primary family only; p-values below 1e-4 print as such; a
changed question is post hoc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxraug.benchmark.aggregate import build_report
from cxraug.benchmark.arms import Arm
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.benchmark.plan import Plan, RunRecord, rare_classes
from cxraug.benchmark.question import BASELINE, COPY, declare
from cxraug.benchmark.statistics import HELPED, NO_EVIDENCE
from cxraug.data.prepared import PreparedData
from cxraug.significance import format_p, seed_aware_p_value, seed_df

N_RARE, N_SYN, SEEDS = 8, 4, [0, 1, 2]


def _report(effect: float, control_effect: float = 0.0, draws: int = 200, declared: dict | None = None, **cfg_over):
    rng = np.random.default_rng(0)
    classes = ["common", *(f"rare{i}" for i in range(N_RARE))]
    k = len(classes)
    labels = np.repeat(np.arange(k), [200] + [40] * N_RARE)
    patients = (np.arange(len(labels)) // 2).astype(str)  # two images per patient: 20 per rare class
    quota = tuple((c, 10) for c in range(1, k))
    syn = [Arm(f"syn{a}", "synthetic", "s", quota=quota) for a in range(N_SYN)]
    arms = [Arm("real", "real"), Arm("classic", "classic"), *syn,
            Arm("copy", "copy", quota=quota, controls_for=tuple(a.name for a in syn)),
            Arm("noise", "noise", quota=quota, controls_for=tuple(a.name for a in syn))]  # fmt: skip
    cfg = BenchmarkConfig(
        rare_classes=classes[1:], bootstrap_draws=draws, seeds=SEEDS, arms=["real"], plots=False, **cfg_over
    )
    strength = {"real": 1.0, "classic": 1.0 + control_effect, "copy": 1.0 + control_effect, "noise": 1.0}
    noise = rng.normal(size=(len(labels), k))
    records = []
    for arm in arms:
        for s in SEEDS:
            st = strength.get(arm.name, 1.0 + effect)
            logits = noise + st * np.eye(k)[labels] + 0.05 * rng.normal(size=noise.shape)
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            result = {"thresholds": [0.2] * k, "train_real": [100] * k, "train_synthetic": [0] * k, "steps": 5,
                      "best_step": 5, "evaluations": 1, "seconds": 1.0, "device": "cpu"}  # fmt: skip
            preds = {"test_probs": probs, "test_labels": labels, "val_probs": probs, "val_labels": labels}
            records.append(RunRecord(arm.name, s, result, preds, False))
    data = PreparedData(Path("phantom"), {"classes": classes, "size": 32})
    train = np.arange(k).repeat(100)
    plan = Plan(data, cfg, arms, SEEDS, {}, {}, None, train, np.arange(len(train)))
    return build_report(plan, records, np.arange(len(train)), train, patients, declared=declared)


@pytest.fixture(scope="module")
def clear():
    return _report(effect=2.0)


def test_a_clear_effect_beats_copy_and_the_best_baseline_in_a_family_of_64(clear) -> None:
    assert len(clear.primary) == N_RARE * N_SYN * 2 == 64 and clear.family_size == 64
    assert {c.against for c in clear.primary} == {COPY, BASELINE}
    assert all(c.verdict == HELPED for c in clear.primary), [c.diff.p_adjusted for c in clear.primary]
    assert set(clear.answers.values()) == {HELPED} and len(clear.answers) == N_RARE * N_SYN
    # The best baseline is the one of real and classic with the higher validation AUROC.
    assert {a for a, _ in clear.best_baseline.values()} <= {"real", "classic"}
    # With 200 draws a percentile p could not go below 2/201; Holm over 64 would make it 1.
    assert max(c.diff.p_adjusted for c in clear.primary) < 0.05 < 64 * 2 / 201
    # Exploratory comparisons (every arm vs real) keep their raw p and get no adjustment or verdict.
    assert clear.exploratory() and all(v["diff"].p_adjusted is None for v in clear.exploratory())


def test_beating_real_but_not_the_copy_control_is_never_helped() -> None:
    # The synthetic arms are far better than real, but so are copy and classic: no image effect.
    report = _report(effect=2.0, control_effect=2.0)
    assert all(c.verdict != HELPED for c in report.primary)
    assert HELPED not in report.answers.values()
    assert any(v["diff"].p is not None and v["diff"].p < 1e-3 and v["diff"].mean > 0 for v in report.exploratory())
    from cxraug.benchmark.answer import lead

    text = lead(report)
    assert text.startswith("**No evidence that the synthetic images help**") and "rules out a gain above" in text


def test_no_effect_gets_no_verdict() -> None:
    report = _report(effect=0.0)
    assert all(c.verdict == NO_EVIDENCE for c in report.primary)


def test_the_report_says_m_and_the_t_reference(clear) -> None:
    from cxraug.benchmark.summary import adjustment_line

    line = adjustment_line(clear)
    assert "m = 64" in line and "a t reference (3 seeds" in line and "primary family only" in line
    assert "The verdict rests on that adjusted p, not on the intervals" in line  # which of the two decides


def test_three_seeds_use_a_t_reference_and_tiny_p_prints_as_a_bound() -> None:
    draws = np.random.default_rng(0).normal(0.1, 0.04, size=2000)
    # Seeds that disagree (their part of the variance dominates): a t with few degrees of freedom.
    assert seed_df(0.04, 0.07, 3) == pytest.approx(2.0)
    assert seed_aware_p_value(0.1, draws, 3, 0.07) > 5 * seed_aware_p_value(0.1, draws, 5, 0.07)
    # Seeds that agree (test patients dominate): close to the normal.
    assert seed_df(0.04, 0.001, 3) > 1000
    assert seed_aware_p_value(0.1, draws, 3, 0.001) == pytest.approx(seed_aware_p_value(0.1, draws, 9, 0.001), rel=0.01)
    assert format_p(3e-219) == "< 1e-4" and format_p(0.0123) == "0.012" and format_p(0.00042) == "0.0004"
    assert format_p(None) == "-"


def test_a_changed_question_is_post_hoc(clear) -> None:
    plan = clear.plan
    declared = declare(plan, rare_classes(plan)[0])
    same = _report(effect=2.0, declared=declared)
    assert same.post_hoc == []
    fewer = {**declared, "rare_classes": declared["rare_classes"][:2]}
    changed = _report(effect=2.0, declared=fewer)
    assert changed.post_hoc and "rare classes" in changed.post_hoc[0]
    from cxraug.benchmark.answer import lead

    assert lead(changed).startswith("**Post hoc: the question changed after the test results were seen**")
