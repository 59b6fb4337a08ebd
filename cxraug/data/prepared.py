"""Reading a prepared dataset's metadata (no torch needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxraug.classes import class_name_problem
from cxraug.data.identity import identity, identity_fingerprint, verify_content
from cxraug.data.records import SPLITS
from cxraug.errors import UserError
from cxraug.fsutil import read_json, short
from cxraug.lock import hold_read_lock

SUPPORTED_FORMATS = (2,)  # 2: + content hashes of the arrays and manifest (format 1 had none)


@dataclass(frozen=True)
class PreparedData:
    root: Path
    meta: dict

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def identity(self) -> dict:
        """Format version, size, channels and content hashes (cxraug.data.identity)."""
        return identity(self.meta)

    def counts(self, split: str) -> dict[str, int]:
        return dict(self.meta["counts"][split])

    def images(self, split: str) -> np.ndarray:
        """N x S x S uint8, memory-mapped (nothing is read until used)."""
        return np.load(self.root / f"images_{split}.npy", mmap_mode="r")

    def labels(self, split: str) -> np.ndarray:
        return np.load(self.root / f"labels_{split}.npy")

    def manifest(self):
        import pandas as pd

        return pd.read_csv(self.root / "manifest.csv", dtype={"patient_id": str, "image_id": str})

    def split_rows(self, split: str):
        """One split's manifest rows in stored order: row i (pandas index reset) describes
        images_{split}.npy[i] and labels_{split}.npy[i], the manifest's ``index`` column."""
        df = self.manifest()
        rows = df[df["split"] == split].sort_values("index").reset_index(drop=True)
        if len(rows) != len(self.labels(split)):
            raise UserError(f"{self.root}: manifest.csv and labels_{split}.npy disagree; prepare the dataset again")
        return rows

    def patients(self, split: str) -> set[str]:
        df = self.manifest()
        return set(df.loc[df["split"] == split, "patient_id"])


def open_prepared(root: Path | str) -> PreparedData:
    """A prepared dataset, its structure checked (``check_structure``): every command opens
    its dataset here, before it creates any output."""
    root = Path(root)
    meta_path = root / "dataset.json"
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file, not a prepared dataset folder; pass the folder `cxraug prepare` wrote")
    if not root.is_dir():
        raise UserError(f"prepared dataset {root} does not exist; make it with `cxraug prepare`")
    if not meta_path.is_file():
        raise UserError(f"{root} is not a prepared dataset (no dataset.json); make it with `cxraug prepare`")
    hold_read_lock(root, "prepared dataset")  # before reading: prepare --overwrite waits for this command
    meta = read_json(meta_path)
    if meta.get("format_version") not in SUPPORTED_FORMATS:
        raise UserError(
            f"{root} has format version {meta.get('format_version')}, this cxraug reads "
            f"{', '.join(map(str, SUPPORTED_FORMATS))}; prepare it again with this version "
            "(`cxraug prepare ... --overwrite`)"
        )
    data = PreparedData(root=root, meta=meta)
    check_structure(data)
    verify_content(root, meta)  # an edit since prepare is refused here, not scored as this dataset
    check_class_names(root, data.classes)  # the names beside the numbers are the hashed manifest's
    return data


def dataset_files(root: Path) -> list[Path]:
    """What a command reads of a prepared dataset: no output may be, hold or lie inside these
    (the folder itself may hold outputs, e.g. its feature_cache)."""
    names = ["dataset.json", "manifest.csv", *(f"{k}_{s}.npy" for s in SPLITS for k in ("images", "labels"))]
    return [Path(root) / n for n in names]


def _damaged(root: Path, what: str) -> UserError:
    return UserError(f"prepared dataset {root} is damaged: {what}; prepare it again (`cxraug prepare ... --overwrite`)")


# dataset.json's descriptive fields that readers print: (type, the type in words, always written by prepare)
DESCRIPTION_FIELDS: dict[str, tuple[type, str, bool]] = {
    "source": (str, "text", True),
    "split_method": (str, "text", True),
    "note": (str, "text", False),
    "real_data": (bool, "true or false", False),
    "patients": (dict, "a mapping of splits", False),
    "notes": (list, "a list", False),
}


