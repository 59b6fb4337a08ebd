"""The reference classifier: a chest-X-ray judge trained on the dataset's own training patients.

``cxraug score --metrics fidelity,fd_cxr`` needs a network that knows these classes: the
classifier core's (cxraug.classify, the benchmark's too), trained on the **train** split and selected on **val** (best macro
AUROC), never given a test image. It is cached as safetensors under
``CACHE/reference/`` per (dataset fingerprint, train/val image and label hashes, classes, size,
settings, precision, device type), so scoring many runs trains it once; an entry whose key or weights checksum does not
match is retrained, and a lock makes a second process wait for the first instead of training
twice. Its penultimate features (the input of its last linear layer) give the chest-X-ray
feature space; its softmax gives p(class | image).

It trains and extracts in full float32 (no mixed precision inherited from a calling
``train-gen``, no TF32) on one device. Validation patients are halved: one half selects the
epoch, the other (never used for selection) measures its per-class recall, the fidelity
ceiling; a ceiling measured on the selection images would be optimistic.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.errors import UserError
from cxraug.fsutil import short
from cxraug.progress import NullReporter, Reporter

REFERENCE_DIRNAME = "reference"
TRAINING_SPLITS = ("train", "val")  # the only splits the reference classifier ever reads
_FORMAT = "2"  # 2: float32 only, the ceiling on val patients not used for selection
PRECISION = "fp32"  # no mixed precision, no TF32: part of the cache key
CEILING_SEED = 7  # which val patients measure the ceiling (the others select the epoch)

if TYPE_CHECKING:  # torch is imported where it is used: ScoreConfig holds a ReferenceConfig
    import torch


@dataclass(frozen=True)
class ReferenceConfig:
    """What the reference classifier depends on (all of it is part of its cache key)."""

    model: str = "resnet18"  # a classifier model name (cxraug.classify.models.MODELS)
    epochs: int = 8
    arm: str = "reweight"  # loss weights 1/n_c: top-1 decisions do not simply favour the big classes
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def validate(self) -> None:
        from cxraug.classify.models import MODELS
        from cxraug.classify.trainset import REAL_ARMS

        if self.model not in MODELS:
            raise UserError(f"unknown reference model {short(self.model, 60)!r}; known: {', '.join(MODELS)}")
        if self.epochs < 1:
            raise UserError(f"reference epochs must be at least 1 (got {self.epochs})")
        if self.arm not in REAL_ARMS:
            raise UserError(f"unknown reference arm {short(self.arm, 60)!r}; known: {', '.join(REAL_ARMS)}")
        if self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise UserError("reference batch size and learning rate must be positive, weight decay >= 0")

    def settings(self) -> dict[str, Any]:
        return asdict(self)


def _split(data: PreparedData, split: str) -> tuple[np.ndarray, np.ndarray]:
    # The one door to the dataset: the test split cannot reach training or selection.
    assert split in TRAINING_SPLITS, f"the reference classifier must never read the {split} split"
    return np.asarray(data.images(split)), data.labels(split)


def _split_digest(images: np.ndarray, labels: np.ndarray) -> str:
    from cxraug.metrics.cache import images_digest

    return hashlib.sha256(images_digest(images).encode() + np.ascontiguousarray(labels, np.int64).tobytes()).hexdigest()


def reference_key(data: PreparedData, cfg: ReferenceConfig, device_type: str, fp: str | None = None) -> dict[str, Any]:
    """Everything a trained reference depends on; a cached one is used only if all of it matches.
    The device type is in it: the same float32 training gives other weights on a GPU."""
    digests = {f"{s}_sha256": _split_digest(*_split(data, s)) for s in TRAINING_SPLITS}
    return {
        "format": _FORMAT,
        "fingerprint": fp or fingerprint(data),
        **digests,
        "classes": data.classes,
        "size": data.size,
        "settings": cfg.settings(),
        "precision": PRECISION,
        "device": device_type,
    }


def ceiling_rows(data: PreparedData) -> np.ndarray:
    """Val rows (bool) that measure the ceiling: about half the val patients of each class,
    never used for selection. A class with one val patient keeps it here (a ceiling of its own)."""
    from cxraug.classify.trainset import split_patients
    from cxraug.data.records import Record
    from cxraug.data.splits import carve_patients

    labels = data.labels("val")
    records = [
        Record(image_id=str(i), patient_id=str(p), label=data.classes[int(y)], split="val")
        for i, (p, y) in enumerate(zip(split_patients(data, "val"), labels, strict=True))
    ]
    carved = carve_patients(records, 0.5, CEILING_SEED, "select", "ceiling")
    return np.array([r.split == "ceiling" for r in carved], dtype=bool)


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def cache_path(cache_dir: Path, data: PreparedData, cfg: ReferenceConfig, key: dict[str, Any]) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", data.name)
    name = f"{slug}-{cfg.model}-{_sha(cfg.settings())[:12]}-{_sha(key)[:12]}.safetensors"
    return Path(cache_dir) / REFERENCE_DIRNAME / name


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """Checksum of the weights (names, dtypes, shapes, bytes): the reference's identity."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _load(path: Path, key: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(weights, training record) of a cache entry, or None if absent, stale or damaged."""
    if not path.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        if json.loads(meta.get("key", "null")) != key or meta.get("weights_sha256") != state_sha256(state):
            return None
        return state, json.loads(meta["record"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError):  # truncated or foreign: retrained
        return None


def _save(path: Path, key: dict[str, Any], state: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
    from safetensors.torch import save

    from cxraug.fsutil import atomic_write_bytes

    meta = {
        "key": json.dumps(key, sort_keys=True),
        "record": json.dumps(record),
        "weights_sha256": record["weights_sha256"],
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic_write_bytes(path, save(tensors, metadata=meta))
    slot = path.name.rsplit("-", 1)[0]  # same dataset name, model and settings: an older dataset version
    for old in path.parent.glob(f"{slot}-*.safetensors"):
        if old.name != path.name:
            old.unlink(missing_ok=True)


def _val_metrics(classes: list[str], labels: np.ndarray, probs: np.ndarray) -> list[dict[str, Any]]:
    from cxraug.classify.scores import one_vs_rest_auroc

    top1 = probs.argmax(axis=1)
    out = []
    for c, name in enumerate(classes):
        pos = labels == c
        recall = float((top1[pos] == c).mean()) if pos.any() else None
        auroc = one_vs_rest_auroc(labels, probs, c)
        out.append(
            {"class": name, "n_val": int(pos.sum()), "recall_top1": recall, "auroc": None if np.isnan(auroc) else auroc}
        )
    return out


def train_reference(
    data: PreparedData, cfg: ReferenceConfig, device: torch.device, reporter: Reporter | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train on the train split, select on half the val patients (the benchmark's loop), measure
    the per-class recall on the other half; float32 on ``device`` alone; never reads test."""
    from cxraug.accel import make_accelerator
    from cxraug.classify.config import ClassifierConfig
    from cxraug.classify.fit import eval_loader, fit_select, predict
    from cxraug.classify.scores import macro_auroc
    from cxraug.classify.trainset import real_train_set
    from cxraug.metrics.features import no_tf32
    from cxraug.rng import preserved_rng

    t0 = time.perf_counter()
    train_images, train_labels = _split(data, "train")
    val_images, val_labels = _split(data, "val")
    ceiling = ceiling_rows(data) if len(val_labels) else np.zeros(0, bool)
    if len(np.unique(train_labels)) < 2 or ceiling.all():
        raise UserError(
            f"{data.root}: the reference classifier needs training images of at least 2 classes and "
            "validation patients to select on and others to measure it on (2 or more val patients of one class); fidelity and fd_cxr cannot be computed"
        )
    ts = real_train_set(cfg.arm, cfg.arm, train_labels, np.arange(len(train_labels)), len(data.classes))
    clf = ClassifierConfig(
        model=cfg.model, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    accelerator = make_accelerator(one_device=device)  # float32 here, whatever a calling run uses
    what = f"reference classifier: {cfg.model}, {cfg.epochs} epochs on {len(train_labels)} train images"
    select = (val_images[~ceiling], val_labels[~ceiling])
    # fit_select seeds the global RNGs: inside train-gen they are the run's, so they are restored after.
    with (reporter or NullReporter()).task(what, None), preserved_rng(), no_tf32():
        fitted = fit_select(ts, train_images, select, clf, cfg.seed, accelerator)
        held_probs, held_labels = predict(
            fitted.model,
            accelerator.prepare(eval_loader(val_images[ceiling], val_labels[ceiling], clf)),
            accelerator,
        )
    state = {k: v.detach().cpu().clone() for k, v in fitted.model.state_dict().items()}
    macro, n_classes = macro_auroc(held_labels, held_probs)
    select_macro = macro_auroc(fitted.val_labels, fitted.val_probs)[0]
    record = {
        "weights_sha256": state_sha256(state),
        "trained_on": {"split": "train", "n": len(train_labels), "per_class": np.bincount(train_labels, minlength=len(data.classes)).tolist()},
        "selected_on": {"split": "val", "part": "selection half of the val patients", "n": len(select[1]),
                        "rule": "best val macro AUROC", "best_epoch": fitted.best_epoch,
                        "val_macro_auroc": None if np.isnan(select_macro) else select_macro},
        "ceiling_on": {"split": "val", "part": "the other val patients (not used for selection)",
                       "n": int(ceiling.sum()), "rows": np.flatnonzero(ceiling).tolist()},
        "test_split": "never read",
        "precision": PRECISION,
        "val_macro_auroc": None if np.isnan(macro) else macro,
        "val_macro_auroc_classes": n_classes,
        "val_per_class": _val_metrics(data.classes, held_labels, held_probs),
        "history": fitted.history,
        "seconds": round(time.perf_counter() - t0, 2),
        "device": str(device),
    }  # fmt: skip
    return state, record


def _last_linear(model: torch.nn.Module) -> torch.nn.Linear:
    import torch

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise RuntimeError("the reference classifier has no linear head")
    return linears[-1]


@dataclass
class ReferenceClassifier:
    """A trained reference on a device. As a feature extractor (the protocol of
    ``cxraug.metrics.features``) it gives the penultimate features; ``probs`` turns those into
    p(class | image) through the head, so one pass over the images serves both metrics."""

    model: torch.nn.Module
    head: torch.nn.Linear
    device: torch.device
    classes: list[str]
    config: ReferenceConfig
    record: dict[str, Any]
    cache: dict[str, Any] = field(default_factory=dict)  # where it is stored, and whether it was reused
    name: str = "cxr-reference"

    @property
    def num_features(self) -> int:
        return int(self.head.in_features)

    @property
    def weights_sha256(self) -> str:
        return str(self.record["weights_sha256"])

    @property
    def identity(self) -> str:
        return f"{self.name}-{self.config.model}-{self.weights_sha256[:16]}"

    def val_class(self, class_name: str) -> dict[str, Any]:
        return next(r for r in self.record["val_per_class"] if r["class"] == class_name)

    def ceiling_mask(self, val_labels: np.ndarray, class_name: str) -> np.ndarray:
        """Of the val rows of ``class_name`` (in split order), those not used for selection."""
        held = np.zeros(len(val_labels), dtype=bool)
        held[np.asarray(self.record["ceiling_on"]["rows"], dtype=np.int64)] = True
        return held[val_labels == self.classes.index(class_name)]

    def describe(self) -> dict[str, Any]:
        """Recorded next to every number that uses the reference."""
        return {
            "model": self.config.model,
            "settings": self.config.settings(),
            "features": self.num_features,
            "weights_sha256": self.weights_sha256,
            **{k: self.record[k] for k in ("trained_on", "selected_on", "test_split", "val_macro_auroc", "precision")},
            "ceiling_on": {k: v for k, v in self.record["ceiling_on"].items() if k != "rows"},
            "val_per_class": self.record["val_per_class"],
            "seconds_to_train": self.record["seconds"],
            "cache": self.cache,
            "comparable": "only with numbers from the same dataset and reference settings (same weights_sha256)",
        }

    def extract(
        self, images: np.ndarray, batch_size: int = 64, reporter: Reporter | None = None, what: str = "images"
    ) -> np.ndarray:
        """uint8 N x S x S -> float32 N x num_features (the head's input)."""
        import torch

        from cxraug.classify.fit import to_model_input
        from cxraug.metrics.features import no_tf32

        out = np.empty((len(images), self.num_features), dtype=np.float32)
        seen: list[torch.Tensor] = []
        hook = self.head.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        try:
            task = (reporter or NullReporter()).task(f"reference features: {what}", total=len(images))
            with task as advance, torch.no_grad(), no_tf32():
                for i in range(0, len(images), batch_size):
                    batch = torch.from_numpy(np.array(images[i : i + batch_size], dtype=np.uint8))[:, None]
                    seen.clear()
                    self.model(to_model_input(batch.to(self.device)))
                    out[i : i + len(batch)] = seen[-1].reshape(len(batch), -1).float().cpu().numpy()
                    advance(len(batch))
        finally:
            hook.remove()
        return out

    def probs(self, features: np.ndarray) -> np.ndarray:
        """p(class | image), N x classes, from penultimate features."""
        import torch

        if len(features) == 0:
            return np.empty((0, len(self.classes)), np.float64)
        w, b = self.head.weight.detach().cpu().double(), self.head.bias.detach().cpu().double()
        return torch.softmax(torch.from_numpy(features).double() @ w.T + b, dim=1).numpy()


def _build(
    state: dict[str, torch.Tensor],
    record: dict[str, Any],
    data: PreparedData,
    cfg: ReferenceConfig,
    device: torch.device,
) -> ReferenceClassifier:
    import torch

    from cxraug.classify.fit import to_model_input
    from cxraug.classify.models import build_classifier

    model = build_classifier(cfg.model, len(data.classes))
    model.load_state_dict(state)
    model.eval().to(device)
    ref = ReferenceClassifier(model, _last_linear(model), device, data.classes, cfg, record)
    # The head must be the last step: logits = head(features), or probs() would not be the model's.
    probe = np.random.default_rng(0).integers(0, 256, (2, data.size, data.size), dtype=np.uint8)
    with torch.no_grad():
        logits = model(to_model_input(torch.from_numpy(probe)[:, None].to(device))).double().softmax(dim=1).cpu()
    if not torch.allclose(logits, torch.from_numpy(ref.probs(ref.extract(probe))), atol=1e-4):
        raise RuntimeError(f"model {cfg.model}: its last linear layer is not its output; cannot use it as a reference")
    return ref


def load_reference(
    data: PreparedData,
    cfg: ReferenceConfig,
    cache_dir: Path | None,
    device: str | torch.device | None = None,  # "auto", "cpu", "cuda", a torch.device, or None (auto)
    reporter: Reporter | None = None,
) -> ReferenceClassifier:
    """The reference for ``data`` and ``cfg``: from the cache when its key matches, else trained
    (and stored, unless ``cache_dir`` is None). Concurrent callers wait for one training."""
    from cxraug.accel import resolve_device
    from cxraug.lock import output_lock

    cfg.validate()
    dev = resolve_device(device)
    key = reference_key(data, cfg, dev.type)
    if cache_dir is None:
        state, record = train_reference(data, cfg, dev, reporter)
        info: dict[str, Any] = {"path": None, "reused": False}
    else:
        path = cache_path(cache_dir, data, cfg, key)
        with output_lock(path, "reference classifier", wait=True):
            loaded = _load(path, key)
            if loaded is None:
                state, record = train_reference(data, cfg, dev, reporter)
                _save(path, key, state, record)
            else:
                state, record = loaded
        info = {"path": str(path), "reused": loaded is not None}
    ref = _build(state, record, data, cfg, dev)
    ref.cache = info
    return ref
