"""Patient-wise splits. Every function here moves whole patients, never single images."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace

from cxraug.data.records import Record


def _patient_groups(records: list[Record]) -> dict[str, list[str]]:
    """Group patients by their rarest class, so that stratifying on it keeps small classes."""
    counts = Counter(r.label for r in records)
    by_patient: dict[str, set[str]] = defaultdict(set)
    for r in records:
        by_patient[r.patient_id].add(r.label)
    groups: dict[str, list[str]] = defaultdict(list)
    for pid in sorted(by_patient):
        rarest = min(by_patient[pid], key=lambda c: (counts[c], c))
        groups[rarest].append(pid)
    return groups


def carve_patients(records: list[Record], fraction: float, seed: int, new_split: str, rest_split: str) -> list[Record]:
    """Move about ``fraction`` of the patients (stratified by class) to ``new_split``.

    Each class with at least two patients gives at least one patient and keeps at least one,
    so every class that can be represented in both parts is. Deterministic for a seed.
    """
    if not records:
        return []
    rng = random.Random(seed)
    chosen: set[str] = set()
    groups = _patient_groups(records)
    for cls in sorted(groups):
        patients = list(groups[cls])
        rng.shuffle(patients)
        k = round(fraction * len(patients))
        if fraction > 0 and k == 0 and len(patients) >= 2:
            k = 1
        k = min(k, len(patients) - 1)  # the rest part keeps the class (a lone patient stays there)
        chosen.update(patients[:k])
    return [replace(r, split=new_split if r.patient_id in chosen else rest_split) for r in records]


def patient_leaks(records: list[Record]) -> dict[str, set[str]]:
    """Patients found in more than one split, with their splits (a leak would void results)."""
    splits: dict[str, set[str]] = defaultdict(set)
    for r in records:
        splits[r.patient_id].add(r.split)
    return {pid: s for pid, s in splits.items() if len(s) > 1}
