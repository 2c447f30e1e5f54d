"""taskrun tasks as engine Tasks: the same commands, plus the trace that makes resume work.

A taskrun task names no files, so by itself the engine would rerun it only when its
command changed. So each task also writes a *run stamp* when it succeeds (a file
under .pytaskmake/taskrun/ holding a value new at every run) and reads the stamps of
its dependencies as inputs: a dependency that ran again since has rewritten its
stamp, and the engine's own content check reruns the task. Records and stamps are
committed as each task ends, so after a failure, a kill or an edited command the
next run does exactly what has not succeeded since.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from ..action import CallableAction, ShellAction, make_action
from ..errors import TaskfileError
from ..taskfile import Task as EngineTask
from ..taskfile import _checked_files, _normalize, _split_where
from .tasks import FileModificationCondition, FunctionTask, NopTask, ProcessTask, Task

STAMPS = ".pytaskmake/taskrun"  # beside the state database: forgotten with it


@dataclass
class Declared:
    """The engine's tasks for a manager's, and what reports need to speak taskrun."""

    tasks: list[EngineTask]
    by_stamp: dict[str, str] = field(default_factory=dict)  # stamp path -> task name
    notices: list[str] = field(default_factory=list)


def declare(tasks: Sequence[Task], root: Path) -> Declared:
    """Engine tasks for `tasks` (in order), paths relative to `root`; TaskfileError,
    naming the script's line, for what has no equivalent."""
    stamps = _stamps(tasks)
    files = [_files(t, root) for t in tasks]
    produced = {path for _, outputs in files for path in outputs}
    declared = Declared([], {stamp: t.name for t, stamp in stamps.items()})
    for t, (inputs, outputs) in zip(tasks, files, strict=True):
        tracked = _tracked(t, inputs, produced, root, declared.notices)
        for up in t.get_dependencies():
            if up not in stamps:
                _refuse(t, f"task {t.name!r} depends on {up.name!r}, which another manager holds")
            tracked.append(stamps[up])
        log, stderr = _streams(t, root)
        action = _action(t, stamps[t], stderr)
        deps = tuple(up.name for up in t.get_dependencies())
        outputs = (*outputs, stamps[t])
        declared.tasks.append(
            EngineTask(
                t.name, action, tuple(tracked), outputs, deps, log, cache=False, where=t.where
            )
        )
    return declared


def _tracked(
    t: Task, inputs: tuple[str, ...], produced: set[str], root: Path, notices: list[str]
) -> list[str]:
    """The condition inputs that exist or that a task declares as an output. Another is
    made by a command that does not say so (a taskrun script may well leave it out):
    refusing it as a missing source would stop a script that ran under taskrun."""
    tracked = []
    for path in inputs:
        if path in produced or os.path.lexists(root / path):
            tracked.append(path)
        else:
            notices.append(
                f"{t.name}: condition input {path} does not exist and no task lists it as "
                "an output: not tracked this run"
            )
    return tracked


def stamp_path(name: str) -> str:
    """Where a task's run stamp lives: readable, and distinct for distinct names."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:60] or "task"
    return f"{STAMPS}/{readable}-{hashlib.blake2b(name.encode(), digest_size=4).hexdigest()}"


def _stamps(tasks: Sequence[Task]) -> dict[Task, str]:
    first: dict[str, Task] = {}
    for t in tasks:
        for message, where in t.mistakes:
            raise TaskfileError(f"task {t.name!r}: {message}", *_split_where(where))
        if not isinstance(t.name, str) or not t.name or "\0" in t.name:
            _refuse(t, f"a task name must be a non-empty string, not {t.name!r}")
        if t.name in first:
            _refuse(t, f"task {t.name!r} is declared twice (first at {first[t.name].where})")
        first[t.name] = t
    return {t: stamp_path(t.name) for t in tasks}


def _refuse(t: Task, message: str) -> NoReturn:
    raise TaskfileError(message, *_split_where(t.where))


def _files(t: Task, root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The inputs and outputs its file conditions name, normalized and checked."""
    inputs: list[Any] = []
    outputs: list[Any] = []
    for condition in t.conditions:
        if not isinstance(condition, FileModificationCondition):
            _refuse(
                t,
                f"task {t.name!r}: {type(condition).__name__} has no pytaskmake equivalent "
                "(only file conditions do: they declare the task's files)",
            )
        inputs += condition.inputs
        outputs += condition.outputs
    try:
        return _checked_files(root, t.name, inputs, outputs)
    except (TypeError, ValueError) as exc:
        raise TaskfileError(str(exc), *_split_where(t.where)) from None


