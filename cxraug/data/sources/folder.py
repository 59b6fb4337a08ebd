"""Any other chest X-ray collection: a folder of images and a labels CSV.

The CSV names each image (column ``file``/``path``/``filename``/``image``), its class
(``label``/``class``), and optionally its patient (``patient``/``patient_id``) and split
(``split`` with values train/val/test). Without patient ids each image is its own patient;
without a split column the test and validation patients are drawn by patient.
"""

from __future__ import annotations

import errno
from collections import Counter
from pathlib import Path

import pandas as pd

from cxraug.classes import NIH_CLASSES
from cxraug.data.imageio import FileLoader
from cxraug.data.records import Record, SourceScan
from cxraug.data.splits import carve_patients
from cxraug.errors import UserError
from cxraug.fsutil import short

FILE_COLUMNS = ("file", "path", "filename", "image", "Image Index")
LABEL_COLUMNS = ("label", "class", "Finding Labels")
PATIENT_COLUMNS = ("patient", "patient_id", "Patient ID")


def _pick(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in df.columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


def _refuse_repeated_files(records: list[Record], csv_name: str) -> None:
    """A file listed twice (e.g. under two patient ids) could land in two splits: refused."""
    seen: dict[str, Record] = {}
    for r in records:
        key = str(Path(r.source_file).resolve())
        if key in seen:
            first = seen[key]
            raise UserError(
                f"{csv_name} lists {r.image_id!r} more than once (patients {first.patient_id!r} and "
                f"{r.patient_id!r}); list each image once, under its one patient"
            )
        seen[key] = r


def _read_labels(labels_csv: Path) -> tuple[pd.DataFrame, str, str]:
    """The labels CSV as strings, with the names of its file and label columns."""
    try:
        df = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise UserError(f"cannot read {labels_csv}: {e}") from None
    fcol, lcol = _pick(df, FILE_COLUMNS), _pick(df, LABEL_COLUMNS)
    if fcol is None or lcol is None:
        need = "file" if fcol is None else "label"
        raise UserError(
            f"{labels_csv.name} has no {need} column (found: {', '.join(df.columns)}); "
            f"name it one of: {', '.join(FILE_COLUMNS if fcol is None else LABEL_COLUMNS)}"
        )
    return df, fcol, lcol


def scan_folder(
    data_dir: Path, labels_csv: Path | None, classes: list[str] | None, test_fraction: float, seed: int
) -> SourceScan:
    if not data_dir.is_dir():
        raise UserError(f"data dir {data_dir} does not exist; pass the folder the labels CSV's file paths start from")
    if labels_csv is None:
        raise UserError("--source folder needs --labels CSV (columns: file, label[, patient, split])")
    if not labels_csv.is_file():
        raise UserError(f"labels CSV {labels_csv} does not exist; pass --labels with its path")
    df, fcol, lcol = _read_labels(labels_csv)
    pcol, scol = _pick(df, PATIENT_COLUMNS), _pick(df, ("split",))
    data_dir = data_dir.resolve()  # the manifest records absolute source paths
    df[lcol] = df[lcol].str.strip()
    multi, unlabelled = df[lcol].str.contains("|", regex=False), df[lcol] == ""
    df = df[~multi & ~unlabelled]
    present = sorted(set(df[lcol]))
    order = [c for c in NIH_CLASSES if c in present] + [c for c in present if c not in NIH_CLASSES]
    if classes is not None:
        order = [c for c in order if c in classes]
    records: list[Record] = []
    missing: Counter[str] = Counter()
    base = data_dir.resolve()
    for row in df.to_dict("records"):
        label = row[lcol]
        if label not in order:
            continue
        path = data_dir / row[fcol]
        try:
            if "\x00" in row[fcol] or not path.resolve().is_relative_to(base):  # nothing is read outside --data-dir
                raise UserError(
                    f"{labels_csv.name} lists {short(row[fcol], 80)!r}, which is outside --data-dir {data_dir}"
                )
            on_disk = path.is_file()
        except OSError as e:  # a name longer than the file system takes: no such file can exist
            if e.errno != errno.ENAMETOOLONG:
                raise
            on_disk = False
        if not on_disk:
            missing[label] += 1
            continue
        split = row[scol].strip().lower() if scol else "train_val"
        if split not in ("train", "val", "test", "train_val"):
            raise UserError(
                f"{labels_csv.name}: split {short(split, 60)!r} is not train, val or test; fix its split column"
            )
        records.append(
            Record(
                image_id=str(row[fcol]),
                patient_id=(str(row[pcol]).strip() if pcol else "") or str(row[fcol]),
                label=label,
                split=split,
                source_file=str(path),
            )
        )
    _refuse_repeated_files(records, labels_csv.name)
    if scol:
        method = "the labels CSV's split column"
    else:
        records = carve_patients(records, test_fraction, seed + 1, "test", "train_val")
        method = f"random by patient (test {test_fraction:.0%})"
    notes = [] if pcol else ["no patient column: each image counts as its own patient"]
    if multi.any():
        notes.append(f"{int(multi.sum())} multi-label rows ('A|B') dropped (single-label images only)")
    if unlabelled.any():
        notes.append(f"{int(unlabelled.sum())} rows without a label dropped")
    return SourceScan(
        name="folder",
        classes=order,
        records=records,
        loader=FileLoader(),
        split_method=method,
        missing=dict(missing),
        notes=notes,
    )
