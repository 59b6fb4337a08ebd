"""cxraug.accel is the one place for accelerators: one typed interface for Accelerate and its
stand-ins, and one mixed-precision rule for every command (issue 36, item 2)."""

from __future__ import annotations

import pytest
import torch

from cxraug.accel import OneDevice, RunAccelerator, Trainer, make_accelerator
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.benchmark.runner import _make_accelerator
from cxraug.config import TrainConfig
from cxraug.errors import UserError
from cxraug.train import check_runtime


def test_accelerate_and_its_one_stand_in_are_trainers() -> None:
    real = make_accelerator(force_cpu=True)
    one_device = make_accelerator(one_device=torch.device("cpu"))
    assert isinstance(one_device, OneDevice)
    for acc in (real, one_device, OneDevice.within(real)):
        assert isinstance(acc, Trainer), type(acc).__name__
        assert acc.device.type == "cpu" and acc.num_processes == 1 and acc.is_main_process
    # what a generator's training loop calls (collectives, clipping, trackers) only Accelerate has
    assert isinstance(real, RunAccelerator)
    assert not isinstance(one_device, RunAccelerator) and not isinstance(OneDevice.within(real), RunAccelerator)


def test_the_protocol_check_is_not_vacuous() -> None:
    class NoBackward:
        device, num_processes, process_index, is_main_process = torch.device("cpu"), 1, 0, True

        def prepare(self, *objects):
            return objects

    assert not isinstance(NoBackward(), Trainer)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_a_cpu_is_refused_alike_by_train_gen_and_benchmark(
    precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule (cxraug.accel.check_mixed_precision): mixed precision needs a GPU. The benchmark
    once let bf16 through on a CPU while train-gen refused it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    answers = []
    for check, said in (
        (lambda: check_runtime(TrainConfig(mixed_precision=precision)), f"--mixed-precision {precision}"),
        (lambda: _make_accelerator(BenchmarkConfig(mixed_precision=precision)), f"mixed_precision={precision}"),
    ):
        with pytest.raises(UserError) as e:
            check()
        assert str(e.value) == f"{said} needs a GPU; on the CPU use `no`"
        answers.append(str(e.value).removeprefix(said))
    assert answers[0] == answers[1]
    check_runtime(TrainConfig(mixed_precision="no"))  # float32 is fine anywhere


def test_benchmark_cpu_setting_forces_the_rule_on_a_gpu_machine() -> None:
    """``cpu: true`` runs on the CPU even where a GPU is present, so bf16 is refused there too."""
    with pytest.raises(UserError, match="needs a GPU"):
        _make_accelerator(BenchmarkConfig(mixed_precision="bf16", cpu=True))


def test_there_is_one_stand_in_for_accelerate() -> None:
    """Issue 36, item 2: the benchmark's runs-spread stand-in and the reference classifier's
    float32 one are one class in cxraug/accel.py; no other module defines one."""
    import ast
    from pathlib import Path

    import cxraug

    root = Path(cxraug.__file__).parent
    stand_ins = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not any("Protocol" in ast.unparse(b) for b in node.bases):
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
                if {"prepare", "backward", "autocast"} <= methods:
                    stand_ins.append(f"{path.relative_to(root)}:{node.name}")
    assert stand_ins == ["accel.py:OneDevice"]


def test_within_a_launched_accelerator_trains_alone_with_its_rules() -> None:
    """OneDevice.within: the launched accelerator's device and backward, models never wrapped,
    every batch of a loader (not a shard) on the device."""
    from torch.utils.data import DataLoader, TensorDataset

    real = make_accelerator(force_cpu=True)
    one = OneDevice.within(real)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.randn(10, 3), torch.randn(10, 1)), batch_size=4)
    m, opt, dl = one.prepare(model, opt, loader)
    assert one.unwrap_model(m) is model
    batches = list(dl)
    assert sum(len(b[0]) for b in batches) == 10 and batches[0][0].device == real.device
    with one.autocast():
        loss = ((m(batches[0][0]) - batches[0][1]) ** 2).mean()
    one.backward(loss)
    assert model.weight.grad is not None
    before = model.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.weight)
    with pytest.raises(TypeError, match="cannot prepare"):
        one.prepare(object())
