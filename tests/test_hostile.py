"""Hostile and careless input to every command (issue 20), with one oracle: one line and exit
code 2, or success with correct output; nothing written outside the named folders; nothing
deleted that the command did not write. One section per class of fault; hypothesis draws
class names, paths and option values where a property fits."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from gen_helpers import phantom_prepare_argv, tiny_run
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from cxraug.cli import app
from cxraug.errors import UserError

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("CXRAUG_FUZZ_EXAMPLES", "15"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                phases=[Phase.explicit, Phase.generate])  # fmt: skip


def one_line(result, expect: str = "") -> str:
    """Exit 2, one error line naming ``expect``, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exc_info)
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert expect in err, err
    return err


def words(text: str) -> str:
    """Terminal output with its line wrapping undone."""
    return " ".join(text.split())


def ok(result):
    assert result.exit_code == 0, (result.output, result.exc_info)
    return result


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> bytes): what must not change."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory, phantom32) -> Path:
    """A tiny trained cgan run on the phantom set (read-only for the tests below)."""
    return tiny_run("cgan", phantom32, tmp_path_factory.mktemp("runs"))


def _copy_run(run: Path, where: Path) -> Path:
    dst = where / run.name
    shutil.copytree(run, dst)
    return dst


def folder_source(root: Path, classes: list[str], per_class: int = 3) -> tuple[Path, Path]:
    """A --source folder download: PNGs and a labels CSV naming ``classes``."""
    import csv

    images = root / "imgs"
    images.mkdir(parents=True)
    rows = []
    for k, c in enumerate(classes):
        for i in range(per_class):
            name = f"c{k}_{i}.png"
            Image.fromarray(np.full((36, 36), 40 * k + i, np.uint8)).save(images / name)
            rows.append({"file": name, "label": c, "patient": f"p{k}_{i}"})
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "label", "patient"])
        w.writeheader()
        w.writerows(rows)
    return images, labels


def folder_argv(images: Path, labels: Path, out: Path) -> list[str]:
    return ["prepare", "--source", "folder", "--data-dir", str(images), "--labels", str(labels), "--size", "32",
            "--workers", "1", "--test-fraction", "0.34", "--val-fraction", "0.0", "--out", str(out)]  # fmt: skip


# --- 1. paths built from data stay inside their folder ----------------------------------------------
def test_a_class_name_with_a_path_is_refused_at_prepare(tmp_path: Path) -> None:
    images, labels = folder_source(tmp_path / "src", ["ok", "../../escaped"])
    one_line(runner.invoke(app, folder_argv(images, labels, tmp_path / "work" / "d")), "../../escaped")
    assert not (tmp_path / "work").exists() and not (tmp_path / "escaped").exists()


def test_inside_proves_a_path_stays_in_its_folder(tmp_path: Path) -> None:
    from cxraug.fsutil import inside

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    assert inside(tmp_path / "out", "images/a/b.png") == tmp_path / "out" / "images/a/b.png"
    for bad in ("../x.png", "images/../../x.png", "/etc/x.png", "", "a\x00b", "link/x.png"):
        with pytest.raises(UserError):
            inside(tmp_path / "out", bad)


@FUZZ
@given(name=st.text(max_size=40))
def test_inside_never_returns_a_path_outside(tmp_path_factory, name: str) -> None:
    from cxraug.fsutil import inside

    root = tmp_path_factory.mktemp("in")
    try:
        path = inside(root, name)
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert path.resolve().is_relative_to(root.resolve())


def test_synth_with_an_edited_class_list_writes_nothing_outside(run: Path, tmp_path: Path) -> None:
    """An edited export naming the class ``../../escaped`` (issue 20: synth wrote next to t/)."""
    edited = _copy_run(run, tmp_path / "r")
    cfg_path = edited / "export" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["data_spec"]["classes"][0] = "../../escaped"
    cfg_path.write_text(json.dumps(cfg))
    before = snapshot(tmp_path)
    one_line(runner.invoke(app, ["synth", "--run", str(edited), "--class", "all", "-n", "2", "--allow-unseen",
                                 "--out", str(tmp_path / "t" / "syn")]), "escaped")  # fmt: skip
    after = {k for k in snapshot(tmp_path) if not k.startswith("t/")}
    assert after == set(before) and not list(tmp_path.rglob("*escaped*"))


# --- 2. --overwrite removes only what cxraug wrote, never an input ----------------------------------
def test_synth_overwrite_never_deletes_a_users_folder_or_its_own_run(run: Path, tmp_path: Path) -> None:
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("precious")
    argv = ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--overwrite"]
    one_line(runner.invoke(app, [*argv, "--out", str(thesis)]), "not a synthetic set")
    assert (thesis / "chapter1.tex").read_text() == "precious"
    before = snapshot(run)
    one_line(runner.invoke(app, [*argv, "--out", str(run)]), "contains the input")
    one_line(runner.invoke(app, [*argv, "--out", str(run / "export" / "x")]), "lies inside the input")
    assert snapshot(run) == before
    # a set synth wrote is still replaced by --overwrite
    ok(runner.invoke(app, [*argv[:-1], "--out", str(tmp_path / "syn")]))
    ok(runner.invoke(app, [*argv, "--out", str(tmp_path / "syn")]))


def test_synth_refusal_of_a_foreign_folder_does_not_suggest_overwrite(run: Path, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    err = one_line(runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "2",
                                       "--out", str(tmp_path / "mine")]))  # fmt: skip
    assert "--overwrite" not in err


