"""Progress bars for long loops, drawn by tqdm (``tqdm.auto``: a widget in Jupyter, text on stderr
elsewhere), with the library's rule for when to show one (docs/spec.md §0.9)."""

from __future__ import annotations

from typing import Any


class Progress:
    """``show=True`` always shows the bar, ``False`` never, ``None`` only once the work has run for
    more than ``after`` seconds (short calls stay silent: tqdm's ``delay``).

    The bar is created at once (so its clock starts with the work) and closed by :meth:`close`,
    which every caller reaches through ``try/finally``.
    """

    def __init__(self, total: int, label: str, show: bool | None = None, after: float = 2.0):
        from tqdm.auto import tqdm

        self.total = max(int(total), 1)
        self._bar: Any = tqdm(
            total=self.total,
            desc=label,
            disable=show is False,
            delay=after if show is None else 0.0,
            leave=True,
            dynamic_ncols=True,
        )

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()
