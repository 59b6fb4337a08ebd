"""What ``cxraug score`` and ``cxraug compare`` are about to do, said before they do it: the
images whose features they will extract (synthetic ones drawn per class and source, the
split's real ones, the training images memorization compares with) and an estimate of the
time, from a few images sampled and a batch of features extracted here and now.

The estimate is an upper bound on feature work: real features already in the cache are read,
not extracted again. The reference classifier of fidelity / FD cxr, when it is not cached,
trains first and is not in the estimate (the plan says so).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cxraug.data.prepared import PreparedData
from cxraug.metrics.registry import metrics_in
from cxraug.metrics.score import ScoreConfig
from cxraug.metrics.sources import FakeSource
from cxraug.progress import NullReporter, duration_text

if TYPE_CHECKING:
    from cxraug.metrics.features import FeatureExtractor

TIMED_IMAGES = 8  # images sampled, and features extracted, to time each


@dataclass
class ExtractionPlan:
    command: str  # "score" or "compare"
    data: str
    split: str
    classes: list[str]
    real: dict[str, int]  # class -> real images of the split
    synthetic: dict[str, dict[str, int]]  # source -> class -> images drawn
    memorization: int  # training (and, on test, validation) images featured for memorization
    extract_s: float  # seconds per image of feature extraction, measured
    sample_s: dict[str, float] = field(default_factory=dict)  # source -> seconds per image drawn
    reference: bool = False  # fidelity / FD cxr: the reference classifier may train first

    @property
    def n_synthetic(self) -> int:
        return sum(sum(c.values()) for c in self.synthetic.values())

    @property
    def n_extract(self) -> int:
        return self.n_synthetic + sum(self.real.values()) + self.memorization

    @property
    def seconds(self) -> float:
        draw = sum(self.sample_s.get(s, 0.0) * sum(c.values()) for s, c in self.synthetic.items())
        return draw + self.n_extract * self.extract_s

    def to_json(self) -> dict[str, object]:
        """The plan as ``--json --plan`` prints it: every field, and the totals the lines say."""
        from dataclasses import asdict

        return {"kind": "plan", **asdict(self), "n_extract": self.n_extract, "seconds": round(self.seconds, 1)}

    def lines(self) -> list[str]:
        out = [f"plan of {self.command} on {self.data} ({self.split} split), {len(self.classes)} classes:"]
        for source, counts in self.synthetic.items():
            per = sorted(set(counts.values()))
            each = f"{per[0]} per class" if len(per) == 1 else f"{min(per)} to {max(per)} per class"
            speed = self.sample_s.get(source)
            rate = f", about {1 / speed:,.0f} img/s measured" if speed else ""
            out.append(f"  {source}: {sum(counts.values()):,} images to draw ({each}){rate}")
        out.append(
            f"  real images of the split: {sum(self.real.values()):,} "
            f"({', '.join(f'{c} {n}' for c, n in self.real.items())}); cached features are read, not extracted"
        )
        if self.memorization:
            which = "training images" if self.split == "val" else "training and validation images"
            out.append(f"  memorization: {self.memorization:,} {which} to compare with")
        out.append(
            f"  features to extract: at most {self.n_extract:,} images ({self.extract_s * 1e3:.1f} ms an image "
            f"measured on {TIMED_IMAGES}); estimated time: at most {duration_text(self.seconds)}"
        )
        if self.reference:
            out.append("  fidelity / FD cxr: the reference classifier trains first unless cached (not in the estimate)")
        return out


def time_extraction(extractor: FeatureExtractor, size: int, batch_size: int) -> float:
    """Seconds per image of the extractor, on a few random images (after a warm-up batch)."""
    imgs = np.random.default_rng(0).integers(0, 256, (TIMED_IMAGES, size, size), dtype=np.uint8)
    extractor.extract(imgs[:2], batch_size)
    t0 = time.perf_counter()
    extractor.extract(imgs, batch_size)
    return (time.perf_counter() - t0) / TIMED_IMAGES


def time_drawing(source: FakeSource, class_name: str) -> float:
    """Seconds per image drawn from ``source`` (a generator samples, a set reads)."""
    n = source.drawn(class_name, TIMED_IMAGES)
    if n == 0:
        return 0.0
    t0 = time.perf_counter()
    source.draw(class_name, n, NullReporter())
    return (time.perf_counter() - t0) / n


def extraction_plan(
    command: str,
    data: PreparedData,
    classes: list[str],
    cfg: ScoreConfig,
    sources: dict[str, FakeSource],
    extractor: FeatureExtractor,
) -> ExtractionPlan:
    """The plan of scoring every source in ``sources`` against ``data``'s ``cfg.split``."""
    counts = {split: data.counts(split) for split in ("train", "val", cfg.split)}
    mem = 0
    if cfg.memorization:  # the training images, and the validation ones it calibrates on (unless scored already)
        mem = sum(counts["train"].get(c, 0) for c in classes)
        mem += 0 if cfg.split == "val" else sum(counts["val"].get(c, 0) for c in classes)
    synthetic = {label: {c: s.drawn(c, cfg.n) for c in classes} for label, s in sources.items()}
    return ExtractionPlan(
        command=command,
        data=data.name,
        split=cfg.split,
        classes=list(classes),
        real={c: counts[cfg.split].get(c, 0) for c in classes},
        synthetic=synthetic,
        memorization=mem,
        extract_s=time_extraction(extractor, data.size, cfg.batch_size),
        sample_s={label: time_drawing(s, classes[0]) for label, s in sources.items()},
        reference=bool(metrics_in(cfg.metrics, "reference")),
    )
