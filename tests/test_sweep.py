"""Sweeps over many activation archives (docs/spec.md §9): the table, resuming, error rows, the
command line, and the same results, with workers killed or not, on a real Dask cluster."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

import repcompress as rc  # noqa: E402
from repcompress.cli import main  # noqa: E402
from repcompress.estimate import estimate_file  # noqa: E402
from repcompress.sweeps import KEY, read_table, sweep  # noqa: E402
from repcompress.tidy import COLUMNS  # noqa: E402
from sweep_support import BROKEN, SLOW  # noqa: E402

TESTS = Path(__file__).resolve().parent
NUMBERS = ["value", "low", "high", "stderr", "lower_bound", "upper_bound"]


def write_archives(directory, n_epochs=2, layers=("a", "b"), n=120, seed=0):
    """Archives of a small sweep (setups x epochs x layers, each with variances) and a manifest."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for setup in ("s1", "s2"):
        for epoch in range(n_epochs):
            for layer in layers:
                labels = rng.integers(0, 3, n)
                z = rng.standard_normal((3, 6))[labels] * (1 + epoch) + rng.standard_normal((n, 6))
                name = f"{setup}_e{epoch}_{layer}.npz"
                np.savez(directory / name, z=z, labels=labels, variances=np.full_like(z, 0.3))
                rows.append({"path": name, "setup": setup, "lam": 0.1 * (epoch + 1), "epoch": epoch, "layer": layer})
    manifest = directory / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def keyed(frame):
    return frame.sort_values([*KEY, "metric"]).reset_index(drop=True)


def test_local_sweep_gives_estimate_values_tags_and_the_tracker_columns(tmp_path):
    manifest = write_archives(tmp_path / "acts")
    result = sweep(manifest, ["cdnv", "mi-labels", "gaussian-mi"], tmp_path / "out", n_workers=2, seed=3)
    frame = result.frame
    assert result.n_tasks == 8 * 3 and result.n_run == 24 and result.n_skipped == 0 and result.n_failed == 0
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert {"file", "file_hash", "seconds", "peak_rss_bytes", "error", "setup", "lam"} <= set(frame.columns)
    assert (frame["seconds"] > 0).all() and (frame["peak_rss_bytes"] > 1e6).all()
    for path, rows in frame.groupby("file"):
        report = estimate_file(path, ["cdnv", "mi-labels", "gaussian-mi"], seed=3)
        expected = {
            (r.metric if r.metric == "cdnv" else r.label if r.metric == "mi-labels" else r.quantity): r.value
            for r in report.rows
        }
        got = dict(zip(rows["metric"], rows["value"], strict=True))
        assert got == expected
        name = Path(path).name
        assert rows["layer"].iloc[0] == name.split("_")[-1][0] and rows["setup"].iloc[0] == name.split("_")[0]
    # The merged table on disk is the returned one.
    on_disk = pd.read_parquet(tmp_path / "out" / "table.parquet")
    pd.testing.assert_frame_equal(keyed(on_disk)[NUMBERS], keyed(frame)[NUMBERS])


def test_rerun_skips_done_tasks_and_recomputes_changed_files_and_settings(tmp_path):
    acts = tmp_path / "acts"
    write_archives(acts)
    out = tmp_path / "out"
    first = sweep(acts, ["cdnv", "nc1"], out, n_workers=2)
    assert first.n_run == 16
    again = sweep(acts, ["cdnv", "nc1"], out, n_workers=2)
    assert (again.n_run, again.n_skipped) == (0, 16)
    pd.testing.assert_frame_equal(again.frame, first.frame)
    # A changed file: its two tasks only, with the new values.
    target = acts / "s1_e0_a.npz"
    with np.load(target) as old:
        z, labels = old["z"] * 2 + 1, old["labels"]
    np.savez(target, z=z, labels=labels)
    changed = sweep(acts, ["cdnv", "nc1"], out, n_workers=2)
    assert changed.n_run == 2
    row = changed.frame[(changed.frame["file"] == str(target.resolve())) & (changed.frame["metric"] == "cdnv")]
    assert row["value"].item() == rc.class_distance_normalized_variance(z, labels)
    assert len(changed.frame) == 16  # the old rows of the changed file are not in this sweep's table
    # Changed settings: every task again.
    assert sweep(acts, ["cdnv", "nc1"], out, n_workers=2, ridge=0.5).n_run == 16
    assert sweep(acts, ["cdnv"], out, n_workers=2, ridge=0.5).n_run == 0


