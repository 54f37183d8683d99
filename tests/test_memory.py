"""Out of memory never ends the interpreter (docs/spec.md §0.5).

Each case runs in a child process under an address-space limit (RLIMIT_AS), so that nothing here
allocates for real more than the limit: a buffer the limit cannot hold must come back as a
`MemoryError` naming the argument (the child exits normally), and the sums over pairs of classes,
computed in blocks, must give their answer within the limit where a C × C table would not fit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

resource = pytest.importorskip("resource")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS semantics of Linux")

GIB = 1 << 30

# The address-space limit counts reserved, not used, memory: every thread's stack and glibc's
# per-thread malloc arenas (64 MiB each) are reserved up front. Two threads and two arenas keep a
# many-core machine's reservations far below the limits used here.
CHILD_ENV = {**os.environ, "REPCOMPRESS_NUM_THREADS": "2", "MALLOC_ARENA_MAX": "2"}


def run_limited(body: str, limit: int = 2 * GIB, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs `body` in a child Python under an address-space limit of `limit` bytes."""
    code = "import numpy as np, repcompress as rc\n" + textwrap.dedent(body)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit_memory,
        env=CHILD_ENV,
    )


def refused(call: str, limit: int = 2 * GIB) -> str:
    """The message of the MemoryError that `call` raises in a limited child (which must exit 0)."""
    out = run_limited(
        f"""
        try:
            {call}
        except MemoryError as e:
            print("MemoryError:", e)
        else:
            print("no error")
        """,
        limit,
    )
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    line = out.stdout.strip()
    assert line.startswith("MemoryError:"), (line, out.stderr[-2000:])
    return line


def test_cdnv_matrix_of_too_many_classes_is_a_memory_error():
    # 10⁵ classes: an 80 GB table.
    msg = refused("rc.cdnv_matrix(np.random.rand(100_000, 2), np.arange(100_000))")
    assert "labels:" in msg and "100000 × 100000" in msg and "80.0 GB" in msg and "fewer classes" in msg


def test_class_statistics_cdnv_matrix_is_a_memory_error():
    msg = refused("s = rc.ClassStatistics(); s.update(np.random.rand(100_000, 2), np.arange(100_000)); s.cdnv_matrix()")
    assert "labels:" in msg


def test_pair_sums_over_many_classes_need_no_table():
    # 2·10⁴ classes: a C × C table would be 3.2 GB, beyond the 2 GiB limit; the blocked sums are not.
    out = run_limited(
        """
        rng = np.random.default_rng(0)
        c = 20_000
        labels = np.repeat(np.arange(c), 2)
        h = rng.standard_normal((c, 2))[labels] + 0.1 * rng.standard_normal((2 * c, 2))
        singletons = rc.class_distance_normalized_variance(rng.standard_normal((c, 2)), np.arange(c))
        s = rc.ClassStatistics(second_moments=False); s.update(h, labels)
        print(singletons, rc.class_distance_normalized_variance(h, labels), s.cdnv(), rc.davies_bouldin(h, labels))
        """
    )
    assert out.returncode == 0, out.stderr[-2000:]
    singletons, cdnv, streamed, db = map(float, out.stdout.split())
    assert singletons == 0.0  # every class variance is 0
    assert np.isfinite(cdnv) and cdnv > 0 and np.isclose(streamed, cdnv, rtol=1e-9)
    assert np.isfinite(db) and db > 0


