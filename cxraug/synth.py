"""``cxraug synth``: N images per class from a run's exported generator.

Work is cut into fixed batches; batch b of class c draws its noise from a generator seeded
by (seed, c, b), so the same seed gives the same images whatever the number of processes or
interruptions. Each process appends the rows of finished batches to its own manifest part;
a rerun skips finished batches, and the last step merges the parts into manifest.csv and
marks provenance.json complete. Memory does not grow with n.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cxraug import __version__, runs
from cxraug.classes import means_all, resolve_classes
from cxraug.errors import UserError
from cxraug.fsutil import (
    TOOL,
    atomic_write_bytes,
    check_output_place,
    check_replaceable,
    inside,
    read_json,
    write_json,
)
from cxraug.lock import output_lock
from cxraug.progress import NullReporter, Reporter
from cxraug.resources import PNG_OVERHEAD, SYNTH_ROW_BYTES, require
from cxraug.synthset import MANIFEST, MANIFEST_COLUMNS, PROVENANCE

if TYPE_CHECKING:
    from accelerate import PartialState

    from cxraug.generator import Generator, SampleOptions

PART = "manifest.part{rank}.csv"


@dataclass
class SynthConfig:
    run: Path
    classes: list[str]
    n: int
    out: Path | None = None
    seed: int = 0
    batch_size: int = 64
    overwrite: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    allow_unseen: bool = False  # sample classes the generator saw no training image of

    def __post_init__(self) -> None:  # str paths (and one class name) from Python work as well
        if not isinstance(self.n, int) or isinstance(self.n, bool):  # else a TypeError deep in synth
            raise UserError(f"n must be a whole number of images per class (got {self.n!r:.40})")
        if not isinstance(self.run, (str, os.PathLike)):
            raise UserError(f"run must be a str or Path (got {type(self.run).__name__})")
        self.run = Path(self.run)
        self.out = None if self.out is None else Path(self.out)
        if isinstance(self.classes, str):
            self.classes = [self.classes]


def default_out(
    cfg: SynthConfig, class_names: list[str], all_classes: list[str], options: SampleOptions | None = None
) -> Path:
    """RUN/synth/<classes>-n<N>-seed<S>[-<options>]: sampling options that differ from the
    plugin's defaults are part of the name, so another setting never lands on an existing set."""
    tag = "all" if class_names == all_classes else "+".join(class_names)
    if len(tag.encode()) > 100:  # many or long names: their count and a hash, so the folder name fits
        tag = f"{len(class_names)}classes-{hashlib.sha256(tag.encode()).hexdigest()[:10]}"
    return inside(Path(cfg.run) / "synth", f"{tag}-n{cfg.n}-seed{cfg.seed}{options_tag(options)}")


def options_tag(options: SampleOptions | None) -> str:
    """'-guidance2.0-steps5' for the options set away from their defaults ('' for none)."""
    import re

    changed = options.model_dump(mode="json", exclude_defaults=True) if options is not None else {}
    if not changed:
        return ""
    tag = "".join(f"-{k}{v}" for k, v in sorted(changed.items()))
    tag = re.sub(r"[^A-Za-z0-9_.+-]+", "_", tag)
    if len(tag) > 60:  # many options: a short hash of them instead
        tag = "-options" + hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:10]
    return tag


