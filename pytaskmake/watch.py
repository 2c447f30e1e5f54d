"""`pytaskmake --watch`: build, then rebuild exactly what each change makes stale.

One process keeps the loaded Taskfile, the graph, the state and the file stats
between builds (an Engine), and tells the engine which paths changed, so one
saved input checks only that input's downstream. watchdog reports the changes
(inotify on Linux, FSEvents on macOS); a burst of events (an editor's save, a
`git checkout` of 50 files) gives one rebuild, 0.06 s after the last one. Files
pytaskmake writes (outputs, logs, `.pytaskmake/`), editors' temporary files and
`.git/` never trigger anything, so a build never triggers the next. An edit of
the Taskfile, of a project module it imports, or a file appearing in a folder it
globbed reloads it; a Taskfile that no longer loads is reported in one line and
the last good one is kept. The build lock is held for the whole watch.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import events as ev
from .engine import BuildResult, Engine, EngineOptions
from .errors import PytaskmakeError
from .taskfile import Registry, load_taskfile

QUIET = 0.06  # seconds without events before a burst is answered
_LONGEST_BURST = 2.0  # ... but never more than this after its first event
_EDITOR_TEMP = (".swp", ".swx", ".swo", "~", ".tmp", ".part")


class Watcher:
    """Builds, then waits for changes and rebuilds, until Ctrl-C or SIGTERM."""

    def __init__(
        self,
        taskfile: Path,
        options: EngineOptions,
        observers: Sequence[ev.Observer],
        targets: Sequence[str],
        always: bool,
        out: TextIO,
        params: dict[str, str] | None = None,
    ) -> None:
        self.taskfile = taskfile.resolve()
        self.params = params  # NAME=value from the command line, for every reload
        self.options, self.observers = options, observers
        self.targets, self.always, self.out = list(targets), always, out
        self._changes: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = 0  # the signal that asked to stop

    def run(self) -> int:
        registry = load_taskfile(self.taskfile, track=True, params=self.params)  # must succeed
        self.engine = Engine(registry, options=self.options, observers=self.observers)
        self._track(registry)
        self._good = registry
        from watchdog.observers import Observer

        observer = self._observer = Observer()
        self._schedule()
        previous = {
            s: signal.signal(s, self._on_signal)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        try:
            with self.engine.locked():
                observer.start()
                result: BuildResult | _Kept = self.engine.build(self.targets, always=self.always)
                while not self._stop and not result.interrupted:
                    self._quiet_line(result.exit_code)
                    changed = self._next_burst()
                    if changed is None:
                        break
                    result = self._answer(changed)
        finally:
            observer.stop()
            observer.join(5)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if result.interrupted:
            return result.exit_code
        return 128 + self._stop if self._stop else 130

    def _schedule(self) -> None:
        """Watch the folders holding source files (inputs no task produces), the
        Taskfile and its modules, and the folders it listed; not the outputs' folders
        nor `.pytaskmake/`: a build writing 200,000 files must not flood the kernel's
        event queue (inotify drops events past 16,384)."""
        from watchdog.events import (
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )

        wanted = [
            FileCreatedEvent,
            FileModifiedEvent,
            FileClosedEvent,
            FileDeletedEvent,
            FileMovedEvent,
            DirCreatedEvent,
            DirDeletedEvent,
            DirMovedEvent,
        ]
        root = self.engine.root
        folders = {str(root), *self.listed, *(os.path.dirname(m) for m in self.reload_on)}
        trees = set()
        for source in self.engine.sources():
            full = root / source
            if full.is_dir():
                trees.add(str(full))
            folders.add(str(full.parent))
        self._observer.unschedule_all()
        handler = _Handler(self._changes)
        for folder in sorted(folders - trees):
            if os.path.isdir(folder):
                self._observer.schedule(handler, folder, event_filter=wanted)  # type: ignore[arg-type]
        for tree in sorted(trees):
            self._observer.schedule(handler, tree, recursive=True, event_filter=wanted)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = signum

    def _track(self, registry: Registry) -> None:
        """What reloads the Taskfile: itself, its project modules, folders it listed."""
        self.reload_on = {str(self.taskfile), *registry.modules}
        self.listed = set(registry.listed or ())

    def _quiet_line(self, code: int) -> None:
        how = {0: "done", 1: "failed", 2: "Taskfile error, the last good one kept"}.get(
            code, f"exit {code}"
        )
        n = len(self.engine.tasks)
        self.out.write(f"pytaskmake: watching {n} tasks (last build: {how}); Ctrl-C to stop\n")
        self.out.flush()

    def _next_burst(self) -> list[str] | None:
        """The paths of the next burst of relevant changes (None: asked to stop)."""
        found: dict[str, None] = {}
        first = None
        while not self._stop:
            try:
                path = self._changes.get(timeout=QUIET if found else 0.1)
            except queue.Empty:
                if found:
                    return list(found)
                continue
            if self._relevant(path):
                found[path] = None
                first = first or time.monotonic()
            if first is not None and time.monotonic() - first > _LONGEST_BURST:
                return list(found)
        return None

    def _relevant(self, path: str) -> bool:
        """A change worth a look: not pytaskmake's own writing, nor an editor's."""
        root = str(self.engine.root)
        rel = os.path.relpath(path, root)
        if rel.startswith("..") or rel == ".":
            return False
        parts = rel.split(os.sep)
        if parts[0] in (".pytaskmake", ".git") or "__pycache__" in parts:
            return False
        name = parts[-1]
        if name.startswith(".#") or name == "4913" or name.endswith(_EDITOR_TEMP):
            return False
        if self._reloads(path):
            return True
        return not self.engine.writes(rel) and self.engine.reads(rel) is not None

    def _reloads(self, path: str) -> bool:
        return path in self.reload_on or os.path.dirname(path) in self.listed

    def _answer(self, changed: list[str]) -> BuildResult | _Kept:
        shown = ", ".join(os.path.relpath(p, self.engine.root) for p in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        self.out.write(f"pytaskmake: changed: {shown}{more}\n")
        self.out.flush()
        if any(self._reloads(p) for p in changed):
            return self._reload()
        inputs = [self.engine.reads(os.path.relpath(p, self.engine.root)) for p in changed]
        return self.engine.build(
            self.targets, changed_paths=[p for p in inputs if p], always=self.always
        )

    def _reload(self) -> BuildResult | _Kept:
        """Load the Taskfile again and build it; a Taskfile that does not load, or
        whose tasks do not make a graph (a cycle, two tasks writing one file: found
        before anything runs), is said in one line and the last good one is kept."""
        try:
            registry = load_taskfile(self.taskfile, track=True, params=self.params)
            self._use(registry)
            result = self.engine.build(self.targets, always=self.always)
        except PytaskmakeError as exc:
            self.out.write(f"pytaskmake: error: {exc} (keeping the last good Taskfile)\n")
            self.out.flush()
            if self.engine.tasks is not self._good.tasks:
                self._use(self._good)
            return _Kept(2)
        self._good = registry
        return result

    def _use(self, registry: Registry) -> None:
        self.engine.replace_tasks(registry)
        self._track(registry)
        self._schedule()


class _Kept:
    """The result of a watch step that built nothing (a Taskfile that did not load)."""

    interrupted = False

    def __init__(self, exit_code: int) -> None:
        self.exit_code = exit_code


class _Handler:
    """watchdog's events, reduced to the paths they touch, onto a queue."""

    def __init__(self, changes: queue.SimpleQueue[str]) -> None:
        self.changes = changes
        self.lock = threading.Lock()

    def dispatch(self, event: object) -> None:
        kind = getattr(event, "event_type", "")
        if kind in ("opened", "closed_no_write"):
            return  # reads
        if getattr(event, "is_directory", False) and kind == "modified":
            return  # a folder's mtime moves with every file written in it
        for attribute in ("src_path", "dest_path"):
            path = getattr(event, attribute, "")
            if path:
                self.changes.put(os.fsdecode(path))
