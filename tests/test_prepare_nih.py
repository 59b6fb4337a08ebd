"""`prepare --source nih` on the real partial NIH download in ../shared/data (skips without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxraug.classes import NIH_CLASSES
from cxraug.data.prepare import PrepareConfig, assign_splits, prepare
from cxraug.data.prepared import PreparedData, open_prepared
from cxraug.data.sources.nih import scan_nih
from cxraug.errors import UserError

# ../shared/data/README.md: single-label images present, by official split (train_val, test).
PRESENT = {
    "No Finding": (401, 99),
    "Effusion": (40, 25),
    "Infiltration": (38, 26),
    "Atelectasis": (25, 9),
    "Cardiomegaly": (14, 12),
    "Nodule": (19, 0),
    "Pneumothorax": (8, 8),
    "Emphysema": (8, 4),
    "Fibrosis": (8, 4),
    "Pleural_Thickening": (9, 2),
    "Consolidation": (1, 8),
    "Hernia": (1, 7),
    "Mass": (6, 1),
    "Pneumonia": (3, 1),
    "Edema": (0, 1),
}
# Same README: single-label images in the full release.
FULL = {
    "No Finding": 60361, "Infiltration": 9547, "Atelectasis": 4215, "Effusion": 3955, "Nodule": 2705,
    "Pneumothorax": 2194, "Mass": 2139, "Consolidation": 1310, "Pleural_Thickening": 1126,
    "Cardiomegaly": 1093, "Emphysema": 892, "Fibrosis": 727, "Edema": 628, "Pneumonia": 322, "Hernia": 110,
}  # fmt: skip


def _present_single_label(nih_dir: Path) -> pd.DataFrame:
    """Independent of cxraug: the CSV rows with one label whose PNG is on disk."""
    df = pd.read_csv(nih_dir / "Data_Entry_2017_v2020.csv", dtype=str)
    on_disk = {p.name for p in nih_dir.glob("images_*/images/*.png")}
    return df[~df["Finding Labels"].str.contains("|", regex=False) & df["Image Index"].isin(on_disk)]


def test_counts_match_the_data_readme(nih64: Path) -> None:
    meta = open_prepared(nih64).meta
    assert meta["classes"] == list(NIH_CLASSES)
    assert meta["real_data"] is True and meta["source"] == "nih" and meta["size"] == 64
    counts = meta["counts"]
    assert sum(sum(c.values()) for c in counts.values()) == 788
    for cls, (train_val, test) in PRESENT.items():
        assert counts["train"][cls] + counts["val"][cls] == train_val, cls
        assert counts["test"][cls] == test, cls
    assert meta["failed_to_decode"] == {}


def test_missing_images_are_reported_per_class(nih64: Path) -> None:
    missing = open_prepared(nih64).meta["missing_on_disk"]
    expected = {c: FULL[c] - sum(PRESENT[c]) for c in FULL}
    assert missing == expected
    assert sum(missing.values()) == 90_536


def test_patient_splits(nih64: Path, nih_dir: Path) -> None:
    data = open_prepared(nih64)
    manifest = data.manifest()
    per_patient = manifest.groupby("patient_id")["split"].nunique()
    assert (per_patient == 1).all(), "a patient is in two splits"
    official_test = set((nih_dir / "test_list.txt").read_text().split())
    present = _present_single_label(nih_dir)
    expected_test_patients = set(present.loc[present["Image Index"].isin(official_test), "Patient ID"])
    assert data.patients("test") == expected_test_patients
    assert set(manifest.loc[manifest["split"] == "test", "image_id"]) == set(
        present.loc[present["Image Index"].isin(official_test), "Image Index"]
    )
    assert data.meta["patients"] == {s: len(data.patients(s)) for s in ("train", "val", "test")}


def test_arrays_labels_and_manifest_agree(nih64: Path) -> None:
    data = open_prepared(nih64)
    manifest = data.manifest()
    for split in ("train", "val", "test"):
        images, labels = data.images(split), data.labels(split)
        part = manifest[manifest["split"] == split].sort_values("index")
        assert images.dtype == np.uint8 and images.shape == (len(part), 64, 64)
        assert labels.dtype == np.int64
        assert list(part["index"]) == list(range(len(part)))
        assert list(part["label"]) == list(labels)
        assert [data.classes[i] for i in labels] == list(part["class"])


def test_split_rows_follow_the_arrays_whatever_the_csv_order(nih64: Path, tmp_path: Path) -> None:
    """``split_rows`` (the one reader of "a split's rows in stored order") sorts by the index
    column, not by the file's row order, and refuses a manifest that lost a row."""
    data = open_prepared(nih64)
    for name in ("labels_train.npy", "labels_val.npy", "labels_test.npy"):
        (tmp_path / name).write_bytes((nih64 / name).read_bytes())
    data.manifest().sample(frac=1.0, random_state=0).to_csv(tmp_path / "manifest.csv", index=False)
    shuffled = PreparedData(tmp_path, data.meta)
    for split in ("train", "val", "test"):
        rows = shuffled.split_rows(split)
        assert list(rows["index"]) == list(range(len(rows))) and list(rows["label"]) == list(data.labels(split))
        assert rows.equals(data.split_rows(split))
    data.manifest().iloc[1:].to_csv(tmp_path / "manifest.csv", index=False)
    lost = data.manifest().iloc[0]["split"]
    with pytest.raises(UserError, match=f"manifest.csv and labels_{lost}.npy disagree"):
        shuffled.split_rows(lost)


