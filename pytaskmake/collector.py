"""Python's cyclic garbage collector, paused where a step makes many objects and no
garbage cycles.

The collector walks the objects made since its last pass every 700 new ones, and
all of them now and then. Loading 200,000 declarations makes ~1,000,000 objects
(a collector walking them again and again was a third of the load), and deciding
what an edit of them reaches makes as many again: at 100,000 points a command
edited spent 140 ms in 250 collections. Those steps make no cycles worth
collecting; the build loop, which may last hours, collects as usual (a one-shot
build, every 10,000 new objects: see commands._collect_less).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused(freeze: bool = False) -> Iterator[None]:
    """No collection inside (one left disabled by the caller stays so). `freeze`:
    then every object alive is set aside for good (gc.freeze): made while paused,
    they were all young, and the first collection after would walk them all (~40 ms
    after a load of 200,000 declarations), then again as they aged."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if collecting:
            gc.enable()
