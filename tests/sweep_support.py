"""Metrics of the sweep tests, importable by pool and Dask worker processes (tests/ is on their
sys.path): a slow one, so that a sweep is reliably still running when a test interrupts it or
kills a worker, and one that always raises."""

import time

import repcompress as rc
from repcompress.metrics import Metric

DELAY = 0.5


def slow_cdnv(z, labels):
    """The CDNV, after sleeping DELAY seconds."""
    time.sleep(DELAY)
    return rc.class_distance_normalized_variance(z, labels)


def broken(z, labels):
    raise RuntimeError("this metric always fails")


SLOW = Metric("slow-cdnv", slow_cdnv, "the CDNV, slowly (tests)")
BROKEN = Metric("broken", broken, "raises RuntimeError (tests)")
