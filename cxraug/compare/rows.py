"""compare's rows and paired differences: every run's score rows with bootstrap intervals,
the real-vs-real floor beside FID, KID, FD_cxr and KID_cxr, and the Holm-adjusted verdicts.

The floor is a stand-in generator made of real *training* images (up to n per class, a seeded
choice), scored against the split's images exactly as a run is: same real side, same n, same
metric code, same resamples. What it gets is what a generator that drew perfect images would
get from finite samples (FID and FD are biased upward at small n). Each run row carries
``<o>_floor`` and ``<o>_minus_floor`` with the interval of the difference (paired: the same
real draw for the run and the floor). A class with fewer than n training images gives a floor
of fewer images than the run; its FID and FD_cxr then get no ``_minus_floor`` (see
``_beside_floor``).

Intervals come from one plan of draws per row (``bootstrap.draw_plan``) shared by the Inception
metrics, the reference classifier's (FD_cxr, KID_cxr, precision/recall_cxr) and label
fidelity (the share of synthetic images the reference calls their class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cxraug.compare.bootstrap import BootstrapConfig, draw_plan, interval, resample, shares
from cxraug.fsutil import json_number
from cxraug.metrics import registry
from cxraug.metrics.registry import better, bounds, floor_outputs, interval_outputs, whole_set_outputs
from cxraug.metrics.score import OVERALL, Pair, RealSide, ScoreResult
from cxraug.significance import holm, normal_p_value

__all__ = ["interval_outputs"]  # the registry's, where compare's tables look for it
FLOOR = "floor (real train images)"  # the floor's label in rows and resamples
KID_ESTIMATOR = "unbiased MMD^2 over all images (the bootstrap's estimator)"


@dataclass
class RowInputs:
    """The feature sets of one row (a class, or "all"), per label."""

    real: np.ndarray
    groups: np.ndarray  # the patient of each real image
    fake: dict[str, np.ndarray]
    ref_real: np.ndarray | None = None  # the reference classifier's features (fd_cxr)
    ref_fake: dict[str, np.ndarray] | None = None
    hits: dict[str, np.ndarray] | None = None  # synthetic images called their class (fidelity)


def _take(per_class: dict[str, np.ndarray], classes: list[str], counts: dict[str, Any] | None) -> np.ndarray:
    """One class's array, or the "all" row's: each class's first counts[c] (None: all), concatenated."""
    if counts is None:
        return per_class[classes[0]]
    return np.concatenate([per_class[c][: counts[c]] for c in classes])


def row_inputs(
    real: RealSide, fakes: dict[str, dict[str, Pair]], scores: dict[str, ScoreResult], name: str, patients: dict
) -> RowInputs:
    classes = list(real.classes) if name == OVERALL else [name]
    every: dict[str, Any] = dict.fromkeys(classes)
    counts = {lab: (s.rows[-1]["fake_per_class"] if name == OVERALL else None) for lab, s in scores.items()}
    whole = every if name == OVERALL else None  # the real side: every image of the row's classes
    inp = RowInputs(
        real=_take({c: real.real[c][1] for c in classes}, classes, whole),
        groups=_take(patients, classes, whole),
        fake={lab: _take({c: fakes[lab][c][1] for c in classes}, classes, counts[lab]) for lab in scores},
    )
    refs = {lab: s.reference_features for lab, s in scores.items()}
    if all(r.get("fake") for r in refs.values()):
        first = next(iter(refs.values()))
        inp.ref_real = _take(first["real"], classes, whole)
        inp.ref_fake = {lab: _take(r["fake"], classes, counts[lab]) for lab, r in refs.items()}
        inp.hits = {lab: _take(r["hits"], classes, counts[lab]) for lab, r in refs.items()}
    return inp


