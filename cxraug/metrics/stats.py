"""Distances between two sets of feature vectors: FID, KID, precision/recall, density/coverage.

FID follows torchmetrics' ``FrechetInceptionDistance`` (unbiased covariances, float64):
``|mu_r - mu_f|^2 + tr(S_r) + tr(S_f) - 2 tr sqrt(S_r S_f)``. torchmetrics takes
``tr sqrt(S_r S_f)`` from the eigenvalues of the non-symmetric 2048 x 2048 product (about 20 s
on two CPU cores). Here it is the nuclear norm of ``A_r A_f^T`` where ``A^T A = S``: ``A`` is
the centred feature matrix / sqrt(n - 1) while one side has at most 2048 samples, else the
symmetric square root of S. Same quantity, milliseconds for per-class sample sizes; tests check both agree.

KID is torchmetrics' ``KernelInceptionDistance`` estimator (cubic polynomial kernel, unbiased
MMD^2 over random subsets drawn as torchmetrics draws them) with a seeded generator so results
repeat, and the kernel computed once instead of per subset when that is cheaper. Tests check
both against torchmetrics itself (importing torchmetrics.image alone takes ~10 s, so the
scorer does not).
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _t(x: ArrayLike) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).double()


def _factor(x: torch.Tensor, raw: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and a matrix A with A^T A = unbiased covariance of the rows of x: the centred rows
    / sqrt(n - 1) (``raw``), or the d x d symmetric square root of the covariance."""
    n = len(x)
    mu = x.mean(0)
    centred = (x - mu) / np.sqrt(n - 1)
    if raw:
        return mu, centred
    w, v = torch.linalg.eigh(centred.T @ centred)
    return mu, (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(real: ArrayLike, fake: ArrayLike) -> float:
    """FID between two feature sets (rows = samples); at least 2 rows each."""
    xr, xf = _t(real), _t(fake)
    if len(xr) < 2 or len(xf) < 2:
        raise ValueError("FID needs at least 2 samples on each side")
    # While one side has no more samples than dimensions, the n_r x n_f product is the small one.
    raw = min(len(xr), len(xf)) <= xr.shape[1]
    mu_r, a_r = _factor(xr, raw)
    mu_f, a_f = _factor(xf, raw)
    trace_sqrt = torch.linalg.svdvals(a_r @ a_f.T).sum()
    value = (mu_r - mu_f).square().sum() + a_r.square().sum() + a_f.square().sum() - 2 * trace_sqrt
    return float(value)


def poly_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3, coef: float = 1.0) -> torch.Tensor:
    """KID's kernel (x.y / d + coef) ** degree, as in torchmetrics and the KID paper."""
    return (x @ y.T / x.shape[1] + coef) ** degree


def unbiased_mmd2(k_xx: torch.Tensor, k_xy: torch.Tensor, k_yy: torch.Tensor) -> torch.Tensor:
    """Unbiased squared MMD from kernel blocks of m samples each (diagonals excluded)."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within - 2 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    real: ArrayLike,
    fake: ArrayLike,
    subset_size: int,
    subsets: int = 100,
    seed: int = 0,
    degree: int = 3,
    coef: float = 1.0,
) -> tuple[float, float]:
    """KID mean and standard deviation over ``subsets`` random subsets of ``subset_size``."""
    xr, xf = _t(real), _t(fake)
    nr, nf = len(xr), len(xf)
    m = subset_size
    if m < 2 or m > min(nr, nf):
        raise ValueError(f"KID subset size {m} needs 2 <= size <= min(n_real={nr}, n_fake={nf})")
    gen = torch.Generator().manual_seed(seed)
    perms = [(torch.randperm(nr, generator=gen)[:m], torch.randperm(nf, generator=gen)[:m]) for _ in range(subsets)]
    # Whole kernel matrices once when that is cheaper than three m x m kernels per subset.
    if (nr * nr + nf * nf + nr * nf) <= 3 * subsets * m * m:
        k_rr, k_ff, k_rf = (
            poly_kernel(xr, xr, degree, coef),
            poly_kernel(xf, xf, degree, coef),
            poly_kernel(xr, xf, degree, coef),
        )
        blocks = ((k_rr[ir][:, ir], k_rf[ir][:, jf], k_ff[jf][:, jf]) for ir, jf in perms)
    else:
        blocks = (
            (
                poly_kernel(xr[ir], xr[ir], degree, coef),
                poly_kernel(xr[ir], xf[jf], degree, coef),
                poly_kernel(xf[jf], xf[jf], degree, coef),
            )
            for ir, jf in perms
        )
    s = torch.stack([unbiased_mmd2(*b) for b in blocks])
    return float(s.mean()), float(s.std(unbiased=False))


def _kth_neighbour_radius(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row."""
    out = torch.empty(len(x), dtype=x.dtype)
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i : i + chunk], x)
        out[i : i + chunk] = d.kthvalue(k + 1, dim=1).values  # +1: the row itself at distance 0
    return out


def _within_counts(queries: torch.Tensor, refs: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """For each query, how many reference balls (ref, radius) contain it."""
    out = torch.empty(len(queries), dtype=torch.long)
    for i in range(0, len(queries), chunk):
        d = torch.cdist(queries[i : i + chunk], refs)
        out[i : i + chunk] = (d <= radii[None]).sum(1)
    return out


def precision_recall(real: ArrayLike, fake: ArrayLike, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: k-NN balls around each real (fake) sample approximate the
    manifold; precision = share of fakes inside the real manifold, recall = the reverse."""
    xr, xf = _t(real).float(), _t(fake).float()
    precision = (_within_counts(xf, xr, _kth_neighbour_radius(xr, k)) > 0).double().mean()
    recall = (_within_counts(xr, xf, _kth_neighbour_radius(xf, k)) > 0).double().mean()
    return float(precision), float(recall)


def density_coverage(real: ArrayLike, fake: ArrayLike, k: int = 5) -> tuple[float, float]:
    """Naeem et al. 2020: density = mean number of real k-NN balls holding each fake / k;
    coverage = share of real balls that hold at least one fake."""
    xr, xf = _t(real).float(), _t(fake).float()
    radii = _kth_neighbour_radius(xr, k)
    density = _within_counts(xf, xr, radii).double().mean() / k
    covered = torch.zeros(len(xr), dtype=torch.bool)
    for i in range(0, len(xr), 2048):
        d = torch.cdist(xr[i : i + 2048], xf)
        covered[i : i + 2048] = d.min(dim=1).values <= radii[i : i + 2048]
    return float(density), float(covered.double().mean())
