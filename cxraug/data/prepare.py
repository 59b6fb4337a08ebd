"""``cxraug prepare``: a source on disk -> a prepared dataset that training reads fast.

Output (built in a staging folder, renamed into place when complete):
  images_{split}.npy   uint8 N x S x S, loadable with ``np.load(..., mmap_mode="r")``
  labels_{split}.npy   int64 N, indices into dataset.json's ``classes``
  manifest.csv         one row per image (id, patient, class, split, index, source, ...)
  dataset.json         classes, counts per split and class, size, source, options, version

Images stream from a process pool straight to disk, so memory does not grow with the
number of images.
"""

from __future__ import annotations

import csv
import functools
import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cxraug import __version__
from cxraug.classes import NIH_CLASSES, resolve_classes
from cxraug.data.imageio import resize_square
from cxraug.data.records import SPLITS, Loader, Record, SourceScan
from cxraug.data.splits import assert_patient_disjoint, carve_patients
from cxraug.errors import UserError
from cxraug.fsutil import atomic_dir, check_new_output, write_json
from cxraug.progress import NullReporter, Reporter

FORMAT_VERSION = 1
SOURCES = ("nih", "medmnist", "folder", "phantom")
MIN_SIZE, MAX_SIZE = 32, 1024
MANIFEST_COLUMNS = (
    "image_id", "patient_id", "class", "label", "split", "index", "source_file",
    "orig_width", "orig_height", "view", "age", "sex",
)  # fmt: skip


