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


class ExecutorError(PytaskmakeError):
    """The executor cannot run this build: its cluster is unreachable or unusable, or
    no worker can ever run one of the tasks (`task` names it)."""

    def __init__(self, message: str, task: str | None = None) -> None:
        self.task = task
        super().__init__(message)
