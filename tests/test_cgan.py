"""The cgan recipe: the shared EMA window, LeCam, DiffAugment ops, wide low-resolution layers,
and an exact resume whose test fails when any piece of training state is dropped."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from cxraug_cgan import CGAN
from cxraug_cgan.augment import OPS, augment
from cxraug_cgan.nets import Discriminator, Generator, upsample, widths
from cxraug_cgan.plugin import (
    Anchors,
    class_weight,
    cosine_burnin,
    lecam_penalty,
    rpgan_loss,
    zero_centred_penalty,
)
from gen_helpers import tiny_spec

from cxraug import runs
from cxraug.ema import EMA, EMASettings, ema_beta
from cxraug.train import spec_from_run, start_run, train

# A tiny config in which every piece of state moves within a few steps of batch 8: the EMA
# averages (no ramp-up: a half-life of 32 images), ADA adjusts p every 2 steps, R1 runs every
# second step, LeCam's anchors move, D sees the minibatch std and has AugSelf's head, and UTLO's
# unconditional low-resolution branch is on.
LIVELY = {
    **CGAN.tiny_config(), "ema_kimg": 0.032, "ema_rampup": None, "aug_p": 0.5, "ada_target": 0.0,
    "ada_speed_img": 64, "ada_interval": 2, "r1_gamma": 1.0, "r1_every": 2, "lecam": 0.3, "mbstd_group": 4,
    "augself_weight": 1.0, "uc_res": 8,
}  # fmt: skip
# The same for the R3GAN-style pieces: relativistic loss, R1/R2 on part of the batch with a
# burn-in of gamma and beta2, the class fading in, the reconstruction head, bilinear resampling,
# reflect padding, a normalisation-free G.
LIVELY_R3 = {
    **CGAN.tiny_config(), "ema_kimg": 0.032, "ema_rampup": None, "aug_p": 0.5, "mbstd_group": 4,
    "loss": "rpgan", "d_sn": False, "d_act": "lrelu", "d_zero_init": True, "gamma": 1.0,
    "gamma_fraction": 0.5, "burnin_kimg": 0.064, "beta2": 0.99, "beta2_start": 0.9,
    "cond_start_kimg": 0.008, "cond_end_kimg": 0.064, "recon_weight": 1.0, "resample": "bilinear",
    "g_pad": "reflect", "g_norm": "none",
}  # fmt: skip


# --- the EMA --------------------------------------------------------------------------------------
class Scalar(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))


def ema_of_ramp(steps: int, batch: int, settings: EMASettings) -> float:
    """The EMA of a weight that equals the step number after each step."""
    live = Scalar()
    ema = EMA(live, settings)
    for k in range(1, steps + 1):
        live.w.data.fill_(float(k))
        ema.update(live, batch)
    return float(ema.model.w)


def test_ema_half_life_is_in_images() -> None:
    assert ema_beta(64, 10**9, 10.0, None) == pytest.approx(0.5 ** (64 / 10_000))
    assert ema_beta(64, 0, 10.0, 0.05) == 0.0, "nothing seen yet: a copy"
    assert ema_beta(64, 12_800, 10.0, 0.05) == pytest.approx(0.5 ** (64 / 640)), "ramp-up caps the half-life"
    assert ema_beta(64, 10**9, 0.0, 0.05) == 0.0, "ema_kimg 0: no averaging"
    # The same half-life in images gives the same lag in images at any batch size.
    s = EMASettings(ema_kimg=5.0, ema_rampup=None)
    lag64 = 4000 - ema_of_ramp(4000, 64, s)
    lag32 = 8000 - ema_of_ramp(8000, 32, s)
    assert lag64 * 64 == pytest.approx(lag32 * 32, rel=0.02)


@pytest.mark.parametrize("steps", [300, 20_000])
def test_ema_follows_the_late_steps_of_short_and_long_runs(steps: int) -> None:
    """With the ramp-up, the exported average sits near the end of a 300-step demo and of a
    long run alike; the old fixed decay (0.999 after a 100-step copy) left a 300-step run's
    average 40% of the way back."""
    value = ema_of_ramp(steps, 64, EMASettings(ema_kimg=10.0, ema_rampup=0.05))
    assert value > 0.9 * steps


def test_exported_cgan_is_dominated_by_the_late_steps(tmp_path: Path, phantom32: Path) -> None:
    spec = tiny_spec("cgan", phantom32, steps=8, checkpoint_every=1, keep_checkpoints=10)
    spec.model = CGAN.Config(**{**CGAN.tiny_config(), "ema_kimg": 0.016})  # half-life 2 steps of 8 images
    run = start_run(spec, tmp_path)
    train(run, spec)
    ckpt = {s: torch.load(p, weights_only=True)["plugin"] for s, p in runs.checkpoints(run)}
    from safetensors.torch import load_file

    exported = load_file(str(run / "export" / "weights.safetensors"))
    names = [k for k in ckpt[8]["G"] if "running" not in k and "num_batches" not in k]

    def dist(a: dict) -> float:
        return sum(float((exported[k] - a[k]).square().sum()) for k in names) ** 0.5

    assert dist(ckpt[8]["G"]) < 0.5 * dist(ckpt[2]["G"]), "the export is near the last weights, far from early ones"
    assert ckpt[8]["ema"]["images_seen"] == 64


# --- LeCam ----------------------------------------------------------------------------------------
def test_lecam_penalty_by_hand() -> None:
    d_real, d_fake = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([-1.0, 0.5])
    # relu(d_real - a_fake)^2 = [1.3, 0, 2.3]^2 -> 6.98 / 3; relu(a_real - d_fake)^2 = [1.8, 0.3]^2 -> 3.33 / 2
    assert float(lecam_penalty(d_real, d_fake, anchor_real=0.8, anchor_fake=-0.3)) == pytest.approx(6.98 / 3 + 3.33 / 2)
    anchors = Anchors(decay=0.9)
    anchors.update(1.0, -1.0)
    assert (anchors.real, anchors.fake) == (1.0, -1.0), "the first batch sets the anchors"
    anchors.update(2.0, 0.0)
    assert anchors.real == pytest.approx(1.1) and anchors.fake == pytest.approx(-0.9)


def test_lecam_enters_the_discriminator_loss() -> None:
    from accelerate import Accelerator

    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    losses = {}
    for lam in (0.0, 10.0):
        torch.manual_seed(0)  # the same initial weights for both
        gen = CGAN(CGAN.Config(**{**CGAN.tiny_config(), "lecam": lam}), _spec(), seed=0)
        gen.setup(Accelerator(cpu=True))
        losses[lam] = gen.train_step(x, y, Accelerator(cpu=True))["loss_d"]
        if lam:
            assert gen.anchors.real is not None and gen.anchors.fake is not None
    # At the first step the anchors are this batch's means, so the penalty is its spread: > 0.
    assert losses[10.0] > losses[0.0]


def test_d_steps_updates_the_discriminator_k_times_per_generator_step() -> None:
    from accelerate import Accelerator

    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    acc = Accelerator(cpu=True)
    for k in (1, 3):
        gen = CGAN(CGAN.Config(**{**CGAN.tiny_config(), "d_steps": k}), _spec(), seed=0)
        gen.setup(acc)
        gen.train_step(x, y, acc)
        adam_steps = {name: int(next(iter(o.state_dict()["state"].values()))["step"]) for name, o in
                      (("d", gen.opt_d), ("g", gen.opt_g))}  # fmt: skip
        assert adam_steps == {"d": k, "g": 1}
        assert gen.steps_done == 1, "a step is one generator update, however many D updates it holds"


def _spec():
    from cxraug.generator import DataSpec

    return DataSpec(classes=("a", "b"), size=32)


# --- DiffAugment ------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", OPS)
def test_each_augment_op(op: str) -> None:
    x = torch.rand(16, 1, 32, 32) * 2 - 1
    g = torch.Generator().manual_seed(0)
    assert torch.equal(augment(x, (op,), 0.0, g), x), "p = 0 is the identity"
    out = augment(x, (op,), 1.0, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    changed = (out != x).flatten(1).any(dim=1)
    assert changed.float().mean() > 0.8, "p = 1 changes (nearly) every image"
    again = augment(x, (op,), 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(out, again), "the draws come from the given generator"
    if op in ("translation", "cutout"):
        # Moves or zeroes pixels: values stay in the input's range (cutout fills with 0).
        assert out.min() >= x.min() and out.max() <= x.max()
    if op == "translation":
        assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.25)
    if op == "brightness":
        shift = (out - x).flatten(1)
        assert torch.allclose(shift.min(dim=1).values, shift.max(dim=1).values, atol=1e-6), "one shift per image"
        assert shift.abs().max() <= 0.5
    if op == "contrast":
        mean = x.mean(dim=(1, 2, 3))
        assert torch.allclose(out.mean(dim=(1, 2, 3)), mean, atol=1e-5), "contrast keeps each image's mean"
    half = augment(x, (op,), 0.5, torch.Generator().manual_seed(2))
    share = (half != x).flatten(1).any(dim=1).float().mean()
    assert 0.1 < share < 0.9, "p = 0.5 changes some images, not all"


@pytest.mark.parametrize("size", [32, 64])
def test_cutout_masks_diffaugment_square(size: int) -> None:
    """DiffAugment's cutout: a square of half the side, clipped at the border, so about 19% of
    the pixels of a constant image are zeroed on average (the old op's 9x9 hole: 6.9%)."""
    from cxraug_cgan.augment import _cutout_mask

    x = torch.ones(4000, 1, size, size)
    mask, _ = _cutout_mask(x, torch.Generator().manual_seed(0))
    side = mask.sum(dim=2).amax(dim=(1, 2))  # widest column run = the square's clipped height
    assert side.max() == size // 2, "the square's side is half the image side"
    # The expected share: per axis, the clipped length of a side-s run centred uniformly.
    s = size // 2
    per_axis = sum(min(o + s - s // 2, size) - max(o - s // 2, 0) for o in range(size + 1)) / (size + 1) / size
    assert mask.mean().item() == pytest.approx(per_axis**2, abs=0.01)
    assert 0.17 < mask.mean().item() < 0.21
    out = augment(x, ("cutout",), 1.0, torch.Generator().manual_seed(0))
    assert (out == 0).float().mean().item() == pytest.approx(per_axis**2, abs=0.01)


@pytest.mark.parametrize("size", [32, 64])
def test_translation_shifts_whole_pixels_up_to_an_eighth(size: int) -> None:
    """DiffAugment's translation: integer shifts uniform in [-size/8, size/8] per axis."""
    ramp = torch.arange(size, dtype=torch.float32)
    x = (ramp.view(1, 1, 1, size) + 1000 * ramp.view(1, 1, size, 1)).expand(3000, 1, size, size)
    out = augment(x, ("translation",), 1.0, torch.Generator().manual_seed(0))
    centre = out[:, 0, size // 2, size // 2]
    dy = size // 2 - torch.div(centre, 1000, rounding_mode="floor")
    dx = size // 2 - centre % 1000
    k = size // 8
    assert dy.abs().max() == k and dx.abs().max() == k, "shifts reach, and never pass, 1/8 of the side"
    counts = torch.bincount((dx + k).long(), minlength=2 * k + 1).float()
    assert counts.min() > 0.6 * counts.mean(), "every shift in the range is drawn, about evenly"
    # The shifted fraction: a pixel keeps its own value only where the shift is 0 on both axes.
    moved = (out != x).flatten(1).float().mean().item()
    assert moved == pytest.approx(1 - 1 / (2 * k + 1) ** 2, abs=0.03)
    # The interior is an exact copy of the shifted image (edge values only fill the border).
    i = 0
    sy, sx = int(dy[i]), int(dx[i])
    inner = out[i, 0, k : size - k, k : size - k]
    assert torch.equal(inner, x[i, 0, k - sy : size - k - sy, k - sx : size - k - sx])


# --- wide low-resolution layers ---------------------------------------------------------------------
def test_widths_ramp_from_wide_low_resolution() -> None:
    assert widths(32, 16, 256) == [64, 32, 16]
    assert widths(32, 16, 256, ch4=256) == [256, 64, 16]
    assert widths(64, 16, 256, ch4=512) == [512, 161, 51, 16]
    g, d = Generator(32, 3, 16, 16, 256, 8, ch4=256), Discriminator(32, 3, 16, 256, ch4=256)
    assert g(torch.randn(2, 16), torch.tensor([0, 2])).shape == (2, 1, 32, 32)
    assert d(torch.rand(2, 1, 32, 32), torch.tensor([0, 2])).shape == (2,)


def test_discriminator_without_spectral_norm() -> None:
    from torch.nn.utils import parametrize

    with_sn, without = Discriminator(32, 2, 8, 64), Discriminator(32, 2, 8, 64, sn=False)
    assert any(parametrize.is_parametrized(m) for m in with_sn.modules())
    assert not any(parametrize.is_parametrized(m) for m in without.modules())
    assert without(torch.rand(3, 1, 32, 32), torch.tensor([0, 1, 1])).shape == (3,)


def test_minibatch_std_sees_collapse_and_never_mixes_real_with_fake() -> None:
    from cxraug_cgan.nets import MinibatchStd

    layer = MinibatchStd(4)
    same = torch.rand(1, 3, 8, 8).expand(8, -1, -1, -1)
    assert layer(same).shape == (8, 4, 8, 8)
    assert layer(same)[:, 3].max() < 1e-3, "a collapsed batch has no spread"
    assert layer(torch.rand(8, 3, 8, 8))[:, 3].min() > 0.1
    assert layer(torch.rand(6, 3, 8, 8))[:, 3].shape == (6, 8, 8), "a group of 3 when 4 does not divide 6"
    # A prime batch (7 per part) has no divisor <= 4 but 1: groups of 4 and 3, never of one.
    from cxraug_cgan.nets import group_sizes

    assert group_sizes(7, 4) == [4, 3] and group_sizes(5, 4) == [5] and group_sizes(13, 4) == [4, 4, 5]
    spread7 = layer(torch.rand(14, 3, 8, 8), parts=2)[:, 3, 0, 0]
    assert spread7.min() > 0.1, "the layer stays on with 7 samples per part"
    assert torch.equal(spread7[:4], spread7[:1].expand(4)) and spread7[3] != spread7[4]

    torch.manual_seed(0)
    d = Discriminator(32, 2, 8, 64, mbstd_group=4).eval()
    real, y = torch.rand(6, 1, 32, 32), torch.tensor([0, 1, 0, 1, 0, 1])
    a = d(torch.cat([real, torch.rand(6, 1, 32, 32)]), torch.cat([y, y]), parts=2)
    b = d(torch.cat([real, torch.rand(6, 1, 32, 32)]), torch.cat([y, y]), parts=2)
    assert torch.allclose(a[:6], b[:6]), "D's verdict on the reals does not depend on the fakes"
    c = d(torch.cat([real, torch.rand(6, 1, 32, 32)]), torch.cat([y, y]))  # one part: groups straddle
    assert not torch.allclose(a[:6], c[:6])


# --- the R3GAN objective -----------------------------------------------------------------------------
def test_rpgan_loss_by_hand() -> None:
    real, fake = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 1.0, -1.0])
    # softplus(-(real - fake)) = log(1 + e^{-(r - f)}): r - f = [2, -1, 0]
    want = (math.log1p(math.exp(-2)) + math.log1p(math.exp(1)) + math.log(2)) / 3
    assert float(rpgan_loss(real, fake)) == pytest.approx(want)
    # G's loss is the same pairing the other way round.
    want_g = (math.log1p(math.exp(2)) + math.log1p(math.exp(-1)) + math.log(2)) / 3
    assert float(rpgan_loss(fake, real)) == pytest.approx(want_g)


def test_zero_centred_penalty_by_hand() -> None:
    """D(x) = sum(w * x^2) has gradient 2 w x: the penalty is the mean over samples of |2 w x|^2."""
    w = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]]])
    x = torch.tensor([[[[1.0, 1.0], [2.0, 3.0]]], [[[0.0, -1.0], [1.0, 1.0]]]], requires_grad=True)
    out = (w * x.square()).sum(dim=(1, 2, 3))
    # sample 0: grads [2, -4, 2, 0] -> 24; sample 1: [0, 4, 1, 0] -> 17
    assert zero_centred_penalty(out, x).item() == pytest.approx((24 + 17) / 2)


