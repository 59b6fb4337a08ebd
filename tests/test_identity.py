"""A prepared dataset's identity covers its size, channels, format and pixels: the same
folder prepared at two sizes, or an array edited after prepare, is never taken for the
dataset a stored result was computed on (issue 21, items 1 and 9)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gen_helpers import tiny_run

from cxraug.benchmark.config import build_config
from cxraug.benchmark.runner import run_benchmark
from cxraug.cli import main
from cxraug.data.identity import CONTENT_KEY
from cxraug.data.prepare import PrepareConfig, prepare
from cxraug.data.prepared import fingerprint, open_prepared
from cxraug.errors import UserError
from cxraug.train import spec_from_run


def _prepare(src: Path, out: Path, size: int, overwrite: bool = False) -> Path:
    prepare(PrepareConfig(source="nih", data_dir=src, out=out, size=size, workers=1, overwrite=overwrite))
    return out


@pytest.fixture
def two_sizes(mini_nih: tuple[Path, dict], tmp_path: Path) -> tuple[Path, Path]:
    src, _ = mini_nih
    return _prepare(src, tmp_path / "d32", 32), _prepare(src, tmp_path / "d40", 40)


def test_the_same_folder_at_two_sizes_is_two_datasets(two_sizes: tuple[Path, Path]) -> None:
    a, b = two_sizes
    # The manifest alone (the old fingerprint) cannot tell them apart: it has no size column.
    assert (a / "manifest.csv").read_bytes() == (b / "manifest.csv").read_bytes()
    da, db = open_prepared(a), open_prepared(b)
    assert fingerprint(da) != fingerprint(db)
    assert da.identity["size"] == 32 and da.identity["channels"] == 1 and da.identity["format_version"] == 2
    assert set(da.identity[CONTENT_KEY]) >= {"images_train.npy", "labels_test.npy", "manifest.csv"}


def test_a_pixel_edit_is_refused_when_the_dataset_is_opened(phantom32: Path, tmp_path: Path, capsys) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(phantom32, data)
    images = np.load(data / "images_test.npy", mmap_mode="r+")
    images[:] = 0  # every test image zeroed in place: same shape, same header, same manifest
    images.flush()
    del images
    with pytest.raises(UserError, match=r"images_test\.npy differ"):
        open_prepared(data)
    with pytest.raises(SystemExit) as e:
        main(["benchmark", "--data", str(data), "--out", str(tmp_path / "b"), "--arms", "real", "--seeds", "1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "images_test.npy" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "b").exists()


def test_a_dataset_without_content_hashes_must_be_prepared_again(phantom32: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "old"
    shutil.copytree(phantom32, data)
    meta = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps({**meta, "format_version": 1}))
    with pytest.raises(UserError, match=r"format version 1.*prepare it again"):
        open_prepared(data)
    del meta[CONTENT_KEY]
    (data / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"no content hashes.*prepare the dataset again"):
        open_prepared(data)


def test_benchmark_runs_are_not_reused_on_the_folder_prepared_at_another_size(
    two_sizes: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two_sizes
    cfg = build_config(None, {"arms": ["real"], "seeds": [0], "model": "tiny", "epochs": 1, "plots": False})
    out = tmp_path / "bench"
    run_benchmark(a, cfg, out)
    with pytest.raises(UserError, match=r"another dataset.*size 32 -> 40 px"):
        run_benchmark(b, cfg, out)
    from cxraug.benchmark.reportonly import report_only

    with pytest.raises(UserError, match=r"size 32 -> 40 px"):
        report_only(out, data_path=b)


def test_resume_on_data_prepared_again_at_another_size_is_refused(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    src, _ = mini_nih
    data = _prepare(src, tmp_path / "d", 32)
    run = tiny_run("cgan", data, tmp_path / "runs", steps=2, checkpoint_every=2, grid_per_class=1, batch_size=4)
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["identity"]["size"] == 32
    _prepare(src, data, 40, overwrite=True)
    with pytest.raises(UserError, match=r"not the one .* trained on \(size 32 -> 40 px;"):
        spec_from_run(run, {"steps": 4})


def test_the_same_images_prepared_from_another_folder_are_the_same_dataset(
    mini_nih: tuple[Path, dict], tmp_path: Path
) -> None:
    """Where prepare read the images (another machine, another checkout) is provenance: the
    fingerprint, and every key built on it, is shared; a patient id or a label is identity."""
    import csv
    import shutil

    src, _ = mini_nih
    moved = tmp_path / "elsewhere" / "nih"
    shutil.copytree(src, moved)
    a, b = _prepare(src, tmp_path / "a", 32), _prepare(moved, tmp_path / "b", 32)
    assert (a / "manifest.csv").read_bytes() != (b / "manifest.csv").read_bytes()  # source_file differs
    assert fingerprint(open_prepared(a)) == fingerprint(open_prepared(b))

    from cxraug.data.identity import identity_hashes

    with open(b / "manifest.csv", newline="") as f:
        rows = list(csv.reader(f))
    rows[1][rows[0].index("patient_id")] += "x"  # one image given to another patient
    with open(b / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    meta = json.loads((b / "dataset.json").read_text())
    (b / "dataset.json").write_text(json.dumps({**meta, **identity_hashes(b)}))
    assert fingerprint(open_prepared(a)) != fingerprint(open_prepared(b))


def test_a_dataset_prepared_before_the_path_free_rule_keeps_its_fingerprint(phantom32: Path, tmp_path: Path) -> None:
    import hashlib
    import shutil

    from cxraug.data.identity import MANIFEST_KEY

    old = tmp_path / "old"
    shutil.copytree(phantom32, old)
    meta = json.loads((old / "dataset.json").read_text())
    del meta[MANIFEST_KEY]
    (old / "dataset.json").write_text(json.dumps(meta))
    as_stored = {k: meta.get(k) for k in ("format_version", "size", "channels", CONTENT_KEY)}
    expected = hashlib.sha256(json.dumps(as_stored, sort_keys=True).encode()).hexdigest()  # the rule before
    assert fingerprint(open_prepared(old)) == expected != fingerprint(open_prepared(phantom32))
