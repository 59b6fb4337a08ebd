"""The ``cgan`` plugin: training step (hinge loss, DiffAugment/ADA, LeCam, lazy R1, EMA) and sampling."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cxraug.ema import EMA
from cxraug.errors import UserError
from cxraug.generator import Generator
from cxraug_cgan.augment import AdaptiveP, augment, parse_ops
from cxraug_cgan.config import CGANConfig, CGANSampleOptions
from cxraug_cgan.nets import Discriminator
from cxraug_cgan.nets import Generator as GNet

STANDING_STATS_SEED = 2**31 - 1


def lecam_penalty(d_real: torch.Tensor, d_fake: torch.Tensor, anchor_real: float, anchor_fake: float) -> torch.Tensor:
    """LeCam regulariser (Tseng et al. 2021): pull D(real) down to the moving mean of D(fake)
    and D(fake) up to the moving mean of D(real), one-sided, so D cannot drift apart on a
    small training set."""
    return F.relu(d_real - anchor_fake).square().mean() + F.relu(anchor_real - d_fake).square().mean()


class Anchors:
    """Moving means of D's outputs on reals and fakes (LeCam's anchors); the first batch sets them."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.real: float | None = None
        self.fake: float | None = None

    def update(self, real: float, fake: float) -> None:
        if self.real is None or self.fake is None:
            self.real, self.fake = real, fake
        else:
            self.real = self.decay * self.real + (1 - self.decay) * real
            self.fake = self.decay * self.fake + (1 - self.decay) * fake

    def state_dict(self) -> dict[str, float | None]:
        return {"real": self.real, "fake": self.fake}

    def load_state_dict(self, s: dict[str, float | None]) -> None:
        self.real, self.fake = s["real"], s["fake"]


def _unwrap(module: nn.Module) -> nn.Module:
    return getattr(module, "module", module)