def test_schedules_by_images_seen() -> None:
    assert cosine_burnin(0, 1000) == 1.0 and cosine_burnin(500, 1000) == pytest.approx(0.5)
    assert cosine_burnin(1000, 1000) == 0.0 and cosine_burnin(5000, 1000) == 0.0 and cosine_burnin(9, 0) == 0.0
    assert class_weight(10, None, None) == 1.0
    assert [class_weight(t, 100, 300) for t in (0, 100, 200, 300, 900)] == [0.0, 0.0, 0.5, 1.0, 1.0]


def _r3(**extra) -> CGAN:
    from accelerate import Accelerator

    cfg = {**CGAN.tiny_config(), "loss": "rpgan", "d_sn": False, "d_act": "lrelu", "d_zero_init": True, **extra}
    gen = CGAN(CGAN.Config(**cfg), _spec(), seed=0)
    gen.setup(Accelerator(cpu=True))
    return gen


def test_r1_r2_penalty_enters_the_d_loss_at_its_scheduled_weight() -> None:
    from accelerate import Accelerator

    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    logs = _r3(gamma=2.0, gamma_fraction=1.0, burnin_kimg=1.0, gamma_burnin_mult=10.0).train_step(x, y, acc)
    assert logs["gamma"] == pytest.approx(20.0), "the burn-in starts at 10x gamma"
    assert logs["r1"] > 0 and logs["r2"] > 0
    torch.manual_seed(0)
    plain = _r3(gamma=0.0).train_step(x, y, acc)
    # The same weights and draws: the loss differs by exactly gamma/2 (R1 + R2).
    assert logs["loss_d"] - plain["loss_d"] == pytest.approx(10.0 * (logs["r1"] + logs["r2"]), rel=1e-4)
    gen = _r3(gamma=1.0, burnin_kimg=0.016, gamma_burnin_mult=10.0, beta2=0.99, beta2_start=0.9)
    seen = []
    for _ in range(3):
        seen.append((gen.ema.images_seen, gen.train_step(x, y, acc)["gamma"], gen.opt_d.param_groups[0]["betas"][1]))
    assert seen[0] == (0, pytest.approx(10.0), pytest.approx(0.9))
    assert seen[1] == (8, pytest.approx(5.5), pytest.approx(0.945)), "half-way through a 16-image burn-in"
    assert seen[2] == (16, pytest.approx(1.0), pytest.approx(0.99))


