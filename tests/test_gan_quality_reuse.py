"""benchmarks/gan_quality.py reuses a stored result, or resumes a stored run, only when it was
made with the same settings: a result stored under a --name is otherwise reported as the new
settings' numbers (the screens reuse names across datasets and recipes)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from bench_helpers import load_benchmark


@pytest.fixture
def gq(monkeypatch):
    module = load_benchmark("gan_quality")
    monkeypatch.setattr(module, "data_identity", lambda data: f"fingerprint of {Path(data).name}")
    return module


DATA = Path("data") / "pmnist32"


def _args(**kw) -> argparse.Namespace:
    base = {"dataset": "pmnist32", "split": "val", "n": 135, "match_real": False, "seeds": [0], "metrics": ["fid"]}
    return argparse.Namespace(**{**base, **kw})


def test_a_result_is_reused_only_under_the_settings_it_was_made_with(gq, tmp_path: Path) -> None:
    path, made = tmp_path / "results" / "val" / "cgan-10min.json", []

    def make() -> dict:
        made.append(1)
        return {"rows": {"all": {"fid": 1.0}}}

    first = gq.stage(path, make, gq.scoring(_args(), DATA, sets=["aug_p=0.3"], minutes=10.0))
    again = gq.stage(path, make, gq.scoring(_args(), DATA, sets=["aug_p=0.3"], minutes=10.0))
    assert made == [1] and first == again and again["settings"]["sets"] == ["aug_p=0.3"]
    for other in (_args(dataset="nih32"), _args(seeds=[0, 1, 2]), _args(match_real=True)):
        with pytest.raises(SystemExit) as e:
            gq.stage(path, make, gq.scoring(other, DATA, sets=["aug_p=0.3"], minutes=10.0))
        assert "made with other settings" in str(e.value) and "give another --name" in str(e.value)
    with pytest.raises(SystemExit, match=r"sets: \['aug_p=0.3'\] there, \['aug_p=0.5'\] now"):
        gq.stage(path, make, gq.scoring(_args(), DATA, sets=["aug_p=0.5"], minutes=10.0))
    with pytest.raises(SystemExit, match="data: 'fingerprint of pmnist32' there, 'fingerprint of other' now"):
        gq.stage(path, make, gq.scoring(_args(), Path("other"), sets=["aug_p=0.3"], minutes=10.0))
    path.write_text(json.dumps({"rows": {}}))  # stored before settings were recorded
    with pytest.raises(SystemExit, match="not recorded"):
        gq.stage(path, make, gq.scoring(_args(), DATA, sets=["aug_p=0.3"], minutes=10.0))
    assert made == [1]


def test_a_stored_run_is_resumed_only_with_the_settings_it_was_started_with(gq, tmp_path: Path, monkeypatch) -> None:
    calls: list[tuple] = []

    def fake_cxraug(*args: str, threads: int) -> None:
        calls.append(args)
        if args[0] == "train-gen" and "--resume" not in args:
            (Path(args[args.index("--out") + 1]) / "00000-cgan-data").mkdir()

    monkeypatch.setattr(gq, "cxraug", fake_cxraug)
    runs, data = tmp_path / "runs" / "v", tmp_path / "data"
    run = gq.train(data, runs, "cgan", 10, ["lecam=0.1"], 1, rate=400.0)
    assert gq.train(data, runs, "cgan", 20, ["lecam=0.1"], 1, rate=400.0) == run
    assert calls[1][:3] == ("train-gen", "--resume", str(run)) and "8000" in calls[1]
    with pytest.raises(SystemExit, match="seed: 0 there, 1 now"):
        gq.train(data, runs, "cgan", 20, ["lecam=0.1"], 1, rate=400.0, seed=1)
    with pytest.raises(SystemExit, match="sets"):
        gq.train(data, runs, "cgan", 20, [], 1, rate=400.0)
    with pytest.raises(SystemExit, match="data: 'fingerprint of data' there, 'fingerprint of other' now"):
        gq.train(tmp_path / "other", runs, "cgan", 20, ["lecam=0.1"], 1, rate=400.0)
    assert len(calls) == 2