class CGAN(Generator):
    name: ClassVar[str] = "cgan"
    Config = CGANConfig
    SampleOptions = CGANSampleOptions
    description: ClassVar[str] = (
        "conditional GAN: residual G with conditional BatchNorm, projection D with spectral norm, "
        "minibatch std, hinge loss, DiffAugment (fixed or adaptive p), EMA generator, optional LeCam and R1"
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
            s.size, s.num_classes, c.z_dim, c.g_ch, c.max_ch, c.embed_dim, c.convs_per_block, c.g_ch4
        )
        self.D: nn.Module = Discriminator(
            s.size, s.num_classes, c.d_ch, c.max_ch, c.convs_per_block, c.d_ch4, c.d_sn, c.mbstd_group
        )
        self.ema = EMA(self.G, c)
        self.G_ema = self.ema.model
        self.ada = AdaptiveP(c.aug_p, c.ada_target, c.ada_speed_img, c.ada_interval)
        self.anchors = Anchors(c.lecam_decay)
        self.steps_done = 0
        self.opt_g: Any = None
        self.opt_d: Any = None
        self._stats_fresh = False

    def setup(self, accelerator: Any) -> None:
        c = self.config
        opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.G, self.D, self.opt_g, self.opt_d = accelerator.prepare(self.G, self.D, opt_g, opt_d)
        self.G_ema.to(accelerator.device)

    def _noise(self, n: int, g: torch.Generator, truncation: float | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.z_dim, generator=g)
        if truncation is not None:
            while (bad := z.abs() > truncation).any():
                z[bad] = torch.randn(int(bad.sum()), generator=g)
        return z

    def _d_step(
        self, images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator, accelerator: Any, r1: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One discriminator update: reals and fresh fakes in one forward (one DDP forward per backward)."""
        c, n = self.config, images.shape[0]
        z = self._noise(n, rng).to(images.device)
        with accelerator.autocast():
            with torch.no_grad():
                fake = self.G(z, labels)
            real_in = augment(images, self.ops, self.ada.p, rng).detach().requires_grad_(r1)
            fake_in = augment(fake, self.ops, self.ada.p, rng)
            out = self.D(torch.cat([real_in, fake_in]), torch.cat([labels, labels]), parts=2).float()
            d_real, d_fake = out[:n], out[n:]
            loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
            if c.lecam > 0:
                means = accelerator.reduce(torch.stack([d_real.mean(), d_fake.mean()]).detach(), reduction="mean")
                self.anchors.update(float(means[0]), float(means[1]))
                loss_d = loss_d + c.lecam * lecam_penalty(d_real, d_fake, self.anchors.real, self.anchors.fake)
            if r1:
                (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
                loss_d = loss_d + 0.5 * c.r1_gamma * c.r1_every * grad.float().square().sum(dim=(1, 2, 3)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        accelerator.backward(loss_d)
        self.opt_d.step()
        self.ada.observe(d_real, reduce=lambda t: accelerator.reduce(t, reduction="sum"))
        return loss_d, d_real, d_fake

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, accelerator: Any) -> dict[str, float]:
        c, n, dev = self.config, images.shape[0], images.device
        d_plain = _unwrap(self.D)
        rng = self.step_generator(accelerator.process_index)  # CPU: noise and augmentation draws

        # Discriminator: d_steps updates per G update (SNGAN/BigGAN), each on the same real batch
        # freshly augmented against fresh fakes; lazy R1 on the first of them.
        for k in range(c.d_steps):
            r1 = k == 0 and c.r1_gamma > 0 and self.steps_done % c.r1_every == 0
            loss_d, d_real, d_fake = self._d_step(images, labels, rng, accelerator, r1)

        # Generator: through the plain D (no DDP sync of D's unused gradients), D frozen.
        d_plain.requires_grad_(False)
        z = self._noise(n, rng).to(dev)
        with accelerator.autocast():
            out_g = d_plain(augment(self.G(z, labels), self.ops, self.ada.p, rng), labels).float()
            loss_g = -out_g.mean()
        self.opt_g.zero_grad(set_to_none=True)
        accelerator.backward(loss_g)
        self.opt_g.step()
        d_plain.requires_grad_(True)

        self.ema.update(_unwrap(self.G), n * accelerator.num_processes)
        self.steps_done += 1
        self._stats_fresh = False
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": d_real.detach().mean().item(),
            "d_fake": d_fake.detach().mean().item(),
            "aug_p": self.ada.p,
        }

    @torch.no_grad()
    def _standing_stats(self) -> None:
        """BatchNorm statistics of the EMA weights themselves (BigGAN's "standing stats"),
        from a fixed seed so sampling never touches the training RNG."""
        g = torch.Generator().manual_seed(STANDING_STATS_SEED)
        bns = [m for m in self.G_ema.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        self.G_ema.train()
        dev = self.device
        for _ in range(self.config.standing_stats_batches):
            y = torch.randint(0, self.spec.num_classes, (64,), generator=g).to(dev)
            self.G_ema(self._noise(64, g).to(dev), y)
        for m in bns:
            m.momentum = 0.1
        self.G_ema.eval()
        self._stats_fresh = True

    @torch.no_grad()
    def sample(
        self, labels: torch.Tensor, generator: torch.Generator | None = None, options: Any = None
    ) -> torch.Tensor:
        opts = options or self.SampleOptions()
        if not self._stats_fresh:
            self._standing_stats()
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
        return {
            "G": _unwrap(self.G).state_dict(),
            "D": _unwrap(self.D).state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict() if self.opt_g else {},
            "opt_d": self.opt_d.state_dict() if self.opt_d else {},
            "rng": self.rng.get_state(),
            "ada": self.ada.state_dict(),
            "lecam": self.anchors.state_dict(),
            "steps_done": self.steps_done,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        _unwrap(self.G).load_state_dict(state["G"])
        _unwrap(self.D).load_state_dict(state["D"])
        self.ema.load_state_dict(state["ema"])
        if self.opt_g is not None:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])
        self.ada.load_state_dict(state["ada"])
        self.anchors.load_state_dict(state["lecam"])
        self.steps_done = int(state["steps_done"])
        self._stats_fresh = False

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"z_dim": 16, "g_ch": 4, "d_ch": 4, "max_ch": 16, "embed_dim": 8, "standing_stats_batches": 2}

    def export_tensors(self) -> dict[str, torch.Tensor]:
        if not self._stats_fresh:
            self._standing_stats()
        return dict(self.G_ema.state_dict())

    def load_export_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.G_ema.load_state_dict(tensors)
        self._stats_fresh = True