def test_unreadable_files_and_failing_metrics_give_error_rows(tmp_path):
    acts = tmp_path / "acts"
    write_archives(acts, n_epochs=1, layers=("a",))
    (acts / "corrupt.npz").write_bytes(b"not a zip archive")
    rng = np.random.default_rng(1)
    np.savez(acts / "one_class.npz", z=rng.standard_normal((30, 4)), labels=np.zeros(30, int))
    manifest = tmp_path / "m.json"
    entries = [{"path": str(p), "setup": "x"} for p in sorted(acts.glob("*.npz"))]
    entries.append({"path": str(acts / "missing.npz"), "setup": "x"})
    manifest.write_text(json.dumps(entries))
    result = sweep(manifest, ["cdnv", BROKEN, "gaussian-mi"], tmp_path / "out", n_workers=2)
    frame = result.frame
    assert result.n_tasks == 5 * 3
    errors = frame[frame["error"] != ""]
    by_file = {Path(f).name: set(g["task_metric"]) for f, g in errors.groupby("file")}
    assert by_file["corrupt.npz"] == by_file["missing.npz"] == {"cdnv", "broken", "gaussian-mi"}
    assert by_file["one_class.npz"] == {"cdnv", "broken", "gaussian-mi"}  # one class; no variances
    assert by_file["s1_e0_a.npz"] == by_file["s2_e0_a.npz"] == {"broken"}
    assert errors["value"].isna().all()
    assert "RuntimeError: this metric always fails" in set(errors["error"])
    assert any("no such file" in e for e in errors["error"]) and any(
        "needs per-sample variances" in e for e in errors["error"]
    )
    ok = frame[frame["error"] == ""]
    assert len(ok) == 2 * (1 + 3) and ok["value"].notna().all()
    assert result.n_failed == 3 * 3 + 2
    # Error rows are kept on a rerun unless asked to retry them.
    assert sweep(manifest, ["cdnv", BROKEN, "gaussian-mi"], tmp_path / "out", n_workers=2).n_run == 0
    retried = sweep(manifest, ["cdnv", BROKEN, "gaussian-mi"], tmp_path / "out", n_workers=2, retry_errors=True)
    assert retried.n_run == result.n_failed


def test_arguments_are_checked_before_anything_runs(tmp_path):
    write_archives(tmp_path / "acts", n_epochs=1, layers=("a",))
    with pytest.raises(ValueError, match=r"^inputs: .* matches no file"):
        sweep(tmp_path / "nothing*.npz", out=tmp_path / "o")
    with pytest.raises(ValueError, match=r"^metrics: unknown metric 'cdvn'"):
        sweep(tmp_path / "acts", ["cdvn"], out=tmp_path / "o")
    with pytest.raises(ValueError, match=r"^n_workers: "):
        sweep(tmp_path / "acts", out=tmp_path / "o", n_workers=0)
    with pytest.raises(ValueError, match=r"^max_retries: "):
        sweep(tmp_path / "acts", out=tmp_path / "o", max_retries=-1)
    with pytest.raises(ValueError, match=r"^ci: "):
        sweep(tmp_path / "acts", out=tmp_path / "o", ci=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'kk'"):
        sweep(tmp_path / "acts", out=tmp_path / "o", kk=3)
    assert not (tmp_path / "o").exists()


def test_command_line_writes_tables_and_correlations(tmp_path, capsys):
    manifest = write_archives(tmp_path / "acts", n_epochs=4, layers=("a",))
    out = tmp_path / "out"
    argv = ["sweep", str(manifest), "--metrics", "cdnv,gaussian-mi", "--out", str(out), "--workers", "2", "--csv"]
    assert main([*argv, "--correlations", "setup=setup"]) == 0
    printed = capsys.readouterr().out
    assert "16 tasks: 16 run, 0 already in the table, 0 with errors" in printed
    table = pd.read_parquet(out / "table.parquet")
    assert len(pd.read_csv(out / "table.csv")) == len(table) == 4 * 2 * 4
    correlations = pd.read_csv(out / "correlations.csv")
    wide = table.pivot_table(index=["file", "setup"], columns="metric", values="value").reset_index()
    expected = rc.analysis.rank_correlations(wide, ["I(X;Z)", "I(X;Z|Y)", "I(Z;Y)", "cdnv"], setup="setup")
    got = correlations.set_index(["x", "y"]).loc[list(zip(expected["x"], expected["y"], strict=True))]
    np.testing.assert_allclose(got["r"].to_numpy(), expected["r"].to_numpy(), rtol=1e-12)
    assert main(argv) == 0 and "16 already in the table" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--correlations", "setup"])
    assert exited.value.code == 2
    assert "argument --correlations: expected setup=COLUMN" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "none*.npz"), "--out", str(tmp_path / "o2")]) == 2
    assert "repcompress sweep: error: inputs:" in capsys.readouterr().err


def test_importing_repcompress_imports_neither_dask_nor_pyarrow():
    code = "import sys, repcompress; print(sorted(m for m in ('dask', 'distributed', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


INTERRUPTED_SWEEP = """
import sys
sys.path.insert(0, {tests!r})
from sweep_support import SLOW
from repcompress.sweeps import sweep
if __name__ == "__main__":
    try:
        sweep({acts!r}, [SLOW, "cdnv"], {out!r}, n_workers=2, flush_every=1, progress=False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
"""


