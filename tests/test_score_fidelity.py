"""Label fidelity and FD in the reference classifier's features (`--metrics fidelity,fd_cxr`).

A three-class phantom set (NOT real data) at 32 px and a tiny reference CNN trained once per
module. Stand-in generators return real images: of the requested class (fidelity must reach
the ceiling), or of another class (fidelity near 0). The test split must never reach the
reference's training or selection; its cache must be reused and invalidated correctly.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from test_score_support import ArrayGenerator, PixelProjection, write_synthetic_set
from typer.testing import CliRunner

from cxraug.data.prepared import PreparedData, open_prepared
from cxraug.generator import DataSpec
from cxraug.metrics import reference as ref_mod
from cxraug.metrics.reference import ReferenceConfig, load_reference
from cxraug.metrics.registry import MetricOptions, compute_metrics
from cxraug.metrics.score import ScoreConfig, score
from cxraug.metrics.sources import generator_source

CLASSES = ["Cardiomegaly", "Mass", "Effusion"]
REF = ReferenceConfig(model="tiny", epochs=6, batch_size=16, lr=3e-3)  # seconds on one core


def _prepare(out: Path, n: int = 300, seed: int = 0, overwrite: bool = False) -> Path:
    from cxraug.data.prepare import PrepareConfig, prepare

    prepare(PrepareConfig(source="phantom", out=out, size=32, n=n, workers=1, seed=seed, classes=CLASSES,
                          val_fraction=0.2, overwrite=overwrite))  # fmt: skip
    return out


@dataclass(frozen=True)
class NoTestData(PreparedData):
    """A prepared dataset that fails the test at any read of the test split's images or labels."""

    seen: set[str] = field(default_factory=set, compare=False)

    def images(self, split: str) -> np.ndarray:
        assert split != "test", "the test split's images reached the reference classifier"
        self.seen.add(split)
        return super().images(split)

    def labels(self, split: str) -> np.ndarray:
        assert split != "test", "the test split's labels reached the reference classifier"
        self.seen.add(split)
        return super().labels(split)


@pytest.fixture(scope="module")
def phantom3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _prepare(tmp_path_factory.mktemp("data") / "phantom3")


@pytest.fixture(scope="module")
def guarded(phantom3: Path) -> NoTestData:
    data = open_prepared(phantom3)
    return NoTestData(data.root, data.meta)


@pytest.fixture(scope="module")
def reference(guarded: NoTestData, tmp_path_factory: pytest.TempPathFactory):
    return load_reference(guarded, REF, tmp_path_factory.mktemp("cache"), "cpu")


