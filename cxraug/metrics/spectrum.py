"""The share of an image set's spectral energy in its upper frequency band.

A generator that upsamples by nearest neighbour leaves copies of its low-resolution content
at high frequencies (a grid over the lungs at 64 px); real chest films have little energy
there. Comparing the share in samples with the share in real images of the same size shows
the texture, or its absence, with one number.
"""

from __future__ import annotations

import numpy as np


def high_band_share(images: np.ndarray, band: float = 0.25) -> float:
    """Mean share of the energy (each image's mean removed) at frequencies whose larger axis
    component is at least ``band`` cycles per pixel (0.25: the upper half of the band up to
    Nyquist, where the last 2x upsampling puts its images). ``images``: N x H x W (or N x 1 x H
    x W), any numeric type."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4:
        x = x[:, 0]
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    power = np.abs(np.fft.fft2(x)) ** 2
    fy = np.abs(np.fft.fftfreq(x.shape[-2]))[:, None]
    fx = np.abs(np.fft.fftfreq(x.shape[-1]))[None, :]
    high = np.maximum(fy, fx) >= band
    total = power.sum(axis=(-2, -1))
    keep = total > 0  # a flat image has no spectrum to share out
    if not keep.any():
        return 0.0
    return float((power[:, high].sum(axis=-1)[keep] / total[keep]).mean())
