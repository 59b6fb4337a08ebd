"""How long one classifier step and one evaluation batch take on this machine, measured on a
few steps of random images: what a plan scales by its step budget to say a run's duration
before any run starts. The timed model is thrown away; nothing here touches a dataset."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from cxraug.classify.config import ClassifierConfig
from cxraug.classify.fit import to_model_input
from cxraug.classify.models import build_classifier


@dataclass(frozen=True)
class StepTiming:
    """Seconds of one training step (batch ``batch_size``) and of one evaluation image."""

    train_step_s: float
    eval_image_s: float
    steps_timed: int
    device: str

    def run_seconds(self, steps: int, eval_images: int) -> float:
        """One run: ``steps`` training steps and ``eval_images`` images predicted (validation
        checks times the validation images, plus the test images once)."""
        return steps * self.train_step_s + eval_images * self.eval_image_s


def measure_step(
    cfg: ClassifierConfig, size: int, num_classes: int, device: torch.device, steps: int = 3
) -> StepTiming:
    """Time ``steps`` training steps (after one untimed warm-up step) and one evaluation batch,
    on random uint8 images of ``size`` px. Augmentation is not timed (it is a small share of a step)."""
    model = build_classifier(cfg.model, num_classes).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (cfg.batch_size, 1, size, size), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, num_classes, (cfg.batch_size,), generator=gen)
    x, y = x.to(device), y.to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def one_step() -> None:
        loss = loss_fn(model(to_model_input(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # waits for a GPU: the clock is right

    model.train()
    one_step()  # warm-up: first-call allocation and kernel selection
    t0 = time.perf_counter()
    for _ in range(steps):
        one_step()
    train_s = (time.perf_counter() - t0) / steps
    n_eval = min(cfg.eval_batch_size, 64)
    xe = torch.randint(0, 256, (n_eval, 1, size, size), generator=gen, dtype=torch.uint8).to(device)
    model.eval()
    with torch.no_grad():
        model(to_model_input(xe[:2]))  # warm-up
        t0 = time.perf_counter()
        float(model(to_model_input(xe)).float().softmax(dim=1).sum())
        eval_s = (time.perf_counter() - t0) / n_eval
    return StepTiming(train_s, eval_s, steps, str(device))