def _split(data_root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    data = open_prepared(data_root)
    return np.asarray(data.images(split)), data.labels(split)


def _generator(data_root: Path, shift: int) -> ArrayGenerator:
    """Returns held-out (test split) images of class (label + shift) mod k for label."""
    data = open_prepared(data_root)
    imgs, labels = _split(data_root, "test")
    k = len(data.classes)
    pool = {c: imgs[labels == (c + shift) % k] for c in range(k)}
    return ArrayGenerator(DataSpec(tuple(data.classes), data.size), pool)


def _score(data_root: Path, gen: ArrayGenerator, reference, tmp_path: Path) -> dict[str, dict]:
    cfg = ScoreConfig(n=80, metrics=["fid", "fidelity", "fd_cxr"], memorization=False, min_images=6, kid_subsets=5,
                      cache_dir=tmp_path / "cache", reference=REF)  # fmt: skip
    result = score(
        open_prepared(data_root), generator_source(gen, seed=1), cfg, PixelProjection(32), reference=reference
    )
    json.dumps(result.to_json())  # goes into scores.json as is
    assert result.context["reference"]["weights_sha256"] == reference.weights_sha256
    assert set(result.files) == {"confusion.csv", "confusion.png"} and result.files["confusion.png"][:4] == b"\x89PNG"
    return {r["class"]: r for r in result.rows}


def test_test_split_never_reaches_the_reference(guarded: NoTestData, reference) -> None:
    # Every read went through the guard: train and val only, and the record says so.
    assert guarded.seen == {"train", "val"}
    rec = reference.record
    assert rec["test_split"] == "never read"
    assert rec["trained_on"]["split"] == "train" and rec["trained_on"]["n"] == len(guarded.labels("train"))
    assert rec["selected_on"]["split"] == rec["ceiling_on"]["split"] == "val"
    assert rec["selected_on"]["n"] + rec["ceiling_on"]["n"] == len(guarded.labels("val"))
    with pytest.raises(AssertionError, match="never read the test split"):
        ref_mod._split(guarded, "test")
    import inspect

    from cxraug.classify.fit import fit_select

    assert "test" not in inspect.signature(fit_select).parameters  # the training loop it uses takes no test images


def test_the_ceiling_is_measured_on_val_patients_not_used_for_selection(guarded: NoTestData, reference) -> None:
    from cxraug.classify.trainset import split_patients

    rec = reference.record
    held = np.zeros(len(guarded.labels("val")), dtype=bool)
    held[rec["ceiling_on"]["rows"]] = True
    patients = split_patients(guarded, "val")
    assert 0 < held.sum() < len(held) and not set(patients[held]) & set(patients[~held])
    labels = guarded.labels("val")
    for c, name in enumerate(guarded.classes):
        assert reference.val_class(name)["n_val"] == int((held & (labels == c)).sum())


def test_the_reference_is_float32_whatever_the_calling_run_uses(guarded: NoTestData) -> None:
    """Inside train-gen under bf16, Accelerate's one-per-process state would hand the reference
    the run's mixed precision: it is trained without an Accelerator, and its key says fp32 + device."""
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    cfg = ReferenceConfig(model="tiny", epochs=1)
    plain = ref_mod.train_reference(guarded, cfg, torch.device("cpu"))[1]["weights_sha256"]
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        Accelerator(mixed_precision="bf16", cpu=True)  # what a bf16 train-gen run leaves in the process
        inside = ref_mod.train_reference(guarded, cfg, torch.device("cpu"))[1]["weights_sha256"]
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
    assert inside == plain
    key = ref_mod.reference_key(guarded, cfg, "cpu")
    assert key["precision"] == "fp32" and key["device"] == "cpu"
    assert ref_mod.reference_key(guarded, cfg, "cuda") != key


def test_fidelity_of_real_images_reaches_the_ceiling(phantom3: Path, reference, tmp_path: Path) -> None:
    rows = _score(phantom3, _generator(phantom3, shift=0), reference, tmp_path)
    for c in CLASSES:
        r = rows[c]
        val = reference.val_class(c)
        # The ceiling is the reference's own val recall, recorded beside it.
        assert r["real_fidelity"] == pytest.approx(val["recall_top1"]) == pytest.approx(r["ref_val_recall"])
        assert r["real_fidelity_n"] == val["n_val"] and r["fidelity_n"] == 80 and r["ref_val_auroc"] == val["auroc"]
        # Measured on the val patients not used for selection (6 to 11 images a class here), the
        # ceiling is honest and noisy: the intervals of real images' fidelity and of it overlap.
        assert r["real_fidelity"] >= 0.5, (c, r)
        (a_lo, a_hi), (b_lo, b_hi) = r["real_fidelity_ci"], r["fidelity_ci"]
        assert max(a_lo, b_lo) <= min(a_hi, b_hi), (c, r)
        assert r["fidelity_ratio"] == pytest.approx(r["fidelity"] / r["real_fidelity"])
        assert r["fidelity_p"] > 0.4 and r["fidelity_ci"][0] <= r["fidelity"] <= r["fidelity_ci"][1]
        assert isinstance(r["fd_cxr"], float) and isinstance(r["kid_cxr"], float) and "precision_cxr" in r
    assert rows["all"]["fidelity"] >= 0.8 and rows["all"]["fidelity_ratio"] > 0.8


def test_fidelity_of_another_class_is_near_zero(phantom3: Path, reference, tmp_path: Path) -> None:
    same = _score(phantom3, _generator(phantom3, shift=0), reference, tmp_path)
    other = _score(phantom3, _generator(phantom3, shift=1), reference, tmp_path)
    # The tiny reference is selected on half the val patients (the other half gives the ceiling):
    # it confuses a little more than one selected on all of them (Effusion 0.29 here, others 0).
    for c in CLASSES:
        assert other[c]["fidelity"] <= 0.35 and other[c]["fidelity_ratio"] <= 0.4, (c, other[c])
        assert other[c]["fidelity"] < same[c]["fidelity"] - 0.3, (c, other[c])
        assert other[c]["real_fidelity"] == same[c]["real_fidelity"]  # the ceiling does not depend on the source
        assert other[c]["fd_cxr"] > same[c]["fd_cxr"]
    assert other["all"]["fidelity"] <= 0.2


def test_fd_cxr_real_vs_real_near_zero_and_grows_with_blur(phantom3: Path, reference) -> None:
    val, _ = _split(phantom3, "val")
    test, _ = _split(phantom3, "test")
    real = reference.extract(val)
    opts = MetricOptions(kid_subsets=5)

    def fd(images: np.ndarray) -> float:
        return compute_metrics(["fd_cxr"], real, reference.extract(images), opts)["fd_cxr"]

    def blur(images: np.ndarray, passes: int) -> np.ndarray:
        x = images.astype(np.float64)
        for _ in range(passes):
            x = (x + np.roll(x, 1, 1) + np.roll(x, -1, 1) + np.roll(x, 1, 2) + np.roll(x, -1, 2)) / 5
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)

    assert fd(val) == pytest.approx(0.0, abs=1e-6)
    same, light, heavy = fd(test), fd(blur(test, 1)), fd(blur(test, 4))
    assert same < light < heavy, (same, light, heavy)
    assert same < 0.25 * heavy


