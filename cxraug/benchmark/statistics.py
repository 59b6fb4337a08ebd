"""Reported numbers, intervals, multiple-comparison adjustment and verdicts.

The main interval of every number is a bootstrap percentile interval (see bootstrap.py).
The secondary one, training noise only, is the t interval over seeds, mean +- t_{(1+conf)/2,
n-1} * sd / sqrt(n) (sd with n-1): with 3 to 10 seeds a normal interval would be far too
narrow. A paired difference uses only the seeds both arms finished, so training noise shared
by a seed cancels out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from cxraug.significance import ADJUSTMENT_NAMES, ADJUSTMENTS

__all__ = ["ADJUSTMENTS", "ADJUSTMENT_NAMES", "Estimate", "Stat", "mean_ci", "verdict"]

HELPED, NO_EVIDENCE, HURT = "helped", "no evidence it helps", "hurt"
PRIOR_DEPENDENT = "depends on the class prior"  # said wherever F1, precision, recall or accuracy appear
MIN_SEEDS = 3  # fewer: no interval (a resample of 2 seeds says little about training noise)


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int
    sd: float

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self, digits: int = 3, signed: bool = False) -> str:
        """mean [low, high] (n=...)."""
        if self.n == 0 or math.isnan(self.mean):
            return "n/a (n=0)"
        fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
        if self.n < 2 or math.isnan(self.low):
            return f"{fmt.format(self.mean)} (n={self.n})"
        return f"{fmt.format(self.mean)} [{fmt.format(self.low)}, {fmt.format(self.high)}] (n={self.n})"


@dataclass(frozen=True)
class Stat:
    """A reported number: the point estimate (mean over seeds on the whole test split), its
    bootstrap percentile interval (test patients and seeds), and as a secondary figure the
    t interval over seeds, which covers training noise only.

    ``reason`` says why there is no interval (then low/high are NaN). For a difference,
    ``p`` is the normal p of "no difference" from the bootstrap sd (significance.normal_p_value),
    ``p_adjusted`` the same after the multiple-comparison adjustment (None outside the adjusted
    family), ``mde`` the smallest difference the test split could detect (at the family's level
    for a verdict, see significance.detectable_difference)."""

    mean: float
    low: float
    high: float
    n: int  # seeds
    n_draws: int = 0  # bootstrap draws where the value was defined
    sd: float = math.nan  # bootstrap standard deviation
    t_low: float = math.nan
    t_high: float = math.nan
    reason: str = ""
    p: float | None = None
    p_adjusted: float | None = None
    mde: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def has_interval(self) -> bool:
        return not self.reason and not math.isnan(self.low)

    def text(self, digits: int = 3, signed: bool = False) -> str:
        """``mean [low, high]``, or ``mean (no interval: reason)``."""
        fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
        if math.isnan(self.mean):
            return "n/a"
        if not self.has_interval:
            return f"{fmt.format(self.mean)} (no interval: {self.reason or 'undefined'})"
        return f"{fmt.format(self.mean)} [{fmt.format(self.low)}, {fmt.format(self.high)}]"

    def noise_text(self, digits: int = 3) -> str:
        """The training-noise-only t interval as ± its half-width (a half-width is not a bound,
        so it never reads as a value outside the metric's range)."""
        if math.isnan(self.t_low) or self.n < MIN_SEEDS:
            return "-"
        return f"±{(self.t_high - self.t_low) / 2:.{digits}f}"


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean and t confidence interval of the finite values (NaNs are left out, and not counted)."""
    from scipy.stats import t

    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    n = len(v)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, math.nan)
    mean = sum(v) / n
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1, math.nan)
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
    half = float(t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, sd)


def paired_difference(arm: Mapping[int, float], reference: Mapping[int, float], confidence: float = 0.95) -> Estimate:
    """Mean and CI of arm - reference over the seeds where both values are defined."""
    diffs = [
        arm[s] - reference[s]
        for s in sorted(set(arm) & set(reference))
        if not (math.isnan(arm[s]) or math.isnan(reference[s]))
    ]
    return mean_ci(diffs, confidence)


def verdict(diff: Stat, confidence: float = 0.95, adjusted: bool = True) -> str:
    """helped / hurt: the (adjusted) p of the paired difference is below 1 - confidence, in
    that direction; otherwise no evidence it helps. Unadjusted, that is the normal interval
    (estimate +- z * bootstrap sd) excluding 0. A difference without an interval (too few
    seeds, too few test images) gets no verdict, and says why."""
    if diff.reason:
        return f"no verdict: {diff.reason}"
    p = diff.p_adjusted if adjusted else diff.p
    if p is None or math.isnan(p) or math.isnan(diff.mean):
        return NO_EVIDENCE
    if p < 1 - confidence:
        return HELPED if diff.mean > 0 else HURT
    return NO_EVIDENCE