def test_an_interrupted_sweep_keeps_a_valid_table_and_resumes_the_missing_tasks(tmp_path):
    acts, out = tmp_path / "acts", tmp_path / "out"
    write_archives(acts, n_epochs=3)  # 12 files, 24 tasks, 12 of them slow
    script = tmp_path / "run.py"
    script.write_text(INTERRUPTED_SWEEP.format(tests=str(TESTS), acts=str(acts), out=str(out)))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((out / "parts").glob("part-*.parquet"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stdout, stderr
    kept = read_table(out)
    done = kept[list(KEY)].drop_duplicates()
    assert 3 <= len(done) < 24
    assert kept["error"].eq("").all() and kept["value"].notna().all()
    assert not list(out.glob("parts/.*"))  # no temporary file left behind
    again = sweep(acts, [SLOW, "cdnv"], out, n_workers=2, flush_every=1)
    assert again.n_run == 24 - len(done) and again.n_skipped == len(done)
    assert len(again.frame) == 24 and again.frame["error"].eq("").all()
    assert not again.frame.duplicated(list(KEY)).any()


# ------------------------------------------------------------------------------------------------
# Dask
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    local = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(local)
    client.run(lambda: sys.path.insert(0, str(TESTS)))  # sweep_support on the workers
    yield client
    client.close()
    local.close()


def test_dask_sweep_equals_the_local_run_value_for_value(tmp_path, cluster):
    manifest = write_archives(tmp_path / "acts")
    metrics = ["cdnv", "nc1", "mi-labels", "gaussian-mi"]
    local = sweep(manifest, metrics, tmp_path / "local", n_workers=2, ci=4)
    remote = sweep(manifest, metrics, tmp_path / "dask", client=cluster, ci=4)
    assert remote.n_run == local.n_run == 8 * 4
    columns = [*KEY, "metric", *NUMBERS, "setup", "epoch", "layer", "error"]
    pd.testing.assert_frame_equal(keyed(remote.frame)[columns], keyed(local.frame)[columns])
    pids = set(cluster.run(os.getpid).values())
    assert {w.split(":")[1] for w in remote.frame["worker"]} <= {str(p) for p in pids}


def test_a_killed_dask_worker_loses_no_task_and_duplicates_none(tmp_path, cluster):
    acts = tmp_path / "acts"
    write_archives(acts, n_epochs=3)  # 12 files x 2 metrics; the slow ones take 6 s on 2 workers
    before = set(cluster.run(os.getpid).values())
    pid = min(before)
    state = {"running": True}

    def kill():
        state["killed_while_running"] = state["running"]
        os.kill(pid, signal.SIGKILL)

    timer = threading.Timer(1.5, kill)
    timer.start()
    result = sweep(acts, [SLOW, "cdnv"], tmp_path / "out", client=cluster)
    state["running"] = False
    timer.join()
    assert state["killed_while_running"]
    frame = result.frame
    assert len(frame) == 24 and not frame.duplicated(list(KEY)).any()
    assert frame["error"].eq("").all() and frame["value"].notna().all()
    assert len(read_table(tmp_path / "out")) == 24
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
    assert pid not in set(cluster.run(os.getpid).values())


def test_a_killed_pool_process_is_retried_and_its_task_counted_once(tmp_path):
    import multiprocessing

    acts = tmp_path / "acts"
    write_archives(acts, n_epochs=2)  # 8 slow tasks: 2 s on 2 processes
    state = {"running": True}

    def kill():
        pool = [p for p in multiprocessing.active_children() if p.name.startswith("SpawnProcess")]
        state["killed_while_running"] = state["running"] and bool(pool)
        os.kill(pool[0].pid, signal.SIGKILL)

    timer = threading.Timer(1.2, kill)
    timer.start()
    result = sweep(acts, [SLOW], tmp_path / "out", n_workers=2)
    state["running"] = False
    timer.join()
    assert state["killed_while_running"]
    frame = result.frame
    assert len(frame) == 8 and not frame.duplicated(list(KEY)).any() and frame["error"].eq("").all()
    assert frame["attempts"].max() == 2  # the tasks in flight when the pool broke ran again


def test_the_command_line_runs_on_a_scheduler_address(tmp_path, cluster, capsys):
    manifest = write_archives(tmp_path / "acts", n_epochs=1)
    out = tmp_path / "out"
    address = cluster.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    assert main(["sweep", str(manifest), "--metrics", "cdnv", "--out", str(out), "--scheduler", address]) == 0
    assert "4 tasks: 4 run" in capsys.readouterr().out
    pids = {str(p) for p in cluster.run(os.getpid).values()}
    assert {w.split(":")[1] for w in pd.read_parquet(out / "table.parquet")["worker"]} <= pids
