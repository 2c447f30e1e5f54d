"""`pytaskmake --watch`: build, then rebuild exactly what each change makes stale.

One process keeps the loaded Taskfile, the graph, the state and the file stats
between builds (an Engine), and tells the engine which paths changed, so one
saved input checks only that input's downstream. watchdog reports the changes
(inotify on Linux, FSEvents on macOS); a burst of events (an editor's save, a
`git checkout` of 50 files) gives one rebuild, 0.06 s after the last one. Files
pytaskmake writes (outputs, logs, `.pytaskmake/`), editors' temporary files and
`.git/` never trigger anything, so a build never triggers the next. An edit of
the Taskfile, of a project module or file it read, or a file appearing in a folder
it globbed reloads it; a Taskfile that no longer loads (or makes no graph) is
reported in one line and the last good one is kept. The build lock is held for
the whole watch.
"""

from __future__ import annotations

import logging
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
        self._changes: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._stop = 0  # the signal that asked to stop
        self._watches: dict[tuple[str, bool], object] = {}  # (folder, recursive) -> watch
        self._broken = False  # the last reload failed: any .py saved retries it

    def run(self) -> int:
        registry = load_taskfile(self.taskfile, track=True, params=self.params)  # must succeed
        self.engine = Engine(registry, options=self.options, observers=self.observers)
        self._track(registry)
        self._good = registry
        from watchdog.observers import Observer

        # a watch unscheduled while its thread reads an event logs an error that
        # says nothing to the user (watchdog's race, harmless: nothing is lost)
        logging.getLogger("watchdog.observers.inotify").addFilter(_not_inactive)
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
                    burst = self._next_burst()
                    if burst is None:
                        break
                    result = self._answer(burst)
        finally:
            observer.stop()
            observer.join(5)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if result.interrupted:
            return result.exit_code
        return 128 + self._stop if self._stop else 130

    def _schedule(self, renew: frozenset[str] = frozenset()) -> None:
        """Watch the folders holding source files (inputs no task produces), the
        Taskfile and its modules, and the folders it listed; not the outputs' folders
        nor `.pytaskmake/`: a build writing 200,000 files must not flood the kernel's
        event queue (inotify drops events past 16,384). Only what changed is
        unscheduled and scheduled (`renew`: folders deleted or made again, whose old
        watch is dead)."""
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
        self._folders = folders | trees  # (a folder deleted or made among them: rescheduled)
        # a folder not there yet (or deleted): its nearest existing ancestor is watched,
        # to see it made
        plain = {_existing(f) for f in folders - trees}
        want = {(f, False) for f in plain} | {(t, True) for t in trees if os.path.isdir(t)}
        for key in [k for k in self._watches if k not in want or k[0] in renew]:
            self._observer.unschedule(self._watches.pop(key))  # type: ignore[arg-type]
        handler = _Handler(self._changes)
        for folder, recursive in sorted(want - set(self._watches)):
            self._watches[folder, recursive] = self._observer.schedule(
                handler,
                folder,
                recursive=recursive,
                event_filter=wanted,  # type: ignore[arg-type]
            )

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = signum

    def _track(self, registry: Registry) -> None:
        """What reloads the Taskfile: itself, the project modules and files it read
        (no output: a build writing it would reload), the folders it listed."""
        root = self.engine.root
        read = {m for m in registry.modules if not self.engine.writes(os.path.relpath(m, root))}
        self.reload_on = {str(self.taskfile), *read}  # (not an output read: a loop)
        self.listed = set(registry.listed or ())

    def _quiet_line(self, code: int) -> None:
        how = {0: "done", 1: "failed", 2: "Taskfile error, the last good one kept"}.get(
            code, f"exit {code}"
        )
        n = len(self.engine.tasks)
        self.out.write(f"pytaskmake: watching {n} tasks (last build: {how}); Ctrl-C to stop\n")
        self.out.flush()

    def _next_burst(self) -> _Burst | None:
        """The next burst of relevant changes (None: asked to stop)."""
        burst = _Burst()
        first = None
        while not self._stop:
            try:
                path, kind = self._changes.get(timeout=QUIET if burst else 0.1)
            except queue.Empty:
                if burst:
                    return burst
                continue
            if self._note(burst, path, kind):
                first = first or time.monotonic()
            if first is not None and time.monotonic() - first > _LONGEST_BURST:
                return burst
        return None

    def _note(self, burst: _Burst, path: str, kind: str) -> bool:
        """Add a change to the burst if it is worth a look; whether it was."""
        if not self._relevant(path, kind):
            return False
        if kind == "dir" and self._holds_watched(path):
            burst.folders[path] = None
        if self._reloads(path, kind):
            burst.reload[path] = None
        burst.paths[path] = None
        return True

    def _relevant(self, path: str, kind: str) -> bool:
        """A change worth a look: not pytaskmake's own writing, nor an editor's."""
        root = str(self.engine.root)
        rel = os.path.relpath(path, root)
        if rel.startswith("..") or rel == ".":
            return False
        parts = rel.split(os.sep)
        if parts[0] in (".pytaskmake", ".git") or "__pycache__" in parts:
            return False
        if kind == "dir":
            return self._holds_watched(path) or self._reloads(path, kind)
        reads = self.engine.reads(rel)
        name = parts[-1]
        editors = name.startswith(".#") or name == "4913" or name.endswith(_EDITOR_TEMP)
        if editors and reads != os.path.normpath(rel):  # (a declared `model.part` counts)
            return False
        if self._reloads(path, kind):
            return True
        return reads is not None and not self.engine.writes(rel)

    def _reloads(self, path: str, kind: str) -> bool:
        """Whether the change reloads the Taskfile: an edit of it or of a module it
        imports (while it fails to load, of any .py file), a file made, removed or
        renamed in a folder it listed and that no task writes."""
        if path in self.reload_on or (self._broken and path.endswith(".py")):
            return True
        if kind == "modified" or os.path.dirname(path) not in self.listed:
            return False
        return not self.engine.writes(os.path.relpath(path, self.engine.root))

    def _holds_watched(self, path: str) -> bool:
        """A folder made or removed that is, or holds, one the watch needs."""
        inside = path + os.sep
        return any(f == path or f.startswith(inside) for f in self._folders)

    def _answer(self, burst: _Burst) -> BuildResult | _Kept:
        changed = list(burst.paths)
        shown = ", ".join(os.path.relpath(p, self.engine.root) for p in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        self.out.write(f"pytaskmake: changed: {shown}{more}\n")
        self.out.flush()
        if burst.reload:
            result = self._reload()
            if result is not None:
                return result
        if burst.folders:  # their old watches are dead, their files unknown
            self._schedule(renew=frozenset(burst.folders))
        inputs = {self.engine.reads(os.path.relpath(p, self.engine.root)) for p in changed}
        inputs.update(self._sources_under(burst.folders))
        inputs.discard(None)
        if not inputs or self._stop:
            return _Kept(2 if self._broken else 0)
        return self.engine.build(self.targets, changed_paths=sorted(inputs), always=self.always)  # type: ignore[arg-type]

    def _sources_under(self, folders: dict[str, None]) -> set[str]:
        """The source files inside folders made or removed (relative paths)."""
        found = set()
        for folder in folders:
            rel = os.path.relpath(folder, self.engine.root) + os.sep
            found.update(s for s in self.engine.sources() if s.startswith(rel))
        return found

    def _reload(self) -> BuildResult | _Kept | None:
        """Load the Taskfile again and build it; a Taskfile that does not load, or
        whose tasks do not make a graph (a cycle, two tasks writing one file: found
        before anything runs), is said in one line and the last good one is kept
        (None: then the burst's inputs are built with it)."""
        try:
            registry = load_taskfile(self.taskfile, track=True, params=self.params)
        except PytaskmakeError as exc:
            return self._kept(exc)
        self._broken = False  # (the load is good; a graph error below says so again)
        if self._stop:  # (a stop asked while the Taskfile loaded: nothing is started)
            return _Kept(0)
        try:
            self._use(registry)
            result = self.engine.build(self.targets, always=self.always)
        except PytaskmakeError as exc:
            self._use(self._good)
            return self._kept(exc)
        self._good = registry
        return result

    def _kept(self, exc: PytaskmakeError) -> None:
        """Say why the last good Taskfile is kept; None: the caller goes on with it."""
        self.out.write(f"pytaskmake: error: {exc} (keeping the last good Taskfile)\n")
        self.out.flush()
        self._broken = True

    def _use(self, registry: Registry) -> None:
        self.engine.replace_tasks(registry)
        self._track(registry)
        self._schedule()


class _Burst:
    """The relevant paths of one burst of events, and what they ask for."""

    def __init__(self) -> None:
        self.paths: dict[str, None] = {}  # (dicts: ordered, once each)
        self.reload: dict[str, None] = {}  # those that reload the Taskfile
        self.folders: dict[str, None] = {}  # folders made or removed that the watch needs

    def __bool__(self) -> bool:
        return bool(self.paths)


def _not_inactive(record: logging.LogRecord) -> bool:
    return "called when the thread is inactive" not in record.getMessage()


def _existing(folder: str) -> str:
    """The folder itself if it exists, else its nearest existing ancestor."""
    while not os.path.isdir(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


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
        if getattr(event, "is_directory", False):
            if kind == "modified":
                return  # a folder's mtime moves with every file written in it
            kind = "dir"
        elif kind == "closed":
            kind = "modified"  # (a file written and closed)
        for attribute in ("src_path", "dest_path"):
            path = getattr(event, attribute, "")
            if path:
                self.changes.put((os.fsdecode(path), kind))
