"""CompressionTracker(executor=...): the metrics computed off the training loop give the frame of
the synchronous tracker (docs/spec.md §9)."""

import contextlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from torch_support import require_torch

torch = require_torch()
pd = pytest.importorskip("pandas")
from torch import nn  # noqa: E402

from repcompress.torch import CompressionTracker, GaussianDropout  # noqa: E402


def train_and_track(tracker):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(120) % 3
    x = torch.randn(120, 6, generator=g) + nn.functional.one_hot(y, 6).float() * 2
    data = [(x[i : i + 40], y[i : i + 40]) for i in range(0, 120, 40)]
    one_class = [(x[y == 1], y[y == 1])]  # fails the metrics that need labels, with a warning
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), GaussianDropout(0.5), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    returned = []
    for epoch in range(1, 4):
        model.train()
        for xb, yb in data:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
        returned.append(tracker.step(model, epoch, {"train": data, "odd": one_class}))
        tracker.record(epoch, "loss", 1.0 / epoch)
    return returned


def make(executor=None, **options):
    return CompressionTracker(
        {"h": "1", "Z": "2"}, metrics=["gaussian-mi", "cdnv", "mi-labels"], ci=3, executor=executor, **options
    )


@pytest.mark.filterwarnings("ignore:CompressionTracker")
@pytest.mark.parametrize("kind", ["threads", "processes", "dask"])
def test_the_async_tracker_gives_the_synchronous_frame(kind):
    synchronous = make()
    train_and_track(synchronous)
    expected = synchronous.frame
    assert len(expected) > 20 and (expected["error"] != "").any()
    if kind == "threads":
        executor = ThreadPoolExecutor(1)
    elif kind == "processes":
        executor = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    else:
        distributed = pytest.importorskip("distributed")
        executor = distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None)
    try:
        tracker = make(executor)
        returned = train_and_track(tracker)
        assert all(frame.empty for frame in returned)
        # The failures warn in this thread when their measurement is gathered. (Not asserted with
        # threads: Python's warning capture, which the metrics use per row, is process-wide.)
        warned = (
            pytest.warns(RuntimeWarning, match="CompressionTracker: cdnv of layer 'h' failed")
            if kind == "processes"
            else contextlib.nullcontext()
        )
        with warned:
            partial = tracker.frame  # what has finished so far: some rows, 'loss' among them
            assert "loss" in set(partial["metric"]) and len(partial) <= len(expected)
            got = tracker.wait()
    finally:
        if kind == "dask":
            executor.close()
        else:
            executor.shutdown()
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(tracker.frame, expected)


def test_the_executor_is_checked_when_the_tracker_is_made():
    with pytest.raises(TypeError, match=r"^executor: expected a concurrent.futures executor"):
        make(executor="pool")


def test_an_executor_and_a_metrics_device_are_exclusive():
    """With an executor the activations travel to it as numpy arrays: no device to compute on."""
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match=r"^metrics_device: the metrics of an executor"):
        make(executor=pool, metrics_device="cpu")
