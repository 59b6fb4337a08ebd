"""Train one classifier through Accelerate and select it on validation; predict a split.

The budget is a number of optimiser steps (default: ``epochs`` passes over the training set);
every ``eval_every`` steps (default: each pass) an evaluation on the validation patients, and
the check with the best validation macro AUROC is kept (the earliest on ties). No test images enter here: the
benchmark adds its one look at test after, the reference classifier never does.

Runs identically on a CPU, one GPU or several (``accelerate launch``): the sampler draws the
same indices in every process from (seed, epoch) and Accelerate shards the batches; evaluation
gathers all processes' predictions without the padding duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from cxraug.accel import Trainer
from cxraug.classify.augment import augment_batch
from cxraug.classify.config import ClassifierConfig
from cxraug.classify.models import build_classifier
from cxraug.classify.scores import macro_auroc
from cxraug.classify.trainset import TrainSet
from cxraug.rng import derive_seed, epoch_order


class TrainImages(Dataset):
    """Real training rows (read from the prepared, memory-mapped array) then synthetic images,
    as uint8 1 x S x S tensors: conversion to float happens on the device, per batch."""

    def __init__(self, real_images: np.ndarray, ts: TrainSet) -> None:
        self.real, self.index, self.synth = real_images, ts.real_index, ts.synth_images
        self.labels = ts.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        n_real = len(self.index)
        img = self.real[self.index[i]] if i < n_real else self.synth[i - n_real]
        return torch.from_numpy(np.array(img, dtype=np.uint8))[None], int(self.labels[i])


class EpochSampler(Sampler[int]):
    """A fresh order per epoch from (seed, epoch): a shuffle, or class-balanced draws with
    replacement (each class equally likely) of the same length."""

    def __init__(self, labels: np.ndarray, num_classes: int, mode: str, seed: int) -> None:
        self.labels, self.k, self.mode, self.seed, self.epoch = labels, num_classes, mode, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, scheme="affine", stride=100_003))
        return iter(epoch_order(self.labels, self.mode == "balanced", g).tolist())


def to_model_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> the classifier's input range [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def eval_loader(images: np.ndarray, labels: np.ndarray, cfg: ClassifierConfig) -> DataLoader:
    # Each row carries its index, so the gathered predictions can be checked against the split's order.
    ds = TensorDataset(
        torch.from_numpy(np.array(images, dtype=np.uint8))[:, None],
        torch.from_numpy(labels),
        torch.arange(len(labels)),
    )
    return DataLoader(ds, batch_size=cfg.eval_batch_size, shuffle=False)


@torch.no_grad()
def predict(model: torch.nn.Module, loader: DataLoader, accelerator: Trainer) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels of every row of the loader's split, in the split's order.

    Under several processes each predicts a shard and ``gather_for_metrics`` joins them; the
    gathered row indices prove the join is the split's order, once, without duplicates."""
    model.eval()
    probs, labels, rows = [], [], []
    for x, y, i in loader:
        with accelerator.autocast():
            logits = model(to_model_input(x))
        p, y, i = accelerator.gather_for_metrics((logits.float().softmax(dim=1), y, i))
        probs.append(p.cpu().double().numpy())
        labels.append(y.cpu().numpy())
        rows.append(i.cpu().numpy())
    index = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    n = len(loader.dataset)
    if len(index) != n or not np.array_equal(index, np.arange(n)):
        raise RuntimeError(
            f"gathered predictions are not the split's {n} rows in order (got {len(index)} rows); "
            "this is a bug in the evaluation loop, not in your data"
        )
    return np.concatenate(probs), np.concatenate(labels).astype(np.int64)


@dataclass
class Fitted:
    """A classifier trained and selected on validation; the test split has not been seen."""

    model: torch.nn.Module  # the unwrapped model, holding the selected check's weights
    best_epoch: int  # the selected validation check, counted from 1 (an epoch when checked per epoch)
    history: list[dict]
    val_probs: np.ndarray
    val_labels: np.ndarray
    best_step: int = 0  # the optimiser step of the selected check
    steps: int = 0  # optimiser steps taken