def test_score_compare_and_export_refuse_a_foreign_folder_before_the_work(
    run: Path, phantom32: Path, tmp_path: Path, monkeypatch
) -> None:
    from cxraug.compare import core
    from cxraug.metrics import features, inception, score

    def never(*a, **k):
        raise AssertionError("the work started before --out was checked")

    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "w")
    monkeypatch.setattr(features, "load_feature_extractor", never)
    monkeypatch.setattr(score, "score", never)
    monkeypatch.setattr(core, "compare", never)
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("precious")
    one_line(runner.invoke(app, ["score", "--run", str(run), "--out", str(thesis), "--overwrite"]), "not a score")
    one_line(runner.invoke(app, ["score", "--run", str(run), "--out", str(thesis)]), "already exists")
    one_line(runner.invoke(app, ["score", "--run", str(run), "--out", str(run), "--overwrite"]), "the input")
    one_line(runner.invoke(app, ["compare", str(run), str(run), "--out", str(thesis), "--overwrite"]), "not a compare")
    for target, why in ((thesis, "not a prepared dataset"), (phantom32, "the input")):
        argv = ["benchmark", "--data", str(phantom32), "--controlled-imbalance", "Hernia=2"]
        one_line(runner.invoke(app, [*argv, "--export-reduced", str(target), "--overwrite"]), why)
    assert (thesis / "chapter1.tex").read_text() == "precious"


def test_prepare_never_overwrites_its_own_source(tmp_path: Path) -> None:
    images, labels = folder_source(tmp_path / "src", ["a", "b"])
    before = snapshot(tmp_path / "src")
    one_line(runner.invoke(app, [*folder_argv(images, labels, images), "--overwrite"]), "the input")
    one_line(runner.invoke(app, [*folder_argv(images, labels, tmp_path), "--overwrite"]), "the input")
    assert snapshot(tmp_path / "src") == before
    ok(runner.invoke(app, folder_argv(images, labels, images / "prepared")))  # beside its images: fine


def test_check_output_rules(tmp_path: Path) -> None:
    from cxraug.fsutil import check_output

    (tmp_path / "in").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "scores.json").write_text('{"kind": "score"}')
    (tmp_path / "empty").mkdir()
    inputs = [tmp_path / "in"]
    for out, expect in [(tmp_path / "in", "is the input"), (tmp_path, "contains the input"),
                        (tmp_path / "in" / "o", "lies inside"), (tmp_path / "file", "is a file"),
                        (tmp_path / "file" / "sub", "which is a file"), (tmp_path / "mine", "already exists")]:  # fmt: skip
        with pytest.raises(UserError, match=expect):
            check_output(out, "score folder", "scores.json", inputs)
    check_output(tmp_path / "mine", "score folder", "scores.json", inputs, overwrite=True)
    check_output(tmp_path / "empty", "score folder", "scores.json", inputs, overwrite=True)
    check_output(tmp_path / "new", "score folder", "scores.json", inputs)


# --- 3. names and paths are text, never markup ------------------------------------------------------
def test_markup_in_paths_prints_verbatim(tmp_path: Path) -> None:
    out = tmp_path / "exp[/b] data[red]v2 :thumbs_up:"
    r = ok(runner.invoke(app, phantom_prepare_argv(out)))
    assert f"wrote {out}" in words(r.stdout)
    r = ok(runner.invoke(app, ["info", str(out)]))
    assert "data[red]v2 :thumbs_up:" in words(r.stdout)


@pytest.mark.parametrize("name", ["[/]", "a[red]b", "<script>", "x*z", "`x`", ":thumbs_up:", ".hidden", "a/b"])
def test_class_names_that_would_be_markup_or_paths_are_refused(tmp_path: Path, name: str) -> None:
    images, labels = folder_source(tmp_path / "src", ["ok", name])
    one_line(runner.invoke(app, folder_argv(images, labels, tmp_path / "d")))
    assert not (tmp_path / "d").exists()


@FUZZ
@given(name=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20))
def test_any_class_name_is_refused_in_one_line_or_shown_verbatim(tmp_path_factory, name: str) -> None:
    """The oracle on a drawn class name: one line and exit 2, or a dataset whose files are all
    inside --out and whose `info` shows the name as written."""
    root = tmp_path_factory.mktemp("cls")
    if name.strip() in ("ok", "") or "|" in name or name != name.strip():
        name = f"x{name.strip()}y".replace("|", "")  # the CSV reader strips and drops multi-label rows
    images, labels = folder_source(root / "src", ["ok", name])
    out = root / "work" / "d"
    r = runner.invoke(app, folder_argv(images, labels, out))
    lock = root / "work" / ".d.lock"  # the one-writer lock sits beside the output, by design
    outside = {p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(root / "src") and p != lock}
    if r.exit_code == 2:
        one_line(r)
        assert not outside
        return
    ok(r)
    assert all(p.is_relative_to(out) for p in outside)
    info = json.loads(ok(runner.invoke(app, ["info", str(out), "--json"])).stdout)
    assert name in info["classes"]
    assert words(name) in words(ok(runner.invoke(app, ["info", str(out)])).stdout)


# --- 4. environment faults: one line ----------------------------------------------------------------
def test_out_that_is_a_file_or_below_one(run: Path, phantom32: Path, tmp_path: Path) -> None:
    f = tmp_path / "FILE"
    f.write_text("mine")
    for out in (f, f / "sub"):
        one_line(runner.invoke(app, phantom_prepare_argv(out)), "file")
        one_line(runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--out", str(out)]))
        one_line(runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--out", str(out),
                                     "--overwrite"]))  # fmt: skip
        one_line(runner.invoke(app, ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(out)]))
    assert f.read_text() == "mine"


