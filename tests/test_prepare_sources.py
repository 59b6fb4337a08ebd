"""The other sources of `prepare`: MedMNIST npz, a folder with a labels CSV, the phantom set,
and a small NIH-layout folder (phantom pixels) for what the real download cannot show."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxraug.classes import NIH_CLASSES, NIH_SINGLE_LABEL_COUNTS
from cxraug.data.prepare import PrepareConfig, prepare
from cxraug.data.prepared import open_prepared
from cxraug.data.sources.medmnist import CHESTMNIST_COLUMNS
from cxraug.data.sources.phantom import PHANTOM_NOTE, class_counts
from cxraug.errors import UserError

# ../shared/data/README.md: (normal, pneumonia) per split.
MEDMNIST = {
    "pneumoniamnist_partial.npz": {"train": (388, 3494), "val": (135, 389), "test": (234, 390)},
    "pneumoniamnist_balanced_subset.npz": {"train": (1214, 1214), "val": (135, 135), "test": (234, 234)},
}


@pytest.mark.parametrize("name", sorted(MEDMNIST))
def test_medmnist_npz_keeps_its_splits_and_sizes(medmnist_dir: Path, tmp_path: Path, name: str) -> None:
    npz = medmnist_dir / name
    meta = prepare(PrepareConfig(source="medmnist", npz=npz, out=tmp_path / "m", size=32)).meta
    assert meta["source"] == "medmnist:pneumoniamnist"
    assert meta["classes"] == ["No Finding", "Pneumonia"]
    data = open_prepared(tmp_path / "m")
    with np.load(npz) as raw:
        # Images whose pixels repeat one of an earlier split are dropped from the later split.
        dropped = {split: [] for split in MEDMNIST[name]}
        for gone, twin in meta["dropped_duplicates"]:
            g_split, g_row = gone.split(" (")[1][:-1], int(gone.split(" ")[0].rsplit("-", 1)[1])
            t_split, t_row = twin.split(" (")[1][:-1], int(twin.split(" ")[0].rsplit("-", 1)[1])
            assert t_split != g_split and np.array_equal(
                raw[f"{g_split}_images"][g_row], raw[f"{t_split}_images"][t_row]
            )
            dropped[g_split].append(g_row)
        for split, (normal, pneumonia) in MEDMNIST[name].items():
            kept = np.setdiff1d(np.arange(len(raw[f"{split}_images"])), dropped[split])
            gone = raw[f"{split}_labels"][dropped[split], 0] if dropped[split] else np.zeros(0, int)
            assert meta["counts"][split] == {
                "No Finding": normal - int((gone == 0).sum()),
                "Pneumonia": pneumonia - int((gone == 1).sum()),
            }
            assert data.images(split).shape == (len(kept), 32, 32)
            np.testing.assert_array_equal(
                data.labels(split)[np.argsort(_npz_index(data, split))], raw[f"{split}_labels"][kept, 0]
            )
        # 28 px -> 32 px with the same antialiased resize as any other image.
        first = data.manifest().query("split == 'train' and index == 0").iloc[0]
        src = raw["train_images"][int(first["image_id"].rsplit("-", 1)[1])]
    expected = np.asarray(Image.fromarray(src).resize((32, 32), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(data.images("train")[0], expected)


def test_builtin_sample_is_real_pneumoniamnist_with_its_licence(tmp_path: Path) -> None:
    """`--source sample` needs no download: the packaged subset, MedMNIST's splits, and its
    licence and citation beside the file (package data, so `pip install .` ships them)."""
    from cxraug.data.sources.sample import sample_path

    meta = prepare(PrepareConfig(source="sample", out=tmp_path / "s", size=32)).meta
    assert meta["source"] == "sample:pneumoniamnist" and meta["real_data"]
    assert meta["counts"] == {
        "train": {"No Finding": 600, "Pneumonia": 600},
        "val": {"No Finding": 135, "Pneumonia": 135},
        "test": {"No Finding": 234, "Pneumonia": 234},
    }
    assert any("CC BY 4.0" in n for n in meta["notes"])
    folder = sample_path().parent
    assert sample_path().stat().st_size < 3_000_000  # a few MB at most
    assert "CC BY 4.0" in (folder / "LICENSE.txt").read_text()
    assert "Kermany" in (folder / "README.md").read_text()
    with np.load(sample_path()) as raw:  # no training image is also a val or test image
        held_out = {x.tobytes() for s in ("val", "test") for x in raw[f"{s}_images"]}
        train = [x.tobytes() for x in raw["train_images"]]
    assert len(set(train)) == len(train) and not held_out & set(train)


def _npz_index(data, split: str) -> np.ndarray:
    """Row of each prepared image in the npz array (from its image id, e.g. ...-train-000042)."""
    return data.split_rows(split)["image_id"].str.rsplit("-", n=1).str[1].astype(int).to_numpy()


def _chestmnist(path: Path) -> dict[str, list[str | None]]:
    """A ChestMNIST-format npz: 14 label columns; returns the class each row should become."""
    rng = np.random.default_rng(0)
    truth: dict[str, list[str | None]] = {}
    arrays = {}
    for split, n in (("train", 40), ("val", 10), ("test", 12)):
        labels = np.zeros((n, 14), dtype=np.uint8)
        cls: list[str | None] = []
        for i in range(n):
            kind = i % 4
            if kind == 0:  # all zero
                cls.append("No Finding")
            elif kind == 3:  # multi-label: dropped
                labels[i, [0, 13]] = 1
                cls.append(None)
            else:
                col = (i * 5) % 14
                labels[i, col] = 1
                cls.append(CHESTMNIST_COLUMNS[col])
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = labels
        truth[split] = cls
    np.savez_compressed(path, **arrays)
    return truth


def test_chestmnist_format(tmp_path: Path) -> None:
    truth = _chestmnist(tmp_path / "chestmnist.npz")
    result = prepare(PrepareConfig(source="medmnist", npz=tmp_path / "chestmnist.npz", out=tmp_path / "c", size=32))
    meta = result.meta
    assert meta["source"] == "medmnist:chestmnist"
    assert meta["classes"] == list(NIH_CLASSES)  # No Finding + the 14, cxraug's order
    manifest = open_prepared(result.out).manifest()
    for split, classes in truth.items():
        expected = {f"chestmnist-{split}-{i:06d}": c for i, c in enumerate(classes) if c is not None}
        got = dict(zip(*manifest.query("split == @split")[["image_id", "class"]].to_numpy().T, strict=True))
        assert got == expected
    dropped = sum(c is None for cs in truth.values() for c in cs)
    assert f"{dropped} multi-label images dropped" in " ".join(meta["notes"])
    assert "carved" not in meta["split_method"]  # MedMNIST's own splits are kept as they are


def test_npz_with_the_wrong_flag(tmp_path: Path) -> None:
    _chestmnist(tmp_path / "x.npz")
    with pytest.raises(UserError, match=r"14 label column.*pneumoniamnist has 1"):
        prepare(PrepareConfig(source="medmnist", npz=tmp_path / "x.npz", flag="pneumoniamnist", out=tmp_path / "o"))


def test_folder_source_with_labels_csv(tmp_path: Path) -> None:
    from cxraug.data.sources.phantom import render

    images = tmp_path / "xrays"
    (images / "sub").mkdir(parents=True)
    rows = ["file,label,patient"]
    for i in range(24):
        name = f"sub/img{i:02d}.png" if i % 2 else f"img{i:02d}.png"
        label = ("Effusion", "No Finding", "Mass")[i % 3]
        Image.fromarray(render(label, 40 + i, seed=i)).save(images / name)
        rows.append(f"{name},{label},p{i // 2}")
    rows += ["img00.png,Effusion|Mass,p0", "absent.png,Mass,p99", "img01.png,,p0"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    cfg = PrepareConfig(source="folder", data_dir=images, labels=tmp_path / "labels.csv", out=tmp_path / "f", size=32)
    meta = prepare(cfg).meta
    assert meta["source"] == "folder" and meta["classes"] == ["No Finding", "Effusion", "Mass"]
    assert sum(sum(c.values()) for c in meta["counts"].values()) == 24
    assert meta["missing_on_disk"] == {"Mass": 1}
    assert any("1 multi-label rows" in n for n in meta["notes"])
    manifest = open_prepared(tmp_path / "f").manifest()
    assert (manifest.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(manifest["split"]) == {"train", "val", "test"}
    row = manifest.query("image_id == 'sub/img05.png'").iloc[0]
    assert (row["orig_width"], row["orig_height"]) == (45, 45) and Path(row["source_file"]).is_absolute()


def test_folder_split_column_that_leaks_a_patient(tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / name)
    (tmp_path / "labels.csv").write_text("file,label,patient,split\na.png,Mass,p1,train\nb.png,Mass,p1,test\n")
    cfg = PrepareConfig(source="folder", data_dir=tmp_path, labels=tmp_path / "labels.csv", out=tmp_path / "o")
    with pytest.raises(UserError, match="patient p1: test, train"):
        prepare(cfg)
    assert not (tmp_path / "o").exists()


def test_phantom_is_deterministic_for_a_seed_and_any_workers(tmp_path: Path) -> None:
    def run(name: str, seed: int, workers: int) -> Path:
        return prepare(
            PrepareConfig(source="phantom", out=tmp_path / name, size=32, n=180, seed=seed, workers=workers)
        ).out

    a, b, c = run("a", 5, 1), run("b", 5, 2), run("c", 6, 1)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(np.load(a / f"images_{split}.npy"), np.load(b / f"images_{split}.npy"))
        np.testing.assert_array_equal(np.load(a / f"labels_{split}.npy"), np.load(b / f"labels_{split}.npy"))
    assert (a / "manifest.csv").read_text() == (b / "manifest.csv").read_text()
    assert not np.array_equal(np.load(a / "images_train.npy")[:5], np.load(c / "images_train.npy")[:5])


def test_phantom_follows_nih_frequencies_with_a_floor(phantom32: Path) -> None:
    meta = json.loads((phantom32 / "dataset.json").read_text())
    assert meta["real_data"] is False and meta["note"] == PHANTOM_NOTE and "NOT REAL DATA" in meta["note"]
    totals = {c: sum(meta["counts"][s][c] for s in meta["counts"]) for c in meta["classes"]}
    assert totals == class_counts(400, list(NIH_CLASSES), floor=12)
    assert sum(totals.values()) == 400
    assert min(totals.values()) == 12 and max(totals, key=totals.get) == "No Finding"
    for split in ("train", "val", "test"):
        assert all(n > 0 for n in meta["counts"][split].values()), f"a class is absent from {split}"
    # Away from the floor, shares follow the full NIH single-label distribution.
    big = class_counts(20000, list(NIH_CLASSES), floor=12)
    total = sum(NIH_SINGLE_LABEL_COUNTS.values())
    for cls, n in big.items():
        assert n == pytest.approx(20000 * NIH_SINGLE_LABEL_COUNTS[cls] / total, abs=1.5), cls


def test_mini_nih_layout(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    """Modes L/RGB/RGBA, a listed-but-absent file, multi-label rows, official test patient."""
    root, truth = mini_nih
    meta = prepare(PrepareConfig(source="nih", data_dir=root, out=tmp_path / "o", size=32, workers=2)).meta
    manifest = open_prepared(tmp_path / "o").manifest()
    assert dict(zip(manifest["image_id"], manifest["class"], strict=True)) == truth["single"]
    assert meta["missing_on_disk"] == truth["missing"]
    assert set(manifest.query("split == 'test'")["patient_id"]) == {truth["test_patient"]}
    assert meta["classes"] == list(NIH_CLASSES)
    assert set(manifest["age"]) == {40 + p for p in range(1, 9)}


def test_mini_nih_without_split_lists(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    root, truth = mini_nih
    (root / "train_val_list.txt").unlink()
    (root / "test_list.txt").unlink()
    meta = prepare(PrepareConfig(source="nih", data_dir=root, out=tmp_path / "o", size=32, test_fraction=0.25)).meta
    assert "split lists absent" in meta["split_method"]
    manifest = open_prepared(tmp_path / "o").manifest()
    assert (manifest.groupby("patient_id")["split"].nunique() == 1).all()
    assert len(manifest) == len(truth["single"]) and (manifest["split"] == "test").any()


def test_overwrite_replaces_only_a_prepared_dataset(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = mini_nih
    out = tmp_path / "o"
    prepare(PrepareConfig(source="nih", data_dir=root, out=out, size=32))
    meta = prepare(PrepareConfig(source="nih", data_dir=root, out=out, size=48, overwrite=True)).meta
    assert meta["size"] == 48 and open_prepared(out).images("train").shape[1:] == (48, 48)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not a prepared dataset"):
        prepare(PrepareConfig(source="nih", data_dir=root, out=other, overwrite=True))
    assert (other / "keep.txt").read_text() == "mine"
