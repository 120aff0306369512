"""Peak memory of a process, measured so that it belongs to that process.

``getrusage``'s ``ru_maxrss`` is the obvious figure and the wrong one for a child started
with fork and exec: Linux carries the high-water mark across exec, so a child of a parent
holding 100 MB reports at least 100 MB however little it uses itself (seen: a benchmark
holding its payloads made `vigil ingest` look twice its size). Linux's ``VmHWM`` is the
peak of the current program only. Elsewhere (macOS) ``ru_maxrss`` is what there is.
"""

from __future__ import annotations

import ctypes
import resource
import sys
from pathlib import Path


def peak_rss_mb(pid: int | None = None) -> float | None:
    """Peak resident memory in MB of ``pid`` (None: this process); None when unknown."""
    status = Path(f"/proc/{pid or 'self'}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # in kB
    except OSError:
        pass
    if pid is None:
        rss_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * rss_unit / 2**20, 1)
    return None


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_arrays() -> bool:
    """Let glibc reuse freed heap memory for numpy's temporaries instead of mapping and
    unmapping each one.

    A vectorized pass over a 100,000-reading batch makes dozens of temporary arrays of
    about 800 kB, above glibc's default mmap threshold: each is a fresh mapping, zeroed
    page by page by the kernel on first touch, and unmapped when freed. On this project's
    2-core machine that made element-wise arithmetic 8 times slower than the memory
    allows. Raising the mmap threshold (64 MB) and the trim threshold (128 MB) keeps the
    memory in the heap for the next batch. Returns whether it applied (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, 64 * 2**20)
            and libc.mallopt(_M_TRIM_THRESHOLD, 128 * 2**20)
        )
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