def test_penalty_on_a_share_of_the_batch_counts_whole_groups() -> None:
    gen = _r3(gamma=1.0, gamma_fraction=0.25, mbstd_group=4)
    assert gen._penalty_batch(64) == 16 and gen._penalty_batch(8) == 4 and gen._penalty_batch(2) == 2


def test_zero_init_gives_each_d_block_its_skip_and_refuses_spectral_norm() -> None:
    from pydantic import ValidationError

    d = Discriminator(32, 2, 8, 64, sn=False, act="lrelu", zero_init=True)
    for block in d.blocks:
        assert block.convs[-1].weight.detach().abs().sum().item() == 0.0
    with pytest.raises(ValidationError, match="d_sn=false"):
        CGAN.Config(**{**CGAN.tiny_config(), "d_zero_init": True})


# --- transitional conditioning ------------------------------------------------------------------------
def test_class_fades_in_by_images_seen() -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    # 1000 images = 1 kimg: unconditional for the first 8 images, full weight at 24.
    gen = _r3(cond_start_kimg=0.008, cond_end_kimg=0.024)
    weights = [gen.train_step(x, y, acc)["cond_weight"] for _ in range(4)]
    assert weights == [0.0, 0.0, 0.5, 1.0]
    assert float(gen.G_ema.cond_weight) == 1.0, "the EMA copy and the export carry the weight"
    # With weight 0 the class changes nothing, in G and in D.
    g, d = gen.G_ema, _unwrap_d(gen)
    g.eval()
    d.eval()  # spectral norm: no power iteration between the two calls
    z = torch.randn(4, 16)
    g.cond_weight.fill_(0.0)
    d.cond_weight.fill_(0.0)
    assert torch.allclose(g(z, torch.zeros(4, dtype=torch.long)), g(z, torch.ones(4, dtype=torch.long)))
    assert torch.allclose(d(x[:4], torch.zeros(4, dtype=torch.long)), d(x[:4], torch.ones(4, dtype=torch.long)))
    g.cond_weight.fill_(1.0)
    d.cond_weight.fill_(1.0)
    with torch.no_grad():
        for m in g.modules():
            if hasattr(m, "gain"):
                m.gain.weight.normal_()
    assert not torch.allclose(g(z, torch.zeros(4, dtype=torch.long)), g(z, torch.ones(4, dtype=torch.long)))


