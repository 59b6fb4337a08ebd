"""Which synthetic sets a benchmark may use: same classes and size as the data, and a
generator that saw none of the benchmark's validation or test patients.

A set made from this very dataset (same fingerprint) by a generator trained on ``train``
only passes at once. A set made from another prepared dataset passes if that dataset still
exists, is unchanged, and the patients of the splits the generator saw are disjoint from
this dataset's validation and test patients. Anything that cannot be verified is refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cxraug.data.identity import describe_difference
from cxraug.data.prepared import PreparedData, fingerprint, open_prepared
from cxraug.data.records import SPLITS
from cxraug.errors import UserError
from cxraug.synthset import MANIFEST, SyntheticSet


def synthetic_fingerprint(syn: SyntheticSet) -> str:
    """sha256 of the set's manifest (which holds every image's checksum)."""
    return hashlib.sha256((syn.root / MANIFEST).read_bytes()).hexdigest()


def check_synthetic(name: str, syn: SyntheticSet, data: PreparedData) -> list[str]:
    """Refuse a set the benchmark cannot use fairly; return notes worth reporting."""
    where = f"synthetic set {name} ({syn.root})"
    if syn.classes != data.classes:
        raise UserError(
            f"{where} has classes {syn.classes} but {data.root} has {data.classes}; "
            "use a set synthesized by a generator trained on this dataset"
        )
    if syn.size != data.size:
        raise UserError(
            f"{where} is {syn.size}px but {data.root} is {data.size}px; "
            "synthesize at the dataset's size or prepare the data at that size"
        )
    info = syn.provenance.get("data") or {}
    splits = info.get("splits")
    if not isinstance(splits, list) or not splits or any(s not in SPLITS for s in splits):
        raise UserError(f"{where}: its provenance does not say which splits the generator saw; cannot check leakage")
    ours = fingerprint(data)
    if info.get("fingerprint") == ours:
        gen_data = data
    else:
        path = Path(str(info.get("path") or ""))
        if not info.get("path") or not (path / "dataset.json").is_file():
            raise UserError(
                f"{where} comes from another dataset ({info.get('name', '?')}) that is not found at "
                f"{info.get('path')!r}; cannot verify its generator never saw validation or test patients"
            )
        gen_data = open_prepared(path)
        if fingerprint(gen_data) != info.get("fingerprint"):
            what = describe_difference(info.get("identity"), gen_data.identity)
            raise UserError(
                f"{where}: its training dataset {path} changed since the generator was trained ({what}); retrain it"
            )
    seen: set[str] = set()
    for s in splits:
        seen |= gen_data.patients(s)
    held_out = data.patients("val") | data.patients("test")
    overlap = seen & held_out
    if overlap:
        example = ", ".join(sorted(overlap)[:3])
        raise UserError(
            f"{where}: its generator saw {len(overlap)} validation/test patients of {data.root} "
            f"(splits {'+'.join(splits)}; e.g. {example}); train the generator on training patients only"
        )
    notes = []
    if gen_data is not data:
        notes.append(
            f"{name}: generator trained on {gen_data.root} ({'+'.join(splits)}), patient-disjoint from "
            "this dataset's validation and test patients"
        )
    return notes


def controlled_caveats(name: str, syn: SyntheticSet, data: PreparedData, kept: dict[str, int]) -> list[str]:
    """Under a controlled imbalance, say if the generator saw more images of a class than the
    classifier's arms do: its synthetic images then carry information the real arms lack."""
    info = syn.provenance.get("data") or {}
    gen_data = data if info.get("fingerprint") == fingerprint(data) else None
    if gen_data is None and info.get("path") and (Path(info["path"]) / "dataset.json").is_file():
        gen_data = open_prepared(info["path"])
    notes = []
    for cls, n in kept.items():
        if gen_data is None or cls not in gen_data.classes:
            continue
        seen = sum(int(gen_data.counts(s).get(cls, 0)) for s in info.get("splits", []))
        if seen > n:
            notes.append(
                f"caveat: the generator of {name} was trained on {seen} images of {cls}, the classifier "
                f"keeps {n}; train the generator on the reduced set for a fair controlled experiment"
            )
    return notes