def test_reference_cache_reused_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_root = _prepare(tmp_path / "small", n=90)
    cache = tmp_path / "cache"
    fast = ReferenceConfig(model="tiny", epochs=1, batch_size=32)
    trained: list[int] = []
    real_train = ref_mod.train_reference

    def counting(*args, **kwargs):
        trained.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(ref_mod, "train_reference", counting)
    first = load_reference(open_prepared(data_root), fast, cache, "cpu")
    again = load_reference(open_prepared(data_root), fast, cache, "cpu")
    assert len(trained) == 1 and first.cache["reused"] is False and again.cache["reused"] is True
    assert again.weights_sha256 == first.weights_sha256 and again.record == first.record

    def files() -> list[str]:
        return sorted(p.name for p in (cache / "reference").glob("*.safetensors"))

    assert len(files()) == 1
    # Other settings: another entry, trained once; the first stays usable.
    load_reference(open_prepared(data_root), ReferenceConfig(model="tiny", epochs=2, batch_size=32), cache, "cpu")
    assert len(trained) == 2 and len(files()) == 2
    load_reference(open_prepared(data_root), fast, cache, "cpu")
    assert len(trained) == 2
    # A damaged entry is retrained, never trusted.
    path = Path(first.cache["path"])
    path.write_bytes(path.read_bytes()[:-100])
    assert load_reference(open_prepared(data_root), fast, cache, "cpu").cache["reused"] is False
    assert len(trained) == 3
    # The dataset prepared again (other images, other fingerprint): retrained; the stale entry goes.
    _prepare(data_root, n=90, seed=1, overwrite=True)
    redone = load_reference(open_prepared(data_root), fast, cache, "cpu")
    assert len(trained) == 4 and redone.cache["reused"] is False and redone.cache["path"] != first.cache["path"]
    assert len(files()) == 2 and Path(redone.cache["path"]).name in files() and path.name not in files()


def test_cache_lock_waits_for_the_first_writer(tmp_path: Path) -> None:
    from cxraug.lock import Busy, output_lock

    target = tmp_path / "entry.safetensors"
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with output_lock(target, wait=True):
            held.set()
            time.sleep(0.3)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    held.wait()
    with pytest.raises(Busy):  # the output lock without wait still refuses at once
        with output_lock(target):
            pass
    with output_lock(target, wait=True):
        order.append("second")
    t.join()
    assert order == ["first done", "second"]