def _unwrap_d(gen: CGAN):
    return getattr(gen.D, "module", gen.D)


# --- the self-supervised D ---------------------------------------------------------------------------
def test_reconstruction_head_loss_by_hand() -> None:
    from cxraug_cgan.nets import recon_loss

    images = torch.zeros(1, 1, 32, 32)
    images[..., :16, :] = 1.0  # top half white: 16 px target rows 0-7 are 1, rows 8-15 are 0
    decoded = torch.zeros(1, 1, 16, 16)
    assert float(recon_loss(decoded, images)) == pytest.approx(0.5)
    decoded[..., :8, :] = 1.0
    assert float(recon_loss(decoded, images)) == 0.0
    for size in (32, 64):
        d = Discriminator(size, 2, 8, 64, recon=True)
        out, extras = d(torch.rand(4, 1, size, size), torch.tensor([0, 1, 0, 1]), recon=True)
        dec = extras["recon"]
        assert out.shape == (4,) and dec.shape == (4, 1, 16, 16), "16 px from the 8x8 features"
        out, extras = d(torch.rand(4, 1, size, size), torch.tensor([0, 1, 0, 1]), parts=2, recon=True)
        dec = extras["recon"]
        assert out.shape == (4,) and dec.shape == (2, 1, 16, 16), "only the first part (the reals) is decoded"


def test_reconstruction_trains_d_on_reals() -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    gen = _r3(recon_weight=1.0)
    first = gen.train_step(x, y, acc)["recon"]
    for _ in range(30):
        last = gen.train_step(x, y, acc)["recon"]
    assert last < 0.8 * first, "the decoder learns to reconstruct the reals"


