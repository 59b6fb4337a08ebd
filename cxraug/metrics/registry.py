"""Name-keyed sample-quality metrics on feature sets, shared by ``cxraug score`` and training.

Each metric maps (real features, fake features, options) to named numbers. ``score`` runs the
ones the user lists; the training loop runs fid and kid on a small sample. Metrics of the
``reference`` space use the reference classifier trained on the dataset's own training patients
(``cxraug.metrics.reference``) and are computed by ``cxraug.metrics.fidelity``; they are not
in the default set (the first use trains a classifier), only where named or under ``all``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from cxraug.metric_names import DEFAULT_METRICS, METRIC_NAMES, resolve_names

if TYPE_CHECKING:
    from torch import Tensor

    from cxraug.metrics.resampled import Grams

# Below this many images on either side a class gets no number, only the reason. FID and KID
# are defined from 2 images, but with a few dozen their spread is larger than the differences
# between generators; 20 is also above the k-NN sizes of precision/recall and density/coverage.
DEFAULT_MIN_IMAGES = 20


KID_SUBSET_RULE = "min(1000, half the smaller of n_real and n_fake), at least 2"  # kid_subset_size, in words


def kid_subset_size(n_real: int, n_fake: int, max_size: int = 1000) -> int:
    """Subsets of half the smaller side (at most the usual 1000): with all images in every
    subset, the spread over subsets would read 0 and say nothing about the uncertainty."""
    return max(2, min(max_size, min(n_real, n_fake) // 2))


@dataclass(frozen=True)
class MetricOptions:
    kid_subsets: int = 100
    kid_max_subset_size: int = 1000  # the usual KID subset size; small classes use half their images
    pr_k: int = 3  # Kynkäänniemi et al.'s k
    dc_k: int = 5  # Naeem et al.'s k
    seed: int = 0


@dataclass(frozen=True)
class Shown:
    """How one output of a metric is shown in every report's tables."""

    label: str
    digits: int = 2
    scale: float = 1.0  # shown x scale (KID x 1e3)
    drop: int = 2  # terminal column priority: 0 always shown, the highest goes first when narrow
    lower_is_better: bool = False  # which run a significant difference calls better

    def text(self, v: float | None) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "-"
        return f"{v * self.scale:.{self.digits}f}"


@dataclass(frozen=True)
class Output:
    """One number a metric gives, and how every report treats it."""

    name: str
    label: str = ""  # its heading in the tables ("": the name)
    digits: int = 2
    scale: float = 1.0  # shown x scale (KID x 1e3)
    drop: int = 2  # terminal column priority: 0 always shown, the highest goes first when narrow
    better: str | None = "higher"  # "lower", "higher", or None: neither way (density is ~1 for matching sets)
    bounds: tuple[float, float] = (-np.inf, np.inf)  # where its values lie: intervals are clipped to them
    interval: bool = False  # compare gives it a bootstrap interval and paired differences
    floor: bool = False  # compare shows it beside the real-vs-real floor (value, floor, value - floor)
    table: bool = True  # a number compare's quality table shows (False: spreads, subset sizes)
    curve: bool = False  # plotted against step on the run page when training-time evaluation logs it
    whole_set: bool = False  # compare's value is the bootstrap's whole-set estimator (KID's unbiased MMD^2)
    without_real: bool = False  # has a value where the row has too few real images (fidelity)
    # compare's summary ranks by the computed output of lowest rank (0: never): FD_cxr (this
    # dataset's chest-X-ray features) before FID (Inception, trained on photographs)
    lead: int = 0

    @property
    def shown(self) -> Shown:
        return Shown(self.label or self.name, self.digits, self.scale, self.drop, self.better == "lower")


# A metric recomputed on one bootstrap draw from the Gram matrices of the features
# (``cxraug.metrics.resampled``): (grams, real positions, their weights, synthetic positions,
# their weights, options) -> output -> value.
Resample = Callable[..., dict[str, float]]


@dataclass(frozen=True)
class ScoreColumn:
    """One column of ``cxraug score``'s terminal table: a heading and the text of a row."""

    head: str
    drop: int
    text: Callable[[dict[str, Any]], str]
    note: Callable[[dict[str, Any]], str] | None = None  # a second line (KID's ± std)