def _streams(t: Task, root: Path) -> tuple[str | None, str | None]:
    """(log, stderr file): the log takes stdout and stderr, unless stderr has a file
    of its own (taskrun's stderr_file; "stdout" means with the standard output)."""
    if not isinstance(t, ProcessTask):
        return None, None
    out, err = t.stdout_file, t.stderr_file
    try:
        log = _normalize(root, out, t.name, "stdout_file") if out is not None else None
        if err is None or err == out or (isinstance(err, str) and err.lower() == "stdout"):
            return log, None
        return log, _normalize(root, err, t.name, "stderr_file")
    except (TypeError, ValueError) as exc:
        raise TaskfileError(str(exc), *_split_where(t.where)) from None


class _ShownShell(ShellAction):
    """A command followed by its stamp's writing, shown as the user wrote it."""

    __slots__ = ("shown",)

    def __init__(self, command: str, shown: str) -> None:
        super().__init__(command)
        self.shown = shown

    def describe(self) -> str:
        return self.shown


class _ShownCall(CallableAction):
    """A FunctionTask's call, shown as taskrun describes it."""

    __slots__ = ("shown",)

    def __init__(self, made: CallableAction, shown: str) -> None:
        super().__init__(made.function, made.wants, made.bound, made.order)
        self._signature = made._signature  # (signed already, or signed with the others)
        self.shown = shown

    def describe(self) -> str:
        return self.shown


def _action(t: Task, stamp: str, stderr: str | None) -> ShellAction | CallableAction:
    # the pids of the script and of the task's shell: two runs of a task never have
    # both the same (and the shell's builtins alone: `date` would cost a process each)
    mark = f'echo "$PPID $$" > {shlex.quote(stamp)}'
    if isinstance(t, ProcessTask):
        if not isinstance(t.command, str) or not t.command.strip():
            _refuse(t, f"ProcessTask {t.name!r} has no command")
        folders = mkdir_targets(t.command)
        if folders is not None:
            return _directories(folders, mark)
        redirect = f" 2> {shlex.quote(stderr)}" if stderr else ""
        # a subshell: the stamp is written even after a command ending in `exit 0`
        return _ShownShell(f"( {t.command}\n){redirect} && {mark}", t.command)
    if isinstance(t, FunctionTask):
        folder = _mkdir_call(t)
        if folder is not None:
            return _directories([folder], mark)
        return _call(t, stamp)
    if isinstance(t, NopTask):
        return _ShownShell(mark, "nop")
    _refuse(t, f"task {t.name!r}: {type(t).__name__} has no pytaskmake equivalent")


def _directories(folders: list[str], mark: str) -> _ShownShell:
    """The post's `mkdir` tasks: create the folders unless they exist (mkdir -p), so a
    rerun after the state was forgotten does not fail on a folder made before."""
    quoted = " ".join(shlex.quote(f) for f in folders)
    return _ShownShell(f"mkdir -p -- {quoted} && {mark}", shlex.join(["mkdir", "-p", *folders]))


_SHELL_SYNTAX = frozenset(";&|<>()$`*?[]{}~\\#\n")


def mkdir_targets(command: str) -> list[str] | None:
    """The folders of a plain `mkdir [-p] DIR...` command; None for any other command."""
    if _SHELL_SYNTAX.intersection(command):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) < 2 or words[0] != "mkdir":
        return None
    folders = [w for w in words[1:] if w not in ("-p", "--parents")]
    if not folders or any(w.startswith("-") for w in folders):
        return None
    return folders


def _mkdir_call(t: FunctionTask) -> str | None:
    """The folder of a FunctionTask calling os.mkdir or os.makedirs (taskrun 4's way to
    make a folder), when it sets nothing else (a mode); else None."""
    if t.func not in (os.mkdir, os.makedirs) or len(t.args) != 1:
        return None
    if set(t.kwargs) - {"exist_ok"} or not isinstance(t.args[0], (str, os.PathLike)):
        return None
    return os.fspath(t.args[0])


def _call(t: FunctionTask, stamp: str) -> _ShownCall:
    func, args, kwargs = t.func, t.args, t.kwargs

    def run() -> bool:  # its closure (func's code, args, kwargs) is its signature
        return _succeeded(func(*args, **kwargs), stamp)

    made = make_action(run, t.name)
    assert isinstance(made, CallableAction)
    return _ShownCall(made, t.describe())


def _succeeded(result: object, stamp: str) -> bool:
    """taskrun's rule: None or 0 is success; anything else is the error."""
    try:
        ok = result is None or bool(result == 0)
    except Exception:  # an object that cannot say whether it equals 0
        ok = False
    if not ok:
        print(f"returned {result!r}", file=sys.stderr)
        return False
    with open(stamp, "w") as f:
        f.write(os.urandom(8).hex() + "\n")
    return True
