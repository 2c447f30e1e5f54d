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

import bisect
import itertools
import logging
import os
import queue
import signal
import stat
import threading
import time
from collections.abc import Iterable, Sequence
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
        self._aliases: dict[str, str] = {}  # a symlinked folder's target -> the folder
        self._listing: dict[str, frozenset[str]] = {}  # a listed folder -> its names

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
                    answer = None
                    while answer is None:  # (a burst that asks for nothing: no line)
                        burst = self._next_burst()
                        if burst is None:
                            break
                        answer = self._answer(burst)
                    if answer is None:
                        break
                    result = answer
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
        trees, missing = set(), []
        sources = sorted(self.engine.sources())
        for source in sources:
            full = os.path.join(root, source)
            try:
                if stat.S_ISDIR(os.stat(full).st_mode):  # (one stat a source)
                    trees.add(full)
            except OSError:
                missing.append(full)  # (a file, or a folder input, made later)
            folders.add(os.path.dirname(full))
        self._sources = sources  # (sorted: those under a folder are found by bisection)
        self._source_set = set(sources)
        # a folder made or removed that is, or holds, one of these is watched anew
        self._needed = _with_ancestors([*folders, *trees, *missing], str(root))
        # a folder not there yet (or deleted): its nearest existing ancestor is watched,
        # to see it made; a symlinked one by its target (inotify reports nothing of the
        # files directly inside a link)
        plain = {_existing(f) for f in folders - trees}
        want = {(f, False) for f in plain} | {(t, True) for t in trees if os.path.isdir(t)}
        for key in [k for k in self._watches if k not in want or k[0] in renew]:
            self._observer.unschedule(self._watches.pop(key))  # type: ignore[arg-type]
        handler = _Handler(self._changes)
        self._aliases = {}
        for folder, _ in want:
            real = os.path.realpath(folder)
            if real != folder:
                self._aliases[real] = folder
        for folder, recursive in sorted(want - set(self._watches)):
            real = os.path.realpath(folder)
            self._watches[folder, recursive] = self._observer.schedule(
                handler,
                real,
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
        self._listing = {folder: self._names(folder) for folder in self.listed}

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
        if self._aliases:
            path = self._unaliased(path)
        if not self._relevant(path, kind):
            return False
        if kind == "dir" and path in self._needed:
            burst.folders[path] = None
        if self._edits_taskfile(path):
            burst.reload[path] = None
        elif self._relists(path, kind):
            burst.relisted[os.path.dirname(path)] = None
        burst.paths[path] = None
        return True

    def _unaliased(self, path: str) -> str:
        for real, folder in self._aliases.items():
            if path == real or path.startswith(real + os.sep):
                return folder + path[len(real) :]
        return path

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
            return path in self._needed or self._relists(path, kind)
        reads = self.engine.reads(rel)
        name = parts[-1]
        if name.startswith(".#") or name == "4913" or name.endswith(_EDITOR_TEMP):
            # an editor's: only if an input counts it (model.part, a file of a folder
            # input, whose digest it moves)
            return reads is not None and not self.engine.writes(rel)
        if self._reloads(path, kind):
            return True
        return reads is not None and not self.engine.writes(rel)

    def _reloads(self, path: str, kind: str) -> bool:
        """Whether the change may reload the Taskfile: an edit of it or of a module or
        file it read (while it fails to load, of any .py file), or a file made,
        removed or renamed in a folder it listed."""
        return self._edits_taskfile(path) or self._relists(path, kind)

    def _edits_taskfile(self, path: str) -> bool:
        """The Taskfile, or a module or file it read (while it fails to load, any .py)."""
        return path in self.reload_on or (self._broken and path.endswith(".py"))

    def _relists(self, path: str, kind: str) -> bool:
        """A file made, removed or renamed in a folder the Taskfile listed, that no
        task writes: it reloads if the folder's names then differ from the load's."""
        if kind == "modified" or os.path.dirname(path) not in self.listed:
            return False
        return not self.engine.writes(os.path.relpath(path, self.engine.root))

    def _answer(self, burst: _Burst) -> BuildResult | _Kept | None:
        """Reload and build what the burst asks for; None when it asks for nothing (a
        temporary file made and gone in a globbed folder)."""
        root = self.engine.root
        if burst.folders:  # their old watches are dead, their files unknown
            self._schedule(renew=frozenset(burst.folders))
        relisted = any(self._names(f) != self._listing.get(f) for f in burst.relisted)
        inputs = self._inputs_holding(os.path.relpath(p, root) for p in burst.paths)
        inputs.update(self._sources_under(burst.folders))
        if not (burst.reload or relisted or inputs):
            return None
        changed = list(burst.paths)
        shown = ", ".join(os.path.relpath(p, root) for p in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        self.out.write(f"pytaskmake: changed: {shown}{more}\n")
        self.out.flush()
        if burst.reload or relisted:
            result = self._reload()
            if result is not None:
                return result
        if not inputs or self._stop:
            return _Kept(2 if self._broken else 0)
        return self.engine.build(self.targets, changed_paths=sorted(inputs), always=self.always)

    def _inputs_holding(self, paths: Iterable[str]) -> set[str]:
        """Every input each changed file counts for: itself, and each folder input
        holding it (data/y.txt may be both a task's implicit input and in another's
        folder input data/: both stats must be taken again)."""
        found: set[str] = set()
        reads = self.engine.reads
        for path in paths:
            path = os.path.normpath(path)
            while path and path != ".":
                if reads(path) == path:
                    found.add(path)
                path = os.path.dirname(path)
        return found

    def _sources_under(self, folders: dict[str, None]) -> set[str]:
        """The source files (or folders) at or inside folders made or removed."""
        found: set[str] = set()
        sources = self._sources
        for folder in folders:
            rel = os.path.relpath(folder, self.engine.root)
            if rel in self._source_set:  # (a folder input itself)
                found.add(rel)
            start = bisect.bisect_left(sources, rel + os.sep)
            for source in itertools.islice(sources, start, None):
                if not source.startswith(rel + os.sep):
                    break
                found.add(source)
        return found

    def _names(self, folder: str) -> frozenset[str]:
        """What a listed folder holds, less what the build writes there."""
        try:
            names = os.listdir(folder)
        except OSError:
            return frozenset()
        rel = os.path.relpath(folder, self.engine.root)
        return frozenset(n for n in names if not self.engine.writes(os.path.join(rel, n)))

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
        self.relisted: dict[str, None] = {}  # listed folders where a file came or went

    def __bool__(self) -> bool:
        return bool(self.paths)


def _not_inactive(record: logging.LogRecord) -> bool:
    return "called when the thread is inactive" not in record.getMessage()


def _with_ancestors(paths: list[str], root: str) -> set[str]:
    """The paths and every folder above them, up to `root`."""
    found: set[str] = set()
    for path in paths:
        while path not in found and path.startswith(root) and path != root:
            found.add(path)
            path = os.path.dirname(path)
    return found


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
