"""NIH ChestX-ray14, in the layout NIH's download unpacks to.

The metadata CSV, the official patient-wise split lists, and the PNGs wherever the archives
put them (``images_0NN/images/``, ``images/``, or flat). Images listed but absent are counted
per class and skipped, so a partial download works like a full one.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd

from cxraug.classes import NIH_CLASSES
from cxraug.data.imageio import FileLoader
from cxraug.data.records import Record, SourceScan
from cxraug.data.splits import carve_patients
from cxraug.errors import UserError

CSV_NAMES = (
    "Data_Entry_2017_v2020.csv",
    "Data_Entry_2017.csv",
    "Data_Entry_2017_v2020.csv.gz",
    "Data_Entry_2017.csv.gz",
)
REQUIRED_COLUMNS = ("Image Index", "Finding Labels", "Patient ID")


def find_metadata_csv(data_dir: Path) -> Path:
    for name in CSV_NAMES:
        for cand in (data_dir / name, *data_dir.glob(f"*/{name}")):
            if cand.is_file():
                return cand
    raise UserError(
        f"no NIH metadata CSV in {data_dir}: expected one of {', '.join(CSV_NAMES[:2])} "
        "(plain or .gz); download it with the images from NIH's ChestX-ray14 page"
    )


def index_images(data_dir: Path) -> dict[str, Path]:
    """Map file name -> path for every PNG in NIH's possible layouts."""
    found: dict[str, Path] = {}
    patterns = ("images_*/images/*.png", "images/*.png", "*.png", "images_*/*.png")
    for pattern in patterns:
        for p in data_dir.glob(pattern):
            found.setdefault(p.name, p)
    return found


def read_metadata(csv_path: Path) -> pd.DataFrame:
    try:
        # NIH's bracketed headers hold commas, so the header has 11 fields for 11 values;
        # columns are addressed by name and only the plain ones are needed.
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as e:
        raise UserError(f"cannot read {csv_path}: {e}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(
            f"{csv_path.name} lacks column(s) {', '.join(map(repr, missing))} "
            f"(found: {', '.join(df.columns[:8])}); is it NIH's Data_Entry_2017 CSV?"
        )
    return df


def read_split_lists(data_dir: Path) -> tuple[set[str], set[str]] | None:
    files = [data_dir / "train_val_list.txt", data_dir / "test_list.txt"]
    if not all(f.is_file() for f in files):
        return None
    train_val, test = (set(f.read_text(errors="replace").split()) for f in files)  # a stray byte matches no name
    return train_val, test


def _int(value: str) -> int | None:
    """Leading integer of a CSV cell: '58' and the 2017 CSV's '058Y' give 58; blank gives None."""
    m = re.match(r"\s*(\d+)", value or "")
    return int(m.group(1)) if m else None


def _filter_views(df: pd.DataFrame, views: list[str], csv_name: str) -> pd.DataFrame:
    if "View Position" not in df.columns:
        raise UserError(f"--views given but {csv_name} has no 'View Position' column; drop --views")
    known = sorted(set(df["View Position"].str.strip().str.upper()) - {""})
    unknown = [v for v in views if v.strip().upper() not in known]
    if unknown:
        raise UserError(f"unknown view(s) {', '.join(unknown)} in --views; {csv_name} has: {', '.join(known)}")
    return df[df["View Position"].str.strip().str.upper().isin([v.strip().upper() for v in views])]


def scan_nih(
    data_dir: Path, classes: list[str], views: list[str] | None, test_fraction: float, seed: int
) -> SourceScan:
    if not data_dir.is_dir():
        raise UserError(f"data dir {data_dir} does not exist; pass the folder of the NIH download")
    data_dir = data_dir.resolve()  # the manifest records absolute source paths
    csv_path = find_metadata_csv(data_dir)
    df = read_metadata(csv_path)
    if views:
        df = _filter_views(df, views, csv_path.name)
    df = df.assign(**{"Image Index": df["Image Index"].str.strip(), "Finding Labels": df["Finding Labels"].str.strip()})
    # Single-label rows only: "A|B" never equals a class name, so isin() drops them.
    df = df[df["Finding Labels"].isin(classes)]

    images = index_images(data_dir)
    if not images:
        raise UserError(
            f"no PNG images under {data_dir} (looked in images_0NN/images/, images/ and the "
            "folder itself); unpack NIH's images_*.tar.gz archives there"
        )
    lists = read_split_lists(data_dir)
    notes: list[str] = []
    if lists is None:
        split_method = f"random by patient (test {test_fraction:.0%}): NIH split lists absent"
        notes.append("train_val_list.txt/test_list.txt not found: test split drawn by patient")
    else:
        split_method = "NIH official train_val/test lists (patient-wise)"

    on_disk = df["Image Index"].isin(images.keys())
    missing = Counter({str(k): int(v) for k, v in df.loc[~on_disk, "Finding Labels"].value_counts().items()})
    df = df[on_disk]
    records: list[Record] = []
    unlisted = 0
    cols = {c: i for i, c in enumerate(df.columns)}
    for values in df.itertuples(index=False, name=None):
        name, label = values[cols["Image Index"]], values[cols["Finding Labels"]]
        path = images[name]
        if lists is not None:
            if name in lists[1]:
                split = "test"
            elif name in lists[0]:
                split = "train_val"
            else:
                unlisted += 1
                continue
        else:
            split = "train_val"
        records.append(
            Record(
                image_id=name,
                patient_id=values[cols["Patient ID"]].strip(),
                label=label,
                split=split,
                source_file=str(path),
                view=values[cols["View Position"]].strip() if "View Position" in cols else "",
                age=_int(values[cols["Patient Age"]]) if "Patient Age" in cols else None,
                sex=values[cols["Patient Gender"]].strip() if "Patient Gender" in cols else "",
            )
        )
    if unlisted:
        notes.append(f"{unlisted} images in neither split list were skipped")
    if lists is None:
        records = carve_patients(records, test_fraction, seed + 1, "test", "train_val")
    return SourceScan(
        name="nih",
        classes=[c for c in NIH_CLASSES if c in classes],
        records=records,
        loader=FileLoader(),
        split_method=split_method,
        missing=dict(missing),
        notes=notes,
    )
