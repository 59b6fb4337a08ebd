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

import numpy as np

from cxraug.metric_names import DEFAULT_METRICS, METRIC_NAMES, resolve_metrics  # noqa: F401 (one resolver)

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
class Metric:
    name: str  # one of cxraug.metric_names.METRIC_NAMES: the names live there, the definitions here
    description: str
    outputs: tuple[str, ...]
    # None: needs more than two feature sets (the reference's probabilities); fidelity.py computes it
    fn: Callable[[np.ndarray, np.ndarray, MetricOptions], dict[str, float]] | None
    space: str = "inception"  # "inception" (the FID network) or "reference" (the dataset's own classifier)
    # scores.csv's columns of this metric, where they are not its outputs (counts, the reference's own scores)
    columns: tuple[str, ...] | None = None

    @property
    def default(self) -> bool:
        """In the set used when no metric is named."""
        return self.name in DEFAULT_METRICS

    @property
    def csv_columns(self) -> tuple[str, ...]:
        return self.outputs if self.columns is None else self.columns


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


_DEFINED = (
    Metric("fid", "Fréchet Inception Distance (lower is better)", ("fid",), _fid),
    Metric("kid", "Kernel Inception Distance, mean ± std over subsets", ("kid", "kid_std", "kid_subset_size"), _kid),
    Metric("pr", "precision / recall, k-NN manifolds (Kynkäänniemi 2019)", ("precision", "recall"), _pr),
    Metric("dc", "density / coverage (Naeem 2020)", ("density", "coverage"), _dc),
    Metric(
        "fidelity",
        "label fidelity: share of synthetic images of c the reference classifier calls c, beside real val",
        ("fidelity", "fidelity_p", "real_fidelity", "real_fidelity_p", "fidelity_ratio"),
        None,
        space="reference",
        columns=(
            "fidelity",
            "fidelity_p",
            "fidelity_n",
            "real_fidelity",
            "real_fidelity_p",
            "real_fidelity_n",
            "fidelity_ratio",
        ),
    ),
    Metric(
        "fd_cxr",
        "FD / KID / precision / recall in the reference classifier's features (chest-X-ray space)",
        tuple(CXR_NAMES.values()),
        _fd_cxr,
        space="reference",
        # the reference's own validation scores ride along: comparable only under the same reference
        columns=(
            "fd_cxr",
            "kid_cxr",
            "kid_cxr_std",
            "kid_cxr_subset_size",
            "precision_cxr",
            "recall_cxr",
            "ref_val_recall",
            "ref_val_auroc",
        ),
    ),
)


def _in_name_order(defined: Iterable[Metric]) -> MappingProxyType[str, Metric]:
    """The metrics in the order of cxraug.metric_names (configs validate against it, below metrics
    in the layering): a name there without a definition here, or the reverse, fails at import."""
    by_name = {m.name: m for m in defined}
    if set(by_name) != set(METRIC_NAMES):
        raise RuntimeError(
            f"cxraug.metric_names and the metrics registry differ: {sorted(set(by_name) ^ set(METRIC_NAMES))}"
        )
    return MappingProxyType({n: by_name[n] for n in METRIC_NAMES})


METRICS: MappingProxyType[str, Metric] = _in_name_order(_DEFINED)


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


# The outputs reports show as numbers, how; an output not named here is shown as itself, 2 digits.
SHOWN: MappingProxyType[str, Shown] = MappingProxyType(
    {
        "fid": Shown("FID", 2, drop=0, lower_is_better=True),
        "kid": Shown("KID x1e3", 2, 1e3, drop=1, lower_is_better=True),
        "precision": Shown("precision", 3, drop=3),
        "recall": Shown("recall", 3, drop=3),
        "density": Shown("density", 3, drop=4),
        "coverage": Shown("coverage", 3, drop=4),
        "fd_cxr": Shown("FD_cxr", 2, drop=0, lower_is_better=True),
        "kid_cxr": Shown("KID_cxr x1e3", 2, 1e3, drop=2, lower_is_better=True),
        "precision_cxr": Shown("precision_cxr", 3, drop=4),
        "recall_cxr": Shown("recall_cxr", 3, drop=4),
        "fidelity": Shown("fidelity", 3, drop=2),
    }
)


def shown(output: str) -> Shown:
    return SHOWN.get(output) or Shown(output)


LOWER_IS_BETTER = tuple(o for o, s in SHOWN.items() if s.lower_is_better)


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
