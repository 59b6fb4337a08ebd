"""cxraug from Python: one function per command, the same work the command line does.

Each function takes a typed config object or keyword arguments (paths as ``str`` or ``Path``
alike), sets up threads and malloc as the CLI does (:func:`cxraug.runtime.configure`), and
returns a typed result; nothing is printed. ``cxraug.commands`` parse options, call these and
print. A mistake in the inputs raises :class:`cxraug.errors.UserError` (its message is the
CLI's one line). Warnings a user would want (a size no plugin trains, a class with very few
training images, a score that will take long) go to ``warn`` (default: :func:`warnings.warn`
with :class:`CxraugWarning`). The long ones (train_gen, score, compare, benchmark, study) build a plan
before their first step (what they will do, and how long it should take, from a few steps
timed here): it is on their result (``.plan``), its lines go to ``say`` as soon as it is built
(default: nowhere), and ``plan_only=True`` returns it without doing the work. A walk through
the whole study: docs/api.md.

The work of each command lives in a module of its own (``cxraug.api_prepare``,
``api_generators``, ``api_score``, ``api_compare``, ``api_benchmark``, ``api_study``; shared
helpers in ``api_support``); this module is the one place to import them from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cxraug.api_benchmark import BenchmarkResult, benchmark
from cxraug.api_benchmark import benchmark_config as benchmark_config
from cxraug.api_compare import CompareRun, compare
from cxraug.api_generators import (
    FEW_TRAINING_IMAGES as FEW_TRAINING_IMAGES,
)
from cxraug.api_generators import (
    TrainedRun,
    TrainGenConfig,
    synth,
    train_gen,
)
from cxraug.api_generators import (
    few_training_images as few_training_images,
)
from cxraug.api_generators import (
    resolved_train_config as resolved_train_config,
)
from cxraug.api_prepare import prepare, reduce
from cxraug.api_prepare import trainable_size_warning as trainable_size_warning
from cxraug.api_score import (
    FASTEST_IMG_PER_S_PER_THREAD as FASTEST_IMG_PER_S_PER_THREAD,
)
from cxraug.api_score import (
    SLOW_SCORE_SECONDS as SLOW_SCORE_SECONDS,
)
from cxraug.api_score import (
    Scores,
    score,
)
from cxraug.api_score import (
    measure_img_per_s as measure_img_per_s,
)
from cxraug.api_score import (
    slow_score_warning as slow_score_warning,
)
from cxraug.api_study import report, report_run, study, study_config
from cxraug.api_support import FORCE_HINT as FORCE_HINT
from cxraug.api_support import CxraugWarning
from cxraug.api_support import PathLike as PathLike
from cxraug.api_support import Say as Say
from cxraug.api_support import Warn as Warn
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.data.prepare import PrepareConfig, PrepareResult
from cxraug.study.config import StudyConfig

if TYPE_CHECKING:
    from cxraug.metrics.score import ScoreConfig
    from cxraug.study.runner import StudyResult
    from cxraug.synth import SynthConfig

# Importing this module stays cheap (`cxraug prepare` and `report` never load torch): the
# configs of the torch-side modules are imported when first named.
_LAZY = {"ScoreConfig": "cxraug.metrics.score", "SynthConfig": "cxraug.synth", "StudyResult": "cxraug.study.runner"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cxraug.api' has no attribute {name!r}")


__all__ = [
    "BenchmarkConfig", "BenchmarkResult", "CompareRun", "CxraugWarning", "PrepareConfig", "PrepareResult",
    "ScoreConfig", "Scores", "StudyConfig", "StudyResult", "SynthConfig", "TrainGenConfig", "TrainedRun",
    "benchmark", "compare", "prepare", "reduce", "report", "report_run", "score", "study", "study_config", "synth",
    "train_gen",
]  # fmt: skip
