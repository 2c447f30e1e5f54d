"""collector.py: the garbage collector paused or told less often to walk where a step
makes many objects, on the real gc module (its state is put back after each test), and
the user's code (a Taskfile, a forked callable) seen collecting its cycles."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import Project, build

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


def test_less_often_raises_the_youngest_threshold_and_puts_it_back() -> None:
    gc.set_threshold(700, 10, 10)
    with collector.less_often(2_000):
        assert gc.get_threshold() == (2_000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)
    gc.set_threshold(50_000, 10, 10)  # the caller's rarer one stands
    with collector.less_often(2_000):
        assert gc.get_threshold() == (50_000, 10, 10)


def test_cycles_a_taskfile_drops_while_loading_are_collected_during_the_load(
    project: Project,
) -> None:
    """The load is the user's code: a loop that drops a cycle each round (a table
    read to decide the tasks) must not hold them all until the load ends."""
    project.taskfile(
        """
        import weakref
        class Cycle:
            def __init__(self):
                self.me = self
        refs = [weakref.ref(Cycle()) for _ in range(20_000)]
        alive = sum(ref() is not None for ref in refs)
        task("report", f"echo {alive} > alive.txt", outputs=["alive.txt"])
        """
    )
    build(project, "-q")
    assert int(project.read("alive.txt")) < 10_000  # 20,000 with the collector paused


def test_a_cycle_the_taskfile_left_is_not_held_while_the_tasks_run(project: Project) -> None:
    """The namespace holding a function is a cycle: once the load is over nothing
    else holds the table in it, and the build must not pin it (gc.freeze did)."""
    project.taskfile(
        """
        table = [bytearray(1 << 20) for _ in range(256)]  # 256 MiB
        def helper():
            return len(table)
        task("probe", "grep VmRSS /proc/$PPID/status > rss.txt", outputs=["rss.txt"])
        """
    )
    build(project, "-q")
    kib = int(project.read("rss.txt").split()[1])
    assert kib < 128 * 1024, project.read("rss.txt")


def test_a_forked_callable_collects_as_a_fresh_interpreter_does(project: Project) -> None:
    """A callable runs the user's code: a cycle it drops each round of a loop (a
    pandas frame) is collected as often as Python itself would, nothing frozen."""
    project.taskfile(
        """
        import gc
        def report(outputs):
            with open(outputs[0], "w") as out:
                out.write(repr((gc.isenabled(), gc.get_threshold(), gc.get_freeze_count())))
        task("report", report, outputs=["gc.txt"])
        """
    )
    build(project, "-q")
    fresh = subprocess.run(
        [sys.executable, "-c", "import gc; print(repr((True, gc.get_threshold(), 0)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert project.read("gc.txt") == fresh.stdout.strip()