@pytest.mark.parametrize("value", ["abc", "", "0", "-2"])
def test_bad_thread_count(monkeypatch, phantom32: Path, run: Path, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("CXRAUG_THREADS", value)
    one_line(runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "2",
                                 "--out", str(tmp_path / "s")]), "CXRAUG_THREADS")  # fmt: skip
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("device", ["banana", "cuda:7x", "mps"])
def test_bad_device(run: Path, tmp_path: Path, device: str) -> None:
    one_line(runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--device", device,
                                 "--out", str(tmp_path / "s")]), "--device")  # fmt: skip
    one_line(runner.invoke(app, ["score", "--run", str(run), "--device", device, "--out", str(tmp_path / "c")]),
             "--device")  # fmt: skip
    assert not (tmp_path / "s").exists() and not (tmp_path / "c").exists()


def test_cuda_without_a_gpu(run: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    for cmd in (["synth", "--class", "Hernia", "-n", "2"], ["score"]):
        one_line(runner.invoke(app, [*cmd, "--run", str(run), "--device", "cuda", "--out", str(tmp_path / "o")]),
                 "no CUDA GPU")  # fmt: skip
    assert not (tmp_path / "o").exists()


def _fail_open(monkeypatch, suffix: str, err: int, mode_has: str = "") -> None:
    """Make opening a path ending in ``suffix`` fail as a read-only location would (tests run as
    root here, for whom permission bits do not bite)."""
    import builtins

    real_os_open, real_open = os.open, builtins.open

    def os_open(path, *a, **k):
        if str(path).endswith(suffix):
            raise PermissionError(err, os.strerror(err), str(path))
        return real_os_open(path, *a, **k)

    def open_(path, mode="r", *a, **k):
        if isinstance(path, (str, os.PathLike)) and str(path).endswith(suffix) and mode_has in mode:
            raise PermissionError(err, os.strerror(err), str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)


def test_read_only_output_location_is_one_line(tmp_path: Path, monkeypatch) -> None:
    _fail_open(monkeypatch, ".lock", errno.EROFS)
    one_line(runner.invoke(app, phantom_prepare_argv(tmp_path / "d")), "read-only file system")
    assert not (tmp_path / "d").exists()


def test_read_only_run_under_score_fails_before_the_work(run: Path, monkeypatch, tmp_path: Path) -> None:
    from cxraug.metrics import features, inception

    def never(*a, **k):
        raise AssertionError("the work started before the run's log was found unwritable")

    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "w")
    monkeypatch.setattr(features, "load_feature_extractor", never)
    _fail_open(monkeypatch, "metrics.jsonl", errno.EACCES, "a")
    one_line(runner.invoke(app, ["score", "--run", str(run), "--out", str(tmp_path / "sc")]), "permission denied")
    assert not (tmp_path / "sc").exists()


