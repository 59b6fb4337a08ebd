"""Short mode of the kill-anywhere suite (tests/killsuite.py): each stage is SIGKILLed once at a
random moment of its writing, what it left is checked, and a rerun as a user would make it
(``--resume`` for train-gen, the same command otherwise) must equal a straight run.

The straight run and the rerun go in-process (no interpreter start-up); only the killed
run is a real process. benchmarks/kill_anywhere.py runs many kills per stage."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from killsuite import STAGES, cli_inprocess, kill_once, make_inputs, straight


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXRAUG_THREADS", "1")
        return make_inputs(tmp_path_factory.mktemp("kill") / "inputs")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STAGES))
def test_sigkill_then_rerun_equals_a_straight_run(name: str, inputs: Path, tmp_path: Path, monkeypatch) -> None:
    if name == "score":
        from cxraug.errors import UserError
        from cxraug.metrics.inception import locate_inception_weights

        try:
            locate_inception_weights()
        except UserError as e:
            pytest.skip(str(e))
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    stage = STAGES[name]
    (tmp_path / "straight").mkdir()
    reference, seconds = straight(stage, inputs, tmp_path / "straight", cli_inprocess)
    # A third of the in-process time: the killed process, which also starts an interpreter,
    # is then still writing when the kill comes.
    trial = kill_once(stage, inputs, tmp_path / "killed", reference, seconds / 3, random.Random(name), cli_inprocess)
    assert trial.kill_at_s is not None, "the stage finished before the kill; nothing was tested"
    assert trial.survived, trial.problems