def row_draws(
    inp: RowInputs, metrics: list[str], cfg: BootstrapConfig
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, float]]]:
    """Per label and output: the value on each resample, and the point value of the
    estimators that replace score's (``whole_set`` outputs: KID's unbiased MMD^2 of all images).
    Each metric is resampled in its own feature space, all on one plan of draws."""
    plan = draw_plan(len(inp.real), [len(f) for f in inp.fake.values()], cfg, inp.groups)
    draws: dict[str, dict[str, np.ndarray]] = {lab: {} for lab in inp.fake}
    point: dict[str, dict[str, float]] = {lab: {} for lab in inp.fake}
    whole = whole_set_outputs()
    spaces = {"inception": (inp.real, inp.fake), "reference": (inp.ref_real, inp.ref_fake)}
    for space, (real, fake) in spaces.items():
        drawn = [m for m in metrics if registry.METRICS[m].space == space and registry.METRICS[m].resample is not None]
        if not drawn or real is None or fake is None:
            continue
        res = resample(real, fake, drawn, cfg, inp.groups, plan)
        for lab, d in res.draws.items():
            draws[lab].update(d)
            point[lab].update({o: v for o, v in res.point[lab].items() if o in whole})
    for share in (registry.METRICS[m].hit_share for m in metrics):
        if share is not None and inp.hits is not None:
            for lab, v in shares(inp.hits, plan).items():
                draws[lab][share] = v
    return draws, point


@dataclass
class Rows:
    """What ``rows_and_differences`` makes: per arm and class (an arm of one run is that run),
    the floor per class, per replicate (arms of several runs only), and the paired differences."""

    rows: list[dict[str, Any]]
    floor: list[dict[str, Any]]
    replicates: list[dict[str, Any]]
    differences: list[dict[str, Any]]


def rows_and_differences(
    real: RealSide,
    fakes: dict[str, dict[str, Pair]],
    scores: dict[str, ScoreResult],
    floor: ScoreResult | None,
    metrics: list[str],
    bootstrap: BootstrapConfig,
    arms: dict[str, list[str]] | None = None,  # arm -> its replicates' labels (None: every run an arm)
) -> Rows:
    """The arm rows, the floor rows, the replicate rows and the paired differences between arms
    (Holm-adjusted); arms of several replicates resample them first (``replicated``)."""
    from cxraug.compare.replicated import arm_draws, arm_row, replicate_plan

    labels = list(scores)
    arms = arms or {lab: [lab] for lab in labels}
    outputs = interval_outputs(metrics)
    conf = bootstrap.confidence
    plan = replicate_plan(arms, bootstrap.resamples, bootstrap.seed)
    out = Rows([], [], [], [])
    patients = real_patients(real)
    for i, name in enumerate(r["class"] for r in scores[labels[0]].rows):
        per_run = {lab: scores[lab].rows[i] for lab in labels}
        ok = all(r["status"] == "ok" for r in per_run.values())
        floor_row = dict(floor.rows[i]) if floor is not None else None
        floor_ok = floor_row is not None and floor_row["status"] == "ok"
        draws = None
        if ok and bootstrap.resamples:
            with_floor = {**scores, FLOOR: floor} if floor is not None and floor_ok else scores
            draws, point = row_draws(row_inputs(real, fakes, with_floor, name, patients), metrics, bootstrap)
            for lab in [*labels, *([FLOOR] if FLOOR in draws else [])]:
                extra = {**point[lab], **({"kid_estimator": KID_ESTIMATOR} if point[lab] else {})}
                if lab == FLOOR:
                    floor_row = {**(floor_row or {}), **extra}
                else:
                    per_run[lab] = {**per_run[lab], **extra}
        if floor_row is not None:
            out.floor.append(_with_intervals({"run": FLOOR, **floor_row}, outputs, draws, FLOOR, conf))
        per_arm = {arm: arm_row([per_run[r] for r in reps]) for arm, reps in arms.items()}
        by_arm = None if draws is None else {**arm_draws(draws, arms, plan), FLOOR: draws.get(FLOOR, {})}
        for arm, reps in arms.items():
            statuses = [per_run[r]["status"] for r in reps]
            per_arm[arm]["status"] = next((s for s in statuses if s != "ok"), "ok")
            row = _with_intervals({"run": arm, **per_arm[arm]}, outputs, by_arm, arm, conf)
            if floor_ok:
                _beside_floor(row, floor_row or {}, by_arm, arm, conf)
            out.rows.append(row)
            if len(reps) > 1:
                out.replicates += [_with_intervals({"run": r, "arm": arm, **per_run[r]}, outputs, draws, r, conf)
                                   for r in reps]  # fmt: skip
        names = list(arms)
        for a_i, a in enumerate(names):
            for b in names[a_i + 1 :]:
                for o in outputs:
                    out.differences.append(_difference(name, a, b, o, per_arm, by_arm, conf, ok))
    _adjust(out.differences, 1 - conf)
    return out


