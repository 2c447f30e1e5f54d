"""taskrun's task types and file conditions, declared the taskrun way.

A taskrun script builds these objects, then asks its manager to run; only then does
declare.py turn each into an engine Task. So what a script sets after constructing
a task (`t.stdout_file = ...`, another dependency) counts, as it does in taskrun.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from ..taskfile import _caller_location

if TYPE_CHECKING:
    from .manager import TaskManager


class Task:
    """taskrun.Task: a named node of the graph; its subclasses say what it runs."""

    Manager: ClassVar[Any]  # the post's `taskrun.Task.Manager` (set in manager.py)

    def __init__(self, manager: TaskManager, name: str) -> None:
        self.name = name
        self.manager = manager
        self.priority = 0  # accepted; the engine starts ready tasks in declaration order
        self.resources: dict[str, float] = {}
        self.conditions: list[Condition] = []
        self.killed = False
        self.where = _caller_location(sys._getframe(1))  # "run.py:12", for messages
        self.mistakes: list[tuple[str, str]] = []  # (message, where), reported at the run
        self._dependencies: list[Task] = []
        self._dependents: list[Task] = []
        manager.add_task(self)

    def add_dependency(self, task: Task) -> None:
        """Run after `task`, and again whenever `task` runs again (see declare.py).

        A mistake (not a task, a cycle) is kept and reported when the manager runs, in
        one line naming this line (taskrun raises here, with a traceback)."""
        where = _caller_location(sys._getframe(1))
        if not isinstance(task, Task):
            self.mistakes.append((f"a dependency must be a taskrun task, not {task!r}", where))
        elif task is self or self in _upstream_of(task):
            self.mistakes.append((f"depending on {task.name!r} makes a cycle", where))
        elif task not in self._dependencies:
            self._dependencies.append(task)
            task._dependents.append(self)

    dependency_is = add_dependency  # the post's name for it

    def get_dependencies(self) -> list[Task]:
        return list(self._dependencies)

    def get_dependents(self) -> list[Task]:
        return list(self._dependents)

    def add_condition(self, condition: Condition) -> None:
        """A file condition declares the task's input and output files (declare.py)."""
        self.conditions.append(condition)

    def resource(self, name: str) -> float | None:
        return self.resources.get(name)

    def describe(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def _upstream_of(task: Task) -> set[Task]:
    seen: set[Task] = set()
    stack = [task]
    while stack:
        for up in stack.pop()._dependencies:
            if up not in seen:
                seen.add(up)
                stack.append(up)
    return seen


class ProcessTask(Task):
    """A shell command (taskrun runs it with shell=True, and so do we)."""

    def __init__(self, manager: TaskManager, name: str, command: str | None = None) -> None:
        super().__init__(manager, name)
        self.command = command
        self.stdout_file: str | None = None
        self.stderr_file: str | None = None  # "stdout": with the standard output
        self.returncode: int | None = None  # set when it ran in the last run
        self.stdout: str | None = None  # its output when it ran without stdout_file

    def describe(self) -> str:
        text = self.command or ""
        if self.stdout_file:
            text += f" 1> {self.stdout_file}"
        if self.stderr_file:
            text += f" 2> {self.stderr_file}"
        return text


class FunctionTask(Task):
    """A Python call, run in a forked child: it fails when it raises or returns
    something other than None or 0 (taskrun's rule)."""

    def __init__(
        self, manager: TaskManager, name: str, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(manager, name)
        self.func, self.args, self.kwargs = func, args, kwargs

    def describe(self) -> str:
        name = getattr(self.func, "__name__", repr(self.func))
        return f"def {name}(args={self.args}, kwargs={self.kwargs})"


class NopTask(Task):
    """Does nothing: a join point of the graph."""

    def describe(self) -> str:
        return "nop"


class Condition:
    """taskrun.Condition. Only the file conditions below have an equivalent; any other
    is refused when the manager runs, naming its task."""


class FileModificationCondition(Condition):
    """Run when an output is missing or older than an input, in taskrun. Here its files
    become the task's inputs and outputs, compared by content (a touch reruns nothing)."""

    def __init__(
        self,
        inputs: Iterable[str] | None = None,
        outputs: Iterable[str] | None = None,
        verbose: bool = False,
    ) -> None:
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.verbose = verbose

    def add_input(self, filename: str) -> None:
        self.inputs.append(filename)

    def add_output(self, filename: str) -> None:
        self.outputs.append(filename)


class FileHashDatabase:
    """taskrun's file of input hashes; pytaskmake keeps them in its state database, so
    this one only stands in for it (`write()` has nothing to do)."""

    def __init__(self, filename: str, algorithm: str = "sha1") -> None:
        self.filename, self.algorithm = filename, algorithm

    def write(self) -> None:
        """Nothing to write: the state database was written as each task finished."""


class FileHashCondition(FileModificationCondition):
    """Run when an input's hash changed or an output is missing: what pytaskmake does
    for every declared file anyway."""

    def __init__(
        self, filedb: FileHashDatabase, inputs: Iterable[str], outputs: Iterable[str]
    ) -> None:
        super().__init__(inputs, outputs)
        self.filedb = filedb
