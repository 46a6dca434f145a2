"""Progress bars for the demo and the benchmark: tqdm's when it is installed, plain lines otherwise.

tqdm is an extra (`pip install ".[demo]"`), not a dependency of the library, so
the tools must run without it: the fallback prints one line when a bar starts
and one when it ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

try:
    from tqdm import tqdm as _tqdm
except ImportError:  # pragma: no cover - depends on the environment
    _tqdm = None


class _PlainBar:
    """The part of tqdm's interface the tools use: context manager, iteration, update."""

    def __init__(self, iterable: Iterable[Any] | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", leave: bool = True) -> None:
        del leave
        self._iterable = iterable
        self._desc = desc
        self._unit = unit
        self.n = 0
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        print(f"{desc}: {total if total is not None else '?'} {unit}s", file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        for item in self._iterable or ():
            yield item
            self.update(1)
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        if self._desc is not None:
            print(f"{self._desc}: done, {self.n} {self._unit}s", file=sys.stderr)
            self._desc = None


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A progress bar over `iterable` (or one updated by hand, with `total=`)."""
    if _tqdm is not None:
        return _tqdm(iterable, **kwargs)
    return _PlainBar(iterable, **kwargs)
