"""cxraug: class-conditional generative augmentation for chest X-ray classifiers.

Importing this package is cheap on purpose: torch and friends are imported by the
modules that need them, so ``cxraug --help`` answers instantly.
"""

__version__ = "0.1.0"
