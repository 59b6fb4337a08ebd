"""Real-image features on disk, so scoring many runs costs one pass over the real images.

One safetensors file per (dataset fingerprint, split, class, image size, extractor + weights).
Its header also holds the sha256 of the class's image bytes: a hit needs every key part and
that hash to match, so a re-prepared dataset, other weights or another size never reuse old
features. Writing an entry removes the stale entries of the same split/class/size/extractor.
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cxraug.fsutil import atomic_write_bytes
from cxraug.progress import Reporter

CACHE_DIRNAME = "feature_cache"
_FORMAT = "1"


@dataclass(frozen=True)
class CacheKey:
    fingerprint: str  # the prepared dataset's fingerprint (sha256 of its manifest)
    split: str
    class_name: str
    size: int
    extractor: str  # extractor identity: network name + weights hash

    def stem(self) -> str:
        from cxraug.classes import file_stem

        return f"{self.split}-{file_stem(self.class_name)}-{self.size}px-{self.extractor}"

    def filename(self) -> str:
        return f"{self.stem()}-{self.fingerprint[:16]}.safetensors"


def images_digest(images: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(images.shape).encode())
    for i in range(0, len(images), 1024):
        h.update(np.ascontiguousarray(images[i : i + 1024], dtype=np.uint8).tobytes())
    return h.hexdigest()


def _features_sha(feats: np.ndarray) -> str:
    arr = np.ascontiguousarray(feats)
    return hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes()).hexdigest()


def default_cache_dir(data_root: Path) -> Path:
    """DATA/feature_cache, or the user cache folder where the dataset is read-only."""
    data_root = Path(data_root)
    if os.access(data_root, os.W_OK):
        return data_root / CACHE_DIRNAME
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "cxraug" / CACHE_DIRNAME / data_root.resolve().name


@dataclass
class FeatureCache:
    """``directory=None`` disables caching. ``hits``/``misses`` count lookups (shown to users);
    ``damaged`` counts entries that failed their checksum or did not read, and were rebuilt."""

    directory: Path | None
    hits: int = 0
    misses: int = 0
    damaged: int = 0  # entries found altered or unreadable, and recomputed
    unsaved: int = 0  # entries computed but not stored: the cache folder may not be written

    def load(self, key: CacheKey, digest: str) -> np.ndarray | None:
        if self.directory is None:
            return None
        path = Path(self.directory) / key.filename()
        if not path.is_file():
            return None
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                feats = f.get_tensor("features")
        except (SafetensorError, OSError):  # a truncated or damaged entry is recomputed, never trusted
            self.damaged += 1
            return None
        expected = {**{k: str(v) for k, v in asdict(key).items()}, "images_sha256": digest, "format": _FORMAT}
        if any(meta.get(k) != v for k, v in expected.items()):
            return None
        if meta.get("features_sha256") != _features_sha(feats):  # altered bytes (or an entry before this check)
            self.damaged += 1
            return None
        return feats

    def save(self, key: CacheKey, digest: str, feats: np.ndarray) -> None:
        if self.directory is None:
            return
        d = Path(self.directory)
        try:
            d.mkdir(parents=True, exist_ok=True)
            self._save(d, key, digest, feats)
        except OSError as e:
            # A read-only cache (shared, or another user's) costs time, not correctness: go on.
            if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            self.unsaved += 1

    def _save(self, d: Path, key: CacheKey, digest: str, feats: np.ndarray) -> None:
        from safetensors.numpy import save

        meta = {**{k: str(v) for k, v in asdict(key).items()}, "images_sha256": digest, "format": _FORMAT}
        meta["n"] = str(len(feats))
        meta["features_sha256"] = _features_sha(feats)
        atomic_write_bytes(d / key.filename(), save({"features": np.ascontiguousarray(feats)}, metadata=meta))
        for old in d.glob(f"{key.stem()}-*.safetensors"):  # same slot, older dataset version
            if old.name != key.filename():
                old.unlink(missing_ok=True)

    def features(
        self,
        key: CacheKey,
        images: np.ndarray,
        extractor,
        batch_size: int,
        reporter: Reporter | None = None,
    ) -> np.ndarray:
        """Features of ``images`` from the cache, or extracted and stored."""
        digest = images_digest(images)
        cached = self.load(key, digest)
        if cached is not None and len(cached) == len(images):
            self.hits += 1
            return cached
        self.misses += 1
        what = f"real {key.split} {key.class_name} ({len(images)})"
        feats = extractor.extract(images, batch_size=batch_size, reporter=reporter, what=what)
        self.save(key, digest, feats)
        return feats
