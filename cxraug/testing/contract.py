"""The checks every generator plugin passes, on its tiny config and a 32 px, 3-class spec.

Plain functions raising AssertionError, so they need no test runner; ``GeneratorContract``
turns them into pytest test methods. Nothing here imports pytest (a dev-only dependency).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch

from cxraug.accel import make_accelerator
from cxraug.generator import DataSpec, Generator

SPEC = DataSpec(classes=("No Finding", "Hernia", "Mass"), size=32)


def build(cls: type[Generator], seed: int = 0) -> Generator:
    torch.manual_seed(0)  # as the core does: the same initial weights whatever the seed
    return cls(cls.Config(**cls.tiny_config()), SPEC, seed=seed)


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 32, 32, generator=g) * 2 - 1, torch.randint(0, 3, (n,), generator=g)


def _raises_naming(fn: Callable[[], object], word: str, what: str) -> None:
    try:
        fn()
    except Exception as e:
        assert word in str(e), f"{what}: the error does not name {word!r}: {e}"
        return
    raise AssertionError(f"{what}: accepted without an error")


def check_config_rejects_unknown_keys(cls: type[Generator]) -> None:
    """Config is a PluginConfig: a misspelt key is an error naming it, not silently ignored."""
    _raises_naming(lambda: cls.Config(no_such_key=1), "no_such_key", "an unknown config key")


def check_train_step_sample_state_export(cls: type[Generator], directory: Path) -> None:
    """A step returns finite floats; samples have the documented shape, dtype and range and
    follow the generator's seed; state() survives the checkpoint path and a copy built with
    another seed that loads it takes the identical next step (exact resume: it fails when
    state() leaves out self.rng); export + from_export samples alike; nothing is printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _train_step_sample_state_export(cls, Path(directory))
    assert out.getvalue() == "", "plugins never print"


def _train_step_sample_state_export(cls: type[Generator], directory: Path) -> None:
    gen = build(cls)
    acc = make_accelerator(force_cpu=True)  # as train-gen builds it, on the CPU in float32
    gen.setup(acc)
    x, y = batch()
    losses = gen.train_step(x, y, acc)
    assert losses and all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values())

    labels = torch.tensor([0, 1, 2, 1])
    s1 = gen.sample(labels, generator=torch.Generator().manual_seed(3))
    s2 = gen.sample(labels, generator=torch.Generator().manual_seed(3))
    s3 = gen.sample(labels, generator=torch.Generator().manual_seed(4))
    assert s1.shape == (4, 1, 32, 32) and s1.dtype == torch.float32
    assert s1.min() >= -1.0001 and s1.max() <= 1.0001
    assert torch.equal(s1, s2), "same seed must give the same images"
    assert not torch.equal(s1, s3), "another seed must give other images"

    # state() round trip, through the checkpoint path (torch.save, weights_only load): a
    # restored copy takes the identical next step.
    buf = io.BytesIO()
    torch.save(gen.state(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    twin = build(cls, seed=99)
    twin.setup(make_accelerator(force_cpu=True))
    twin.load_state(state)
    a, b = gen.train_step(x, y, acc), twin.train_step(x, y, acc)
    assert a == b
    t1 = gen.sample(labels, generator=torch.Generator().manual_seed(3))
    t2 = twin.sample(labels, generator=torch.Generator().manual_seed(3))
    assert torch.equal(t1, t2)

    gen.export(directory / "export")
    assert (directory / "export" / "weights.safetensors").is_file()
    back = cls.from_export(directory / "export")
    e1 = gen.sample(labels, generator=torch.Generator().manual_seed(5))
    e2 = back.sample(labels, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(e1, e2, atol=1e-6)


def check_sample_options_reject_unknown(cls: type[Generator]) -> None:
    """SampleOptions rejects a misspelt ``synth --set`` key, naming it."""
    gen = build(cls)
    _raises_naming(lambda: gen.parse_sample_options({"bogus": 1}), "bogus", "an unknown sampling option")


def run_contract(cls: type[Generator], directory: Path | None = None) -> None:
    """Every check on ``cls``, outside pytest; the first failure raises AssertionError."""
    with contextlib.ExitStack() as stack:
        where = directory if directory is not None else stack.enter_context(tempfile.TemporaryDirectory())
        check_config_rejects_unknown_keys(cls)
        check_train_step_sample_state_export(cls, Path(where))
        check_sample_options_reject_unknown(cls)


class GeneratorContract:
    """Subclass in a pytest file (named ``Test...``) and set ``plugin``."""

    plugin: ClassVar[str | type[Generator]]

    def plugin_class(self) -> type[Generator]:
        if isinstance(self.plugin, str):
            from cxraug import registry

            return registry.get(self.plugin)
        return self.plugin

    def test_config_rejects_unknown_keys(self) -> None:
        check_config_rejects_unknown_keys(self.plugin_class())

    def test_train_step_sample_state_export(self, tmp_path: Path) -> None:
        check_train_step_sample_state_export(self.plugin_class(), tmp_path)

    def test_sample_options_reject_unknown(self) -> None:
        check_sample_options_reject_unknown(self.plugin_class())