@dataclass(frozen=True)
class Metric:
    """Everything about one metric: the name users type, what it computes and how, and how
    every report shows, resamples and ranks its outputs. Score, compare, the bootstrap and the
    pages read it from here."""

    name: str  # one of cxraug.metric_names.METRIC_NAMES: the names live there, the definitions here
    description: str
    outputs: tuple[Output, ...]
    # None: needs more than two feature sets (the reference's probabilities); fidelity.py computes it
    fn: Callable[[np.ndarray, np.ndarray, MetricOptions], dict[str, float]] | None
    space: str = "inception"  # "inception" (the FID network) or "reference" (the dataset's own classifier)
    # scores.csv's columns of this metric, where they are not its outputs (counts, the reference's own scores)
    columns: tuple[str, ...] | None = None
    resample: Resample | None = None  # its interval outputs on one bootstrap draw (compare)
    hit_share: str | None = None  # the output that is a share of synthetic images (fidelity): resampled as one
    score_columns: tuple[ScoreColumn, ...] | None = None  # None: one per output compare's table shows

    @property
    def default(self) -> bool:
        """In the set used when no metric is named."""
        return self.name in DEFAULT_METRICS

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def csv_columns(self) -> tuple[str, ...]:
        return self.output_names if self.columns is None else self.columns

    def table_columns(self) -> tuple[ScoreColumn, ...]:
        if self.score_columns is not None:
            return self.score_columns
        return tuple(
            ScoreColumn(o.shown.label, o.shown.drop, lambda r, _s=o.shown, _n=o.name: _s.text(r.get(_n)))
            for o in self.outputs
            if o.table
        )


def _fid(real: np.ndarray, fake: np.ndarray, o: MetricOptions) -> dict[str, float]:
    from cxraug.metrics.stats import frechet_distance

    return {"fid": frechet_distance(real, fake)}


def _kid(real: np.ndarray, fake: np.ndarray, o: MetricOptions) -> dict[str, float]:
    from cxraug.metrics.stats import kernel_inception_distance

    m = kid_subset_size(len(real), len(fake), o.kid_max_subset_size)
    mean, std = kernel_inception_distance(real, fake, subset_size=m, subsets=o.kid_subsets, seed=o.seed)
    return {"kid": mean, "kid_std": std, "kid_subset_size": m}


def _pr(real: np.ndarray, fake: np.ndarray, o: MetricOptions) -> dict[str, float]:
    from cxraug.metrics.stats import precision_recall

    p, r = precision_recall(real, fake, k=o.pr_k)
    return {"precision": p, "recall": r}


def _dc(real: np.ndarray, fake: np.ndarray, o: MetricOptions) -> dict[str, float]:
    from cxraug.metrics.stats import density_coverage

    d, c = density_coverage(real, fake, k=o.dc_k)
    return {"density": d, "coverage": c}


# FD, KID and precision/recall again, in the reference classifier's penultimate features.
CXR_NAMES = {"fid": "fd_cxr", "kid": "kid_cxr", "kid_std": "kid_cxr_std", "kid_subset_size": "kid_cxr_subset_size",
              "precision": "precision_cxr", "recall": "recall_cxr"}  # fmt: skip


def _fd_cxr(real: np.ndarray, fake: np.ndarray, o: MetricOptions) -> dict[str, float]:
    out = {**_fid(real, fake, o), **_kid(real, fake, o), **_pr(real, fake, o)}
    return {CXR_NAMES[k]: v for k, v in out.items()}


# The same on one bootstrap draw (cxraug.metrics.resampled; torch, imported when compare resamples).
def _fid_drawn(g: Grams, ur: Tensor, wr: Tensor, uf: Tensor, wf: Tensor, o: MetricOptions) -> dict[str, float]:
    from cxraug.metrics import resampled

    return {"fid": resampled.fid(g, ur, wr, uf, wf)}


def _kid_drawn(g: Grams, ur: Tensor, wr: Tensor, uf: Tensor, wf: Tensor, o: MetricOptions) -> dict[str, float]:
    from cxraug.metrics import resampled

    return {"kid": resampled.kid(g, ur, wr, uf, wf)}


def _pr_drawn(g: Grams, ur: Tensor, wr: Tensor, uf: Tensor, wf: Tensor, o: MetricOptions) -> dict[str, float]:
    from cxraug.metrics import resampled

    p, r = resampled.pr(g, ur, wr, uf, wf, o.pr_k)
    return {"precision": p, "recall": r}