@pytest.mark.parametrize("op", OPS)
def test_augment_params_describe_each_draw(op: str) -> None:
    """AugSelf's targets: each op's parameters, in [0, 1], are the ones the image was given."""
    from cxraug_cgan.augment import augment_with_params, param_dims

    size, n = 32, 400
    ramp = torch.arange(size, dtype=torch.float32)
    x = ((ramp.view(1, 1, 1, size) + 100 * ramp.view(1, 1, size, 1)) / 4000).expand(n, 1, size, size).contiguous()
    out, params = augment_with_params(x, (op,), 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(out, augment(x, (op,), 1.0, torch.Generator().manual_seed(0))), "the same draws"
    assert params.shape == (n, param_dims((op,))) and params.min() >= 0 and params.max() <= 1
    varying = params[:, 1:] if op == "cutout" else params  # cutout's first column: on / off
    assert varying.std(dim=0).min() > 0.2, "the parameters vary over [0, 1] (uniform: sd 0.29)"
    if op == "brightness":
        assert torch.allclose((out - x)[:, 0, 0, 0], params[:, 0] - 0.5, atol=1e-6)
    if op == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        assert torch.allclose(out - mean, (x - mean) * (params[:, 0] + 0.5).view(n, 1, 1, 1), atol=1e-5)
    if op == "translation":
        k = size // 8  # the shift is read back from the ramp's value at the centre
        centre = out[:, 0, size // 2, size // 2] * 4000
        dy = size // 2 - torch.div(centre + 0.5, 100, rounding_mode="floor")
        dx = size // 2 - torch.round(centre % 100)
        assert torch.equal(params[:, 0] * 2 * k - k, dy) and torch.equal(params[:, 1] * 2 * k - k, dx)
    if op == "cutout":
        hole = (out == 0) & (x != 0)
        assert torch.equal(params[:, 0], torch.ones(n)), "every image has a hole at p = 1"
        inside = (params[:, 1:] > 0.25) & (params[:, 1:] < 0.75)  # squares that are not clipped
        rows = torch.arange(size, dtype=torch.float32)
        for i in torch.nonzero(inside.all(dim=1)).flatten()[:20]:
            ys, xs = hole[i, 0].any(dim=1), hole[i, 0].any(dim=0)
            cy = (rows[ys].min() + rows[ys].max() + 1) / 2 / size
            cx = (rows[xs].min() + rows[xs].max() + 1) / 2 / size
            assert float(cy) == pytest.approx(float(params[i, 1]), abs=1 / size)
            assert float(cx) == pytest.approx(float(params[i, 2]), abs=1 / size)
    _, none = augment_with_params(x, (op,), 0.0, torch.Generator().manual_seed(0))
    identity = [0.0, 0.5, 0.5] if op == "cutout" else [0.5] * param_dims((op,))
    assert torch.equal(none, torch.tensor(identity).expand(n, -1)), "p = 0: every image reads as the identity"
    half, hp = augment_with_params(x, (op,), 0.5, torch.Generator().manual_seed(1))
    unchanged = (half == x).flatten(1).all(dim=1)
    assert torch.equal(hp[unchanged], torch.tensor(identity).expand(int(unchanged.sum()), -1)) or op == "translation"


def test_augself_losses_by_hand() -> None:
    from cxraug_cgan.plugin import augself_d_loss, augself_g_loss

    real, fake = torch.tensor([[0.2, 0.8]]), torch.tensor([[0.5, 1.0]])
    assert float(augself_d_loss(torch.cat([real, -fake]), real, fake)) == 0.0
    assert float(augself_d_loss(torch.cat([real, fake]), real, fake)) == pytest.approx((1.0**2 + 2.0**2) / 2)
    # G's loss is (pred - p)^2 - (pred + p)^2 = -4 pred p per entry: lower as the fakes read as reals.
    assert float(augself_g_loss(fake, fake)) == pytest.approx(-4 * (0.25 + 1.0) / 2)
    assert float(augself_g_loss(-fake, fake)) == pytest.approx(4 * (0.25 + 1.0) / 2)


def test_the_shared_latent_reaches_every_conditional_batchnorm() -> None:
    # With G's input cut off (fc at zero), only g_skip_z lets z change the image; the class's
    # weight (transitional conditioning, UTLO's unconditional blocks) scales the class alone.
    from cxraug_cgan.nets import CondBatchNorm

    torch.manual_seed(0)
    z1, z2, y = torch.randn(4, 16), torch.randn(4, 16), torch.tensor([0, 1, 2, 0])
    for skip_z in (False, True):
        g = Generator(32, 3, 16, 8, 64, 8, skip_z=skip_z).eval()
        with torch.no_grad():
            g.fc.weight.zero_()
            g.fc.bias.fill_(0.5)
            for m in g.modules():
                if isinstance(m, CondBatchNorm):
                    m.gain.weight.normal_()
                    m.bias.weight.normal_()
            differs = (g(z1, y) - g(z2, y)).abs().max() > 1e-4
            assert bool(differs) == skip_z
            if skip_z:
                g.cond_weight.fill_(0.0)
                assert torch.equal(g(z1, y), g(z1, (y + 1) % 3)), "class weight 0: unconditional, z still in"
                assert (g(z1, y) - g(z2, y)).abs().max() > 1e-4
    with pytest.raises(Exception, match="g_skip_z needs g_norm=cbn"):
        CGAN.Config(**{**CGAN.tiny_config(), "g_skip_z": True, "g_norm": "none"})


def test_mode_seeking_loss_by_hand() -> None:
    from cxraug_cgan.plugin import MS_EPS, mode_seeking_loss, paired_labels

    # halves differ by 0.5 in every pixel (images) and by 2 in every latent: ratio 0.25, loss 1/0.25
    images = torch.cat([torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5), torch.ones(1, 1, 4, 4)])
    z = torch.cat([torch.zeros(2, 3), torch.full((2, 3), -2.0), torch.zeros(1, 3)])
    assert float(mode_seeking_loss(images, z)) == pytest.approx(1 / (0.25 + MS_EPS))
    same = torch.zeros(4, 1, 4, 4)  # a collapsed class: the term is at its largest
    assert float(mode_seeking_loss(same, torch.randn(4, 3))) == pytest.approx(1 / MS_EPS)
    assert paired_labels(torch.tensor([3, 1, 4, 1, 5])).tolist() == [3, 1, 3, 1, 5]


def test_mode_seeking_in_the_training_step() -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    gen = CGAN(CGAN.Config(**{**CGAN.tiny_config(), "ms_weight": 1.0}), _spec(), seed=0)
    gen.setup(acc)
    logs = gen.train_step(torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2, acc)
    assert math.isfinite(logs["mode_seeking"]) and logs["mode_seeking"] > 0
    off = CGAN(CGAN.Config(**CGAN.tiny_config()), _spec(), seed=0)
    off.setup(acc)
    assert "mode_seeking" not in off.train_step(torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2, acc)


def test_augself_head_reads_the_augmentation() -> None:
    """D's head learns to read the brightness shift off the images: below half the loss of the
    best prediction that ignores the image (each group's mean target)."""
    from cxraug_cgan.augment import augment_with_params
    from cxraug_cgan.plugin import augself_d_loss

    torch.manual_seed(0)
    d = Discriminator(32, 2, 8, 64, augself=1)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.0, 0.9))
    g, y = torch.Generator().manual_seed(0), torch.arange(16) % 2
    losses, blind = [], []
    for _ in range(120):
        real, fake = torch.rand(16, 1, 32, 32) * 2 - 1, torch.rand(16, 1, 32, 32) * 0.2
        ri, rp = augment_with_params(real, ("brightness",), 1.0, g)
        fi, fp = augment_with_params(fake, ("brightness",), 1.0, g)
        _, extras = d(torch.cat([ri, fi]), torch.cat([y, y]), parts=2, augself=True)
        loss = augself_d_loss(extras["augself"], rp, fp)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        blind.append(float(rp.var(dim=0, unbiased=False).mean() + fp.var(dim=0, unbiased=False).mean()))
    last, ref = sum(losses[-20:]) / 20, sum(blind) / len(blind)
    assert last < 0.5 * ref, f"the head reads the shift ({last:.3f} against {ref:.3f} blind)"