def _budget(cfg: ClassifierConfig, batches_per_pass: int) -> tuple[int, int]:
    """(steps, eval_every): the config's, or ``epochs`` passes checked after each."""
    steps = cfg.steps if cfg.steps is not None else max(1, cfg.epochs * batches_per_pass)
    every = cfg.eval_every if cfg.eval_every is not None else max(1, batches_per_pass)
    return steps, min(every, steps)


def fit_select(
    ts: TrainSet,
    real_train: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
    cfg: ClassifierConfig,
    seed: int,
    accelerator: Trainer,
) -> Fitted:
    """Train for a number of optimiser steps and keep the validation check (every
    ``eval_every`` steps, and the last step) with the best validation macro AUROC.

    The budget is in steps, not passes: arms whose training sets differ in size then get the
    same optimisation, so a bigger set buys no extra training. Passes follow one another with a
    fresh order each (the sampler's epoch).

    Takes no test images at all: callers that must never touch test (the reference classifier
    of ``cxraug score``) use this; the benchmark's ``train_run`` adds the one look at test."""
    from accelerate.utils import set_seed

    set_seed(seed)  # model initialisation (and any other global draw) depends on the seed only
    k = ts.num_classes
    model = build_classifier(cfg.model, k, cfg.weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = EpochSampler(ts.labels, k, ts.sampling, seed)
    train_loader = DataLoader(
        TrainImages(real_train, ts), batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers
    )
    model, optimizer, train_loader, val_loader = accelerator.prepare(
        model, optimizer, train_loader, eval_loader(*val, cfg)
    )
    steps, every = _budget(cfg, len(train_loader))
    # Stepped by hand (not prepared): the schedule then spans exactly the steps this process takes.
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    weight = None if ts.class_weights is None else torch.as_tensor(ts.class_weights, dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight.to(accelerator.device) if weight is not None else None)
    bias = None if ts.logit_bias is None else torch.as_tensor(ts.logit_bias, dtype=torch.float32)
    bias = bias.to(accelerator.device) if bias is not None else None
    aug_gen = torch.Generator().manual_seed(derive_seed(seed, 7_919, scheme="affine"))

    history: list[dict] = []
    best: tuple[float, int, int, dict, np.ndarray, np.ndarray] | None = None
    step, epoch, total, batches = 0, 0, 0.0, 0
    while step < steps:
        model.train()
        sampler.set_epoch(epoch)
        for x, y in train_loader:
            xf = to_model_input(x)
            if ts.augment:
                xf = augment_batch(xf, cfg.augment, aug_gen)
            logits = model(xf)
            if bias is not None:  # logit adjustment: training only, predictions use the plain logits
                logits = logits + bias
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            step, total, batches = step + 1, total + float(loss.detach()), batches + 1
            if step % every == 0 or step == steps:
                val_probs, val_labels = predict(model, val_loader, accelerator)
                score, _ = macro_auroc(val_labels, val_probs)
                check = len(history) + 1
                history.append({"check": check, "step": step, "epoch": round(step / max(len(train_loader), 1), 3),
                                "train_loss": total / max(batches, 1), "val_macro_auroc": score})  # fmt: skip
                total, batches = 0.0, 0
                if best is None or (not math.isnan(score) and (math.isnan(best[0]) or score > best[0])):
                    unwrapped = accelerator.unwrap_model(model)
                    state = {n: t.detach().cpu().clone() for n, t in unwrapped.state_dict().items()}
                    best = (score, check, step, state, val_probs, val_labels)
                model.train()
            if step == steps:
                break
        epoch += 1
    assert best is not None
    _, best_check, best_step, state, val_probs, val_labels = best
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.load_state_dict(state)
    return Fitted(unwrapped, best_check, history, val_probs, val_labels, best_step=best_step, steps=step)