def _dc_drawn(g: Grams, ur: Tensor, wr: Tensor, uf: Tensor, wf: Tensor, o: MetricOptions) -> dict[str, float]:
    from cxraug.metrics import resampled

    d, c = resampled.dc(g, ur, wr, uf, wf, o.dc_k)
    return {"density": d, "coverage": c}


def _fd_cxr_drawn(g: Grams, ur: Tensor, wr: Tensor, uf: Tensor, wf: Tensor, o: MetricOptions) -> dict[str, float]:
    out = {**_fid_drawn(g, ur, wr, uf, wf, o), **_kid_drawn(g, ur, wr, uf, wf, o), **_pr_drawn(g, ur, wr, uf, wf, o)}
    return {CXR_NAMES[k]: v for k, v in out.items()}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _plain(head: str, drop: int, key: str) -> ScoreColumn:
    """A score-table column of one output, 2 digits."""
    return ScoreColumn(head, drop, lambda r: _fmt(r[key]))


POSITIVE = (0.0, np.inf)
SHARE = (0.0, 1.0)
_DEFINED = (
    Metric(
        "fid", "Fréchet Inception Distance (lower is better)",
        (Output("fid", "FID", 2, drop=0, better="lower", bounds=POSITIVE, interval=True, floor=True, curve=True,
                lead=2),),
        _fid, resample=_fid_drawn, score_columns=(_plain("FID", 0, "fid"),),
    ),
    Metric(
        "kid", "Kernel Inception Distance, mean ± std over subsets",
        (Output("kid", "KID x1e3", 2, 1e3, drop=1, better="lower", interval=True, floor=True, curve=True, whole_set=True),
         Output("kid_std", table=False), Output("kid_subset_size", table=False)),
        _kid, resample=_kid_drawn,
        score_columns=(ScoreColumn("KID x1e3", 1, lambda r: f"{r['kid'] * 1e3:.2f}", lambda r: f"± {r['kid_std'] * 1e3:.2f}"),),
    ),
    Metric(
        "pr", "precision / recall, k-NN manifolds (Kynkäänniemi 2019)",
        (Output("precision", digits=3, drop=3, bounds=SHARE, interval=True, curve=True),
         Output("recall", digits=3, drop=3, bounds=SHARE, interval=True, curve=True)),
        _pr, resample=_pr_drawn, score_columns=(_plain("precision", 3, "precision"), _plain("recall", 3, "recall")),
    ),
    Metric(
        "dc", "density / coverage (Naeem 2020)",
        (Output("density", digits=3, drop=4, better=None, bounds=POSITIVE, interval=True, curve=True),
         Output("coverage", digits=3, drop=4, bounds=SHARE, interval=True, curve=True)),
        _dc, resample=_dc_drawn, score_columns=(_plain("density", 4, "density"), _plain("coverage", 4, "coverage")),
    ),
    Metric(
        "fidelity",
        "label fidelity: share of synthetic images of c the reference classifier calls c, beside real val",
        (Output("fidelity", digits=3, drop=2, bounds=SHARE, interval=True, curve=True, without_real=True),
         Output("fidelity_p"), Output("real_fidelity"), Output("real_fidelity_p"), Output("fidelity_ratio")),
        None,
        space="reference",
        columns=("fidelity", "fidelity_p", "fidelity_n", "real_fidelity", "real_fidelity_p", "real_fidelity_n",
                 "fidelity_ratio"),
        hit_share="fidelity",
        score_columns=(
            ScoreColumn("fidelity\nsyn / real", 1, lambda r: f"{_fmt(r.get('fidelity'))} / {_fmt(r.get('real_fidelity'))}"),
        ),
    ),
    Metric(
        "fd_cxr",
        "FD / KID / precision / recall in the reference classifier's features (chest-X-ray space)",
        (Output("fd_cxr", "FD_cxr", 2, drop=0, better="lower", bounds=POSITIVE, interval=True, floor=True, curve=True,
                lead=1),
         Output("kid_cxr", "KID_cxr x1e3", 2, 1e3, drop=2, better="lower", interval=True, floor=True, whole_set=True),
         Output("kid_cxr_std", table=False), Output("kid_cxr_subset_size", table=False),
         Output("precision_cxr", digits=3, drop=4, bounds=SHARE, interval=True),
         Output("recall_cxr", digits=3, drop=4, bounds=SHARE, interval=True)),
        _fd_cxr,
        space="reference",
        # the reference's own validation scores ride along: comparable only under the same reference
        columns=("fd_cxr", "kid_cxr", "kid_cxr_std", "kid_cxr_subset_size", "precision_cxr", "recall_cxr",
                 "ref_val_recall", "ref_val_auroc"),
        resample=_fd_cxr_drawn,
        score_columns=(ScoreColumn("FD cxr", 1, lambda r: _fmt(r["fd_cxr"]) if "fd_cxr" in r else "too few"),),
    ),
)  # fmt: skip


