"""The documentation toolchain (Sphinx, nbclient, headless Chromium) for the tests of the site and
of the example notebooks.

Where a tool is missing the tests are skipped, except on CI (``CI`` set): there `.ci/run` installs
Chromium and the README's test command installs the ``docs`` extra, so a missing tool must fail the
run instead of silently skipping the documentation tests."""

import importlib
import os
import shutil
from types import ModuleType

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def require_module(name: str, purpose: str) -> ModuleType:
    if os.environ.get("CI"):
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f"{purpose} needs {name} (pip install 'repcompress[docs]')")


def require_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    message = "the site's browser test needs headless Chromium on PATH (Debian: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message + "; .ci/run installs it")
    pytest.skip(message)