def test_read_only_feature_cache_scores_without_storing(tmp_path: Path, phantom32: Path, monkeypatch) -> None:
    from test_score_support import PixelProjection, train_images, write_synthetic_set

    from cxraug.data.prepared import open_prepared
    from cxraug.metrics import cache, features, inception

    ex = PixelProjection(open_prepared(phantom32).size)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "w")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: ex)

    def read_only(self, d, *a):
        raise PermissionError(errno.EROFS, "Read-only file system", str(d))

    monkeypatch.setattr(cache.FeatureCache, "_save", read_only)
    syn = write_synthetic_set(tmp_path / "syn", {"No Finding": train_images(phantom32, "No Finding", 24)},
                              open_prepared(phantom32).classes, phantom32)  # fmt: skip
    r = ok(runner.invoke(app, ["score", "--images", str(syn), "--data", str(phantom32), "--min-images", "10",
                               "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "sc"), "--json"]))  # fmt: skip
    assert json.loads(r.stdout)["cache"]["not_stored"] >= 1


def test_environment_message_covers_the_faults_a_user_can_fix() -> None:
    from cxraug.commands.common import environment_message

    for code in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
        msg = environment_message(OSError(code, os.strerror(code), "/x/y"))
        assert msg and "/x/y" in msg and "\n" not in msg
    assert environment_message(OSError(errno.EBADF, "bad fd")) is None  # ours: keeps its traceback


def _cli(args: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    e = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", "CXRAUG_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "cxraug", *args], env=e, capture_output=True, text=True, **kw)


def test_ascii_terminal_with_a_non_ascii_path(phantom32: Path, tmp_path: Path) -> None:
    data = tmp_path / "données-ü"
    shutil.copytree(phantom32, data)
    r = _cli(["info", str(data)], env={"PYTHONIOENCODING": "ascii"})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "donn\\xe9es" in words(r.stdout)


# --- 5. a damaged prepared dataset is refused when opened, before any output ------------------------
def _damage(d: Path, how: str) -> None:
    meta = json.loads((d / "dataset.json").read_text())
    if how == "no images":
        (d / "images_train.npy").unlink()
    elif how == "truncated images":
        data = (d / "images_train.npy").read_bytes()
        (d / "images_train.npy").write_bytes(data[: len(data) // 2])
    elif how == "no manifest":
        (d / "manifest.csv").unlink()
    elif how == "no counts":
        del meta["counts"]
    elif how == "edited size":
        meta["size"] = 64
    elif how == "edited counts":
        meta["counts"]["train"]["Hernia"] += 5
    elif how == "more labels than images":
        labels = np.load(d / "labels_train.npy")
        np.save(d / "labels_train.npy", np.concatenate([labels, labels[:3]]))
    elif how == "label out of range":
        labels = np.load(d / "labels_train.npy")
        labels[0] = 99
        np.save(d / "labels_train.npy", labels)
    (d / "dataset.json").write_text(json.dumps(meta))


DAMAGES = ["no images", "truncated images", "no manifest", "no counts", "edited size", "edited counts",
           "more labels than images", "label out of range"]  # fmt: skip


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_dataset_is_refused_before_any_output(phantom32: Path, tmp_path: Path, how: str) -> None:
    d = tmp_path / "data"
    shutil.copytree(phantom32, d)
    _damage(d, how)
    one_line(runner.invoke(app, ["info", str(d)]), "damaged")
    argv = ["train-gen", "--plugin", "cgan", "--data", str(d), "--out", str(tmp_path / "runs"), "--steps", "1"]
    one_line(runner.invoke(app, argv), "damaged")
    assert not (tmp_path / "runs").exists()


def test_data_that_is_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    one_line(runner.invoke(app, ["info", str(tmp_path / "f")]), "is a file")


# --- 6. sizes that cannot fit are refused up front --------------------------------------------------
def test_sizes_that_cannot_fit(run: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    one_line(runner.invoke(app, [*phantom_prepare_argv(tmp_path / "d"), "--n", "99999999999999999999999"]), "GiB")
    one_line(runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "1000000000000",
                                 "--out", str(tmp_path / "s")]), "GiB")  # fmt: skip
    assert time.perf_counter() - t0 < 60 and not (tmp_path / "d").exists() and not (tmp_path / "s").exists()


# --- 7. options checked before the work -------------------------------------------------------------
@FUZZ
@given(
    n=st.integers(-3, 3) | st.just(10**13),
    batch=st.integers(-2, 4),
    subsets=st.integers(-2, 3),
    min_images=st.integers(0, 12),
)
def test_score_options_are_checked_before_the_work(run, tmp_path_factory, n, batch, subsets, min_images) -> None:
    """Any bad option value: one line before a feature is extracted; good ones reach the work."""
    from cxraug.metrics import features, inception, score

    class Reached(Exception):
        pass

    def reached(*a, **k):
        raise Reached

    tmp = tmp_path_factory.mktemp("opt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inception, "locate_inception_weights", lambda path=None: "w")
        mp.setattr(features, "load_feature_extractor", lambda weights=None, device=None: None)
        mp.setattr(score, "score", reached)
        r = runner.invoke(app, ["score", "--run", str(run), "-n", str(n), "--batch-size", str(batch),
                                "--kid-subsets", str(subsets), "--min-images", str(min_images),
                                "--out", str(tmp / "sc")])  # fmt: skip
    valid = n >= 2 and batch >= 1 and subsets >= 1 and min_images >= 6
    if valid:
        assert isinstance(r.exception, Reached), r.output
    else:
        one_line(r)
    assert not (tmp / "sc").exists()


# --- 8. the lock follows symlinks -------------------------------------------------------------------
def test_lock_through_a_symlink_is_the_same_lock(tmp_path: Path) -> None:
    from cxraug.lock import Busy, output_lock

    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with output_lock(tmp_path / "real"), pytest.raises(Busy), output_lock(tmp_path / "alias"):
        pass


# --- 9. smaller ones --------------------------------------------------------------------------------
def test_overwrite_through_a_symlinked_out_keeps_the_link_and_leaves_nothing(tmp_path: Path) -> None:
    ok(runner.invoke(app, phantom_prepare_argv(tmp_path / "real")))
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    ok(runner.invoke(app, [*phantom_prepare_argv(tmp_path / "alias"), "--overwrite"]))
    assert (tmp_path / "alias").is_symlink() and (tmp_path / "real" / "dataset.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["alias", "real"]


def test_ctrl_c_says_what_happened(monkeypatch, tmp_path: Path, capsys) -> None:
    from cxraug import cli
    from cxraug.data import prepare

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare, "prepare", interrupted)
    with pytest.raises(SystemExit) as e:
        cli.main(phantom_prepare_argv(tmp_path / "d"))
    assert e.value.code == 130 and "interrupted" in capsys.readouterr().err


def test_sigterm_to_prepare_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "d"
    argv = [*phantom_prepare_argv(out, n=6000), "--workers", "2", "--size", "128"]
    e = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", "CXRAUG_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "cxraug", *argv], env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 60
    while not (tmp_path / ".d.partial").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    if p.returncode == 0:
        pytest.skip("prepare finished before the signal")
    assert p.returncode == 143 and "Traceback" not in err and "terminated" in err, err
    assert not out.exists() and not (tmp_path / ".d.partial").exists()


def test_disk_full_in_train_gen_says_resume(run: Path, tmp_path: Path, monkeypatch) -> None:
    copy = _copy_run(run, tmp_path)
    real = os.fsync

    calls = [0]

    def full(fd):  # the resumed config is written (1st), then training's first write fails
        calls[0] += 1
        if calls[0] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", full)
    err = one_line(runner.invoke(app, ["train-gen", "--resume", str(copy), "--steps", "6"]), "no space left")
    assert f"--resume {copy}" in err
    monkeypatch.setattr(os, "fsync", real)


def test_benchmark_report_is_whole_or_absent(tmp_path: Path, monkeypatch) -> None:
    from cxraug.benchmark import outfolder as bench
    from cxraug.benchmark import report

    out = tmp_path / "b"
    out.mkdir()
    (out / bench.MARKER).write_text("{}")
    real = report.atomic_write_text

    def full_at_summary(path, text):
        if Path(path).name == "summary.md":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(report, "atomic_write_text", full_at_summary)
    monkeypatch.setattr(report, "write_report", lambda rep, o: [report.atomic_write_text(o / n, "x")
                                                                for n in ("results.csv", "runs.csv", "summary.md")])  # fmt: skip
    with pytest.raises(OSError):
        bench.write_whole_report(object(), out)
    assert sorted(p.name for p in out.iterdir()) == [bench.MARKER]


# --- issue 31, 3. --overwrite reads the marker's content and what lies beside it --------------------
def test_prepare_overwrite_keeps_a_folder_holding_what_cxraug_did_not_write(tmp_path: Path) -> None:
    d = tmp_path / "d"
    ok(runner.invoke(app, phantom_prepare_argv(d)))
    (d / "myruns" / "00001").mkdir(parents=True)
    (d / "myruns" / "00001" / "notes.txt").write_text("mine")
    before = snapshot(d)
    one_line(runner.invoke(app, [*phantom_prepare_argv(d), "--overwrite"]), "myruns/")
    assert snapshot(d) == before
    shutil.rmtree(d / "myruns")
    (d / "feature_cache" / "reference").mkdir(parents=True)  # what cxraug writes there is its own
    (d / "feature_cache" / "reference" / "x-1.safetensors").write_bytes(b"")
    (d / ".feature_cache.lock").write_text("1\n")
    ok(runner.invoke(app, [*phantom_prepare_argv(d), "--overwrite"]))


def test_overwrite_reads_the_marker_not_its_name(tmp_path: Path) -> None:
    nnunet = tmp_path / "Dataset001"  # another tool's dataset folder with a dataset.json
    (nnunet / "imagesTr").mkdir(parents=True)
    (nnunet / "imagesTr" / "case_0000.nii.gz").write_bytes(b"x")
    (nnunet / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0}}))
    for marker in ['{"channel_names": {}}', "[]", "not json"]:
        (nnunet / "dataset.json").write_text(marker)
        before = snapshot(nnunet)
        one_line(runner.invoke(app, [*phantom_prepare_argv(nnunet), "--overwrite"]), "not a prepared dataset")
        assert snapshot(nnunet) == before