def _in_name_order(defined: Iterable[Metric]) -> MappingProxyType[str, Metric]:
    """The metrics in the order of cxraug.metric_names (configs validate against it, below metrics
    in the layering): a name there without a definition here, or the reverse, fails at import."""
    by_name = {m.name: m for m in defined}
    if set(by_name) != set(METRIC_NAMES):
        raise RuntimeError(
            f"cxraug.metric_names and the metrics registry differ: {sorted(set(by_name) ^ set(METRIC_NAMES))}"
        )
    return MappingProxyType({n: by_name[n] for n in METRIC_NAMES})


# Everything below reads this mapping when called, so a metric added to it (a test's made-up
# one, via monkeypatch) is seen by score, compare, the bootstrap and the pages at once.
METRICS: MappingProxyType[str, Metric] = _in_name_order(_DEFINED)


def resolve_metrics(names: Iterable[str] | None) -> list[str]:
    """Validate metric names (None -> the default set, 'all' -> every metric), in registry order."""
    return resolve_names(names, tuple(METRICS))


def output(name: str) -> Output | None:
    """The definition of one output of any metric (None: not a metric's output)."""
    return next((o for m in METRICS.values() for o in m.outputs if o.name == name), None)


def shown(name: str) -> Shown:
    """How an output is shown; one no metric defines is shown as itself, 2 digits."""
    o = output(name)
    return o.shown if o is not None else Shown(name)


def better(name: str) -> str | None:
    """Which way an output is better: "lower", "higher", or None (neither)."""
    o = output(name)
    return o.better if o is not None else "higher"


def bounds(name: str) -> tuple[float, float]:
    o = output(name)
    return o.bounds if o is not None else (-np.inf, np.inf)


def lead_output(names: Iterable[str] | None) -> str:
    """The output compare's summary ranks by: of the named metrics' outputs (None or empty: the
    default set), the one of lowest ``lead`` rank; without one, the first that gets an interval."""
    outputs = [o for n in resolve_metrics(list(names or []) or None) for o in METRICS[n].outputs]
    ranked = [o for o in outputs if o.lead] or [o for o in outputs if o.interval] or outputs
    return min(ranked, key=lambda o: o.lead).name


def interval_outputs(names: Iterable[str]) -> list[str]:
    """The outputs of the named metrics that get a bootstrap interval and paired differences."""
    return [o.name for n in names for o in METRICS[n].outputs if o.interval]


def floor_outputs() -> tuple[str, ...]:
    """The outputs compare shows beside the real-vs-real floor, in registry order."""
    return tuple(o.name for m in METRICS.values() for o in m.outputs if o.floor)


def curve_outputs() -> tuple[str, ...]:
    """The outputs the run page plots against step, in registry order."""
    return tuple(o.name for m in METRICS.values() for o in m.outputs if o.curve)


def whole_set_outputs() -> tuple[str, ...]:
    """The outputs whose compare value is the bootstrap's whole-set estimator (KID, KID_cxr)."""
    return tuple(o.name for m in METRICS.values() for o in m.outputs if o.whole_set)


# Fixed views for the current definitions (tests, docs).
SHOWN: MappingProxyType[str, Shown] = MappingProxyType({o.name: o.shown for m in METRICS.values() for o in m.outputs})
LOWER_IS_BETTER = tuple(o.name for m in METRICS.values() for o in m.outputs if o.better == "lower")


def csv_columns(space: str) -> tuple[str, ...]:
    """The table columns of every metric of one feature space, in registry order."""
    return tuple(c for m in METRICS.values() if m.space == space for c in m.csv_columns)


def metrics_in(names: Iterable[str], space: str) -> list[str]:
    """The named metrics of one feature space."""
    return [n for n in names if METRICS[n].space == space]


def compute_metrics(
    names: Iterable[str], real: np.ndarray, fake: np.ndarray, options: MetricOptions
) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in names:
        fn = METRICS[name].fn
        if fn is None:
            raise ValueError(f"metric {name!r} is not computed from two feature sets; see cxraug.metrics.fidelity")
        out.update(fn(real, fake, options))
    return out
