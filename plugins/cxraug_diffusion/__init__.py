"""The diffusion baseline: a class-conditional diffusers UNet with classifier-free guidance.

Registered as ``diffusion`` in the entry-point group ``cxraug.generators`` (pyproject.toml).
"""

from .config import DiffusionConfig, DiffusionSampleOptions
from .plugin import Diffusion

__all__ = ["Diffusion", "DiffusionConfig", "DiffusionSampleOptions"]
