"""The ``cgan`` plugin: training step (hinge or relativistic loss, R1/R2, DiffAugment/ADA, LeCam,
transitional conditioning, a self-supervised D (FastGAN's reconstruction, AugSelf), EMA) and
sampling."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from cxraug.ema import EMA
from cxraug.errors import UserError
from cxraug.generator import Generator
from cxraug_cgan.augment import AdaptiveP, augment, augment_with_params, param_dims, parse_ops
from cxraug_cgan.config import CGANConfig, CGANSampleOptions
from cxraug_cgan.nets import Discriminator, recon_loss
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


def cosine_burnin(images_seen: int, burnin_img: float) -> float:
    """1 at the start of the burn-in, 0 from its end on, a half cosine between (R3GAN's schedules)."""
    if burnin_img <= 0:
        return 0.0
    return 0.5 * (1 + math.cos(math.pi * min(images_seen / burnin_img, 1.0)))


def class_weight(images_seen: int, start_img: float | None, end_img: float | None) -> float:
    """Transitional conditioning (Shahbazi et al. 2022): 0 until ``start_img``, then a linear
    ramp to 1 at ``end_img`` (no ramp: 1 throughout)."""
    if start_img is None or end_img is None:
        return 1.0
    return min(1.0, max(0.0, (images_seen - start_img) / (end_img - start_img)))


def rpgan_loss(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Relativistic pairing loss: softplus(-(first - second)), each real paired with a fake of its
    class. D minimises it with (real, fake), G with (fake, real)."""
    return F.softplus(second - first).mean()


def d_adversarial(loss: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """D's adversarial loss: relativistic pairing, or hinge."""
    if loss == "rpgan":
        return rpgan_loss(d_real, d_fake)
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()


def low_res(images: torch.Tensor, res: int) -> torch.Tensor:
    """Real images at UTLO's low resolution (the average of each block of pixels)."""
    return F.adaptive_avg_pool2d(images, res)


def d_out(res: torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, dict]:
    """D's scores and the extras it was asked for (none: an empty dict)."""
    return res if isinstance(res, tuple) else (res, {})


def zero_centred_penalty(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the squared gradient norm of D's outputs w.r.t. its inputs (R1 on
    reals, R2 on fakes)."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.float().square().sum(dim=(1, 2, 3)).mean()


def augself_d_loss(pred: torch.Tensor, real_params: torch.Tensor, fake_params: torch.Tensor) -> torch.Tensor:
    """AugSelf's D loss: regress the parameters of the reals (the first half of ``pred``) and
    their negation for the fakes, so the task also tells real from fake."""
    n = real_params.shape[0]
    return F.mse_loss(pred[:n].float(), real_params.float()) + F.mse_loss(pred[n:].float(), -fake_params.float())


def augself_g_loss(pred: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """AugSelf's G loss on fakes: nearer the reals' target (+params), away from the fakes' (-params)."""
    p = params.float()
    return F.mse_loss(pred.float(), p) - F.mse_loss(pred.float(), -p)


MS_EPS = 1e-5  # MSGAN's: keeps 1/ratio finite when a pair is identical


def mode_seeking_loss(images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """MSGAN's term on a batch whose halves pair up (image i and i + n/2 share a class): the
    inverse of the images' mean absolute difference over the latents' (small when G spreads
    its images with its latent, large when it collapses them to one)."""
    h = images.shape[0] // 2
    ratio = (images[:h] - images[h : 2 * h]).float().abs().mean() / (z[:h] - z[h : 2 * h]).float().abs().mean()
    return 1 / (ratio + MS_EPS)


def paired_labels(labels: torch.Tensor) -> torch.Tensor:
    """The batch's labels with the second half a copy of the first (an odd last one kept), so
    the G batch holds pairs of one class for the mode seeking term."""
    h = labels.shape[0] // 2
    return torch.cat([labels[:h], labels[:h], labels[2 * h :]])


def _kimg(v: float | None) -> float | None:
    return None if v is None else v * 1000


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
        "conditional GAN: residual G with conditional BatchNorm, projection D, minibatch std, hinge or "
        "relativistic loss with R1/R2, DiffAugment, transitional conditioning, self-supervised D (reconstruction, "
        "AugSelf), EMA generator"
    )
    min_size: ClassVar[int] = 32
    max_size: ClassVar[int] = 256

    config: CGANConfig

    def build(self) -> None:
        c, s = self.config, self.spec
        if s.size & (s.size - 1):
            raise UserError(f"cgan needs a power-of-two image size (32, 64, 128, 256); the data is {s.size} px")
        if c.uc_res is not None and c.uc_res > s.size // 2:
            raise UserError(f"model key 'uc_res': at most half the image size ({s.size // 2} px here), got {c.uc_res}")
        try:
            self.ops = parse_ops(c.augment)
        except ValueError as e:
            raise UserError(f"model key 'augment': {e}") from None
        self.G: nn.Module = GNet(
            s.size,
            s.num_classes,
            c.z_dim,
            c.g_ch,
            c.max_ch,
            c.embed_dim,
            c.convs_per_block,
            c.g_ch4,
            c.resample,
            c.g_pad,
            c.g_norm,
            c.uc_res,
            c.g_skip_z,
        )
        self.D: nn.Module = Discriminator(
            s.size, s.num_classes, c.d_ch, c.max_ch, c.convs_per_block, c.d_ch4, c.d_sn, c.mbstd_group,
            act=c.d_act, resample=c.resample, zero_init=c.d_zero_init, recon=c.recon_weight > 0,
            augself=param_dims(self.ops) if c.augself_weight > 0 else 0, uc_res=c.uc_res,
        )  # fmt: skip
        # The modules themselves, for state, schedules and D's forward without DDP's sync;
        # setup() re-points them through accelerator.unwrap_model once G and D are prepared.
        self.G_plain, self.D_plain = self.G, self.D
        self.ema = EMA(self.G, c)
        self.G_ema = self.ema.model
        self.ada = AdaptiveP(c.aug_p, c.ada_target, c.ada_speed_img, c.ada_interval)
        self.anchors = Anchors(c.lecam_decay)
        self.steps_done = 0
        self.opt_g: Any = None
        self.opt_d: Any = None
        self._stats_for: tuple[bool, float | None] = (False, None)  # (fresh, truncation they were computed at)

    def setup(self, accelerator: Any) -> None:
        c = self.config
        if c.sync_bn and accelerator.num_processes > 1:
            # A small per-process batch makes BatchNorm's statistics noisy under DDP; torch's
            # SyncBatchNorm pools them over processes, on GPUs only. The EMA copy keeps plain
            # BatchNorm (same parameter and buffer names), so exports are unchanged.
            if accelerator.device.type != "cuda":
                raise UserError("model key 'sync_bn' needs CUDA devices (torch's SyncBatchNorm); drop it on CPUs")
            self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
        opt_g = torch.optim.Adam(self.G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
        opt_d = torch.optim.Adam(self.D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
        self.G, self.D, self.opt_g, self.opt_d = accelerator.prepare(self.G, self.D, opt_g, opt_d)
        self.G_plain, self.D_plain = accelerator.unwrap_model(self.G), accelerator.unwrap_model(self.D)
        self.G_ema.to(accelerator.device)

    def _fakes(self, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """G's images and, with UTLO, its low-resolution ones (else None)."""
        return self.G(z, labels, low=True) if self.config.uc_res else (self.G(z, labels), None)

    def _noise(self, n: int, g: torch.Generator, truncation: float | None = None) -> torch.Tensor:
        """Latents on the generator's device (no host-to-device copy per step on a GPU)."""
        z = torch.randn(n, self.config.z_dim, generator=g, device=g.device)
        if truncation is not None:
            z = truncate_noise(z, truncation, g)
        return z

    def _schedules(self) -> float:
        """Set what depends on the images seen so far (all processes): the class weight, Adam's
        beta2; return this step's R1/R2 weight. Derived from the EMA's image count, which is part
        of the state, so resume is exact."""
        c, seen = self.config, self.ema.images_seen
        w = class_weight(seen, _kimg(c.cond_start_kimg), _kimg(c.cond_end_kimg))
        for net in (self.G_plain, self.D_plain):
            net.cond_weight.fill_(w)
        b = cosine_burnin(seen, c.burnin_kimg * 1000)
        if c.beta2_start is not None:
            beta2 = c.beta2 - (c.beta2 - c.beta2_start) * b
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["betas"] = (c.beta1, beta2)
        return c.gamma * (1 + (c.gamma_burnin_mult - 1) * b)

    def _penalty_batch(self, n: int) -> int:
        """How many reals (and as many fakes) carry the R1/R2 penalty: the configured share,
        rounded up to whole minibatch-std groups so the penalised forward groups as the main one."""
        c = self.config
        k = max(1, math.ceil(n * c.gamma_fraction))
        if c.mbstd_group > 1:
            k = min(n, math.ceil(k / c.mbstd_group) * c.mbstd_group)
        return k

    def _d_step(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        rng: torch.Generator,
        accelerator: Any,
        r1: bool,
        gamma: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
        """One discriminator update: reals and fresh fakes in one forward (one DDP forward per backward)."""
        c, n = self.config, images.shape[0]
        z = self._noise(n, rng)
        k = self._penalty_batch(n) if gamma > 0 else 0
        full_penalty = k == n  # R3GAN's exact form: the penalty from the main forward itself
        logs: dict[str, float] = {}
        with accelerator.autocast():
            with torch.no_grad():
                fake, fake_low = self._fakes(z, labels)
            # R1/R2 are taken w.r.t. the images before augmentation (R3GAN), lazy R1 after it.
            real_pre = images.detach().requires_grad_(full_penalty)
            fake_pre = fake.detach().requires_grad_(full_penalty)
            real_in, real_params = augment_with_params(real_pre, self.ops, self.ada.p, rng)
            real_in = real_in.requires_grad_(r1 or full_penalty)
            fake_in, fake_params = augment_with_params(fake_pre, self.ops, self.ada.p, rng)
            low = None
            if fake_low is not None:
                real_low = augment(low_res(images, fake_low.shape[-1]), self.ops, self.ada.p, rng)
                low = torch.cat([real_low, augment(fake_low, self.ops, self.ada.p, rng)])
            heads = {"recon": c.recon_weight > 0, "augself": c.augself_weight > 0}
            out, extras = d_out(
                self.D(torch.cat([real_in, fake_in]), torch.cat([labels, labels]), parts=2, low=low, **heads)
            )
            out = out.float()
            d_real, d_fake = out[:n], out[n:]
            loss_d = d_adversarial(c.loss, d_real, d_fake)
            if "uc" in extras:  # UTLO: alpha/(1+alpha) of the adversarial loss from the unconditional branch
                uc = extras["uc"].float()
                loss_uc = d_adversarial(c.loss, uc[:n], uc[n:])
                loss_d = (loss_d + c.uc_weight * loss_uc) / (1 + c.uc_weight)
                logs["loss_d_uc"] = loss_uc.item()
            if c.lecam > 0:
                means = accelerator.reduce(torch.stack([d_real.mean(), d_fake.mean()]).detach(), reduction="mean")
                self.anchors.update(float(means[0]), float(means[1]))
                loss_d = loss_d + c.lecam * lecam_penalty(d_real, d_fake, self.anchors.real, self.anchors.fake)
            if "recon" in extras:
                rec = recon_loss(extras["recon"], real_in.detach())
                loss_d = loss_d + c.recon_weight * rec
                logs["recon"] = rec.item()
            if "augself" in extras:
                ss = augself_d_loss(extras["augself"], real_params, fake_params)
                loss_d = loss_d + c.augself_weight * ss
                logs["augself_d"] = ss.item()
            if r1:
                (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
                loss_d = loss_d + 0.5 * c.r1_gamma * c.r1_every * grad.float().square().sum(dim=(1, 2, 3)).mean()
            if gamma > 0:
                if full_penalty:
                    r1_pen, r2_pen = zero_centred_penalty(d_real, real_pre), zero_centred_penalty(d_fake, fake_pre)
                else:
                    r1_pen, r2_pen = self._subset_penalty(images[:k], fake[:k], labels[:k], rng)
                loss_d = loss_d + 0.5 * gamma * (r1_pen + r2_pen)
                logs.update(r1=r1_pen.item(), r2=r2_pen.item(), gamma=gamma)
        self.opt_d.zero_grad(set_to_none=True)
        accelerator.backward(loss_d)
        self.opt_d.step()
        self.ada.observe(d_real, reduce=lambda t: accelerator.reduce(t, reduction="sum"))
        return loss_d, d_real, d_fake, logs

    def _subset_penalty(
        self, reals: torch.Tensor, fakes: torch.Tensor, labels: torch.Tensor, rng: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """R1 and R2 on ``k`` reals and fakes in a forward of their own (about 1.4x a step at a
        quarter of the batch at 32 px, against 2x for the whole batch)."""
        real_pre = reals.detach().requires_grad_(True)
        fake_pre = fakes.detach().requires_grad_(True)
        both = torch.cat([augment(real_pre, self.ops, self.ada.p, rng), augment(fake_pre, self.ops, self.ada.p, rng)])
        out = self.D_plain(both, torch.cat([labels, labels]), parts=2).float()
        k = reals.shape[0]
        return zero_centred_penalty(out[:k], real_pre), zero_centred_penalty(out[k:], fake_pre)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, accelerator: Any) -> dict[str, float]:
        c, n, dev = self.config, images.shape[0], images.device
        d_plain = self.D_plain
        rng = self.step_generator(accelerator.process_index, dev)  # noise and augmentation draws
        gamma = self._schedules()

        # Discriminator: d_steps updates per G update (SNGAN/BigGAN), each on the same real batch
        # freshly augmented against fresh fakes; lazy R1 on the first of them.
        for k in range(c.d_steps):
            r1 = k == 0 and c.r1_gamma > 0 and self.steps_done % c.r1_every == 0
            loss_d, d_real, d_fake, logs = self._d_step(images, labels, rng, accelerator, r1, gamma)

        # Generator: through the plain D (no DDP sync of D's unused gradients), D frozen.
        d_plain.requires_grad_(False)
        z = self._noise(n, rng)
        labels_g = paired_labels(labels) if c.ms_weight > 0 else labels
        with accelerator.autocast():
            fake, fake_low = self._fakes(z, labels_g)
            fake_in, fake_params = augment_with_params(fake, self.ops, self.ada.p, rng)
            low = None if fake_low is None else augment(fake_low, self.ops, self.ada.p, rng)
            out_g, extras = d_out(d_plain(fake_in, labels_g, augself=c.augself_weight > 0, low=low))
            out_g = out_g.float()
            ref, ref_extras = None, {}
            if c.loss == "rpgan":
                # The same reals, freshly augmented: constants to G, so no graph is kept for them.
                with torch.no_grad():
                    real_in = augment(images, self.ops, self.ada.p, rng)
                    real_low = None
                    if fake_low is not None:
                        real_low = augment(low_res(images, fake_low.shape[-1]), self.ops, self.ada.p, rng)
                    ref, ref_extras = d_out(d_plain(real_in, labels, low=real_low))
            loss_g = rpgan_loss(out_g, ref.float()) if ref is not None else -out_g.mean()
            if "uc" in extras:
                uc = extras["uc"].float()
                loss_uc = rpgan_loss(uc, ref_extras["uc"].float()) if ref is not None else -uc.mean()
                loss_g = (loss_g + c.uc_weight * loss_uc) / (1 + c.uc_weight)
            if "augself" in extras:
                ss_g = augself_g_loss(extras["augself"], fake_params)
                loss_g = loss_g + c.augself_weight * ss_g
                logs["augself_g"] = ss_g.item()
            if c.ms_weight > 0:
                ms = mode_seeking_loss(fake, z)
                loss_g = loss_g + c.ms_weight * ms
                logs["mode_seeking"] = ms.item()
        self.opt_g.zero_grad(set_to_none=True)
        accelerator.backward(loss_g)
        self.opt_g.step()
        d_plain.requires_grad_(True)

        self.ema.update(self.G_plain, n * accelerator.num_processes)
        self.steps_done += 1
        self._stats_for = (False, None)
        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": d_real.detach().mean().item(),
            "d_fake": d_fake.detach().mean().item(),
            "aug_p": self.ada.p,
            "cond_weight": float(d_plain.cond_weight),
            **logs,
        }

    @torch.no_grad()
    def _standing_stats(self, truncation: float | None = None) -> None:
        """BatchNorm statistics of the EMA weights themselves (BigGAN's "standing stats"),
        from a fixed seed so sampling never touches the training RNG, and from latents drawn
        as sampling draws them (truncated alike: truncation narrows the activations)."""
        g = torch.Generator().manual_seed(STANDING_STATS_SEED)
        bns = [m for m in self.G_ema.modules() if isinstance(m, nn.BatchNorm2d)]
        if not bns:  # a normalisation-free G has no statistics to recompute
            self._stats_for = (True, truncation)
            return
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
        return {
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

    def load_state(self, state: dict[str, Any]) -> None:
        self.G_plain.load_state_dict(state["G"])
        self.D_plain.load_state_dict(state["D"])
        self.ema.load_state_dict(state["ema"])
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
        self.G_ema.load_state_dict(tensors)
        self._stats_for = (True, None)
