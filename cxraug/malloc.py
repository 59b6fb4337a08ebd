"""glibc malloc settings for CPU tensor work.

By default glibc serves large blocks with mmap and returns freed memory at the top of the
heap to the system, with thresholds that adapt as blocks are freed. A UNet forward allocates
and frees activations of a few MiB many times per step, so the same pages are unmapped and
faulted back in over and over: diffusion sampling on the CPU spent about a quarter of its
time in the kernel (85M minor page faults for 1,200 images at 32 px). Fixing both thresholds
keeps those blocks in the heap; `benchmarks/malloc_tuning.py` measures the effect.

The cost is that memory freed by a finished step stays with the process (up to the trim
threshold) instead of going back to the system: peak memory is unchanged.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's maximum on 64-bit: blocks below it come from the heap
TRIM_THRESHOLD = 1 << 30  # return freed heap memory to the system only beyond 1 GiB
OPT_OUT = "CXRAUG_MALLOC"  # =default: leave glibc's own settings


def tune_malloc(environ: dict[str, str] | None = None) -> bool:
    """Fix glibc's mmap and trim thresholds; True if applied. Skipped off Linux/glibc, when
    CXRAUG_MALLOC=default, or when the user set glibc's own MALLOC_* variables or tunables."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or env.get(OPT_OUT, "").lower() == "default":
        return False
    if any(k.startswith("MALLOC_") for k in env) or "glibc.malloc" in env.get("GLIBC_TUNABLES", ""):
        return False  # the user's own allocator settings win
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
