"""Bad input to `cxraug prepare`: one line, exit code 2, no traceback, nothing left behind.
Also interrupted runs: no output folder and no staging folder remain."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cxraug.cli import app, main
from cxraug.data.prepare import PrepareConfig, prepare
from cxraug.data.prepared import open_prepared
from cxraug.data.sources import phantom
from cxraug.errors import UserError

runner = CliRunner()


def _leftovers(out: Path) -> list[Path]:
    return [p for p in (out, out.parent / f".{out.name}.partial") if p.exists()]


def assert_user_error(args: list[str], out: Path, expect: str) -> str:
    """Run the CLI; check exit 2, one line on stderr naming the problem, and no output left."""
    result = runner.invoke(app, args)
    err = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and expect in err, err
    assert _leftovers(out) == []
    return err


def test_data_dir_missing(tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["prepare", "--data-dir", str(tmp_path / "nope"), "--out", str(out)]
    assert_user_error(args, out, "does not exist; pass the folder of the NIH download")


def test_data_dir_missing_through_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "--data-dir", str(tmp_path / "nope"), "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err and "Traceback" not in err
    assert _leftovers(out) == []


def test_no_metadata_csv(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = mini_nih
    (root / "Data_Entry_2017_v2020.csv").unlink()
    out = tmp_path / "o"
    assert_user_error(["prepare", "--data-dir", str(root), "--out", str(out)], out, "no NIH metadata CSV")


def test_metadata_csv_gz_is_found(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    import gzip

    root, truth = mini_nih
    csv = root / "Data_Entry_2017_v2020.csv"
    (root / "Data_Entry_2017.csv.gz").write_bytes(gzip.compress(csv.read_bytes()))
    csv.unlink()
    meta = prepare(PrepareConfig(source="nih", data_dir=root, out=tmp_path / "o", size=32)).meta
    assert sum(sum(c.values()) for c in meta["counts"].values()) == len(truth["single"])


def test_csv_lacking_a_column(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = mini_nih
    csv = root / "Data_Entry_2017_v2020.csv"
    csv.write_text(csv.read_text().replace("Patient ID", "Patient"))
    out = tmp_path / "o"
    assert_user_error(["prepare", "--data-dir", str(root), "--out", str(out)], out, "lacks column(s) 'Patient ID'")


def test_unknown_class_suggests_the_nearest(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = mini_nih
    out = tmp_path / "o"
    args = ["prepare", "--data-dir", str(root), "--out", str(out), "--classes", "Effusion,Hernai"]
    assert_user_error(args, out, "unknown class 'Hernai'; did you mean 'Hernia'?")


@pytest.mark.parametrize("size", ["16", "2048"])
def test_size_out_of_range(mini_nih: tuple[Path, dict], tmp_path: Path, size: str) -> None:
    root, _ = mini_nih
    out = tmp_path / "o"
    args = ["prepare", "--data-dir", str(root), "--out", str(out), "--size", size]
    assert_user_error(args, out, f"--size {size} is out of range; use 32 to 1024")


def _corrupt_one(root: Path) -> str:
    victim = root / "images_001" / "images" / "00000003_000.png"
    victim.write_bytes(victim.read_bytes()[:200])  # truncated PNG
    return victim.name


def test_corrupt_image_is_skipped_and_reported(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    root, truth = mini_nih
    name = _corrupt_one(root)
    out = tmp_path / "o"
    result = runner.invoke(app, ["prepare", "--data-dir", str(root), "--out", str(out), "--size", "32"])
    assert result.exit_code == 0, result.output
    assert "1 images could not be decoded" in result.stdout
    failed = (out / "failed.csv").read_text().splitlines()
    assert failed[0] == "image_id,source_file,class,error" and len(failed) == 2 and failed[1].startswith(name)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["failed_to_decode"] == {truth["single"][name]: 1}
    assert sum(sum(c.values()) for c in meta["counts"].values()) == len(truth["single"]) - 1
    data = open_prepared(out)
    for split, counts in meta["counts"].items():
        assert data.images(split).shape == (sum(counts.values()), 32, 32)  # the .npy header was fixed
        assert len(data.labels(split)) == sum(counts.values())
    assert name not in set(data.manifest()["image_id"])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_corrupt_image_under_strict(mini_nih: tuple[Path, dict], tmp_path: Path, workers: str) -> None:
    root, _ = mini_nih
    (root / "Data_Entry_2017_v2020.csv").write_text(
        "\n".join(
            line
            for line in (root / "Data_Entry_2017_v2020.csv").read_text().splitlines()
            if not line.startswith("00000002_001")  # the one listed image absent from disk
        )
    )
    _corrupt_one(root)
    out = tmp_path / "o"
    args = ["prepare", "--data-dir", str(root), "--out", str(out), "--strict", "--workers", workers]
    assert_user_error(args, out, "cannot decode")
    assert multiprocessing.active_children() == []  # the pool is gone, not left decoding


def test_missing_images_under_strict(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = mini_nih
    out = tmp_path / "o"
    args = ["prepare", "--data-dir", str(root), "--out", str(out), "--strict"]
    assert_user_error(args, out, "1 listed images are missing on disk (Hernia 1")


def test_out_exists(mini_nih: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = mini_nih
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = runner.invoke(app, ["prepare", "--data-dir", str(root), "--out", str(out)])
    assert result.exit_code == 2 and "already exists; choose another --out or pass --overwrite" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (out / "mine.txt").read_text() == "keep" and not (tmp_path / ".o.partial").exists()


def test_npz_without_the_expected_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "chestmnist.npz", train_images=np.zeros((2, 28, 28), np.uint8), images=np.zeros(3))
    out = tmp_path / "o"
    args = ["prepare", "--source", "medmnist", "--npz", str(tmp_path / "chestmnist.npz"), "--out", str(out)]
    err = assert_user_error(args, out, "lacks array(s) train_labels, val_images")
    assert "is it a MedMNIST npz file?" in err


def test_npz_that_is_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "chestmnist.npz").write_bytes(b"not a zip file at all")
    out = tmp_path / "o"
    args = ["prepare", "--source", "medmnist", "--npz", str(tmp_path / "chestmnist.npz"), "--out", str(out)]
    assert_user_error(args, out, "cannot read")


def test_unknown_source_and_missing_options(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert_user_error(["prepare", "--source", "dicom", "--out", str(out)], out, "known: nih, medmnist, folder, phantom")
    assert_user_error(["prepare", "--source", "medmnist", "--out", str(out)], out, "needs --npz")
    assert_user_error(
        ["prepare", "--source", "folder", "--data-dir", str(tmp_path), "--out", str(out)], out, "--labels"
    )


def test_phantom_n_too_small(tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["prepare", "--source", "phantom", "--n", "50", "--out", str(out)]
    assert_user_error(args, out, "--n 50 is too small for 15 classes")
    meta = prepare(PrepareConfig(source="phantom", out=out, n=30, size=32, classes=["Hernia", "Mass"])).meta
    assert meta["classes"] == ["Hernia", "Mass"] and sum(sum(c.values()) for c in meta["counts"].values()) == 30


def test_keyboard_interrupt_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    render = phantom.render

    def flaky_render(label: str, size: int, seed: int) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return render(label, size, seed)

    monkeypatch.setattr(phantom, "render", flaky_render)
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        prepare(PrepareConfig(source="phantom", out=out, size=32, n=200, workers=1))
    assert calls["n"] == 40 and _leftovers(out) == []
    # The same through the console entry point: exit code 130, nothing left.
    calls["n"] = 0
    with pytest.raises(SystemExit) as exc:
        main(["prepare", "--source", "phantom", "--n", "200", "--size", "32", "--workers", "1", "--out", str(out)])
    assert exc.value.code == 130 and _leftovers(out) == []


def test_user_error_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    render = phantom.render

    def bad_render(label: str, size: int, seed: int) -> np.ndarray:
        if label == "Hernia":
            raise OSError("disk read error")
        return render(label, size, seed)

    monkeypatch.setattr(phantom, "render", bad_render)
    out = tmp_path / "o"
    with pytest.raises(UserError, match=r"cannot decode .*OSError: disk read error"):
        prepare(PrepareConfig(source="phantom", out=out, size=32, n=200, workers=1, strict=True))
    assert _leftovers(out) == []


def test_ctrl_c_on_a_parallel_run(tmp_path: Path) -> None:
    """SIGINT to the whole process group (what Ctrl-C does): exit 130, no traceback from the
    workers, no output and no staging folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "cxraug", "prepare", "--source", "phantom", "--n", "4000", "--size", "256"]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A shell's background jobs (e.g. `make test &`) inherit SIGINT ignored, and Python then
        # keeps ignoring it; a terminal's Ctrl-C reaches a process with the default handler.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    staging = tmp_path / ".o.partial"
    deadline = time.monotonic() + 60
    while not staging.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert staging.exists(), "prepare did not start writing"
    time.sleep(0.5)  # let the pool work
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert _leftovers(out) == []
