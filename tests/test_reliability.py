"""Corrupted state, code-carrying files, two writers at once and a full disk, for every stage
that writes: each is detected and refused (one line, exit 2) or rebuilt, never silently used."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from gen_helpers import phantom_prepare_argv, tiny_run
from typer.testing import CliRunner

from cxraug import checkpoint, runs
from cxraug.cli import app
from cxraug.errors import UserError
from cxraug.train import spec_from_run, train

runner = CliRunner()


def one_line_error(r, *words: str) -> None:
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]  # a progress line may precede it
    assert "Traceback" not in r.output and len(errors) == 1, r.output
    for w in words:
        assert w in r.output, r.output


def flip_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


class WritesMarker:
    """A pickle payload that would create ``path`` when unpickled (if anything let it run)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, phantom32: Path) -> Path:
    return tiny_run("cgan", phantom32, tmp_path_factory.mktemp("runs"), steps=4, checkpoint_every=2)


def _copy_run(run: Path, dst: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, dst / run.name, symlinks=True))


# --- checkpoints ------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", [flip_byte, truncate])
def test_damaged_last_checkpoint_falls_back_to_the_previous_one(damage, trained, tmp_path, capsys) -> None:
    run = _copy_run(trained, tmp_path)
    export_before = (run / "export" / "weights.safetensors").read_bytes()
    assert [s for s, _ in runs.checkpoints(run)] == [2, 4]
    damage(runs.checkpoint_path(run, 4))
    train(run, spec_from_run(run), resume=True)
    err = capsys.readouterr().err
    assert "checkpoint" in err and "step-0000004.pt is unusable" in err and "falling back to step 2" in err, err
    assert (run / "export" / "weights.safetensors").read_bytes() == export_before, "steps 3-4 redone exactly"
    checkpoint.read(runs.checkpoint_path(run, 4))  # rewritten whole, with its checksum


def test_no_usable_checkpoint_is_one_line(trained, tmp_path) -> None:
    run = _copy_run(trained, tmp_path)
    for _, path in runs.checkpoints(run):
        truncate(path)
    r = runner.invoke(app, ["train-gen", "--resume", str(run)])
    assert r.exit_code == 2 and "none of the 2 checkpoint(s)" in r.output.splitlines()[-1], r.output


def test_a_checkpoint_carrying_code_is_refused_and_never_runs(trained, tmp_path, capsys) -> None:
    run = _copy_run(trained, tmp_path)
    marker = tmp_path / "MARKER"
    path = runs.checkpoint_path(run, 6)
    checkpoint.save(path, {"step": 6, "plugin": {"x": WritesMarker(marker)}})  # a valid checksum, too
    with pytest.raises(checkpoint.BadCheckpoint, match="would run code"):
        checkpoint.read(path)
    step, _ = checkpoint.load_latest(run)
    assert step == 4 and "falling back to step 4" in capsys.readouterr().err
    assert not marker.exists()


def test_a_checkpoint_without_its_checksum_is_not_used(trained, tmp_path, capsys) -> None:
    """The writer puts the checksum down first, so a checkpoint without one was not written
    by it whole: it is skipped like a damaged one, never loaded unverified."""
    run = _copy_run(trained, tmp_path)
    checkpoint.checksum_path(runs.checkpoint_path(run, 4)).unlink()
    with pytest.raises(checkpoint.BadCheckpoint, match=r"no checksum file step-0000004\.pt\.sha256"):
        checkpoint.read(runs.checkpoint_path(run, 4))
    step, _ = checkpoint.load_latest(run)
    assert step == 2 and "falling back to step 2" in capsys.readouterr().err


def test_an_export_without_its_weights_checksum_is_refused(trained, tmp_path) -> None:
    import json

    from cxraug import registry

    run = _copy_run(trained, tmp_path)
    meta = json.loads((run / "export" / "config.json").read_text())
    registry.get(meta["plugin"]).from_export(run / "export")  # whole: loads
    del meta["weights_sha256"]
    (run / "export" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"records no weights_sha256, so weights\.safetensors cannot be verified"):
        registry.get(meta["plugin"]).from_export(run / "export")


def test_a_folder_without_its_checksums_is_refused(tmp_path) -> None:
    from cxraug.integrity import verify_sums, write_sums

    (tmp_path / "result.json").write_text("{}")
    with pytest.raises(UserError, match="has no SHA256SUMS, so it cannot be verified; delete that folder"):
        verify_sums(tmp_path, "stored benchmark run")
    write_sums(tmp_path, ["result.json"])
    verify_sums(tmp_path, "stored benchmark run")


