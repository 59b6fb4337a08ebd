"""``cxraug prepare``: a source on disk -> a prepared dataset that training reads fast.

Output (built in a staging folder, renamed into place when complete):
  images_{split}.npy   uint8 N x S x S, loadable with ``np.load(..., mmap_mode="r")``
  labels_{split}.npy   int64 N, indices into dataset.json's ``classes``
  manifest.csv         one row per image (id, patient, class, split, index, source, ...)
  dataset.json         classes, counts per split and class, size, source, options, version,
                       and the sha256 of every file above (the dataset's identity)

Images stream from a process pool straight to disk, so memory does not grow with the
number of images.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cxraug import __version__
from cxraug.classes import NIH_CLASSES, class_name_problem, resolve_classes
from cxraug.data.identity import identity_hashes
from cxraug.data.imageio import BAD_FILE_ERRORS, grey_size, resize_square
from cxraug.data.records import SPLITS, Loader, Record, SourceScan
from cxraug.data.splits import carve_patients, patient_leaks
from cxraug.errors import UserError
from cxraug.fsutil import TOOL, atomic_dir, check_output, short
from cxraug.lock import output_lock
from cxraug.progress import NullReporter, Reporter
from cxraug.resources import RECORD_BYTES, require

FORMAT_VERSION = 2  # 2: dataset.json records the content hashes (cxraug.data.identity)
SOURCES = ("nih", "medmnist", "folder", "phantom", "sample")
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

    def __post_init__(self) -> None:  # str paths from Python work as Path ones do
        self.out = Path(self.out)
        self.data_dir, self.npz, self.labels = (
            None if p is None else Path(p) for p in (self.data_dir, self.npz, self.labels)
        )

    def validate(self) -> None:
        from cxraug.config import check_option

        check_option("--seed", self.seed)
        if self.source not in SOURCES:
            raise UserError(f"unknown --source {short(self.source, 60)!r}; known: {', '.join(SOURCES)}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise UserError(f"--size {self.size} is out of range; use {MIN_SIZE} to {MAX_SIZE} pixels")
        if not 0.0 <= self.val_fraction < 1.0 or not 0.0 < self.test_fraction < 1.0:
            raise UserError("--val-fraction must be in [0, 1) and --test-fraction in (0, 1)")
        if self.workers is not None and self.workers < 1:
            raise UserError("--workers must be at least 1")
        if self.source in ("nih", "folder") and self.data_dir is None:
            raise UserError(f"--source {self.source} needs --data-dir")
        if self.source == "medmnist" and self.npz is None:
            raise UserError("--source medmnist needs --npz FILE")
        if self.source == "phantom":
            if self.n < 1:
                raise UserError(f"--n {self.n}: give a number of phantom images, at least 1")
            # Before its records are planned: a huge --n must not take the machine's memory first.
            require(f"--n {self.n} phantom images", self.out, self.n * (self.size**2 + 1024), self.n * RECORD_BYTES)


@dataclass
class PrepareResult:
    out: Path
    meta: dict
    failed: list[tuple[str, str, str, str]] = field(default_factory=list)  # image id, file, class, error


def _scan(cfg: PrepareConfig) -> SourceScan:
    from cxraug.data.sources.folder import scan_folder
    from cxraug.data.sources.medmnist import scan_medmnist
    from cxraug.data.sources.nih import scan_nih
    from cxraug.data.sources.phantom import scan_phantom
    from cxraug.data.sources.sample import scan_sample

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
    elif cfg.source == "sample":
        scan = scan_sample()
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
    leaks = patient_leaks(out)
    if leaks:
        pid, splits = next(iter(sorted(leaks.items())))
        raise UserError(
            f"{len(leaks)} patient(s) have images in more than one split (e.g. patient {pid}: "
            f"{', '.join(sorted(splits))}); the split lists/column must keep each patient in one split"
        )
    return out


def _decode(record: Record, loader: Loader, size: int) -> tuple[np.ndarray | None, str, tuple[int, int]]:
    """(resized image or None, error, (width, height) of the decoded source image)."""
    try:
        img = loader(record)
    except BAD_FILE_ERRORS as e:  # a bad file must not stop the run: it is reported (or fatal under --strict)
        return None, f"{type(e).__name__}: {e}".replace("\n", " "), (0, 0)
    return resize_square(img, size), "", grey_size(img)  # an error here is ours: a traceback


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


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group: only the parent handles it (it terminates the
    # pool and removes the staging folder), instead of every worker printing a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Pool.terminate() ends workers with SIGTERM: the kernel's default action, not a Python
    # handler inherited from the parent (the CLI's), which a worker blocked on the task queue
    # was seen not to run, leaving terminate() waiting on it for ever.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _decoded(fn, items: list[Record], workers: int, parallel: bool) -> Iterator[Iterator]:
    """Yield ``fn``'s results in input order, from a process pool where it pays off.

    A context manager rather than a generator so that an error in the consumer terminates
    the pool at once, not whenever a suspended generator happens to be collected.
    """
    if workers <= 1 or not parallel or len(items) < 2 * workers:
        yield map(fn, items)
        return
    # Small chunks: the last, uneven chunk idles a core only briefly, and results arrive in
    # order soon after decoding; a chunk's round trip costs ~0.1 ms against ~30 ms per image.
    chunk = max(1, min(8, len(items) // (workers * 8)))
    with mp.get_context().Pool(workers, initializer=_ignore_sigint) as pool:
        yield pool.imap(fn, items, chunksize=chunk)


def default_workers() -> int:
    """The cores this process may run on (respects taskset/cpuset affinity where known)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class _Tally:
    """What the write loop saw: labels and patients per split, and the images that failed."""

    labels: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    pixels: dict[bytes, tuple[str, str]] = field(default_factory=dict)  # image hash -> (split, image id)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (dropped image id, its earlier twin)
    patients: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in SPLITS})
    failed: list[tuple[str, str, str, str]] = field(default_factory=list)


