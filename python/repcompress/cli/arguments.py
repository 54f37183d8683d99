"""What every command of the command line shares: its parser, the option types, the output directory.

A command fails in one line on stderr and exit status 2 (docs/spec.md §6.4): argparse's own errors
through :class:`Parser`, a command's through :class:`CommandLineError`, which ``main`` reports.
Everything a command can check is checked before it writes anything.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = [
    "CommandLineError",
    "Parser",
    "base",
    "confidence",
    "count",
    "nonnegative",
    "output_directory",
    "prepare_output_directory",
    "seed",
    "threads",
]


class CommandLineError(Exception):
    """A command that cannot run (an option, a file, a directory): ``main`` prints the message as
    one line and exits with status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the message and where to find help), exit
    status 2, as every other failure of the command line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def count(minimum: int) -> Callable[[str], int]:
    """An integer option >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def seed(text: str) -> int:
    """A seed of numpy's generators: a non-negative integer (docs/spec.md §0.6)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def threads(text: str) -> int:
    """A thread count, 1 to :func:`repcompress._threads.thread_limit` (docs/spec.md §0.7)."""
    from .._threads import check_num_threads

    value = count(1)(text)
    try:
        return check_num_threads(value, "threads")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("threads: ")) from None


def nonnegative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def base(text: str) -> float:
    if text.strip().lower() == "e":
        return math.e
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'e', got {text!r}") from None
    if not (math.isfinite(value) and value > 0 and value != 1):
        raise argparse.ArgumentTypeError(f"must be positive, finite and not 1, got {text}")
    return value


def confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text}")
    return value


def output_directory(text: str) -> Path:
    """An output directory as given: refused when empty (``Path("")`` is the current directory) or
    when it names an existing file. Whether it can be made and written is checked by
    :func:`prepare_output_directory`, once every other option has been checked."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an output directory is required, got an empty path")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    return path


def prepare_output_directory(path: Path, option: str = "--out") -> Path:
    """Makes ``path`` (and its parents) and checks that a file can be written there, so that a
    command fails at once rather than after its work; a :class:`CommandLineError` naming ``option``
    otherwise."""
    if path.exists() and not path.is_dir():
        raise CommandLineError(f"{option}: {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise CommandLineError(f"{option}: cannot write to {path} ({exc.strerror or exc})") from None
    return path


def fail(command: str, message: str) -> int:
    """Reports a failure of ``command`` as one line on stderr; returns the exit status, 2."""
    print(f"repcompress {command}: error: {message}", file=sys.stderr)
    return 2
