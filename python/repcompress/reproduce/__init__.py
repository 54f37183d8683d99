"""Reproductions of the paper's experiments at laptop scale (``repcompress reproduce TARGET``).

Each target is a module with ``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args) -> int``;
register it in ``TARGETS`` and the command line picks it up.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# target name -> module (imported only when the command line is built or the target runs)
TARGETS = {
    "toy": "repcompress.reproduce.toy",
    "dropout-digits": "repcompress.reproduce.dropout_digits",
    "ceb-digits": "repcompress.reproduce.ceb_digits",
    "estimator-check": "repcompress.reproduce.estimator_check",
}


def target(name: str) -> ModuleType:
    return importlib.import_module(TARGETS[name])
