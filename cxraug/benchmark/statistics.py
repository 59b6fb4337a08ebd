"""Means and confidence intervals over seeds, and paired differences between arms.

The interval is the t interval mean +- t_{(1+conf)/2, n-1} * sd / sqrt(n) (sd with n-1): with
3 to 10 seeds the normal approximation would be far too narrow. A paired difference uses only
the seeds both arms finished, so training noise shared by a seed cancels out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

HELPED, NO_EVIDENCE, HURT, TOO_FEW = "helped", "no evidence it helps", "hurt", "too few seeds"
TOO_FEW_TEST = "no verdict: too few test images"


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
        if self.n == 0 or math.isnan(self.mean):
            return "n/a (n=0)"
        fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
        if self.n < 2 or math.isnan(self.low):
            return f"{fmt.format(self.mean)} (n={self.n})"
        return f"{fmt.format(self.mean)} [{fmt.format(self.low)}, {fmt.format(self.high)}] (n={self.n})"


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


def verdict(diff: Estimate, n_test: int | None = None, min_test: int = 0) -> str:
    """helped: the whole CI is above 0; hurt: below 0; otherwise no evidence it helps.

    The interval over seeds covers training randomness only, not which test images happened
    to be drawn: with a handful of positive test images a class's AUROC moves in steps of
    1/n_pos and seeds agree on the same few images. Below ``min_test`` positives (``n_test``)
    no verdict is given; the numbers are still reported."""
    if n_test is not None and n_test < min_test:
        return TOO_FEW_TEST
    if diff.n < 2 or math.isnan(diff.low):
        return TOO_FEW
    if diff.low > 0:
        return HELPED
    if diff.high < 0:
        return HURT
    return NO_EVIDENCE
