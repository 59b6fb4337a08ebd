"""docs/api.md's walk through the whole study, run as written: every ```python block in order,
in one namespace, in a fresh folder. The FID network is replaced by a fast stand-in (the real
one reads the sample's images at a few per second on one busy core); everything else is real."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from test_score_support import PixelProjection

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_page_has_the_whole_study() -> None:
    code = "\n".join(blocks(DOC.read_text()))
    for call in ("api.prepare(", "api.train_gen(", "api.synth(", "api.score(", "api.benchmark(", "api.report("):
        assert call in code, call


def test_the_walk_through_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxraug.metrics import features, inception

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: PixelProjection(32))
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the walk at its sizes should not warn
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="torch")
        for i, code in enumerate(blocks(DOC.read_text())):
            exec(compile(code, f"docs/api.md block {i + 1}", "exec"), namespace)
    # What the page's comments say came out.
    assert namespace["data"].meta["counts"]["train"] == {"No Finding": 600, "Pneumonia": 600}
    run = namespace["run"]
    assert run.step == 20 and run.reason == "steps" and run.run == Path("study/runs/00001-cgan-sample32-rare")
    assert namespace["synthetic"].provenance["n_images"] == 100
    table = namespace["scores"].table
    assert list(table["class"]) == ["No Finding", "all"] and table["fid"].notna().all()
    assert (tmp_path / "study/scores/scores.csv").is_file()
    bench = namespace["bench"]
    assert ("No Finding", "cgan") in bench.report.answers
    assert namespace["page"] == Path("study/index.html") and (tmp_path / "study/index.html").stat().st_size > 0
    assert namespace["draw"].run == Path("study/runs/00001-cgan-sample32-rare")  # a str became a Path
    grid = namespace["grid"]  # the study's plan alone: nothing made
    assert grid.plan is not None and not grid.complete and not (tmp_path / "study/curve").exists()
    assert grid.plan.estimate.cells == 24
