"""What a taskrun run shows: the engine's events, told in taskrun's terms.

pytaskmake's console reporter stays the one that prints. `TaskrunView` sits between
it and the engine: it speaks of dependencies where the engine speaks of run stamps,
says which tasks were skipped as done before (the resume), stops the running tasks
at the first failure in aggressive_fail mode (through the executor's terminate()),
and calls the script's own taskrun Observers. Observer, VerboseObserver and
FileCleanupObserver are taskrun's observer types.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import IO, Any

from .. import events as ev
from ..executors.base import Executor
from ..report import ConsoleReporter, use_colour
from .declare import STAMPS, Declared
from .tasks import ProcessTask, Task


class Observer:
    """taskrun.Observer: subclass it and override what you want to hear about."""

    def task_added(self, task: Task) -> None: ...
    def task_started(self, task: Task) -> None: ...
    def task_bypassed(self, task: Task) -> None: ...  # skipped: done before
    def task_completed(self, task: Task) -> None: ...
    def task_failed(self, task: Task, errors: Any) -> None: ...  # exit code, or why
    def task_killed(self, task: Task) -> None: ...
    def run_starting(self) -> None: ...
    def run_complete(self) -> None: ...


class VerboseObserver(Observer):
    """taskrun's printer. Here it selects pytaskmake's console reporter: commands shown
    with show_descriptions, the status line with show_progress (on a terminal), and a
    second, plain copy of the report into `log` when given."""

    def __init__(
        self,
        timer: bool = True,
        log: IO[str] | None = None,
        show_starts: bool = True,
        show_completes: bool = True,
        show_bypasses: bool = True,
        show_failures: bool = True,
        show_kills: bool = False,
        show_progress: bool = True,
        show_summary: bool = True,
        show_descriptions: bool = False,
        show_current_time: bool = False,
    ) -> None:
        self.log, self.show_progress, self.show_descriptions = log, show_progress, show_descriptions

    def reporters(self) -> list[ConsoleReporter]:
        verbosity = 1 if self.show_descriptions else 0
        out = sys.stdout
        found = [ConsoleReporter(out, use_colour("auto", out), verbosity, self._line(out))]
        if self.log is not None:
            found.append(ConsoleReporter(self.log, False, verbosity, status_line=False))
        return found

    def _line(self, out: IO[str]) -> bool:
        return self.show_progress and out.isatty()


class FileCleanupObserver(Observer):
    """Removes a failed task's outputs, in taskrun. pytaskmake does better by itself: what
    a failed run wrote goes to .pytaskmake/failed/ and the previous outputs come back."""


class Stopper:
    """The executor factory of a run, keeping the executor it made, so that
    aggressive_fail can stop every running task (the engine then records them failed)."""

    def __init__(self) -> None:
        self.executor: Executor | None = None

    def __call__(self, jobs: int, state_dir: Any) -> Executor:
        from ..engine import _local_executor

        self.executor = _local_executor(jobs, state_dir)
        return self.executor


_STAMP = re.compile(re.escape(STAMPS) + r"/[A-Za-z0-9_-]+")
_INPUT_CHANGED = re.compile(r"(?:implicit )?input (\S+) changed")
_UPSTREAM = re.compile(r"upstream (.+) will run")


class TaskrunView:
    """Between the engine and the reporters: see the module docstring."""

    def __init__(
        self,
        declared: Declared,
        tasks: Sequence[Task],
        forward: ev.Observer,
        callbacks: Sequence[Observer] = (),
        list_all: bool = False,
        stopper: Stopper | None = None,
    ) -> None:
        """`list_all`: name every task skipped as done (else the first 50); `stopper`:
        in aggressive_fail mode, the executor to stop at the first failure."""
        self.declared, self.forward, self.callbacks = declared, forward, callbacks
        self.tasks = {t.name: t for t in tasks}
        self.list_all, self.stopper = list_all, stopper
        self.first_failure: str | None = None

    def speak(self, reason: str) -> str:
        """A reason in taskrun's words: dependencies, not stamp files; commands."""
        if reason == "action changed":
            return "command changed"
        by_stamp = self.declared.by_stamp
        found = _INPUT_CHANGED.fullmatch(reason)
        if found and found.group(1) in by_stamp:
            return f"dependency {by_stamp[found.group(1)]!r} reran"
        found = _UPSTREAM.fullmatch(reason)
        if found:
            return f"dependency {found.group(1)!r} will run"
        return _STAMP.sub(lambda m: f"dependency {by_stamp.get(m.group(0), m.group(0))!r}", reason)

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.BuildStarted):
            self.forward.handle(event)
            self._started(event)
            return
        if isinstance(event, ev.TaskStarted):
            event = event._replace(reason=self.speak(event.reason))
            self._call("task_started", self.tasks[event.name])
        elif isinstance(event, ev.TaskDone):
            event = self._done(event)
        elif isinstance(event, ev.BuildFinished):
            self._finished(event)
        self.forward.handle(event)
        if isinstance(event, ev.BuildFinished):
            for observer in self.callbacks:
                observer.run_complete()

    def _started(self, event: ev.BuildStarted) -> None:
        for observer in self.callbacks:
            observer.run_starting()
        for notice in self.declared.notices:
            self.forward.handle(ev.Notice(notice))
        running = set(event.names)
        done = [name for name in self.tasks if name not in running]
        if done:
            self.forward.handle(ev.Notice(skipped_line(done, self.list_all), "note"))
        for name in done:
            self._call("task_bypassed", self.tasks[name])

    def _done(self, event: ev.TaskDone) -> ev.TaskDone:
        task = self.tasks[event.name]
        reason = self.speak(event.reason)
        if event.outcome == ev.FAILED:
            reason = self._failed(event, reason)
        event = event._replace(reason=reason)
        if isinstance(task, ProcessTask) and event.outcome in (ev.RAN, ev.FAILED):
            task.returncode = event.returncode
            if event.log is None:
                task.stdout = event.output.decode("utf-8", errors="replace")
        if event.outcome in (ev.RAN, ev.RESTORED):
            self._call("task_completed", task)
        elif event.outcome == ev.UP_TO_DATE:
            self.forward.handle(ev.Notice(f"skipped {event.name}: done before", "note"))
            self._call("task_bypassed", task)
        elif event.outcome == ev.FAILED and task.killed:
            self._call("task_killed", task)
        elif event.outcome == ev.FAILED:
            returncode = event.returncode
            self._call("task_failed", task, returncode if returncode else reason)
        return event

    def _failed(self, event: ev.TaskDone, reason: str) -> str:
        """Note a kill; at the first failure in aggressive_fail mode, stop the others."""
        task = self.tasks[event.name]
        killed = reason == "interrupted" or reason.startswith("killed by")
        if killed and self.first_failure is not None and self.stopper is not None:
            reason = f"killed: {self.first_failure} failed (aggressive_fail)"
        task.killed = killed
        if self.first_failure is None:
            self.first_failure = event.name
            if self.stopper is not None and self.stopper.executor is not None:
                self.stopper.executor.terminate()
        return reason

    def _finished(self, event: ev.BuildFinished) -> None:
        c = event.counts
        done = c.get(ev.RAN, 0) + c.get(ev.RESTORED, 0) + c.get(ev.UP_TO_DATE, 0)
        if 0 < done < len(self.tasks):
            left = len(self.tasks) - done
            message = f"run the script again to resume: {done} done, {left} to run"
            self.forward.handle(ev.Notice(message, "note"))

    def _call(self, method: str, *args: Any) -> None:
        for observer in self.callbacks:
            getattr(observer, method)(*args)


LISTED = 50  # names of tasks skipped as done, unless every one is asked for


def skipped_line(names: Sequence[str], list_all: bool) -> str:
    shown = names if list_all else names[:LISTED]
    more = f" and {len(names) - len(shown)} more" if len(shown) < len(names) else ""
    what = "task" if len(names) == 1 else "tasks"
    return (
        f"skipped {len(names)} {what} done before (same command, no dependency reran): "
        + ", ".join(shown)
        + more
    )
