"""The ``diffusion`` generator: a class-conditional DDPM behind cxraug's Generator contract."""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F

from cxraug.accel import RunAccelerator
from cxraug.errors import UserError
from cxraug.generator import Generator, SampleOptions

from .config import DiffusionConfig, DiffusionSampleOptions


class Diffusion(Generator):
    """diffusers UNet2DModel with class embeddings (+ a null class for classifier-free guidance),
    trained with the DDPM objective; sampled with DDIM, DPM-Solver++ or DDPM from the EMA weights."""

    name: ClassVar[str] = "diffusion"
    Config: ClassVar[type[DiffusionConfig]] = DiffusionConfig
    SampleOptions: ClassVar[type[DiffusionSampleOptions]] = DiffusionSampleOptions
    description: ClassVar[str] = (
        "class-conditional DDPM (diffusers UNet2DModel, classifier-free guidance, EMA); "
        "DDIM / DPM-Solver++ / DDPM sampling"
    )
    min_size: ClassVar[int] = 32
    max_size: ClassVar[int] = 256

    config: DiffusionConfig

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"block_out_channels": [8, 16], "layers_per_block": 1}

    # --- building and training -------------------------------------------------------------
    def build(self) -> None:
        from diffusers import DDPMScheduler

        from cxraug.ema import EMA

        from .model import build_unet

        self.model = build_unet(self.config, self.spec)  # the live weights (unwrapped)
        self.ema = EMA(self.model, self.config)
        self.noise_scheduler = DDPMScheduler(**self.config.schedule_kwargs())
        self.null_label = self.spec.num_classes
        self.steps_done = 0
        self.train_model: torch.nn.Module | None = None  # accelerator-prepared model (DDP-wrapped on several processes)
        self.optimizer: torch.optim.Optimizer | None = None

    def setup(self, accelerator: RunAccelerator) -> None:
        c = self.config
        self.ema.model.to(accelerator.device)
        opt = torch.optim.AdamW(
            self.model.parameters(), lr=c.lr, betas=c.adam_betas, eps=c.adam_eps, weight_decay=c.weight_decay
        )
        self.train_model, self.optimizer = accelerator.prepare(self.model, opt)
        self.train_model.train()

    def _lr(self) -> float:
        warm = self.config.lr_warmup_steps
        return self.config.lr * min(1.0, (self.steps_done + 1) / warm) if warm else self.config.lr

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, accelerator: RunAccelerator) -> dict[str, float]:
        if self.optimizer is None:
            raise RuntimeError("Diffusion.setup(accelerator) must be called before train_step")
        n, device = images.shape[0], images.device
        gen = self.step_generator(accelerator.process_index, device)
        rand_device = gen.device
        noise = torch.randn(images.shape, generator=gen, device=rand_device).to(device)
        t = torch.randint(0, self.config.num_train_timesteps, (n,), generator=gen, device=rand_device).to(device)
        drop = torch.rand(n, generator=gen, device=rand_device).to(device) < self.config.cond_drop_prob
        labels = torch.where(drop, torch.full_like(labels, self.null_label), labels)

        x_t = self.noise_scheduler.add_noise(images, noise, t)
        if self.config.prediction_type == "epsilon":
            target = noise
        else:
            target = self.noise_scheduler.get_velocity(images, noise, t)
        with accelerator.autocast():
            pred = self.train_model(x_t, t, class_labels=labels, return_dict=False)[0]
        loss = F.mse_loss(pred.float(), target.float())
        accelerator.backward(loss)
        if self.config.grad_clip > 0:
            accelerator.clip_grad_norm_(self.train_model.parameters(), self.config.grad_clip)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model, n * accelerator.num_processes)
        self.steps_done += 1
        return {"loss": float(loss.detach())}

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "rng": self.rng.get_state(),
            "steps_done": self.steps_done,
        }
        if self.optimizer is not None:
            out["optimizer"] = self.optimizer.state_dict()
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.rng.set_state(state["rng"])
        self.steps_done = int(state["steps_done"])
        if self.optimizer is not None and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])

    # --- sampling and export -----------------------------------------------------------------
    def parse_sample_options(self, values: dict[str, Any]) -> DiffusionSampleOptions:
        options = cast(DiffusionSampleOptions, super().parse_sample_options(values))
        options.resolved_steps(self.config.num_train_timesteps)  # steps within the schedule
        return options

    def sample(
        self,
        labels: torch.Tensor,
        generator: torch.Generator | None = None,
        options: SampleOptions | None = None,
    ) -> torch.Tensor:
        from .sampling import denoise, guided, make_scheduler

        if options is None:
            opts = DiffusionSampleOptions()
        elif isinstance(options, DiffusionSampleOptions):
            opts = options
        else:
            opts = self.parse_sample_options(options.model_dump())
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.ndim != 1 or (len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < self.null_label):
            raise ValueError(f"labels must be a 1-D tensor of class indices in [0, {self.null_label})")
        device = self.device
        s, c = self.spec.size, self.spec.channels
        rand_device = generator.device if generator is not None else torch.device("cpu")
        noise = torch.randn((len(labels), c, s, s), generator=generator, device=rand_device).to(device)
        model = self.ema.model

        def model_fn(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return model(x, t, class_labels=y, return_dict=False)[0]

        scheduler = make_scheduler(opts, self.config.schedule_kwargs())
        steps = opts.resolved_steps(self.config.num_train_timesteps)
        with torch.inference_mode():
            x = denoise(
                guided(model_fn, opts.guidance, self.null_label), noise, labels.to(device), scheduler, steps,
                eta=opts.eta, generator=generator,
            )  # fmt: skip
        return x.clamp(-1.0, 1.0)

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.ema.model.state_dict())

    def load_export_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        try:
            self.ema.model.load_state_dict(tensors)
        except RuntimeError as e:
            first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
            raise UserError(
                f"the exported diffusion weights do not match the config beside them ({first}); re-export the run"
            ) from None
        self.model.load_state_dict(tensors)  # training resumes from the EMA weights if asked to

    @property
    def device(self) -> torch.device:
        return next(self.ema.model.parameters()).device

    def to(self, device: torch.device | str) -> Diffusion:
        self.ema.model.to(device)
        return self
