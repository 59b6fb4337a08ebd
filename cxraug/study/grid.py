"""A study's grid: the folder and key of every cell, built the same way whether the cell is
planned or made (:mod:`cxraug.study.runner` makes them, :mod:`cxraug.study.planning` reads them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxraug.data.prepared import PreparedData, fingerprint, open_prepared
from cxraug.fsutil import read_json
from cxraug.study.cells import Cell
from cxraug.study.config import StudyConfig


def ratio_count(ratio: str, n: int, others_max: int) -> int:
    """Synthetic rare-class images a ratio adds at size n (the benchmark's rule)."""
    from cxraug.benchmark.arms import parse_ratio

    return parse_ratio(ratio).n_synthetic(n, others_max, 0)


class Grid:
    """The cells of a study of ``cfg`` in ``out``, on its source dataset."""

    def __init__(self, cfg: StudyConfig, out: Path) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.data: PreparedData = open_prepared(cfg.data)
        self.fingerprint = fingerprint(self.data)

    def synth_n(self, n: int) -> int:
        counts = self.data.counts("train")
        others = max(v for c, v in counts.items() if c != self.cfg.rare)
        return max(1, max(ratio_count(r, n, max(others, n)) for r in self.cfg.ratios))

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

    def size_done(self, n: int) -> bool:
        f = self.size_folder(n)
        return all((f / p / "cell.json").is_file() and read_json(f / p / "cell.json").get("status") == "done"
                   for p in ("benchmark", "compare"))  # fmt: skip
