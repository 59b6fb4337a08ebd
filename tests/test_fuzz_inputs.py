"""Hostile inputs, by property-based fuzzing (hypothesis): NIH CSV and split lists, a folder's
labels CSV, MedMNIST npz files, PNG bytes, YAML configs and --set values, an edited synth
manifest and an edited run config.json. Each is handled or gets exit code 2 and one line;
never a traceback; and a file outside the folders the user named is never opened.

CXRAUG_FUZZ_EXAMPLES sets the examples per input (default 15); CXRAUG_FUZZ_COUNTS names a
JSON file that receives the examples tried per input (benchmarks/kill_anywhere.py's figures).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import struct
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cxraug.cli import app
from cxraug.errors import UserError

runner = CliRunner()
EXAMPLES = int(os.environ.get("CXRAUG_FUZZ_EXAMPLES", "15"))
# No shrinking: a failure prints its example at once instead of spending minutes of CI on it.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                phases=[Phase.explicit, Phase.generate])  # fmt: skip
TRIED: Counter[str] = Counter()
OPENED: list[str] = []  # every path opened while a fuzz example runs (an audit hook fills it)
_WATCH = [False]


def _audit(event: str, args: tuple) -> None:
    if _WATCH[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    if path := os.environ.get("CXRAUG_FUZZ_COUNTS"):
        Path(path).write_text(json.dumps(dict(TRIED), indent=2) + "\n")


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A file outside every folder the fuzzed commands are given: it must never be opened."""
    d = tmp_path_factory.mktemp("outside")
    from PIL import Image

    Image.fromarray(np.zeros((40, 40), np.uint8)).save(d / "secret.png")
    return d / "secret.png"


def run_cli(name: str, argv: list[str], outside: Path) -> str:
    """Run a command on a fuzzed input: exit 0, or exit 2 with one line; nothing else."""
    TRIED[name] += 1
    OPENED.clear()
    _WATCH[0] = True
    try:
        r = runner.invoke(app, argv)
    finally:
        _WATCH[0] = False
    assert r.exception is None or isinstance(r.exception, SystemExit), (argv, r.output, r.exc_info)
    assert r.exit_code in (0, 2), (r.exit_code, r.output)
    if r.exit_code == 2:
        lines = [ln for ln in r.output.strip().splitlines() if ln.startswith("error") or "error:" in ln]
        assert len(lines) == 1 and "Traceback" not in r.output, r.output
    assert not [p for p in OPENED if Path(p).name == outside.name], f"read outside the named folders: {OPENED}"
    return r.output


def call_api(name: str, fn, outside: Path):
    """A library call on a fuzzed input: returns, or raises a one-line UserError."""
    TRIED[name] += 1
    OPENED.clear()
    _WATCH[0] = True
    try:
        return fn()
    except UserError as e:
        assert "\n" not in str(e)
    finally:
        _WATCH[0] = False
        assert not [p for p in OPENED if Path(p).name == outside.name], f"read outside the named folders: {OPENED}"


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
junk_line = st.one_of(text, st.sampled_from(["", " ", "\x00", "a,b,c", '"', "||", "NaN", "-1", "1e309"]))


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


# --- NIH CSV and split lists ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nih_images(tmp_path_factory) -> tuple[Path, list[str]]:
    from conftest import write_mini_nih

    root = tmp_path_factory.mktemp("nihfuzz") / "nih"
    write_mini_nih(root, n_patients=4, per_patient=2, size=36)
    return root, sorted(p.name for p in root.rglob("*.png"))


NIH_COLUMNS = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender",
               "View Position"]  # fmt: skip


@FUZZ
@given(data=st.data())
def test_fuzz_nih_csv_and_split_lists(data, nih_images, outside, tmp_path_factory) -> None:
    root, names = nih_images
    d = data.draw
    columns = d(st.lists(st.sampled_from([*NIH_COLUMNS, "junk"]), min_size=1, max_size=8, unique=True))
    name = st.one_of(st.sampled_from(names), st.sampled_from(["../../outside/secret.png", str(outside), ""]), text)
    label = st.one_of(st.sampled_from(["No Finding", "Hernia", "Mass", "Effusion|Mass", "", "hernia", "Nope"]), text)
    value = {"Image Index": name, "Finding Labels": label, "Patient ID": st.one_of(st.integers(-3, 9).map(str), text)}
    rows = d(st.lists(st.fixed_dictionaries({c: value.get(c, junk_line) for c in columns}), max_size=12))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns)
    w.writeheader()
    w.writerows(rows)
    raw = d(st.one_of(st.just(buf.getvalue()), st.just(buf.getvalue()[: d(st.integers(0, 400))]), text))
    (root / "Data_Entry_2017_v2020.csv").write_text(raw)
    for lst in ("train_val_list.txt", "test_list.txt"):
        lines = d(st.lists(st.one_of(st.sampled_from(names), junk_line), max_size=8))
        if d(st.booleans()):
            (root / lst).write_text("\n".join(lines) + "\n")
        else:
            (root / lst).unlink(missing_ok=True)
    out = _fresh(tmp_path_factory.getbasetemp() / "nih-out")
    run_cli("NIH CSV + split lists", ["prepare", "--source", "nih", "--data-dir", str(root), "--size", "32",
                                      "--workers", "1", "--out", str(out)], outside)  # fmt: skip


