"""The conditional GAN generator plugin for cxraug (registered as ``cgan``)."""

from cxraug_cgan.plugin import CGAN

__all__ = ["CGAN"]
