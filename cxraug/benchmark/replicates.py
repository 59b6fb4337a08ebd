"""Synthetic sets from generator replicates (``--synthetic NAME=DIR1,DIR2,DIR3``): one method,
trained again with other seeds, so the benchmark's intervals include the generator's own
training randomness.

**Pairing.** Classifier seed i (in the order of ``seeds``) trains with replicate i mod K: every
replicate is used, and each classifier run sees one generator.

**Checks** (``check_replicate_sets``, before any training): the sets' provenance must agree on
the plugin, the training data (fingerprint), the image size, the classes, images per class and
the sampling settings, and the runs they came from must be the same plugin, settings, data and
budget trained with other seeds (``cxraug.replicates``, read from the runs' config.json where
the run folders still exist). Two sets of the same run and step are one generator, refused.

**The bootstrap, hierarchical** (``hierarchical_weights``): a draw first weighs the replicates
(Dirichlet with concentration (K-2)/K for K >= 3, as the seeds: the weighted mean then has the
variance s^2/K of K replicates; with K = 2, two draws with replacement), then each replicate's
classifier seeds (the seed weights of the draw, renormalised within the replicate), then the
test patients (the draw's, shared by every arm). When every replicate has exactly one seed, the
seed weights of the draw are used as they are: a resample of seeds is then a resample of
(seed, generator) pairs, and identical replicates give the unreplicated arm's interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cxraug.errors import UserError
from cxraug.synthset import SyntheticSet

if TYPE_CHECKING:
    from cxraug.benchmark.config import BenchmarkConfig
    from cxraug.data.prepared import PreparedData

SAME = ("plugin", "size", "classes", "requested", "n_per_class", "options")


def replicate_sets(
    cfg: BenchmarkConfig, data: PreparedData, synthetic: dict[str, SyntheticSet], notes: list[str], trained: bool
) -> dict[str, list[SyntheticSet]]:
    """The sets of each replicated generator (--synthetic NAME=DIR1,DIR2), each checked as any
    set is, then as replicates of one method (benchmark/replicates.py); a set that is gone (a
    report of stored runs) leaves the replicates of its name unchecked."""
    from cxraug.benchmark.provenance import check_synthetic
    from cxraug.synthset import open_synthetic

    out: dict[str, list[SyntheticSet]] = {}
    for name, paths in cfg.synthetic_replicates.items():
        if name not in synthetic:
            continue
        if Path(paths[0]) != Path(cfg.synthetic[name]):
            raise UserError(
                f"synthetic_replicates {name}: its first set must be synthetic {name} ({cfg.synthetic[name]})"
            )
        missing = [str(p) for p in paths[1:] if not Path(p).is_dir()]
        if missing and trained:
            notes.append(f"synthetic set {name}: replicate {missing[0]} is no longer there: its checks are left out")
            continue
        if missing:
            raise UserError(f"synthetic set {name}: replicate {missing[0]} does not exist")
        sets = [synthetic[name], *(open_synthetic(p) for p in paths[1:])]
        for syn in sets[1:]:
            notes += check_synthetic(name, syn, data)
        notes += check_replicate_sets(name, sets, len(cfg.seeds))
        notes.append(
            f"synthetic set {name}: {len(sets)} generator replicates ({', '.join(str(s.root) for s in sets)}); "
            f"classifier seed i trains with replicate i mod {len(sets)}, and its intervals resample the replicates"
        )
        out[name] = sets
    return out


def check_replicate_sets(name: str, sets: list[SyntheticSet], n_seeds: int) -> list[str]:
    """Refuse replicate sets that are not one method with other seeds; return notes."""
    from cxraug.replicates import check_replicates

    if n_seeds < len(sets):
        raise UserError(
            f"--synthetic {name}: {len(sets)} generator replicates need at least {len(sets)} classifier seeds "
            f"(each seed trains with one replicate in turn); got {n_seeds}"
        )
    first = sets[0].provenance
    seen: dict[tuple[str, object], Path] = {}
    for syn in sets:
        prov = syn.provenance
        for key in SAME:
            if prov.get(key) != first.get(key):
                raise UserError(
                    f"--synthetic {name}: replicate {syn.root} differs from {sets[0].root} in {key}: "
                    f"{first.get(key)!r} vs {prov.get(key)!r}; replicates must be one method trained with other seeds"
                )
        ours, theirs = (first.get("data") or {}).get("fingerprint"), (prov.get("data") or {}).get("fingerprint")
        if ours != theirs:
            raise UserError(
                f"--synthetic {name}: replicate {syn.root} comes from other training data than {sets[0].root} "
                f"({str(ours)[:12]} vs {str(theirs)[:12]}); replicates must be trained on the same data"
            )
        made_by = (str(prov.get("run")), prov.get("step"))
        if made_by in seen:
            raise UserError(
                f"--synthetic {name}: {seen[made_by]} and {syn.root} come from the same run and step "
                f"({made_by[0]}, step {made_by[1]}): one trained generator, not two replicates"
            )
        seen[made_by] = syn.root
    runs = [Path(str(s.provenance.get("run"))) for s in sets]
    gone = [str(r) for r in runs if not (r / "config.json").is_file()]
    if gone:
        return [
            f"synthetic set {name}: the settings of its replicates' runs were not checked ({', '.join(gone)} not found)"
        ]
    check_replicates(f"--synthetic {name}", runs)
    return []


def hierarchical_weights(
    seed_weights: np.ndarray, replicate_of_seed: list[int], rng: np.random.Generator
) -> np.ndarray:
    """Per draw, the weight of each classifier seed in a replicated arm (B x S, rows sum to 1):
    replicate weight x the seed's weight within its replicate."""
    groups = np.asarray(replicate_of_seed)
    k = int(groups.max()) + 1
    if np.array_equal(np.sort(groups), np.arange(k)):  # one seed per replicate: the seed draw is it
        return seed_weights
    b = len(seed_weights)
    if k >= 3:
        rep = rng.dirichlet(np.full(k, (k - 2) / k), size=b)
    else:
        rep = np.stack([np.bincount(row, minlength=k) / k for row in rng.integers(k, size=(b, k))])
    within = np.zeros_like(seed_weights)
    for r in range(k):
        cols = groups == r
        total = seed_weights[:, cols].sum(axis=1, keepdims=True)
        within[:, cols] = np.where(total > 0, seed_weights[:, cols] / np.where(total > 0, total, 1), 1 / cols.sum())
    return rep[:, groups] * within
