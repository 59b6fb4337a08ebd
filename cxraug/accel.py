"""The one place that builds Accelerate's objects, for every command.

Each caller states its rules as arguments instead of building its own ``Accelerator``:
``train-gen`` (mixed precision, tensorboard under the run), ``benchmark`` (a long barrier
timeout for ``--spread`` runs), ``synth`` (the process state alone), the reference classifier
(float32 on one device: :class:`OneDevice`, never an Accelerator, whose state is one per
process and would inherit a calling run's mixed precision).

Without CUDA Accelerate must be told it is on the CPU: only then do the processes of
``torchrun`` / ``accelerate launch`` join over gloo (else each would think itself alone, and
main).

What training code may call on an accelerator is typed here: :class:`Trainer` (a real
``Accelerator`` or its one stand-in, :class:`OneDevice`) and
:class:`RunAccelerator` (what a generator's training loop calls; always a real ``Accelerator``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from accelerate.state import PartialState
    from torch.utils.data import DataLoader

MixedPrecision = Literal["no", "fp16", "bf16"]


@runtime_checkable
class Trainer(Protocol):
    """What the classifier's fit and the benchmark's runs call on an accelerator: Accelerate's
    ``Accelerator`` has these, and so does each stand-in used where one does not fit."""

    @property
    def device(self) -> torch.device: ...
    @property
    def num_processes(self) -> int: ...
    @property
    def process_index(self) -> int: ...
    @property
    def is_main_process(self) -> bool: ...
    def prepare(self, *objects: Any) -> Any: ...  # Any: models, optimizers and loaders, as given
    def backward(self, loss: torch.Tensor, /) -> None: ...
    def autocast(self) -> AbstractContextManager: ...
    def gather_for_metrics(self, tensors: Any, /) -> Any: ...  # Any: a tensor or a tuple of them
    def unwrap_model(self, model: torch.nn.Module, /) -> torch.nn.Module: ...
    def free_memory(self) -> object: ...


@runtime_checkable
class RunAccelerator(Trainer, Protocol):
    """What a generator plugin's ``setup``/``train_step`` and train-gen's loop also call:
    collectives, clipping and trackers (a real ``Accelerator``; no stand-in has them)."""

    def wait_for_everyone(self) -> None: ...
    def reduce(self, tensor: torch.Tensor, /, reduction: str = ...) -> torch.Tensor: ...
    def clip_grad_norm_(self, parameters: Iterable[torch.nn.Parameter], /, max_norm: float) -> object: ...
    def log(self, values: dict, /, step: int | None = ...) -> None: ...
    def init_trackers(self, project_name: str, /) -> None: ...
    def end_training(self) -> None: ...


def check_mixed_precision(mixed_precision: str, said: str, force_cpu: bool = False) -> None:
    """Mixed precision needs a GPU: every command refuses it on the CPU, before any output
    exists (``said``: the setting as the user wrote it, e.g. ``--mixed-precision bf16``)."""
    from cxraug.errors import UserError

    if mixed_precision != "no" and use_cpu(force_cpu):
        raise UserError(f"{said} needs a GPU; on the CPU use `no`")


def use_cpu(force_cpu: bool = False) -> bool:
    import torch

    return force_cpu or not torch.cuda.is_available()


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto``/None, ``cpu``, ``cuda`` or ``cuda:N`` -> a device this machine has; else one line
    (checked before any work: every command with --device resolves it here)."""
    import torch

    from cxraug.errors import UserError
    from cxraug.fsutil import short

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"--device {short(device, 60)!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise UserError(f"--device {short(device, 60)!r}: cxraug runs on auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0")
    return dev


def process_state() -> PartialState:
    """Accelerate's per-process state (rank, world, device) without an Accelerator."""
    from accelerate import PartialState

    return PartialState(cpu=use_cpu())


