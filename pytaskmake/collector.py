"""Python's cyclic garbage collector, told less often to walk where a step makes many
objects and few garbage cycles.

The collector walks the objects made since its last pass every 700 new ones, and
all of them now and then. Deciding what an edit of 200,000 declarations reaches
makes ~1,000,000 objects and no cycles: there pytaskmake's own code runs with the
collector paused. The user's code never runs paused: a Taskfile that drops a cycle
holding a big table each round of a loop must see it collected within a bounded
count of new objects, so the load only runs with the threshold CPython 3.13 chose
(2,000 new objects, not 700). The build's loop, and the forked callables, collect
as Python does by default.

Measured at 100,000 points (a command edited): 130 ms of collections in the load
with 700, 73 ms with 2,000. Left out for what they cost in memory: gc.freeze after
the load (~25 ms saved, but every cycle the Taskfile left was pinned: a 300 MB table
held all build long) and a 10,000 threshold for the build's loop (~33 ms saved, but
a cycle the Taskfile left stayed until 10,000 new objects, there or in a forked
callable: 540 MB, not 65 MB, for a pandas-like loop of cyclic frames).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

LOAD_THRESHOLD = 2_000


@contextmanager
def paused() -> Iterator[None]:
    """No collection inside (one left disabled by the caller stays so). Only around
    pytaskmake's own steps, which make no cycles: a pause never bounds garbage."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@contextmanager
def less_often(threshold: int) -> Iterator[None]:
    """The youngest generation collected every `threshold` new objects inside (never
    more often than the caller had it), as before after."""
    before = gc.get_threshold()
    gc.set_threshold(max(threshold, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
