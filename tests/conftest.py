"""Shared test configuration.

Hypothesis profiles: the built-in deterministic ``ci`` profile is picked by hypothesis itself when
the environment says we are on CI (e.g. ``CI`` is set). Otherwise we load a fast local profile,
``dev``. ``HYPOTHESIS_PROFILE=<name>`` chooses explicitly (e.g. ``HYPOTHESIS_PROFILE=ci``).
"""

import os
import sys
from pathlib import Path

from hypothesis import settings

# reference.py lives next to the tests; make it importable whatever the rootdir / import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Estimator calls on small arrays are fast, but the first call of a process (thread pool start-up)
# and a busy machine can exceed hypothesis's 200 ms default deadline; timing is not what we test.
settings.register_profile("dev", max_examples=30, deadline=None)

_requested = os.environ.get("HYPOTHESIS_PROFILE")
if _requested:
    settings.load_profile(_requested)
elif settings.get_current_profile_name() == "default":
    # Not on CI (hypothesis would have loaded "ci" already): use the fast local profile.
    settings.load_profile("dev")
