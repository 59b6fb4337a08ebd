"""Arms: which images a classifier trains on, and how it samples or weighs them.

Arm names: ``real``, ``reweight`` (class-weighted loss), ``oversample`` (class-balanced
sampling), ``classic`` (classical augmentation), ``logit-adjust`` (logit-adjusted loss), ``NAME``
(real + synthetic set NAME at each ``--ratio``), ``NAME@RATIO`` (one ratio), ``NAME+classic``
(the synthetic arm with classical augmentation on every image), ``NAME-only`` (synthetic images
only: a classification accuracy score for the generator). The matched controls ``copy`` and
``noise`` (controls.py) are added by the plan for every synthetic arm, one pair per distinct
set of added counts.

Ratios say how many synthetic images of a class c join its n_c real ones: ``all`` (every
image of class c in the set, the default: the set as given), ``fill`` (up to the majority
class: max_k n_k - n_c), ``xK`` (K * n_c), ``+N`` (N). Only classes present in the synthetic
set (and in ``synthetic_classes``, if given) receive images.

No torch here: a training set is index arrays and uint8 images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from cxraug.benchmark.config import BASELINE_ARMS, CONTROL_KINDS
from cxraug.benchmark.controls import control_images
from cxraug.classify.trainset import REAL_ARMS, TrainSet, real_train_set
from cxraug.errors import UserError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
CLASSIC = "+classic"


@dataclass(frozen=True)
class Ratio:
    mode: str  # "all" | "fill" | "times" | "plus"
    value: float = 0.0

    @property
    def text(self) -> str:
        if self.mode in ("all", "fill"):
            return self.mode
        if self.mode == "times":
            return f"x{self.value:g}"
        return f"+{int(self.value)}"

    def n_synthetic(self, n_real: int, n_majority: int, n_available: int) -> int:
        if self.mode == "all":
            return n_available
        if self.mode == "fill":
            return max(0, n_majority - n_real)
        if self.mode == "times":
            return round(self.value * n_real)
        return int(self.value)

    def describe(self) -> str:
        if self.mode == "all":
            return "every image of the set"
        if self.mode == "fill":
            return "fill each class up to the majority class"
        if self.mode == "times":
            return f"{self.value:g} x each class's own real count"
        return f"{int(self.value)} per class"


def parse_ratio(text: str) -> Ratio:
    t = text.strip().lower()
    if t in ("all", "fill"):
        return Ratio(t)
    m = re.fullmatch(r"x(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)x", t)
    if m:
        k = float(m.group(1) or m.group(2))
        if k <= 0:
            raise UserError(f"--ratio {text!r}: the factor must be above 0")
        return Ratio("times", k)
    m = re.fullmatch(r"\+(\d+)", t)
    if m and int(m.group(1)) > 0:
        return Ratio("plus", int(m.group(1)))
    raise UserError(f"--ratio {text!r} is not understood; use all, fill, xK (e.g. x2) or +N (e.g. +500)")


@dataclass(frozen=True)
class Arm:
    name: str
    kind: str  # a baseline kind (REAL_ARMS) | "synthetic" | "synthetic-only" | "copy" | "noise"
    synthetic: str | None = None
    ratio: Ratio | None = None
    augment: bool = False  # NAME+classic: classical augmentation on every image
    quota: tuple[tuple[int, int], ...] = ()  # a control's added images per class index
    controls_for: tuple[str, ...] = ()  # a control's synthetic arms

    @property
    def uses_synthetic(self) -> bool:
        return self.synthetic is not None

    @property
    def is_baseline(self) -> bool:
        """A cheap non-synthetic arm: a candidate for the best baseline."""
        return self.kind in BASELINE_ARMS

    @property
    def is_control(self) -> bool:
        return self.kind in CONTROL_KINDS

    def changes_class(self, c: int) -> bool:
        """Whether the arm changes class ``c``'s training images: an arm that adds images (a
        synthetic set, a control) changes only the classes it adds to; a baseline changes how
        every class is trained. A difference from the reference is reported only where True."""
        if self.uses_synthetic or self.is_control:
            return dict(self.quota).get(c, 0) > 0
        return True

    def describe(self) -> str:
        ratio = self.ratio.describe() if self.ratio else ""
        return {
            "real": "real training images as they are",
            "reweight": "real images, class-weighted loss (weight 1/n_c)",
            "oversample": "real images, class-balanced sampling",
            "classic": "real images, classical augmentation (rotation, scale, shift, brightness, contrast)",
            "logit-adjust": "real images, logit-adjusted loss (logits + tau log prior in training; Menon et al. 2021)",
            "synthetic": f"real + synthetic set {self.synthetic!r}, {ratio}"
            + (", classical augmentation on every image" if self.augment else ""),
            "synthetic-only": f"synthetic set {self.synthetic!r} only (classification accuracy score)",
            "copy": f"matched control for {', '.join(self.controls_for)}: real + the class's own real training "
            "images repeated to the same counts",
            "noise": f"matched control for {', '.join(self.controls_for)}: real + as many phase-randomised real "
            "training images of every class (no class information)",
        }[self.kind]

    def spec(self) -> dict:
        """What benchmark.json stores of the arm, enough to rebuild it for a report."""
        return {
            "name": self.name, "kind": self.kind, "synthetic": self.synthetic,
            "ratio": self.ratio.text if self.ratio else None, "augment": self.augment,
            "quota": [list(q) for q in self.quota], "controls_for": list(self.controls_for),
        }  # fmt: skip

    @classmethod
    def from_spec(cls, d: dict) -> Arm:
        ratio = parse_ratio(d["ratio"]) if d.get("ratio") else None
        quota = tuple((int(c), int(n)) for c, n in d.get("quota") or [])
        return cls(d["name"], d["kind"], d.get("synthetic"), ratio, bool(d.get("augment")), quota,
                   tuple(d.get("controls_for") or ()))  # fmt: skip


RESERVED = (*BASELINE_ARMS, *CONTROL_KINDS)


def check_synthetic_name(name: str) -> None:
    reserved = name in RESERVED or name.startswith(tuple(f"{k}-" for k in CONTROL_KINDS))
    if not _NAME.match(name) or reserved or name.endswith("-only"):
        raise UserError(
            f"synthetic set name {name!r} is not usable; use letters, digits, _ or - "
            f"(not {', '.join(RESERVED)}, not starting with copy- or noise-, not ending in -only), "
            "e.g. --synthetic cgan=DIR"
        )


def expand_arms(spec: list[str] | None, synthetic: list[str], ratios: list[str]) -> list[Arm]:
    """Arm names (None: the default set) -> arms, in the order given, without repeats. The
    controls are not named here: the plan adds them (it knows the counts they must match)."""
    parsed_ratios = [parse_ratio(r) for r in ratios] or [Ratio("all")]
    names = list(spec) if spec else [*BASELINE_ARMS, *synthetic, *(f"{s}{CLASSIC}" for s in synthetic)]
    arms: list[Arm] = []
    for raw in names:
        name = raw.strip()
        if name in BASELINE_ARMS:
            arms.append(Arm(name, name))
            continue
        if name in CONTROL_KINDS or name.startswith(tuple(f"{k}@" for k in CONTROL_KINDS)):
            raise UserError(
                f"arm {name!r}: the copy and noise controls are added for every synthetic arm by themselves; "
                "leave them out of --arms (--no-controls drops them)"
            )
        augment = name.endswith(CLASSIC)
        core = name[: -len(CLASSIC)] if augment else name
        base, _, ratio = core.partition("@")
        only = base.endswith("-only") and not ratio and not augment
        syn = base[: -len("-only")] if only else base
        if syn not in synthetic:
            known = [
                *BASELINE_ARMS,
                *synthetic,
                *(f"{s}{CLASSIC}" for s in synthetic),
                *(f"{s}-only" for s in synthetic),
            ]
            hint = "" if synthetic else "; synthetic arms need --synthetic NAME=DIR"
            raise UserError(f"unknown arm {name!r}; known: {', '.join(known)}{hint}")
        suffix = CLASSIC if augment else ""
        if only:
            arms.append(Arm(name, "synthetic-only", syn))
        elif ratio:
            r = parse_ratio(ratio)
            arms.append(Arm(f"{syn}@{r.text}{suffix}", "synthetic", syn, r, augment))
        else:
            for r in parsed_ratios:
                label = syn if len(parsed_ratios) == 1 else f"{syn}@{r.text}"
                arms.append(Arm(label + suffix, "synthetic", syn, r, augment))
    seen: set[str] = set()
    unique = [a for a in arms if not (a.name in seen or seen.add(a.name))]
    if not unique:
        raise UserError("no arm to run; e.g. --arms real,oversample")
    return unique


def add_controls(arms: list[Arm], quotas: dict[str, dict[int, int]]) -> list[Arm]:
    """``arms`` followed by a copy and a noise control per distinct quota of the synthetic arms
    (``quotas``: arm name -> added images per class); arms adding the same counts share them."""
    groups: dict[tuple[tuple[int, int], ...], list[Arm]] = {}
    for a in arms:
        if a.kind == "synthetic" and a.name in quotas:
            groups.setdefault(tuple(sorted(quotas[a.name].items())), []).append(a)
    controls: list[Arm] = []
    for quota, members in groups.items():
        if len(groups) == 1:
            suffix = ""
        else:  # the ratio when it tells the groups apart, else the first arm's name
            ratios = {m.ratio.text for m in members if m.ratio}
            others = {m.ratio.text for q, ms in groups.items() if q != quota for m in ms if m.ratio}
            only = next(iter(ratios)) if len(ratios) == 1 else None
            suffix = f"@{only}" if only and only not in others else f"-{members[0].name.replace(CLASSIC, '')}"
        for kind in CONTROL_KINDS:
            controls.append(Arm(f"{kind}{suffix}", kind, quota=quota, controls_for=tuple(m.name for m in members)))
    return [*arms, *controls]


def controlled_real_index(
    labels: np.ndarray, patients: np.ndarray, keep: dict[int, int], seed: int, classes: list[str]
) -> np.ndarray:
    """Training rows kept when class c keeps only ``keep[c]`` images, chosen by patient.

    Patients of the class are drawn in a seeded random order and keep all their images of
    it until the quota is reached (the last one drawn may keep only some, to hit N exactly).
    Images of other classes are never dropped.
    """
    rng = np.random.default_rng(seed)
    drop = np.zeros(len(labels), dtype=bool)
    for c, n_keep in keep.items():
        rows = np.flatnonzero(labels == c)
        if n_keep > len(rows):
            raise UserError(
                f"--controlled-imbalance {classes[c]}={n_keep}: the training split has only "
                f"{len(rows)} images of {classes[c]}; choose N up to {len(rows)}"
            )
        by_patient: dict[str, list[int]] = {}
        for r in rows:
            by_patient.setdefault(str(patients[r]), []).append(int(r))
        order = sorted(by_patient)
        rng.shuffle(order)
        kept: list[int] = []
        for p in order:
            if len(kept) >= n_keep:
                break
            kept.extend(by_patient[p][: n_keep - len(kept)])
        drop[rows] = True
        drop[kept] = False
    return np.flatnonzero(~drop)


def synthetic_quota(
    arm: Arm, real_counts: np.ndarray, set_counts: np.ndarray, allowed: set[int] | None, classes: list[str]
) -> dict[int, int]:
    """Synthetic images per class an arm adds (refused if the set has too few): checked
    before any training, so a shortfall never surfaces after hours of other arms."""
    if arm.kind == "synthetic-only":
        missing = [classes[c] for c in range(len(classes)) if set_counts[c] == 0]
        if missing:
            raise UserError(
                f"arm {arm.name} trains on synthetic images only, but set {arm.synthetic!r} has none of "
                f"{', '.join(missing)}; synthesize every class (`cxraug synth --class all`) or drop the arm"
            )
        return {c: int(n) for c, n in enumerate(set_counts) if n}
    assert arm.ratio is not None
    majority = int(real_counts.max())
    quota: dict[int, int] = {}
    for c in np.flatnonzero(set_counts):
        if allowed is not None and int(c) not in allowed:
            continue
        want = arm.ratio.n_synthetic(int(real_counts[c]), majority, int(set_counts[c]))
        if want > set_counts[c]:
            raise UserError(
                f"arm {arm.name}: {want} synthetic images of {classes[c]} are needed "
                f"({arm.ratio.describe()}) but set {arm.synthetic!r} has {int(set_counts[c])}; "
                "synthesize more with `cxraug synth -n ...` or choose another --ratio"
            )
        quota[int(c)] = want
    return quota


def _pick_synthetic(
    arm: Arm,
    images: np.ndarray,
    labels: np.ndarray,
    real_counts: np.ndarray,
    allowed: set[int] | None,
    seed: int,
    classes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    set_counts = np.bincount(labels, minlength=len(classes))
    picked: list[np.ndarray] = []
    for c, want in synthetic_quota(arm, real_counts, set_counts, allowed, classes).items():
        rows = np.flatnonzero(labels == c)
        # The same seed picks the same images in every run; different seeds, different ones.
        rng = np.random.default_rng([seed, c])
        picked.append(np.sort(rng.permutation(rows)[:want]))
    idx = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return images[idx], labels[idx]


def build_train_set(
    arm: Arm,
    train_labels: np.ndarray,
    real_index: np.ndarray,
    classes: list[str],
    seed: int,
    synthetic: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    synthetic_classes: set[int] | None = None,
    real_train: np.ndarray | None = None,
    logit_tau: float = 1.0,
) -> TrainSet:
    """The training set an arm claims, for one seed. ``synthetic[name]`` = (uint8 images, labels);
    ``real_train`` (the training split's images) is what the controls are made of."""
    k = len(classes)
    size = 0
    if synthetic:
        first = next(iter(synthetic.values()))[0]
        size = first.shape[-1] if first.ndim == 3 else 0
    ts = real_train_set(arm.name, arm.kind, train_labels, real_index, k, size, logit_tau)
    real_labels = ts.real_labels
    if arm.kind in REAL_ARMS:
        return ts
    if arm.is_control:
        if real_train is None:
            raise ValueError("a control needs the training images")
        images, labels, _ = control_images(arm.kind, dict(arm.quota), real_train, train_labels, real_index, seed)
        ts.synth_images, ts.synth_labels = images, labels
        return ts
    if arm.kind in ("synthetic", "synthetic-only"):
        if not synthetic or arm.synthetic not in synthetic:
            raise UserError(
                f"arm {arm.name} needs synthetic set {arm.synthetic!r}; pass --synthetic {arm.synthetic}=DIR"
            )
        images, labels = synthetic[arm.synthetic]
        if arm.kind == "synthetic":
            ts.synth_images, ts.synth_labels = _pick_synthetic(
                arm, images, labels, ts.real_counts(), synthetic_classes, seed, classes
            )
            ts.augment = arm.augment
        else:
            synthetic_quota(arm, ts.real_counts(), np.bincount(labels, minlength=k), None, classes)
            ts.real_index = real_index[:0]
            ts.real_labels = real_labels[:0]
            ts.synth_images, ts.synth_labels = images, labels.astype(np.int64)
    else:
        raise ValueError(f"unknown arm kind {arm.kind}")
    return ts
