"""The version has one source, Cargo.toml, which maturin writes into the package metadata:
``repcompress.__version__`` and ``repcompress --version`` read it back from there, so a wheel cannot
report a version other than the one it was published under."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import repcompress
from repcompress.cli import main


def test_version_attribute_is_the_metadata_version():
    assert repcompress.__version__ == version("repcompress")


def test_version_option_prints_the_metadata_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert out == f"repcompress {version('repcompress')}\n"
    assert err == ""


def test_installed_script_prints_the_metadata_version():
    """The console script pip installed (not only ``main``): the entry point reaches the option."""
    script = shutil.which("repcompress", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("no repcompress script next to this interpreter")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"repcompress {version('repcompress')}\n"