def test_data_spec_is_grey_only() -> None:
    from cxraug.generator import DataSpec

    spec = DataSpec(classes=("a", "b"), size=32)
    assert spec.channels == 1 and spec.to_dict() == {"classes": ["a", "b"], "size": 32, "channels": 1}
    assert DataSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(UserError, match="images of 3 channels; cxraug handles grey images"):
        DataSpec.from_dict({**spec.to_dict(), "channels": 3})


def test_synth_killed_before_its_provenance_was_written_reruns(trained, tmp_path) -> None:
    """Found by the long kill run: the set's folder existed with only a temporary file."""
    out = tmp_path / "syn"
    out.mkdir()
    (out / ".provenance.json.abc123.tmp").write_text('{"run": ')
    r = runner.invoke(app, ["synth", "--run", str(trained), "--class", "Hernia", "-n", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not list(out.glob(".*.tmp"))


# --- exports, weights files -------------------------------------------------------------------------
def test_a_damaged_or_code_carrying_export_is_refused(trained, tmp_path) -> None:
    run = _copy_run(trained, tmp_path)
    weights = run / "export" / "weights.safetensors"
    flip_byte(weights, 0.9)
    r = runner.invoke(app, ["synth", "--run", str(run), "--class", "all", "-n", "2", "--out", str(tmp_path / "s")])
    one_line_error(r, "is damaged")
    marker = tmp_path / "MARKER"
    torch.save({"w": WritesMarker(marker)}, weights)
    r = runner.invoke(app, ["synth", "--run", str(run), "--class", "all", "-n", "2", "--out", str(tmp_path / "s")])
    one_line_error(r, "is damaged")
    assert not marker.exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_classifier_weights_carrying_code_are_refused(suffix, tmp_path) -> None:
    from cxraug.classify.models import build_classifier

    marker, path = tmp_path / "MARKER", tmp_path / f"w{suffix}"
    torch.save({"conv.weight": WritesMarker(marker)}, path)
    with pytest.raises(UserError, match="cannot read weights"):
        build_classifier("tiny", 3, weights=path)
    assert not marker.exists()


# --- feature cache, stored benchmark runs -----------------------------------------------------------
class CountingExtractor:
    calls = 0

    def extract(self, images, batch_size, reporter=None, what=""):
        self.calls += 1
        return images.reshape(len(images), -1)[:, :4].astype(np.float32) + 0.5


@pytest.mark.parametrize("damage", [flip_byte, truncate])
def test_a_damaged_feature_cache_entry_is_rebuilt(damage, tmp_path) -> None:
    from cxraug.metrics.cache import CacheKey, FeatureCache, images_digest

    images = np.arange(5 * 8 * 8, dtype=np.uint8).reshape(5, 8, 8)
    key, ex = CacheKey("f" * 64, "val", "Hernia", 8, "test-net"), CountingExtractor()
    good = FeatureCache(tmp_path).features(key, images, ex, 2)
    damage(tmp_path / key.filename(), 0.97)  # the tensor bytes sit at the end of the file
    cache = FeatureCache(tmp_path)
    again = cache.features(key, images, ex, 2)
    assert ex.calls == 2 and cache.damaged == 1 and cache.misses == 1, "recomputed, and counted"
    np.testing.assert_array_equal(again, good)
    assert FeatureCache(tmp_path).load(key, images_digest(images)) is not None, "the rebuilt entry is trusted"


@pytest.fixture(scope="module")
def benchmark_out(phantom32: Path, tmp_path_factory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("bench") / "b"
    argv = ["benchmark", "--data", str(phantom32), "--out", str(out), "--arms", "real", "--seeds", "1",
            "--set", "model=tiny", "--set", "epochs=1", "--set", "plots=false"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXRAUG_THREADS", "1")
        r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
    return out, argv


@pytest.mark.parametrize(("name", "damage"), [("result.json", flip_byte), ("predictions.npz", truncate),
                                             ("predictions.npz", flip_byte)])  # fmt: skip
def test_a_damaged_stored_benchmark_run_is_refused(name, damage, benchmark_out, tmp_path) -> None:
    import shutil

    src, argv = benchmark_out
    out = Path(shutil.copytree(src, tmp_path / "b"))
    damage(out / "runs" / "real" / "seed-0" / name)
    argv = [a if a != str(src) else str(out) for a in argv]
    r = runner.invoke(app, argv)
    one_line_error(r, "stored benchmark run", "is damaged", "delete that folder")


# --- two writers at once ----------------------------------------------------------------------------
def _hold_locks(targets: list[Path]) -> subprocess.Popen:
    code = (
        "import sys, contextlib, time\nfrom pathlib import Path\nfrom cxraug.lock import output_lock\n"
        "with contextlib.ExitStack() as s:\n"
        "    [s.enter_context(output_lock(Path(t))) for t in sys.argv[1:]]\n"
        "    print('held', flush=True); time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, targets)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _contents(root: Path) -> dict[str, str]:
    from killsuite import sha

    return {str(p.relative_to(root)): sha(p) for p in root.rglob("*") if p.is_file() and ".lock" not in p.name}


def test_a_second_writer_is_refused_and_a_dead_one_blocks_nothing(trained, phantom32, tmp_path) -> None:
    run = _copy_run(trained, tmp_path)
    t = tmp_path
    commands = {
        "prepare": ["prepare", "--source", "phantom", "--n", "180", "--size", "32", "--workers", "1", "--out", str(t / "d")],
        "train-gen": ["train-gen", "--resume", str(run), "--steps", "5"],
        "synth": ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--out", str(t / "syn")],
        "score": ["score", "--run", str(run), "--data", str(phantom32), "-n", "20", "--out", str(t / "score")],
        "benchmark": ["benchmark", "--data", str(phantom32), "--out", str(t / "bench"), "--set", "model=tiny"],
    }  # fmt: skip
    targets = [t / "d", run, t / "syn", t / "score", t / "bench"]
    holder = _hold_locks(targets)
    try:
        before = _contents(t)
        for argv in commands.values():
            r = runner.invoke(app, argv)
            one_line_error(r, "another cxraug process", f"pid {holder.pid}")
        after = _contents(t)
        assert after == before, "a refused writer wrote nothing"
    finally:
        holder.kill()  # SIGKILL: no chance to clean up
        holder.wait()
    r = runner.invoke(app, commands["synth"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, commands["prepare"])
    assert r.exit_code == 0, r.output


def test_two_synth_processes_at_once_one_is_refused(trained, tmp_path) -> None:
    argv = [sys.executable, "-m", "cxraug", "synth", "--run", str(trained), "--class", "all", "-n", "4",
            "--batch-size", "1", "--out", str(tmp_path / "syn")]  # fmt: skip
    env = {**os.environ, "CXRAUG_THREADS": "1"}
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    while not (tmp_path / ".syn.lock").exists() and procs[0].poll() is None:
        time.sleep(0.01)
    procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(p.wait(), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes == [0, 2], results
    refused = next(e for c, e in results if c == 2)
    assert "another cxraug process" in refused or "already holds a finished" in refused, refused
    from cxraug.synthset import open_synthetic

    open_synthetic(tmp_path / "syn").load()  # whole and verified against its checksums


# --- a full disk ------------------------------------------------------------------------------------
def _disk_full_after(monkeypatch, owner, name: str, calls: int) -> None:
    """Make ``owner.name`` raise ENOSPC from its ``calls``-th call on (the write fails)."""
    real, seen = getattr(owner, name), [0]

    def failing(*a, **k):
        seen[0] += 1
        if seen[0] >= calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(owner, name, failing)


def _litter(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".tmp", ".partial", ".old"))]


def test_disk_full_while_preparing(tmp_path, monkeypatch) -> None:
    from cxraug.data.prepare import _NpyStream

    _disk_full_after(monkeypatch, _NpyStream, "write", 30)
    argv = phantom_prepare_argv(tmp_path / "d")
    one_line_error(runner.invoke(app, argv), "no space left on the device")
    assert not (tmp_path / "d").exists() and not _litter(tmp_path)


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(trained, tmp_path, monkeypatch) -> None:
    run = _copy_run(trained, tmp_path)
    _disk_full_after(monkeypatch, os, "fsync", 1)  # the next checkpoint write
    one_line_error(runner.invoke(app, ["train-gen", "--resume", str(run), "--steps", "6"]), "no space left")
    assert [s for s, _ in runs.checkpoints(run)] == [2, 4] and not _litter(run)
    checkpoint.read(runs.checkpoint_path(run, 4))
    monkeypatch.undo()
    r = runner.invoke(app, ["train-gen", "--resume", str(run), "--steps", "6"])
    assert r.exit_code == 0, r.output


def test_disk_full_while_synthesizing(trained, tmp_path, monkeypatch) -> None:
    argv = ["synth", "--run", str(trained), "--class", "all", "-n", "3", "--batch-size", "1"]
    straight = runner.invoke(app, [*argv, "--out", str(tmp_path / "a")])
    assert straight.exit_code == 0, straight.output
    _disk_full_after(monkeypatch, os, "fsync", 5)  # the 5th image (after provenance.json)
    one_line_error(runner.invoke(app, [*argv, "--out", str(tmp_path / "b")]), "no space left")
    assert not _litter(tmp_path / "b")
    monkeypatch.undo()
    r = runner.invoke(app, [*argv, "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "manifest.csv").read_bytes() == (tmp_path / "b" / "manifest.csv").read_bytes()
