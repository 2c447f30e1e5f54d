"""In what order, and when: the ready queue over the selected part of the graph,
and admission of ready tasks into the free resources.

Pure bookkeeping in memory (no I/O, no processes), so ordering, admission,
keep-going and failure propagation are tested without running anything. The order
among ready tasks is a policy (a priority key, declaration order by default).
Admission starts the most urgent ready task that fits what is free; one that does
not fit is passed over without blocking the queue, yet never starved: the most
urgent task waiting for room gets a reservation, and a task passed ahead of it
must either end (by its expected duration) before the reservation is due, or
leave room for it (EASY backfilling, as batch schedulers do).
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .critical import Estimates, remaining_paths
from .resources import ONE, Demand, Limits, Pool, demands_of
from .taskfile import Task

# A ready task in a heap, lower first: (priority key, declaration position), or, when
# the keys are ints (the critical path's steps), both in one int: a sweep starts with
# 100,000 simulations ready, and their tuples took 10 MiB
Entry = Any
_POSITION = (1 << 32) - 1  # the low bits of a packed entry


_SHORT = 0.1  # seconds: paths this short are all alike (our own latency is that order)
_PER_STEP = 1 / math.log(1.1)  # longer paths: alike within a step of 10%


def _rounded(length: float) -> int:
    """A remaining path's length as a step of 10% above 0.1 s: paths alike but for
    the noise of measured durations tie, and then declaration order decides (a sweep
    of alike simulations runs in the order it was declared)."""
    return 0 if length < _SHORT else 1 + int(math.log(length / _SHORT) * _PER_STEP)


def positions(names: list[str]) -> dict[str, int]:
    """Each name's position in `names`: what the scheduler, the critical path and the
    recorded durations of one build index their arrays by."""
    return {name: k for k, name in enumerate(names)}


class Scheduler:
    """Tracks which selected tasks are waiting, ready, running, done, failed or skipped.

    Per task it keeps an array slot, not a dict entry: a build of 200,000 tasks kept
    two dicts of them and a tuple per ready task (~25 MiB); the one dict is `index`.
    """

    def __init__(
        self,
        names: Iterable[str],
        upstream: Mapping[str, Sequence[str]],
        dependants: Mapping[str, Sequence[str]],
        priority: Callable[[str], Any] | None = None,
        demand: Callable[[str], Demand] | None = None,
        pool: Pool | None = None,
        estimate: Callable[[str], float] | None = None,
        index: dict[str, int] | None = None,
        int_keys: bool = False,
    ) -> None:
        """`priority(name)`: a sort key, lower first (ties: declaration order; an int
        each when `int_keys`); `demand(name)`: what a task holds while it runs; `pool`:
        what is free (None: no limit but the caller's); `estimate(name)`: its expected
        seconds; `index`: positions(names), when the caller has it."""
        order = names if isinstance(names, list) else list(names)
        self._names = order
        self._index = index = positions(order) if index is None else index
        everything = len(order) == len(upstream)  # the usual case: no test per edge
        self._dependants = dependants
        # per position: how many of its selected upstream tasks are not done (0 once
        # ready, or skipped)
        self._waiting = array("q", bytes(8 * len(order)))
        self._left = 0  # how many wait
        self._priority = priority
        self._packed = priority is None or int_keys
        self._uniform = demand is None  # every task holds ONE: no lookup per task
        self.demand: Callable[[str], Demand] = demand or (lambda name: ONE)
        self.pool = pool
        self._estimate = estimate or (lambda name: 1.0)
        self._ready: dict[Demand, list[Entry]] = {}  # one heap per demand: a sweep has a few
        self._one: list[Entry] = self._ready.setdefault(ONE, [])  # (hashing a Demand costs)
        self._running: dict[str, tuple[float, Demand]] = {}  # admitted: (start, demand)
        self.demands: dict[str, Demand] = {}  # for_build: the tasks not holding ONE
        self.estimates: Estimates | None = None  # for_build: expected seconds of each task
        waiting = self._waiting
        for position, name in enumerate(order):
            ups = upstream[name]
            count = len(ups) if everything else sum(1 for up in ups if up in index)
            if count:
                waiting[position] = count
                self._left += 1
            else:
                self._heap(name).append(self._entry(name, position))
        for heap in self._ready.values():
            heapq.heapify(heap)
        self.total = len(order)

    @classmethod
    def for_build(
        cls,
        tasks: dict[str, Task],
        names: list[str],
        upstream: Mapping[str, Sequence[str]],
        dependants: Mapping[str, Sequence[str]],
        limits: Limits,
        recorded: array,
        peaks: dict[str, int],
        index: dict[str, int] | None = None,
    ) -> Scheduler:
        """The ready queue of a build of `names`: what each holds (declared, or memory
        learned from its recorded `peaks`; ResourceError if one can never fit in
        `limits`), ordered by `priority=`, then the critical path weighed by the
        `recorded` durations (per position, 0 unknown: see critical.py)."""
        index = positions(names) if index is None else index
        demands = demands_of(tasks, names, peaks, limits)
        estimate = Estimates(tasks, names, index, recorded)
        levels = remaining_paths(
            names, index, upstream, dependants, estimate if estimate.known else None
        )
        steps = array("l", [-_rounded(length) for length in levels])  # (lower first)
        del levels
        where = index.__getitem__
        if any(tasks[name].priority for name in demands):  # (declared ones are all there)
            priority = lambda name: (-tasks[name].priority, steps[where(name)])  # noqa: E731
            int_keys = False
        else:  # the usual case: the critical path alone
            priority = lambda name: steps[where(name)]  # noqa: E731
            int_keys = True
        demand = (lambda name: demands.get(name, ONE)) if demands else None
        made = cls(
            names, upstream, dependants, priority, demand, Pool(limits), estimate, index, int_keys
        )
        made.demands, made.estimates = demands, estimate
        return made

    def _entry(self, name: str, position: int) -> Entry:
        if self._priority is None:
            return position
        if self._packed:
            return (self._priority(name) << 32) | position
        return (self._priority(name), position)

    def _name(self, entry: Entry) -> str:
        return self._names[entry & _POSITION if self._packed else entry[1]]

    def _heap(self, name: str) -> list[Entry]:
        if self._uniform:
            return self._one
        demand = self.demand(name)
        heap = self._ready.get(demand)
        if heap is None:
            heap = self._ready[demand] = []
        return heap

    def _push(self, name: str, position: int) -> None:
        heapq.heappush(self._heap(name), self._entry(name, position))

    def _classes(self) -> list[Demand]:
        """The demands with ready tasks, their most urgent task first."""
        ready = self._ready
        if len(ready) == 1:
            return [d for d, heap in ready.items() if heap]
        return sorted((d for d, heap in ready.items() if heap), key=lambda d: ready[d][0])

    def pop(self) -> str | None:
        """The most urgent ready task regardless of resources, or None when nothing is ready."""
        classes = self._classes()
        return self._name(heapq.heappop(self._ready[classes[0]])) if classes else None

    def admit(self, now: float) -> str | None:
        """The most urgent ready task that may start now, its resources taken from the
        pool; None when none may (wait for a running task to end)."""
        pool = self.pool
        if pool is None:
            return self.pop()
        if self._uniform:  # one heap: its most urgent task, if a slot is free
            if not self._one or pool.slots < 1:
                return None
            name = self._name(heapq.heappop(self._one))
            pool.slots -= 1  # (pool.take(ONE))
            self._running[name] = (now, ONE)
            return name
        classes = self._classes()
        if not classes:
            return None
        head = classes[0]
        if pool.fits(head):
            return self._take(head, now)
        shadow, spare = self._reservation(head, now)
        for demand in classes[1:]:
            if not pool.fits(demand):
                continue
            name = self._name(self._ready[demand][0])
            if now + self._estimate(name) <= shadow or spare.fits(demand):
                return self._take(demand, now)
        return None

    def _reservation(self, head: Demand, now: float) -> tuple[float, Pool]:
        """When the running tasks, ending as expected, leave room for `head`; and
        what would then be left beside it."""
        assert self.pool is not None
        free = self.pool.copy()
        ends = sorted(
            ((max(now, start + self._estimate(name)), demand) for name, (start, demand) in
             self._running.items()),
            key=lambda end: end[0],
        )  # fmt: skip
        for end, demand in ends:
            free.give(demand)
            if free.fits(head):
                free.take(head)
                return end, free
        return math.inf, free  # never fits (limits are checked before the build)

    def _take(self, demand: Demand, now: float) -> str:
        name = self._name(heapq.heappop(self._ready[demand]))
        assert self.pool is not None
        self.pool.take(demand)
        self._running[name] = (now, demand)
        return name

    def release(self, name: str) -> None:
        """An admitted task no longer holds its resources (ended, or found up to date)."""
        held = self._running.pop(name, None)
        if held is not None and self.pool is not None:
            self.pool.give(held[1])

    def succeeded(self, name: str) -> None:
        """`name` is done (ran, restored or up to date): release what waited on it."""
        self.release(name)
        waiting, index = self._waiting, self._index
        for child in self._dependants[name]:
            k = index.get(child)
            if k is not None and waiting[k]:
                waiting[k] -= 1
                if not waiting[k]:
                    self._left -= 1
                    self._push(child, k)

    def failed(self, name: str) -> list[str]:
        """`name` failed: every selected task downstream can no longer run; returns them."""
        self.release(name)
        waiting, index = self._waiting, self._index
        skipped: list[str] = []
        stack = list(self._dependants[name])
        while stack:
            child = stack.pop()
            k = index.get(child)
            if k is not None and waiting[k]:
                waiting[k] = 0
                self._left -= 1
                skipped.append(child)
                stack.extend(self._dependants[child])
        return skipped

    def blocked(self) -> list[str]:
        """Tasks still waiting when the build stops (never reached)."""
        ready = [self._name(entry) for heap in self._ready.values() for entry in heap]
        if not self._left:
            return ready
        return ready + [n for n, count in zip(self._names, self._waiting, strict=True) if count]
