"""FID/KID/precision/recall/density/coverage on feature arrays: equal to torchmetrics (the
reference), and right on cases with known answers. Low-dimensional features keep it fast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxraug.errors import UserError
from cxraug.metrics.registry import METRICS, MetricOptions, compute_metrics, resolve_metrics
from cxraug.metrics.score import proportional_counts
from cxraug.metrics.stats import density_coverage, frechet_distance, kernel_inception_distance, precision_recall


class Passthrough(torch.nn.Module):
    """torchmetrics accepts any module with num_features as its feature network."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _feats(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g, dtype=torch.float64) ** 2 + shift) * (1 + shift)


@pytest.mark.parametrize(("n_real", "n_fake"), [(30, 20), (150, 90), (40, 200)])
def test_fid_equals_torchmetrics(n_real: int, n_fake: int) -> None:
    # 64 dims: covers n below, above and on both sides of the dimension (the two code paths).
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _feats(n_real, 64, 0), _feats(n_fake, 64, 1, shift=0.05)
    ref = FrechetInceptionDistance(feature=Passthrough(64))
    ref.set_dtype(torch.float64)
    ref.update(real, real=True)
    ref.update(fake, real=False)
    expected = float(ref.compute())
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_fid_of_a_set_with_itself_is_zero_and_shift_adds_its_square() -> None:
    x = _feats(50, 16, 3)
    assert abs(frechet_distance(x, x)) < 1e-9
    # A pure translation by t changes only the mean term: FID = |t|^2.
    t = torch.full((16,), 0.5, dtype=torch.float64)
    assert frechet_distance(x, x + t) == pytest.approx(float(t.square().sum()), rel=1e-8)


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_equals_torchmetrics_with_the_same_subsets() -> None:
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = _feats(70, 48, 4), _feats(60, 48, 5, shift=0.1)
    ref = KernelInceptionDistance(feature=Passthrough(48), subsets=12, subset_size=25)
    ref.update(real, real=True)
    ref.update(fake, real=False)
    torch.manual_seed(7)  # torchmetrics draws subsets from the global generator
    mean_ref, std_ref = (float(v) for v in ref.compute())
    mean, std = kernel_inception_distance(real, fake, subset_size=25, subsets=12, seed=7)
    assert mean == pytest.approx(mean_ref, rel=1e-9) and std == pytest.approx(std_ref, rel=1e-9)
    # The per-subset path (large sets) gives the same numbers as the whole-kernel path.
    mean_b, _std_b = kernel_inception_distance(real, fake, subset_size=25, subsets=1, seed=7)
    ref_b = KernelInceptionDistance(feature=Passthrough(48), subsets=1, subset_size=25)
    ref_b.update(real, real=True)
    ref_b.update(fake, real=False)
    torch.manual_seed(7)
    assert mean_b == pytest.approx(float(ref_b.compute()[0]), rel=1e-9)


def test_kid_is_seeded_and_rejects_impossible_subsets() -> None:
    real, fake = _feats(40, 8, 0), _feats(40, 8, 1)
    assert kernel_inception_distance(real, fake, 10, 5, seed=1) == kernel_inception_distance(real, fake, 10, 5, seed=1)
    with pytest.raises(ValueError, match="subset size"):
        kernel_inception_distance(real, fake, 41)


def test_kid_subset_size_adapts_to_small_sets() -> None:
    real, fake = _feats(30, 8, 0).numpy(), _feats(3000, 8, 1).numpy()
    out = compute_metrics(["kid"], real, fake, MetricOptions(kid_subsets=5))
    assert out["kid_subset_size"] == 15 and out["kid_std"] > 0
    out = compute_metrics(["kid"], _feats(2500, 8, 2).numpy(), fake, MetricOptions(kid_subsets=2))
    assert out["kid_subset_size"] == 1000


def test_precision_recall_density_coverage_known_cases() -> None:
    real = _feats(120, 10, 0)
    assert precision_recall(real, real) == (1.0, 1.0)
    density, coverage = density_coverage(real, real)
    assert coverage == 1.0 and density >= 1.0  # each point lies in its own ball and k others'
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    assert density_coverage(real, far) == (0.0, 0.0)
    # Fakes collapsed onto one real sample: precise, but no recall and little coverage.
    collapsed = real[:1].repeat(120, 1)
    p, r = precision_recall(real, collapsed)
    _d, c = density_coverage(real, collapsed)
    assert p == 1.0 and r < 0.05 and c < 0.1


def test_registry_names_and_unknown_metric() -> None:
    # The default set needs no reference classifier; 'all' adds the two that train one.
    assert resolve_metrics(None) == resolve_metrics([]) == ["fid", "kid", "pr", "dc"]
    assert resolve_metrics(["KID", "fid"]) == ["fid", "kid"]
    assert resolve_metrics(["all"]) == list(METRICS) == ["fid", "kid", "pr", "dc", "fidelity", "fd_cxr"]
    assert resolve_metrics(["fd_cxr", "fidelity", "fid"]) == ["fid", "fidelity", "fd_cxr"]
    with pytest.raises(UserError, match="unknown metric 'fdi'; known: fid, kid, pr, dc, fidelity, fd_cxr"):
        resolve_metrics(["fdi"])
    with pytest.raises(ValueError, match="not computed from two feature sets"):
        compute_metrics(["fidelity"], np.zeros((4, 2)), np.zeros((4, 2)), MetricOptions())


def test_proportional_counts_follow_real_mix_within_availability() -> None:
    counts = proportional_counts({"a": 600, "b": 300, "c": 100}, {"a": 1000, "b": 1000, "c": 1000})
    assert counts == {"a": 1000, "b": 500, "c": 167}  # limited by a; c gets the largest remainder
    assert proportional_counts({"a": 10, "b": 10}, {"a": 7, "b": 100}) == {"a": 7, "b": 7}
    assert proportional_counts({"a": 10, "b": 0}, {"a": 50, "b": 50}, total=20) == {"a": 20, "b": 0}
    assert sum(proportional_counts({"a": 3, "b": 3, "c": 3}, {"a": 9, "b": 9, "c": 9}, total=10).values()) == 10
    assert np.all(np.array(list(proportional_counts({"x": 1}, {"x": 0}).values())) == 0)