def test_a_dataset_prepared_before_the_tool_field_is_still_replaced(tmp_path: Path) -> None:
    from cxraug.fsutil import check_replaceable

    d = tmp_path / "d"
    ok(runner.invoke(app, phantom_prepare_argv(d)))
    meta = json.loads((d / "dataset.json").read_text())
    assert meta.pop("tool") == "cxraug"
    (d / "dataset.json").write_text(json.dumps(meta))
    check_replaceable(d, "prepared dataset", "dataset.json")
    (d / "dataset.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "content_sha256"}))
    with pytest.raises(UserError, match="not a prepared dataset cxraug wrote"):
        check_replaceable(d, "prepared dataset", "dataset.json")


def test_score_compare_and_synth_overwrite_keep_a_users_file(tmp_path: Path) -> None:
    from cxraug.fsutil import check_replaceable

    for kind, marker, own in [("score folder", "scores.json", "scores.csv"), ("compare folder", "compare.json", "samples_0-a.png"),
                              ("synthetic set", "provenance.json", "images/a/a_000000.png")]:  # fmt: skip
        out = tmp_path / marker
        (out / own).parent.mkdir(parents=True)
        (out / marker).write_text(json.dumps({"tool": "cxraug"}))
        (out / own).write_text("x")
        (out / ".x.json.123.tmp").write_text("")  # a torn temporary file of ours
        check_replaceable(out, kind, marker)
        (out / "thesis.docx").write_text("mine")
        with pytest.raises(UserError, match=r"thesis\.docx"):
            check_replaceable(out, kind, marker)


# --- issue 31, 4. class names are the hashed manifest's ---------------------------------------------
@pytest.mark.parametrize("how", ["swapped", "renamed", "extra count"])
def test_class_names_edited_in_dataset_json_are_refused_by_every_reader(
    phantom32: Path, run: Path, tmp_path: Path, how: str
) -> None:
    from cxraug.data.prepared import fingerprint, open_prepared

    d = tmp_path / "data"
    shutil.copytree(phantom32, d, ignore=shutil.ignore_patterns("feature_cache"))
    before = fingerprint(open_prepared(d))
    meta = json.loads((d / "dataset.json").read_text())
    a, b = meta["classes"][:2]
    if how == "swapped":  # classes and counts swapped together: every count still agrees
        meta["classes"][:2] = [b, a]
        for split in meta["counts"].values():
            split[a], split[b] = split[b], split[a]
    elif how == "renamed":
        meta["classes"][0] = "Renamed"
        for split in meta["counts"].values():
            split["Renamed"] = split.pop(a)
    else:
        meta["counts"]["train"]["Extra"] = 0
    (d / "dataset.json").write_text(json.dumps(meta))
    expect = "not in its classes" if how == "extra count" else "manifest.csv"
    one_line(runner.invoke(app, ["info", str(d)]), expect)
    argv = ["train-gen", "--plugin", "cgan", "--data", str(d), "--out", str(tmp_path / "runs"), "--steps", "1"]
    one_line(runner.invoke(app, argv), expect)
    one_line(runner.invoke(app, ["score", "--run", str(run), "--data", str(d), "-n", "4", "--out", str(tmp_path / "s")]), expect)  # fmt: skip
    assert not (tmp_path / "runs").exists() and not (tmp_path / "s").exists()
    shutil.copyfile(phantom32 / "dataset.json", d / "dataset.json")  # today's dataset.json: opens, same fingerprint
    assert fingerprint(open_prepared(d)) == before


# --- issue 31, 5. score checks that the run was trained on its --data -----------------------------
def test_score_refuses_data_the_run_was_not_trained_on(run: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    ok(runner.invoke(app, phantom_prepare_argv(other, n=200)))  # the same source prepared again, other images
    out, before = tmp_path / "s", snapshot(run)
    argv = ["score", "--run", str(run), "--data", str(other), "-n", "4", "--out", str(out)]
    err = one_line(runner.invoke(app, argv), "is not the dataset")
    assert "content of" in err and "--allow-different-data" in err and not out.exists() and snapshot(run) == before


# --- issue 31, 6. file names from class names are unique by construction ---------------------------
@FUZZ
@given(a=st.text(min_size=1, max_size=30), b=st.text(min_size=1, max_size=30))
def test_file_stems_of_two_class_names_differ(a: str, b: str) -> None:
    from cxraug.classes import file_stem

    for name in (a, b, "No Finding", "No_Finding"):
        stem = file_stem(name)
        assert stem and "/" not in stem and stem.isascii() and len(stem.encode()) <= 72
    assert (file_stem(a) == file_stem(b)) == (a == b)
    assert file_stem("Pleural_Thickening") == "Pleural_Thickening"  # a plain name keeps its file (and cache entry)


def test_compare_grid_files_of_look_alike_classes_do_not_overwrite(monkeypatch) -> None:
    from types import SimpleNamespace

    from cxraug.compare import output, plots

    monkeypatch.setattr(plots, "side_by_side", lambda c, per_run, seed: c.encode())
    monkeypatch.setattr(plots, "quality_vs_cost", lambda result: b"")
    names = ["No Finding", "No_Finding", "No-Finding", "Ödem", "Ädem"]
    result = SimpleNamespace(samples={c: {"r": [1]} for c in names}, context={"seed": 0})
    pngs = output.images(result)
    assert sorted(data.decode() for n, (data, _) in pngs.items() if n.startswith("samples_")) == sorted(names)


# --- issue 31, 2. a dataset being read is not replaced under its reader ------------------------------
def test_prepare_overwrite_of_a_dataset_being_read_is_refused(tmp_path: Path) -> None:
    from cxraug.data.prepared import open_prepared
    from cxraug.lock import output_lock, reading_scope

    d = tmp_path / "d"
    ok(runner.invoke(app, phantom_prepare_argv(d)))
    before = snapshot(d)
    with reading_scope():  # what every command runs in; open_prepared takes the shared lock
        open_prepared(d)
        one_line(
            runner.invoke(app, [*phantom_prepare_argv(d, n=200), "--overwrite"]), "is reading the prepared dataset"
        )
        assert snapshot(d) == before
        open_prepared(d)  # two readers at once: fine
    ok(runner.invoke(app, ["info", str(d)]))
    with output_lock(d, "prepared dataset"):  # a writer at work: a reader does not open it half-replaced
        one_line(runner.invoke(app, ["info", str(d)]), "is writing the prepared dataset")
    ok(runner.invoke(app, [*phantom_prepare_argv(d, n=200), "--overwrite"]))  # the reader has finished
    assert snapshot(d) != before


# --- issue 31, 7. bounded work -----------------------------------------------------------------------
def test_a_tiny_truncation_ends(run: Path, tmp_path: Path) -> None:
    import torch
    from cxraug_cgan.plugin import truncate_noise

    def old(z, t, g):  # what earlier versions ran: rejection until every entry fits
        while (bad := z.abs() > t).any():
            z[bad] = torch.randn(int(bad.sum()), generator=g)
        return z

    for t in (0.5, 2.0):  # a usual truncation draws what it drew before
        a = truncate_noise(
            torch.randn(64, 32, generator=torch.Generator().manual_seed(1)), t, torch.Generator().manual_seed(2)
        )
        b = old(torch.randn(64, 32, generator=torch.Generator().manual_seed(1)), t, torch.Generator().manual_seed(2))
        assert torch.equal(a, b)
    for t in (1e-300, 1e-6, 0.01):
        z = truncate_noise(torch.randn(1000, 8), t, torch.Generator().manual_seed(0))
        assert z.abs().max() <= t and torch.isfinite(z).all()
    z = truncate_noise(torch.randn(20000, 1), 0.01, torch.Generator().manual_seed(0))
    assert abs(float(z.std()) - 0.01 / 3**0.5) < 0.0005  # nearly uniform on [-t, t], as the truncated normal is
    start = time.perf_counter()
    ok(runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--set", "truncation=1e-12",
                           "--out", str(tmp_path / "syn")]))  # fmt: skip
    assert time.perf_counter() - start < 60


