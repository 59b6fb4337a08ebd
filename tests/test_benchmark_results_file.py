"""A benchmark's results.json read back typed (what `compare --benchmark` uses): values as
stored, set paths found where the benchmark may have been started, and one clear line for a
missing or malformed file, through the CLI too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxraug.benchmark.results_file import load_results
from cxraug.cli import app
from cxraug.errors import UserError

STAT = {"mean": 0.05, "low": -0.01, "high": 0.11, "p_adjusted": 0.4, "reason": ""}


def _write(folder: Path, doc: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(doc))
    return folder


def test_values_as_stored_and_set_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    beside = tmp_path / "syn-a"
    beside.mkdir()
    (beside / "provenance.json").write_text("{}")
    doc = {
        "config": {"synthetic": {"a": "syn-a", "gone": "nowhere", "abs": str(beside)}},
        "reference": "real",
        "arms": [{"name": "real", "synthetic": None}, {"name": "a+20", "synthetic": "a"}],
        "per_class_summary": [
            {"arm": "a+20", "class": "Hernia", "diff": {"auroc": STAT, "f1": {"mean": 0, "reason": "3 seeds"}}},
            {"arm": "real", "class": "Hernia", "diff": {}},
        ],
    }
    monkeypatch.chdir(tmp_path / "..")
    res = load_results(_write(tmp_path / "bench", doc))
    assert res.reference == "real" and res.arm_sets == {"real": None, "a+20": "a"}
    first = res.per_class[0]
    assert (first.arm, first.class_name, first.diff["auroc"].mean, first.diff["auroc"].p_adjusted) == (
        "a+20", "Hernia", 0.05, 0.4,
    )  # fmt: skip
    assert first.diff["f1"].mean == 0 and first.diff["f1"].low is None and first.diff["f1"].reason == "3 seeds"
    assert res.per_class[1].diff == {}
    assert res.set_dir("a") == beside and res.set_dir("abs") == beside and res.set_dir("gone") is None


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (None, "is not a benchmark folder (no results.json)"),
        ("{not json", "is not valid JSON"),
        (json.dumps([1, 2]), "holds an array, not the JSON object cxraug writes"),
        (json.dumps({"arms": [], "config": {"synthetic": ["x"]}}), "does not look like"),
        (json.dumps({"arms": [], "per_class_summary": [{"arm": "a", "diff": [1]}]}), "per_class_summary is malformed"),
    ],
)
def test_missing_or_malformed_is_one_user_error(tmp_path: Path, content: str | None, expect: str) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    if content is not None:
        (bench / "results.json").write_text(content)
    with pytest.raises(UserError, match=re.escape(expect)):
        load_results(bench)


def test_compare_says_so_in_one_line(tmp_path: Path) -> None:
    bench = _write(tmp_path / "bench", {"arms": "no"})
    runs = [tmp_path / "r1", tmp_path / "r2"]
    res = CliRunner().invoke(app, ["compare", *map(str, runs), "--benchmark", str(bench), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert len(res.stderr.strip().splitlines()) == 1
