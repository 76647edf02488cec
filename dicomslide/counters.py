"""Named counters that several threads add to: :class:`Counters`.

A :class:`dicomslide.Slide` keeps one for what is counted about the slide as a
whole rather than about one image (the tiles :mod:`dicomslide.serve` sent,
by the path each took); :attr:`dicomslide.Slide.metrics` includes them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping


class Counters:
    """Counters by name, each starting at 0 (thread-safe, picklable)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, **counts: int) -> None:
        """Add to counters.

        Parameters
        ----------
        **counts: int
            Amount to add to each named counter

        """
        with self._lock:
            for name, value in counts.items():
                self._counts[name] = self._counts.get(name, 0) + value

    def as_dict(self) -> dict[str, int]:
        """The counters as a dictionary.

        Returns
        -------
        Dict[str, int]
            Value of every counter added to so far

        """
        with self._lock:
            return dict(self._counts)

    def total(self, others: Iterable[Mapping[str, int]]) -> dict[str, int]:
        """The counters plus other counts, summed by name.

        Parameters
        ----------
        others: Iterable[Mapping[str, int]]
            Counts to add (e.g. the metrics of a slide's images)

        Returns
        -------
        Dict[str, int]
            Sum of every name's counts

        """
        totals = self.as_dict()
        for counts in others:
            for name, value in counts.items():
                totals[name] = totals.get(name, 0) + value
        return totals

    def __getstate__(self) -> dict[str, int]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__()  # type: ignore[misc]
        self.add(**state)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"Counters({counts})"
