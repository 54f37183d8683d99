"""The progress bar's rule (docs/spec.md §0.9): shown from the start on request, never when refused,
and by default only once a call has run longer than its delay; drawn by tqdm on stderr."""

from __future__ import annotations

import time

import numpy as np

import repcompress as rc
from repcompress._progress import Progress


def run(show, after=0.2, steps=3, pause=0.0):
    bar = Progress(steps, "work", show=show, after=after)
    try:
        for _ in range(steps):
            time.sleep(pause)
            bar.update()
    finally:
        bar.close()


def test_the_bar_is_shown_on_request_and_names_its_work(capsys):
    run(True)
    err = capsys.readouterr().err
    assert "work" in err and "3/3" in err


def test_the_bar_is_never_shown_when_refused(capsys):
    run(False, after=0.0, pause=0.05)
    assert capsys.readouterr().err == ""


def test_by_default_only_calls_longer_than_the_delay_show_a_bar(capsys):
    run(None, after=5.0)
    assert capsys.readouterr().err == ""
    run(None, after=0.05, steps=4, pause=0.05)
    assert "4/4" in capsys.readouterr().err


def test_resampling_reports_through_the_bar(capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 1))
    rc.confidence_interval(rc.mutual_info, x, x + rng.normal(size=(200, 1)), n_resamples=8, progress=True)
    err = capsys.readouterr().err
    assert "8/8" in err
