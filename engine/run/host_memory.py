"""Keep freed host memory in the process: ``keep_freed_memory()``, once at start.

A CPU training step allocates and frees the same large activations every step (each of
the hatchling's [8, 256, 768] MLP tensors is 6 MiB). glibc's malloc hands the top of its
heap back to the kernel whenever more than a few MiB there are free, so the next step
takes every page again as a page fault: ~7,000 minor faults a step at 8 × 256, and the
kernel zeroing ~30 MB of pages the step then overwrites. Telling malloc to keep freed
memory (a high trim threshold, some top padding, and a fixed mmap threshold so large
tensors come from the heap rather than their own mmap) took that to ~300 faults a step
and made fp32 steps 2–8% faster (docs/benchmarks.md). Peak memory does not change: what is
kept is what the step itself needed a moment ago.

glibc only (Linux); elsewhere, or when the user set any MALLOC_* variable or a malloc
GLIBC_TUNABLES of their own, nothing is changed. PyTorch has no caching allocator for
CPU tensors, so this is the one place to do it; GPU memory is not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

TRIM_THRESHOLD = 1 << 30  # freed heap kept up to this much before any is returned
TOP_PAD = 64 << 20  # grow the heap in steps this large (fewer brk calls)
# The largest fixed value glibc accepts on 64-bit (HEAP_MAX_SIZE / 2); larger tensors
# (a big model's) still get their own mmap, as before.
MMAP_THRESHOLD = 32 << 20

_USER_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_MMAP_MAX_")
_kept = False


def user_tuned(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the user set malloc's knobs themselves: theirs win."""
    return any(name in environ for name in _USER_VARIABLES) or "malloc" in environ.get("GLIBC_TUNABLES", "")


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # only glibc has gnu_get_libc_version (and mallopt's parameters above)
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for the next step. Returns whether this
    process now does (also when an earlier call did)."""
    global _kept
    if _kept:
        return True
    if user_tuned():
        return False
    libc = _glibc()
    if libc is None:
        return False
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    _kept = all(libc.mallopt(param, value) == 1 for param, value in settings)
    return _kept
