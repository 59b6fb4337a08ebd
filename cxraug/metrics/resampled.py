"""Sample-quality metrics on one bootstrap draw, from Gram matrices of the features made once per
(real, synthetic) pair: the registry's ``resample`` of each feature-pair metric; ``compare``'s
bootstrap (``cxraug.compare.bootstrap``) draws the positions.

- FID: means, traces and the nuclear norm of the doubly centred cross-Gram (the trace of
  sqrt(S_r S_f), as in ``stats.frechet_distance``); repeated images enter as weights.
- KID: unbiased MMD^2 of the whole resampled sets with KID's cubic kernel, over pairs of
  distinct original images (a drawn duplicate is not its own neighbour).
- precision/recall, density/coverage: k-NN radii among the distinct images drawn; the shares
  count every drawn image with its multiplicity.
With identity draws the functions give the ``stats`` values (tests). The real-real kernels are
made once per real set (``RealGrams``), not once per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Grams:
    """Everything one (real, fake) pair needs, as float64 tensors."""

    g_rf: torch.Tensor
    k_rr: torch.Tensor  # KID kernel blocks
    k_ff: torch.Tensor
    k_rf: torch.Tensor
    sq_r: torch.Tensor  # squared norms
    sq_f: torch.Tensor
    g_rr: torch.Tensor
    g_ff: torch.Tensor
    d_rr: torch.Tensor  # Euclidean distances
    d_ff: torch.Tensor
    d_rf: torch.Tensor


def _dist(sq_a: torch.Tensor, sq_b: torch.Tensor, g_ab: torch.Tensor) -> torch.Tensor:
    return (sq_a[:, None] + sq_b[None, :] - 2 * g_ab).clamp(min=0).sqrt()


@dataclass
class RealGrams:
    """The real set's Gram, KID kernel, norms and distances: made once, shared by every run."""

    x: torch.Tensor
    g_rr: torch.Tensor
    k_rr: torch.Tensor
    sq_r: torch.Tensor
    d_rr: torch.Tensor

    @classmethod
    def of(cls, real: np.ndarray) -> RealGrams:
        xr = torch.as_tensor(real).double()
        g_rr = xr @ xr.T
        sq_r = g_rr.diagonal().clone()
        return cls(xr, g_rr, (g_rr / xr.shape[1] + 1) ** 3, sq_r, _dist(sq_r, sq_r, g_rr))


def grams(fake: np.ndarray, r: RealGrams) -> Grams:
    xr, xf = r.x, torch.as_tensor(fake).double()
    d = xr.shape[1]
    g_ff, g_rf = xf @ xf.T, xr @ xf.T
    sq_f = g_ff.diagonal().clone()
    return Grams(
        g_rf=g_rf, k_rr=r.k_rr, k_ff=(g_ff / d + 1) ** 3, k_rf=(g_rf / d + 1) ** 3,
        sq_r=r.sq_r, sq_f=sq_f, g_rr=r.g_rr, g_ff=g_ff, d_rr=r.d_rr, d_ff=_dist(sq_f, sq_f, g_ff), d_rf=_dist(r.sq_r, sq_f, g_rf),
    )  # fmt: skip


def weights(idx: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct positions drawn and how often each was drawn."""
    counts = torch.bincount(idx, minlength=n)
    u = torch.nonzero(counts).squeeze(1)
    return u, counts[u].double()


def fid(g: Grams, ur, wr, uf, wf) -> float:
    m, k = wr.sum(), wf.sum()
    mu_rr = wr @ g.g_rr[ur][:, ur] @ wr / m**2
    mu_ff = wf @ g.g_ff[uf][:, uf] @ wf / k**2
    h = g.g_rf[ur][:, uf]
    row, col = h @ wf / k, wr @ h / m
    grand = wr @ row / m
    centred = h - row[:, None] - col[None, :] + grand
    # Repeated rows/columns: the same singular values as the weighted distinct ones.
    weighted = wr.sqrt()[:, None] * centred * wf.sqrt()[None, :]
    nuclear = torch.linalg.svdvals(weighted).sum() / torch.sqrt((m - 1) * (k - 1))
    tr_r = ((wr * g.sq_r[ur]).sum() - m * mu_rr) / (m - 1)
    tr_f = ((wf * g.sq_f[uf]).sum() - k * mu_ff) / (k - 1)
    return float(mu_rr + mu_ff - 2 * grand + tr_r + tr_f - 2 * nuclear)


def _within(kernel: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Mean kernel over ordered pairs of drawn images that are distinct originals."""
    total = w @ kernel @ w - (w * w * kernel.diagonal()).sum()
    return total / (w.sum() ** 2 - (w * w).sum())


def kid(g: Grams, ur, wr, uf, wf) -> float:
    cross = wr @ g.k_rf[ur][:, uf] @ wf / (wr.sum() * wf.sum())
    return float(_within(g.k_rr[ur][:, ur], wr) + _within(g.k_ff[uf][:, uf], wf) - 2 * cross)


def _radii(d: torch.Tensor, k: int) -> torch.Tensor:
    """k-th nearest other distinct image of each (d: distances among the distinct drawn)."""
    d = d.clone()
    d.fill_diagonal_(float("inf"))
    return d.kthvalue(min(k, len(d) - 1), dim=1).values


def pr(g: Grams, ur, wr, uf, wf, k: int) -> tuple[float, float]:
    d = g.d_rf[ur][:, uf]
    rad_r, rad_f = _radii(g.d_rr[ur][:, ur], k), _radii(g.d_ff[uf][:, uf], k)
    precision = (wf * (d <= rad_r[:, None]).any(0)).sum() / wf.sum()
    recall = (wr * (d <= rad_f[None, :]).any(1)).sum() / wr.sum()
    return float(precision), float(recall)


def dc(g: Grams, ur, wr, uf, wf, k: int) -> tuple[float, float]:
    d = g.d_rf[ur][:, uf]
    rad = _radii(g.d_rr[ur][:, ur], k)
    inside = d <= rad[:, None]
    density = (wf * (wr @ inside.double())).sum() / (wf.sum() * k)
    coverage = (wr * inside.any(1)).sum() / wr.sum()
    return float(density), float(coverage)
