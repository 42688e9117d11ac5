"""The live progress line of a load test, on stderr.

On a terminal the line is redrawn in place (``\\r``); on anything else (a log file, a
pipe, when forced with ``--progress``) a new line is written at most once a second.

    mixed [##########..........]  52%   1.6/3.0 s    2,143 ops   1,339 ops/s   0 errors
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .engine import Snapshot

__all__ = ["ProgressBar", "render"]

_WIDTH = 20


def render(label: str, snap: Snapshot, width: int = _WIDTH) -> str:
    """One progress line for ``snap``."""
    filled = round(snap.fraction * width)
    bar = "#" * filled + "." * (width - filled)
    if snap.duration is not None:
        where = f"{snap.elapsed:5.1f}/{snap.duration:.1f} s"
    else:
        where = f"{snap.elapsed:5.1f} s"
    if snap.count is not None:
        where += f"  {snap.steps:,}/{snap.count:,} steps"
    return (
        f"{label} [{bar}] {snap.fraction:4.0%}  {where}  {snap.operations:>8,} ops  "
        f"{snap.throughput:>8,.0f} ops/s  {snap.errors:,} errors"
    )


class ProgressBar:
    """Writes :func:`render` lines to ``stream`` (default stderr). ``live`` redraws in
    place (default: when the stream is a terminal)."""

    def __init__(self, label: str, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._last_line = 0.0
        self._drawn = 0

    @property
    def interval(self) -> float:
        """Seconds between updates the caller should use."""
        return 0.2 if self.live else 1.0

    def __call__(self, snap: Snapshot) -> None:
        """Show ``snap`` (the final snapshot ends the line)."""
        line = render(self.label, snap)
        if self.live:
            pad = " " * max(0, self._drawn - len(line))
            self.stream.write("\r" + line + pad + ("\n" if snap.final else ""))
            self._drawn = len(line)
        else:
            now = time.monotonic()
            if not snap.final and now - self._last_line < self.interval * 0.9:
                return
            self._last_line = now
            self.stream.write(line + "\n")
        self.stream.flush()