def _png(img) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _repair_part(part: Path) -> None:
    """Cut a torn last line (a crash or a full disk mid-write) so appended rows start clean."""
    if not part.is_file():
        return
    data = part.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(part, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _row_ok(out: Path, row: dict) -> bool:
    """A manifest row counts only if it is whole and its image on disk has its checksum."""
    if any(row.get(c) in (None, "") for c in MANIFEST_COLUMNS):
        return False
    path = out / row["file"]
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == row["checksum"]


def _done_rows(out: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    for part in sorted(out.glob("manifest.part*.csv")):
        _repair_part(part)
        with open(part, newline="") as f:
            # Named columns, not the file's first line: a part whose header never reached the
            # disk (a kill before the first flush) still reads; the header row fails _row_ok.
            rows = csv.DictReader(f, fieldnames=MANIFEST_COLUMNS)
            done.update((row["file"], row) for row in rows if _row_ok(out, row))
    return done


def synth(cfg: SynthConfig, reporter: Reporter | None = None) -> Path:
    from cxraug.accel import process_state, resolve_device

    reporter = reporter or NullReporter()
    from cxraug.config import check_option

    check_option("--seed", cfg.seed)
    if cfg.n < 1:
        raise UserError("-n must be at least 1 (images per class)")
    if cfg.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    state = process_state()
    device = resolve_device(cfg.device) if cfg.device else state.device
    gen, meta = runs.load_generator(cfg.run)
    classes = list(gen.spec.classes)
    try:
        chosen = resolve_classes(cfg.classes, classes)
    except ValueError as e:
        raise UserError(f"--class: {e}") from None
    chosen, skipped = _drop_unseen(chosen, meta, cfg)
    options = gen.parse_sample_options(cfg.options)
    out = Path(cfg.out) if cfg.out else default_out(cfg, chosen, classes, options)
    check_output_place(out, runs.run_inputs(Path(cfg.run)))
    total = cfg.n * len(chosen)
    require(f"{total:,} synthetic images", out, total * (gen.spec.size**2 + PNG_OVERHEAD), total * SYNTH_ROW_BYTES)
    gen.to(device)

    provenance = {
        "tool": TOOL,
        "cxraug_version": __version__,
        "run": str(Path(cfg.run).resolve()),
        "plugin": gen.name,
        "step": meta.get("step"),
        "classes": classes,
        "requested": chosen,
        "size": gen.spec.size,
        "data": meta.get("data", {}),
        "seed": cfg.seed,
        "n_per_class": cfg.n,
        "batch_size": cfg.batch_size,
        "options": options.model_dump(mode="json"),
        "skipped_unseen": skipped,
        "complete": False,
    }
    identity = {k: provenance[k] for k in ("run", "step", "requested", "seed", "n_per_class", "batch_size", "options")}
    # One writer per set (main process; the others follow it). The kernel frees the lock on
    # any exit, so a killed synth never blocks its rerun.
    with output_lock(out, "synthetic set") if state.is_main_process else contextlib.nullcontext():
        _synth_into(out, cfg, gen, meta, classes, chosen, options, identity, provenance, state, reporter)
    return out


def _synth_into(
    out: Path, cfg: SynthConfig, gen: Generator, meta: dict, classes: list[str], chosen: list[str],
    options: SampleOptions, identity: dict, provenance: dict, state: PartialState, reporter: Reporter,
) -> None:  # fmt: skip
    from cxraug.data.dataset import to_uint8

    if state.is_main_process:
        _open_output(out, identity, provenance, cfg.overwrite)
    state.wait_for_everyone()

    done = _done_rows(out)
    items = [(c, b) for c in chosen for b in range((cfg.n + cfg.batch_size - 1) // cfg.batch_size)]
    mine = items[state.process_index :: state.num_processes]
    part = out / PART.format(rank=state.process_index)
    new_part = not part.exists() or part.stat().st_size == 0
    t0 = time.perf_counter()
    with open(part, "a", newline="") as pf, reporter.task(f"synth {len(chosen)} class(es) x {cfg.n}", len(mine)) as adv:
        writer = csv.DictWriter(pf, fieldnames=MANIFEST_COLUMNS)
        if new_part:
            writer.writeheader()
            pf.flush()
        for cls, b in mine:
            ci = classes.index(cls)
            idx = range(b * cfg.batch_size, min(cfg.n, (b + 1) * cfg.batch_size))
            files = [f"images/{cls}/{cls}_{i:06d}.png" for i in idx]
            if all(f in done for f in files):
                adv(1)
                continue
            g = torch.Generator().manual_seed(hash_seed(cfg.seed, ci, b))
            imgs = to_uint8(gen.sample(torch.full((len(idx),), ci, dtype=torch.long), generator=g, options=options))
            rows = []
            for f, img in zip(files, imgs, strict=True):
                data = _png(img)
                atomic_write_bytes(inside(out, f), data)  # a class name never leads outside --out
                rows.append({"file": f, "class": cls, "label": ci, "seed": cfg.seed, "run": Path(cfg.run).name,
                             "step": meta.get("step"), "plugin": gen.name,
                             "checksum": hashlib.sha256(data).hexdigest()})  # fmt: skip
            writer.writerows(rows)  # rows only after the files: a crash redoes the batch
            pf.flush()
            adv(1)
    state.wait_for_everyone()
    if state.is_main_process:
        _finish(out, provenance, chosen, cfg.n, time.perf_counter() - t0)
    state.wait_for_everyone()


def _drop_unseen(chosen: list[str], meta: dict, cfg: SynthConfig) -> tuple[list[str], list[str]]:
    """Classes with no training image get samples from an untrained class embedding: refuse
    them when named, leave them out of 'all' (returned as skipped), unless allow_unseen."""
    counts = meta.get("data", {}).get("counts_train") or {}
    unseen = [c for c in chosen if counts.get(c, 1) == 0]
    if not unseen or cfg.allow_unseen:
        return chosen, []
    if not means_all(cfg.classes):
        raise UserError(
            f"--class: the generator saw no training image of {', '.join(unseen)}, so its samples of "
            "it mean nothing; leave it out, or pass --allow-unseen to sample it anyway"
        )
    kept = [c for c in chosen if c not in unseen]
    if not kept:
        raise UserError("--class all: the generator saw no training image of any class; train it on data first")
    return kept, unseen


def hash_seed(seed: int, class_index: int, batch: int) -> int:
    from cxraug.rng import derive_seed

    return derive_seed(seed, class_index, batch)


def _open_output(out: Path, identity: dict, provenance: dict, overwrite: bool) -> None:
    prov_path = out / PROVENANCE
    if out.exists():
        old = read_json(prov_path) if prov_path.is_file() else None
        if old is None and _only_a_started_write(out):
            pass  # a synth killed before its provenance.json was in place: start it afresh
        elif old is None:
            raise UserError(
                f"{out} exists and is not a synthetic set (no {PROVENANCE}); synth never replaces a folder it "
                "did not write: choose another --out"
            )
        elif overwrite:
            check_replaceable(out, "synthetic set", PROVENANCE)  # cxraug's by content, nothing of yours inside
            shutil.rmtree(out)
        elif old.get("complete") and {k: old.get(k) for k in identity} != identity:
            differ = ", ".join(k for k in identity if old.get(k) != identity[k])
            raise UserError(
                f"{out} holds a finished synthetic set made with other settings ({differ}); choose another "
                "--out (--overwrite would replace that set)"
            )
        elif old.get("complete"):
            raise UserError(f"{out} already holds a finished synthetic set; pass --overwrite to redo it")
        elif {k: old.get(k) for k in identity} != identity:
            raise UserError(
                f"{out} holds an unfinished synthetic set with other settings; rerun those or pass --overwrite"
            )
    out.mkdir(parents=True, exist_ok=True)
    for tmp in [*out.glob("images/*/.*.tmp"), *out.glob(f".{PROVENANCE}.*.tmp")]:  # writes a crash interrupted
        tmp.unlink(missing_ok=True)
    if not prov_path.is_file():
        write_json(prov_path, {**provenance, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _only_a_started_write(out: Path) -> bool:
    """True if ``out`` holds nothing but the temporary file of an interrupted provenance.json
    (and the lock, which lies inside an --out whose parent is read-only)."""
    from cxraug.lock import INSIDE_LOCK

    return out.is_dir() and all(
        (p.name.startswith(f".{PROVENANCE}.") and p.suffix == ".tmp") or p.name == INSIDE_LOCK for p in out.iterdir()
    )


def _finish(out: Path, provenance: dict, chosen: list[str], n: int, seconds: float) -> None:
    """Merge the parts into manifest.csv (class order, then index) and mark complete."""
    rows = _done_rows(out)
    expected = [f"images/{c}/{c}_{i:06d}.png" for c in chosen for i in range(n)]
    missing = [f for f in expected if f not in rows]
    if missing:
        raise UserError(f"{len(missing)} images missing in {out} after synthesis (e.g. {missing[0]}); run synth again")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    for f in expected:
        w.writerow(rows[f])
    atomic_write_bytes(out / MANIFEST, buf.getvalue().encode())
    for part in out.glob("manifest.part*.csv"):
        part.unlink()
    old = read_json(out / PROVENANCE)
    write_json(out / PROVENANCE, {**old, "complete": True, "n_images": len(expected), "seconds": round(seconds, 2)})
