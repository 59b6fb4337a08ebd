"""Metrics match scikit-learn on fixed predictions; intervals match scipy's t distribution;
options are parsed and validated."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from cxraug.benchmark.config import build_config, parse_set
from cxraug.benchmark.metrics import overall, per_class
from cxraug.benchmark.statistics import HELPED, HURT, NO_EVIDENCE, Stat, mean_ci, paired_difference, verdict
from cxraug.classify.scores import choose_thresholds, macro_auroc
from cxraug.errors import UserError


def _fixed_predictions(n: int = 300, k: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=[0.6, 0.25, 0.1, 0.05])
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs


def test_per_class_and_overall_match_sklearn():
    y, probs = _fixed_predictions()
    thr = np.array([0.4, 0.3, 0.2, 0.1])
    rows = per_class(y, probs, thr)
    for c, r in enumerate(rows):
        pos, pred = y == c, probs[:, c] >= thr[c]
        assert r["auroc"] == pytest.approx(roc_auc_score(pos, probs[:, c]))
        assert r["recall"] == pytest.approx(recall_score(pos, pred))
        assert r["precision"] == pytest.approx(precision_score(pos, pred, zero_division=0))
        assert r["f1"] == pytest.approx(f1_score(pos, pred))
        assert r["recall_top1"] == pytest.approx(recall_score(y, probs.argmax(1), labels=[c], average=None)[0])
        assert r["n_pos"] == pos.sum() and r["n"] == len(y)
    run = overall(rows, y, probs, rare=[2, 3])
    assert run["macro_auroc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert run["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, probs.argmax(1)))
    assert run["macro_f1"] == pytest.approx(np.mean([r["f1"] for r in rows]))
    assert run["rare_auroc"] == pytest.approx(np.mean([rows[2]["auroc"], rows[3]["auroc"]]))
    assert run["n_rare_auroc"] == 2 and run["n_test"] == len(y)


def test_class_without_test_images_is_left_out_and_counted():
    y, probs = _fixed_predictions()
    y = np.where(y == 3, 0, y)  # no class-3 image left
    rows = per_class(y, probs, np.full(4, 0.3))
    assert math.isnan(rows[3]["auroc"]) and math.isnan(rows[3]["recall"]) and math.isnan(rows[3]["f1"])
    value, n = macro_auroc(y, probs)
    assert n == 3 and value == pytest.approx(np.mean([r["auroc"] for r in rows[:3]]))
    run = overall(rows, y, probs, rare=[3])
    assert math.isnan(run["rare_auroc"]) and run["n_rare_auroc"] == 0


def test_thresholds_maximise_validation_f1():
    y, probs = _fixed_predictions(seed=1)
    thr = choose_thresholds(y, probs)
    for c in range(probs.shape[1]):
        pos = y == c
        pred = probs[:, c][None, :] >= np.unique(probs[:, c])[:, None]  # every threshold at once
        tp, fp, fn = (pred & pos).sum(1), (pred & ~pos).sum(1), (~pred & pos).sum(1)
        best = (2 * tp / (2 * tp + fp + fn)).max()
        assert f1_score(pos, probs[:, c] >= thr[c]) == pytest.approx(best)
    y[y == 3] = 0
    assert choose_thresholds(y, probs)[3] == 0.5  # no validation positive: the default


@pytest.mark.parametrize("values", [[0.71, 0.74, 0.69], [0.5, 0.9], [0.8, 0.81, 0.79, 0.83, 0.78]])
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_mean_ci_matches_scipy_t_interval(values, confidence):
    est = mean_ci(values, confidence)
    low, high = stats.t.interval(confidence, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert est.mean == pytest.approx(np.mean(values))
    assert (est.low, est.high) == (pytest.approx(low), pytest.approx(high))
    assert est.n == len(values) and est.sd == pytest.approx(np.std(values, ddof=1))


def test_mean_ci_small_n_and_nans():
    one = mean_ci([0.7])
    assert one.n == 1 and math.isnan(one.low) and "(n=1)" in one.text()
    assert mean_ci([0.7, float("nan"), 0.8]).n == 2
    assert mean_ci([]).text() == "n/a (n=0)"


def test_paired_difference_uses_common_seeds():
    ref = {0: 0.70, 1: 0.60, 2: 0.80, 3: 0.75}
    arm = {0: 0.72, 1: 0.63, 2: 0.83, 4: 0.99}  # seed 3 missing in arm, 4 missing in ref
    d = paired_difference(arm, ref)
    assert d.n == 3 and d.mean == pytest.approx(0.03 - 0.0033333, abs=1e-3)
    low, _ = stats.t.interval(0.95, 2, loc=d.mean, scale=stats.sem([0.02, 0.03, 0.03]))
    assert d.low == pytest.approx(low)


def test_verdicts_follow_the_adjusted_p_and_say_why_there_is_none():
    d = Stat(0.05, 0.01, 0.09, 3, 1000, 0.02, p=0.01, p_adjusted=0.03)
    assert verdict(d) == HELPED and verdict(Stat(-0.05, -0.09, -0.01, 3, p=0.01, p_adjusted=0.03)) == HURT
    # Significant unadjusted, not after the adjustment: the verdict uses the adjusted p.
    d = Stat(0.05, 0.01, 0.09, 3, p=0.02, p_adjusted=0.08)
    assert verdict(d) == NO_EVIDENCE and verdict(d, adjusted=False) == HELPED
    assert verdict(d, confidence=0.9) == HELPED
    none = Stat(0.2, math.nan, math.nan, 2, reason="2 seeds, 3 needed")
    assert verdict(none) == "no verdict: 2 seeds, 3 needed" and "no interval: 2 seeds" in none.text()
    assert Stat(0.5, 0.4, 0.6, 3, t_low=0.45, t_high=0.55).noise_text() == "±0.050"
    assert Stat(0.5, 0.4, 0.6, 3).text(signed=True) == "+0.500 [+0.400, +0.600]"


def test_build_config_precedence_and_errors(tmp_path):
    f = tmp_path / "b.yaml"
    f.write_text("epochs: 3\nseeds: 4\nmodel: tiny\naugment: {degrees: 5}\n")
    cfg = build_config(f, {"seeds": [7, 8], "model": None}, ["epochs=2", "augment.contrast=0.2"])
    assert cfg.epochs == 2 and cfg.seeds == [7, 8] and cfg.model == "tiny"
    assert cfg.augment.degrees == 5 and cfg.augment.contrast == 0.2
    assert build_config(None, {"seeds": 3}).seeds == [0, 1, 2]
    assert parse_set(["rare_classes=[Hernia, Edema]"]) == {"rare_classes": ["Hernia", "Edema"]}
    with pytest.raises(UserError, match="unknown option 'epoch'; known: model"):
        build_config(None, None, ["epoch=3"])
    with pytest.raises(UserError, match="option 'epochs'"):
        build_config(None, None, ["epochs=0"])
    with pytest.raises(UserError, match="not key=value"):
        build_config(None, None, ["epochs"])
    with pytest.raises(UserError, match="does not exist"):
        build_config(tmp_path / "missing.yaml")
    with pytest.raises(UserError, match="without repeats"):
        build_config(None, {"seeds": [1, 1]})
    assert build_config(None).ratios == ["all"] and build_config(None).adjust == "holm"
    with pytest.raises(UserError, match="bootstrap_draws"):
        build_config(None, None, ["bootstrap_draws=5"])
    with pytest.raises(UserError, match="adjust"):
        build_config(None, None, ["adjust=bonferroni"])