@overload
def make_accelerator(
    *,
    mixed_precision: MixedPrecision = ...,
    force_cpu: bool = ...,
    project_dir: Path | None = ...,
    tensorboard: bool = ...,
    barrier_hours: float | None = ...,
    one_device: None = ...,
) -> Accelerator: ...
@overload
def make_accelerator(*, mixed_precision: Literal["no"] = ..., one_device: torch.device) -> OneDevice: ...
def make_accelerator(
    *,
    mixed_precision: MixedPrecision = "no",
    force_cpu: bool = False,
    project_dir: Path | None = None,
    tensorboard: bool = False,
    barrier_hours: float | None = None,
    one_device: torch.device | None = None,
) -> Accelerator | OneDevice:
    """An Accelerator with the caller's rules, or (``one_device``) a :class:`OneDevice`.

    ``project_dir``: where tensorboard logs go (its ``tb`` folder); ``barrier_hours``: how long
    a process may wait for the others at a barrier (default: Accelerate's)."""
    if one_device is not None:
        if mixed_precision != "no":
            raise ValueError("one_device trains in float32 only")
        return OneDevice(one_device)
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs, ProjectConfiguration

    kwargs: dict[str, Any] = {}
    if project_dir is not None:
        kwargs["project_config"] = ProjectConfiguration(
            project_dir=str(project_dir), logging_dir=str(project_dir / "tb")
        )
    if tensorboard:
        kwargs["log_with"] = "tensorboard"
    if barrier_hours is not None:
        from datetime import timedelta

        kwargs["kwargs_handlers"] = [InitProcessGroupKwargs(timeout=timedelta(hours=barrier_hours))]
    return Accelerator(cpu=use_cpu(force_cpu), mixed_precision=mixed_precision, **kwargs)


class OneDevice:
    """The one stand-in for Accelerate: a :class:`Trainer` that trains alone on one device (one
    process, nothing joined, nothing gathered from others). Two uses:

    - ``OneDevice(device)``: full float32 with no Accelerator behind it, for helper trainings run
      inside another command (the reference classifier inside ``train-gen``): Accelerate's state
      is one per process, so a new ``Accelerator()`` there would inherit the run's mixed
      precision, and the helper's weights would depend on who trained it first.
    - ``OneDevice.within(accelerator)``: a launched Accelerator's device, mixed precision,
      autocast and backward without the parts that join processes (models are not wrapped in
      DDP, loaders are not sharded), for the benchmark's ``--spread runs``: the other
      processes train other runs meanwhile."""

    num_processes, process_index, is_main_process = 1, 0, True

    def __init__(self, device: torch.device, launched: Accelerator | None = None) -> None:
        self.device, self._acc = device, launched

    @classmethod
    def within(cls, accelerator: Accelerator) -> OneDevice:
        return cls(accelerator.device, launched=accelerator)

    def prepare(self, *objs: Any) -> Any:
        out = tuple(self._prepare(o) for o in objs)
        return out if len(out) > 1 else out[0]

    def _prepare(self, obj: Any) -> Any:
        import torch
        from torch.utils.data import DataLoader

        if self._acc is None:
            if isinstance(obj, DataLoader):
                return _OnDevice(obj, self.device)
            return obj.to(self.device) if isinstance(obj, torch.nn.Module) else obj
        if isinstance(obj, torch.nn.Module):  # placed and autocast, never DDP-wrapped
            return self._acc.prepare_model(obj, evaluation_mode=True)
        if isinstance(obj, torch.optim.Optimizer):
            return self._acc.prepare_optimizer(obj)
        if isinstance(obj, DataLoader):  # every batch, on this device, as Accelerate prepares it
            from accelerate.data_loader import prepare_data_loader

            return prepare_data_loader(obj, self.device, num_processes=1, process_index=0, put_on_device=True)
        raise TypeError(f"OneDevice.prepare cannot prepare a {type(obj).__name__}")

    def backward(self, loss: torch.Tensor) -> None:
        if self._acc is None:
            loss.backward()
        else:  # the launched accelerator's gradient scaler (fp16)
            self._acc.backward(loss)

    def autocast(self) -> AbstractContextManager:
        return contextlib.nullcontext() if self._acc is None else self._acc.autocast()

    def gather_for_metrics(self, tensors: Any) -> Any:
        return tensors

    def unwrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model if self._acc is None else self._acc.unwrap_model(model)

    def free_memory(self) -> None:
        if self._acc is not None:
            self._acc.free_memory()


class _OnDevice:
    """A DataLoader whose batches arrive on a device (as Accelerate's prepared loaders do)."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader, self.device, self.dataset = loader, device, loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield tuple(t.to(self.device, non_blocking=True) for t in batch)
