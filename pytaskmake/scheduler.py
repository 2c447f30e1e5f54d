"""In what order: the ready queue over the selected part of the graph.

Pure bookkeeping in memory (no I/O, no processes), so ordering, keep-going and
failure propagation are tested without running anything. The order among ready
tasks is a policy: a priority function, declaration order by default.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable


class Scheduler:
    """Tracks which selected tasks are waiting, ready, done, failed or skipped."""

    def __init__(
        self,
        names: Iterable[str],
        upstream: dict[str, tuple[str, ...]] | dict[str, list[str]],
        dependants: dict[str, tuple[str, ...]] | dict[str, list[str]],
        priority: Callable[[str], float] | None = None,
    ) -> None:
        order = list(names)
        everything = len(order) == len(upstream)  # the usual case: no set of 200,000 names
        selected = upstream if everything else set(order)
        self._dependants = dependants
        self._waiting: dict[str, int] = {}
        # by default the declaration position; kept only for tasks still waiting, and
        # dropped as each is released (a dict of 200,000 positions cost ~15 MB)
        rank: dict[str, int] = {}
        self._ready: list[tuple[float, str]] = []
        for position, name in enumerate(order):
            ups = upstream[name]
            count = len(ups) if everything else sum(1 for up in ups if up in selected)
            if count:
                self._waiting[name] = count
                if priority is None:
                    rank[name] = position
            else:
                self._ready.append((position if priority is None else priority(name), name))
        self._priority: Callable[[str], float] = priority or rank.pop
        heapq.heapify(self._ready)
        self.total = len(order)

    def pop(self) -> str | None:
        """The most urgent ready task, or None when nothing is ready now."""
        return heapq.heappop(self._ready)[1] if self._ready else None

    def succeeded(self, name: str) -> None:
        """`name` is done (ran, restored or up to date): release what waited on it."""
        waiting = self._waiting
        for child in self._dependants[name]:
            if child in waiting:
                waiting[child] -= 1
                if not waiting[child]:
                    del waiting[child]
                    heapq.heappush(self._ready, (self._priority(child), child))

    def failed(self, name: str) -> list[str]:
        """`name` failed: every selected task downstream can no longer run; returns them."""
        skipped: list[str] = []
        stack = list(self._dependants[name])
        while stack:
            child = stack.pop()
            if self._waiting.pop(child, None) is not None:
                skipped.append(child)
                stack.extend(self._dependants[child])
        return skipped

    def blocked(self) -> list[str]:
        """Tasks still waiting when the build stops (never reached)."""
        return [n for _, n in self._ready] + list(self._waiting)
