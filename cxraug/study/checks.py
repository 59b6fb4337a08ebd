"""A study's options checked before any work: the rare class and sizes against the dataset, the
generators, and every ``--set`` as the cells' commands will read it (a wrong key is refused
before the generators have trained, not after)."""

from __future__ import annotations

from cxraug.data.prepared import PreparedData
from cxraug.errors import UserError
from cxraug.study.config import StudyConfig
from cxraug.study.launch import sets_args


def check_options(cfg: StudyConfig, data: PreparedData) -> None:
    """The rare class, sizes, generators and sets against the dataset and the installed plugins."""
    from cxraug import registry

    if cfg.rare not in data.classes:
        raise UserError(f"--rare {cfg.rare!r} is not a class of {data.root}; its classes: {', '.join(data.classes)}")
    have = data.counts("train")[cfg.rare]
    too_big = [n for n in cfg.sizes if n > have]
    if too_big:
        raise UserError(
            f"--sizes {too_big[0]}: {cfg.rare} has only {have} training images in {data.root}; give sizes up to {have}"
        )
    known = registry.available()
    for g in cfg.generators:
        if g not in known:
            raise UserError(f"--generators {g!r}: unknown generator; installed: {', '.join(known)}")
    if len(cfg.generators) < 2:  # each size's compare cell needs two arms; it would fail after the benchmark
        raise UserError(
            f"--generators {','.join(cfg.generators)}: a study compares its generators at each size; "
            "give two or more, e.g. --generators cgan,diffusion"
        )
    for name, what in ((cfg.gen_sets, "--set-gen"), (cfg.sample_sets, "--set-sample")):
        for g in name:
            if g not in cfg.generators:
                raise UserError(f"{what} {g}:...: {g} is not among --generators ({', '.join(cfg.generators)})")
    check_sets(cfg)
    for split in ("val", "test"):
        if data.counts(split).get(cfg.rare, 0) == 0:
            raise UserError(f"{data.root} has no {cfg.rare} images in {split}; the study needs them")


def check_sets(cfg: StudyConfig) -> None:
    """--set, --set-gen and --set-sample validated as the cells' commands will read them, so a
    wrong key or value is refused before any work, not after the generators have trained."""
    from cxraug import registry
    from cxraug.benchmark.config import build_config
    from cxraug.config import resolve, validated

    bench = {k: v for k, v in cfg.bench_sets.items() if k != "arms"}  # arms: checked with the study's own
    try:
        build_config(None, None, [a for a in sets_args(bench) if a != "--set"])
    except UserError as e:
        raise UserError(f"--set: {e}") from None
    for g, sets in cfg.gen_sets.items():
        try:
            resolve(registry.get(g).Config, {}, {"steps": 1}, sets)
        except UserError as e:
            raise UserError(f"--set-gen {g}:...: {e}") from None
    for g, sets in cfg.sample_sets.items():
        validated(registry.get(g).SampleOptions, sets, f"--set-sample {g}: sampling option")
