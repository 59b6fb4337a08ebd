"""The bootstrap of compare: identity draws give the stats values, drawn duplicates are
weights, identical runs differ by exactly 0, clearly different runs get an interval without 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxraug.compare import bootstrap as bs
from cxraug.metrics import stats
from cxraug.metrics.registry import bounds
from cxraug.significance import draw_items, group_index

ALL = ["fid", "kid", "pr", "dc"]


def _sets(seed: int = 0, shift: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((90, 24)).astype(np.float32)
    fake = (rng.standard_normal((120, 24)) * 1.1 + shift).astype(np.float32)
    return real, fake


def _grams(real: np.ndarray, fake: np.ndarray):
    return bs._grams(fake, bs.RealSide.of(real))


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
    draws = bs.resample(real, {"a": fake, "b": fake.copy(), "c": far}, ALL, cfg).draws
    for o in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert np.array_equal(draws["a"][o], draws["b"][o]), o  # identical runs: identical draws
        assert bs.interval(draws["a"][o] - draws["b"][o], 0.95, 0.0) == (0.0, 0.0)
    fid_a, fid_c = stats.frechet_distance(real, fake), stats.frechet_distance(real, far)
    low, _ = bs.interval(draws["c"]["fid"] - draws["a"]["fid"], 0.95, fid_c - fid_a)
    assert low > 0  # the shifted set is worse, beyond the resampling noise
    # Repeated images shift the resampled FID upward; the interval keeps their spread, not the shift.
    assert draws["a"]["fid"].mean() > fid_a
    lo_a, hi_a = bs.interval(draws["a"]["fid"], 0.95, fid_a, bounds("fid"))
    assert lo_a < fid_a < hi_a
    width = np.subtract(*np.quantile(draws["a"]["fid"], [0.975, 0.025]))
    assert hi_a - lo_a == pytest.approx(width)
    assert bs.interval(draws["a"]["precision"], 0.95, 0.999, bounds("precision"))[1] <= 1.0
    # Same seed, same draws: the intervals repeat.
    again = bs.resample(real, {"a": fake}, ["fid"], cfg).draws
    assert np.array_equal(again["a"]["fid"], draws["a"]["fid"])


def test_the_kid_value_is_the_estimator_the_interval_resamples() -> None:
    real, fake = _sets(5)
    got = bs.resample(real, {"a": fake}, ["kid"], bs.BootstrapConfig(resamples=4))
    whole = bs.metrics_at(_grams(real, fake), torch.arange(90), torch.arange(120), ["kid"], bs.BootstrapConfig())
    assert got.point["a"]["kid"] == whole["kid"]


def test_the_real_kernel_is_made_once_for_every_run(monkeypatch) -> None:
    real, fake = _sets(6)
    made = []
    original = bs.RealSide.of
    monkeypatch.setattr(bs.RealSide, "of", classmethod(lambda cls, r: made.append(1) or original(r)))
    bs.resample(real, {"a": fake, "b": fake + 1, "c": fake - 1}, ALL, bs.BootstrapConfig(resamples=2))
    assert len(made) == 1


def test_real_images_are_resampled_by_patient() -> None:
    # Three images per patient, nearly identical: resampling images would treat them as
    # independent and give a spread about sqrt(3) too narrow; by patient it is right.
    rng = np.random.default_rng(7)
    patient = rng.standard_normal((30, 8))
    real = (np.repeat(patient, 3, axis=0) + 0.01 * rng.standard_normal((90, 8))).astype(np.float32)
    groups = np.repeat(np.arange(30), 3).astype(str)
    fake = rng.standard_normal((600, 8)).astype(np.float32) + 0.5  # many: the spread is the real side's
    cfg = bs.BootstrapConfig(resamples=300, seed=1)
    by_patient = bs.resample(real, {"a": fake}, ["fid"], cfg, groups).draws["a"]["fid"].std()
    by_image = bs.resample(real, {"a": fake}, ["fid"], cfg).draws["a"]["fid"].std()
    assert by_patient > 1.4 * by_image
    ir = torch.as_tensor(draw_items(np.random.default_rng(0), *group_index(groups)))
    drawn = np.bincount(ir.numpy(), minlength=90).reshape(30, 3)
    assert (drawn == drawn[:, :1]).all(), "a patient's images come along together"


def test_better_is_adjusted_over_the_whole_family() -> None:
    from cxraug.compare.rows import _difference

    rng = np.random.default_rng(3)
    # 20 FID differences whose own intervals exclude 0 (p about 0.01), and one clear one.
    draws = {"a": {"fid": 2.6 + rng.standard_normal(2000)}, "b": {"fid": np.zeros(2000)}}
    clear = {"a": {"fid": 10 + rng.standard_normal(2000)}, "b": {"fid": np.zeros(2000)}}
    diffs = [_difference(f"c{i}", "a", "b", "fid", {"a": {"fid": 2.6}, "b": {"fid": 0.0}}, draws, 0.95, True)
             for i in range(20)]  # fmt: skip
    diffs.append(_difference("all", "a", "b", "fid", {"a": {"fid": 10.0}, "b": {"fid": 0.0}}, clear, 0.95, True))
    assert all(d["excludes_zero"] for d in diffs)
    from cxraug.compare.rows import _adjust

    _adjust(diffs, 0.05)
    assert [d["better"] for d in diffs[:20]] == ["no difference"] * 20  # 21 x 0.009 > 0.05
    assert diffs[20]["better"] == "b" and diffs[20]["family"] == 21  # lower FID is better: b


def test_coverage_of_the_difference_is_about_nominal() -> None:
    # The fast version of benchmarks/compare_coverage.py (300 replications there).
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from compare_coverage import coverage

    rate = coverage(reps=30, draws=100, seed=3, by_patient=True)
    assert rate >= 0.8, rate  # 30 replications: sd 0.04 at 0.95; a broken interval is far below


def test_with_one_class_the_all_row_is_not_a_second_test() -> None:
    """With one class compared, the all row is that class's comparison again: it shares the
    class's adjusted p instead of doubling m (NIH 32 px, No Finding only: m was 10 for 5 metrics,
    and a FID difference whose interval excluded 0 at p 0.006 read "no difference")."""
    from cxraug.compare.rows import _adjust, _difference

    rng = np.random.default_rng(4)
    per_run = {"a": {"fid": 2.6, "kid": 0.0}, "b": {"fid": 0.0, "kid": 0.0}}
    draws = {"a": {"fid": 2.6 + rng.standard_normal(2000), "kid": rng.standard_normal(2000)},
             "b": {"fid": np.zeros(2000), "kid": np.zeros(2000)}}  # fmt: skip
    diffs = [
        _difference(c, "a", "b", o, per_run, draws, 0.95, True) for c in ("No Finding", "all") for o in ("fid", "kid")
    ]
    one = [dict(d) for d in diffs]
    _adjust(one, 0.05)
    assert [d["family"] for d in one] == [2, 2, 2, 2]
    assert one[0]["p_adjusted"] == one[2]["p_adjusted"] and one[0]["better"] == one[2]["better"] == "b"
    # two classes: four distinct tests, the all row among them
    two = [dict(d, **{"class": c}) for d, c in zip(diffs, ("A", "A", "B", "B"), strict=True)]
    two += [dict(diffs[0], **{"class": "all"})]
    _adjust(two, 0.05)
    assert {d["family"] for d in two} == {5}