def check_structure(data: PreparedData) -> None:
    """The files and metadata every reader relies on, whole and consistent: classes, size and
    counts in dataset.json, the manifest, and per split an image array (N x size x size uint8,
    not truncated) and as many labels, each a class index, that agree with the counts.
    Reads array headers and labels only (milliseconds). A check of the pixels themselves
    (a content hash) belongs here too."""
    root, meta = data.root, data.meta
    classes, size, counts = meta.get("classes"), meta.get("size"), meta.get("counts")
    if not isinstance(classes, list) or not classes:
        raise _damaged(root, "dataset.json lists no classes")
    for name in classes:
        if problem := class_name_problem(name):
            raise _damaged(root, f"dataset.json has {problem}")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 4096:
        raise _damaged(root, f"dataset.json has no usable size ({size!r})")
    if not isinstance(counts, dict) or any(not isinstance(counts.get(s), dict) for s in SPLITS):
        raise _damaged(root, "dataset.json has no counts per split")
    for key, (kind, words, required) in DESCRIPTION_FIELDS.items():  # what readers print beside the numbers
        if (key in meta or required) and not isinstance(meta.get(key), kind):
            raise _damaged(root, f"dataset.json's {key} is not {words}")
    if not (root / "manifest.csv").is_file():
        raise _damaged(root, "manifest.csv is missing")
    for split in SPLITS:
        if extra := sorted(set(counts[split]) - set(classes), key=str):
            raise _damaged(
                root, f"dataset.json's {split} counts name {short(extra[0], 40)!r}, which is not in its classes"
            )
    for split in SPLITS:
        images, labels = _array(root, f"images_{split}.npy"), _array(root, f"labels_{split}.npy")
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (size, size):
            raise _damaged(root, f"images_{split}.npy is {images.dtype} {images.shape}, not N x {size} x {size} uint8")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise _damaged(root, f"labels_{split}.npy is not a list of class indices")
        if len(labels) != len(images):
            raise _damaged(root, f"{split} has {len(images)} images but {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise _damaged(root, f"labels_{split}.npy holds a label outside 0..{len(classes) - 1}")
        found = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
        said = counts[split]
        if any(
            not isinstance(said.get(c, 0), int) or said.get(c, 0) != int(k) for c, k in zip(classes, found, strict=True)
        ):
            raise _damaged(root, f"dataset.json's {split} counts disagree with labels_{split}.npy")


def check_class_names(root: Path, classes: list[str]) -> None:
    """dataset.json's class names, in order, are the ones manifest.csv (content-hashed, part of
    the fingerprint) gives each label: a swapped or renamed class in dataset.json would print
    one class's numbers under another's name."""
    import pandas as pd

    try:
        df = pd.read_csv(root / "manifest.csv", usecols=["class", "label"], dtype={"class": str},
                         keep_default_na=False, na_filter=False)  # fmt: skip
        pairs = df.drop_duplicates().itertuples(index=False)
        named = sorted((int(label), str(name)) for name, label in pairs)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise _damaged(root, f"manifest.csv is unreadable ({type(e).__name__})") from None
    for label, name in named:
        if not 0 <= label < len(classes):
            raise _damaged(root, f"manifest.csv holds label {label}, outside 0..{len(classes) - 1}")
        if classes[label] != name:
            raise UserError(
                f"{root}/dataset.json names class {label} {short(classes[label], 40)!r} but manifest.csv "
                f"(hashed at prepare) names it {short(name, 40)!r}: dataset.json was edited; "
                "prepare the dataset again (`cxraug prepare ... --overwrite`)"
            )


def _array(root: Path, name: str) -> np.ndarray:
    """An .npy file memory-mapped (a truncated one does not map), or a one-line error."""
    path = root / name
    if not path.is_file():
        raise _damaged(root, f"{name} is missing")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise _damaged(root, f"{name} is unreadable or truncated ({type(e).__name__})") from None


def summary_rows(meta: dict) -> list[dict]:
    """Per class: images per split, total, share of the total."""
    total = sum(sum(meta["counts"][s].values()) for s in SPLITS)
    rows = []
    for c in meta["classes"]:
        per = {s: int(meta["counts"][s].get(c, 0)) for s in SPLITS}
        n = sum(per.values())
        rows.append({"class": c, **per, "total": n, "share": n / total if total else 0.0})
    return rows


def imbalance_ratio(meta: dict, split: str = "train") -> float | None:
    """Largest over smallest class among the classes present in a split (None if none is).

    Absent classes are left out (a ratio over zero says nothing); ``absent_classes`` names them.
    """
    counts = [int(v) for v in meta["counts"][split].values() if int(v) > 0]
    return max(counts) / min(counts) if counts else None


def absent_classes(meta: dict, split: str) -> list[str]:
    return [c for c in meta["classes"] if int(meta["counts"][split].get(c, 0)) == 0]


def check_trained_on(data: PreparedData, trained: dict[str, Any], anyway: str) -> None:
    """Refuse ``data`` unless each generator in ``trained`` (its label -> the data record its run
    wrote: ``fingerprint`` and ``identity``) was trained on it; the line names what differs and
    ends with ``anyway`` (how to use it anyway). Compare and score check their runs here."""
    from cxraug.data.identity import describe_difference

    fp = fingerprint(data)
    other = [label for label, info in trained.items() if (info or {}).get("fingerprint") != fp]
    if other:  # also when the run's own data folder was prepared again since
        what = describe_difference((trained[other[0]] or {}).get("identity"), data.identity)
        raise UserError(f"{data.root} is not the dataset {', '.join(other)} was trained on ({what}); {anyway}")


def fingerprint(data: PreparedData) -> str:
    """The dataset's identity as one hash: format version, size, channels, and the content of
    its arrays and manifest (images, labels, patients and splits). Every cache and resume key
    builds on it."""
    return identity_fingerprint(data.meta)