def _plan(cfg: PrepareConfig) -> tuple[SourceScan, list[Record]]:
    """Scan the source and split it by patient; records in output order (split, class, id)."""
    scan = _scan(cfg)
    for name in scan.classes:  # before anything is written: names become folders and table cells
        if problem := class_name_problem(name):
            raise UserError(f"--source {cfg.source}: {problem}; rename that class in the source's labels")
    records = assign_splits(scan.records, cfg.val_fraction, cfg.seed)
    if not records:
        raise UserError(
            f"no single-label images of the chosen classes were found for --source {cfg.source}; "
            "check --data-dir/--npz, --classes and --views"
        )
    if cfg.strict and sum(scan.missing.values()):
        top = ", ".join(f"{c} {k}" for c, k in Counter(scan.missing).most_common(3))
        raise UserError(
            f"{sum(scan.missing.values())} listed images are missing on disk ({top}, ...) and --strict "
            "is set; download them, or drop --strict to skip them"
        )
    require(f"{len(records)} images at {cfg.size} px", cfg.out, len(records) * (cfg.size**2 + 1024))
    class_index = {c: i for i, c in enumerate(scan.classes)}
    split_order = {s: i for i, s in enumerate(SPLITS)}
    records.sort(key=lambda r: (split_order[r.split], class_index[r.label], r.image_id))
    return scan, records


def _seen_in_an_earlier_split(tally: _Tally, img: np.ndarray, rec: Record) -> bool:
    """The same pixels in two splits (an image copied under two names or patients; PneumoniaMNIST
    has such pairs) would evaluate on a training image whatever the patient ids say: the copy in
    the later split (val, test) is dropped and recorded. Records come in split order."""
    import hashlib

    digest = hashlib.sha256(img.tobytes()).digest()
    split, image_id = tally.pixels.setdefault(digest, (rec.split, rec.image_id))
    if split == rec.split:
        return False
    tally.duplicates.append((f"{rec.image_id} ({rec.split})", f"{image_id} ({split})"))
    return True


