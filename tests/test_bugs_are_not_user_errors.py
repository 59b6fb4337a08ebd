"""A bug in cxraug's own code shows its traceback (exit 1); only what a user's input or
environment causes becomes one line and exit 2. One test per former broad ``except``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gen_helpers import phantom_prepare_argv
from typer.testing import CliRunner

from cxraug import registry
from cxraug.cli import app
from cxraug.errors import UserError

runner = CliRunner()


class FakeEntryPoint:
    def __init__(self, error: BaseException) -> None:
        self.error, self.value = error, "somewhere:Thing"

    def load(self):
        raise self.error


@pytest.mark.parametrize(
    ("error", "user_error"),
    [
        (ModuleNotFoundError("No module named 'diffusers'", name="diffusers"), True),  # the user's environment
        (ModuleNotFoundError("No module named 'cxraug_cgan.nots'", name="cxraug_cgan.nots"), False),  # our bug
        (NameError("name 'nn' is not defined"), False),  # a bug in the plugin's own code
        (ImportError("cannot import name 'x' from 'cxraug.generator'"), False),
    ],
)
def test_a_plugin_that_fails_to_import(error, user_error, monkeypatch) -> None:
    monkeypatch.setattr(registry, "_entry_points", lambda: {"p": FakeEntryPoint(error)})
    if user_error:
        with pytest.raises(UserError, match="needs the package 'diffusers'"):
            registry.get("p")
    else:
        with pytest.raises(type(error)):
            registry.get("p")


def test_a_bug_in_our_resize_is_not_a_bad_image_file(tmp_path: Path, monkeypatch) -> None:
    from cxraug.data import prepare

    def broken_resize(img, size):
        raise ZeroDivisionError("a bug of ours")

    monkeypatch.setattr(prepare, "resize_square", broken_resize)
    argv = phantom_prepare_argv(tmp_path / "d")
    r = runner.invoke(app, argv)
    assert r.exit_code == 1 and isinstance(r.exception, ZeroDivisionError), r.output
    assert not (tmp_path / "d").exists()


def test_a_bad_image_file_is_still_reported_not_fatal(tmp_path: Path) -> None:
    from PIL import Image

    from cxraug.data.prepare import PrepareConfig, prepare

    folder = tmp_path / "imgs"
    folder.mkdir()
    rows = ["file,label,patient_id"]
    for i in range(12):
        Image.fromarray(np.full((40, 40), i * 10, np.uint8)).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{'AB'[i % 2]},p{i}")
    (folder / "3.png").write_bytes((folder / "3.png").read_bytes()[:30])  # truncated
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    res = prepare(
        PrepareConfig(
            source="folder", data_dir=folder, out=tmp_path / "d", size=32, workers=1, labels=folder / "labels.csv"
        )
    )
    assert [f[0] for f in res.failed] and "3.png" in res.failed[0][1]


def test_a_bug_while_reading_the_feature_cache_is_not_a_cache_miss(tmp_path: Path, monkeypatch) -> None:
    import safetensors

    from cxraug.metrics.cache import CacheKey, FeatureCache

    key = CacheKey("f" * 64, "val", "A", 8, "net")
    cache = FeatureCache(tmp_path)
    cache.save(key, "d", np.zeros((2, 3), np.float32))

    def broken(*a, **k):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(safetensors, "safe_open", broken)
    with pytest.raises(TypeError):
        cache.load(key, "d")


def test_a_bug_while_loading_classifier_weights_is_not_a_bad_file(tmp_path: Path, monkeypatch) -> None:
    import torch

    from cxraug.classify import models as classifier

    path = tmp_path / "w.pt"
    torch.save(classifier.TinyCNN(3).state_dict(), path)
    assert classifier.load_weights(classifier.TinyCNN(3), path)["loaded"] > 0

    def broken(*a, **k):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(torch, "load", broken)
    with pytest.raises(TypeError):
        classifier.load_weights(classifier.TinyCNN(3), path)
    path.write_bytes(b"not a torch file")
    monkeypatch.undo()
    with pytest.raises(UserError, match="cannot read weights"):
        classifier.load_weights(classifier.TinyCNN(3), path)
