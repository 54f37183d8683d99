"""Every failure of the command line is one line on stderr and exit status 2, with no traceback, and
comes before any side effect it can come before: no output directory is made for a run that cannot
start (docs/spec.md §6.4)."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from repcompress.cli import main
from repcompress.reproduce import _digits

TOY = ["--runs", "1", "--n", "20", "--classes", "2", "--no-plots", "--no-progress"]


def run(capsys, *argv):
    """(exit status, stdout, stderr) of the command line, whether it returns or exits."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors and --help
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_failure(capsys, *argv, message=""):
    code, out, err = run(capsys, *argv)
    assert code == 2, (argv, code, err)
    assert out == "", argv
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, (argv, err)
    assert err.startswith("repcompress"), err
    assert message in err, (argv, err)
    return err


def test_toy_output_paths(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    cases = [
        (a_file, "exists and is not a directory"),  # was FileExistsError
        ("", "got an empty path"),  # Path("") is the current directory: the run wrote there
        (a_file / "sub", "cannot write to"),  # a file in the way of the directory
    ]
    if os.path.isdir("/proc/self"):
        cases.append(("/proc/repcompress-cannot-be-made", "cannot write to"))
    for out, message in cases:
        assert_one_line_failure(capsys, "reproduce", "toy", "--out", out, *TOY, message=message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_toy_output_directory_without_permission(tmp_path, capsys):
    # Root may write anywhere a mode allows nothing (CI runs as root): there, a directory under
    # /proc, which no one can create, stands in for the read-only directory.
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        target = locked / "out"
    else:
        locked, target = None, Path("/proc") / f"repcompress-test-{os.getpid()}" / "out"
    try:
        assert_one_line_failure(capsys, "reproduce", "toy", "--out", target, *TOY, message="cannot write to")
    finally:
        if locked is not None:
            locked.chmod(0o755)


@pytest.mark.parametrize(
    "options, message",
    [
        (["--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),  # made the directory first
        (["--runs", "0"], "argument --runs: must be at least 1"),
        (["--classes", "1"], "argument --classes: must be at least 2"),
        (["--n", "3"], "argument --n: must be at least 4"),
        (["--n", "10", "--classes", "6"], "--n: need at least 2 inputs per class (2 × 6), got 10"),
        (["--n", "ten"], "argument --n: expected an integer, got 'ten'"),
    ],
)
def test_toy_options_fail_before_the_output_directory_is_made(tmp_path, capsys, options, message):
    out = tmp_path / "never-made"
    assert_one_line_failure(capsys, "reproduce", "toy", "--out", out, *TOY, *options, message=message)
    assert not out.exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--n", "0"], "argument --n: must be at least 5, got 0"),  # was "x: empty input" with a traceback
        (["--n", "-5"], "argument --n: must be at least 5, got -5"),  # was numpy's "negative dimensions"
        (["--seed", "-1"], "argument --seed: must be a non-negative integer, got -1"),
        (["--n", "1e3"], "argument --n: expected an integer"),
    ],
)
def test_demo_options(capsys, options, message):
    assert_one_line_failure(capsys, "demo", *options, message=message)


def test_demo_runs_at_its_smallest_size(capsys):
    code, out, _ = run(capsys, "demo", "--n", "5", "--seed", "2")
    assert code == 0 and "largest |KSG-1 error|" in out


def test_usage_errors_are_one_line(capsys):
    assert_one_line_failure(capsys, message="the following arguments are required")
    assert_one_line_failure(capsys, "nonsense", message="invalid choice")
    assert_one_line_failure(capsys, "estimate", "x.npz", "--ci", "1", message="argument --ci: must be at least 2")


@pytest.mark.parametrize("target", ["dropout-digits", "ceb-digits"])
def test_digits_options_fail_before_anything_runs(tmp_path, capsys, target):
    out = tmp_path / "never-made"
    for options, message in [
        (["--out", ""], "got an empty path"),
        (["--out", out, "--threads", "0"], "argument --threads: must be at least 1"),
        (["--out", out, "--threads", "1000000"], "argument --threads: at most"),
        (["--out", out, "--seeds", "0"], "argument --seeds: must be at least 1"),
        (["--out", out, "--epochs", "-3"], "argument --epochs: must be at least 1"),
        (["--out", out, "--track-every", "0"], "argument --track-every: must be at least 1"),
    ]:
        assert_one_line_failure(capsys, "reproduce", target, *options, message=message)
    if target == "dropout-digits":
        assert_one_line_failure(capsys, "reproduce", target, "--out", out, "--p", "1.5", message="argument --p")
        assert_one_line_failure(capsys, "reproduce", target, "--out", out, "--beta", "nan", message="argument --beta")
    assert not out.exists()


def test_digits_without_torch_is_one_line(tmp_path, capsys, monkeypatch):
    # It exited with status 1 through sys.exit, after the check of nothing else.
    def no_torch():
        raise ImportError("this reproduction trains networks and needs PyTorch: pip install 'repcompress[torch]'")

    monkeypatch.setattr(_digits, "require_torch", no_torch)
    out = tmp_path / "never-made"
    assert_one_line_failure(capsys, "reproduce", "dropout-digits", "--out", out, "--quick", message="needs PyTorch")
    assert not out.exists()


# --------------------------------------------------------------- archives that lie (§6.1)


def npy_header(shape, descr="<f8"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


LABELS = npy(np.arange(10) % 2)


def archive(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_an_archive_whose_header_claims_a_huge_array(tmp_path, capsys):
    # numpy allocated what the header claimed (8 TB) before reading: a MemoryError traceback.
    cases = {
        "stored": archive(tmp_path / "stored.npz", {"z.npy": npy_header((10**6, 10**6)), "labels.npy": LABELS}),
        "deflated": archive(
            tmp_path / "deflated.npz",
            {"z.npy": npy_header((2**40, 8)), "labels.npy": LABELS},
            zipfile.ZIP_DEFLATED,
        ),
        "labels": archive(
            tmp_path / "labels.npz", {"z.npy": npy(np.ones((10, 2))), "labels.npy": npy_header((10**12,), "<i8")}
        ),
        "40 GB": archive(tmp_path / "forty.npz", {"z.npy": npy_header((5 * 10**9, 1)), "labels.npy": LABELS}),
    }
    for name, path in cases.items():
        key = "labels" if name == "labels" else "z"
        err = assert_one_line_failure(capsys, "estimate", path, message=f"unusable: the array '{key}'")
        assert "has a header claiming shape" in err, name


def test_an_archive_whose_zip_directory_lies(tmp_path, capsys):
    # The .npy header and the zip's own record of the member's size agree on a huge array, but the
    # member's compressed data cannot hold it.
    claimed = 10**6 * 10**6 * 8
    path = archive(
        tmp_path / "lying.npz",
        {"z.npy": npy_header((10**6, 10**6)) + bytes(1000), "labels.npy": LABELS},
        zipfile.ZIP_DEFLATED,
    )
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")  # the first central-directory entry: z.npy
    (old,) = struct.unpack_from("<I", raw, central + 24)
    struct.pack_into("<I", raw, central + 24, 2**32 - 1)  # uncompressed size: 4 GB
    path.write_bytes(bytes(raw))
    assert old < claimed
    assert_one_line_failure(capsys, "estimate", path, message="more than its")


def test_a_single_npy_with_a_huge_header_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "huge.npy"
    path.write_bytes(npy_header((10**6, 10**6)))
    assert_one_line_failure(capsys, "estimate", path, message="is a single .npy array, not an .npz archive")


def test_estimate_options_out_of_range(tmp_path, capsys):
    path = tmp_path / "ok.npz"
    np.savez(path, z=np.random.default_rng(0).normal(size=(20, 2)), labels=np.arange(20) % 2)
    for options, message in [
        (["--seed", "-1"], "argument --seed: must be a non-negative integer"),  # was a failed row per metric
        (["--threads", "1000000"], "argument --threads: at most"),  # was a ValueError traceback
        (["--ci", str(2**64)], "ci: must be at most 4294967295"),
        (["--n-bins", str(2**40)], "n_bins: must be at most 2147483648"),
    ]:
        assert_one_line_failure(capsys, "estimate", path, *options, message=message)
