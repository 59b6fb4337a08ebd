"""cxraug.malloc: when the glibc thresholds are set, and when the user's settings win."""

from __future__ import annotations

import sys

import pytest

from cxraug.malloc import tune_malloc


def test_opt_out_and_user_settings_win() -> None:
    assert tune_malloc({"CXRAUG_MALLOC": "default"}) is False
    assert tune_malloc({"MALLOC_ARENA_MAX": "2"}) is False
    assert tune_malloc({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_applied_on_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not a glibc system")
    assert tune_malloc({}) is True
