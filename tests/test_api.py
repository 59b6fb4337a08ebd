"""cxraug.api: str paths accepted, the CLI and the API give the same outputs for the same inputs,
the CLI's thread setup, and the warnings a user would want (each from the API and the CLI)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from gen_helpers import phantom_prepare_argv, tiny_run
from PIL import Image
from test_score_support import PixelProjection, train_images, write_synthetic_set
from typer.testing import CliRunner

from cxraug import api
from cxraug.cli import app
from cxraug.data.prepared import open_prepared
from cxraug.errors import UserError

runner = CliRunner()


@pytest.fixture
def cheap_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the Inception network (and its weights lookup) by a fast pixel projection."""
    from cxraug.metrics import features, inception

    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: PixelProjection(32))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, phantom32: Path) -> Path:
    return tiny_run("cgan", phantom32, tmp_path_factory.mktemp("runs"), steps=2)


def _few_class(run: Path) -> tuple[str, int]:
    """A class the run's generator saw between 1 and 9 training images of (the phantom has some)."""
    counts = json.loads((run / "config.json").read_text())["data"]["counts_train"]
    name, k = min(((c, k) for c, k in counts.items() if 0 < k < api.FEW_TRAINING_IMAGES), key=lambda x: x[1])
    return name, k


def test_documented_prepare_takes_str_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The call of docs/prepare.md with str paths (it crashed: 'str' object has no attribute 'is_file')."""
    from cxraug.data.prepare import PrepareConfig
    from cxraug.data.sources.phantom import render

    monkeypatch.chdir(tmp_path)
    Path("xrays").mkdir()
    rows = ["file,label,patient"]
    for i in range(24):
        label = ("Effusion", "No Finding", "Mass")[i % 3]
        Image.fromarray(render(label, 40, seed=i)).save(f"xrays/img{i:02d}.png")
        rows.append(f"img{i:02d}.png,{label},p{i // 2}")
    Path("labels.csv").write_text("\n".join(rows) + "\n")
    cfg = PrepareConfig(source="folder", data_dir="xrays", out="data/f32", size=32, labels="labels.csv", workers=1)
    result = api.prepare(cfg)
    assert result.out == Path("data/f32") and open_prepared("data/f32").size == 32
    assert sum(sum(c.values()) for c in result.meta["counts"].values()) == 24
    again = api.prepare(source="folder", data_dir="xrays", out="data/g32", size=32, labels="labels.csv", workers=1)
    assert again.meta["counts"] == result.meta["counts"]
    with pytest.raises(UserError, match="PrepareConfig has no option sizes"):
        api.prepare(source="sample", out="x", sizes=32)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _dataset_json(root: Path) -> dict:
    meta = json.loads((root / "dataset.json").read_text())
    meta.pop("seconds")  # timing
    meta["options"].pop("out")  # where it was written
    return meta


def test_cli_and_api_prepare_the_same_dataset(tmp_path: Path) -> None:
    res = runner.invoke(app, phantom_prepare_argv(tmp_path / "cli"))
    assert res.exit_code == 0, res.output
    api.prepare(source="phantom", n=180, size=32, workers=1, out=str(tmp_path / "api"))
    cli, py = _tree(tmp_path / "cli"), _tree(tmp_path / "api")
    assert set(cli) == set(py) and len(cli) >= 8
    for name in cli:
        if name != "dataset.json":
            assert cli[name] == py[name], name
    assert _dataset_json(tmp_path / "cli") == _dataset_json(tmp_path / "api")


def test_cli_and_api_score_the_same(tmp_path: Path, phantom32: Path, cheap_extractor) -> None:
    imgs = {"No Finding": train_images(phantom32, "No Finding", 30)}
    syn = write_synthetic_set(tmp_path / "syn", imgs, open_prepared(phantom32).classes, phantom32)
    common = ["--images", str(syn), "--data", str(phantom32), "--min-images", "10", "--classes", "No Finding"]
    res = runner.invoke(app, ["score", *common, "--out", str(tmp_path / "cli"), "--json"])
    assert res.exit_code == 0, res.output
    scores = api.score(images=syn, data=str(phantom32), min_images=10, classes="No Finding", out=tmp_path / "api")
    assert scores.out == tmp_path / "api" and list(scores.table["class"]) == ["No Finding", "all"]
    cli, py = _tree(tmp_path / "cli"), _tree(tmp_path / "api")
    assert set(cli) == set(py) and "scores.csv" in cli
    assert cli["scores.csv"] == py["scores.csv"]  # no timing columns in it
    assert cli["memorization.csv"] == py["memorization.csv"]
    from_cli = json.loads(res.stdout)
    assert from_cli["rows"] == json.loads(py["scores.json"])["rows"] == scores.result.to_json()["rows"]


def test_api_sets_threads_as_the_cli_does(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("CXRAUG_THREADS", "1")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        syn = api.synth(run=str(run), classes="No Finding", n=2, out=str(tmp_path / "s"))
        assert torch.get_num_threads() == 1 and syn.root == tmp_path / "s"
        monkeypatch.setenv("CXRAUG_THREADS", "two")
        with pytest.raises(UserError, match="CXRAUG_THREADS='two' is not a number of threads"):
            api.synth(run=run, classes="No Finding", n=2, out=tmp_path / "t")
    finally:
        torch.set_num_threads(before)


# --- warnings ----------------------------------------------------------------------------------


def test_prepare_warns_at_a_size_no_plugin_trains(tmp_path: Path) -> None:
    with pytest.warns(api.CxraugWarning, match="no installed generator plugin trains 48 px images"):
        api.prepare(source="phantom", n=180, size=48, workers=1, out=tmp_path / "a")
    argv = phantom_prepare_argv(tmp_path / "b")
    res = runner.invoke(app, [*argv[:-4], "--size", "48", *argv[-2:]])
    assert res.exit_code == 0 and "warning: no installed generator plugin trains 48 px" in res.stderr
    assert "cgan: 32, 64, 128, 256" in res.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("error", api.CxraugWarning)
        api.prepare(source="phantom", n=180, size=32, workers=1, out=tmp_path / "c")  # 32 px: no warning


def test_synth_warns_on_a_class_with_few_training_images(run: Path, tmp_path: Path) -> None:
    name, k = _few_class(run)
    with pytest.warns(
        api.CxraugWarning, match=f"the generator saw fewer than 10 training images of .*{name} \\({k}\\)"
    ):
        api.synth(run=run, classes=name, n=2, out=tmp_path / "a")
    res = runner.invoke(app, ["synth", "--run", str(run), "--class", name, "-n", "2", "--out", str(tmp_path / "b")])
    assert (
        res.exit_code == 0
        and f"{name} ({k})" in res.stderr
        and "warning: the generator saw fewer than 10" in res.stderr
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", api.CxraugWarning)
        api.synth(run=run, classes="No Finding", n=2, out=tmp_path / "c")  # plenty of images: no warning


def test_benchmark_warns_on_a_class_with_few_training_images(run: Path, tmp_path: Path, phantom32: Path) -> None:
    name, k = _few_class(run)
    syn = api.synth(run=run, classes=name, n=2, out=tmp_path / "syn", warn=lambda _: None)

    class Said(Exception):
        pass

    def stop(message: str) -> None:
        raise Said(message)

    with pytest.raises(
        Said, match=f"--synthetic gen: the generator saw fewer than 10 training images of {name} \\({k}\\)"
    ):  # said before training
        api.benchmark(phantom32, synthetic={"gen": syn.root}, out=tmp_path / "bench", warn=stop)


def test_score_warns_when_the_default_n_takes_long(
    run: Path, tmp_path: Path, phantom32: Path, cheap_extractor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxraug import api_score

    monkeypatch.setattr(api_score, "measure_img_per_s", lambda extractor, size, n=8: 2.0)  # a slow CPU
    # ... and no bound that skips the timing, whatever CXRAUG_THREADS says
    monkeypatch.setattr(api_score, "FASTEST_IMG_PER_S_PER_THREAD", 2.0)

    class Said(Exception):
        pass

    def stop(message: str) -> None:
        raise Said(message)

    with pytest.raises(Said, match=r"about \d+ minutes .* at the 2 img/s measured here; lower it with --n"):
        api.score(run=run, out=tmp_path / "a", warn=stop)  # said before sampling 1,000 images per class
    seen: list[str] = []
    api.score(run=run, n=10, classes="No Finding", min_images=10, out=tmp_path / "b", warn=seen.append)
    assert seen == []  # an n the user chose is not second-guessed
    res = runner.invoke(app, ["score", "--run", str(run), "--classes", "No Finding", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "warning: scoring samples 1,000 images per class x 1 class(es)" in res.stderr


def test_score_against_the_training_images_is_labelled(tmp_path: Path, phantom32: Path, cheap_extractor) -> None:
    imgs = {"No Finding": train_images(phantom32, "No Finding", 30)}
    syn = write_synthetic_set(tmp_path / "syn", imgs, open_prepared(phantom32).classes, phantom32)
    res = runner.invoke(
        app,
        ["score", "--images", str(syn), "--split", "train", "--classes", "No Finding", "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "train (against the training images: also measures memorization)" in text
    assert "scored against the training images: also measures memorization" in text


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda d: api.train_gen(plugin="cgan", data=5, steps=2, plan_only=True), "data must be a str or Path"),
        (lambda d: api.train_gen(plugin="cgan", data=d, steps=2, sets=[1], plan_only=True), "sets: give a dict"),
        (lambda d: api.synth(run="nope", classes="No Finding", n="x"), "n must be a whole number"),
        (lambda d: api.synth(run=3, classes="No Finding", n=5), "run must be a str or Path"),
        (lambda d: api.compare("runs/00001-cgan", plan_only=True), "compare takes a list of runs"),
        (lambda d: api.compare(["a", 7], plan_only=True), "each run must be a str or Path"),
        (lambda d: api.benchmark(d, out=3, plan_only=True), "out must be a str or Path"),
        (lambda d: api.report_run(3), "run must be a str or Path"),
        (lambda d: api.report(None, "x.html"), "report needs a benchmark folder"),
        (lambda d: api.report(7, "x.html"), "benchmark must be a str or Path"),
        (lambda d: api.study(data=d, rare="x", sizes=[1], gen_steps=1, out=5, plan_only=True), "out must be a str"),
        (
            lambda d: api.study(data=d, rare="No Finding", sizes=[1], gen_steps=1, out="s", shard=1, plan_only=True),
            "shard must be a str",
        ),
    ],
)
def test_wrong_types_are_a_user_error_not_a_traceback(
    call, says: str, phantom32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=says):
        call(phantom32)
    assert list(tmp_path.iterdir()) == []  # nothing written
