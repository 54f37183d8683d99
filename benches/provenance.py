"""Where a benchmark result came from: the code (git commit, and whether the tree had uncommitted
changes), the versions and the machine. Every ``bench_*.py`` stores this under ``"provenance"`` in
its JSON, so results can be compared over time and traced to the code that produced them."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def provenance() -> dict[str, Any]:
    """The commit and environment of this run (``git_commit`` None outside a git checkout)."""
    import numpy as np

    import repcompress as rc

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "repcompress": rc.__version__,
        "threads": rc.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
