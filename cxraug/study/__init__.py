"""``cxraug study``: the whole question in one command, answered as a curve over the rare
class's size N (see docs/study.md)."""

from cxraug.study.config import StudyConfig, build_config
from cxraug.study.runner import StudyResult, run_study

__all__ = ["StudyConfig", "StudyResult", "build_config", "run_study"]
