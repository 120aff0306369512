"""Peak memory of a process, measured so that it belongs to that process.

``getrusage``'s ``ru_maxrss`` is the obvious figure and the wrong one for a child started
with fork and exec: Linux carries the high-water mark across exec, so a child of a parent
holding 100 MB reports at least 100 MB however little it uses itself (seen: a benchmark
holding its payloads made `vigil ingest` look twice its size). Linux's ``VmHWM`` is the
peak of the current program only. Elsewhere (macOS) ``ru_maxrss`` is what there is.
"""

from __future__ import annotations

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
