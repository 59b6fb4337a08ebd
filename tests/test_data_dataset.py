"""The prepared format read back: the model range, the class-balanced sampler, patient carving."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from cxraug.data.dataset import to_model_range, to_uint8
from cxraug.data.prepared import open_prepared
from cxraug.data.records import Record
from cxraug.data.splits import carve_patients, patient_leaks
from cxraug.errors import UserError
from cxraug.rng import epoch_order


def test_prepared_images_in_model_range(phantom32: Path) -> None:
    data = open_prepared(phantom32)
    images, labels = data.images("train"), data.labels("train")
    assert len(labels) == sum(data.counts("train").values())
    for i in (0, len(labels) // 2, len(labels) - 1):
        x = to_model_range(np.array(images[i]))
        assert x.dtype == torch.float32 and x.shape == (1, 1, 32, 32)
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        np.testing.assert_array_equal(to_uint8(x)[0], images[i])
    # Full range: 0 -> -1, 255 -> +1.
    assert to_model_range(np.array([[0, 255]], np.uint8)).tolist() == [[[[-1.0, 1.0]]]]
    assert np.bincount(labels, minlength=len(data.classes)).tolist() == [data.counts("train")[c] for c in data.classes]


def test_open_prepared_refuses_other_folders(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        open_prepared(tmp_path / "nope")
    with pytest.raises(UserError, match=r"no dataset\.json"):
        open_prepared(tmp_path)


def test_class_balanced_sampler_draws_classes_about_equally(phantom32: Path) -> None:
    labels = open_prepared(phantom32).labels("train")
    counts = np.bincount(labels, minlength=15)
    assert counts.max() / counts.min() > 8  # the phantom set is imbalanced like NIH
    order = epoch_order(labels, balanced=True, generator=torch.Generator().manual_seed(0), n=30_000)
    drawn = np.bincount(labels[order.numpy()], minlength=15)
    assert drawn.sum() == 30_000
    assert np.abs(drawn / 30_000 - 1 / 15).max() < 0.2 / 15  # each class within 20% of its fair share


def _records(n_patients: dict[str, int], per_patient: int = 2) -> list[Record]:
    out = []
    for cls, n in n_patients.items():
        for p in range(n):
            out += [Record(f"{cls}{p}_{k}", f"{cls}{p}", cls, "train_val") for k in range(per_patient)]
    return out


def test_carve_keeps_classes_in_both_parts_and_patients_whole() -> None:
    records = _records({"No Finding": 60, "Mass": 5, "Hernia": 2, "Edema": 1})
    carved = carve_patients(records, 0.1, seed=0, new_split="val", rest_split="train")
    assert patient_leaks(carved) == {}
    by_split = {s: Counter(r.label for r in carved if r.split == s) for s in ("train", "val")}
    for cls in ("No Finding", "Mass", "Hernia"):  # two or more patients: in both parts
        assert by_split["train"][cls] > 0 and by_split["val"][cls] > 0, cls
    assert by_split["val"]["Edema"] == 0 and by_split["train"]["Edema"] == 2  # a lone patient stays in train
    val_patients = {r.patient_id for r in carved if r.split == "val"}
    assert len([p for p in val_patients if p.startswith("No Finding")]) == 6
    # Even a large fraction leaves every class in the rest part.
    big = carve_patients(records, 0.9, seed=0, new_split="val", rest_split="train")
    assert {r.label for r in big if r.split == "train"} == {"No Finding", "Mass", "Hernia", "Edema"}


def test_carve_is_deterministic_for_a_seed() -> None:
    records = _records({"No Finding": 40, "Mass": 9, "Nodule": 7})

    def val(seed: int) -> set[str]:
        return {r.patient_id for r in carve_patients(records, 0.2, seed, "val", "train") if r.split == "val"}

    assert val(1) == val(1) and val(1) != val(2)


def test_patient_leaks() -> None:
    records = [Record("a", "p1", "Mass", "train"), Record("b", "p1", "Mass", "test"), Record("c", "p2", "Mass", "val")]
    assert patient_leaks(records) == {"p1": {"train", "test"}}


@pytest.mark.parametrize("planned", [5, 10**60])  # the second makes the .npy header shrink
def test_npy_stream_fixes_its_header_when_rows_fail(tmp_path: Path, planned: int) -> None:
    from cxraug.data.prepare import _NpyStream

    stream = _NpyStream(tmp_path / "x.npy", planned, 32)
    rows = [np.full((32, 32), v, np.uint8) for v in (7, 9)]
    assert [stream.write(r) for r in rows] == [0, 1]
    stream.close()
    arr = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert arr.shape == (2, 32, 32)
    np.testing.assert_array_equal(arr, np.stack(rows))
