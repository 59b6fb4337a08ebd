"""Arms of replicated runs in ``compare``: a method trained again with other seeds.

An arm's value is the mean over its replicates. Its bootstrap is hierarchical: each resample
draws the replicates with replacement (the same draw for every class and metric of that
resample), then uses, for each drawn replicate, its metric on that resample's draw of real
patients and synthetic positions (``rows.row_draws``). So the interval of an arm, and of the
difference between two arms, includes the spread between training runs; an arm of one run
covers that one trained generator only, and an arm of identical replicates gets exactly the
one run's interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxraug.fsutil import json_number


@dataclass(frozen=True)
class ArmSpec:
    """One compared method: a name (None: from its runs) and its replicate runs."""

    name: str | None
    runs: tuple[Path, ...]


def arm_labels(specs: list[ArmSpec], run_labels: list[str]) -> dict[str, list[str]]:
    """Arm label -> its replicates' run labels (``run_labels``: every run, in the specs' order).
    An arm without a name is its run's label, or the first run's with "xK" for K replicates."""
    from cxraug.errors import UserError

    out: dict[str, list[str]] = {}
    i = 0
    for spec in specs:
        reps = run_labels[i : i + len(spec.runs)]
        i += len(spec.runs)
        label = spec.name or (reps[0] if len(reps) == 1 else f"{reps[0]} x{len(reps)}")
        if label in out:
            raise UserError(f"two arms are called {label!r}; name them (NAME=RUN1,RUN2,...)")
        out[label] = reps
    return out


def replicate_plan(arms: dict[str, list[str]], resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Per arm, the replicates drawn (with replacement) on each resample: resamples x K indices.
    Drawn once, so one resample uses the same replicates in every class and metric."""
    rng = np.random.default_rng([seed, 33])  # apart from the patient draws (seed alone)
    return {arm: rng.integers(len(reps), size=(resamples, len(reps))) for arm, reps in arms.items()}


def arm_draws(
    draws: dict[str, dict[str, np.ndarray]], arms: dict[str, list[str]], plan: dict[str, np.ndarray]
) -> dict[str, dict[str, np.ndarray]]:
    """Per arm and output: the mean over the drawn replicates of their value on each resample."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for arm, reps in arms.items():
        if len(reps) == 1:
            out[arm] = draws[reps[0]]
            continue
        outputs = [o for o in draws[reps[0]] if all(o in draws[r] for r in reps)]
        out[arm] = {}
        for o in outputs:
            values = np.stack([draws[r][o] for r in reps])  # K x resamples
            cols = np.arange(values.shape[1])
            out[arm][o] = values[plan[arm], cols[:, None]].mean(axis=1)
    return out


def arm_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """An arm's row from its replicates' rows: the mean of every number they all have, the
    value of every other key they agree on, and the number of replicates."""
    if len(rows) == 1:
        return dict(rows[0])
    out: dict[str, Any] = {"replicates": len(rows)}
    for k in rows[0]:
        values = [r.get(k) for r in rows]
        if all(json_number(v) is not None for v in values):
            out[k] = float(np.mean(values))
        elif all(v == values[0] for v in values):
            out[k] = values[0]
    for k in ("n_real", "n_fake"):
        if k in out:
            out[k] = round(out[k])
    return out
