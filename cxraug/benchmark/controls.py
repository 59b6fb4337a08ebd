"""Matched controls for a synthetic arm: the same number of added images per class, but images
that are either "more of what we have" or carry no class information at all.

- ``copy``: the class's own real training images, drawn with replacement up to the count the
  synthetic arm adds. If synthetic images only help as much as this, they add nothing a
  longer look at the real images does not.
- ``noise``: phase-randomised real training images (Fourier amplitude kept, phase replaced by
  that of white noise, then the source's own pixel values put back in rank order: the same
  grey-level histogram and about the same power spectrum, no anatomy). The source images are
  drawn from *every* class's training images, so the label carries no information about the
  picture. If synthetic images only help as much as this, the help is "more labelled pixels"
  (a regulariser, cf. Baradad et al., NeurIPS 2021), not what the images show.

Both are drawn from the rows the arm's real images come from (the training split, after any
controlled imbalance) and nowhere else, deterministically from (seed, class): the same seed
gives the same control in every run. No torch here.
"""

from __future__ import annotations

import numpy as np

from cxraug.errors import UserError

_COPY, _NOISE = 1, 2  # salts: the two controls of one seed draw independently


def copy_rows(quota: dict[int, int], labels: np.ndarray, rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows (of ``rows``) repeated to fill ``quota`` per class, and their labels."""
    picked, out_labels = [], []
    for c, n in sorted(quota.items()):
        own = rows[labels[rows] == c]
        if n and not len(own):
            raise UserError(
                f"the copy control needs real training images of class index {c}, and there are none; "
                "leave the controls out with --no-controls"
            )
        rng = np.random.default_rng([seed, c, _COPY])
        picked.append(np.sort(rng.choice(own, size=n, replace=True)) if n else own[:0])
        out_labels.append(np.full(n, c, dtype=np.int64))
    return _join(picked, out_labels)


def noise_sources(quota: dict[int, int], rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows whose spectra and histograms the noise images of each class borrow (drawn
    from all classes alike), and the labels the noise images get."""
    picked, out_labels = [], []
    for c, n in sorted(quota.items()):
        rng = np.random.default_rng([seed, c, _NOISE])
        picked.append(rng.choice(rows, size=n, replace=True) if n else rows[:0])
        out_labels.append(np.full(n, c, dtype=np.int64))
    return _join(picked, out_labels)


def _join(parts: list[np.ndarray], labels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(parts).astype(np.int64), np.concatenate(labels)


def phase_randomise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 N x S x S -> N x S x S: each image's amplitude spectrum with a white-noise phase,
    then its own pixel values assigned by rank (the histogram is exactly the source's)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 3 or not len(x):
        return np.asarray(images, dtype=np.uint8).copy()
    amplitude = np.abs(np.fft.rfft2(x))
    # The phase of a real white-noise image's transform is Hermitian-symmetric, so the result is real.
    phase = np.angle(np.fft.rfft2(rng.standard_normal(x.shape)))
    mixed = np.fft.irfft2(amplitude * np.exp(1j * phase), s=x.shape[1:])
    n = len(x)
    flat = mixed.reshape(n, -1)
    order = np.argsort(flat, axis=1, kind="stable")
    values = np.sort(np.asarray(images, dtype=np.uint8).reshape(n, -1), axis=1)
    out = np.empty_like(values)
    np.put_along_axis(out, order, values, axis=1)
    return out.reshape(images.shape)


def control_images(
    kind: str, quota: dict[int, int], real_train: np.ndarray, labels: np.ndarray, rows: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 images, labels, the training rows they come from) of a ``copy`` or ``noise``
    control; ``rows`` are the training rows the arm may use (its real images)."""
    if kind == "copy":
        src, out_labels = copy_rows(quota, labels, rows, seed)
    elif kind == "noise":
        src, out_labels = noise_sources(quota, rows, seed)
    else:
        raise ValueError(f"unknown control {kind}")
    check_training_rows(src, rows)
    order = np.argsort(src, kind="stable")  # read the memory-mapped array in order
    images = np.empty((len(src), *real_train.shape[1:]), dtype=np.uint8)
    images[order] = np.asarray(real_train[src[order]], dtype=np.uint8)
    if kind == "noise":
        images = phase_randomise(images, np.random.default_rng([seed, _NOISE, len(src)]))
    return images, out_labels, src


def check_training_rows(src: np.ndarray, rows: np.ndarray) -> None:
    """The leakage guard: a control is made of the arm's own training rows, never any other."""
    if len(src) and not np.isin(src, rows).all():
        raise RuntimeError("a control drew an image outside the arm's training rows; this is a bug in cxraug")
