"""A study's plan, said before any work (and alone under ``cxraug study --plan``): the grid, each
cell and whether it is made already (reused), started (continued) or to make, the estimated
time and disk, and whether the benchmarks can give verdicts. Built from the options, the
dataset's counts and the cells' records only: nothing is trained, timed or written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cxraug.errors import UserError
from cxraug.study.cells import Cell
from cxraug.study.config import StudyConfig
from cxraug.study.estimate import Estimate

# What a cell's record says, in the plan's words.
DONE, STARTED, TO_MAKE, OTHER = "done (reused)", "started (continued)", "to make", "made with other settings"


def cell_state(cell: Cell) -> str:
    try:
        rec = cell.record()
    except UserError:  # the run refuses it in its own line; the plan says so
        return OTHER
    if rec is None:
        return TO_MAKE
    return DONE if rec.get("status") == "done" else STARTED


@dataclass
class PlannedCell:
    name: str  # the cell's folder name, e.g. gen-cgan-s0
    state: str
    why: str = ""  # made with other settings: the cell's own line, naming what differs


def planned(name: str, cell: Cell) -> PlannedCell:
    try:
        cell.record()
    except UserError as e:
        return PlannedCell(name, OTHER, str(e))
    return PlannedCell(name, cell_state(cell))


@dataclass
class SizePlan:
    n: int
    synthetic: int  # synthetic images per generator run at this size
    cells: list[PlannedCell]
    here: bool = True  # this process's share (--shard / the launcher's rank)


@dataclass
class VerdictOutlook:
    """Whether the benchmarks can give the rare class a verdict: the test split (never reduced)
    and the seeds decide it, so it is the same at every size."""

    test_images: int
    test_patients: int
    min_test_patients: int
    seeds: int
    min_seeds: int
    detectable: float  # ΔAUROC the test images could detect (benchmark/forecast.py), NaN: none

    @property
    def why_not(self) -> list[str]:
        why = []
        if self.test_patients < self.min_test_patients:
            why.append(f"{self.test_patients} test patients, {self.min_test_patients} needed")
        if self.seeds < self.min_seeds:
            why.append(f"{self.seeds} classifier seeds, {self.min_seeds} needed")
        return why


@dataclass
class StudyPlan:
    out: Path
    config: StudyConfig
    data: str
    sizes: list[SizePlan]
    estimate: Estimate
    outlook: VerdictOutlook
    refused: str | None = None  # why the run would stop before any work (time or disk), None: it runs
    shard: tuple[int, int] = (0, 1)
    notes: list[str] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(c.state == state for s in self.sizes if s.here for c in s.cells)

    def lines(self) -> list[str]:
        """The plan, one line per item (Rich-free text)."""
        cfg = self.config
        out = [f"plan of the study in {self.out} on {self.data}:"]
        out.append(f"  rare class: {cfg.rare}; sizes (its training images kept, by patient): "
                   f"{', '.join(map(str, cfg.sizes))}")  # fmt: skip
        out.append(f"  generators: {', '.join(cfg.generators)} ({cfg.budget_text()} per run), "
                   f"replicates (training seeds): {', '.join(map(str, cfg.gen_seeds))}")  # fmt: skip
        chooser = "chosen per generator and size on validation patients" if len(cfg.ratios) > 1 else "one ratio"
        out.append(f"  ratios: {', '.join(cfg.ratios)} ({chooser}); classifier seeds: "
                   f"{', '.join(map(str, cfg.seeds))}")  # fmt: skip
        o = self.outlook
        detect = "no test image" if o.detectable != o.detectable else f"about {o.detectable:.3f}"
        head = f"  verdicts (the same at every size: the test split is never reduced): {o.test_images} test images of "
        head += f"{o.test_patients} patients, detectable ΔAUROC {detect}; "
        out.append(head + ("reachable" if not o.why_not else f"none reachable ({'; '.join(o.why_not)}), "
                           "every benchmark still runs, for the curve"))  # fmt: skip
        index, count = self.shard
        if count > 1:
            out.append(f"  this process: {index} of {count}, sizes {', '.join(str(s.n) for s in self.sizes if s.here)}")
        for s in self.sizes:
            if not s.here:
                continue
            states: dict[str, list[str]] = {}
            for c in s.cells:
                states.setdefault(c.state, []).append(c.name)
            said = "; ".join(f"{state}: {', '.join(names)}" for state, names in states.items())
            out.append(f"  n={s.n} ({s.synthetic} synthetic images a run): {said}")
        out.append(
            f"  cells: {self.count(TO_MAKE)} to make, {self.count(STARTED)} to continue, {self.count(DONE)} done"
            + (
                f", {self.count(OTHER)} made with other settings (refused: use another --out)"
                if self.count(OTHER)
                else ""
            )
        )
        out.append(f"  estimated for the whole grid: {self.estimate.text()} (study/estimate.py; rough)")
        out += [f"  note: {n}" for n in self.notes]
        if self.refused:
            out.append(f"  this study would stop here: {self.refused}")
        return out