def test_augself_in_the_training_step() -> None:
    """Both losses are in the step (D's and G's), G is trained through the head, and a config
    without augmentation is refused."""
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    cfg = {**CGAN.tiny_config(), "augment": "brightness,cutout", "aug_p": 1.0}
    after = {}
    for w in (0.0, 1.0):
        gen = CGAN(CGAN.Config(**cfg, augself_weight=w), _spec(), seed=0)
        gen.setup(acc)
        logs = gen.train_step(x, y, acc)
        after[w] = [p.detach().clone() for p in gen.G_plain.parameters()]
    assert gen.D_plain.augself.out_features == 4
    assert {"augself_d", "augself_g"} <= logs.keys() and all(math.isfinite(logs[k]) for k in ("augself_d", "augself_g"))
    assert any(not torch.equal(a, b) for a, b in zip(after[0.0], after[1.0], strict=True)), "G's step sees the head"
    with pytest.raises(ValueError, match="augself_weight needs augmentation"):
        CGAN.Config(**{**cfg, "augment": "none", "augself_weight": 1.0})
    assert CGAN(CGAN.Config(**CGAN.tiny_config()), _spec(), seed=0).D.augself is None, "off by default: no head"


def test_utlo_low_resolution_layers_are_unconditional() -> None:
    """UTLO: G's layers up to uc_res draw the same uc_res px image whatever the class (the class
    still reaches the full image), and D's branch for it has no class term."""
    torch.manual_seed(0)
    g = Generator(32, 3, 16, 8, 64, 8, uc_res=8)
    d = Discriminator(32, 3, 8, 64, uc_res=8)
    g.eval()
    d.eval()  # spectral norm: no power iteration between the two calls
    z, y = torch.randn(6, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        image, low = g(z, y, low=True)
        other, other_low = g(z, (y + 1) % 3, low=True)
        assert image.shape == (6, 1, 32, 32) and low.shape == (6, 1, 8, 8)
        assert torch.equal(low, other_low), "the class does not reach the low-resolution layers"
        for block in g.blocks[1:]:  # so the class has a say above 8 px, as after training
            for bn in block.bns:
                torch.nn.init.normal_(bn.gain.weight)
        image, _ = g(z, y, low=True)
        other, _ = g(z, (y + 1) % 3, low=True)
        assert (image - other).abs().max() > 1e-4, "the class reaches the full-resolution image"
        for emb in (d.embed,):
            torch.nn.init.normal_(emb.weight)
        out, extras = d(image, y, low=low)
        out2, extras2 = d(image, (y + 1) % 3, low=low)
        assert extras["uc"].shape == (6,) and torch.equal(extras["uc"], extras2["uc"]), "the branch is unconditional"
        assert not torch.equal(out, out2), "the main output is conditional"
    for bad in ({"uc_res": 12}, {"uc_res": 4}, {"uc_res": 8, "g_norm": "none"}):
        with pytest.raises(ValueError, match="uc_res"):
            CGAN.Config(**{**CGAN.tiny_config(), **bad})
    from cxraug.errors import UserError

    with pytest.raises(UserError, match="at most half the image size"):
        CGAN(CGAN.Config(**{**CGAN.tiny_config(), "uc_res": 32}), _spec(), seed=0)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["uc_res=32"], "model key 'uc_res': at most half the image size (16 px here), got 32"),
        (["uc_res=12"], "uc_res must be a power of two from 8 px up"),
        (["uc_res=8", "g_norm=none"], "uc_res needs g_norm=cbn"),
        (["augself_weight=1", "augment=none"], "augself_weight needs augmentation to predict"),
    ],
)
def test_bad_utlo_and_augself_settings_are_one_line(
    tmp_path: Path, phantom32: Path, sets: list[str], message: str
) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "cxraug", "train-gen", "--plugin", "cgan", "--data", str(phantom32),
           "--out", str(tmp_path / "runs"), "--steps", "1", *(a for s in sets for a in ("--set", s))]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "plugins")]), "CXRAUG_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_utlo_training_step() -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    for loss in ("hinge", "rpgan"):
        gen = CGAN(CGAN.Config(**{**CGAN.tiny_config(), "uc_res": 16, "loss": loss}), _spec(), seed=0)
        gen.setup(acc)
        logs = gen.train_step(x, y, acc)
        assert math.isfinite(logs["loss_d_uc"]) and math.isfinite(logs["loss_g"])
        assert gen.sample(torch.tensor([0, 1])).shape == (2, 1, 32, 32), "sampling draws the full image only"


