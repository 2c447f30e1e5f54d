"""Hashing big outputs beside the build loop, so that dispatching never waits on it.

A task that wrote gigabytes is hashed on a worker thread (BLAKE3 releases the GIL),
while the loop goes on starting and finishing other tasks; the task is recorded,
and what waits on it released, when its hashes are in. Small outputs are hashed on
the spot: a thread hop costs more than hashing a few kilobytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .executors.base import Completion
from .fingerprint import Stat, hash_file, stat_of

if TYPE_CHECKING:  # (imported on first use: most builds write no big output)
    from concurrent.futures import Future, ThreadPoolExecutor

BIG = 4 << 20  # outputs adding up to this many bytes are hashed on the thread

Hashed = dict[str, tuple[Stat, str] | None]  # path -> (stat before reading, content hash)


class BackgroundHasher:
    """Hashes the outputs of finished tasks on one worker thread, in order."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None  # started on first use
        self._pending: list[tuple[Completion, Future[Hashed]]] = []

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, completion: Completion, paths: tuple[str, ...]) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="pytaskmake-hash")
        self._pending.append((completion, self._pool.submit(_hash_all, paths)))

    def done(self, block: bool = False) -> list[tuple[Completion, Hashed]]:
        """The tasks whose hashes are in (`block`: wait for at least one)."""
        if block and self._pending:
            from concurrent.futures import wait

            wait([f for _, f in self._pending], return_when="FIRST_COMPLETED")
        ready = [(c, f) for c, f in self._pending if f.done()]
        if not ready:
            return []
        self._pending = [(c, f) for c, f in self._pending if not f.done()]
        return [(c, _result(f)) for c, f in ready]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _hash_all(paths: tuple[str, ...]) -> Hashed:
    """(stat, content hash) of each path; the stat is taken before reading, so a file
    changed meanwhile is read again by the next build, never trusted."""
    found: Hashed = {}
    for path in paths:
        st = stat_of(path)
        found[path] = None if st is None else (st, hash_file(path))
    return found


def _result(future: Future[Hashed]) -> Hashed:
    from concurrent.futures import TimeoutError as FutureTimeout

    try:
        return future.result(timeout=0)
    except (OSError, FutureTimeout):  # vanished while hashed: as if not produced
        return {}
