"""The cgan recipe: the shared EMA window, LeCam, R1, DiffAugment ops, the minibatch std, the
removed variants (old runs still load, a run of a removed variant is refused), and an exact
resume whose test fails when any piece of training state is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cxraug_cgan import CGAN
from cxraug_cgan.augment import OPS, augment
from cxraug_cgan.losses import Anchors, d_hinge, g_hinge, lecam_penalty, r1_penalty
from cxraug_cgan.nets import Discriminator, Generator, widths
from gen_helpers import tiny_spec

from cxraug import runs
from cxraug.ema import EMA, EMASettings, ema_beta
from cxraug.errors import UserError
from cxraug.train import spec_from_run, start_run, train

# A tiny config in which every piece of state moves within a few steps of batch 8: the EMA
# averages (no ramp-up: a half-life of 32 images), ADA adjusts p every 4 steps, R1 runs every
# second step, LeCam's anchors move, D sees the minibatch std.
LIVELY = {
    **CGAN.tiny_config(), "ema_kimg": 0.032, "ema_rampup": None, "aug_p": 0.5, "ada_target": 0.0,
    "ada_speed_img": 64, "r1_gamma": 1.0, "r1_every": 2, "lecam": 0.3, "mbstd_group": 4,
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


# --- the networks -------------------------------------------------------------------------------------
def test_widths_double_per_halving_up_to_the_cap() -> None:
    assert widths(32, 16, 256) == [64, 32, 16]
    assert widths(64, 16, 32) == [32, 32, 32, 16]
    g = Generator(size=32, num_classes=3, z_dim=16, ch=16, max_ch=256, embed_dim=8)
    d = Discriminator(size=32, num_classes=3, ch=16, max_ch=256)
    assert g(torch.randn(2, 16), torch.tensor([0, 2])).shape == (2, 1, 32, 32)
    assert d(torch.rand(2, 1, 32, 32), torch.tensor([0, 2])).shape == (2,)
    with pytest.raises(TypeError):  # keyword arguments only: a config key cannot land in the wrong place
        Generator(32, 3, 16, 16, 256, 8)  # type: ignore[misc]


def test_minibatch_std_sees_collapse_and_never_mixes_real_with_fake() -> None:
    from cxraug_cgan.nets import MinibatchStd, group_sizes

    layer = MinibatchStd(4)
    same = torch.rand(1, 3, 8, 8).expand(8, -1, -1, -1)
    assert layer(same).shape == (8, 4, 8, 8)
    assert layer(same)[:, 3].max() < 1e-3, "a collapsed batch has no spread"
    assert layer(torch.rand(8, 3, 8, 8))[:, 3].min() > 0.1
    assert layer(torch.rand(6, 3, 8, 8))[:, 3].shape == (6, 8, 8), "a group of 3 when 4 does not divide 6"
    # A prime batch (7 per part) has no divisor <= 4 but 1: groups of 4 and 3, never of one.
    assert group_sizes(7, 4) == [4, 3] and group_sizes(5, 4) == [5] and group_sizes(13, 4) == [4, 4, 5]
    spread7 = layer(torch.rand(14, 3, 8, 8), parts=2)[:, 3, 0, 0]
    assert spread7.min() > 0.1, "the layer stays on with 7 samples per part"
    assert torch.equal(spread7[:4], spread7[:1].expand(4)) and spread7[3] != spread7[4]

    torch.manual_seed(0)
    d = Discriminator(size=32, num_classes=2, ch=8, max_ch=64, mbstd_group=4).eval()
    real, y = torch.rand(6, 1, 32, 32), torch.tensor([0, 1, 0, 1, 0, 1])
    a = d(torch.cat([real, torch.rand(6, 1, 32, 32)]), torch.cat([y, y]), parts=2)
    b = d(torch.cat([real, torch.rand(6, 1, 32, 32)]), torch.cat([y, y]), parts=2)
    assert torch.allclose(a[:6], b[:6]), "D's verdict on the reals does not depend on the fakes"
    c = d(torch.cat([real, torch.rand(6, 1, 32, 32)]), torch.cat([y, y]))  # one part: groups straddle
    assert not torch.allclose(a[:6], c[:6])


# --- the losses -------------------------------------------------------------------------------------
def test_hinge_losses_by_hand() -> None:
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0])
    # relu(1 - real) = [0, 0.5, 2] -> 2.5 / 3; relu(1 + fake) = [0, 1] -> 1 / 2
    assert float(d_hinge(real, fake)) == pytest.approx(2.5 / 3 + 0.5)
    assert float(g_hinge(fake)) == pytest.approx(1.0)


def test_r1_penalty_by_hand() -> None:
    """D(x) = sum(w * x^2) has gradient 2 w x: the penalty is the mean over samples of |2 w x|^2."""
    w = torch.tensor([[[[1.0, -2.0], [0.5, 0.0]]]])
    x = torch.tensor([[[[1.0, 1.0], [2.0, 3.0]]], [[[0.0, -1.0], [1.0, 1.0]]]], requires_grad=True)
    out = (w * x.square()).sum(dim=(1, 2, 3))
    # sample 0: grads [2, -4, 2, 0] -> 24; sample 1: [0, 4, 1, 0] -> 17
    assert r1_penalty(out, x).item() == pytest.approx((24 + 17) / 2)


def test_r1_enters_the_discriminator_loss_lazily() -> None:
    from accelerate import Accelerator

    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    acc = Accelerator(cpu=True)
    losses = {}
    for gamma in (0.0, 100.0):
        torch.manual_seed(0)
        gen = CGAN(CGAN.Config(**{**CGAN.tiny_config(), "r1_gamma": gamma, "r1_every": 2}), _spec(), seed=0)
        gen.setup(acc)
        losses[gamma] = [gen.train_step(x, y, acc)["loss_d"] for _ in range(2)]
    assert losses[100.0][0] > losses[0.0][0], "step 0: R1 runs"
    assert losses[100.0][1] != losses[0.0][1]  # the weights differ after step 0; step 1 has no R1 term


# Each key a user can set must reach the networks or the step: a key the plugin accepts and
# then ignores gives a run labelled with a recipe it did not train (g_norm once was one).
KEY_EFFECTS = [
    ("mbstd_group", 0), ("r1_gamma", 1.0), ("lecam", 1.0), ("convs_per_block", 2), ("augment", "brightness"),
    ("aug_p", 0.9), ("g_ch", 8), ("d_ch", 8), ("max_ch", 8), ("z_dim", 32), ("embed_dim", 16), ("lr_g", 1e-2),
    ("lr_d", 1e-2), ("beta1", 0.5), ("beta2", 0.5),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value"), KEY_EFFECTS, ids=[k for k, _ in KEY_EFFECTS])
def test_every_model_key_reaches_the_training_step(key: str, value: object) -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2

    def two_steps(**extra: object) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        torch.manual_seed(0)  # the networks' initial weights come from the global RNG
        gen = CGAN(CGAN.Config(**{**CGAN.tiny_config(), "r1_every": 1, **extra}), _spec(), seed=0)
        gen.setup(acc)
        gen.train_step(x, y, acc)
        return gen.train_step(x, y, acc), gen.G_plain.state_dict()

    base_logs, base_g = two_steps()
    again_logs, again_g = two_steps()
    assert again_logs == base_logs and all(torch.equal(again_g[k], base_g[k]) for k in base_g), "deterministic"
    logs, g = two_steps(**{key: value})
    same_g = base_g.keys() == g.keys() and all(torch.equal(base_g[k], g[k]) for k in g)
    same_losses = all(logs.get(k) == base_logs[k] for k in ("loss_d", "loss_g"))
    assert not (same_g and same_losses), f"{key}={value} changed neither G nor the step's losses"


def test_the_config_is_the_recipe() -> None:
    """About 25 keys (issue 32), each documented in docs/plugins/cgan.md."""
    keys = list(CGAN.Config.model_fields)
    assert len(keys) <= 26, keys
    doc = (Path(__file__).parents[1] / "docs" / "plugins" / "cgan.md").read_text()
    assert not [k for k in keys if f"`{k}`" not in doc], "every key in the docs' table"


def test_a_feature_d_setting_without_the_feature_d_is_refused() -> None:
    from cxraug.config import validated

    with pytest.raises(UserError, match=r"'d_features_upsample' is a setting of the feature D: add d_features=true"):
        validated(CGAN.Config, {"d_features_upsample": 2}, "model key")
    assert CGAN.Config(d_features=True, d_features_upsample=2).d_features_upsample == 2


def test_sync_bn_is_for_several_gpu_processes() -> None:
    from types import SimpleNamespace

    from accelerate import Accelerator

    cfg = CGAN.Config(**{**CGAN.tiny_config(), "sync_bn": True})
    one = CGAN(cfg, _spec(), seed=0)
    one.setup(Accelerator(cpu=True))
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in one.G.modules()), "one process: nothing to sync"
    two_cpu = SimpleNamespace(num_processes=2, device=torch.device("cpu"))
    with pytest.raises(UserError, match=r"sync_bn.*CUDA"):
        CGAN(cfg, _spec(), seed=0).setup(two_cpu)


# --- the removed variants -----------------------------------------------------------------------------
def test_a_removed_key_at_its_off_value_is_dropped_and_any_other_refused() -> None:
    from cxraug_cgan.config import REMOVED_KEYS

    from cxraug.config import validated

    old = {**CGAN.Config().model_dump(mode="json"), **REMOVED_KEYS}  # what a run saved before issue 32 stores
    assert validated(CGAN.Config, old, "model key") == CGAN.Config()
    for key, value in [("uc_res", 8), ("loss", "rpgan"), ("d_steps", 2), ("g_norm", "none"), ("ada_interval", 2)]:
        with pytest.raises(UserError, match=rf"^model key in c.json: '{key}' = .*removed.*940657f") as e:
            validated(CGAN.Config, {**old, key: value}, "model key in c.json")
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="unknown model key 'bogus'"):
        validated(CGAN.Config, {**old, "bogus": 1}, "model key")


def _as_saved_before_issue_32(path: Path) -> None:
    """Rewrite a run's config and checkpoints as the code before issue 32 wrote them: every
    removed key at its off value, and the ``cond_weight`` buffer (1) in G, D and the EMA."""
    import json

    from cxraug_cgan.config import REMOVED_KEYS

    cfg = json.loads((path / runs.CONFIG).read_text())
    cfg["model"] = {**cfg["model"], **REMOVED_KEYS}
    (path / runs.CONFIG).write_text(json.dumps(cfg))
    from cxraug import checkpoint

    for _, ckpt in runs.checkpoints(path):
        blob = torch.load(ckpt, weights_only=True)
        st = blob["plugin"]
        for sd in (st["G"], st["D"], st["ema"]["weights"]):
            sd["cond_weight"] = torch.tensor(1.0)
        checkpoint.save(ckpt, blob)


def test_a_run_saved_before_issue_32_resumes_and_one_of_a_removed_variant_is_refused(
    tmp_path: Path, phantom32: Path
) -> None:
    straight = _final(_lively_run(tmp_path / "straight", phantom32, 6, LIVELY))
    half = _lively_run(tmp_path / "old", phantom32, 3, LIVELY)
    _as_saved_before_issue_32(half)
    train(half, spec_from_run(half, {"steps": 6}), resume=True)
    assert _same(straight, _final(half)), "an old run of today's recipe resumes exactly"

    import json

    cfg = json.loads((half / runs.CONFIG).read_text())
    cfg["model"]["uc_res"] = 8
    (half / runs.CONFIG).write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"'uc_res' = 8: that variant was removed from the cgan") as e:
        spec_from_run(half, {"steps": 9})
    assert "\n" not in str(e.value)


def test_an_old_export_with_the_class_weight_buffer_loads(tmp_path: Path) -> None:
    gen = CGAN(CGAN.Config(**CGAN.tiny_config()), _spec(), seed=0)
    tensors = {**gen.export_tensors(), "cond_weight": torch.tensor(1.0)}
    twin = CGAN(CGAN.Config(**CGAN.tiny_config()), _spec(), seed=1)
    twin.load_export_tensors(tensors)
    labels = torch.tensor([0, 1])
    g = torch.Generator().manual_seed(0)
    assert torch.equal(twin.sample(labels, torch.Generator().manual_seed(0)), gen.sample(labels, g))
    with pytest.raises(UserError, match="transitional conditioning"):
        twin.load_export_tensors({**tensors, "cond_weight": torch.tensor(0.5)})


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
    if "DF" in a or "DF" in b:
        pairs.append((a["DF"], b["DF"]))
    return all(torch.equal(x[k], y[k]) for x, y in pairs for k in x) and a["ada"] == b["ada"]


DROPS = {
    "ema": lambda gen: gen.ema.model.load_state_dict(gen.G.state_dict()),
    "steps_done": lambda gen: setattr(gen, "steps_done", 0),
    "ada": lambda gen: gen.ada.load_state_dict({"p": LIVELY["aug_p"], "sign_sum": 0.0, "count": 0, "steps": 0}),
    "lecam": lambda gen: setattr(gen.anchors, "real", None),
    "opt_d": lambda gen: gen.opt_d.state.clear(),
}


def test_lively_resume_is_exact_and_notices_dropped_state(tmp_path: Path, phantom32: Path, monkeypatch) -> None:
    straight = _final(_lively_run(tmp_path / "straight", phantom32, 6, LIVELY))
    assert straight["ada"]["p"] != LIVELY["aug_p"], "ADA moved p"
    assert straight["lecam"]["real"] is not None, "LeCam's anchors moved"
    assert straight["steps_done"] == 6 and straight["ema"]["images_seen"] == 48

    def resumed(where: Path) -> dict:
        half = _lively_run(where, phantom32, 3, LIVELY)
        train(half, spec_from_run(half, {"steps": 6}), resume=True)
        return _final(half)

    assert _same(straight, resumed(tmp_path / "resumed")), "3 + resume + 3 == 6 straight"
    original = CGAN.load_state
    for piece, drop in DROPS.items():

        def load_without(self, state, drop=drop):
            original(self, state)
            drop(self)

        monkeypatch.setattr(CGAN, "load_state", load_without)
        assert not _same(straight, resumed(tmp_path / f"drop-{piece}")), f"dropping {piece} must break exactness"
    monkeypatch.setattr(CGAN, "load_state", original)
