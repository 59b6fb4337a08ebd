"""Paired, two-level bootstrap of test metrics over stored predictions.

One draw resamples the test *patients* with replacement (every image of a drawn patient
comes along, as often as the patient is drawn) and, independently, re-weights the *seeds*
at random. The same draw is applied to every arm, so an arm's difference from the reference
is taken on the same patients and the same seeds: the pairing survives.

Seeds are few (3 to 10), and drawing n of n with replacement makes the seed average vary by
(n-1)/n of the usual estimate s^2/n. Dirichlet(alpha) weights with alpha = (n-2)/n make that
variance exactly s^2/n and keep the average a convex combination of the seeds' values (so it
stays in the metric's range); with alpha = 1 they would be Rubin's Bayesian bootstrap.

A resample is a weight per test image (how often its patient was drawn), so each metric is
computed from weighted counts on the stored probabilities and thresholds: nothing is
retrained and no image array is copied. Metrics of a draw are valid metric values, so
percentile intervals stay inside each metric's range by construction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from cxraug.benchmark.metrics import CLASS_METRICS, RUN_METRICS
from cxraug.significance import group_counts, group_index, percentile_interval

__all__ = ["Draws", "StoredRun", "arm_draws", "make_draws", "percentile_interval", "run_metric_draws"]

_CHUNK_ELEMENTS = 2_000_000  # draws x images per block: bounds memory on large test splits


@dataclass(frozen=True)
class StoredRun:
    """One trained model's test predictions (rows in the test split's order)."""

    probs: np.ndarray  # N x K
    thresholds: np.ndarray  # K


@dataclass(frozen=True)
class Draws:
    """The resampling plan, shared by every arm: patient counts and seed weights per draw."""

    patient_counts: np.ndarray  # B x P, how often each test patient is drawn
    seed_weights: np.ndarray  # B x S, each row sums to 1
    groups: np.ndarray  # N, the patient (0..P-1) of each test image

    @property
    def n_draws(self) -> int:
        return len(self.seed_weights)

    def weight_blocks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """(draw slice, B_block x N image weights) in blocks of bounded size."""
        n = max(len(self.groups), 1)
        step = max(1, _CHUNK_ELEMENTS // n)
        for start in range(0, self.n_draws, step):
            sl = slice(start, min(start + step, self.n_draws))
            yield sl, self.patient_counts[sl][:, self.groups].astype(np.float64)


def seed_alpha(n_seeds: int) -> float:
    """Dirichlet concentration whose weighted seed mean has variance s^2 / n (n >= 3)."""
    return (n_seeds - 2) / n_seeds


def patient_strata(groups: np.ndarray, n_patients: int, labels: np.ndarray) -> np.ndarray:
    """Each patient's stratum: the rarest class (fewest test patients) among their images, so a
    rare class's patients are resampled among themselves and the class is in every draw."""
    k = int(labels.max()) + 1 if len(labels) else 0
    has = np.zeros((n_patients, k), dtype=bool)
    has[groups, labels] = True
    per_class = has.sum(axis=0)
    rank = np.where(has, per_class[None, :], np.iinfo(np.int64).max)
    return rank.argmin(axis=1) if k else np.zeros(n_patients, dtype=np.int64)


def make_draws(
    patients: Sequence[str] | np.ndarray,
    n_seeds: int,
    n_draws: int,
    seed: int,
    labels: np.ndarray | None = None,
) -> Draws:
    """Draw ``n_draws`` resamples of the test patients and weightings of ``n_seeds`` (>= 3) seeds.

    With the images' ``labels`` the resample is stratified: the patients of each stratum
    (patient_strata) are drawn among themselves, as many as the stratum has, so every class
    keeps its patients' count and macro and rare averages keep their class set in every draw."""
    if n_seeds < 3:
        raise ValueError("the seed level needs at least 3 seeds")
    groups, n_patients = group_index(patients)
    rng = np.random.default_rng(seed)
    if labels is None:
        patient_counts = group_counts(rng, n_patients, n_draws)
    else:
        strata = patient_strata(groups, n_patients, np.asarray(labels, dtype=np.int64))
        patient_counts = np.zeros((n_draws, n_patients), dtype=np.int32)
        for s in np.unique(strata):
            members = np.flatnonzero(strata == s)
            patient_counts[:, members] = group_counts(rng, len(members), n_draws)
    seed_weights = rng.dirichlet(np.full(n_seeds, seed_alpha(n_seeds)), size=n_draws)
    return Draws(patient_counts, seed_weights, groups)


