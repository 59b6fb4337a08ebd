"""Does a generator copy its training images?

For each synthetic image of class c: its nearest training image of class c, in pixels (RMS
difference of grey values scaled to [0, 1]) and in Inception features (Euclidean). The same
is measured for the real images of the validation split (other patients, never trained on):
the ``quantile`` (5 %) of their nearest-training distances, pooled over the scored classes, is
the threshold. A generator whose images are as new as unseen patients' puts about 5 % of its
images below each threshold; one that copies puts far more. It is flagged when the share is
above ``alarm_share`` in pixels *and* in features (blurry images are close in pixels only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

COPY_RMS = 1.0 / 255  # within one grey level on average: a copy up to 8-bit rounding


@dataclass(frozen=True)
class MemorizationConfig:
    quantile: float = 0.05
    alarm_share: float = 0.2
    min_calibration: int = 10  # real validation images needed to set the thresholds
    pairs: int = 16  # closest pairs drawn in the PNG


@dataclass
class ClassNeighbours:
    """Nearest-training-image search results of one class."""

    class_name: str
    syn_px: np.ndarray  # RMS pixel distance of each synthetic image to its nearest train image
    syn_px_idx: np.ndarray  # index of that train image within the class's train images
    syn_feat: np.ndarray
    syn_feat_idx: np.ndarray
    val_px: np.ndarray  # the same for real validation images (calibration)
    val_feat: np.ndarray


@dataclass
class MemorizationResult:
    config: MemorizationConfig
    threshold_px: float | None
    threshold_feat: float | None
    n_calibration: int
    per_class: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    overall: dict[str, float | int | None] = field(default_factory=dict)
    flagged: bool = False
    note: str = ""

    def summary(self) -> dict:
        return {
            "quantile": self.config.quantile,
            "alarm_share": self.config.alarm_share,
            "threshold_pixels_rms": self.threshold_px,
            "threshold_features_l2": self.threshold_feat,
            "n_calibration_val_images": self.n_calibration,
            "overall": self.overall,
            "flagged": self.flagged,
            "note": self.note,
        }


def _rows(x: np.ndarray, scale: float) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(len(x), -1) * np.float32(scale))


def _nearest(
    queries: np.ndarray, refs: np.ndarray, scale: float, q_chunk: int = 1024, r_chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance and index of each query's nearest reference row.

    Rows are converted chunk by chunk (a class of training images stays uint8 in memory);
    the search runs in float32 and the winner's distance is recomputed exactly in float64,
    so a copy measures 0, not float32 round-off.
    """
    n = len(queries)
    best = np.full(n, np.inf)
    idx = np.zeros(n, dtype=np.int64)
    for r0 in range(0, len(refs), r_chunk):
        ref = _rows(refs[r0 : r0 + r_chunk], scale)
        ref_sq = ref.square().sum(1)
        for q0 in range(0, n, q_chunk):
            q = _rows(queries[q0 : q0 + q_chunk], scale)
            d2 = (q.square().sum(1, keepdim=True) + ref_sq[None] - 2 * q @ ref.T).min(dim=1)
            vals, where = d2.values.double().numpy(), d2.indices.numpy() + r0
            better = vals < best[q0 : q0 + len(q)]
            best[q0 : q0 + len(q)][better] = vals[better]
            idx[q0 : q0 + len(q)][better] = where[better]
    exact = np.empty(n)
    for q0 in range(0, n, q_chunk):
        q = np.asarray(queries[q0 : q0 + q_chunk], dtype=np.float64)
        q = q.reshape(len(q), -1)
        r = np.asarray(refs[idx[q0 : q0 + q_chunk]], dtype=np.float64).reshape(len(q), -1)
        exact[q0 : q0 + q_chunk] = np.sqrt((((q - r) * scale) ** 2).sum(1))
    return exact, idx