def test_cli_fidelity_outputs(phantom3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxraug.cli import app
    from cxraug.metrics import features, inception

    ex = PixelProjection(32)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: ex)
    imgs, labels = _split(phantom3, "test")
    syn = write_synthetic_set(tmp_path / "syn", {c: imgs[labels == i][:20] for i, c in enumerate(open_prepared(phantom3).classes)},
                              open_prepared(phantom3).classes, phantom3)  # fmt: skip
    base = ["score", "--images", str(syn), "--data", str(phantom3), "--cache-dir", str(tmp_path / "c"),
            "--min-images", "6", "--kid-subsets", "5", "--no-memorization", "--reference-model", "tiny",
            "--reference-epochs", "1"]  # fmt: skip
    out = tmp_path / "s1"
    res = CliRunner().invoke(
        app, [*base, "--metrics", "fid,fidelity,fd_cxr", "--out", str(out)], env={"COLUMNS": "160"}
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert "fidelity" in res.stdout and "FD cxr" in res.stdout and "reference classifier: tiny, 1 epochs" in res.stdout
    assert "not comparable across datasets" in " ".join(res.stdout.split())
    assert {p.name for p in out.iterdir()} == {"scores.json", "scores.csv", "confusion.csv", "confusion.png"}
    saved = json.loads((out / "scores.json").read_text())
    assert saved["metrics"] == ["fid", "fidelity", "fd_cxr"] and saved["reference"]["test_split"] == "never read"
    assert set(saved["fidelity_confusion"]["synthetic"]) == set(CLASSES)
    mass = open_prepared(phantom3).classes.index("Mass")
    assert sum(saved["fidelity_confusion"]["synthetic"]["Mass"]) == min(20, int((labels == mass).sum()))
    header = (out / "scores.csv").read_text().splitlines()[0].split(",")
    assert {"fidelity", "real_fidelity", "fidelity_ratio", "fd_cxr", "ref_val_recall", "ref_val_auroc"} <= set(header)
    assert "kid_cxr_subset_size" in header, "the KID's subset size is what makes two KIDs comparable"
    row = next(csv.DictReader((out / "scores.csv").read_text().splitlines()))
    assert row["kid_cxr_subset_size"] == str(saved["rows"][0]["kid_cxr_subset_size"])
    # Scored again: the reference comes from the cache; the default metrics train nothing.
    again = CliRunner().invoke(app, [*base, "--metrics", "fidelity", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["reference"]["cache"]["reused"] is True
    plain = json.loads(CliRunner().invoke(app, [*base, "--json"]).stdout)
    assert "reference" not in plain and "fidelity" not in plain["rows"][0]
    bad = CliRunner().invoke(app, [*base, "--metrics", "fidelity", "--reference-model", "vgg"])
    assert bad.exit_code == 2 and "unknown reference model 'vgg'" in bad.stderr


def test_fid_during_training_with_the_reference(phantom3: Path, reference, tmp_path: Path) -> None:
    from cxraug.metrics import fid_during_training

    data = open_prepared(phantom3)
    kw = {"n": 30, "seed": 1, "cache_dir": tmp_path, "extractor": PixelProjection(32), "kid_subsets": 5}
    names = ["fid", "fidelity", "fd_cxr"]
    same = fid_during_training(_generator(phantom3, 0), data, metrics=names, reference=reference, **kw)
    other = fid_during_training(_generator(phantom3, 1), data, metrics=names, reference=reference, **kw)
    assert same["status"] == "ok" and "kid" not in same and same["reference_weights_sha256"] == reference.weights_sha256
    assert same["fidelity"] >= 0.7 and other["fidelity"] <= 0.2 and same["fidelity_n"] == 30
    assert other["fd_cxr"] > same["fd_cxr"] and isinstance(same["fid"], float)
    json.dumps(same)
    with pytest.raises(ValueError, match="need the reference classifier"):
        fid_during_training(_generator(phantom3, 0), data, metrics=["fidelity"], **kw)


def test_train_gen_options_for_reference_metrics(phantom3: Path) -> None:
    from pydantic import ValidationError

    from cxraug.config import TrainConfig
    from cxraug.errors import UserError
    from cxraug.metrics.training import training_reference

    assert TrainConfig().fid_metrics == ["fid", "kid"]
    assert TrainConfig(fid_metrics=["fd_cxr", "FID"]).fid_metrics == ["fid", "fd_cxr"]
    with pytest.raises(ValidationError, match="unknown metric 'fdi'"):
        TrainConfig(fid_metrics=["fdi"])

    class TwoProcesses:
        num_processes = 2
        device = "cpu"

    cfg = TrainConfig(fid_every=10, fid_metrics=["fid", "fidelity"])
    with pytest.raises(UserError, match="run on one process"):
        training_reference(cfg, open_prepared(phantom3), TwoProcesses())
    assert training_reference(TrainConfig(fid_every=10), open_prepared(phantom3), TwoProcesses()) is None