# --- the grid texture at 64 px -------------------------------------------------------------------------
def test_high_band_share_by_hand() -> None:
    import numpy as np

    from cxraug.metrics.spectrum import high_band_share

    yy, xx = np.mgrid[:16, :16]
    low = np.cos(2 * np.pi * xx / 16)[None]  # 1/16 cycle per pixel
    checker = ((yy + xx) % 2 * 2 - 1.0)[None]  # Nyquist on both axes
    assert high_band_share(low) == pytest.approx(0.0, abs=1e-12)
    assert high_band_share(checker) == pytest.approx(1.0)
    assert high_band_share(np.concatenate([low, checker])) == pytest.approx(0.5)
    assert high_band_share(np.ones((2, 8, 8))) == 0.0, "flat images have no energy to share"


def test_bilinear_resampling_lowers_the_generators_high_band() -> None:
    """An untrained G with nearest upsampling puts about 2-3x more of its energy in the upper
    half band than one with bilinear (low-pass) resampling, over three initialisations."""
    from cxraug.metrics.spectrum import high_band_share

    shares = {}
    for mode in ("nearest", "bilinear"):
        vals = []
        for seed in range(3):
            torch.manual_seed(seed)
            g = Generator(64, 2, 16, 8, 64, 8, resample=mode)
            with torch.no_grad():
                vals.append(high_band_share(g(torch.randn(32, 16), torch.arange(32) % 2).numpy()))
        shares[mode] = sum(vals) / len(vals)
    assert shares["bilinear"] < 0.6 * shares["nearest"], shares


def test_reflect_padding_gives_the_generator_no_border() -> None:
    """A spatially constant 4x4 start stays constant through every layer with g_pad=reflect (no
    conv sees a border), while zero padding marks the border at every scale: the frame of
    lines that bilinear upsampling carried into the NIH 64 px samples."""

    def border_contrast(pad: str, resample: str) -> float:
        torch.manual_seed(0)
        g = Generator(64, 2, 16, 8, 64, 8, resample=resample, pad=pad)
        with torch.no_grad():  # every position of a channel gets the same fc row
            w = g.fc.weight.view(g.c0, 16, -1)
            w.copy_(w[:, :1].expand_as(w))
            g.fc.bias.view(g.c0, 16).copy_(g.fc.bias.view(g.c0, 16)[:, :1].expand(g.c0, 16))
            x = g(torch.randn(8, 16), torch.arange(8) % 2)
        return float((x - x.mean(dim=(2, 3), keepdim=True)).abs().max())

    for resample in ("nearest", "bilinear"):
        assert border_contrast("reflect", resample) < 1e-5
        assert border_contrast("zeros", resample) > 1e-2


def test_normalisation_free_generator() -> None:
    """g_norm=none: no BatchNorm anywhere, every block starts as its skip (fix-up init), the class
    enters beside z, and at class weight 0 (transitional conditioning) it has no effect."""
    from cxraug_cgan.nets import GBlock

    torch.manual_seed(0)
    g = Generator(32, 3, 16, 8, 64, 8, norm="none")
    assert not any(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.SyncBatchNorm)) for m in g.modules())
    h, e = torch.randn(4, g.c0, 4, 4), torch.randn(4, 8)
    block = g.blocks[0]
    assert isinstance(block, GBlock)
    with torch.no_grad():
        assert torch.equal(block(h, e), block.skip(upsample(h, "nearest")))
        z, y = torch.randn(6, 16), torch.tensor([0, 1, 2, 0, 1, 2])
        x = g(z, y)
        assert x.shape == (6, 1, 32, 32)
        assert (x - g(z, (y + 1) % 3)).abs().max() > 1e-4, "the class must reach the image"
        g.cond_weight.fill_(0.0)
        assert torch.equal(g(z, y), g(z, (y + 1) % 3)), "class weight 0 is an unconditional G"
    with pytest.raises(Exception, match="g_norm"):
        CGAN.Config(**{**CGAN.tiny_config(), "g_norm": "layer"})


