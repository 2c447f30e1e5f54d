"""Running a taskrun manager's tasks: one engine build, or what it would do.

The taskrun layer calls the engine as the command line does: it declares the tasks,
picks the reporters, builds, and is the one place that turns a mistake (an error
type) into one line and an exit status, since the user's script is its command line.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import TYPE_CHECKING

from .. import events as ev
from ..engine import BuildResult, Engine, EngineOptions, Fanout
from ..errors import PytaskmakeError
from .declare import declare
from .observe import Stopper, TaskrunView, skipped_line

if TYPE_CHECKING:
    from .manager import TaskManager


def run(manager: TaskManager) -> BuildResult:
    """Build the manager's tasks (or list them, for a dry run); a mistake in them ends
    the script with a one-line message and exit status 2."""
    try:
        return _run(manager)
    except PytaskmakeError as exc:
        print(f"pytaskmake: error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except sqlite3.Error as exc:  # disk full, read-only folder
        print(
            f"pytaskmake: error: state database: {exc} (tasks finished before this are recorded)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


def _run(manager: TaskManager) -> BuildResult:
    from .manager import FailureMode

    declared = declare(manager.tasks, manager.root)
    mode = manager.failure_mode
    stopper = Stopper()
    view = TaskrunView(
        declared,
        manager.tasks,
        Fanout(*manager.reporters()),
        manager.callbacks(),
        manager.list_all_skipped(),
        stopper if mode is FailureMode.AGGRESSIVE_FAIL else None,
    )
    keep_going = mode in (FailureMode.ACTIVE_CONTINUE, FailureMode.BLIND_CONTINUE)
    options = EngineOptions(jobs=manager.jobs(), keep_going=keep_going, use_cache=False)
    engine = Engine(declared.tasks, manager.root, options, [view], executor=stopper)
    for notice in _notices(manager):
        view.forward.handle(ev.Notice(notice, "note"))
    if manager.dry_run():
        return _dry_run(engine, view)
    manager.result = engine.build()
    return manager.result


def _notices(manager: TaskManager) -> list[str]:
    from .manager import FailureMode

    found = []
    if manager.failure_mode is FailureMode.BLIND_CONTINUE:
        found.append(
            "failure mode blind_continue runs as active_continue: a task needing a failed "
            "task does not run"
        )
    if os.path.realpath(os.getcwd()) != str(manager.root):
        found.append(
            f"tasks run in {manager.root} (the script's folder, where .pytaskmake/ keeps "
            "their state)"
        )
    return found


def _dry_run(engine: Engine, view: TaskrunView) -> BuildResult:
    """runTasks=False: what would run and why, and what would be skipped as done."""
    verdicts = engine.plan()
    out = sys.stdout
    stale = [name for name, verdict in verdicts.items() if verdict.stale]
    for name in stale:
        out.write(f"would run {name}: {view.speak(verdicts[name].reason)}\n")
        if view.list_all:  # showCommands
            out.write(f"  $ {engine.tasks[name].action.describe()}\n")
    done = [name for name, verdict in verdicts.items() if not verdict.stale]
    if done:
        out.write("would have " + skipped_line(done, view.list_all) + "\n")
    out.write(f"{len(stale)} of {len(verdicts)} tasks would run (runTasks=False: nothing ran)\n")
    out.flush()
    return BuildResult()