def test_a_huge_batch_is_refused_before_any_run_folder(phantom32: Path, tmp_path: Path) -> None:
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs"),
            "--steps", "1", "--batch-size", "1000000000"]  # fmt: skip
    start = time.perf_counter()
    one_line(runner.invoke(app, argv), "choose a smaller --batch-size")
    assert time.perf_counter() - start < 30 and not (tmp_path / "runs").exists()


def _npz_claiming(path: Path, n: int) -> None:
    """A MedMNIST-shaped npz whose train_images header claims ``n`` images (its data holds 4)."""
    import io
    import zipfile

    arrays = {f"{s}_{k}": (np.zeros((4, 28, 28), np.uint8) if k == "images" else np.zeros((4, 1), np.uint8))
              for s in ("train", "val", "test") for k in ("images", "labels")}  # fmt: skip
    with zipfile.ZipFile(path, "w") as z:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            data = buf.getvalue()
            if name == "train_images":
                data = data.replace(b"(4, 28, 28)", f"({n}, 28, 28)".encode().ljust(11))
            z.writestr(f"{name}.npy", data)


def test_an_npz_header_is_checked_before_its_array_is_allocated(tmp_path: Path, monkeypatch) -> None:
    from cxraug import resources

    def prepare(n: int, memory: int) -> str:
        path = tmp_path / f"pneumoniamnist_{n}.npz"
        _npz_claiming(path, n)
        monkeypatch.setattr(resources, "available_memory", lambda: memory)
        argv = ["prepare", "--source", "medmnist", "--npz", str(path), "--size", "32", "--out", str(tmp_path / "d")]
        err = one_line(runner.invoke(app, argv), "pneumoniamnist")
        assert not (tmp_path / "d").exists()
        return err

    assert "damaged" in prepare(10**9, 2**33)  # a header claiming 1e9 images its member does not hold
    assert "of memory" in prepare(4, 1000)  # arrays that cannot fit: the size refusal, before allocation


