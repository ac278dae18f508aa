"""Prediction files written beside the work: a unit's final mask is saved on a background thread
while the next unit runs, and the unit's result is released only once its file is on disk.

Compressing a 512 × 512 × 60 mask into NIfTI takes about 0.1 s, most of it in zlib, which lets
other threads run; written in line, it is time every unit of a run waits. The result is held
back until the file exists, so a run killed in between stores nothing of that unit and
recomputes it when resumed (no row points to a missing file, no duplicate).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class BackgroundWriter(Generic[R]):
    """One writer thread; results released in the order their writes were queued.

    >>> w: BackgroundWriter[str] = BackgroundWriter()
    >>> written = []
    >>> w.add("unit a", written.append, "a.nii.gz")
    >>> list(w.drain()), written
    (['unit a'], ['a.nii.gz'])
    >>> w.close()
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="radioactive-writes")
        self._pending: deque[tuple[Future[Any], R]] = deque()

    def add(self, result: R, write: Callable[..., Any], *args: Any) -> None:
        """Queue ``write(*args)``; ``result`` is released once it has run."""
        self._pending.append((self._pool.submit(write, *args), result))

    def ready(self) -> Iterator[R]:
        """The results whose writes (and all writes queued before them) are done."""
        while self._pending and self._pending[0][0].done():
            yield self._release()

    def drain(self) -> Iterator[R]:
        """Every queued result, waiting for its write."""
        while self._pending:
            yield self._release()

    def close(self) -> None:
        """Wait for the writes still running and stop the thread."""
        self._pool.shutdown(wait=True)

    def _release(self) -> R:
        future, result = self._pending.popleft()
        future.result()  # a failed write raises here, as it would have in line
        return result


__all__ = ["BackgroundWriter"]
