"""Run keys: what one trained model depends on. A stored run is reused only if its key matches;
one with another key is an error, so results of different settings are never mixed."""

from __future__ import annotations

from cxraug.benchmark.arms import Arm
from cxraug.benchmark.plan import Plan
from cxraug.benchmark.provenance import synthetic_fingerprint
from cxraug.data.prepared import fingerprint


def run_key(plan: Plan, arm: Arm, seed: int, world_size: int) -> dict:
    """What a trained model depends on; a stored run is reused only if this matches."""
    key = {
        "data_fingerprint": fingerprint(plan.data),
        "classes": plan.classes,
        **plan.cfg.training_dict(),
        "steps": plan.steps,
        "evaluations": plan.evaluations,
        "arm": arm.name,
        "kind": arm.kind,
        "seed": seed,
        "world_size": world_size,
    }
    if arm.kind == "classic" or arm.augment:
        key["augment"] = plan.cfg.augment.model_dump()
    if arm.kind == "logit-adjust":
        key["logit_tau"] = plan.cfg.logit_tau
    if arm.quota:
        key["added"] = [list(q) for q in arm.quota]
    if arm.synthetic is not None:
        syn = plan.synthetic_set(arm.synthetic, seed)
        if plan.n_replicates(arm.synthetic) > 1:
            key["replicate"] = plan.replicate_index(arm.synthetic, seed)
        key["synthetic"] = {
            "name": arm.synthetic,
            # A report of a set that is gone cannot hash it again: its runs' stored hash stands.
            "fingerprint": synthetic_fingerprint(syn) if syn is not None else None,
            "ratio": arm.ratio.text if arm.ratio else None,
            "classes": sorted(plan.cfg.synthetic_classes or []) if arm.kind == "synthetic" else None,
        }
    return key


def same_key(old: dict, new: dict) -> bool:
    """Keys match; a synthetic fingerprint of None (the set is gone) matches the stored one."""
    if isinstance(new.get("synthetic"), dict) and new["synthetic"].get("fingerprint") is None:
        old_syn = old.get("synthetic") if isinstance(old.get("synthetic"), dict) else {}
        new = {**new, "synthetic": {**new["synthetic"], "fingerprint": old_syn.get("fingerprint")}}
    return old == new


def key_difference(old: dict, new: dict) -> str:
    diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:3])


def world_hint(stored: object, now: int) -> str:
    """What to launch to match runs trained by another number of processes per model."""
    if stored == now or not isinstance(stored, int):
        return ""
    if stored == 1:
        return "its models were each trained on one process: run with --spread runs (any number of processes), or "
    return f"its models were each trained by DDP over {stored} processes: launch {stored} with --spread ddp, or "