# --- issue 31, 8. one validation for numbers, foreign files, JSON types, encodings ------------------
@pytest.mark.parametrize(
    "extra", [["--set", "lr_d=1e308"], ["--set", "lr_g=.inf"], ["--seed", "-1"], ["--seed", "99999999999999999999"],
              ["--time-limit", "inf"], ["--set", "ema_kimg=.nan"]],
)  # fmt: skip
def test_numbers_out_of_range_are_refused_before_any_run_folder(phantom32: Path, tmp_path: Path, extra) -> None:
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs"), "--steps", "1"]
    one_line(runner.invoke(app, [*argv, *extra]))
    assert not (tmp_path / "runs").exists()


def test_foreign_files_in_weight_loaders_are_one_line_naming_the_file(
    run: Path, phantom32: Path, tmp_path: Path
) -> None:
    import hashlib

    import torch
    from safetensors.torch import load_file, save_file

    text = tmp_path / "weights.pth"
    text.write_text("these are not weights\n")
    shaped = tmp_path / "shaped.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(2)}, shaped)
    for weights in (text, shaped):
        argv = ["score", "--run", str(run), "--data", str(phantom32), "-n", "4", "--inception-weights", str(weights),
                "--out", str(tmp_path / "s")]  # fmt: skip
        one_line(runner.invoke(app, argv), weights.name)
    # a text checkpoint whose .sha256 matches: resume falls back, or refuses, in one line
    r = _copy_run(run, tmp_path / "text-ckpt")
    for ckpt in (r / "checkpoints").glob("step-*.pt"):
        ckpt.write_text("not a checkpoint\n")
        Path(f"{ckpt}.sha256").write_text(hashlib.sha256(ckpt.read_bytes()).hexdigest() + "\n")
    res = runner.invoke(app, ["train-gen", "--resume", str(r), "--steps", "9"])
    assert res.exit_code == 2 and (res.exception is None or isinstance(res.exception, SystemExit)), res.exc_info
    lines = res.stderr.strip().splitlines()  # a warning per checkpoint it skips, then the one error
    assert all("not a torch file" in ln for ln in lines[:-1]) and lines[-1].startswith("error: none of the 2")
    # an export whose tensor has another shape (its config.json records the new sha256)
    r = _copy_run(run, tmp_path / "shape-export")
    tensors = load_file(r / "export" / "weights.safetensors")
    name = next(iter(tensors))
    tensors[name] = torch.zeros(3, 1)
    save_file(tensors, r / "export" / "weights.safetensors")
    cfg = json.loads((r / "export" / "config.json").read_text())
    cfg["weights_sha256"] = hashlib.sha256((r / "export" / "weights.safetensors").read_bytes()).hexdigest()
    (r / "export" / "config.json").write_text(json.dumps(cfg))
    argv = ["synth", "--run", str(r), "--class", "Hernia", "-n", "1", "--out", str(tmp_path / "syn")]
    one_line(runner.invoke(app, argv), "weights.safetensors")
    assert not (tmp_path / "syn").exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize("doc", ["[]", '"dataset"', "3", "null"])
def test_a_json_file_of_another_type_is_one_line(phantom32: Path, run: Path, tmp_path: Path, doc: str) -> None:
    d = tmp_path / "data"
    shutil.copytree(phantom32, d, ignore=shutil.ignore_patterns("feature_cache"))
    (d / "dataset.json").write_text(doc)
    one_line(runner.invoke(app, ["info", str(d)]), "not the JSON object cxraug writes")
    r = _copy_run(run, tmp_path / "r")
    (r / "config.json").write_text(doc)
    one_line(runner.invoke(app, ["synth", "--run", str(r), "--class", "Hernia", "-n", "1", "--out", str(tmp_path / "s")]))  # fmt: skip
    from cxraug.studypage import _compare_results

    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "compare.json").write_text(doc)
    with pytest.raises(UserError, match="not the JSON object cxraug writes"):
        _compare_results(tmp_path / "cmp")