@dataclass
class PrepareConfig:
    source: str
    out: Path
    size: int = 64
    data_dir: Path | None = None
    npz: Path | None = None
    flag: str | None = None
    labels: Path | None = None
    classes: list[str] | None = None  # None: all the source's classes
    views: list[str] | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2  # only where the source has no test split of its own
    seed: int = 0
    workers: int | None = None  # None: all cores
    strict: bool = False
    overwrite: bool = False
    n: int = 2000  # phantom only

    def validate(self) -> None:
        if self.source not in SOURCES:
            raise UserError(f"unknown --source {self.source!r}; known: {', '.join(SOURCES)}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise UserError(f"--size {self.size} is out of range; use {MIN_SIZE} to {MAX_SIZE} pixels")
        if not 0.0 <= self.val_fraction < 1.0 or not 0.0 < self.test_fraction < 1.0:
            raise UserError("--val-fraction must be in [0, 1) and --test-fraction in (0, 1)")
        if self.workers is not None and self.workers < 1:
            raise UserError("--workers must be at least 1")
        if self.source == "phantom" and self.n < 15:
            raise UserError("--n must be at least 15 (one image per class) for the phantom set")
        if self.source in ("nih", "folder") and self.data_dir is None:
            raise UserError(f"--source {self.source} needs --data-dir")
        if self.source == "medmnist" and self.npz is None:
            raise UserError("--source medmnist needs --npz FILE")


@dataclass
class PrepareResult:
    out: Path
    meta: dict
    failed: list[tuple[str, str]] = field(default_factory=list)


def _scan(cfg: PrepareConfig) -> SourceScan:
    from cxraug.data.sources.folder import scan_folder
    from cxraug.data.sources.medmnist import scan_medmnist
    from cxraug.data.sources.nih import scan_nih
    from cxraug.data.sources.phantom import scan_phantom

    def classes_or_all(known: tuple[str, ...] | list[str]) -> list[str]:
        try:
            return resolve_classes(cfg.classes or "all", known)
        except ValueError as e:
            raise UserError(f"--classes: {e}") from None

    if cfg.source == "nih":
        classes = classes_or_all(NIH_CLASSES)
        return scan_nih(Path(cfg.data_dir), classes, cfg.views, cfg.test_fraction, cfg.seed)
    if cfg.source == "phantom":
        classes = classes_or_all(NIH_CLASSES)
        return scan_phantom(cfg.n, cfg.size, classes, cfg.seed, cfg.test_fraction)
    if cfg.source == "medmnist":
        scan = scan_medmnist(Path(cfg.npz), cfg.flag, None)
    else:
        scan = scan_folder(Path(cfg.data_dir), cfg.labels, None, cfg.test_fraction, cfg.seed)
    if cfg.classes:
        keep = classes_or_all(scan.classes)
        scan.records = [r for r in scan.records if r.label in keep]
        scan.classes = keep
    return scan


def assign_splits(records: list[Record], val_fraction: float, seed: int) -> list[Record]:
    """Carve validation patients out of ``train_val``; other splits stay as the source set them."""
    train_val = [r for r in records if r.split == "train_val"]
    others = [r for r in records if r.split != "train_val"]
    carved = carve_patients(train_val, val_fraction, seed, "val", "train")
    out = others + carved
    assert_patient_disjoint(out)
    return out


def _decode(record: Record, loader: Loader, size: int) -> tuple[np.ndarray | None, str]:
    try:
        return resize_square(loader(record), size), ""
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"


class _NpyStream:
    """Writes rows of a uint8 N x S x S array to an .npy file as they come."""

    def __init__(self, path: Path, n: int, size: int) -> None:
        self.path, self.n, self.size, self.count = path, n, size, 0
        self.f = open(path, "wb")
        np.lib.format.write_array_header_1_0(self.f, self._header(n))
        self.data_start = self.f.tell()

    def _header(self, n: int) -> dict:
        return {"descr": "|u1", "fortran_order": False, "shape": (n, self.size, self.size)}

    def write(self, img: np.ndarray) -> int:
        self.f.write(img.tobytes())
        self.count += 1
        return self.count - 1

    def close(self) -> None:
        """Fix the header when some planned rows failed; rewrite only if its length changed."""
        self.f.close()
        if self.count == self.n:
            return
        import io

        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, self._header(self.count))
        header = buf.getvalue()
        nbytes = self.count * self.size * self.size
        if len(header) == self.data_start:
            with open(self.path, "r+b") as f:
                f.write(header)
                f.truncate(self.data_start + nbytes)
            return
        tmp = self.path.with_suffix(".tmp")
        with open(self.path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(header)
            src.seek(self.data_start)
            left = nbytes
            while left:
                chunk = src.read(min(left, 1 << 24))
                dst.write(chunk)
                left -= len(chunk)
        os.replace(tmp, self.path)


def _imap(fn, items: list[Record], workers: int, parallel: bool):
    if workers <= 1 or not parallel or len(items) < 2 * workers:
        yield from map(fn, items)
        return
    chunk = max(1, min(32, len(items) // (workers * 8)))
    with mp.get_context().Pool(workers) as pool:
        yield from pool.imap(fn, items, chunksize=chunk)


def prepare(cfg: PrepareConfig, reporter: Reporter | None = None) -> PrepareResult:
    cfg.validate()
    check_new_output(Path(cfg.out), cfg.overwrite)
    reporter = reporter or NullReporter()
    t0 = time.perf_counter()
    scan = _scan(cfg)
    records = assign_splits(scan.records, cfg.val_fraction, cfg.seed)
    if not records:
        raise UserError(
            f"no single-label images of the chosen classes were found for --source {cfg.source}; "
            "check --data-dir/--npz, --classes and --views"
        )
    if cfg.strict and sum(scan.missing.values()):
        raise UserError(
            f"{sum(scan.missing.values())} listed images are missing on disk (--strict); "
            "download them or drop --strict to skip them"
        )
    class_index = {c: i for i, c in enumerate(scan.classes)}
    split_order = {s: i for i, s in enumerate(SPLITS)}
    records.sort(key=lambda r: (split_order[r.split], class_index[r.label], r.image_id))
    workers = cfg.workers or os.cpu_count() or 1
    fn = functools.partial(_decode, loader=scan.loader, size=cfg.size)
    planned = Counter(r.split for r in records)
    failed: list[tuple[str, str]] = []
    labels: dict[str, list[int]] = {s: [] for s in SPLITS}
    with atomic_dir(Path(cfg.out), cfg.overwrite) as stage:
        streams = {s: _NpyStream(stage / f"images_{s}.npy", planned[s], cfg.size) for s in SPLITS}
        with (
            open(stage / "manifest.csv", "w", newline="") as mf,
            reporter.task(f"prepare {scan.name} -> {cfg.size}px", len(records)) as advance,
        ):
            writer = csv.DictWriter(mf, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            for rec, (img, err) in zip(records, _imap(fn, records, workers, scan.parallel), strict=True):
                advance(1)
                if img is None:
                    if cfg.strict:
                        raise UserError(
                            f"cannot decode {rec.source_file} ({err}); fix or remove it, "
                            "or drop --strict to skip unreadable images"
                        )
                    failed.append((rec.source_file, err))
                    continue
                idx = streams[rec.split].write(img)
                labels[rec.split].append(class_index[rec.label])
                row = asdict(rec)
                row.update({"class": rec.label, "label": class_index[rec.label], "index": idx})
                writer.writerow({k: row.get(k, "") for k in MANIFEST_COLUMNS})
        for s in SPLITS:
            streams[s].close()
            np.save(stage / f"labels_{s}.npy", np.asarray(labels[s], dtype=np.int64))
        counts = {s: {c: labels[s].count(i) for c, i in class_index.items()} for s in SPLITS}
        if sum(len(v) for v in labels.values()) == 0:
            raise UserError("every image failed to decode; check the files (see a few with an image viewer)")
        meta = {
            "format_version": FORMAT_VERSION,
            "cxraug_version": __version__,
            "source": scan.name,
            "real_data": scan.real_data,
            "note": "" if scan.real_data else scan.notes[0],
            "size": cfg.size,
            "channels": 1,
            "classes": scan.classes,
            "counts": counts,
            "patients": {s: len({r.patient_id for r in records if r.split == s}) for s in SPLITS},
            "missing_on_disk": scan.missing,
            "failed_to_decode": len(failed),
            "split_method": scan.split_method + f"; val carved from train_val by patient "
            f"({cfg.val_fraction:.0%}, seed {cfg.seed})",
            "notes": scan.notes,
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            "seconds": round(time.perf_counter() - t0, 2),
        }
        if failed:
            with open(stage / "failed.csv", "w", newline="") as f:
                csv.writer(f).writerows([("source_file", "error"), *failed])
        write_json(stage / "dataset.json", meta)
    return PrepareResult(out=Path(cfg.out), meta=meta, failed=failed)
