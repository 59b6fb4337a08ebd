"""What a study grid will cost, estimated before any work, so a grid that would run for days or
fill the disk is refused in seconds (``--force`` runs it anyway).

Rough by design: generator time is the budget itself under ``--time-limit``, or steps x a
measured seconds-per-step of each plugin at 32 px on one CPU core (the development machine,
2026-12-07: the cgan 0.11 s, the diffusion model 0.97 s at their default batch sizes), scaled
by the pixel count; a benchmark run costs 0.15 s per classifier step at 32 px (ResNet-18, one
core, with its validation checks); synth and compare sample images at a measured seconds per
image. Disk: each size's reduced dataset, PNGs of ~1.2x raw
bytes, and checkpoints of each run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from cxraug.errors import UserError

SECONDS_PER_STEP_32PX = {"cgan": 0.11, "diffusion": 0.97}
UNKNOWN_PLUGIN_S = 1.0
BENCH_STEP_S_32PX = 0.15
COMPARE_S = 60.0  # features, floor and bootstrap of one compare at n=200 (plus sampling, below)
# Sampling, CPU seconds an image at 32 px on one core (2026-12-07, dev machine): the diffusion
# model at its default 20 dpmsolver++ steps (scaled by --set-sample diffusion:steps), the cgan
# one forward pass. Synth and compare draw them; the estimate left them out until then.
SAMPLE_S_PER_IMAGE_32PX = {"cgan": 0.001, "diffusion": 0.09}
DEFAULT_SAMPLE_STEPS = {"diffusion": 20}
RUN_DISK = 60e6  # checkpoints, export and grids of one generator run


@dataclass(frozen=True)
class Estimate:
    hours: float
    bytes: int
    cells: int

    def text(self) -> str:
        # under an hour in minutes: a toy grid's "0.0 h" said nothing
        took = f"{self.hours:.1f} h" if self.hours >= 1 else f"{max(1, round(self.hours * 60))} min"
        return f"about {took} and {self.bytes / 1e9:.2f} GB over {self.cells} cells"


def estimate(cfg, image_size: int, train_counts: dict[str, int], synth_n: dict[int, int]) -> Estimate:
    """``synth_n``: synthetic images per generator run at each size."""
    scale = (image_size / 32) ** 2
    per_gen = 0.0
    for g in cfg.generators:
        if cfg.time_limit is not None:
            per_gen += cfg.time_limit * 60
        else:
            per_gen += cfg.steps_of(g) * SECONDS_PER_STEP_32PX.get(g, UNKNOWN_PLUGIN_S) * scale
    n_gen = len(cfg.gen_seeds)
    per_image = {}  # sampling seconds an image, per generator
    for g in cfg.generators:
        steps = cfg.sample_sets.get(g, {}).get("steps")
        factor = steps / DEFAULT_SAMPLE_STEPS[g] if isinstance(steps, int) and g in DEFAULT_SAMPLE_STEPS else 1.0
        per_image[g] = SAMPLE_S_PER_IMAGE_32PX.get(g, UNKNOWN_PLUGIN_S / 10) * factor * scale
    bench = cfg.bench_sets
    epochs = int(bench.get("epochs", 8)) if str(bench.get("epochs", 8)).isdigit() else 8
    batch = int(bench.get("batch_size", 64)) if str(bench.get("batch_size", 64)).isdigit() else 64
    others = sum(n for c, n in train_counts.items() if c != cfg.rare)
    seconds, disk, cells = 0.0, 0, 0
    per_size_data = sum(train_counts.values()) * image_size**2 * 2  # reduced copy, val and test included roughly
    given = bench.get("arms")
    if isinstance(given, list) and given:  # arms= restricts them (the demo does): those, and one control pair
        arms = len(given) + (2 if any(str(a).split("@")[0].split("+")[0] in cfg.generators for a in given) else 0)
    else:
        arms = 5 + 4 * len(cfg.generators)  # baselines, NAME and NAME+classic, copy and noise
    for n in cfg.sizes:
        largest = others + n + synth_n[n]
        steps = int(bench["steps"]) if str(bench.get("steps", "")).isdigit() else max(1, epochs * largest // batch)
        runs = arms * len(cfg.seeds)
        if len(cfg.ratios) > 1:
            runs += len(cfg.ratios) * len(cfg.generators) * len(cfg.seeds)
        seconds += per_gen * n_gen + runs * steps * BENCH_STEP_S_32PX * scale + COMPARE_S
        seconds += sum(per_image.values()) * n_gen * (synth_n[n] + cfg.compare_n)  # synth cells and compare
        disk += per_size_data + len(cfg.generators) * n_gen * (RUN_DISK + synth_n[n] * image_size**2 * 1.2)
        cells += 3 + 2 * len(cfg.generators) * n_gen + (len(cfg.ratios) > 1)
    return Estimate(seconds / 3600, int(disk), cells)


def check_estimate(est: Estimate, out: Path, max_hours: float, force: bool) -> None:
    if force:
        return
    if est.hours > max_hours:
        raise UserError(
            f"this grid would take {est.text()}, over the limit of {max_hours:g} h: use fewer sizes, seeds or "
            "a smaller budget, raise --max-hours, or --force"
        )
    probe = Path(out).resolve()
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if est.bytes > free:
        raise UserError(
            f"this grid needs {est.text()}, and {probe} has {free / 1e9:.2f} GB free: free space, "
            "choose another --out, or --force"
        )
