"""Sample quality: FID/KID with the standard Inception network, precision/recall,
density/coverage, a memorization check, and a feature cache.

Modules: ``inception`` (weights from a local file, the network), ``features`` (extraction),
``cache`` (real features on disk), ``stats`` (the distances), ``registry`` (name-keyed metrics
shared by ``score`` and training), ``memorization``, ``sources`` (generator or synthetic set),
``score`` (per-class scoring), ``report`` (files), ``training`` (FID during training).

Importing this package does not import torch: the functions below import lazily.
"""

from __future__ import annotations

from typing import Any


def fid_during_training(generator: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
    """See :func:`cxraug.metrics.training.fid_during_training`."""
    from cxraug.metrics.training import fid_during_training as run

    return run(generator, data, **kwargs)


def load_feature_extractor(weights_path: Any = None, device: Any = None) -> Any:
    """See :func:`cxraug.metrics.features.load_feature_extractor`."""
    from cxraug.metrics.features import load_feature_extractor as load

    return load(weights_path, device)