def _with_intervals(row: dict[str, Any], outputs: list[str], draws: dict | None, lab: str, conf: float) -> dict:
    if draws is None or lab not in draws:
        return row
    for o in outputs:
        if o in draws[lab] and row.get(o) is not None:
            row[f"{o}_low"], row[f"{o}_high"] = interval(draws[lab][o], conf, row[o], bounds(o))
    return row


def _beside_floor(row: dict[str, Any], floor_row: dict[str, Any], draws: dict | None, lab: str, conf: float) -> None:
    """value - floor of the registry's floor outputs (FID, KID, FD_cxr, KID_cxr), with the paired
    interval of the difference. A floor that drew fewer images than the run (a class with fewer
    than n training images: a rare class) is shown, but FID and FD_cxr get no value - floor:
    they fall as n grows, so the difference would mix two sample sizes. The KIDs, unbiased at
    any n, keep theirs."""
    short = (json_number(floor_row.get("n_fake")) or 0) < (json_number(row.get("n_fake")) or 0)
    whole = whole_set_outputs()
    for o in floor_outputs():
        if row.get(o) is None or floor_row.get(o) is None:
            continue
        row[f"{o}_floor"] = floor_row[o]
        if short and o not in whole:
            continue
        row[f"{o}_minus_floor"] = diff = row[o] - floor_row[o]
        if draws is not None and o in draws.get(lab, {}) and o in draws.get(FLOOR, {}):
            low, high = interval(draws[lab][o] - draws[FLOOR][o], conf, diff)
            row[f"{o}_minus_floor_low"], row[f"{o}_minus_floor_high"] = low, high


def real_patients(real: RealSide) -> dict[str, np.ndarray]:
    """The patient of each real image of each class, in the order of ``real.real[c]``."""
    from cxraug.benchmark.runner import split_patients

    labels = real.data.labels(real.split)
    every = split_patients(real.data, real.split)
    return {c: every[labels == real.data.classes.index(c)] for c in real.classes}


def _adjust(differences: list[dict[str, Any]], alpha: float) -> None:
    """Holm over the family of every distinct difference that can say "better" (classes and all
    x metrics x run pairs), in place: ``better`` needs an adjusted p below alpha. With one class
    the all row is that class's comparison again, so it shares the class's test instead of
    doubling the family (and halving every verdict's chance)."""
    classes = {d["class"] for d in differences} - {OVERALL}
    alias = {OVERALL: next(iter(classes))} if len(classes) == 1 else {}

    def key(d: dict[str, Any]) -> tuple:
        return alias.get(d["class"], d["class"]), d["run_a"], d["run_b"], d["metric"]

    tested = {key(d): d for d in differences if d.get("p") is not None and d["class"] not in alias}
    adjusted = dict(zip(tested, holm([d["p"] for d in tested.values()]), strict=True))
    for d in differences:
        if d.get("p") is None or key(d) not in adjusted:
            continue
        p = adjusted[key(d)]
        d["p_adjusted"], d["family"] = p, len(adjusted)
        if math.isnan(p) or p >= alpha:
            d["better"] = "no difference"
        else:
            a_lower = d["diff"] < 0
            d["better"] = d["run_a"] if a_lower == (better(d["metric"]) == "lower") else d["run_b"]


def _difference(
    name: str, a: str, b: str, o: str, per_run: dict, draws: dict | None, confidence: float, ok: bool
) -> dict[str, Any]:
    d: dict[str, Any] = {"class": name, "run_a": a, "run_b": b, "metric": o}
    if not ok or per_run[a].get(o) is None or per_run[b].get(o) is None:
        d.update(diff=None, low=None, high=None, excludes_zero=None, better=None, reason="too few images")
        return d
    d["diff"] = per_run[a][o] - per_run[b][o]
    if draws is None:
        d.update(low=None, high=None, excludes_zero=None, better=None, reason="no bootstrap (--bootstrap 0)")
        return d
    d["low"], d["high"] = interval(draws[a][o] - draws[b][o], confidence, d["diff"])
    d["excludes_zero"] = bool(d["low"] > 0 or d["high"] < 0)
    d["better"], d["p"], d["p_adjusted"] = None, None, None
    if better(o) is not None:  # neither direction is "better" for some (density: about 1 when matching)
        d["p"] = normal_p_value(d["diff"], draws[a][o] - draws[b][o])  # "better" after _adjust
    d["reason"] = ""
    return d