def test_a_config_that_is_not_utf8_or_an_alias_bomb_is_one_short_line(phantom32: Path, tmp_path: Path) -> None:
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs"), "--dry-run"]
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("model:\n  note: caf\xe9\n".encode("latin-1"))
    one_line(runner.invoke(app, [*argv, "--config", str(latin1)]), "is not UTF-8 text")
    bomb = tmp_path / "bomb.yaml"
    levels = ["&a [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [f"&{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]  # fmt: skip
    bomb.write_text(f"steps: [{', '.join(levels)}]\n")  # 9^9 ones when expanded
    start = time.perf_counter()
    err = one_line(runner.invoke(app, [*argv, "--config", str(bomb)]))
    assert len(err) < 600 and time.perf_counter() - start < 20, err
    res = runner.invoke(app, [*argv, "--set", "steps=" + "[" * 5000 + "]" * 5000])
    assert len(res.stderr) < 600 and res.exit_code == 2, res.stderr[:300]


def test_a_thread_count_of_unicode_digits_is_one_line(monkeypatch, phantom32: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("CXRAUG_THREADS", "²")
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs"), "--steps", "1"]
    one_line(runner.invoke(app, argv), "CXRAUG_THREADS")
    assert not (tmp_path / "runs").exists()


# --- issue 31, 9. messages that say what is true ----------------------------------------------------
def test_a_class_name_too_long_in_bytes_names_the_class_and_both_limits(tmp_path: Path) -> None:
    name = "\U0001d538" * 40  # 40 characters, 160 bytes: under the character limit, over the bytes
    images, labels = folder_source(tmp_path / "src", ["ok", name])
    err = one_line(runner.invoke(app, folder_argv(images, labels, tmp_path / "d")), "160 bytes")
    assert "64 characters and 128 bytes" in err and "--out" not in err.split(";")[0] and not (tmp_path / "d").exists()


def test_an_over_long_file_name_in_a_folder_csv_counts_as_missing(tmp_path: Path) -> None:
    images, labels = folder_source(tmp_path / "src", ["a", "b"], per_class=4)
    with open(labels, "a") as f:
        f.write(f"{'x' * 300}.png,a,p_long\n")
    res = ok(runner.invoke(app, folder_argv(images, labels, tmp_path / "d")))
    assert json.loads((tmp_path / "d" / "dataset.json").read_text())["missing_on_disk"] == {"a": 1}, res.output
    one_line(runner.invoke(app, [*folder_argv(images, labels, tmp_path / "d2"), "--strict"]), "missing on disk")


def test_a_name_too_long_for_the_file_system_names_the_part() -> None:
    from cxraug.commands.common import environment_message

    msg = environment_message(OSError(errno.ENAMETOOLONG, "File name too long", f"/out/images/{'é' * 200}/a.png"))
    assert "400 bytes" in msg and "255 bytes" in msg and "a class name" in msg and "\n" not in msg


def test_divergence_advice_is_what_resume_accepts(phantom32: Path, tmp_path: Path, monkeypatch) -> None:
    from cxraug_cgan.plugin import CGAN

    real = CGAN.train_step
    monkeypatch.setattr(CGAN, "train_step", lambda self, x, y, acc: {**real(self, x, y, acc), "loss_d": float("nan")})
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs"), "--steps", "3",
            "--set", "g_ch=8", "--set", "d_ch=8", "--batch-size", "8"]  # fmt: skip
    err = words(one_line(runner.invoke(app, argv), "training diverged at step 1"))
    assert "step 0" not in err and "no checkpoint was written" in err, err
    assert (
        "start a new run" in err
        and "--set lr_g=" in err
        and "--set lr_d=" in err
        and "lower the learning rate and --resume" not in err
    )


def test_report_out_inside_its_inputs_is_refused(tmp_path: Path) -> None:
    bench, cmp = tmp_path / "bench", tmp_path / "cmp"
    for d in (bench, cmp):
        d.mkdir()
    (bench / "summary.html").write_text("the benchmark's own page")
    before = snapshot(tmp_path)
    for out in (bench / "summary.html", bench / "study" / "index.html", cmp / "index.html"):
        argv = ["report", "--benchmark", str(bench), "--compare", str(cmp), "--out", str(out), "--overwrite"]
        one_line(runner.invoke(app, argv), "lies inside the input")
    assert snapshot(tmp_path) == before


def test_a_writable_out_under_a_read_only_parent_needs_nothing_beside_it(
    run: Path, tmp_path: Path, monkeypatch
) -> None:
    from cxraug import fsutil

    parent = tmp_path / "ro"
    (parent / "mnt").mkdir(parents=True)
    (parent / "set").mkdir()
    real = fsutil.writable
    monkeypatch.setattr(fsutil, "writable", lambda p: Path(p).resolve() != parent.resolve() and real(p))  # as root
    ok(runner.invoke(app, [*phantom_prepare_argv(parent / "mnt"), "--overwrite"]))  # an empty mount point
    ok(runner.invoke(app, [*phantom_prepare_argv(parent / "mnt", n=200), "--overwrite"]))  # replaced in place
    ok(runner.invoke(app, ["info", str(parent / "mnt")]))
    ok(runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--out", str(parent / "set")]))
    assert sorted(p.name for p in parent.iterdir()) == ["mnt", "set"]  # no lock, staging or old copy beside
    assert sorted(p.name for p in (parent / "mnt").iterdir() if p.name.startswith(".")) == [".cxraug.lock"]
    assert json.loads((parent / "mnt" / "dataset.json").read_text())["options"]["n"] == 200
    (parent / "mnt" / "dataset.json").unlink()  # as a kill while the new files moved in leaves it
    (parent / "mnt" / ".cxraug.partial").mkdir()
    ok(runner.invoke(app, [*phantom_prepare_argv(parent / "mnt"), "--overwrite"]))
    assert sorted(p.name for p in parent.iterdir()) == ["mnt", "set"]


def test_synth_overwrite_of_a_set_being_read_is_refused(run: Path, tmp_path: Path) -> None:
    from cxraug.lock import reading_scope
    from cxraug.synthset import open_synthetic

    argv = ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--out", str(tmp_path / "set")]
    ok(runner.invoke(app, argv))
    before = snapshot(tmp_path / "set")
    with reading_scope():  # a command reading the set (score --images, a benchmark arm)
        open_synthetic(tmp_path / "set")
        one_line(runner.invoke(app, [*argv, "--seed", "1", "--overwrite"]), "is reading the synthetic set")
    assert snapshot(tmp_path / "set") == before
    ok(runner.invoke(app, [*argv, "--seed", "1", "--overwrite"]))