# Each key a user can set must reach the networks or the step: a key the plugin accepts and
# then ignores gives a run labelled with a recipe it did not train (g_norm was one).
KEY_EFFECTS = [
    ("g_norm", "none"), ("g_pad", "reflect"), ("resample", "bilinear"), ("recon_weight", 1.0),
    ("mbstd_group", 0), ("d_sn", False), ("d_act", "lrelu"), ("loss", "rpgan"), ("gamma", 1.0),
    ("r1_gamma", 1.0), ("lecam", 1.0), ("g_ch4", 32), ("d_ch4", 32), ("convs_per_block", 2),
    ("augment", "brightness"), ("aug_p", 0.9), ("cond_start_kimg", 1.0), ("d_steps", 2),
    ("augself_weight", 1.0), ("uc_res", 16), ("ms_weight", 1.0),
    ("g_skip_z", True),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value"), KEY_EFFECTS, ids=[k for k, _ in KEY_EFFECTS])
def test_every_model_key_reaches_the_training_step(key: str, value: object) -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2

    def first_step(**extra: object) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        cfg = {**CGAN.tiny_config(), "r1_every": 1, **extra}
        if extra.get("cond_start_kimg") is not None:
            cfg["cond_end_kimg"] = 2.0
        torch.manual_seed(0)  # the networks' initial weights come from the global RNG
        gen = CGAN(CGAN.Config(**cfg), _spec(), seed=0)
        gen.setup(acc)
        logs = gen.train_step(x, y, acc)
        return logs, gen.G_plain.state_dict()

    base_logs, base_g = first_step()
    again_logs, again_g = first_step()
    assert again_logs == base_logs and all(torch.equal(again_g[k], base_g[k]) for k in base_g), "deterministic"
    logs, g = first_step(**{key: value})
    same_g = base_g.keys() == g.keys() and all(torch.equal(base_g[k], g[k]) for k in g)
    same_losses = all(logs.get(k) == base_logs[k] for k in ("loss_d", "loss_g"))
    assert not (same_g and same_losses), f"{key}={value} changed neither G nor the step's losses"


def test_sync_bn_is_for_several_gpu_processes() -> None:
    from types import SimpleNamespace

    from accelerate import Accelerator

    from cxraug.errors import UserError

    cfg = CGAN.Config(**{**CGAN.tiny_config(), "sync_bn": True})
    one = CGAN(cfg, _spec(), seed=0)
    one.setup(Accelerator(cpu=True))
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in one.G.modules()), "one process: nothing to sync"
    two_cpu = SimpleNamespace(num_processes=2, device=torch.device("cpu"))
    with pytest.raises(UserError, match=r"sync_bn.*CUDA"):
        CGAN(cfg, _spec(), seed=0).setup(two_cpu)


# --- exact resume, and a test that notices dropped state ----------------------------------------------
def _lively_run(tmp_path: Path, data: Path, steps: int, config: dict) -> Path:
    spec = tiny_spec("cgan", data, steps=steps, checkpoint_every=3)
    spec.model = CGAN.Config(**config)
    run = start_run(spec, tmp_path)
    train(run, spec)
    return run


def _final(run: Path) -> dict:
    return torch.load(runs.checkpoints(run)[-1][1], weights_only=True)["plugin"]


def _same(a: dict, b: dict) -> bool:
    pairs = [(a["G"], b["G"]), (a["D"], b["D"]), (a["ema"]["weights"], b["ema"]["weights"])]
    return all(torch.equal(x[k], y[k]) for x, y in pairs for k in x) and a["ada"] == b["ada"]


def _reinit_decoder(gen: CGAN) -> None:
    for p in _unwrap_d(gen).decoder.parameters():
        torch.nn.init.normal_(p)


DROPS = {
    "ema": lambda gen: gen.ema.model.load_state_dict(gen.G.state_dict()),
    "steps_done": lambda gen: setattr(gen, "steps_done", 0),
    "ada": lambda gen: setattr(gen.ada, "p", LIVELY["aug_p"]),
    "lecam": lambda gen: setattr(gen.anchors, "real", None),
}
DROPS_R3 = {
    "ema": DROPS["ema"],
    # The schedules (gamma, beta2, class weight) run on the images seen: a resume that lost
    # the count would restart the burn-in and the fade-in.
    "images_seen": lambda gen: setattr(gen.ema, "images_seen", 0),
    "decoder": _reinit_decoder,
    "opt_d": lambda gen: gen.opt_d.state.clear(),
}


@pytest.mark.parametrize(("config", "drops"), [(LIVELY, DROPS), (LIVELY_R3, DROPS_R3)], ids=["hinge", "r3"])
def test_lively_resume_is_exact_and_notices_dropped_state(
    tmp_path: Path, phantom32: Path, monkeypatch, config: dict, drops: dict
) -> None:
    straight = _final(_lively_run(tmp_path / "straight", phantom32, 6, config))
    if config is LIVELY:
        assert straight["ada"]["p"] != LIVELY["aug_p"], "ADA moved p"
        assert straight["lecam"]["real"] is not None, "LeCam's anchors moved"
    else:
        assert 0 < float(straight["G"]["cond_weight"]) < 1, "the class is fading in"
    assert straight["steps_done"] == 6 and straight["ema"]["images_seen"] == 48

    def resumed(where: Path) -> dict:
        half = _lively_run(where, phantom32, 3, config)
        train(half, spec_from_run(half, {"steps": 6}), resume=True)
        return _final(half)

    assert _same(straight, resumed(tmp_path / "resumed")), "3 + resume + 3 == 6 straight"
    original = CGAN.load_state
    for piece, drop in drops.items():

        def load_without(self, state, drop=drop):
            original(self, state)
            drop(self)

        monkeypatch.setattr(CGAN, "load_state", load_without)
        assert not _same(straight, resumed(tmp_path / f"drop-{piece}")), f"dropping {piece} must break exactness"
    monkeypatch.setattr(CGAN, "load_state", original)
