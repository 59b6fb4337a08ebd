"""The synthetic-set format written by ``cxraug synth`` and read by score and benchmark.

  SYNTH_DIR/images/<class>/<class>_<i:06d>.png    8-bit grey PNGs
  SYNTH_DIR/manifest.csv   file (relative), class, label, seed, run, step, plugin, checksum
  SYNTH_DIR/provenance.json  run, plugin, step, classes (same order as the training data),
                           size, data {path, name, fingerprint, splits, real_data}, seed,
                           n_per_class, sample options, created, complete

``label`` indexes ``classes``, which is the class list of the prepared dataset the generator
was trained on, so a benchmark on that dataset reads labels without any mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxraug.errors import UserError
from cxraug.fsutil import read_json, short
from cxraug.lock import hold_read_lock

MANIFEST = "manifest.csv"
PROVENANCE = "provenance.json"
MANIFEST_COLUMNS = ("file", "class", "label", "seed", "run", "step", "plugin", "checksum")


@dataclass(frozen=True)
class SyntheticSet:
    root: Path
    provenance: dict

    @property
    def classes(self) -> list[str]:
        return list(self.provenance["classes"])

    @property
    def size(self) -> int:
        return int(self.provenance["size"])

    def manifest(self):
        """manifest.csv, checked: an edited one is a one-line error, never a read outside the set."""
        import pandas as pd

        path = self.root / MANIFEST
        try:
            df = pd.read_csv(path, dtype={"file": str, "class": str, "label": str, "checksum": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
            raise UserError(f"{path} is not a readable manifest ({type(e).__name__}); make the set again") from None
        missing = [c for c in ("file", "class", "label", "checksum") if c not in df.columns]
        if missing:
            raise UserError(f"{path} lacks the column(s) {', '.join(missing)}; was it edited?")
        df[["file", "class", "label", "checksum"]] = df[["file", "class", "label", "checksum"]].fillna("")
        classes = self.classes
        for file, cls, label in zip(df["file"], df["class"], df["label"], strict=True):
            if not _inside(self.root, file):
                raise UserError(f"{path} lists {short(file, 60)!r}, which is not a file inside the set; was it edited?")
            if not label.isdigit() or int(label) >= len(classes) or classes[int(label)] != cls:
                raise UserError(
                    f"{path}: {short(file, 60)!r} has label {short(label, 60)!r} and class {short(cls, 60)!r}, which disagree"
                )
        df["label"] = df["label"].astype(np.int64)
        self._check_against_provenance(df, path)
        return df

    def _check_against_provenance(self, df, path: Path) -> None:
        """Rows repeated, moved to another class, or more than synth made: refused (a manifest
        edited so would add images the generator never made to a benchmark arm)."""
        repeated = df["file"][df["file"].duplicated()]
        if len(repeated):
            raise UserError(f"{path} lists {repeated.iloc[0]!r} more than once; was it edited? make the set again")
        for file, cls in zip(df["file"], df["class"], strict=True):
            if Path(file).parts[:2] != ("images", cls):
                raise UserError(
                    f"{path}: {short(file, 60)!r} is listed as class {short(cls, 60)!r}; was it edited? make the set again"
                )
        counts = df["class"].value_counts().to_dict()
        n = self.provenance.get("n_per_class")
        requested = self.provenance.get("requested")
        if isinstance(requested, list) and isinstance(n, int):  # what synth wrote: n of each requested class
            wrong = {
                c: counts.get(c, 0) for c in {*requested, *counts} if counts.get(c, 0) != (n if c in requested else 0)
            }
        else:
            wrong = {c: k for c, k in counts.items() if isinstance(n, int) and k > n}
        if wrong:
            c, k = sorted(wrong.items())[0]
            raise UserError(
                f"{path} lists {k} images of {c}, its provenance says {n if c in (requested or counts) else 0}; "
                "was it edited? make the set again"
            )

    def load(
        self, classes: list[str] | None = None, limit_per_class: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """uint8 N x S x S images and int64 labels, optionally only some classes / the first k.
        Each image must match its manifest checksum and the set's size."""
        import hashlib
        import io

        from PIL import Image

        from cxraug.data.imageio import BAD_FILE_ERRORS

        df = self.manifest()
        if classes is not None:
            df = df[df["class"].isin(classes)]
        if limit_per_class is not None:
            df = df.groupby("class", sort=False).head(limit_per_class)
        imgs = np.empty((len(df), self.size, self.size), dtype=np.uint8)
        for i, (f, checksum) in enumerate(zip(df["file"], df["checksum"], strict=True)):
            path = self.root / f
            try:
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != checksum:
                    raise UserError(f"{path} differs from its manifest checksum; make the synthetic set again")
                with Image.open(io.BytesIO(data)) as im:
                    arr = np.asarray(im.convert("L"))
            except BAD_FILE_ERRORS as e:
                raise UserError(f"{path}: cannot read it ({type(e).__name__}: {e})") from None
            if arr.shape != (self.size, self.size):
                raise UserError(f"{path} is {arr.shape[1]}x{arr.shape[0]}, not {self.size}px as the provenance says")
            imgs[i] = arr
        return imgs, df["label"].to_numpy(dtype=np.int64)


def set_files(root: Path) -> list[Path]:
    """What a command reads of a synthetic set (its scores/ folder may hold outputs)."""
    return [Path(root) / n for n in (PROVENANCE, MANIFEST, "images")]


def _inside(root: Path, name: str) -> bool:
    """A relative path that stays inside ``root`` (no absolute path, no ``..``, no link out)."""
    rel = Path(name)
    if not name or rel.is_absolute() or ".." in rel.parts or "\x00" in name:
        return False
    base = root.resolve()
    return (base / rel).resolve().is_relative_to(base)


def is_finished(root: Path, prov: object = None) -> bool:
    """Whether ``root`` holds a synthetic set that synth marked complete, its manifest in place
    (``prov``: its provenance.json, when already read)."""
    if prov is None:
        path = root / PROVENANCE
        prov = read_json(path) if path.is_file() else None
    return isinstance(prov, dict) and bool(prov.get("complete", False)) and (root / MANIFEST).is_file()


def open_synthetic(root: Path | str) -> SyntheticSet:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"synthetic set {root} does not exist; make it with `cxraug synth`")
    if not (root / PROVENANCE).is_file():
        raise UserError(f"{root} is not a synthetic set (no {PROVENANCE}); make it with `cxraug synth`")
    hold_read_lock(root, "synthetic set")  # synth --overwrite waits for the command reading it
    prov = read_json(root / PROVENANCE)
    ok = isinstance(prov, dict) and isinstance(prov.get("classes"), list) and isinstance(prov.get("size"), int)
    if not ok or not all(isinstance(c, str) for c in prov["classes"]):
        raise UserError(f"{root / PROVENANCE} lacks its classes or size; was it edited? make the set again")
    if not is_finished(root, prov):
        raise UserError(f"synthetic set {root} is incomplete; run the same `cxraug synth` again to finish it")
    return SyntheticSet(root=root, provenance=prov)
