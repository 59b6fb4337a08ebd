"""One contract suite, run over every registered generator plugin on its tiny config."""

from __future__ import annotations

import io

import pytest
import torch
from accelerate import Accelerator

from cxraug import registry
from cxraug.errors import UserError
from cxraug.generator import DataSpec, Generator

PLUGINS = registry.available()
SPEC = DataSpec(classes=("No Finding", "Hernia", "Mass"), size=32)


def build(name: str, seed: int = 0) -> Generator:
    cls = registry.get(name)
    torch.manual_seed(0)
    return cls(cls.Config(**cls.tiny_config()), SPEC, seed=seed)


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 32, 32, generator=g) * 2 - 1, torch.randint(0, 3, (n,), generator=g)


def test_builtin_plugins_are_registered() -> None:
    assert {"cgan", "diffusion"} <= set(PLUGINS)


def test_unknown_plugin_lists_known() -> None:
    with pytest.raises(UserError, match=r"unknown generator plugin 'gan'; known: .*cgan"):
        registry.get("gan")


@pytest.mark.parametrize("name", PLUGINS)
def test_config_rejects_unknown_keys(name: str) -> None:
    cls = registry.get(name)
    with pytest.raises(Exception, match="no_such_key"):
        cls.Config(no_such_key=1)


@pytest.mark.parametrize("name", PLUGINS)
def test_train_step_sample_state_export(name: str, tmp_path, capsys) -> None:
    gen = build(name)
    acc = Accelerator(cpu=True)
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
    twin = build(name, seed=99)
    twin.setup(Accelerator(cpu=True))
    twin.load_state(state)
    a, b = gen.train_step(x, y, acc), twin.train_step(x, y, acc)
    assert a == b
    t1 = gen.sample(labels, generator=torch.Generator().manual_seed(3))
    t2 = twin.sample(labels, generator=torch.Generator().manual_seed(3))
    assert torch.equal(t1, t2)

    gen.export(tmp_path / "export")
    assert (tmp_path / "export" / "weights.safetensors").is_file()
    back = type(gen).from_export(tmp_path / "export")
    e1 = gen.sample(labels, generator=torch.Generator().manual_seed(5))
    e2 = back.sample(labels, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(e1, e2, atol=1e-6)
    assert capsys.readouterr().out == "", "plugins never print"


@pytest.mark.parametrize("name", PLUGINS)
def test_sample_options_reject_unknown(name: str) -> None:
    gen = build(name)
    with pytest.raises(Exception, match="bogus"):
        gen.parse_sample_options({"bogus": 1})
