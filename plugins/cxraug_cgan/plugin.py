"""The ``cgan`` plugin: training step (hinge loss, lazy R1, DiffAugment with a fixed or adaptive
p, LeCam, optionally a second D on frozen pretrained features, EMA) and sampling."""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import torch
from torch import nn

from cxraug.accel import RunAccelerator
from cxraug.ema import EMA
from cxraug.errors import UserError
from cxraug.generator import Generator
from cxraug_cgan.augment import AdaptiveP, augment, parse_ops
from cxraug_cgan.config import CGANConfig, CGANSampleOptions
from cxraug_cgan.losses import Anchors, d_hinge, g_hinge, lecam_penalty, r1_penalty
from cxraug_cgan.nets import Discriminator
from cxraug_cgan.nets import Generator as GNet

STANDING_STATS_SEED = 2**31 - 1
# Saved before issue 32, G and D carried the transitional-conditioning weight as a buffer; at
# 1 (the only value today's config accepts) it changed nothing, so it is dropped on load.
LEGACY_BUFFER = "cond_weight"


def without_legacy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A G or D state dict without the pre-issue-32 ``cond_weight`` buffer (refused unless 1)."""
    if LEGACY_BUFFER not in state:
        return state
    if float(state[LEGACY_BUFFER]) != 1.0:
        raise UserError(
            f"this checkpoint was trained with transitional conditioning (cond_weight {float(state[LEGACY_BUFFER])}), "
            "a variant removed from the cgan; commit 940657f is the last that has it"
        )
    return {k: v for k, v in state.items() if k != LEGACY_BUFFER}


REJECTION_ROUNDS = 64  # then the inverse CDF: a tiny truncation never loops for ever


def truncate_noise(z: torch.Tensor, truncation: float, g: torch.Generator) -> torch.Tensor:
    """``z`` with each entry above ``truncation`` in size redrawn from the normal truncated to
    [-t, t]: by rejection for a few rounds (at t=0.5 an entry outlives them with odds 4e-14,
    so what earlier versions drew is drawn again), then what is left in closed form (the
    inverse normal CDF of a uniform draw between Phi(-t) and Phi(t)), so the work is bounded
    for any t > 0."""
    t = float(truncation)
    for _ in range(REJECTION_ROUNDS):
        bad = z.abs() > t
        if not bad.any():
            return z
        z[bad] = torch.randn(int(bad.sum()), generator=g, device=g.device)
    bad = z.abs() > t
    if bad.any():
        lo = 0.5 * math.erfc(t / math.sqrt(2))  # Phi(-t)
        u = torch.rand(int(bad.sum()), generator=g, device=g.device).double()
        x = math.sqrt(2) * torch.erfinv(2 * (lo + u * (1 - 2 * lo)) - 1)
        z[bad] = x.clamp(-t, t).to(z.dtype)
    return z


class CGAN(Generator):
    name: ClassVar[str] = "cgan"
    Config = CGANConfig
    SampleOptions = CGANSampleOptions
    description: ClassVar[str] = (
        "conditional GAN: residual G with conditional BatchNorm, projection D with spectral norm and minibatch "
        "std, hinge loss, DiffAugment, LeCam, R1, optionally a second D on frozen EfficientNet-Lite0 features, "
        "EMA generator"
    )
    min_size: ClassVar[int] = 32
    max_size: ClassVar[int] = 256

    config: CGANConfig

    def build(self) -> None:
        c, s = self.config, self.spec
        if s.size & (s.size - 1):
            raise UserError(f"cgan needs a power-of-two image size (32, 64, 128, 256); the data is {s.size} px")
        try:
            self.ops = parse_ops(c.augment)
        except ValueError as e:
            raise UserError(f"model key 'augment': {e}") from None
        self.G: nn.Module = GNet(
            size=s.size, num_classes=s.num_classes, z_dim=c.z_dim, ch=c.g_ch, max_ch=c.max_ch,
            embed_dim=c.embed_dim, convs=c.convs_per_block,
        )  # fmt: skip
        self.D: nn.Module = Discriminator(
            size=s.size, num_classes=s.num_classes, ch=c.d_ch, max_ch=c.max_ch, convs=c.convs_per_block,
            mbstd_group=c.mbstd_group,
        )  # fmt: skip
        self.DF: nn.Module | None = None
        if c.d_features:
            from cxraug_cgan.projected import FeatureDiscriminator  # needs the `features` extra

            self.DF = FeatureDiscriminator(size=s.size, num_classes=s.num_classes, upsample=c.d_features_upsample)
        # The modules themselves, for state and for G's step without DDP's sync; setup()
        # re-points them through accelerator.unwrap_model once the networks are prepared.
        self.G_plain, self.D_plain, self.DF_plain = self.G, self.D, self.DF
        self.ema = EMA(self.G, c)
        self.G_ema = self.ema.model
        self.ada = AdaptiveP(c.aug_p, c.ada_target, c.ada_speed_img)
        self.anchors = Anchors()
        self.steps_done = 0
        self.opt_g: torch.optim.Optimizer | None = None  # made by setup()
        self.opt_d: torch.optim.Optimizer | None = None
        self._stats_for: tuple[bool, float | None] = (False, None)  # (fresh, truncation they were computed at)

    def setup(self, accelerator: RunAccelerator) -> None:
        c = self.config
        if c.sync_bn and accelerator.num_processes > 1:
            # A small per-process batch makes BatchNorm's statistics noisy under DDP; torch's
            # SyncBatchNorm pools them over processes, on GPUs only. The EMA copy keeps plain
            # BatchNorm (same parameter and buffer names), so exports are unchanged.
            if accelerator.device.type != "cuda":
                raise UserError("model key 'sync_bn' needs CUDA devices (torch's SyncBatchNorm); drop it on CPUs")
            self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
        d_params = itertools.chain(self.D.parameters(), self.DF.parameters() if self.DF is not None else ())
        opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        opt_d = torch.optim.Adam(d_params, lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.G, self.D, self.opt_g, self.opt_d = accelerator.prepare(self.G, self.D, opt_g, opt_d)
        self.G_plain, self.D_plain = accelerator.unwrap_model(self.G), accelerator.unwrap_model(self.D)
        if self.DF is not None:
            self.DF = accelerator.prepare(self.DF)
            self.DF_plain = accelerator.unwrap_model(self.DF)
        self.G_ema.to(accelerator.device)

    def _noise(self, n: int, g: torch.Generator, truncation: float | None = None) -> torch.Tensor:
        """Latents on the generator's device (no host-to-device copy per step on a GPU)."""
        z = torch.randn(n, self.config.z_dim, generator=g, device=g.device)
        if truncation is not None:
            z = truncate_noise(z, truncation, g)
        return z

    def features_weight(self) -> float:
        """This step's weight of the feature D: 0 when off or still warming up (Vision-aided GAN
        adds it after a warm-up). From the EMA's image count, part of the state: resume is exact."""
        c = self.config
        if self.DF is None or self.ema.images_seen < c.d_features_warmup_kimg * 1000:
            return 0.0
        return c.d_features_weight

    def _d_step(
        self, images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator, accelerator: RunAccelerator, wf: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
        """One discriminator update: reals and fresh fakes in one forward per D (one DDP forward
        per backward); the feature D scores the same augmented images."""
        c, n = self.config, images.shape[0]
        r1 = c.r1_gamma > 0 and self.steps_done % c.r1_every == 0
        z = self._noise(n, rng)
        logs: dict[str, float] = {}
        with accelerator.autocast():
            with torch.no_grad():
                fake = self.G(z, labels)
            real_in = augment(images.detach(), self.ops, self.ada.p, rng).requires_grad_(r1)
            fake_in = augment(fake, self.ops, self.ada.p, rng)
            both, labels2 = torch.cat([real_in, fake_in]), torch.cat([labels, labels])
            out = self.D(both, labels2, parts=2).float()
            d_real, d_fake = out[:n], out[n:]
            loss_d = d_hinge(d_real, d_fake)
            if c.lecam > 0:
                means = accelerator.reduce(torch.stack([d_real.mean(), d_fake.mean()]).detach(), reduction="mean")
                self.anchors.update(float(means[0]), float(means[1]))
                loss_d = loss_d + c.lecam * lecam_penalty(d_real, d_fake, self.anchors.real, self.anchors.fake)
            if wf > 0:
                assert self.DF is not None
                f = self.DF(both.detach(), labels2, grad_to_input=False).float()
                loss_f = d_hinge(f[:n], f[n:])
                loss_d = loss_d + wf * loss_f
                logs.update(loss_d_features=loss_f.item(), df_real=f[:n].mean().item(), df_fake=f[n:].mean().item())
            if r1:
                loss_d = loss_d + 0.5 * c.r1_gamma * c.r1_every * r1_penalty(d_real, real_in)
        self.opt_d.zero_grad(set_to_none=True)
        accelerator.backward(loss_d)
        self.opt_d.step()
        self.ada.observe(d_real, reduce=lambda t: accelerator.reduce(t, reduction="sum"))
        return loss_d, d_real, d_fake, logs

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, accelerator: RunAccelerator) -> dict[str, float]:
        n, dev = images.shape[0], images.device
        rng = self.step_generator(accelerator.process_index, dev)  # noise and augmentation draws
        wf = self.features_weight()
        loss_d, d_real, d_fake, logs = self._d_step(images, labels, rng, accelerator, wf)

        # Generator: through the plain discriminators (no DDP sync of their unused gradients), frozen.
        critics = [self.D_plain] + ([self.DF_plain] if wf > 0 else [])
        for net in critics:
            net.requires_grad_(False)
        z = self._noise(n, rng)
        with accelerator.autocast():
            fake_in = augment(self.G(z, labels), self.ops, self.ada.p, rng)
            loss_g = g_hinge(self.D_plain(fake_in, labels).float())
            if wf > 0:
                loss_g = loss_g + wf * g_hinge(self.DF_plain(fake_in, labels).float())
        self.opt_g.zero_grad(set_to_none=True)
        accelerator.backward(loss_g)
        self.opt_g.step()
        for net in critics:
            net.requires_grad_(True)

        self.ema.update(self.G_plain, n * accelerator.num_processes)
        self.steps_done += 1
        self._stats_for = (False, None)
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": d_real.detach().mean().item(),
            "d_fake": d_fake.detach().mean().item(),
            "aug_p": self.ada.p,
            **logs,
        }

    @torch.no_grad()
    def _standing_stats(self, truncation: float | None = None) -> None:
        """BatchNorm statistics of the EMA weights themselves (BigGAN's "standing stats"),
        from a fixed seed so sampling never touches the training RNG, and from latents drawn
        as sampling draws them (truncated alike: truncation narrows the activations)."""
        g = torch.Generator().manual_seed(STANDING_STATS_SEED)
        bns = [m for m in self.G_ema.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        self.G_ema.train()
        dev = self.device
        for _ in range(self.config.standing_stats_batches):
            y = torch.randint(0, self.spec.num_classes, (64,), generator=g).to(dev)
            self.G_ema(self._noise(64, g, truncation).to(dev), y)
        for m in bns:
            m.momentum = 0.1
        self.G_ema.eval()
        self._stats_for = (True, truncation)

    @torch.no_grad()
    def sample(
        self, labels: torch.Tensor, generator: torch.Generator | None = None, options: Any = None
    ) -> torch.Tensor:
        opts = options or self.SampleOptions()
        if self._stats_for != (True, opts.truncation):
            self._standing_stats(opts.truncation)
        g = generator or torch.Generator().manual_seed(0)
        z = self._noise(len(labels), g, opts.truncation).to(self.device)
        return self.G_ema(z, labels.to(self.device)).float()

    @property
    def device(self) -> torch.device:
        return next(self.G_ema.parameters()).device

    def to(self, device: torch.device | str) -> CGAN:
        self.G_ema.to(device)
        return self

    def state(self) -> dict[str, Any]:
        state = {
            "G": self.G_plain.state_dict(),
            "D": self.D_plain.state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict() if self.opt_g else {},
            "opt_d": self.opt_d.state_dict() if self.opt_d else {},
            "rng": self.rng.get_state(),
            "ada": self.ada.state_dict(),
            "lecam": self.anchors.state_dict(),
            "steps_done": self.steps_done,
        }
        if self.DF_plain is not None:  # the heads and the mixing; the frozen backbone comes from its package
            state["DF"] = self.DF_plain.state_dict()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.G_plain.load_state_dict(without_legacy(state["G"]))
        self.D_plain.load_state_dict(without_legacy(state["D"]))
        if self.DF_plain is not None:
            self.DF_plain.load_state_dict(state["DF"])
        self.ema.load_state_dict({**state["ema"], "weights": without_legacy(state["ema"]["weights"])})
        if self.opt_g is not None:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])
        self.ada.load_state_dict(state["ada"])
        self.anchors.load_state_dict(state["lecam"])
        self.steps_done = int(state["steps_done"])
        self._stats_for = (False, None)

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"z_dim": 16, "g_ch": 4, "d_ch": 4, "max_ch": 16, "embed_dim": 8, "standing_stats_batches": 2}

    def export_tensors(self) -> dict[str, torch.Tensor]:
        if self._stats_for != (True, None):
            self._standing_stats()
        return dict(self.G_ema.state_dict())

    def load_export_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.G_ema.load_state_dict(without_legacy(tensors))
        self._stats_for = (True, None)