def nearest_pixels(queries_u8: np.ndarray, refs_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS grey-level distance in [0, 1] to the nearest reference image, and its index."""
    dist, idx = _nearest(queries_u8, refs_u8, scale=1 / 255)
    pixels = int(np.prod(np.shape(queries_u8)[1:]))
    return dist / np.sqrt(pixels), idx


def nearest_features(queries: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _nearest(queries, refs, scale=1.0)


def neighbours(
    class_name: str,
    syn_u8: np.ndarray,
    syn_feat: np.ndarray,
    train_u8: np.ndarray,
    train_feat: np.ndarray,
    val_u8: np.ndarray,
    val_feat: np.ndarray,
) -> ClassNeighbours:
    empty = np.empty(0)
    if len(train_u8) == 0:
        raise ValueError(f"class {class_name!r} has no training image to compare with")
    sp, spi = nearest_pixels(syn_u8, train_u8) if len(syn_u8) else (empty, empty.astype(np.int64))
    sf, sfi = nearest_features(syn_feat, train_feat) if len(syn_u8) else (empty, empty.astype(np.int64))
    vp, _ = nearest_pixels(val_u8, train_u8) if len(val_u8) else (empty, None)
    vf, _ = nearest_features(val_feat, train_feat) if len(val_u8) else (empty, None)
    return ClassNeighbours(class_name, sp, spi, sf, sfi, vp, vf)


def assess(found: list[ClassNeighbours], config: MemorizationConfig) -> MemorizationResult:
    """Calibrate the thresholds on validation images and measure each class's shares."""
    val_px = np.concatenate([c.val_px for c in found]) if found else np.empty(0)
    val_feat = np.concatenate([c.val_feat for c in found]) if found else np.empty(0)
    n_cal = len(val_px)
    calibrated = n_cal >= config.min_calibration
    thr_px = float(np.quantile(val_px, config.quantile)) if calibrated else None
    thr_feat = float(np.quantile(val_feat, config.quantile)) if calibrated else None
    result = MemorizationResult(config, thr_px, thr_feat, n_cal)
    if not calibrated:
        result.note = (
            f"only {n_cal} real validation images in these classes (need {config.min_calibration}): "
            "shares below a calibrated threshold not computed; near-copies still counted"
        )

    def shares(px: np.ndarray, feat: np.ndarray) -> dict[str, float | int | None]:
        n = len(px)
        return {
            "n_synthetic": n,
            "share_below_pixels": float((px < thr_px).mean()) if calibrated and n else None,
            "share_below_features": float((feat < thr_feat).mean()) if calibrated and n else None,
            "near_copies": int((px <= COPY_RMS).sum()),
            "median_nn_pixels": float(np.median(px)) if n else None,
            "median_nn_features": float(np.median(feat)) if n else None,
        }

    for c in found:
        result.per_class[c.class_name] = shares(c.syn_px, c.syn_feat)
    all_px = np.concatenate([c.syn_px for c in found]) if found else np.empty(0)
    all_feat = np.concatenate([c.syn_feat for c in found]) if found else np.empty(0)
    result.overall = shares(all_px, all_feat)
    sp, sf = result.overall["share_below_pixels"], result.overall["share_below_features"]
    near_share = result.overall["near_copies"] / max(1, len(all_px))
    result.flagged = bool(sp is not None and sf is not None and min(sp, sf) > config.alarm_share)
    result.flagged = result.flagged or near_share > config.alarm_share
    return result


def closest_pairs_png(
    found: list[ClassNeighbours],
    syn_images: dict[str, np.ndarray],
    nearest_train: dict[str, np.ndarray],
    result: MemorizationResult,
    title: str,
    per_row: int = 4,
) -> bytes:
    """PNG of the synthetic images closest (in pixels) to a training image, each beside it.
    ``nearest_train[c][i]`` is the nearest training image of ``syn_images[c][i]``.

    Caption of a pair: class, RMS pixel distance, and '*' when below the calibrated threshold.
    """
    import io

    from PIL import Image, ImageDraw

    cand = sorted((float(c.syn_px[i]), c.class_name, i) for c in found for i in range(len(c.syn_px)))
    cand = cand[: result.config.pairs]
    size = next(iter(syn_images.values())).shape[-1]
    tile = max(size, 96)  # small images are upscaled (nearest) so a reader can see them
    label, gap, head = 14, 6, 30
    rows = max(1, -(-len(cand) // per_row))
    width = per_row * (2 * tile + 2 + gap) + gap
    canvas = Image.new("L", (width, head + rows * (tile + label + gap)), color=255)
    draw = ImageDraw.Draw(canvas)
    thr = f"{result.threshold_px:.3f}" if result.threshold_px is not None else "n/a (not calibrated)"
    draw.text((gap, 2), title, fill=0)
    draw.text((gap, 15), f"closest synthetic | train pairs in pixels (rms); * below threshold {thr}", fill=0)
    for k, (dist, name, i) in enumerate(cand):
        r, col = divmod(k, per_row)
        x, y = gap + col * (2 * tile + 2 + gap), head + r * (tile + label + gap)
        for dx, img in ((0, syn_images[name][i]), (tile + 2, nearest_train[name][i])):
            canvas.paste(
                Image.fromarray(np.asarray(img, np.uint8)).resize((tile, tile), Image.NEAREST), (x + dx, y + label)
            )
        mark = " *" if result.threshold_px is not None and dist < result.threshold_px else ""
        draw.text((x, y), f"{name[:16]} {dist:.3f}{mark}", fill=0)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()
