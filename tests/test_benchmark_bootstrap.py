"""The bootstrap: weighted metrics equal the plain ones on replicated data; the resample is
by patient and shared by every arm; intervals stay in each metric's range; the interval
covers a known true difference at about the nominal rate; Holm and BH on known p-values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from cxraug.benchmark.bootstrap import StoredRun, arm_draws, make_draws, run_metric_draws, weighted_auroc
from cxraug.benchmark.metrics import CLASS_METRICS, overall, per_class
from cxraug.classify.scores import one_vs_rest_auroc
from cxraug.significance import benjamini_hochberg, holm, normal_p_value, percentile_interval


def _predictions(n: int = 120, k: int = 3, seed: int = 0, strength: float = 1.5):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=[0.6, 0.3, 0.1][:k] if k == 3 else None)
    logits = rng.normal(size=(n, k)) + strength * np.eye(k)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, np.round(probs, 2)  # rounded: ties must count one half, as in the plain AUROC


def test_weighted_metrics_equal_plain_metrics_on_replicated_rows():
    y, probs = _predictions()
    thr = np.array([0.4, 0.3, 0.2])
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 4, size=(5, len(y))).astype(float)
    weights[0] = 1.0
    draws = run_metric_draws(StoredRun(probs, thr), y, weights, rare=[2])
    for b, w in enumerate(weights):
        rows = np.repeat(np.arange(len(y)), w.astype(int))
        plain = per_class(y[rows], probs[rows], thr)
        run = overall(plain, y[rows], probs[rows], [2])
        for c in range(3):
            assert draws["auroc"][b, c] == pytest.approx(one_vs_rest_auroc(y[rows], probs[rows], c))
            for m in CLASS_METRICS:
                assert draws[m][b, c] == pytest.approx(plain[c][m], nan_ok=True), (m, b, c)
        for m in ("macro_auroc", "macro_f1", "balanced_accuracy", "rare_auroc", "rare_f1", "rare_recall"):
            assert draws[m][b] == pytest.approx(run[m], nan_ok=True), (m, b)


def test_auroc_of_a_draw_without_positives_is_nan():
    w = np.array([[1.0, 1.0, 0.0, 0.0]])
    assert math.isnan(weighted_auroc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([False, False, True, True]), w)[0])


def test_resample_is_by_patient_and_reproducible():
    patients = np.array(["a", "a", "a", "b", "c", "c"])
    d = make_draws(patients, n_seeds=3, n_draws=50, seed=4)
    assert d.patient_counts.shape == (50, 3) and (d.patient_counts.sum(1) == 3).all()
    assert d.seed_weights.sum(1) == pytest.approx(np.ones(50)) and (d.seed_weights >= 0).all()
    for _, w in d.weight_blocks():
        assert (w[:, 0] == w[:, 1]).all() and (w[:, 1] == w[:, 2]).all() and (w[:, 4] == w[:, 5]).all()
    again = make_draws(patients, 3, 50, 4)
    assert (again.patient_counts == d.patient_counts).all() and (again.seed_weights == d.seed_weights).all()
    assert not (make_draws(patients, 3, 50, 5).patient_counts == d.patient_counts).all()


def test_seed_weights_give_the_seed_mean_its_usual_variance():
    # Var(sum w_s x_s) over the draws must be s^2 / n (sd with n - 1), for 3 and for 6 seeds.
    for x in (np.array([0.2, 0.5, 0.9]), np.array([0.1, 0.3, 0.35, 0.6, 0.8, 0.82])):
        d = make_draws(np.arange(4), n_seeds=len(x), n_draws=40_000, seed=1)
        means = d.seed_weights @ x
        assert means.var() == pytest.approx(x.var(ddof=1) / len(x), rel=0.03)
        assert x.min() <= means.min() and means.max() <= x.max()  # convex: never outside the seeds' range
    with pytest.raises(ValueError, match="3 seeds"):
        make_draws(np.arange(4), n_seeds=2, n_draws=10, seed=0)


def test_intervals_stay_inside_the_metric_range():
    # Near-perfect and near-useless models on few images: a t interval would leave [0, 1].
    y, good = _predictions(n=40, seed=2, strength=6.0)
    _, bad = _predictions(n=40, seed=3, strength=0.0)
    patients = np.arange(40) // 2
    draws = make_draws(patients, n_seeds=3, n_draws=400, seed=0)
    thr = np.full(3, 0.5)
    arms = {
        "good": arm_draws([StoredRun(good, thr)] * 2 + [StoredRun(bad, thr)], y, draws, [2]),
        "bad": arm_draws([StoredRun(bad, thr)] * 3, y, draws, [2]),
    }
    for values in arms.values():
        for m, v in values.items():
            low, high, n = percentile_interval(v.ravel(), 0.95)
            assert n > 0 and 0.0 <= low <= high <= 1.0, m
    for m in arms["good"]:
        low, high, _ = percentile_interval((arms["good"][m] - arms["bad"][m]).ravel(), 0.95)
        assert -1.0 <= low <= high <= 1.0, m
    perfect = arm_draws([StoredRun(good, thr)] * 3, y, draws, [2])["recall"][:, 0]
    assert per_class(y, good, thr)[0]["recall"] == 1.0  # so every draw is 1: the end is reached, not passed
    low, high, _ = percentile_interval(perfect, 0.95)
    assert low == pytest.approx(1.0) and high == 1.0  # reached, and rounding never passes it


def test_p_value_has_no_floor():
    # z = 0.1 / 0.01 = 10: p about 1.5e-23, far below the 2 / (B + 1) of a percentile p.
    d = 0.1 + 0.01 * np.random.default_rng(0).standard_normal(999)
    assert normal_p_value(0.1, d) == pytest.approx(2 * norm.sf(0.1 / d.std(ddof=1)))
    assert normal_p_value(0.1, d) < 1e-20
    assert normal_p_value(0.0, np.zeros(10)) == 1.0 and normal_p_value(0.2, np.full(10, 0.2)) == 0.0
    assert normal_p_value(0.0, np.r_[np.full(50, -1.0), np.full(50, 1.0)]) == 1.0
    assert math.isnan(normal_p_value(0.1, np.array([np.nan, 0.1])))


def test_holm_and_bh_on_known_p_values():
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, made monotone: .02, .03, .06, .06
    assert holm(p)[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and math.isnan(holm(p)[4])
    # BH: 0.005*4/1=.02, 0.01*4/2=.02, 0.03*4/3=.04, 0.04*4/4=.04, made monotone from the top
    assert benjamini_hochberg(p)[:4] == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []


# The coverage simulation. A known model: image i of patient p has a latent score
# x = mu * y + u_p + e (u_p a patient effect shared by the patient's images, e noise); arm a,
# seed s scores it x + delta_a * y + tau * z_{a,s} * y + sigma * eta_{a,s,i}. Over test sets,
# seeds and noise the arm's expected AUROC is Phi((mu + delta_a) / sqrt(2 (1 + rho^2 + sigma^2)
# + tau^2)) (E Phi((m + tau Z) / c) = Phi(m / sqrt(c^2 + tau^2))), up to the O(1/patients) share of
# pairs within one patient. The interval of the paired difference must cover the true one.
MU, RHO, SIGMA, TAU, DELTAS = 1.0, 0.5, 0.5, 0.15, (0.0, 0.3)


def _true_auroc(delta: float) -> float:
    return float(norm.cdf((MU + delta) / math.sqrt(2 * (1 + RHO**2 + SIGMA**2) + TAU**2)))


def _replication(
    rng: np.random.Generator, n_patients: int, n_seeds: int, n_draws: int, deltas: tuple[float, float] = DELTAS
) -> tuple[float, float, float]:
    per = rng.integers(1, 4, size=n_patients)
    patients = np.repeat(np.arange(n_patients), per)
    y = (rng.random(len(patients)) < 0.3).astype(np.int64)
    x = MU * y + RHO * rng.normal(size=n_patients)[patients] + rng.normal(size=len(y))
    arms = []
    for delta in deltas:
        runs = []
        for _ in range(n_seeds):
            score = x + delta * y + TAU * rng.normal() * y + SIGMA * rng.normal(size=len(y))
            p1 = 1 / (1 + np.exp(-score))
            runs.append(StoredRun(np.stack([1 - p1, p1], axis=1), np.full(2, 0.5)))
        arms.append(runs)
    draws = make_draws(patients.astype(str), n_seeds, n_draws, int(rng.integers(1 << 30)))
    d = arm_draws(arms[1], y, draws, [1])["auroc"][:, 1] - arm_draws(arms[0], y, draws, [1])["auroc"][:, 1]
    low, high, _ = percentile_interval(d, 0.95)
    point = np.mean([one_vs_rest_auroc(y, r.probs, 1) for r in arms[1]]) - np.mean(
        [one_vs_rest_auroc(y, r.probs, 1) for r in arms[0]]
    )
    return low, high, normal_p_value(float(point), d)


def test_coverage_of_the_paired_difference_is_about_nominal():
    rng = np.random.default_rng(20261201)
    truth = _true_auroc(DELTAS[1]) - _true_auroc(DELTAS[0])
    reps = 300
    hits = 0
    for _ in range(reps):
        low, high, _ = _replication(rng, n_patients=60, n_seeds=5, n_draws=400)
        hits += low <= truth <= high
    rate = hits / reps
    print(f"bootstrap 95% interval of the paired AUROC difference covered the truth in {hits}/{reps} = {rate:.3f}")
    # 300 replications: the rate's sd at 0.95 is 0.013; a broken interval is far outside this.
    assert 0.91 <= rate <= 0.99


def test_normal_p_keeps_its_level_without_a_difference():
    # Two arms alike: "helped or hurt" at p < 0.05 must happen in about 5% of test sets.
    rng = np.random.default_rng(20261202)
    reps = 200
    rejected = sum(_replication(rng, 60, 5, 200, deltas=(0.0, 0.0))[2] < 0.05 for _ in range(reps))
    print(f"normal p < 0.05 with no difference in {rejected}/{reps} replications")
    # 200 replications: sd of the rate at 0.05 is 0.015; a p that ignores the patients is far above.
    assert rejected / reps <= 0.095
