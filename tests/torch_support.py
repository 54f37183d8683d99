"""torch for the tests of ``repcompress.torch``."""

import os

import pytest


def require_torch():
    """Skipped where torch is not installed, except on CI (``CI`` set), where a missing torch must
    fail the run instead of silently skipping the torch tests."""
    if os.environ.get("CI"):
        import torch

        return torch
    return pytest.importorskip("torch", reason="repcompress.torch tests need torch (pip install 'repcompress[torch]')")
