"""A study's plan, before any work: every cell of the grid and its state, read from the cells'
records, the estimate, and whether verdicts are reachable; writes nothing."""

from __future__ import annotations

from cxraug.errors import UserError
from cxraug.study.estimate import Estimate, check_estimate
from cxraug.study.grid import Grid
from cxraug.study.plan import DONE, TO_MAKE, PlannedCell, SizePlan, StudyPlan, VerdictOutlook, cell_state, planned


def plan_study(grid: Grid, est: Estimate, shard: tuple[int, int]) -> StudyPlan:
    """Every cell of the grid and its state (this process's share: ``shard``); writes nothing."""
    cfg = grid.cfg
    mine = set(cfg.sizes[shard[0] :: shard[1]])
    sizes = []
    for n in cfg.sizes:
        data_cell = grid.reduce_cell(n)
        cells, gen_cells, set_cells = [data_cell], [], []
        for g in cfg.generators:
            for s in cfg.gen_seeds:
                gen_cells.append(grid.train_cell(n, data_cell, g, s))
                set_cells.append(grid.synth_cell(n, gen_cells[-1], g, s))
        cells += gen_cells + set_cells
        chosen = {g: cfg.ratios[0] for g in cfg.generators} if len(cfg.ratios) == 1 else None
        if chosen is None:
            select = grid.select_cell(n, set_cells)
            cells.append(select)
            if cell_state(select) == DONE:
                chosen = select.info()["chosen"]
        states = [planned(c.folder.name, c) for c in cells]
        if chosen is not None:
            states.append(planned("benchmark", grid.benchmark_cell(n, data_cell, chosen, set_cells)))
        else:  # its key holds the ratios validation will choose
            states.append(PlannedCell("benchmark", TO_MAKE))
        compare = grid.compare_cell(n, gen_cells)
        states.append(planned(compare.folder.name, compare))
        sizes.append(SizePlan(n, grid.synth_n(n), states, here=n in mine))
    try:
        check_estimate(est, grid.out, cfg.max_hours, cfg.force)
        refused = None
    except UserError as e:
        refused = str(e)
    return StudyPlan(out=grid.out, config=cfg, data=str(grid.data.root), sizes=sizes, estimate=est,
                     outlook=verdict_outlook(grid), refused=refused, shard=shard)  # fmt: skip


def verdict_outlook(grid: Grid) -> VerdictOutlook:
    """Whether the benchmark at each size can reach a verdict: the rare class's test images and
    patients against the minimum, the seeds, the ΔAUROC its test images could detect."""
    import numpy as np

    from cxraug.benchmark.config import BenchmarkConfig
    from cxraug.benchmark.forecast import detectable_auroc_difference
    from cxraug.benchmark.statistics import MIN_SEEDS
    from cxraug.classify.trainset import split_patients

    data, cfg = grid.data, grid.cfg
    labels = np.asarray(data.labels("test"))
    pos = labels == data.classes.index(cfg.rare)
    patients = np.asarray(split_patients(data, "test"), dtype=str)
    need = int(cfg.bench_sets.get("min_test_patients", BenchmarkConfig.model_fields["min_test_patients"].default))
    return VerdictOutlook(
        test_images=int(pos.sum()), test_patients=len(set(patients[pos])), min_test_patients=need,
        seeds=len(cfg.seeds), min_seeds=MIN_SEEDS,
        detectable=detectable_auroc_difference(int(pos.sum()), int((~pos).sum())),
    )  # fmt: skip
