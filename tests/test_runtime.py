"""Runtime behaviour: the GIL is released, Ctrl-C interrupts long calls, forked children work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import repcompress as rc

# A computation of a few seconds on the brute-force path (high dimension).
LONG_CALL = textwrap.dedent(
    """
    import signal, sys, time, numpy as np, repcompress as rc
    # A child that inherits an ignored SIGINT gets no Python handler. Under the full test suite the
    # child twice started without the default handler (cause in the pytest process not found; a
    # C-level system() call elsewhere ignores SIGINT while it runs). A user's Python process has
    # the default handler: give the child that, and report it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("sigint", signal.getsignal(signal.SIGINT) is signal.default_int_handler,
          signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []), flush=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40_000, 48)); y = rng.standard_normal((40_000, 40))
    rc.set_num_threads(1)
    print("start", flush=True)
    t0 = time.perf_counter()
    try:
        rc.mutual_info(x, y, neighbors="brute")
        print("finished", time.perf_counter() - t0, flush=True)
    except KeyboardInterrupt:
        print("interrupted", time.perf_counter() - t0, flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_interrupts_a_long_call_within_about_a_second():
    proc = subprocess.Popen([sys.executable, "-c", LONG_CALL], stdout=subprocess.PIPE, text=True)
    handled = proc.stdout.readline().strip()
    if handled != "sigint True False":
        proc.kill()
        pytest.fail(f"the child cannot receive Ctrl-C (default handler installed, SIGINT blocked): {handled}")
    assert proc.stdout.readline().strip() == "start"
    time.sleep(0.5)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    reaction = time.perf_counter() - sent
    assert out.startswith("interrupted"), out
    assert reaction < 2.0, f"took {reaction:.2f} s to react to Ctrl-C"


# Long calls of other kinds (docs/spec.md §0.7): each prepares its data, prints "start" and runs a
# call of several seconds; Ctrl-C must stop it within about a second wherever it is.
LONG_CALLS = {
    # k near N: the neighbour search costs ~N² log k (k > N/2 also warns).
    "mutual_info with k = N - 1": (
        "x = rng.standard_normal(20_000); y = x + rng.standard_normal(20_000)",
        "rc.mutual_info(x, y, k=19_999)",
    ),
    # The mean CDNV over 1.8·10⁹ pairs of classes, in blocks.
    "cdnv of 6·10⁴ classes": (
        "labels = np.arange(60_000); h = rng.standard_normal((60_000, 2))",
        "rc.class_distance_normalized_variance(h, labels)",
    ),
    # NC1's SVD of the 2500 × 2500 centred means (~15 s, uninterruptible inside faer), then NC2.
    "neural_collapse, C = d = 2500": (
        "labels = np.repeat(np.arange(2500), 2); h = rng.standard_normal((5000, 2500))",
        "rc.neural_collapse(h, labels)",
    ),
}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
@pytest.mark.parametrize("case", list(LONG_CALLS))
def test_ctrl_c_stops_every_kind_of_long_call(case):
    setup, call = LONG_CALLS[case]
    code = textwrap.dedent(
        f"""
        import signal, time, warnings, numpy as np, repcompress as rc
        signal.signal(signal.SIGINT, signal.default_int_handler)
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(0)
        {setup}
        rc.set_num_threads(2)
        print("start", flush=True)
        t0 = time.perf_counter()
        try:
            {call}
            print("finished", time.perf_counter() - t0, flush=True)
        except KeyboardInterrupt:
            print("interrupted", time.perf_counter() - t0, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    time.sleep(1.0)
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    reaction = time.perf_counter() - sent
    assert out.startswith("interrupted"), out
    assert reaction < 2.0, f"{case}: took {reaction:.2f} s to react to Ctrl-C"


def test_k_above_half_the_samples_warns():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal(40), rng.standard_normal(40)
    with pytest.warns(UserWarning, match=r"k: k = 21 is more than half the number of samples \(40\)") as record:
        rc.mutual_info(x, y, k=21)
    assert record[0].filename == __file__  # points at the caller
    with pytest.warns(UserWarning, match="more than half"):
        rc.entropy(x, k=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc.mutual_info(x, y, k=20)


def test_gil_is_released_during_computation():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20_000, 24))
    y = rng.standard_normal((20_000, 24))
    ticks = 0
    done = threading.Event()

    def compute():
        rc.mutual_info(x, y, neighbors="brute")
        done.set()

    worker = threading.Thread(target=compute)
    t0 = time.perf_counter()
    worker.start()
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    elapsed = time.perf_counter() - t0
    # Were the GIL held for the whole call, the loop above could tick only before and after it.
    assert elapsed > 0.1, elapsed
    assert ticks >= 20, (ticks, elapsed)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_can_compute_after_parent_used_the_pool():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 2))
    y = x + rng.standard_normal((3000, 2))
    expected = rc.mutual_info(x, y)  # starts the parent's worker threads
    code = textwrap.dedent(
        """
        import os, sys, numpy as np, repcompress as rc
        rng = np.random.default_rng(2)
        x = rng.standard_normal((3000, 2)); y = x + rng.standard_normal((3000, 2))
        rc.mutual_info(x, y)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, repr(rc.mutual_info(x, y)).encode()); os._exit(0)
        os.close(w)
        print(os.read(r, 100).decode()); os.waitpid(pid, 0)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) == expected


def test_thread_count_settings():
    before = rc.get_num_threads()
    try:
        rc.set_num_threads(1)
        assert rc.get_num_threads() == 1
        with pytest.raises(ValueError, match="n"):
            rc.set_num_threads(0)
        with pytest.raises(TypeError, match="n"):
            rc.set_num_threads(1.5)
    finally:
        rc.set_num_threads(before)


def test_environment_variable_sets_default_threads():
    code = "import repcompress as rc; print(rc.get_num_threads())"
    env = dict(os.environ, REPCOMPRESS_NUM_THREADS="3", RAYON_NUM_THREADS="5")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "3"
    env.pop("REPCOMPRESS_NUM_THREADS")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "5"


def test_demo_command_runs():
    out = subprocess.run(
        [sys.executable, "-m", "repcompress", "demo", "--n", "2000"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "truth" in out.stdout and "ksg1" in out.stdout
