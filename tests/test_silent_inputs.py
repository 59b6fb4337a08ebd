"""Hostile inputs that used to pass silently with exit 0 and a wrong number (issue 21, item 9):
class names equal up to case, a file listed under two patients, an image copied into two
splits, an edited synthetic manifest, MedMNIST labels that are not 0/1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_benchmark_support import make_synthetic_set

from cxraug.classes import resolve_class, resolve_classes
from cxraug.cli import main
from cxraug.data.prepare import PrepareConfig, prepare
from cxraug.errors import UserError
from cxraug.synthset import MANIFEST, open_synthetic


def test_an_exact_class_name_wins_and_an_ambiguous_one_is_refused() -> None:
    assert resolve_class("Mass", ["mass", "Mass"]) == "Mass"
    assert resolve_class("mass", ["mass", "Mass"]) == "mass"
    assert resolve_class("Pleural_Thickening", ["Pleural Thickening", "Pleural_Thickening"]) == "Pleural_Thickening"
    assert resolve_classes("Pleural Thickening", ["Pleural Thickening", "Pleural_Thickening"]) == ["Pleural Thickening"]
    assert resolve_class("pleural thickening", ["No Finding", "Pleural_Thickening"]) == "Pleural_Thickening"
    with pytest.raises(ValueError, match=r"'MASS' is ambiguous: it matches 'mass' and 'Mass'"):
        resolve_class("MASS", ["mass", "Mass"])


def _folder(root: Path, rows: list[str]) -> Path:
    """Random 40 px PNGs for the files of a labels CSV (header first)."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in sorted({r.split(",")[0] for r in rows[1:]}):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(root / name)
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_a_file_listed_under_two_patients_is_refused(tmp_path: Path, capsys) -> None:
    rows = ["file,label,patient", *(f"f{i}.png,{'Mass' if i % 2 else 'Effusion'},p{i}" for i in range(20))]
    src = _folder(tmp_path / "src", [*rows, "f3.png,Mass,p99"])
    argv = ["prepare", "--source", "folder", "--data-dir", str(src), "--labels", str(src / "labels.csv"),
            "--out", str(tmp_path / "out"), "--size", "32", "--workers", "1"]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "'f3.png' more than once (patients 'p3' and 'p99')" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_the_same_image_in_two_splits_is_dropped_from_the_later_one(tmp_path: Path) -> None:
    rows = ["file,label,patient,split", "a.png,Mass,p1,train", "b.png,Mass,p2,train", "c.png,Mass,p3,test",
            "d.png,Effusion,p4,train", "e.png,Effusion,p5,test"]  # fmt: skip
    src = _folder(tmp_path / "src", rows)
    Image.open(src / "a.png").save(src / "c.png")  # the same X-ray under another name and patient
    meta = prepare(PrepareConfig(source="folder", data_dir=src, labels=src / "labels.csv", out=tmp_path / "o",
                                 size=32, workers=1)).meta  # fmt: skip
    assert meta["dropped_duplicates"] == [["c.png (test)", "a.png (train)"]]
    assert meta["counts"]["test"] == {"Effusion": 1, "Mass": 0} and "1 image(s) dropped" in meta["notes"][-1]


@pytest.mark.parametrize(("value", "shown"), [(np.nan, "nan"), (0.6, "0.6"), (2, "2.0")])
def test_medmnist_labels_that_are_not_0_or_1_are_refused(tmp_path: Path, capsys, value, shown) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.array([[0], [1], [0], [1], [0], [1]], dtype=np.float64)
    arrays["train_labels"][3, 0] = value
    np.savez(tmp_path / "pneumoniamnist.npz", **arrays)
    with pytest.raises(SystemExit) as e:
        main(["prepare", "--source", "medmnist", "--npz", str(tmp_path / "pneumoniamnist.npz"),
              "--out", str(tmp_path / "o"), "--size", "32", "--workers", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"train_labels row 3 is [{shown}]" in err and "0 or 1" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def _edit_manifest(root: Path, edit) -> None:
    df = pd.read_csv(root / MANIFEST, dtype=str)
    edit(df).to_csv(root / MANIFEST, index=False)


def test_an_edited_synthetic_manifest_is_refused(phantom32: Path, tmp_path: Path) -> None:
    syn = make_synthetic_set(tmp_path / "syn", phantom32, {"Hernia": 4, "Mass": 4})
    assert len(open_synthetic(syn).manifest()) == 8
    # The Hernia rows repeated (reported as "Hernia +1020" before): refused.
    _edit_manifest(syn, lambda df: pd.concat([df] + [df[df["class"] == "Hernia"]] * 5))
    with pytest.raises(UserError, match="more than once"):
        open_synthetic(syn).manifest()
    # A Hernia image relabelled as Mass (class and label consistent): refused.
    syn2 = make_synthetic_set(tmp_path / "syn2", phantom32, {"Hernia": 4, "Mass": 4})
    mass = str(open_synthetic(syn2).classes.index("Mass"))

    def relabel(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[0, ["class", "label"]] = ["Mass", mass]
        return df

    _edit_manifest(syn2, relabel)
    with pytest.raises(UserError, match="is listed as class 'Mass'"):
        open_synthetic(syn2).manifest()