def _row(manifest: pd.DataFrame, image_id: str) -> pd.Series:
    rows = manifest[manifest["image_id"] == image_id]
    assert len(rows) == 1, image_id
    return rows.iloc[0]


@pytest.mark.parametrize(
    ("image_id", "mode", "px"),
    [("00000001_000.png", "L", 1024), ("00000059_001.png", "RGBA", 64), ("00000016_000.png", "L", 256)],
)
def test_files_come_out_as_a_direct_pil_decode_and_resize(nih64: Path, image_id: str, mode: str, px: int) -> None:
    data = open_prepared(nih64)
    row = _row(data.manifest(), image_id)
    with Image.open(row["source_file"]) as im:
        assert (im.mode, im.size) == (mode, (px, px))
        expected = np.asarray(im.convert("L").resize((64, 64), Image.Resampling.LANCZOS))
    assert (row["orig_width"], row["orig_height"]) == (px, px)
    np.testing.assert_array_equal(data.images(row["split"])[row["index"]], expected)


def test_views_filter(nih_dir: Path, tmp_path: Path) -> None:
    present = _present_single_label(nih_dir)
    cfg = PrepareConfig(source="nih", data_dir=nih_dir, out=tmp_path / "pa", views=["pa"], size=32, workers=1)
    result = prepare(cfg)
    manifest = open_prepared(result.out).manifest()
    assert set(manifest["view"]) == {"PA"}
    assert len(manifest) == int((present["View Position"] == "PA").sum())
    with pytest.raises(UserError, match=r"unknown view\(s\) LATERAL.*has: AP, PA"):
        prepare(PrepareConfig(source="nih", data_dir=nih_dir, out=tmp_path / "x", views=["LATERAL"]))
    assert not (tmp_path / "x").exists()


def test_classes_restriction_keeps_fixed_order(nih_dir: Path, tmp_path: Path) -> None:
    cfg = PrepareConfig(
        source="nih", data_dir=nih_dir, out=tmp_path / "c", classes=["hernia", "Effusion"], size=32, workers=1
    )
    meta = prepare(cfg).meta
    assert meta["classes"] == ["Effusion", "Hernia"]
    totals = {c: sum(meta["counts"][s][c] for s in meta["counts"]) for c in meta["classes"]}
    assert totals == {"Effusion": 65, "Hernia": 8}
    assert meta["missing_on_disk"] == {"Effusion": FULL["Effusion"] - 65, "Hernia": FULL["Hernia"] - 8}
    labels = open_prepared(tmp_path / "c").labels("test")
    assert set(labels.tolist()) == {0, 1}


def test_val_carve_is_deterministic_for_a_seed(nih_dir: Path) -> None:
    scan = scan_nih(nih_dir, list(NIH_CLASSES), None, 0.2, 0)

    def val_patients(seed: int) -> set[str]:
        return {r.patient_id for r in assign_splits(scan.records, 0.1, seed) if r.split == "val"}

    assert val_patients(0) == val_patients(0)
    assert val_patients(0) != val_patients(1)
    # The carve moves train_val patients only: the official test split is untouched.
    test = {r.image_id for r in scan.records if r.split == "test"}
    assert {r.image_id for r in assign_splits(scan.records, 0.1, 3) if r.split == "test"} == test
