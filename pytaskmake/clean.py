"""Removing what builds made: the outputs of selected tasks (--clean), and the
outputs and records of tasks the Taskfile no longer declares (--clean-dead, ninja's
cleandead). Each answers what it would remove first, so `-n` can list it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .state import StateDB
from .taskfile import Task


@dataclass(frozen=True)
class Removal:
    """Files to remove (those that exist) and task records to drop or reset."""

    files: list[str]
    tasks: list[str]


def of_tasks(tasks: Mapping[str, Task], names: Iterable[str]) -> Removal:
    """The outputs and logs of these tasks that exist now."""
    names = list(names)
    files = [
        path
        for name in names
        for path in (*tasks[name].outputs, *([tasks[name].log] if tasks[name].log else []))
        if os.path.isfile(path) or os.path.islink(path)
    ]
    return Removal(files, names)


def of_dead_tasks(tasks: Mapping[str, Task], state: StateDB) -> Removal:
    """Records of tasks that no longer exist, and their recorded outputs that exist
    and that no current task declares (as an output or an input)."""
    dead = [name for name in state.names() if name not in tasks]
    declared = {p for t in tasks.values() for p in (*t.outputs, *t.inputs)}
    files: list[str] = []
    for name in dead:
        record = state.record(name)
        for path in record.outputs if record is not None else ():
            exists = os.path.isfile(path) or os.path.islink(path)
            if path not in declared and exists and path not in files:
                files.append(path)
    return Removal(files, dead)


def remove_files(paths: Iterable[str]) -> int:
    """Remove these files; returns how many were there to remove."""
    removed = 0
    for path in paths:
        try:
            os.unlink(path)
            removed += 1
        except (FileNotFoundError, IsADirectoryError):
            pass
    return removed
