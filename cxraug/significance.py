"""The statistics `benchmark` and `compare` share: resampling by group, intervals, p-values
without a floor, multiple-comparison adjustment, and what a family of tests can detect.

Resampling is by *group* (a patient): drawing a patient brings all of their images, as often
as the patient is drawn. Images of one patient are alike, so resampling images instead would
treat them as independent and give intervals that are too narrow.

The p-value of "no difference" is the two-sided normal p of z = estimate / (bootstrap sd).
The percentile p (the share of draws on the wrong side of 0) cannot go below 2 / (B + 1),
so with Holm over m tests no verdict is reachable once m > (B + 1) * alpha / 2 (B = 2000,
alpha = 0.05: m > 50), whatever the effect. The normal p has no such floor; for the smooth
statistics compared here (AUROC, F1, FID, KID differences: averages or U-statistics of many
terms) the bootstrap distribution is close to normal, and the coverage simulations
(tests/test_benchmark_bootstrap.py, benchmarks/compare_coverage.py) check the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def group_index(groups: Sequence[str] | np.ndarray) -> tuple[np.ndarray, int]:
    """Each item's group as 0..G-1, and G."""
    _, idx = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    return idx.astype(np.int64), int(idx.max()) + 1 if len(idx) else 0


def group_counts(rng: np.random.Generator, n_groups: int, n_draws: int) -> np.ndarray:
    """B x G: how often each group is drawn in each of ``n_draws`` resamples of G groups."""
    if n_groups == 0:
        return np.zeros((n_draws, 0), dtype=np.int32)
    return rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=n_draws).astype(np.int32)


def draw_items(rng: np.random.Generator, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """One resample as item positions: every item of each drawn group, once per draw of it."""
    counts = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups)) if n_groups else np.zeros(0, int)
    return np.repeat(np.arange(len(groups)), counts[groups])


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float, int]:
    """Percentile interval of the defined draws, and how many draws were defined."""
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    a = (1 - confidence) / 2
    low, high = np.quantile(v, [a, 1 - a])
    return float(low), float(high), len(v)


def recentred_interval(
    values: np.ndarray, confidence: float, estimate: float, bounds: tuple[float, float] = (-np.inf, np.inf)
) -> tuple[float, float]:
    """The bootstrap spread, re-centred on the estimate: estimate + quantiles of (draw - mean draw),
    clipped to where the value can lie. For statistics that resampling shifts (a resample of n
    holds about 0.63 n distinct images, and FID grows as n shrinks): the spread is what the
    resampling measures well, its shift is an artefact."""
    lo = (1 - confidence) / 2
    dev = values - values.mean()
    low, high = estimate + np.quantile(dev, [lo, 1 - lo])
    return float(np.clip(low, *bounds)), float(np.clip(high, *bounds))


def _draws_sd(estimate: float, draws: np.ndarray) -> float | None:
    """The sd of the defined draws; None where no p can be had (fewer than two, or no estimate)."""
    d = draws[~np.isnan(draws)]
    if len(d) < 2 or math.isnan(estimate):
        return None
    return float(np.std(d, ddof=1))


def normal_p_value(estimate: float, draws: np.ndarray, df: float = math.inf) -> float:
    """Two-sided p of "no difference" from z = estimate / sd of the (defined) draws, referred to
    the normal (or to a t with ``df`` degrees of freedom). No floor: a large effect gets a p
    small enough for any family size. NaN without two defined draws."""
    from scipy.stats import norm, t

    sd = _draws_sd(estimate, draws)
    if sd is None:
        return float("nan")
    if sd == 0.0:  # every draw equal: no noise at all, so any non-zero difference is certain
        return 1.0 if estimate == 0.0 else 0.0
    tail = norm.sf(abs(estimate) / sd) if math.isinf(df) else t.sf(abs(estimate) / sd, df)
    return float(min(1.0, 2 * tail))


