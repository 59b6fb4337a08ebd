"""TensorBoard logging (`--set tensorboard=true`): installed by README's commands (the Makefile's
`tensorboard` extra), it writes each logged loss under the run's `tb` folder; without the
package the run is refused before any output, naming the extra (issue 34, item 4)."""

from __future__ import annotations

import sys

import pytest
from cli_helpers import run_main

from cxraug.config import TrainConfig
from cxraug.errors import UserError
from cxraug.trainchecks import check_runtime


def test_a_run_logs_its_losses_to_tensorboard(phantom32, tmp_path) -> None:
    from gen_helpers import tiny_run
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tiny_run("cgan", phantom32, tmp_path / "runs", steps=4, log_every=2, tensorboard=True)
    (events,) = {p.parent for p in (run / "tb").rglob("events.out.tfevents.*")}
    acc = EventAccumulator(str(events))
    acc.Reload()
    assert {"loss_d", "loss_g"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss_d")] == [2, 4]  # each logged step, as metrics.jsonl has it


def test_without_tensorboard_the_run_is_refused_naming_the_extra(
    phantom32, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"pip install 'cxraug\[tensorboard\]'"):
        check_runtime(TrainConfig(tensorboard=True))
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs"),
            "--steps", "2", "--set", "tensorboard=true"]  # fmt: skip
    code, _, err = run_main(argv, capsys)
    assert code == 2 and "tensorboard" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
