"""collector.py: the garbage collector paused where a step makes many objects, on
the real gc module (the state is put back after each test)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pytaskmake import collector


@pytest.fixture(autouse=True)
def _gc_as_before() -> Iterator[None]:
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_no_collection_inside_and_the_collector_back_after() -> None:
    gc.enable()
    seen: list[str] = []
    callback = lambda phase, info: seen.append(phase)  # noqa: E731
    gc.callbacks.append(callback)
    try:
        with collector.paused():
            assert not gc.isenabled()
            for _ in range(50_000):  # past any threshold: a collection if enabled
                _Cycle()
            assert seen == []
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(callback)
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()  # disabled by the caller: stays so


def test_freezing_sets_aside_what_the_step_made_garbage_or_not() -> None:
    """Frozen objects are never walked again: a cycle the step left is not collected
    (load_taskfile's `frozen` says so), unlike one left by a step not frozen."""
    import weakref

    gc.unfreeze()
    gc.enable()
    for freeze in (True, False):
        with collector.paused(freeze=freeze):
            left = weakref.ref(_Cycle())
        gc.collect()
        assert (left() is not None) == freeze
    assert gc.get_freeze_count() > 0 and gc.isenabled()
