"""The bootstrap of compare: identity draws give the stats values, drawn duplicates are
weights, identical runs differ by exactly 0, clearly different runs get an interval without 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxraug.compare import bootstrap as bs
from cxraug.metrics import stats

ALL = ["fid", "kid", "pr", "dc"]


def _sets(seed: int = 0, shift: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((90, 24)).astype(np.float32)
    fake = (rng.standard_normal((120, 24)) * 1.1 + shift).astype(np.float32)
    return real, fake


def _grams(real: np.ndarray, fake: np.ndarray):
    xr = torch.as_tensor(real).double()
    g = xr @ xr.T
    sq = g.diagonal().clone()
    return bs._grams(real, fake, g, sq, bs._dist(sq, sq, g))


def test_identity_draw_gives_the_stats_values() -> None:
    real, fake = _sets()
    got = bs.metrics_at(_grams(real, fake), torch.arange(90), torch.arange(120), ALL, bs.BootstrapConfig())
    assert got["fid"] == pytest.approx(stats.frechet_distance(real, fake), rel=1e-9)
    assert (got["precision"], got["recall"]) == pytest.approx(stats.precision_recall(real, fake, 3), abs=1e-12)
    assert (got["density"], got["coverage"]) == pytest.approx(stats.density_coverage(real, fake, 5), abs=1e-12)
    # KID here is the unbiased MMD^2 of the whole sets; the subset estimator scatters around it.
    kid, std = stats.kernel_inception_distance(real, fake, subset_size=45, subsets=200)
    assert abs(got["kid"] - kid) < 3 * std / np.sqrt(200) + 1e-3


def test_drawn_duplicates_are_weights() -> None:
    real, fake = _sets(1)
    gen = torch.Generator().manual_seed(0)
    ir, jf = torch.randint(90, (90,), generator=gen), torch.randint(120, (120,), generator=gen)
    got = bs.metrics_at(_grams(real, fake), ir, jf, ["fid"], bs.BootstrapConfig())["fid"]
    assert got == pytest.approx(stats.frechet_distance(real[ir.numpy()], fake[jf.numpy()]), rel=1e-9)


def test_paired_differences() -> None:
    real, fake = _sets(2)
    _, far = _sets(3, shift=1.5)
    cfg = bs.BootstrapConfig(resamples=30, seed=4)
    draws = bs.resample(real, {"a": fake, "b": fake.copy(), "c": far}, ALL, cfg)
    for o in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert np.array_equal(draws["a"][o], draws["b"][o]), o  # identical runs: identical draws
        assert bs.interval(draws["a"][o] - draws["b"][o], 0.95, 0.0) == (0.0, 0.0)
    fid_a, fid_c = stats.frechet_distance(real, fake), stats.frechet_distance(real, far)
    low, _ = bs.interval(draws["c"]["fid"] - draws["a"]["fid"], 0.95, fid_c - fid_a)
    assert low > 0  # the shifted set is worse, beyond the resampling noise
    # Repeated images shift the resampled FID upward; the interval keeps their spread, not the shift.
    assert draws["a"]["fid"].mean() > fid_a
    lo_a, hi_a = bs.interval(draws["a"]["fid"], 0.95, fid_a, bs.RANGES["fid"])
    assert lo_a < fid_a < hi_a
    width = np.subtract(*np.quantile(draws["a"]["fid"], [0.975, 0.025]))
    assert hi_a - lo_a == pytest.approx(width)
    assert bs.interval(draws["a"]["precision"], 0.95, 0.999, bs.RANGES["precision"])[1] <= 1.0
    # Same seed, same draws: the intervals repeat.
    again = bs.resample(real, {"a": fake}, ["fid"], cfg)
    assert np.array_equal(again["a"]["fid"], draws["a"]["fid"])
