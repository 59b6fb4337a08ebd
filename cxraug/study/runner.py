"""Run a study: for each rare-class size N, the reduced training set, the generator replicates
trained on it alone, their synthetic sets, the ratio chosen on validation, the benchmark and
compare of the generators; then the page. Each piece is a cell (:mod:`cxraug.study.cells`)
done by the same ``cxraug`` command a user would run, in its own process, logged in its folder.

Output folder::

  study.json                 the options and the source dataset's identity
  n-0010/data/               the reduced training set (prepared/), by patient
  n-0010/gen-cgan-s0/        a generator run (runs/NNNNN-cgan-prepared/)
  n-0010/synth-cgan-s0/      its synthetic rare-class images (set/)
  n-0010/select/             (several ratios) the ratio chosen on validation patients only
  n-0010/benchmark/          the benchmark at the chosen ratios (out/)
  n-0010/compare/            the generators side by side on validation images (out/)
  study.html, study.md, study.csv, curve.png, quality.png

Several processes (``torchrun`` / ``accelerate launch``, or ``--shard I/K`` for a Slurm array):
process I of K takes the sizes ``sizes[I::K]``; each cell's result depends on its key only, so
whichever process made it, it is the same. The process that finds every cell done writes the
page; a later plain ``cxraug study`` with the same options reuses every cell and writes it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug.coderev import revision_of
from cxraug.errors import UserError
from cxraug.fsutil import read_json
from cxraug.lock import output_lock
from cxraug.progress import NullReporter, Reporter
from cxraug.runs import clear_unstarted_runs
from cxraug.study import folder
from cxraug.study.cells import Cell, SizeCells
from cxraug.study.checks import check_options
from cxraug.study.config import StudyConfig
from cxraug.study.grid import Grid
from cxraug.study.launch import attempts, cxraug, sets_args, shard_of
from cxraug.synthset import is_finished

if TYPE_CHECKING:
    from cxraug.study.plan import StudyPlan

MARKER = folder.MARKER
# A study needs every cell's numbers, verdict or not: the curve shows each size's interval (and
# a selection benchmark has no controls, so never a verdict). The benchmark would otherwise stop
# before training when no verdict is reachable (too few seeds or test patients).
FORCE = "--force"


@dataclass
class StudyResult:
    out: Path
    config: StudyConfig
    sizes: list[SizeCells]
    complete: bool  # every size's cells are done (the page is written)
    page: Path | None = None
    trained: int = 0  # cells done by this call
    reused: int = 0
    plan: StudyPlan | None = None  # what was said before the work


class Study(Grid):
    """Makes a study's cells (the grid's keys and folders: :class:`~cxraug.study.grid.Grid`),
    each by its ``cxraug`` command, reusing every cell already done."""

    def __init__(self, cfg: StudyConfig, out: Path, reporter: Reporter | None = None) -> None:
        super().__init__(cfg, out)
        self.reporter = reporter or NullReporter()
        self.done_here = 0
        self.reused = 0
        self.code = revision_of()  # recorded in every cell this call makes

    # --- checks, before any work ----------------------------------------------------------------
    def check(self) -> None:
        check_options(self.cfg, self.data)

    def check_out(self) -> None:
        folder.check_out(self.out, self.data, self.fingerprint)

    def write_marker(self) -> None:
        folder.write_marker(self.out, self.cfg, self.data, self.fingerprint)

    # --- cells ----------------------------------------------------------------------------------
    def _do(self, cell: Cell, name: str, work) -> dict[str, Any]:
        """Reuse ``cell`` if done, else run ``work(cell)`` (which returns what to record)."""
        if cell.done():
            self.reused += 1
            return cell.info()
        with output_lock(cell.folder, "study cell"):
            if cell.done():  # another process finished it while this one waited
                self.reused += 1
                return cell.info()
            cell.start()
            t0 = time.time()
            with self.reporter.task(name, 1) as advance:
                info = work(cell)
                advance(1)
            info.setdefault("seconds", round(time.time() - t0, 1))
            info.setdefault("code", self.code)
            cell.finish(**info)
            self.done_here += 1
        return cell.info()

    def reduce(self, n: int) -> tuple[Cell, Path]:
        cfg = self.cfg
        cell = self.reduce_cell(n)
        prepared = cell.folder / "prepared"

        def work(c: Cell) -> dict[str, Any]:
            return cxraug(["benchmark", "--data", str(cfg.data), "--controlled-imbalance", f"{cfg.rare}={n}",
                           "--set", f"imbalance_seed={cfg.imbalance_seed}", "--export-reduced", str(prepared),
                           "--overwrite"], c.folder / "log.txt")  # fmt: skip

        self._do(cell, f"n={n}: the reduced training set ({cfg.rare} {n})", work)
        return cell, prepared

    def train(self, n: int, data_cell: Cell, data: Path, g: str, seed: int) -> tuple[Cell, Path]:
        cfg = self.cfg
        sets = cfg.gen_sets.get(g, {})
        cell = self.train_cell(n, data_cell, g, seed)
        runs = cell.folder / "runs"

        def work(c: Cell) -> dict[str, Any]:
            found = sorted(p.parent for p in runs.glob("*/config.json"))
            if found:  # a killed run: continue it exactly
                return cxraug(["train-gen", "--resume", str(found[-1])], c.folder / "log.txt")
            clear_unstarted_runs(runs)  # a run killed before its config: only its own folder, never a user's files
            argv = ["train-gen", "--plugin", g, "--data", str(data), "--out", str(runs), "--seed", str(seed)]
            if cfg.gen_steps is not None:
                argv += ["--steps", str(cfg.steps_of(g))]
            else:
                argv += ["--time-limit", str(cfg.time_limit), "--set", f"clock={cfg.clock}"]
            return cxraug(argv + sets_args(sets), c.folder / "log.txt")

        self._do(cell, f"n={n}: train {g} (seed {seed}, {cfg.budget_text(g)})", work)
        found = sorted(p.parent for p in runs.glob("*/config.json"))
        if not found:
            raise UserError(f"{cell.folder} holds no run; delete that folder and run the study again")
        return cell, found[-1]

    def synth(self, n: int, gen_cell: Cell, run: Path, g: str, seed: int) -> tuple[Cell, Path]:
        cfg = self.cfg
        count = self.synth_n(n)
        sets = cfg.sample_sets.get(g, {})
        cell = self.synth_cell(n, gen_cell, g, seed)
        out = cell.folder / "set"

        def work(c: Cell) -> dict[str, Any]:
            # A study killed after its synth finished but before the cell was recorded finds a finished
            # set that synth refuses to redo without --overwrite (it replaces only a set of its own); an
            # unfinished set is continued by synth itself.
            again = ["--overwrite"] if is_finished(out) else []
            return cxraug(["synth", "--run", str(run), "--class", cfg.rare, "-n", str(count), "--out", str(out),
                           *again, *sets_args(sets)], c.folder / "log.txt")  # fmt: skip

        self._do(cell, f"n={n}: synth {count} {cfg.rare} images from {g} (seed {seed})", work)
        return cell, out

    def _bench_sets(self) -> list[str]:
        cfg = self.cfg
        own = sets_args({k: v for k, v in cfg.bench_sets.items() if k != "arms"})
        return [*own, "--set", f"rare_classes={_json([cfg.rare])}"]

    def _synthetic_args(self, sets: dict[str, list[Path]]) -> list[str]:
        out: list[str] = []
        for g, paths in sets.items():
            out += ["--synthetic", f"{g}={','.join(str(p) for p in paths)}"]
        return out

    def select(self, n: int, data: Path, sc: SizeCells, set_cells: list[Cell]) -> None:
        """The ratio of each generator with the best mean rare-class AUROC on held-out
        validation patients (ties: the first given); the test split is never read."""
        cfg = self.cfg
        if len(cfg.ratios) == 1:
            sc.chosen = {g: cfg.ratios[0] for g in cfg.generators}
            return
        cell = self.select_cell(n, set_cells)

        def work(c: Cell) -> dict[str, Any]:
            from cxraug.data.prepared import open_prepared
            from cxraug.study.selection import write_selection_data

            sel = c.folder / "data"
            if not (sel / "dataset.json").is_file():
                write_selection_data(open_prepared(data), cfg.rare, sel)
            cost = cxraug(["benchmark", "--data", str(sel), *self._synthetic_args(sc.sets),
                           "--arms", ",".join(cfg.generators), "--ratio", ",".join(cfg.ratios), "--no-controls",
                           FORCE,
                           "--seeds", ",".join(map(str, cfg.seeds)), *self._bench_sets(), "--set", "plots=false",
                           "--out", str(c.folder / "out")], c.folder / "log.txt")  # fmt: skip
            res = read_json(c.folder / "out" / "results.json")
            auroc = {(it["arm"], it["class"]): it["auroc"]["mean"] for it in res["per_class_summary"]}
            scores = {g: {r: auroc.get((f"{g}@{r}", cfg.rare)) for r in cfg.ratios} for g in cfg.generators}
            chosen = {g: max(cfg.ratios, key=lambda r, g=g: (scores[g][r] or -1.0, -cfg.ratios.index(r)))
                      for g in cfg.generators}  # fmt: skip
            return {**cost, "chosen": chosen, "validation_auroc": scores}

        info = self._do(cell, f"n={n}: choose the ratio on validation ({', '.join(cfg.ratios)})", work)
        sc.chosen, sc.selection = info["chosen"], info["validation_auroc"]
        sc.cost["select"] = _cost(cell)

    def arms(self, chosen: dict[str, str]) -> list[str]:
        from cxraug.benchmark.arms import CLASSIC
        from cxraug.benchmark.config import BASELINE_ARMS

        given = self.cfg.bench_sets.get("arms")
        names = list(given) if given else [*BASELINE_ARMS, *self.cfg.generators,
                                           *(f"{g}{CLASSIC}" for g in self.cfg.generators)]  # fmt: skip
        out = []
        for a in names:
            core = a[: -len(CLASSIC)] if a.endswith(CLASSIC) else a
            if core in chosen:
                a = f"{core}@{chosen[core]}" + (CLASSIC if a.endswith(CLASSIC) else "")
            out.append(a)
        return out

    def benchmark(self, n: int, data: Path, data_cell: Cell, sc: SizeCells, set_cells: list[Cell]) -> None:
        cfg = self.cfg
        cell = self.benchmark_cell(n, data_cell, sc.chosen, set_cells)

        def work(c: Cell) -> dict[str, Any]:
            return cxraug(["benchmark", "--data", str(data), *self._synthetic_args(sc.sets),
                           "--arms", ",".join(self.arms(sc.chosen)), "--seeds", ",".join(map(str, cfg.seeds)),
                           *self._bench_sets(), FORCE, "--out", str(c.folder / "out")], c.folder / "log.txt")  # fmt: skip

        self._do(cell, f"n={n}: benchmark ({len(cfg.seeds)} seeds)", work)
        sc.benchmark = cell.folder / "out"
        sc.cost["benchmark"] = _cost(cell)

    def compare(self, n: int, sc: SizeCells, gen_cells: list[Cell]) -> None:
        cfg = self.cfg
        samples = self.compare_samples()
        cell = self.compare_cell(n, gen_cells)
        out = cell.folder / "out"

        def work(c: Cell) -> dict[str, Any]:
            # a killed compare starts over (it keeps no partial state); compare's own --overwrite replaces
            # only what compare wrote, never a file of the user's put there (docs/reliability.md)
            again = ["--overwrite"] if out.exists() else []
            arms = [f"{g}={','.join(str(r) for r in sc.runs[g])}" for g in cfg.generators]
            extra = ["--metrics", ",".join(cfg.compare_metrics)] if cfg.compare_metrics else []
            extra += [] if cfg.compare_memorization else ["--no-memorization"]
            return cxraug(["compare", *arms, "--classes", cfg.rare, "-n", str(cfg.compare_n), "--split", "val",
                           "--bootstrap", str(cfg.compare_bootstrap), "--min-images", str(cfg.compare_min_images),
                           "--speed-images", str(cfg.compare_speed_images), "--out", str(out), *again,
                           *extra, *sets_args(samples)], c.folder / "log.txt")  # fmt: skip

        self._do(cell, f"n={n}: compare the generators on validation images", work)
        sc.compare = out
        sc.cost["compare"] = _cost(cell)

    def run_size(self, n: int) -> SizeCells:
        cfg = self.cfg
        data_cell, data = self.reduce(n)
        sc = SizeCells(n, data)
        gen_cells, set_cells = [], []
        for g in cfg.generators:
            for s in cfg.gen_seeds:
                gc, run = self.train(n, data_cell, data, g, s)
                sc.runs.setdefault(g, []).append(run)
                gen_cells.append(gc)
                sc.cost[f"gen-{g}-s{s}"] = _cost(gc)
        for g in cfg.generators:
            for s, (gc, run) in enumerate(zip([c for c in gen_cells if c.key["plugin"] == g], sc.runs[g], strict=True)):
                cell, path = self.synth(n, gc, run, g, cfg.gen_seeds[s])
                sc.sets.setdefault(g, []).append(path)
                set_cells.append(cell)
                sc.cost[f"synth-{g}-s{cfg.gen_seeds[s]}"] = _cost(cell)
        self.select(n, data, sc, set_cells)
        self.benchmark(n, data, data_cell, sc, set_cells)
        self.compare(n, sc, gen_cells)
        return sc


def _cost(cell: Cell) -> dict[str, float]:
    """What the finished cell's command cost, as measured by the attempt that finished it, and how
    many attempts its log holds (one ``$ cxraug`` line each): an attempt killed with the study
    recorded no cost, so a cell continued after a kill cost more than it says."""
    info = cell.info()
    return {"seconds": float(info.get("seconds", 0.0)), "cpu_seconds": float(info.get("cpu_seconds", 0.0)),
            "attempts": float(attempts(cell.folder / "log.txt"))}  # fmt: skip


def _json(v: object) -> str:
    import json

    return json.dumps(v)


def run_study(
    cfg: StudyConfig,
    out: Path | str | None = None,
    reporter: Reporter | None = None,
    shard: str | None = None,
    before_work: Callable[[StudyPlan], None] | None = None,
) -> StudyResult:
    """Run the cells of this process's share that are not done, then (if every cell is done)
    write the page. ``shard``: ``I/K`` (a Slurm array task), else the launcher's rank.
    ``before_work(plan)``: called once every check of the options has passed, before the time
    and disk limits are applied and before anything is written (it may raise to stop there)."""
    from cxraug.study.estimate import check_estimate, estimate
    from cxraug.study.planning import plan_study

    if out is None and cfg.out is None:
        raise UserError("--out DIR is needed: the study folder (a killed study continues there)")
    out = Path(out if out is not None else cfg.out)
    study = Study(cfg, out, reporter)
    study.check()
    study.check_out()
    index, count = shard_of(shard)
    est = estimate(cfg, study.data.size, study.data.counts("train"), {n: study.synth_n(n) for n in cfg.sizes})
    plan = plan_study(study, est, (index, count))
    if before_work is not None:
        before_work(plan)
    check_estimate(est, out, cfg.max_hours, cfg.force)
    from cxraug.study.plan import OTHER

    other = [c.why for s in plan.sizes if s.here for c in s.cells if c.state == OTHER]
    if other:  # refused before any work, not after the sizes before it were made
        raise UserError(other[0])
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).is_file():
        study.write_marker()
    mine = cfg.sizes[index::count]
    for n in mine:
        study.run_size(n)
    sizes: list[SizeCells] = []
    done_here, reused = study.done_here, study.reused
    complete = all(study.size_done(n) for n in cfg.sizes)
    page = None
    if complete:
        sizes = [study.run_size(n) for n in cfg.sizes]  # every cell is done: this only reads them
        from cxraug.study.page import write_page

        page = write_page(cfg, out, sizes, est)
    return StudyResult(out=out, config=cfg, sizes=sizes, complete=complete, page=page, trained=done_here, reused=reused,
                       plan=plan)  # fmt: skip
