"""Discovered inputs: the files a run read that its task does not declare, recorded.

A task declared with trace=True (or every task, with --trace-deps) has the files
its traced run read recorded as its *traced inputs*, and a task with a depfile has
those its depfile lists: editing one reruns the task, and they are part of its
run-cache key, though the Taskfile never named them (Rattle's idea, inside a
declared build). The build asks `found` after each success; None keeps what the
record knew (a run that was neither traced nor wrote a depfile saw nothing new).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from stat import S_ISREG

from . import depfile
from .access import Scope
from .executors.base import Completion
from .fingerprint import FileCache, Fingerprint
from .taskfile import Task


@dataclass(frozen=True)
class Discovery:
    """What a build records as discovered: `everything` is --trace-deps."""

    scope: Scope
    everything: bool = False

    def found(
        self, task: Task, done: Completion, files: FileCache, known: dict[str, Fingerprint]
    ) -> dict[str, Fingerprint] | None:
        """The discovered inputs of `task`'s successful run `done`, fingerprinted (a
        file whose stat is as in `known`, the last record's, is not hashed again);
        None when this run discovered nothing (not traced, no depfile)."""
        paths: list[str] | None = None
        if done.access is not None and (self.everything or task.trace):
            paths = sorted(done.access.reads)
        if task.depfile is not None:
            paths = (paths or []) + depfile.listed(task.depfile, self.scope)
        if paths is None:
            return None
        return _fingerprints(task, paths, files, known)


def _fingerprints(
    task: Task, paths: list[str], files: FileCache, known: dict[str, Fingerprint]
) -> dict[str, Fingerprint]:
    """The regular files among `paths` that are not the task's declared files."""
    own = {*task.inputs, *task.outputs, task.log, task.depfile}
    found: dict[str, Fingerprint] = {}
    for path in paths:
        if path in own or path in found or _inside(path, task.outputs):
            continue
        st = files.stat(path)
        if st is None or not S_ISREG(st[4]):
            continue  # gone since, or a folder (a listing is no input)
        fp = files.fingerprint(path, known.get(path))
        if fp is not None:
            found[path] = fp
    return found


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    parent = os.path.dirname(path)
    while parent and parent != os.path.dirname(parent):
        if parent in folders:
            return True
        parent = os.path.dirname(parent)
    return False
