"""Runtime behaviour of the class statistics' methods: they release the GIL and honour Ctrl-C like
every other call into the core (``tests/test_runtime.py``).

What cannot be interrupted: a single eigendecomposition (faer gives no way to stop one half-way).
``fisher_ratio`` checks for Ctrl-C after it and between chunks of classes of its O(C·d²) sum, which
is what the second test exercises.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import repcompress as rc
from repcompress import _core


def test_fisher_ratio_releases_the_gil():
    # d = 2000: an eigendecomposition of about a second or more on one thread.
    rng = np.random.default_rng(3)
    h = rng.standard_normal((300, 2000))
    stats = _core.ClassStats.from_data(h, (np.arange(300) % 3).astype(np.int64), 3, True)
    before = rc.get_num_threads()
    rc.set_num_threads(1)
    ticks = 0
    done = threading.Event()

    def compute():
        stats.fisher_ratio(0.1)
        done.set()

    worker = threading.Thread(target=compute)
    try:
        t0 = time.perf_counter()
        worker.start()
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)
        worker.join()
    finally:
        rc.set_num_threads(before)
    elapsed = time.perf_counter() - t0
    # Were the GIL held for the whole call, the loop above could tick only before and after it.
    assert elapsed > 0.1, elapsed
    assert ticks >= 20, (ticks, elapsed)


# The C·d² sum over 8000 classes in 600 dimensions takes a few seconds on one thread; the
# eigendecomposition before it (d = 600) a fraction of a second.
LONG_FISHER = textwrap.dedent(
    """
    import signal, time, numpy as np, repcompress as rc
    from repcompress import _core
    signal.signal(signal.SIGINT, signal.default_int_handler)  # see tests/test_runtime.py
    rc.set_num_threads(1)
    rng = np.random.default_rng(0)
    n = 8000
    stats = _core.ClassStats.from_data(rng.standard_normal((n, 600)), np.arange(n, dtype=np.int64), n, True)
    print("start", flush=True)
    t0 = time.perf_counter()
    try:
        stats.fisher_ratio(0.1)
        print("finished", time.perf_counter() - t0, flush=True)
    except KeyboardInterrupt:
        print("interrupted", time.perf_counter() - t0, flush=True)
    """
)


def test_ctrl_c_interrupts_fisher_ratio_between_classes():
    if sys.platform == "win32":
        return  # SIGINT delivery differs on Windows
    proc = subprocess.Popen([sys.executable, "-c", LONG_FISHER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    time.sleep(0.5)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    reaction = time.perf_counter() - sent
    assert out.startswith("interrupted"), out
    assert reaction < 1.5, f"took {reaction:.2f} s to react to Ctrl-C"
