"""The extension's type stubs (``repcompress/_core.pyi``) describe the built module: mypy's stubtest
compares every function, class, signature and default of the compiled ``repcompress._core`` with
the stubs. Runs against the module this interpreter imports (the installed wheel in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import repcompress._core


def test_stubtest_passes_on_the_built_extension(tmp_path: Path) -> None:
    stub = Path(repcompress._core.__file__).with_name("_core.pyi")
    assert stub.exists(), f"no stub file next to the extension ({stub})"
    # In a scratch directory, so that the package the interpreter imports is the one checked.
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "repcompress._core", "--mypy-config-file", "/dev/null"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"stubtest found differences:\n{done.stdout}\n{done.stderr}"
