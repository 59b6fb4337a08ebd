"""``cxraug prepare`` from Python, and ``reduce`` (a prepared dataset with a class made rare on
purpose, as ``cxraug benchmark --export-reduced`` writes it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cxraug.api_benchmark import benchmark_config
from cxraug.api_support import PathLike, Warn, as_path, default_warn, scoped, with_options
from cxraug.data.prepare import PrepareConfig, PrepareResult
from cxraug.lock import reading_scope
from cxraug.progress import Reporter
from cxraug.runtime import configure_process


@scoped
def prepare(
    config: PrepareConfig | None = None, /, *, reporter: Reporter | None = None, warn: Warn | None = None, **kwargs: Any
) -> PrepareResult:
    """Build a prepared dataset (``cxraug prepare``): ``prepare(source="sample", out="data/s")``
    or ``prepare(PrepareConfig(...))``. Returns its folder (``.out``) and dataset.json (``.meta``)."""
    from cxraug.data.prepare import prepare as run_prepare

    configure_process()
    cfg = with_options(PrepareConfig, config, kwargs)
    result = run_prepare(cfg, reporter)
    # After the work: asking the plugins loads them (and torch), which the decoding pool, forked
    # during the work, should not inherit.
    size_warning = trainable_size_warning(cfg.size)
    if size_warning:
        (warn or default_warn)(size_warning)
    return result


def trainable_size_warning(size: int) -> str | None:
    """A line when no installed generator plugin can train ``size`` px images, else None."""
    from cxraug import registry

    sizes = registry.trainable_sizes()
    if not sizes or any(size in s for s in sizes.values()):
        return None
    known = "; ".join(f"{name}: {', '.join(map(str, s))}" for name, s in sizes.items())
    return (
        f"no installed generator plugin trains {size} px images ({known} px); "
        "the dataset can be benchmarked, but train-gen will refuse it: prepare again with one of those --size values"
    )


def reduce(data: PathLike, out: PathLike, keep: Mapping[str, int], *, seed: int = 0, overwrite: bool = False) -> Path:
    """A copy of a prepared dataset with only ``keep[CLASS]`` training images of each named class,
    chosen by patient (val and test unchanged): a rare class made rare on purpose, to train a
    generator on (``cxraug benchmark --controlled-imbalance CLASS=N --export-reduced OUT``)."""
    from cxraug.benchmark.reduced import export_reduced

    configure_process()
    cfg = benchmark_config(controlled_imbalance=keep, sets={"imbalance_seed": seed})
    with reading_scope():
        return export_reduced(as_path(data, "data"), cfg, as_path(out, "out"), overwrite)
