"""`repcompress estimate FILE.npz`: values equal direct library calls, JSON is complete and strict,
bad files exit with status 2 and a message naming the problem."""

import functools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import repcompress as rc
from repcompress.cli import main
from repcompress.estimate import METRICS, estimate_arrays, estimate_file

N, D, C = 240, 5, 4


def activations(seed=0, n=N, d=D, classes=C):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes + 10  # ids 10..13: not 0..C-1
    z = 2.0 * rng.standard_normal((classes, d))[labels - 10] + rng.standard_normal((n, d))
    return z, labels


@pytest.fixture
def npz(tmp_path):
    def write(name="acts.npz", **arrays):
        path = tmp_path / name
        np.savez(path, **arrays)
        return path

    return write


def run_cli(capsys, *argv):
    code = main(["estimate", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def json_rows(out):
    # Strict JSON: a NaN or Infinity literal would fail here.
    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    doc = json.loads(out, parse_constant=refuse)
    return doc, {(r["metric"], r["quantity"]): r for r in doc["results"]}


def test_default_metrics_equal_direct_calls(npz, capsys):
    z, labels = activations()
    code, out, err = run_cli(capsys, npz(z=z, labels=labels), "--json")
    assert code == 0, err
    doc, rows = json_rows(out)
    assert doc["settings"]["metrics"] == [
        "cdnv",
        "nc1",
        "trace-ratio",
        "calinski-harabasz",
        "davies-bouldin",
        "silhouette",
        "twonn",
        "effective-rank",
        "mi-labels",
    ]
    nc = rc.neural_collapse(z, labels)
    expected = {
        ("cdnv", "cdnv"): rc.class_distance_normalized_variance(z, labels),
        ("nc1", "nc1"): nc.nc1,
        ("trace-ratio", "trace-ratio"): rc.trace_ratio(z, labels),
        ("calinski-harabasz", "calinski-harabasz"): rc.calinski_harabasz(z, labels),
        ("davies-bouldin", "davies-bouldin"): rc.davies_bouldin(z, labels),
        ("silhouette", "silhouette"): rc.silhouette(z, labels),
        ("twonn", "twonn"): rc.twonn_dimension(z),
        ("effective-rank", "effective-rank"): rc.effective_rank(z),
        ("mi-labels", "I(Z;Y)"): rc.mutual_info_labels(z, labels),
    }
    assert set(rows) == set(expected)
    for key, value in expected.items():
        assert rows[key]["value"] == value, key
        assert rows[key]["error"] is None and rows[key]["low"] is None
    assert rows[("mi-labels", "I(Z;Y)")]["unit"] == "nats"
    assert rows[("cdnv", "cdnv")]["unit"] == ""
    assert rows[("mi-labels", "I(Z;Y)")]["settings"] == {
        "k": 3,
        "metric": "chebyshev",
        "normalize": True,
        "jitter": 1e-10,
        "random_state": 0,
        "base": math.e,
        "neighbors": "auto",
        "clip": False,
    }
    assert doc["data"]["n_samples"] == N and doc["data"]["n_units"] == D and doc["data"]["n_classes"] == C


def test_all_metrics_in_bits_with_options(npz, capsys):
    z, labels = activations(1)
    path = npz(z=z, labels=labels)
    code, out, err = run_cli(
        capsys,
        path,
        "--metrics",
        "all",
        "--json",
        "--base",
        "2",
        "--k",
        "5",
        "--n-bins",
        "8",
        "--seed",
        "3",
        "--ridge",
        "0.01",
        "--silhouette-sample-size",
        "100",
    )
    assert code == 0, err
    doc, rows = json_rows(out)
    requested = [m for m in METRICS if not METRICS[m].needs_variances]
    assert doc["settings"]["metrics"] == requested
    assert {r["metric"] for r in doc["results"]} == set(requested)
    nc = rc.neural_collapse(z, labels)
    assert rows[("nc2", "equinorm")]["value"] == nc.nc2_equinorm
    assert rows[("nc2", "equiangular")]["value"] == nc.nc2_equiangular
    assert rows[("nc2", "max-angle")]["value"] == nc.nc2_max_angle
    assert rows[("fisher-ratio", "fisher-ratio")]["value"] == rc.fisher_ratio(z, labels, ridge=0.01)
    assert rows[("silhouette", "silhouette")]["value"] == rc.silhouette(z, labels, sample_size=100, random_state=3)
    assert rows[("binned-entropy", "H_bin(Z)")]["value"] == rc.binned_entropy(z, n_bins=8, base=2)
    assert rows[("mi-labels", "I(Z;Y)")]["value"] == rc.mutual_info_labels(z, labels, k=5, random_state=3, base=2)
    assert rows[("entropy", "h(Z)")]["value"] == rc.entropy(z, k=5, random_state=3, base=2)
    for key in (("binned-entropy", "H_bin(Z)"), ("mi-labels", "I(Z;Y)"), ("entropy", "h(Z)")):
        assert rows[key]["unit"] == "bits"
        assert rows[key]["settings"]["base"] == 2.0
    assert rows[("binned-entropy", "H_bin(Z)")]["settings"]["n_bins"] == 8
    assert doc["settings"]["seed"] == 3 and doc["settings"]["unit"] == "bits"


def test_gaussian_channel_rows_equal_direct_call(npz, capsys):
    z, labels = activations(2, n=120)
    variances = np.random.default_rng(7).uniform(0.2, 2.0, z.shape)
    code, out, err = run_cli(capsys, npz(z=z, labels=labels, variances=variances), "--json", "--n-draws", "2")
    assert code == 0, err
    doc, rows = json_rows(out)
    assert doc["settings"]["metrics"][-1] == "gaussian-mi" and "mi-labels" not in doc["settings"]["metrics"]
    r = rc.gaussian_channel_mi(z, variances, labels=labels, n_draws=2)
    for quantity, info in (("I(X;Z)", r), ("I(X;Z|Y)", r.given_labels), ("I(Z;Y)", r.labels)):
        row = rows[("gaussian-mi", quantity)]
        assert row["value"] == info.mi
        assert row["stderr"] == info.stderr
        assert row["lower_bound"] == info.lower
        assert row["upper_bound"] == info.upper
        assert row["lower_bound"] <= row["upper_bound"]
        assert row["unit"] == "nats"
        assert row["settings"]["n_draws"] == 2 and row["settings"]["min_variance"] == 1e-12
    assert rows[("gaussian-mi", "I(X;Z)")]["extra"]["maxent_upper"] == r.maxent_upper
    assert rows[("gaussian-mi", "I(X;Z)")]["extra"]["ceiling"] == pytest.approx(math.log(120))
    # The geometric metrics are computed on the means.
    assert rows[("cdnv", "cdnv")]["value"] == rc.class_distance_normalized_variance(z, labels)


def test_gaussian_channel_interval_is_monte_carlo_error(npz, capsys):
    z, labels = activations(3, n=80)
    variances = np.full(z.shape, 0.5)
    code, out, _ = run_cli(
        capsys,
        npz(z=z, labels=labels, variances=variances),
        "--metrics",
        "gaussian-mi",
        "--json",
        "--ci",
        "10",
        "--confidence",
        "0.9",
        "--base",
        "2",
    )
    assert code == 0
    _, rows = json_rows(out)
    r = rc.gaussian_channel_mi(z, variances, labels=labels, base=2)
    row = rows[("gaussian-mi", "I(X;Z)")]
    z90 = 1.6448536269514722
    assert row["low"] == pytest.approx(r.mi - z90 * r.stderr, rel=1e-12)
    assert row["high"] == pytest.approx(r.mi + z90 * r.stderr, rel=1e-12)
    assert "Monte Carlo" in row["interval"]


def test_confidence_intervals_equal_direct_calls(npz, capsys):
    z, labels = activations(4)
    code, out, err = run_cli(
        capsys, npz(z=z, labels=labels), "--metrics", "cdnv,mi-labels", "--ci", "40", "--seed", "5", "--json"
    )
    assert code == 0, err
    doc, rows = json_rows(out)
    assert doc["settings"]["ci"] == {"n_resamples": 40, "confidence": 0.95}
    cdnv = rows[("cdnv", "cdnv")]
    direct = rc.confidence_interval(rc.class_distance_normalized_variance, z, labels, n_resamples=40, random_state=5)
    assert (cdnv["value"], cdnv["low"], cdnv["high"], cdnv["stderr"]) == (
        direct.value,
        direct.low,
        direct.high,
        direct.stderr,
    )
    assert cdnv["low"] <= cdnv["value"] <= cdnv["high"] and cdnv["low"] < cdnv["high"]
    assert cdnv["interval"].startswith("bootstrap")
    mi = rows[("mi-labels", "I(Z;Y)")]
    direct = rc.confidence_interval(
        functools.partial(rc.mutual_info_labels, random_state=5), z, labels, n_resamples=40, random_state=5
    )
    assert (mi["value"], mi["low"], mi["high"]) == (direct.value, direct.low, direct.high)
    assert mi["value"] == rc.mutual_info_labels(z, labels, random_state=5)
    assert mi["interval"].startswith("half-sampling")


def test_table(npz, capsys):
    z, labels = activations(5)
    code, out, err = run_cli(capsys, npz(z=z, labels=labels), "--metrics", "cdnv", "mi-labels", "--ci", "20")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("# repcompress") and lines[0].endswith("acts.npz")
    assert lines[1] == f"# N = {N} samples, d = {D} units, C = {C} classes (smallest {N // C}), variances: no"
    header = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    assert lines[header].split() == ["metric", "value", "stderr", "low", "high", "unit", "note"]
    ci = rc.confidence_interval(rc.class_distance_normalized_variance, z, labels, n_resamples=20)
    cdnv = lines[header + 1]
    assert cdnv.split()[:7] == [
        "cdnv",
        f"{ci.value:.6g}",
        f"{ci.stderr:.6g}",
        f"{ci.low:.6g}",
        f"{ci.high:.6g}",
        "-",
        "CI:",
    ]
    mi = lines[header + 2]
    assert mi.startswith("mi-labels I(Z;Y) ")
    assert f" {rc.mutual_info_labels(z, labels):.6g} " in mi and " nats " in mi
    # Numbers are right-aligned under their headings.
    for line in (cdnv, mi):
        for column in ("value", "stderr", "low", "high"):
            end = lines[header].index(column) + len(column)
            assert line[end - 1] != " " and line[end] == " ", (column, line)
    assert len(lines) == header + 3


def test_file_after_metrics_and_underscores(npz, capsys):
    z, labels = activations(6)
    path = npz(z=z, labels=labels)
    code, out, _ = run_cli(capsys, "--metrics", "trace_ratio", "effective-rank", path, "--json")
    assert code == 0
    _, rows = json_rows(out)
    assert set(rows) == {("trace-ratio", "trace-ratio"), ("effective-rank", "effective-rank")}


def test_one_dimensional_and_flattened_z(npz, capsys):
    z, labels = activations(7, d=6)
    code, out, _ = run_cli(capsys, npz(z=z[:, 0], labels=labels), "--metrics", "cdnv,mi-labels", "--json")
    assert code == 0
    doc, rows = json_rows(out)
    assert rows[("cdnv", "cdnv")]["value"] == rc.class_distance_normalized_variance(z[:, :1], labels)
    assert rows[("mi-labels", "I(Z;Y)")]["value"] == rc.mutual_info_labels(z[:, 0], labels)
    assert doc["data"]["n_units"] == 1 and "1-D" in doc["data"]["notes"][0]

    conv = z.reshape(N, 2, 3)
    code, out, _ = run_cli(
        capsys, npz(z=conv, labels=labels, variances=np.ones_like(conv)), "--metrics", "cdnv,gaussian-mi", "--json"
    )
    assert code == 0
    doc, rows = json_rows(out)
    assert rows[("cdnv", "cdnv")]["value"] == rc.class_distance_normalized_variance(z, labels)
    assert rows[("gaussian-mi", "I(X;Z)")]["value"] == rc.gaussian_channel_mi(z, np.ones_like(z), labels=labels).mi
    assert doc["data"]["z_shape"] == [N, 2, 3] and doc["data"]["n_units"] == 6
    assert "flattened" in doc["data"]["notes"][0]
    code, out, _ = run_cli(capsys, npz(z=conv, labels=labels), "--metrics", "cdnv")
    assert code == 0 and "# note: z has shape (240, 2, 3)" in out


def test_nonfinite_values_are_null(npz, capsys):
    # Every class has mean 0: trace ratio and CDNV divide by a zero between-class spread.
    z = np.tile([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], (10, 1))
    labels = np.repeat([0, 1], 20)
    code, out, _ = run_cli(capsys, npz(z=z, labels=labels), "--metrics", "trace-ratio,cdnv", "--json")
    assert code == 0
    _, rows = json_rows(out)
    assert math.isinf(rc.trace_ratio(z, labels))
    assert rows[("trace-ratio", "trace-ratio")]["value"] is None
    assert "inf" in rows[("trace-ratio", "trace-ratio")]["note"]
    assert not math.isfinite(rc.class_distance_normalized_variance(z, labels))
    assert rows[("cdnv", "cdnv")]["value"] is None


def test_failing_metric_reports_error_and_exit_1(npz, capsys):
    z, labels = activations(8)
    z[:, -1] = 3.0  # a constant unit: S_W is singular, the Fisher ratio needs a ridge
    path = npz(z=z, labels=labels)
    code, out, err = run_cli(capsys, path, "--metrics", "cdnv,fisher-ratio", "--json")
    assert code == 1
    assert "fisher-ratio" in err
    _, rows = json_rows(out)
    assert rows[("cdnv", "cdnv")]["value"] == rc.class_distance_normalized_variance(z, labels)
    assert rows[("fisher-ratio", "fisher-ratio")]["value"] is None
    assert "singular" in rows[("fisher-ratio", "fisher-ratio")]["error"]
    code, out, _ = run_cli(capsys, path, "--metrics", "fisher-ratio")
    assert code == 1 and "# error (fisher-ratio):" in out
    code, out, _ = run_cli(capsys, path, "--metrics", "fisher-ratio", "--ridge", "1e-3", "--json")
    assert code == 0
    assert json_rows(out)[1][("fisher-ratio", "fisher-ratio")]["value"] == rc.fisher_ratio(z, labels, ridge=1e-3)


def _bad_files(tmp_path):
    z, labels = activations()
    cases = {
        "missing z": ({"labels": labels}, "missing key 'z'"),
        "missing labels": ({"z": z}, "missing key 'labels'"),
        "length mismatch": ({"z": z, "labels": labels[:-3]}, "labels: has 237 entries but z has 240 samples"),
        "variances shape": (
            {"z": z, "labels": labels, "variances": np.ones((N, D + 1))},
            "variances: has shape (240, 6)",
        ),
        "negative variances": ({"z": z, "labels": labels, "variances": -np.ones((N, D))}, "variances: must be >= 0"),
        "non-integer labels": (
            {"z": z, "labels": labels + 0.5},
            "labels: must be integer-like, got 10.5 at row 0",
        ),
        "nan labels": (
            {"z": z, "labels": np.where(np.arange(N) == 3, np.nan, labels)},
            "labels: contains NaN or inf (first at row 3)",
        ),
        "string labels": ({"z": z, "labels": labels.astype(str)}, "labels: must be integer-like, got dtype <U2"),
        "2-D labels": ({"z": z, "labels": np.stack([labels, labels], 1)}, "labels: expected a 1-D array"),
        "nan in z": (
            {"z": np.where(np.arange(N)[:, None] == 17, np.nan, z), "labels": labels},
            "z: contains NaN or inf (first at sample 17)",
        ),
        "scalar z": ({"z": np.float64(1.0), "labels": labels}, "z: expected an array of N samples"),
        "one class": ({"z": z, "labels": np.zeros(N, int)}, "need at least 2 classes, got 1"),
    }
    out = []
    for name, (arrays, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        np.savez(path, **arrays)
        out.append((name, path, message))
    return out


def test_bad_files_exit_2_naming_the_problem(tmp_path, capsys):
    for name, path, message in _bad_files(tmp_path):
        code, out, err = run_cli(capsys, path)
        assert code == 2, name
        assert message in err, (name, err)
        assert "Traceback" not in err and out == "", name


def test_bad_paths_and_metrics_exit_2(tmp_path, npz, capsys):
    z, labels = activations()
    good = npz(z=z, labels=labels)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip archive at all")
    np.save(tmp_path / "single.npy", z)
    np.savez(tmp_path / "objects.npz", z=np.array([object(), 1], dtype=object), labels=labels)
    cases = [
        ((tmp_path / "absent.npz",), "absent.npz: no such file"),
        ((tmp_path / "garbage.npz",), "cannot be read as an .npz archive"),
        ((tmp_path / "single.npy",), "not an .npz archive"),
        ((tmp_path / "objects.npz",), "cannot read its arrays"),
        (
            (good, "--metrics", "cdnv,silhuette"),
            "unknown metric 'silhuette' (did you mean 'silhouette'?); valid names: cdnv, nc1",
        ),
        ((good, "--metrics", "gaussian-mi"), "'gaussian-mi' needs per-sample variances"),
        ((), "FILE.npz is required"),
    ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2, argv
        assert message in err, (argv, err)
        assert "Traceback" not in err and out == ""
    for name in METRICS:  # the unknown-metric message lists every valid name
        assert name in run_cli(capsys, good, "--metrics", "nope")[2]
    with pytest.raises(SystemExit) as exc:  # argparse: bad option values
        main(["estimate", str(good), "--ci", "1"])
    assert exc.value.code == 2
    assert "--ci: must be at least 2" in capsys.readouterr().err


def test_list_metrics(capsys):
    code, out, _ = run_cli(capsys, "--list-metrics")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[: len(METRICS)]] == list(METRICS)


def test_threads_option_gives_same_values_and_is_restored(npz, capsys):
    z, labels = activations(9)
    path = npz(z=z, labels=labels)
    before = rc.get_num_threads()
    outs = []
    for threads in ("1", "2"):
        code, out, _ = run_cli(capsys, path, "--metrics", "mi-labels,silhouette,twonn", "--threads", threads, "--json")
        assert code == 0
        doc, rows = json_rows(out)
        assert doc["settings"]["threads"] == int(threads)
        outs.append({k: r["value"] for k, r in rows.items()})
        assert rc.get_num_threads() == before
    assert outs[0] == outs[1]


def test_python_api(npz):
    z, labels = activations(10)
    path = npz(z=z.astype(np.float32), labels=labels)
    report = estimate_file(path, ["cdnv", "entropy"], base=2)
    assert report.value("cdnv") == rc.class_distance_normalized_variance(z.astype(np.float32), labels)
    assert report.value("entropy", "h(Z)") == rc.entropy(z.astype(np.float32), base=2)
    again = estimate_arrays(z.astype(np.float32), labels, metrics="cdnv,entropy", base=2)
    assert [r.value for r in again.rows] == [r.value for r in report.rows]
    assert report.data["path"] == str(path) and again.data["path"] is None
    with pytest.raises(KeyError):
        report.row("silhouette")


def test_console_script(npz):
    script = shutil.which("repcompress", path=str(Path(sys.executable).parent)) or shutil.which("repcompress")
    if script is None:
        pytest.skip("the repcompress console script is not installed")
    z, labels = activations(11)
    path = npz(z=z, labels=labels)
    done = subprocess.run(
        [script, "estimate", str(path), "--metrics", "cdnv", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "REPCOMPRESS_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["value"] == rc.class_distance_normalized_variance(z, labels)
    bad = subprocess.run(
        [script, "estimate", str(path), "--metrics", "nope"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "unknown metric 'nope'" in bad.stderr and "Traceback" not in bad.stderr


def test_library_warnings_are_reported(npz, capsys):
    # Identical rows: no jitter for constant columns, every k-th neighbour at distance 0.
    z = np.ones((50, 2))
    labels = np.arange(50) % 2
    path = npz(z=z, labels=labels)
    with pytest.warns(RuntimeWarning):
        assert rc.entropy(z) == -math.inf
    code, out, _ = run_cli(capsys, path, "--metrics", "entropy", "--json")
    assert code == 0
    row = json_rows(out)[1][("entropy", "h(Z)")]
    assert row["value"] is None and "value is -inf" in row["note"]
    assert len(row["warnings"]) == 1 and "distance 0" in row["warnings"][0]
    code, out, _ = run_cli(capsys, path, "--metrics", "entropy")
    assert code == 0
    assert "-inf" in out and "# warning (entropy h(Z)): entropy: some sample has k neighbours at distance 0" in out


def test_whole_number_float_labels_are_class_ids_for_every_metric():
    # Labels saved as floats (a common result of np.savez on a float tensor): every metric must treat
    # them as the same classes as the integers. binned-mi-labels once binned them into n_bins
    # equal-width bins instead, merging ids 0 and 1 (30 bins over [0, 1000]) and changing I(T;Y).
    z, _ = activations()
    ids = np.array([0, 1, 1000, 7])[np.arange(N) % 4]
    metrics = "cdnv,binned-mi-labels,mi-labels,silhouette"
    as_ints = estimate_arrays(z, ids, metrics=metrics)
    as_floats = estimate_arrays(z, ids.astype(np.float64), metrics=metrics)
    assert [row.value for row in as_floats.rows] == [row.value for row in as_ints.rows]
    assert as_floats.value("binned-mi-labels", "I(T;Y)") == rc.binned_mutual_info(z, ids)
    assert "whole-number floats" in " ".join(as_floats.data["notes"])
    huge = estimate_arrays(z, np.where(ids == 1000, 1e300, ids).astype(np.float64), metrics=metrics)
    assert [row.value for row in huge.rows] == [row.value for row in as_ints.rows]
