"""A -n whose synthetic images cannot fit in memory is refused in one line before anything is
drawn or extracted (score, and compare over several runs), and a folder source counts only
the images it has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_score_support import PixelProjection, noise_generator, write_synthetic_set

from cxraug import resources
from cxraug.data.prepared import open_prepared
from cxraug.errors import UserError
from cxraug.metrics.score import ScoreConfig, fake_bytes, score
from cxraug.metrics.sources import generator_source, images_source
from cxraug.synthset import open_synthetic

MIB = 2**20


def test_score_refuses_a_plan_that_cannot_fit_before_any_work(phantom32: Path, monkeypatch) -> None:
    data = open_prepared(phantom32)
    ex = PixelProjection(data.size)
    src = generator_source(noise_generator(phantom32))
    monkeypatch.setattr(resources, "available_memory", lambda: 4 * MIB)
    cfg = ScoreConfig(n=100_000, classes=list(data.classes[:2]), memorization=False, use_cache=False, min_images=6)
    with pytest.raises(UserError, match=r"scoring 100,000 synthetic images per class x 2 classes needs about"):
        score(data, src, cfg, ex)
    assert ex.calls == 0  # neither side was extracted
    # 100,000 x 2 classes x (32 x 32 pixels + 2 x 32 features x 4 bytes) = 256 MiB
    assert fake_bytes(src, list(data.classes[:2]), 100_000, ex.num_features) == 200_000 * (1024 + 256)
    small = ScoreConfig(n=8, classes=list(data.classes[:2]), memorization=False, use_cache=False, min_images=6)
    assert score(data, src, small, ex).rows  # what fits runs


def test_a_folder_source_counts_the_images_it_has(phantom32: Path, tmp_path: Path) -> None:
    data = open_prepared(phantom32)
    rng = np.random.default_rng(0)
    imgs = {
        c: rng.integers(0, 256, (k, data.size, data.size), dtype=np.uint8)
        for c, k in zip(data.classes[:2], (5, 3), strict=True)
    }
    root = write_synthetic_set(tmp_path / "set", imgs, list(data.classes), phantom32)
    src = images_source(open_synthetic(root))
    assert [src.drawn(c, 10**9) for c in data.classes[:2]] == [5, 3]
    assert src.drawn(data.classes[0], 2) == 2
    assert fake_bytes(src, list(data.classes[:2]), 10**9, 32) == 8 * (1024 + 256)
