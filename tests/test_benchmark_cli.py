"""Bad inputs to ``cxraug benchmark`` end with one line on stderr and exit code 2, before any
training starts."""

from __future__ import annotations

import pytest
from test_benchmark_support import make_synthetic_set

from cxraug.cli import main


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    captured = capsys.readouterr()
    return e.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def synthetic_sets(phantom32, tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    good = make_synthetic_set(root / "good", phantom32, {"Hernia": 20})
    other_classes = make_synthetic_set(root / "classes", phantom32, {"Hernia": 2}, classes=["No Finding", "Hernia"])
    other_size = make_synthetic_set(root / "size", phantom32, {"Hernia": 2}, size=64)
    leaky = make_synthetic_set(root / "leaky", phantom32, {"Hernia": 2}, splits=["train", "val", "test"])
    return {"good": good, "classes": other_classes, "size": other_size, "leaky": leaky}


CASES = {
    "unknown arm": (["--arms", "real,magic"], "unknown arm 'magic'"),
    "synthetic arm without set": (["--arms", "cgan"], "unknown arm 'cgan'"),
    "other classes": (["--synthetic", "cgan={classes}"], "has classes"),
    "other size": (["--synthetic", "cgan={size}"], "is 64px but"),
    "leaky generator": (["--synthetic", "cgan={leaky}"], "validation/test patients"),
    "missing synthetic dir": (["--synthetic", "cgan={tmp}/nowhere"], "does not exist"),
    "malformed synthetic": (["--synthetic", "cgan"], "is not NAME=VALUE"),
    "reserved synthetic name": (["--synthetic", "real={good}"], "not usable"),
    "synthetic name of a control": (["--synthetic", "copy={good}"], "not usable"),
    "synthetic name like a control": (["--synthetic", "noise-x={good}"], "not usable"),
    "a control named in --arms": (["--synthetic", "cgan={good}", "--arms", "real,cgan,noise"], "controls are added"),
    "no controls without a synthetic arm": (["--arms", "real,classic", "--no-controls"], "--no-controls"),
    "a step budget of 0": (["--set", "steps=0"], "steps"),
    "no validation checks": (["--set", "evaluations=0"], "evaluations"),
    "infinite learning rate": (["--set", "lr=.inf"], "finite"),
    "seed out of range": (["--seeds", "0,9223372036854775808"], "2^63"),
    "malformed imbalance": (["--controlled-imbalance", "Hernia"], "is not NAME=VALUE"),
    "imbalance not a number": (["--controlled-imbalance", "Hernia=few"], "whole number"),
    "imbalance unknown class": (["--controlled-imbalance", "Hernai=3"], "did you mean 'Hernia'"),
    "imbalance too large": (["--controlled-imbalance", "Hernia=999"], "only 8 images of Hernia"),
    "bad ratio": (["--synthetic", "cgan={good}", "--ratio", "lots"], "--ratio 'lots'"),
    "too few synthetic images": (["--synthetic", "cgan={good}", "--ratio", "x5"], "are needed"),
    "bad seeds": (["--seeds", "three"], "--seeds 'three'"),
    "unknown option": (["--set", "epoch=3"], "unknown option 'epoch'"),
    "unknown model": (["--set", "model=vgg99"], "unknown model 'vgg99'"),
    "missing weights": (["--set", "weights={tmp}/w.safetensors"], "does not exist"),
    "missing config": (["--config", "{tmp}/b.yaml"], "does not exist"),
    "export without imbalance": (["--export-reduced", "{tmp}/reduced"], "needs --controlled-imbalance"),
    "unknown spread": (["--spread", "gpus"], "--spread 'gpus': choose runs"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(case, phantom32, synthetic_sets, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    extra, expected = CASES[case]
    fill = {**{k: str(v) for k, v in synthetic_sets.items()}, "tmp": str(tmp_path)}
    argv = ["benchmark", "--data", str(phantom32), "--out", str(tmp_path / "out"), "--set", "model=tiny"]
    argv += [a.format(**fill) for a in extra]
    code, _, err = _run(argv, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err
    assert not (tmp_path / "out" / "runs").exists()  # refused before any training


def test_missing_data_dir(tmp_path, capsys):
    code, _, err = _run(["benchmark", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not exist" in err


def test_out_that_is_not_a_benchmark_folder_is_refused(phantom32, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    for extra in ([], ["--overwrite"]):
        code, _, err = _run(["benchmark", "--data", str(phantom32), "--out", str(out), *extra], capsys)
        assert code == 2 and "not a benchmark output folder" in err
    assert (out / "thesis.tex").read_text() == "precious"


def test_help_lists_every_option(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    out = capsys.readouterr().out
    for opt in ("--data", "--synthetic", "--arms", "--seeds", "--ratio", "--out", "--config", "--set",
                "--controlled-imbalance", "--overwrite", "--spread"):  # fmt: skip
        assert opt in out
