"""Coverage of compare's intervals: over many simulated test sets, how often does the interval
of the FID difference between two runs contain the true difference?

A known model: real features x = u_p + e (u_p ~ N(0, rho^2 I) a patient effect shared by the
patient's 1-3 images, e ~ N(0, I)); run A's features ~ N(a, (1 + rho^2) I), run B's ~ N(b, ...).
Covariances are equal, so the true FID difference is |a|^2 - |b|^2, and the finite-sample
biases of the two FIDs (equal covariances, equal n, the same real images) cancel in it. Each
replication draws a fresh real set and fresh runs, resamples as compare does (paired, real
patients), and checks the re-centred interval. Resampling images instead of patients is shown
beside it (for a paired difference the shared real draw mostly cancels, so the two differ
little here; a single run's interval is where the patients matter, see
tests/test_compare_bootstrap.py).

    python benchmarks/compare_coverage.py [--reps 300] [--draws 400]
"""

from __future__ import annotations

import argparse

import numpy as np

from cxraug.compare.bootstrap import BootstrapConfig, interval, resample

RHO, DIM, SHIFT_A, SHIFT_B = 1.5, 4, 0.6, 0.3


def replication(rng: np.random.Generator, n_patients: int, n_fake: int, draws: int, by_patient: bool = True) -> bool:
    """One simulated comparison: whether the interval of FID(A) - FID(B) covers the truth."""
    per = rng.integers(1, 4, size=n_patients)
    patients = np.repeat(np.arange(n_patients), per)
    real = RHO * rng.standard_normal((n_patients, DIM))[patients] + rng.standard_normal((len(patients), DIM))
    scale = np.sqrt(1 + RHO**2)
    a = SHIFT_A + scale * rng.standard_normal((n_fake, DIM))
    b = SHIFT_B + scale * rng.standard_normal((n_fake, DIM))
    cfg = BootstrapConfig(resamples=draws, seed=int(rng.integers(1 << 30)))
    got = resample(real, {"a": a, "b": b}, ["fid"], cfg, patients.astype(str) if by_patient else None)
    diff = got.point["a"]["fid"] - got.point["b"]["fid"]
    low, high = interval(got.draws["a"]["fid"] - got.draws["b"]["fid"], 0.95, diff)
    truth = DIM * (SHIFT_A**2 - SHIFT_B**2)
    return low <= truth <= high


def coverage(reps: int, draws: int, seed: int, by_patient: bool, n_patients: int = 60, n_fake: int = 120) -> float:
    rng = np.random.default_rng(seed)
    return sum(replication(rng, n_patients, n_fake, draws, by_patient) for _ in range(reps)) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--seed", type=int, default=20261204)
    args = ap.parse_args()
    for by_patient in (True, False):
        rate = coverage(args.reps, args.draws, args.seed, by_patient)
        what = "patients" if by_patient else "images (ignoring patients)"
        print(f"resampling {what}: 95% interval of the FID difference covered the truth in {rate:.3f} "
              f"of {args.reps} replications ({args.draws} draws each)")  # fmt: skip


if __name__ == "__main__":
    main()
