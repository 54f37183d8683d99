"""A minimal progress bar on stderr for long loops (no dependency)."""

from __future__ import annotations

import sys
import time


class Progress:
    """``progress=True`` always shows the bar, ``False`` never, ``None`` only once the work has
    run for more than `after` seconds (short calls stay silent)."""

    def __init__(self, total: int, label: str, show: bool | None = None, after: float = 2.0):
        self.total = max(int(total), 1)
        self.label = label
        self.show = show
        self.after = after
        self.start = time.perf_counter()
        self.done = 0
        self.drawn = False

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        elapsed = time.perf_counter() - self.start
        if self.show is False or (self.show is None and elapsed < self.after and not self.drawn):
            return
        self.drawn = True
        frac = self.done / self.total
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s elapsed, ~{eta:5.1f}s left")
        sys.stderr.flush()

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
