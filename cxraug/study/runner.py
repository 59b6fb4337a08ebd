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

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug.errors import UserError
from cxraug.fsutil import read_json, write_json
from cxraug.lock import output_lock
from cxraug.progress import NullReporter, Reporter
from cxraug.runs import clear_unstarted_runs
from cxraug.study.cells import Cell, SizeCells
from cxraug.study.config import StudyConfig, key_dict

if TYPE_CHECKING:
    from cxraug.study.estimate import Estimate
    from cxraug.study.plan import StudyPlan, VerdictOutlook

MARKER = "study.json"
# A study needs every cell's numbers, verdict or not: the curve shows each size's interval (and
# a selection benchmark has no controls, so never a verdict). The benchmark would otherwise stop
# before training when no verdict is reachable (too few seeds or test patients).
FORCE = "--force"
FORMAT = 1
DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE",
            "MASTER_ADDR", "MASTER_PORT", "GROUP_WORLD_SIZE", "TORCHELASTIC_RUN_ID")  # fmt: skip


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


def shard_of(shard: str | None) -> tuple[int, int]:
    """(index, count): ``--shard I/K``, else the launcher's RANK / WORLD_SIZE, else (0, 1)."""
    if shard:
        if not isinstance(shard, str):  # from Python: "I/K", as on the command line
            raise UserError(f"shard must be a str 'I/K', e.g. shard='0/4' (got {shard!r:.40})")
        i, slash, k = shard.partition("/")
        if not slash or not i.isdigit() or not k.isdigit() or int(k) < 1 or int(i) >= int(k):
            raise UserError(f"--shard {shard!r}: give I/K with 0 <= I < K, e.g. --shard 0/4")
        return int(i), int(k)
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def child_env() -> dict[str, str]:
    """A cell's command runs as one process of its own: the launcher's rank variables are removed,
    and under several GPUs each process keeps its own (LOCAL_RANK's) device."""
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV and not k.startswith("TORCHELASTIC_")}
    local, per_machine = os.environ.get("LOCAL_RANK"), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if "CXRAUG_THREADS" not in env and per_machine > 1:  # the machine's cores shared out, as a launched command does
        env["CXRAUG_THREADS"] = str(max(1, (os.cpu_count() or 1) // per_machine))
    if local is not None and per_machine > 1:
        visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[int(local)] if int(local) < len(visible) else local
    return env


def cxraug(argv: list[str], log: Path) -> dict[str, float]:
    """Run ``cxraug ARGV`` as its own process, its output appended to ``log``; its wall and CPU
    seconds. A failure is one line: the command's own last error line, and where the log is."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"$ cxraug {' '.join(argv)}\n")
        f.flush()
        r = subprocess.run([sys.executable, "-m", "cxraug", *argv], stdout=f, stderr=subprocess.STDOUT,
                           env=child_env(), check=False)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("error")), lines[-1] if lines else "")
        raise UserError(f"`cxraug {argv[0]}` failed (exit {r.returncode}): {last.strip()[:300]} (log: {log})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(cpu, 1)}


def _sets_args(sets: dict[str, Any]) -> list[str]:
    import json

    out: list[str] = []
    for k, v in sets.items():
        out += ["--set", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    return out


def ratio_count(ratio: str, n: int, others_max: int) -> int:
    """Synthetic rare-class images a ratio adds at size n (the benchmark's rule)."""
    from cxraug.benchmark.arms import parse_ratio

    return parse_ratio(ratio).n_synthetic(n, others_max, 0)


class Study:
    def __init__(self, cfg: StudyConfig, out: Path, reporter: Reporter | None = None) -> None:
        from cxraug.data.prepared import fingerprint, open_prepared

        self.cfg, self.out = cfg, Path(out)
        self.reporter = reporter or NullReporter()
        self.data = open_prepared(cfg.data)
        self.fingerprint = fingerprint(self.data)
        self.done_here = 0
        self.reused = 0

    # --- checks, before any work ----------------------------------------------------------------
    def check(self) -> None:
        from cxraug import registry

        cfg, data = self.cfg, self.data
        if cfg.rare not in data.classes:
            raise UserError(
                f"--rare {cfg.rare!r} is not a class of {data.root}; its classes: {', '.join(data.classes)}"
            )
        have = data.counts("train")[cfg.rare]
        too_big = [n for n in cfg.sizes if n > have]
        if too_big:
            raise UserError(
                f"--sizes {too_big[0]}: {cfg.rare} has only {have} training images in {data.root}; "
                f"give sizes up to {have}"
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
        self.check_sets()
        for split in ("val", "test"):
            if data.counts(split).get(cfg.rare, 0) == 0:
                raise UserError(f"{data.root} has no {cfg.rare} images in {split}; the study needs them")

    def check_sets(self) -> None:
        """--set, --set-gen and --set-sample validated as the cells' commands will read them, so a
        wrong key or value is refused before any work, not after the generators have trained."""
        from cxraug import registry
        from cxraug.benchmark.config import build_config
        from cxraug.config import resolve, validated

        cfg = self.cfg
        bench = {k: v for k, v in cfg.bench_sets.items() if k != "arms"}  # arms: checked with the study's own
        try:
            build_config(None, None, [a for a in _sets_args(bench) if a != "--set"])
        except UserError as e:
            raise UserError(f"--set: {e}") from None
        for g, sets in cfg.gen_sets.items():
            try:
                resolve(registry.get(g).Config, {}, {"steps": 1}, sets)
            except UserError as e:
                raise UserError(f"--set-gen {g}:...: {e}") from None
        for g, sets in cfg.sample_sets.items():
            validated(registry.get(g).SampleOptions, sets, f"--set-sample {g}: sampling option")

    def synth_n(self, n: int) -> int:
        counts = self.data.counts("train")
        others = max(v for c, v in counts.items() if c != self.cfg.rare)
        return max(1, max(ratio_count(r, n, max(others, n)) for r in self.cfg.ratios))

    def check_out(self) -> None:
        out = self.out
        probe = out  # a file at --out (or above it) is refused here, so --plan says so too
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if probe.exists() and not probe.is_dir():
            raise UserError(f"--out {out}: {probe} is a file, not a folder; choose another --out")
        if (
            out.is_dir()
            and any(p for p in out.iterdir() if not p.name.startswith("."))
            and not (out / MARKER).is_file()
        ):
            raise UserError(f"--out {out} exists and is not a study folder; choose another --out")
        if (out / MARKER).is_file():
            stored = read_json(out / MARKER)
            if stored.get("data", {}).get("fingerprint") != self.fingerprint:
                raise UserError(
                    f"--out {out} holds a study of another dataset than {self.data.root}; use another --out"
                )
            if stored.get("format") != FORMAT:
                raise UserError(f"--out {out} holds a study of another format; use another --out")

    def write_marker(self) -> None:
        write_json(
            self.out / MARKER,
            {"format": FORMAT, "config": key_dict(self.cfg),
             "data": {"path": str(self.data.root.resolve()), "fingerprint": self.fingerprint,
                      "identity": self.data.identity}},
        )  # fmt: skip

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
            cell.finish(**info)
            self.done_here += 1
        return cell.info()

    def size_folder(self, n: int) -> Path:
        return self.out / f"n-{n:04d}"

    # Each cell's key, built the same way whether the cell is planned or made.
    def reduce_cell(self, n: int) -> Cell:
        cfg = self.cfg
        return Cell(self.size_folder(n) / "data", {"stage": "reduce", "source": self.fingerprint, "rare": cfg.rare,
                                                   "n": n, "imbalance_seed": cfg.imbalance_seed})  # fmt: skip

    def train_cell(self, n: int, data_cell: Cell, g: str, seed: int) -> Cell:
        cfg = self.cfg
        budget = {"steps": cfg.steps_of(g)} if cfg.gen_steps is not None else {"time_limit": cfg.time_limit,
                                                                             "clock": cfg.clock}  # fmt: skip
        return Cell(self.size_folder(n) / f"gen-{g}-s{seed}",
                    {"stage": "train", "plugin": g, "seed": seed, **budget, "sets": cfg.gen_sets.get(g, {}),
                     "data": data_cell.hash})  # fmt: skip

    def synth_cell(self, n: int, gen_cell: Cell, g: str, seed: int) -> Cell:
        cfg = self.cfg
        return Cell(self.size_folder(n) / f"synth-{g}-s{seed}",
                    {"stage": "synth", "n": self.synth_n(n), "class": cfg.rare, "sets": cfg.sample_sets.get(g, {}),
                     "run": gen_cell.hash})  # fmt: skip

    def select_cell(self, n: int, set_cells: list[Cell]) -> Cell:
        cfg = self.cfg
        return Cell(self.size_folder(n) / "select",
                    {"stage": "select", "ratios": cfg.ratios, "seeds": cfg.seeds, "bench": cfg.bench_sets,
                     "sets": [c.hash for c in set_cells], "rare": cfg.rare})  # fmt: skip

    def benchmark_cell(self, n: int, data_cell: Cell, chosen: dict[str, str], set_cells: list[Cell]) -> Cell:
        cfg = self.cfg
        return Cell(self.size_folder(n) / "benchmark",
                    {"stage": "benchmark", "seeds": cfg.seeds, "bench": cfg.bench_sets, "chosen": chosen,
                     "sets": [c.hash for c in set_cells], "data": data_cell.hash, "rare": cfg.rare})  # fmt: skip

    def compare_samples(self) -> dict[str, Any]:
        samples: dict[str, Any] = {}
        for g in self.cfg.generators:
            samples |= self.cfg.sample_sets.get(g, {})
        return samples

    def compare_cell(self, n: int, gen_cells: list[Cell]) -> Cell:
        cfg = self.cfg
        return Cell(self.size_folder(n) / "compare",
                    {"stage": "compare", "n": cfg.compare_n, "bootstrap": cfg.compare_bootstrap,
                     "min_images": cfg.compare_min_images, "speed_images": cfg.compare_speed_images,
                     "metrics": cfg.compare_metrics, "memorization": cfg.compare_memorization,
                     "sets": self.compare_samples(), "runs": [c.hash for c in gen_cells], "rare": cfg.rare})  # fmt: skip

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
            return cxraug(argv + _sets_args(sets), c.folder / "log.txt")

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
            return cxraug(["synth", "--run", str(run), "--class", cfg.rare, "-n", str(count), "--out", str(out),
                           *_sets_args(sets)], c.folder / "log.txt")  # fmt: skip

        self._do(cell, f"n={n}: synth {count} {cfg.rare} images from {g} (seed {seed})", work)
        return cell, out

    def _bench_sets(self) -> list[str]:
        cfg = self.cfg
        own = _sets_args({k: v for k, v in cfg.bench_sets.items() if k != "arms"})
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
        sc.cost["select"] = {k: info.get(k, 0.0) for k in ("seconds", "cpu_seconds")}

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

        info = self._do(cell, f"n={n}: benchmark ({len(cfg.seeds)} seeds)", work)
        sc.benchmark = cell.folder / "out"
        sc.cost["benchmark"] = {k: info.get(k, 0.0) for k in ("seconds", "cpu_seconds")}

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
                           *extra, *_sets_args(samples)], c.folder / "log.txt")  # fmt: skip

        info = self._do(cell, f"n={n}: compare the generators on validation images", work)
        sc.compare = out
        sc.cost["compare"] = {k: info.get(k, 0.0) for k in ("seconds", "cpu_seconds")}

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

    # --- the plan, before any work ------------------------------------------------------------
    def plan(self, est: Estimate, shard: tuple[int, int]) -> StudyPlan:
        """Every cell of the grid and its state, read from the cells' records; writes nothing."""
        from cxraug.study.estimate import check_estimate
        from cxraug.study.plan import DONE, TO_MAKE, PlannedCell, SizePlan, StudyPlan, cell_state, planned

        cfg = self.cfg
        mine = set(cfg.sizes[shard[0] :: shard[1]])
        sizes = []
        for n in cfg.sizes:
            data_cell = self.reduce_cell(n)
            cells, gen_cells, set_cells = [data_cell], [], []
            for g in cfg.generators:
                for s in cfg.gen_seeds:
                    gen_cells.append(self.train_cell(n, data_cell, g, s))
                    set_cells.append(self.synth_cell(n, gen_cells[-1], g, s))
            cells += gen_cells + set_cells
            chosen = {g: cfg.ratios[0] for g in cfg.generators} if len(cfg.ratios) == 1 else None
            if chosen is None:
                select = self.select_cell(n, set_cells)
                cells.append(select)
                if cell_state(select) == DONE:
                    chosen = select.info()["chosen"]
            states = [planned(c.folder.name, c) for c in cells]
            if chosen is not None:
                states.append(planned("benchmark", self.benchmark_cell(n, data_cell, chosen, set_cells)))
            else:  # its key holds the ratios validation will choose
                states.append(PlannedCell("benchmark", TO_MAKE))
            compare = self.compare_cell(n, gen_cells)
            states.append(planned(compare.folder.name, compare))
            sizes.append(SizePlan(n, self.synth_n(n), states, here=n in mine))
        try:
            check_estimate(est, self.out, cfg.max_hours, cfg.force)
            refused = None
        except UserError as e:
            refused = str(e)
        return StudyPlan(self.out, cfg, str(self.data.root), sizes, est, self.verdict_outlook(), refused, shard)

    def verdict_outlook(self) -> VerdictOutlook:
        import numpy as np

        from cxraug.benchmark.config import BenchmarkConfig
        from cxraug.benchmark.forecast import detectable_auroc_difference
        from cxraug.benchmark.statistics import MIN_SEEDS
        from cxraug.classify.trainset import split_patients
        from cxraug.study.plan import VerdictOutlook

        data, cfg = self.data, self.cfg
        labels = np.asarray(data.labels("test"))
        pos = labels == data.classes.index(cfg.rare)
        patients = np.asarray(split_patients(data, "test"), dtype=str)
        need = int(cfg.bench_sets.get("min_test_patients", BenchmarkConfig.model_fields["min_test_patients"].default))
        return VerdictOutlook(
            test_images=int(pos.sum()), test_patients=len(set(patients[pos])), min_test_patients=need,
            seeds=len(cfg.seeds), min_seeds=MIN_SEEDS,
            detectable=detectable_auroc_difference(int(pos.sum()), int((~pos).sum())),
        )  # fmt: skip

    def size_done(self, n: int) -> bool:
        f = self.size_folder(n)
        return all((f / p / "cell.json").is_file() and read_json(f / p / "cell.json").get("status") == "done"
                   for p in ("benchmark", "compare"))  # fmt: skip


def _cost(cell: Cell) -> dict[str, float]:
    info = cell.info()
    return {"seconds": float(info.get("seconds", 0.0)), "cpu_seconds": float(info.get("cpu_seconds", 0.0))}


def _json(v: Any) -> str:
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

    if out is None and cfg.out is None:
        raise UserError("--out DIR is needed: the study folder (a killed study continues there)")
    out = Path(out if out is not None else cfg.out)
    study = Study(cfg, out, reporter)
    study.check()
    study.check_out()
    index, count = shard_of(shard)
    est = estimate(cfg, study.data.size, study.data.counts("train"), {n: study.synth_n(n) for n in cfg.sizes})
    plan = study.plan(est, (index, count))
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
    return StudyResult(out, cfg, sizes, complete, page, done_here, reused, plan)
