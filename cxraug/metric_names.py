"""The names of the sample-quality metrics, for configs that validate them without importing
the metrics themselves (``TrainConfig`` lives on the core floor). ``cxraug.metrics.registry``
holds the metrics and checks at import that its names and defaults are these."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cxraug.errors import UserError

METRIC_NAMES = ("fid", "kid", "pr", "dc", "fidelity", "fd_cxr")  # registry order
DEFAULT_METRICS = ("fid", "kid", "pr", "dc")  # the set used when no metric is named


def resolve_metrics(names: Iterable[str] | None) -> list[str]:
    """Validate metric names (None -> the default set, 'all' -> every metric), in registry order."""
    return resolve_names(names, METRIC_NAMES)


def resolve_names(names: Iterable[str] | None, known: Sequence[str]) -> list[str]:
    """``resolve_metrics`` against ``known`` (the registry's, which may hold more: a test's made-up metric)."""
    if names is None:
        return list(DEFAULT_METRICS)
    wanted = [n.strip().lower() for n in names if n.strip()]
    if not wanted:
        return list(DEFAULT_METRICS)
    if "all" in wanted:
        return list(known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UserError(f"unknown metric {unknown[0]!r}; known: {', '.join(known)}")
    return [n for n in known if n in wanted]


# How a score on the train split is labelled wherever it is shown (StyleGAN2-ADA and most papers
# score so; against held-out images a copying generator cannot look better than it is).
TRAIN_SPLIT = "against the training images: also measures memorization"


def split_label(split: str) -> str:
    """The split as shown next to a number: 'train' says what scoring against it means."""
    return f"train ({TRAIN_SPLIT})" if split == "train" else split