def _write_images(
    cfg: PrepareConfig, scan: SourceScan, records: list[Record], stage: Path, reporter: Reporter
) -> _Tally:
    """Decode in parallel and stream images, labels and manifest rows into ``stage``."""
    class_index = {c: i for i, c in enumerate(scan.classes)}
    planned = Counter(r.split for r in records)
    fn = functools.partial(_decode, loader=scan.loader, size=cfg.size)
    tally = _Tally()
    with contextlib.ExitStack() as stack:
        streams = {s: _NpyStream(stage / f"images_{s}.npy", planned[s], cfg.size) for s in SPLITS}
        for stream in streams.values():
            stack.callback(stream.f.close)
        manifest = stack.enter_context(open(stage / "manifest.csv", "w", newline=""))
        advance = stack.enter_context(reporter.task(f"prepare {scan.name} -> {cfg.size}px", len(records)))
        results = stack.enter_context(_decoded(fn, records, cfg.workers or default_workers(), scan.parallel))
        writer = csv.DictWriter(manifest, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for rec, (img, err, (width, height)) in zip(records, results, strict=True):
            advance(1)
            if img is None:
                if cfg.strict:
                    raise UserError(
                        f"cannot decode {rec.source_file} ({err}); fix or remove it, "
                        "or drop --strict to skip unreadable images"
                    )
                tally.failed.append((rec.image_id, rec.source_file, rec.label, err))
                continue
            if _seen_in_an_earlier_split(tally, img, rec):
                continue
            row = asdict(rec) | {"class": rec.label, "label": class_index[rec.label]}
            row |= {"index": streams[rec.split].write(img), "orig_width": width, "orig_height": height}
            writer.writerow({k: row[k] for k in MANIFEST_COLUMNS})
            tally.labels[rec.split].append(class_index[rec.label])
            tally.patients[rec.split].add(rec.patient_id)
        for stream in streams.values():
            stream.close()
    if not any(tally.labels.values()):
        raise UserError("every image failed to decode; check the files (open a few with an image viewer)")
    for s in SPLITS:
        np.save(stage / f"labels_{s}.npy", np.asarray(tally.labels[s], dtype=np.int64))
    if tally.failed:
        with open(stage / "failed.csv", "w", newline="") as f:
            csv.writer(f).writerows([("image_id", "source_file", "class", "error"), *tally.failed])
    return tally


def _metadata(cfg: PrepareConfig, scan: SourceScan, tally: _Tally, seconds: float, stage: Path) -> dict:
    """dataset.json: everything a reader needs to trust and reuse the prepared dataset."""
    carved = any(r.split == "train_val" for r in scan.records)
    split_method = scan.split_method
    if carved:
        split_method += f"; val carved from train_val by patient ({cfg.val_fraction:.0%}, seed {cfg.seed})"
    return {
        "tool": TOOL,  # cxraug's by content: what --overwrite checks before it replaces the folder
        "format_version": FORMAT_VERSION,
        "cxraug_version": __version__,
        "source": scan.name,
        "real_data": scan.real_data,
        "note": "" if scan.real_data else scan.notes[0],
        "size": cfg.size,
        "channels": 1,
        "classes": scan.classes,
        "counts": {s: {c: tally.labels[s].count(i) for i, c in enumerate(scan.classes)} for s in SPLITS},
        "patients": {s: len(tally.patients[s]) for s in SPLITS},
        "missing_on_disk": dict(scan.missing),
        "failed_to_decode": dict(Counter(label for _, _, label, _ in tally.failed)),
        "dropped_duplicates": [list(d) for d in tally.duplicates],  # [dropped, its twin in an earlier split]
        "split_method": split_method,
        "notes": scan.notes + _duplicate_note(tally),
        "options": {k: (str(Path(v).resolve()) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "seconds": round(seconds, 2),
        **identity_hashes(stage),  # hashed once here; checked whenever the dataset is opened
    }


def _duplicate_note(tally: _Tally) -> list[str]:
    if not tally.duplicates:
        return []
    dropped, twin = tally.duplicates[0]
    return [
        f"{len(tally.duplicates)} image(s) dropped: the same pixels as an image of an earlier split "
        f"(e.g. {dropped} = {twin}); listed in dataset.json's dropped_duplicates"
    ]


def prepare(cfg: PrepareConfig, reporter: Reporter | None = None) -> PrepareResult:
    """Build the prepared dataset at ``cfg.out``; it appears whole or not at all."""
    cfg.validate()
    out = Path(cfg.out)
    inputs = [Path(p) for p in (cfg.labels, cfg.npz) if p is not None]
    sources = [Path(cfg.data_dir)] if cfg.data_dir is not None else []
    check_output(out, "prepared dataset", "dataset.json", inputs, cfg.overwrite, source_dirs=sources)
    t0 = time.perf_counter()
    scan, records = _plan(cfg)
    with output_lock(out, "prepared dataset"), atomic_dir(out, cfg.overwrite) as stage:
        tally = _write_images(cfg, scan, records, stage, reporter or NullReporter())
        meta = _metadata(cfg, scan, tally, time.perf_counter() - t0, stage)
        # A plain write: the staging folder as a whole is what appears atomically (and this
        # keeps the usual umask permissions, unlike a mkstemp file).
        (stage / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return PrepareResult(out=out, meta=meta, failed=tally.failed)
