"""The engine (engine.py) as a library: built directly, no command line, several
builds in one process with changes between them, real files, processes and SQLite."""

from __future__ import annotations

import gc
import os
import sys
import weakref
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytaskmake import events as ev
from pytaskmake import stale
from pytaskmake.engine import Engine, EngineOptions
from pytaskmake.errors import LockedError
from pytaskmake.taskfile import Task, load_taskfile


class Recorder:
    """An observer keeping every event, so a test reads what the engine reported."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    def handle(self, event: ev.Event) -> None:
        self.events.append(event)

    def outcomes(self) -> dict[str, str]:
        """Task name -> outcome of the events since the last call; then forgets them."""
        found = {e.name: e.outcome for e in self.events if isinstance(e, ev.TaskDone)}
        self.events.clear()
        return found


def pipeline(root: Path) -> list[Task]:
    """a.txt -> up.txt -> count.txt, and b.txt -> copy.txt: two independent chains."""
    (root / "a.txt").write_text("hello\n")
    (root / "b.txt").write_text("other\n")
    return [
        Task("upper", "tr a-z A-Z < a.txt > up.txt", ("a.txt",), ("up.txt",)),
        Task("count", "wc -c < up.txt > count.txt", ("up.txt",), ("count.txt",)),
        Task("copy", "cp b.txt copy.txt", ("b.txt",), ("copy.txt",)),
    ]


def ran(recorder: Recorder) -> set[str]:
    return {n for n, o in recorder.outcomes().items() if o == ev.RAN}


def test_two_builds_in_one_process_with_a_change_between(tmp_path: Path) -> None:
    recorder = Recorder()
    engine = Engine(pipeline(tmp_path), tmp_path, EngineOptions(jobs=2), [recorder])
    first = engine.build()
    assert first.exit_code == 0 and first.counts[ev.RAN] == 3
    assert (tmp_path / "up.txt").read_text() == "HELLO\n"
    assert ran(recorder) == {"upper", "count", "copy"}
    second = engine.build()
    assert second.counts[ev.UP_TO_DATE] == 3 and ran(recorder) == set()
    (tmp_path / "a.txt").write_text("changed\n")
    third = engine.build()
    assert third.counts[ev.RAN] == 2 and ran(recorder) == {"upper", "count"}
    assert (tmp_path / "up.txt").read_text() == "CHANGED\n"
    assert os.getcwd() != str(tmp_path)  # the engine left the working directory alone


def test_changed_paths_check_only_the_tasks_naming_them(tmp_path: Path) -> None:
    """A watcher tells the engine what changed: only those tasks' stamps are computed.

    b.txt is edited too but not reported: the caller's word is taken (this is what
    makes an answer O(changed)), and a build told nothing afterwards sees it.
    """
    recorder = Recorder()
    engine = Engine(pipeline(tmp_path), tmp_path, EngineOptions(jobs=2), [recorder])
    engine.build()
    recorder.outcomes()
    (tmp_path / "a.txt").write_text("next\n")
    (tmp_path / "b.txt").write_text("unreported\n")
    told = engine.build(changed_paths=(str(p) for p in [tmp_path / "a.txt"]))  # read twice
    assert ran(recorder) == {"upper", "count"} and told.counts[ev.UP_TO_DATE] == 1
    assert engine.build(changed_paths=[]).counts[ev.UP_TO_DATE] == 3
    assert ran(recorder) == set()
    engine.build()  # not told: every file is looked at again
    assert ran(recorder) == {"copy"}


def test_changed_paths_after_a_failed_build_still_finish_the_work(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("1\n")
    tasks = [
        Task("check", "grep -q ok in.txt && cp in.txt checked.txt", ("in.txt",), ("checked.txt",)),
        Task("use", "cp checked.txt used.txt", ("checked.txt",), ("used.txt",)),
    ]
    recorder = Recorder()
    engine = Engine(tasks, tmp_path, EngineOptions(jobs=1), [recorder])
    assert engine.build().exit_code == 1
    assert recorder.outcomes() == {"check": ev.FAILED, "use": ev.SKIPPED}
    (tmp_path / "in.txt").write_text("ok\n")
    assert engine.build(changed_paths=["in.txt"]).exit_code == 0
    assert recorder.outcomes() == {"check": ev.RAN, "use": ev.RAN}


def test_replaced_declarations_check_only_what_changed(tmp_path: Path) -> None:
    """New declarations (a reloaded Taskfile) in the same engine: the new task runs,
    the edited one reruns, the rest is known up to date without being rerun."""
    recorder = Recorder()
    tasks = pipeline(tmp_path)
    engine = Engine(tasks, tmp_path, EngineOptions(jobs=2), [recorder])
    engine.build()
    recorder.outcomes()
    (tmp_path / "c.txt").write_text("third\n")
    edited = Task("copy", "cp b.txt copy.txt && echo >> copy.txt", ("b.txt",), ("copy.txt",))
    new = Task("more", "cp c.txt more.txt", ("c.txt",), ("more.txt",))
    engine.replace_tasks([tasks[0], tasks[1], edited, new])
    result = engine.build()
    assert ran(recorder) == {"copy", "more"} and result.counts[ev.UP_TO_DATE] == 2
    assert engine.build().counts[ev.UP_TO_DATE] == 4


def test_the_lock_is_held_across_builds_when_asked(tmp_path: Path) -> None:
    engine = Engine(pipeline(tmp_path), tmp_path)
    other = Engine(pipeline(tmp_path), tmp_path)
    with engine.locked():
        assert engine.build().exit_code == 0
        assert engine.build().exit_code == 0
        with pytest.raises(LockedError):
            other.build()
    assert other.build().counts[ev.UP_TO_DATE] == 3


def test_loading_leaves_nothing_behind_in_the_process(tmp_path: Path) -> None:
    """No chdir, no module left in sys.modules, no old load kept alive by the collector."""
    (tmp_path / "helpers_for_engine_test.py").write_text("FACTOR = 2\n")
    (tmp_path / "Taskfile.py").write_text(
        "from pytaskmake import task\n"
        "import helpers_for_engine_test as h\n"
        "def action(inputs, outputs):\n"
        "    open(outputs[0], 'w').write(str(h.FACTOR))\n"
        "task('t', action, outputs=['out.txt'])\n"
    )
    before = os.getcwd()
    registry = load_taskfile(tmp_path / "Taskfile.py")
    assert os.getcwd() == before
    assert "helpers_for_engine_test" not in sys.modules  # a reload sees its edits
    engine = Engine(registry)
    assert engine.build().exit_code == 0 and (tmp_path / "out.txt").read_text() == "2"
    function = registry.tasks["t"].action.function  # type: ignore[attr-defined]
    gone = weakref.ref(function)
    del registry, engine, function
    gc.collect()
    assert gone() is None, "an old load is kept alive (gc.freeze pins it)"


@pytest.mark.timeout(30)
def test_set_change_names_the_first_added_and_removed_in_linear_time() -> None:
    """A summary of 100,000 inputs, 10 of them new: the reason is found at once (the
    old list comprehension tested each against a tuple of 100,000: minutes)."""
    recorded = {f"out/parse_{i}.csv": ((i, 1, i, i, 0o100644), "00" * 32) for i in range(100_000)}
    now = tuple(f"out/parse_{i}.csv" for i in range(5, 100_010))
    reason = stale._set_change("inputs", recorded, now)
    assert reason == "inputs changed (added out/parse_100000.csv, removed out/parse_0.csv)"


def test_a_build_told_what_changed_never_vouches_for_what_it_did_not_look_at(
    tmp_path: Path,
) -> None:
    """An output edited by hand where no watcher looks, then a build told of another
    change: the snapshot saved after it must not hide the edit from the next build."""
    recorder = Recorder()
    tasks = pipeline(tmp_path)
    Engine(tasks, tmp_path, EngineOptions(jobs=1)).build()
    engine = Engine(tasks, tmp_path, EngineOptions(jobs=1), [recorder])  # a new process:
    engine.build()  # a no-op from the snapshot, knowing no file's stat yet
    recorder.outcomes()
    (tmp_path / "copy.txt").write_text("edited by hand\n")  # not reported
    (tmp_path / "a.txt").write_text("reported\n")
    engine.build(changed_paths=["a.txt"])
    assert ran(recorder) == {"upper", "count"}
    engine.build()  # not told: a fresh look
    assert ran(recorder) == {"copy"}
    assert (tmp_path / "copy.txt").read_text() == "other\n"


def test_a_job_the_executor_can_never_run_is_an_error_before_anything_runs(
    tmp_path: Path,
) -> None:
    """The build asks its executor about every job that may run before starting one
    (a Dask cluster where no worker has a task's resources)."""
    from pytaskmake.errors import ExecutorError
    from pytaskmake.executors.base import Job
    from pytaskmake.executors.local import LocalExecutor

    class Refusing(LocalExecutor):
        def check(self, jobs: Iterable[Job]) -> None:
            for job in jobs:
                if job.name == "count":
                    raise ExecutorError(f"task {job.name!r} needs gpu=1", job.name)

    engine = Engine(pipeline(tmp_path), tmp_path, EngineOptions(jobs=2),
                    executor=lambda jobs, state_dir: Refusing(jobs))  # fmt: skip
    with pytest.raises(ExecutorError, match="task 'count' needs gpu=1"):
        engine.build()
    assert not (tmp_path / "up.txt").exists() and not (tmp_path / "copy.txt").exists()
    assert engine.build(["copy"]).exit_code == 0  # without it, the rest builds