def test_neural_collapse_of_many_classes_needs_no_table():
    out = run_limited(
        """
        rng = np.random.default_rng(1)
        c = 10_000
        labels = np.repeat(np.arange(c), 2)
        h = rng.standard_normal((c, 3))[labels] + 0.1 * rng.standard_normal((2 * c, 3))
        r = rc.neural_collapse(h, labels)
        print(r.nc1, r.nc2_equinorm, r.nc2_equiangular, r.nc2_max_angle, r.cdnv)
        """,
        limit=GIB + GIB // 2,  # the old NC2 table and CDNV matrix were 0.8 GB each
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert all(np.isfinite(float(v)) for v in out.stdout.split())


def test_silhouette_of_very_many_classes_is_a_memory_error():
    # N × C = 10⁵ × 5·10⁴ sums: 40 GB.
    msg = refused("rc.silhouette(np.random.rand(100_000, 2), np.arange(100_000) // 2)")
    assert "labels:" in msg and "sample_size" in msg


def test_d_by_d_matrices_of_huge_dimension_are_memory_errors():
    h = "np.random.rand(40, 50_000).astype(np.float32)"
    labels = "np.arange(40) % 2"
    for call in (
        f"rc.scatter_matrices({h}, {labels})",
        f"rc.fisher_ratio({h}, {labels}, ridge=1.0)",
        f"rc.twonn_dimension({h})",
    ):
        msg = refused(call)
        assert "h:" in msg and "50000 × 50000" in msg, (call, msg)


def test_fisher_ratio_beyond_the_limit_is_a_memory_error():
    # d = 3·10⁴: S_W alone is 7.2 GB.
    msg = refused("rc.fisher_ratio(np.random.rand(60, 30_000), np.arange(60) % 3, ridge=0.1)", limit=4 * GIB)
    assert "h:" in msg and "30000 × 30000" in msg


def test_neighbour_lists_beyond_the_limit_are_a_memory_error():
    # KSG-2 keeps k neighbours per sample: 4·10⁴ × 39999 indices are 6.4 GB.
    msg = refused("rc.mutual_info(np.random.rand(40_000), np.random.rand(40_000), k=39_999, estimator='ksg2')")
    assert "k:" in msg and "smaller k" in msg


def test_estimate_reports_a_metric_out_of_memory_and_goes_on(tmp_path: Path):
    # A conv layer saved as (N, C, H, W): d = 65536, TwoNN's d × d covariance would be 34 GB.
    rng = np.random.default_rng(0)
    labels = np.arange(100) % 4
    z = (rng.standard_normal((4, 64, 32, 32))[labels] + rng.standard_normal((100, 64, 32, 32))).astype(np.float32)
    archive = tmp_path / "conv.npz"
    np.savez(archive, z=z, labels=labels)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * GIB, 3 * GIB))

    out = subprocess.run(
        [sys.executable, "-m", "repcompress", "estimate", str(archive), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_memory,
        env=CHILD_ENV,
    )
    assert out.returncode == 1, (out.returncode, out.stderr[-2000:])  # 1: a metric failed, the others reported
    report = json.loads(out.stdout)
    rows = {row["metric"]: row for row in report["results"]}
    assert set(rows) >= {"cdnv", "nc1", "trace-ratio", "calinski-harabasz", "davies-bouldin", "silhouette"}
    assert rows["twonn"]["error"].startswith("h: ") and "\n" not in rows["twonn"]["error"]
    assert "65536 × 65536" in rows["twonn"]["error"]
    for name, row in rows.items():
        if name != "twonn":
            assert row["error"] is None and row["value"] is not None, (name, row["error"])


def test_gaussian_channel_of_very_many_dimensions_needs_no_d_by_d_matrix():
    # The maximum-entropy bound factors I + XᵀX/m: at d = 6·10⁴ two 28.8 GB matrices (the process
    # aborted); with more dimensions than samples it now factors the m × m form instead.
    out = run_limited(
        """
        rng = np.random.default_rng(2)
        mu = rng.standard_normal((50, 60_000))
        r = rc.gaussian_channel_mi(mu, noise_variance=1.0, method="bounds")
        print(r.lower, r.upper, r.maxent_upper)
        """
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lower, upper, maxent = map(float, out.stdout.split())
    assert 0 < lower <= upper <= np.log(50) + 1e-12 and np.isfinite(maxent)


def test_gaussian_channel_draws_beyond_memory_are_a_memory_error():
    # 10⁹ draws of 1000 × 10 values: 80 TB, more than any test machine has.
    msg = refused("rc.gaussian_channel_mi(np.random.rand(1000, 10), noise_variance=1.0, n_draws=10**9)")
    assert "n_draws:" in msg and "80.0 TB" in msg and "method='bounds'" in msg


def test_repeated_calls_reuse_their_large_buffers():
    """The extension keeps large freed blocks for the next call of the same size (docs/spec.md
    §0.5): a repeated 4-D entropy at N = 1e5 faults in almost no fresh pages, where each call used
    to fault in its ~6 MiB of buffers afresh (about 1 600 minor faults), and gives the same bits."""
    out = run_limited(
        """
        import json, resource
        x = np.random.default_rng(6).standard_normal((100_000, 4))
        faults, values = [], []
        for _ in range(7):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            values.append(rc.entropy(x, k=3))
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        print(json.dumps({"faults": faults, "values": [v.hex() for v in values]}))
        """
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    faults = got["faults"]
    assert len(set(got["values"])) == 1, got["values"]
    # The first call faults its buffers in (over a thousand pages); the later ones reuse them.
    assert faults[0] > 1000, faults
    assert max(faults[2:]) < 0.1 * faults[0], faults
