"""The command line and cxraug.api give the same outputs for the same inputs (issue 34): the CLI
is a thin layer over the API, and these tests keep it one. prepare and score are compared in
test_api.py; here train-gen, synth, compare and benchmark, each file but timings."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from test_score_support import use_pixel_projection
from typer.testing import CliRunner

from cxraug import api
from cxraug.cli import app

runner = CliRunner()
TIMING = ("_s", "_min", "img_per_s", "img/s", "seconds", "elapsed", "peak", "when", "date", "time")


def _cli(argv: list[str]) -> None:
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, res.output


def _untimed_csv(path: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]


def _untimed_jsonl(path: Path) -> list[dict]:
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in recs]


@pytest.fixture(scope="module")
def pair(phantom32: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 4-step cgan run, once from the CLI and once from the API."""
    root = tmp_path_factory.mktemp("parity")
    common = {"steps": 4, "batch_size": 8, "seed": 3}
    _cli(["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(root / "cli"),
          "--steps", "4", "--batch-size", "8", "--seed", "3", "--set", "sample_every=2"])  # fmt: skip
    run = api.train_gen(plugin="cgan", data=str(phantom32), out=str(root / "api"), sets={"sample_every": 2}, **common)
    (cli_run,) = [p for p in (root / "cli").iterdir() if p.is_dir()]
    return {"root": root, "cli": cli_run, "api": run.run}


def test_train_gen_from_the_cli_and_the_api_is_the_same_run(pair: dict[str, Path]) -> None:
    cli, py = pair["cli"], pair["api"]
    assert sorted(p.name for p in cli.iterdir()) == sorted(p.name for p in py.iterdir())
    assert _untimed_jsonl(cli / "metrics.jsonl") == _untimed_jsonl(py / "metrics.jsonl")
    weights = sorted(p.relative_to(cli) for p in cli.rglob("*.safetensors"))
    assert weights and weights == sorted(p.relative_to(py) for p in py.rglob("*.safetensors"))
    for rel in weights:
        a, b = load_file(cli / rel), load_file(py / rel)
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), rel
    grids = sorted(p.relative_to(cli) for p in cli.rglob("*.png"))
    assert grids and all((cli / g).read_bytes() == (py / g).read_bytes() for g in grids)
    a, b = (json.loads((r / "config.json").read_text()) for r in (cli, py))
    assert {k: v for k, v in a.items() if k != "created"} == {k: v for k, v in b.items() if k != "created"}


def test_synth_from_the_cli_and_the_api_draws_the_same_images(pair: dict[str, Path]) -> None:
    root = pair["root"]
    _cli(["synth", "--run", str(pair["cli"]), "--class", "No Finding", "-n", "6", "--out", str(root / "s-cli")])
    api.synth(run=str(pair["api"]), classes="No Finding", n=6, out=str(root / "s-api"))
    images = sorted(p.relative_to(root / "s-cli") for p in (root / "s-cli").rglob("*.png"))
    assert len(images) == 6
    assert images == sorted(p.relative_to(root / "s-api") for p in (root / "s-api").rglob("*.png"))
    assert all((root / "s-cli" / i).read_bytes() == (root / "s-api" / i).read_bytes() for i in images)


def test_compare_from_the_cli_and_the_api_scores_alike(
    pair: dict[str, Path], phantom32: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_pixel_projection(monkeypatch, phantom32)
    root, runs = pair["root"], [str(pair["cli"]), str(pair["api"])]
    _cli(["compare", *runs, "--classes", "No Finding", "-n", "16", "--min-images", "10", "--bootstrap", "20",
          "--metrics", "fid,kid", "--speed-images", "4", "--out", str(root / "c-cli")])  # fmt: skip
    api.compare(runs, classes="No Finding", n=16, min_images=10, bootstrap=20, metrics="fid,kid", speed_images=4,
                out=root / "c-api")  # fmt: skip
    cli, py = root / "c-cli", root / "c-api"
    assert sorted(p.name for p in cli.iterdir()) == sorted(p.name for p in py.iterdir())
    assert _untimed_csv(cli / "compare.csv") == _untimed_csv(py / "compare.csv")
    a, b = (json.loads((d / "compare.json").read_text()) for d in (cli, py))
    assert len(a["rows"]) == 4 and a["rows"] == b["rows"] and a["differences"] == b["differences"]


def test_benchmark_from_the_cli_and_the_api_trains_the_same_runs(pair: dict[str, Path], phantom32: Path) -> None:
    root = pair["root"]
    syn = root / "s-cli"
    if not syn.exists():
        api.synth(run=str(pair["api"]), classes="No Finding", n=6, out=str(syn))
    sets = {"model": "tiny", "epochs": 1, "plots": False, "bootstrap_draws": 100}
    _cli(["benchmark", "--data", str(phantom32), "--synthetic", f"cgan={syn}", "--seeds", "2", "--force",
          *[a for k, v in sets.items() for a in ("--set", f"{k}={str(v).lower()}")], "--out", str(root / "b-cli")])  # fmt: skip
    api.benchmark(str(phantom32), synthetic={"cgan": syn}, seeds=2, sets=sets, force=True, out=root / "b-api")
    cli, py = root / "b-cli", root / "b-api"
    for name in ("results.csv", "runs.csv"):
        rows = _untimed_csv(cli / name)
        assert rows and all(len(r) >= 3 for r in rows) and rows == _untimed_csv(py / name), name
    assert (cli / "verdicts.csv").read_text() == (py / "verdicts.csv").read_text()
    assert {r["arm"] for r in _untimed_csv(cli / "runs.csv")} >= {"real", "cgan"}
