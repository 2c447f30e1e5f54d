"""Errors as types: each carries what the user needs to act on it.

The engine raises these; only the CLI turns them into one-line messages and exit
codes, so the same failure reads the same wherever it is detected.
"""

from __future__ import annotations


class PytaskmakeError(Exception):
    """Base of every error a user can cause; its str() is the one-line message."""

    exit_code = 2


class TaskfileError(PytaskmakeError):
    """The Taskfile could not be loaded or declares something invalid."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = path or ""
        if path and line:
            where = f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class GraphError(PytaskmakeError):
    """The declared tasks do not form a valid build graph (cycle, clash, missing input)."""


class UsageError(PytaskmakeError):
    """A command-line argument names something that does not exist or makes no sense."""


class LockedError(PytaskmakeError):
    """Another live pytaskmake process is building in the same directory."""

    def __init__(self, pid: int, lock_path: str) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid else "pid unknown"
        super().__init__(
            f"another pytaskmake ({who}) is running here; wait for it or stop it "
            f"(lock: {lock_path})"
        )


class UnstableValueError(TaskfileError):
    """A value a callable task reads (an argument, a default, a closure or global
    value) has no stable hash: an open file, a lock, a generator. No signature could
    then say whether the task must rerun, and a guess could restore a wrong result."""

    def __init__(self, what: str, reason: str, task: str | None = None, where: str = "") -> None:
        self.what, self.reason, self.task = what, reason, task
        path, _, line = where.rpartition(":")
        named = f"task {task!r}: " if task is not None else ""
        super().__init__(
            f"{named}{what} cannot be hashed stably ({reason}); pass what it is made "
            "from instead (a path, the parameters)",
            path or None,
            int(line) if line.isdigit() else None,
        )

    def of_task(self, task: str, where: str) -> UnstableValueError:
        """The same error, naming the task and where it was declared."""
        return UnstableValueError(self.what, self.reason, task, where)


class MissingTool(PytaskmakeError):
    """A program that what was asked needs is not installed (strace for --lint)."""

    def __init__(self, tool: str, needed_by: str) -> None:
        self.tool = tool
        super().__init__(
            f"{needed_by} needs {tool}, which is not installed (not found on PATH); "
            f"install it (Debian, Ubuntu: apt-get install {tool})"
        )


class ResourceError(PytaskmakeError):
    """A task asks for more of a resource than the build may ever hand out."""

    def __init__(
        self, task: str, where: str, resource: str, wants: object, limit: object, option: str
    ) -> None:
        self.task, self.where, self.resource = task, where, resource
        at = f"{where}: " if where else ""
        super().__init__(
            f"{at}task {task!r} asks for {resource}={wants}, more than the whole limit "
            f"{limit} ({option}); nothing was run"
        )


class ExecutorError(PytaskmakeError):
    """The executor cannot run this build: its cluster is unreachable or unusable, or
    no worker can ever run one of the tasks (`task` names it)."""

    def __init__(self, message: str, task: str | None = None) -> None:
        self.task = task
        super().__init__(message)