# --- a folder's labels CSV and PNG bytes -----------------------------------------------------------
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def bomb_png(side: int = 100_000) -> bytes:
    """A PNG whose header claims side x side pixels (10 gigapixels) on a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@st.composite
def png_bytes(draw) -> bytes:
    from PIL import Image

    kind = draw(st.sampled_from(["L", "I;16", "P", "RGBA", "1", "LA", "bomb"]))
    if kind == "bomb":
        return bomb_png()
    w, h = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    seed = draw(st.integers(0, 2**16))
    arr = np.random.default_rng(seed).integers(0, 65535 if kind == "I;16" else 255, (h, w))
    img = Image.fromarray(arr.astype(np.uint16 if kind == "I;16" else np.uint8))
    img = img if kind in ("L", "I;16") else img.convert(kind)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    how = draw(st.sampled_from(["whole", "truncated", "flipped", "garbage"]))
    if how == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flipped":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    elif how == "garbage":
        data = bytearray(draw(st.binary(max_size=200)))
    return bytes(data)


@FUZZ
@given(data=st.data())
def test_fuzz_folder_labels_csv_and_png_bytes(data, outside, tmp_path_factory) -> None:
    d = data.draw
    folder = _fresh(tmp_path_factory.getbasetemp() / "folder-src")
    folder.mkdir()
    pngs = d(st.lists(png_bytes(), min_size=1, max_size=6))
    names = []
    for i, blob in enumerate(pngs):
        (folder / f"img{i}.png").write_bytes(blob)
        names.append(f"img{i}.png")
    columns = d(st.sampled_from([["file", "label", "patient_id", "split"], ["file", "label"], ["path", "class"],
                                 ["image", "label", "split"], ["label"], ["file"]]))  # fmt: skip
    escape = f"../{outside.parent.name}/{outside.name}"
    value = {
        "file": st.one_of(st.sampled_from(names), st.sampled_from([escape, str(outside), "nope.png", ""]), text),
        "label": st.one_of(st.sampled_from(["A", "B", "A|B", ""]), text),
        "split": st.sampled_from(["train", "val", "test", "TEST", "holdout", ""]),
    }
    value |= {"path": value["file"], "image": value["file"], "class": value["label"]}
    rows = d(st.lists(st.fixed_dictionaries({c: value.get(c, junk_line) for c in columns}), max_size=10))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns)
    w.writeheader()
    w.writerows(rows)
    (folder / "labels.csv").write_text(buf.getvalue())
    out = _fresh(tmp_path_factory.getbasetemp() / "folder-out")
    run_cli("folder labels CSV + PNG bytes", ["prepare", "--source", "folder", "--data-dir", str(folder), "--labels",
            str(folder / "labels.csv"), "--size", "32", "--workers", "1", "--out", str(out)], outside)  # fmt: skip


# --- MedMNIST npz ---------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_fuzz_medmnist_npz(data, outside, tmp_path_factory) -> None:
    d = data.draw
    path = tmp_path_factory.getbasetemp() / "fuzz.npz"
    if d(st.integers(0, 9)) == 0:
        path.write_bytes(d(st.binary(max_size=300)))
    else:
        arrays = {}
        for split in d(st.lists(st.sampled_from(["train", "val", "test"]), unique=True, max_size=3)):
            n = d(st.integers(0, 6))
            shape = d(st.sampled_from([(n, 28, 28), (n, 28, 28, 3), (n, 28), (n, 5, 40), (n, 1, 28, 28)]))
            dtype = d(st.sampled_from([np.uint8, np.float32, np.int16, np.bool_]))
            arrays[f"{split}_images"] = np.random.default_rng(n).integers(0, 255, shape).astype(dtype)
            lshape = d(st.sampled_from([(n, 1), (n,), (n, 2), (max(n - 1, 0), 1), (n, 14)]))
            arrays[f"{split}_labels"] = np.random.default_rng(n).integers(-1, 3, lshape)
        if d(st.booleans()):
            arrays["junk"] = np.array(["x"])
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    flag = d(st.sampled_from([[], ["--flag", "pneumoniamnist"], ["--flag", "chestmnist"], ["--flag", "nope"]]))
    out = _fresh(tmp_path_factory.getbasetemp() / "mnist-out")
    run_cli("MedMNIST npz", ["prepare", "--source", "medmnist", "--npz", str(path), *flag, "--size", "32",
            "--workers", "1", "--out", str(out)], outside)  # fmt: skip


# --- YAML configs and --set values ----------------------------------------------------------------
KEYS = ["steps", "batch_size", "seed", "lr_g", "lr_d", "z_dim", "g_ch", "ema_decay", "train.steps", "model.z_dim",
        "checkpoint_every", "keep_checkpoints", "mixed_precision", "balanced", "nope", "", "train", "model"]  # fmt: skip
yaml_value = st.one_of(st.integers(-5, 10**12), st.floats(allow_nan=True), st.booleans(), st.none(), text,
                       st.lists(st.integers(), max_size=3), st.sampled_from(["1e-3", "[1,", "{a: 1}", "no", "~"]))  # fmt: skip


@FUZZ
@given(data=st.data())
def test_fuzz_yaml_config_and_set_values(data, phantom32, outside, tmp_path_factory) -> None:
    import yaml

    d = data.draw
    cfg = tmp_path_factory.getbasetemp() / "fuzz.yaml"
    if d(st.booleans()):
        doc = d(st.dictionaries(st.sampled_from(KEYS), st.one_of(yaml_value, st.dictionaries(st.sampled_from(KEYS), yaml_value, max_size=3)), max_size=5))  # fmt: skip
        cfg.write_text(yaml.safe_dump(doc))
    else:
        cfg.write_text(d(st.one_of(text, st.sampled_from(["- a\n- b", "a: [1,", "!!python/object:os.system x", ":"]))))
    sets = d(st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(text, st.sampled_from(["1e-3", "[1,2]", "true", "-1"]))), max_size=3))  # fmt: skip
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--config", str(cfg), "--dry-run"]
    for k, v in sets:
        argv += ["--set", f"{k}={v}" if d(st.booleans()) else k]
    run_cli("YAML config + --set", argv, outside)


NUMERIC_KEYS = ["seed", "steps", "batch_size", "time_limit", "checkpoint_minutes", "lr_g", "lr_d", "ema_kimg", "r1_gamma", "z_dim",
                "fid_n", "train.seed", "model.lr_g"]  # fmt: skip
number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda v: {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}.get(repr(v), repr(v))),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["1e308", "-1e308", "9223372036854775807", "9223372036854775808", "-1", "0", "1e-320"]),
)  # fmt: skip


@FUZZ
@given(data=st.data())
def test_fuzz_numeric_set_values(data, phantom32, outside) -> None:
    """Any number as a --set value: refused in one line, or a config whose every number is
    within the rules (finite, at most 1e30, 64-bit integers, seeds in [0, 2^63))."""
    from cxraug.config import number_problem

    sets = data.draw(st.lists(st.tuples(st.sampled_from(NUMERIC_KEYS), number_text), min_size=1, max_size=3))
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--dry-run"]
    for k, v in sets:
        argv += ["--set", f"{k}={v}"]
    output = run_cli("numeric --set values", argv, outside)
    if not output.startswith("error"):
        cfg = json.loads(output)
        for section in ("train", "model"):
            assert not [(k, v) for k, v in cfg[section].items() if number_problem(k, v)], cfg[section]


@FUZZ
@given(value=st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([-1, 2**63 - 1, 2**63])))
def test_fuzz_seed_options(value, outside, tmp_path_factory) -> None:
    """--seed of prepare and score: in [0, 2^63) or one line, before anything is written."""
    out = tmp_path_factory.getbasetemp() / "seeded"
    shutil.rmtree(out, ignore_errors=True)
    argv = ["prepare", "--source", "phantom", "--n", "0", "--size", "32", "--seed", str(value), "--out", str(out)]
    output = run_cli("--seed values", argv, outside)
    assert ("a seed must be in [0, 2^63)" in output) == (not 0 <= value < 2**63) and not out.exists()
    output = run_cli("--seed values", ["score", "--images", str(out), "--seed", str(value)], outside)
    assert ("a seed must be in [0, 2^63)" in output) == (not 0 <= value < 2**63)


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def json_copy(phantom32, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("jsontypes") / "data"
    shutil.copytree(phantom32, d, ignore=shutil.ignore_patterns("feature_cache"))
    return d


@FUZZ
@given(data=st.data())
def test_fuzz_json_types_of_marker_files(data, json_copy, outside) -> None:
    """dataset.json and compare.json replaced by any JSON value, or a dataset.json with one key
    of another type: one line, never a traceback."""
    from cxraug.studypage import _compare_results

    meta = (
        json.loads((json_copy / "dataset.json.orig").read_text())
        if (json_copy / "dataset.json.orig").is_file()
        else None
    )
    if meta is None:
        shutil.copyfile(json_copy / "dataset.json", json_copy / "dataset.json.orig")
        meta = json.loads((json_copy / "dataset.json").read_text())
    if data.draw(st.booleans()):
        doc = data.draw(json_value)
    else:
        doc = {**meta, data.draw(st.sampled_from(sorted(meta))): data.draw(json_value)}
    (json_copy / "dataset.json").write_text(json.dumps(doc))
    run_cli("JSON types", ["info", str(json_copy)], outside)
    (json_copy / "compare.json").write_text(json.dumps(data.draw(json_value)))
    call_api("JSON types", lambda: _compare_results(json_copy), outside)


# --- an edited synth manifest, an edited run config.json --------------------------------------------
@pytest.fixture(scope="module")
def tiny_set(phantom32, tmp_path_factory) -> tuple[Path, Path]:
    from gen_helpers import tiny_run

    from cxraug.synth import SynthConfig, synth

    run = tiny_run("cgan", phantom32, tmp_path_factory.mktemp("fuzzrun"), steps=2)
    return run, synth(SynthConfig(run=run, classes=["Hernia", "Mass"], n=2, out=run / "synth" / "s", batch_size=2))


@FUZZ
@given(data=st.data())
def test_fuzz_edited_synth_manifest(data, tiny_set, outside, tmp_path_factory) -> None:
    from cxraug.synthset import open_synthetic

    d = data.draw
    _, good = tiny_set
    syn = Path(shutil.copytree(good, _fresh(tmp_path_factory.getbasetemp() / "syn-edit")))
    with open(syn / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    columns = list(rows[0])
    escape = f"../../../{outside.parent.name}/{outside.name}"
    for row in rows:
        if d(st.booleans()):
            col = d(st.sampled_from(columns))
            row[col] = d(st.one_of(st.sampled_from([escape, str(outside), "images/../manifest.csv", "", "-1", "99"]), text))  # fmt: skip
    drop = d(st.sets(st.sampled_from(columns), max_size=2)) if d(st.integers(0, 4)) == 0 else set()
    keep = [c for c in columns if c not in drop]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keep, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    (syn / "manifest.csv").write_text(buf.getvalue())
    call_api("edited synth manifest", lambda: open_synthetic(syn).load(), outside)


def _mutate(obj, d):
    """A copy of a JSON value with a few values replaced, removed or retyped."""
    if isinstance(obj, dict) and obj:
        obj = dict(obj)
        key = d(st.sampled_from(sorted(obj)))
        action = d(st.sampled_from(["replace", "drop", "recurse", "recurse"]))
        if action == "drop":
            del obj[key]
        elif action == "replace":
            obj[key] = d(yaml_value)
        else:
            obj[key] = _mutate(obj[key], d)
        return obj
    return d(yaml_value) if d(st.booleans()) else obj


@FUZZ
@given(data=st.data())
def test_fuzz_edited_run_config_json(data, tiny_set, outside, tmp_path_factory) -> None:
    from cxraug import runs
    from cxraug.train import spec_from_run

    run, _ = tiny_set
    edited = _fresh(tmp_path_factory.getbasetemp() / "run-edit") / run.name
    shutil.copytree(run, edited, ignore=shutil.ignore_patterns("synth", "checkpoints"))
    cfg = json.loads((run / "config.json").read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        cfg = _mutate(cfg, data.draw)
    (edited / "config.json").write_text(json.dumps(cfg) if data.draw(st.integers(0, 5)) else "{not json")
    call_api("edited run config.json", lambda: spec_from_run(edited), outside)
    call_api("edited run config.json", lambda: runs.load_generator(edited), outside)