T_REFERENCE_BELOW = 5  # seeds: fewer, and the p of a benchmark difference uses a t reference


def seed_df(boot_sd: float, seed_sd: float, n_seeds: int) -> float:
    """Degrees of freedom of the bootstrap variance of a difference, by Satterthwaite: the
    variance has a test-patient part (many patients: known well) and a training-seed part
    (seed_sd^2 / n, estimated from n seeds: n - 1 degrees of freedom). When the seeds' part
    dominates, df -> n - 1; when the patients' part does, df -> infinity (the normal). Infinity
    from 5 seeds on, where the normal is close enough."""
    if n_seeds >= T_REFERENCE_BELOW or n_seeds < 2 or math.isnan(seed_sd) or math.isnan(boot_sd) or boot_sd == 0:
        return math.inf
    v_seed = seed_sd**2 / n_seeds
    if v_seed == 0:
        return math.inf
    v_total = max(boot_sd**2, v_seed)
    return max(float(n_seeds - 1), v_total**2 / (v_seed**2 / (n_seeds - 1)))


def seed_aware_p_value(estimate: float, draws: np.ndarray, n_seeds: int, seed_sd: float) -> float:
    """Two-sided p of "no difference" from z = estimate / bootstrap sd, referred to a t
    distribution with :func:`seed_df` degrees of freedom below 5 seeds (a bootstrap over 3 or 4
    seeds understates their spread, and a normal reference would overstate the evidence),
    else to the normal."""
    sd = _draws_sd(estimate, draws)
    if sd is None:
        return float("nan")
    return normal_p_value(estimate, draws, seed_df(sd, seed_sd, n_seeds))


def format_p(p: float | None) -> str:
    """A p-value as a page shows it: '< 1e-4' below 1e-4 (smaller values only say how far
    the normal tail was extrapolated), else 3 decimals, or 4 below 0.001."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    if p < 1e-4:
        return "< 1e-4"
    return f"{p:.4f}" if p < 1e-3 else f"{p:.3f}"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (controls the family-wise error rate under any
    dependence between the tests; NaN stays NaN and is not counted as a test)."""
    idx = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate; NaN stays NaN)."""
    idx = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(p_values)
    running = 1.0
    for rank, i in reversed(list(enumerate(sorted(idx, key=lambda i: p_values[i])))):
        running = min(running, m * p_values[i] / (rank + 1))
        out[i] = running
    return out


ADJUSTMENTS = {"holm": holm, "bh": benjamini_hochberg}
ADJUSTMENT_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


def smallest_attainable_p(n_draws: int, m: int) -> float:
    """The smallest adjusted p any test of a family of m can get. The normal p has no floor
    from the number of draws (only the float's: its tail underflows near 1e-300), so this is
    m times the smallest positive raw p, 0 for all practical purposes; printed beside the
    verdicts so a reader sees that every verdict is reachable. (The percentile p's would be
    min(1, m * 2 / (B + 1)).)"""
    return 0.0 if m > 0 and n_draws >= 2 else 1.0


def per_test_level(alpha: float, m: int) -> float:
    """The raw p the strictest Holm/BH step needs: alpha / m (Bonferroni's level)."""
    return alpha / max(m, 1)


def detectable_difference(sd: float, alpha: float, m: int, power: float = 0.8, df: float | None = None) -> float:
    """The smallest difference a two-sided test at the family's strictest level alpha / m
    detects with ``power``, given the bootstrap sd of the difference: (z_{1-a/2m} + z_power) sd,
    or with t quantiles of ``df`` degrees of freedom where the test uses a t reference."""
    from scipy.stats import norm, t

    if math.isnan(sd):
        return math.nan
    level = per_test_level(alpha, m)
    if df is not None and not math.isinf(df):
        return float((t.isf(level / 2, df) + t.ppf(power, df)) * sd)
    return float((norm.isf(level / 2) + norm.ppf(power)) * sd)