@dataclass(frozen=True)
class _RankedClass:
    """One class's scores of one run, prepared once for every draw: the patients of its
    negatives in score order, of its positives, and for each positive how many negatives
    score below it (lo) and at most as high (hi)."""

    neg_groups: np.ndarray
    pos_groups: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray, positive: np.ndarray, groups: np.ndarray) -> _RankedClass:
        neg = np.flatnonzero(~positive)
        neg = neg[np.argsort(scores[neg], kind="stable")]
        pos = np.flatnonzero(positive)
        neg_scores = scores[neg]
        lo = np.searchsorted(neg_scores, scores[pos], side="left")
        hi = np.searchsorted(neg_scores, scores[pos], side="right")
        return cls(groups[neg], groups[pos], lo, hi)

    def auroc(self, counts: np.ndarray) -> np.ndarray:
        """AUROC (ties count one half) under each row of patient ``counts`` (B x P)."""
        wn = counts[:, self.neg_groups]
        below = np.zeros((len(counts), wn.shape[1] + 1), dtype=np.int64)
        np.cumsum(wn, axis=1, out=below[:, 1:])  # below[:, r]: weight of the r lowest negatives
        wp = counts[:, self.pos_groups]
        lo, hi = below[:, self.lo], below[:, self.hi]
        num = (wp * (lo + 0.5 * (hi - lo))).sum(axis=1)
        tot_p, tot_n = wp.sum(axis=1), below[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((tot_p > 0) & (tot_n > 0), num / (tot_p * tot_n), np.nan)


def weighted_auroc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC (Mann-Whitney, ties count one half) of each row of integer ``weights`` (B x N):
    the AUROC of the data with each image repeated that often. NaN where a draw has no
    positive or no negative."""
    ranked = _RankedClass.of(scores, positive, np.arange(len(scores)))
    return ranked.auroc(np.asarray(weights, dtype=np.int64))


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean over the defined values (NaN where none is), without numpy's warning."""
    ok = ~np.isnan(x)
    n = ok.sum(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, np.where(ok, x, 0.0).sum(axis=axis) / n, np.nan)


class _PreparedRun:
    """What a run's metrics need under any draw, computed once: per-class rankings for the
    AUROC, and one indicator matrix whose product with the image weights gives every count."""

    def __init__(self, run: StoredRun, labels: np.ndarray, groups: np.ndarray) -> None:
        k = run.probs.shape[1]
        onehot = labels[:, None] == np.arange(k)[None, :]
        pred = run.probs >= run.thresholds[None, :]
        top1 = run.probs.argmax(axis=1)[:, None] == np.arange(k)[None, :]
        # tp, fp, fn, positives, top-1 hits: five blocks of k columns.
        self.indicators = np.concatenate(
            [onehot & pred, ~onehot & pred, onehot & ~pred, onehot, onehot & top1], axis=1
        ).astype(np.float64)
        self.k = k
        self.ranked = [_RankedClass.of(run.probs[:, c], onehot[:, c], groups) for c in range(k)]

    def metrics(self, counts: np.ndarray, weights: np.ndarray, rare: Sequence[int]) -> dict[str, np.ndarray]:
        k = self.k
        tp, fp, fn, n_pos, hit1 = np.split(weights @ self.indicators, 5, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = {
                "recall": np.where(n_pos > 0, tp / n_pos, np.nan),
                "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
                "f1": np.where(n_pos > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
                "recall_top1": np.where(n_pos > 0, hit1 / n_pos, np.nan),
            }
        out["auroc"] = np.stack([self.ranked[c].auroc(counts) for c in range(k)], axis=1)
        out["macro_auroc"] = _nanmean(out["auroc"], 1)
        out["macro_f1"] = _nanmean(out["f1"], 1)
        out["balanced_accuracy"] = _nanmean(out["recall_top1"], 1)
        rare = list(rare)
        for key in ("auroc", "f1", "recall"):
            out[f"rare_{key}"] = _nanmean(out[key][:, rare], 1) if rare else np.full(len(weights), np.nan)
        return out


def run_metric_draws(
    run: StoredRun, labels: np.ndarray, weights: np.ndarray, rare: Sequence[int]
) -> dict[str, np.ndarray]:
    """Every metric of metrics.per_class / metrics.overall for each row of integer image
    ``weights`` (B x N): class metrics B x K, run metrics B. With all weights 1 they equal
    the plain metrics."""
    weights = np.asarray(weights)
    prepared = _PreparedRun(run, labels, np.arange(len(labels)))
    return prepared.metrics(weights.astype(np.int64), weights.astype(np.float64), rare)


def arm_draws(
    runs: Sequence[StoredRun],
    labels: np.ndarray,
    draws: Draws,
    rare: Sequence[int],
    advance=None,
) -> dict[str, np.ndarray]:
    """An arm's metric per draw: the draw's weighted mean over the seeds (``runs`` in the
    order of the seeds of ``draws``) of each seed's metric on the draw's resampled patients."""
    b = draws.n_draws
    k = runs[0].probs.shape[1]
    out = {m: np.zeros((b, k)) for m in CLASS_METRICS} | {m: np.zeros(b) for m in RUN_METRICS}
    share = draws.seed_weights
    for j, run in enumerate(runs):
        prepared = _PreparedRun(run, labels, draws.groups)
        for sl, w in draws.weight_blocks():
            wj = share[sl, j]
            counts = draws.patient_counts[sl].astype(np.int64)
            for m, v in prepared.metrics(counts, w, rare).items():
                wcol = wj[:, None] if v.ndim == 2 else wj
                # A seed of weight 0 contributes nothing, even where its metric is NaN.
                out[m][sl] += np.where(wcol > 0, v * wcol, 0.0)
        if advance is not None:
            advance(1)
    # Every metric lies in [0, 1]; weights that sum to 1 only up to rounding must not push an
    # average of 1.0 to 1.0000000000000002.
    return {m: np.clip(v, 0.0, 1.0) for m, v in out.items()}
