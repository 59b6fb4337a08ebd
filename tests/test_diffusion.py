"""The diffusion plugin: sampler wiring (oracle), guidance, determinism, training, resume, export."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from torch import nn

from cxraug.errors import UserError
from cxraug.generator import DataSpec

pytest.importorskip("diffusers")

from cxraug_diffusion import Diffusion, DiffusionConfig, DiffusionSampleOptions
from cxraug_diffusion.sampling import denoise, guided, make_scheduler

CLASSES = ("No Finding", "Effusion", "Hernia")
SPEC = DataSpec(classes=CLASSES, size=32)
TINY = {**Diffusion.tiny_config(), "lr": 2e-3, "lr_warmup_steps": 0}


def tiny(seed: int = 0, **overrides: object) -> Diffusion:
    torch.manual_seed(seed)  # initial weights (the core loop seeds the same way)
    return Diffusion(DiffusionConfig(**{**TINY, **overrides}), SPEC, seed=seed)


@pytest.fixture(scope="module")
def accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)


def batch(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # smooth images (a blurred blob per class) so the tiny UNet has something learnable
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    labels = torch.arange(n) % len(CLASSES)
    centres = (labels.float() - 1) * 0.5
    imgs = torch.exp(-((xx - centres[:, None, None]) ** 2 + yy**2) * 4) * 1.6 - 0.8
    return (imgs[:, None] + 0.01 * torch.randn(n, 1, 32, 32, generator=g)).clamp(-1, 1), labels


# --- sampler wiring with an oracle model -------------------------------------------------------
class Oracle(nn.Module):
    """Returns the exact noise (or v) of x_t for a known clean image x0: a perfect denoiser."""

    def __init__(self, x0: torch.Tensor, alphas_cumprod: torch.Tensor, prediction_type: str) -> None:
        super().__init__()
        self.x0, self.abar, self.kind = x0, alphas_cumprod, prediction_type
        self.dummy = nn.Parameter(torch.zeros(()))  # gives the module a device
        self.calls: list[tuple[int, torch.Tensor]] = []

    def forward(self, x, t, class_labels=None, return_dict=True):
        self.calls.append((x.shape[0], class_labels.clone()))
        a = self.abar[t.long()].view(-1, 1, 1, 1)
        x0 = self.x0.repeat(x.shape[0] // self.x0.shape[0], 1, 1, 1)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        out = eps if self.kind == "epsilon" else a.sqrt() * eps - (1 - a).sqrt() * x0
        return (out,)


def known_image(n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.rand(n, 1, 32, 32, generator=g) * 1.8 - 0.9


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize(
    ("sampler", "steps"), [("ddim", 50), ("ddim", 10), ("dpmsolver++", 20), ("dpmsolver++", 8), ("ddpm", 100)]
)
def test_oracle_sampling_recovers_the_image(sampler: str, steps: int, prediction_type: str) -> None:
    gen = tiny(prediction_type=prediction_type)
    x0 = known_image()
    gen.ema.model = Oracle(x0, gen.noise_scheduler.alphas_cumprod, prediction_type)
    opts = gen.parse_sample_options({"sampler": sampler, "steps": steps})
    out = gen.sample(torch.tensor([0, 2]), generator=torch.Generator().manual_seed(1), options=opts)
    assert out.shape == x0.shape
    torch.testing.assert_close(out, x0, atol=2e-3, rtol=0)
    assert len(gen.ema.model.calls) == steps  # one model call per step at guidance 1


def test_oracle_recovery_with_guidance_and_without_clipping() -> None:
    # cond and uncond agree for an oracle, so guidance must not move the result
    gen = tiny(prediction_type="epsilon")
    x0 = known_image()
    gen.ema.model = Oracle(x0, gen.noise_scheduler.alphas_cumprod, "epsilon")
    opts = gen.parse_sample_options({"sampler": "dpmsolver++", "steps": 10, "guidance": 3.0, "clip": False})
    out = gen.sample(torch.tensor([1, 1]), generator=torch.Generator().manual_seed(1), options=opts)
    torch.testing.assert_close(out, x0, atol=2e-3, rtol=0)
    sizes = {n for n, _ in gen.ema.model.calls}
    assert sizes == {4}  # conditional and unconditional halves in one batch
    assert gen.ema.model.calls[0][1].tolist() == [1, 1, 3, 3]  # 3 = the null class


def test_wrong_model_does_not_recover_the_image() -> None:
    # the oracle test can fail: an oracle for another image gives another result
    gen = tiny(prediction_type="epsilon")
    x0 = known_image()
    gen.ema.model = Oracle(-x0, gen.noise_scheduler.alphas_cumprod, "epsilon")
    out = gen.sample(torch.tensor([0, 1]), generator=torch.Generator().manual_seed(1))
    assert (out - x0).abs().max() > 0.5


# --- guidance -----------------------------------------------------------------------------------
def test_guidance_one_is_the_conditional_model() -> None:
    gen = tiny()
    labels = torch.tensor([0, 1, 2])
    g1 = gen.sample(labels, torch.Generator().manual_seed(3), gen.parse_sample_options({"steps": 4, "guidance": 1}))

    # the same loop with the raw conditional UNet, no guidance wrapper at all
    model = gen.ema.model
    noise = torch.randn((3, 1, 32, 32), generator=torch.Generator().manual_seed(3))
    sched = make_scheduler(DiffusionSampleOptions(steps=4), gen.config.schedule_kwargs())
    with torch.no_grad():
        ref = denoise(lambda x, t, y: model(x, t, class_labels=y).sample, noise, labels, sched, 4)
    torch.testing.assert_close(g1, ref.clamp(-1, 1), atol=0, rtol=0)


def test_guidance_formula() -> None:
    calls = []

    def fake(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(y.tolist())
        return y.float().view(-1, 1, 1, 1).expand_as(x)  # output = label value

    x, t = torch.zeros(2, 1, 4, 4), torch.tensor([5, 5])
    out = guided(fake, 2.5, null_label=9)(x, t, torch.tensor([1, 3]))
    # uncond 9 + 2.5 * (cond - 9)
    assert out[:, 0, 0, 0].tolist() == pytest.approx([9 + 2.5 * (1 - 9), 9 + 2.5 * (3 - 9)])
    assert calls == [[1, 3, 9, 9]]
    calls.clear()
    assert guided(fake, 1.0, 9)(x, t, torch.tensor([1, 3]))[:, 0, 0, 0].tolist() == [1, 3]
    assert guided(fake, 0.0, 9)(x, t, torch.tensor([1, 3]))[:, 0, 0, 0].tolist() == [9, 9]
    assert calls == [[1, 3], [9, 9]]


# --- determinism --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options", [{"sampler": "ddim", "steps": 5, "eta": 1.0}, {"sampler": "ddpm", "steps": 5}, {"steps": 5}]
)
def test_sampling_is_deterministic_for_a_seed(options: dict) -> None:
    gen = tiny()
    opts = gen.parse_sample_options({**options, "guidance": 2.0})
    labels = torch.tensor([0, 1, 2, 2])
    a = gen.sample(labels, torch.Generator().manual_seed(11), opts)
    b = gen.sample(labels, torch.Generator().manual_seed(11), opts)
    c = gen.sample(labels, torch.Generator().manual_seed(12), opts)
    assert a.shape == (4, 1, 32, 32) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_stochastic_steps_do_not_use_the_global_rng() -> None:
    # DDPM and DDIM(eta>0) draw step noise: it must come from the given generator, not torch's global RNG
    gen = tiny()
    for options in ({"sampler": "ddpm", "steps": 5}, {"sampler": "ddim", "steps": 5, "eta": 1.0}):
        opts = gen.parse_sample_options(options)
        torch.manual_seed(1)
        a = gen.sample(torch.tensor([0, 1]), torch.Generator().manual_seed(5), opts)
        torch.manual_seed(2)
        b = gen.sample(torch.tensor([0, 1]), torch.Generator().manual_seed(5), opts)
        assert torch.equal(a, b), options


# --- training, resume, export -------------------------------------------------------------------
def test_train_step_decreases_the_loss(accelerator) -> None:
    gen = tiny()
    gen.setup(accelerator)
    x, y = batch(16)
    losses = [gen.train_step(x, y, accelerator)["loss"] for _ in range(40)]
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.6 * first, losses
    assert gen.ema.images_seen == 40 * 16


def test_v_prediction_trains(accelerator) -> None:
    gen = tiny(prediction_type="v_prediction", cond_drop_prob=0.5)
    gen.setup(accelerator)
    x, y = batch(8)
    out = gen.train_step(x, y, accelerator)
    assert set(out) == {"loss"} and 0 < out["loss"] < 10


def _roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_resume_equals_a_straight_run(accelerator) -> None:
    x, y = batch(8)
    straight = tiny(seed=1)
    straight.setup(accelerator)
    for _ in range(3):
        straight.train_step(x, y, accelerator)
    saved = _roundtrip(straight.state())
    tail_straight = [straight.train_step(x, y, accelerator)["loss"] for _ in range(3)]

    resumed = tiny(seed=99)  # other initial weights and rng: everything must come from the state
    resumed.setup(accelerator)
    resumed.load_state(saved)
    tail_resumed = [resumed.train_step(x, y, accelerator)["loss"] for _ in range(3)]

    assert tail_resumed == tail_straight
    for a, b in [(straight.model, resumed.model), (straight.ema.model, resumed.ema.model)]:
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(p, q), name
    assert straight.steps_done == resumed.steps_done == 6
    assert torch.equal(straight.rng.get_state(), resumed.rng.get_state())


def test_export_roundtrip_gives_identical_samples(tmp_path: Path, accelerator) -> None:
    gen = tiny()
    gen.setup(accelerator)
    x, y = batch(8)
    for _ in range(2):
        gen.train_step(x, y, accelerator)
    gen.export(tmp_path / "export")
    back = Diffusion.from_export(tmp_path / "export")
    assert back.config == gen.config and back.spec == gen.spec
    opts = gen.parse_sample_options({"sampler": "ddim", "steps": 4, "guidance": 2})
    labels = torch.tensor([2, 0])
    a = gen.sample(labels, torch.Generator().manual_seed(4), opts)
    b = back.sample(labels, torch.Generator().manual_seed(4), opts)
    assert torch.equal(a, b)
    # the export holds the EMA weights, not the live ones
    for k, v in back.ema.model.state_dict().items():
        assert torch.equal(v, gen.ema.model.state_dict()[k])


def test_export_with_mismatched_weights_is_a_user_error(tmp_path: Path) -> None:
    import json

    tiny().export(tmp_path / "a")
    path = tmp_path / "a" / "config.json"
    meta = json.loads(path.read_text())
    meta["config"]["block_out_channels"] = [16, 16]
    path.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="do not match"):
        Diffusion.from_export(tmp_path / "a")


# --- bad input ----------------------------------------------------------------------------------
def test_unknown_config_key_is_rejected_by_name() -> None:
    from cxraug.config import resolve

    with pytest.raises(UserError, match="'block_channels'"):
        resolve(DiffusionConfig, {}, {}, {"block_channels": [8, 16]})
    _, model = resolve(DiffusionConfig, {}, {}, {"prediction_type": "v_prediction", "block_out_channels": [8, 16]})
    assert model.prediction_type == "v_prediction" and model.block_out_channels == (8, 16)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"prediction_type": "x0"}, "prediction_type"),
        ({"beta_schedule": "cosine"}, "beta_schedule"),
        ({"cond_drop_prob": 1.5}, "cond_drop_prob"),
        ({"block_out_channels": [8, 12], "norm_num_groups": 8}, "norm_num_groups 8 must divide"),
        ({"beta_start": 0.02, "beta_end": 0.01}, "beta_end"),
    ],
)
def test_bad_config_values(values: dict, match: str) -> None:
    from cxraug.config import resolve

    with pytest.raises(UserError, match=match):
        resolve(DiffusionConfig, {}, {}, values)


@pytest.mark.parametrize(
    ("cfg", "size", "match"),
    [
        ({"block_out_channels": (8, 8, 8, 8, 8)}, 32, "at most 4 entries"),
        ({"block_out_channels": (8, 16), "attention_resolutions": (8,)}, 32, r"\[8\] are not block resolutions"),
        ({"block_out_channels": (8, 16), "attention_resolutions": (16,), "attention_head_dim": 3}, 32, "head_dim"),
        ({"block_out_channels": (8, 16)}, 48, "power of two"),
    ],
)
def test_unbuildable_unet_is_a_user_error(cfg: dict, size: int, match: str) -> None:
    with pytest.raises(UserError, match=match):
        Diffusion(DiffusionConfig(**cfg), DataSpec(classes=CLASSES, size=size))


def test_attention_blocks_are_built_where_asked() -> None:
    gen = Diffusion(
        DiffusionConfig(
            block_out_channels=(8, 16), attention_resolutions=(16,), mid_attention=True, attention_head_dim=8
        ),
        SPEC,
    )
    kinds = [type(b).__name__ for b in gen.model.down_blocks] + [type(b).__name__ for b in gen.model.up_blocks]
    assert kinds == ["DownBlock2D", "AttnDownBlock2D", "AttnUpBlock2D", "UpBlock2D"]
    assert gen.model.mid_block.attentions[0] is not None
    assert gen.model.class_embedding.num_embeddings == len(CLASSES) + 1


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"sampler": "euler"}, "sampler"),
        ({"steps": 0}, "steps"),
        ({"steps": 5000}, "exceeds"),
        ({"guidance": -1}, "guidance"),
        ({"eta": 0.5}, "eta applies to the ddim sampler only"),
        ({"stepz": 3}, "unknown diffusion sampling option 'stepz'"),
    ],
)
def test_bad_sample_options(values: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        tiny().parse_sample_options(values)


def test_sample_options_from_set_strings() -> None:
    # `cxraug synth --set steps=20 --set guidance=2.0` arrives as parsed YAML scalars or strings
    opts = tiny().parse_sample_options({"steps": "20", "guidance": "2.0", "sampler": "ddim", "eta": 0.3})
    assert (opts.steps, opts.guidance, opts.sampler, opts.eta) == (20, 2.0, "ddim", 0.3)


def test_registered_as_diffusion() -> None:
    from cxraug import registry

    assert registry.get("diffusion") is Diffusion
    assert "diffusion" in registry.available()
