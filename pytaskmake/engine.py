"""The build engine: one object that loads tasks once and builds them many times.

The command line, the watcher and the taskrun layer all call it; none of them
opens the state, takes the lock or decides what to check. An Engine owns, for
one project folder: the declarations (from a Taskfile or built in code), the
build lock, the state database, the run cache, the executor, and the *suspect
decision*: which tasks a build must look at, from the last complete build's
snapshot, or from the paths a caller (a file watcher) says changed.

Paths in the declarations are relative to the project root. The engine enters
the root for the length of a call and leaves it afterwards (posix_spawn, which
starts the tasks cheaply, has no working-directory argument); nothing else of the
process is changed between calls.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from . import collector, snapshot
from . import events as ev
from .empty import EMPTY
from .errors import UsageError
from .fingerprint import FileCache
from .graph import BuildGraph
from .lock import BuildLock, holder_alive, last_holder
from .state import StateDB, Usage, read_snapshot
from .taskfile import Registry, Task, load_taskfile

if TYPE_CHECKING:  # (imported where used: a no-op answered by the snapshot needs none)
    from .access import Access, Scope
    from .cache import RunCache
    from .clean import Removal
    from .executors.base import Executor
    from .lint import LintReport
    from .stale import Verdict

STATE_DIR = ".pytaskmake"
DEFAULT_TASKFILE = "Taskfile.py"


def state_dir_for(taskfile: Path | str) -> Path:
    """Where a Taskfile's state lives: `.pytaskmake/` beside it; another file of the
    same folder (`-f sweep2.py`) gets `.pytaskmake/taskfile-sweep2.py/`, so two
    Taskfiles never share records by task name (their run cache is shared: its
    keys hold the actions and inputs, not names)."""
    path = Path(taskfile).resolve()
    state = path.parent / STATE_DIR
    return state if path.name == DEFAULT_TASKFILE else state / f"taskfile-{path.name}"


ExecutorFactory = Callable[[int, Path], "Executor"]  # (jobs, state folder) -> executor


class EngineOptions(NamedTuple):
    """What every build of an engine shares. `jobs` None: the number of CPUs.
    (Named tuples, not dataclasses, on the no-op's path: see events.py.)"""

    jobs: int | None = None
    keep_going: bool = False
    use_cache: bool = True
    cache_dir: Path | None = None  # default: <root>/.pytaskmake/cache
    cache_limit: int = 10 << 30  # bytes: least-recently-used entries pruned past it
    state_dir: Path | None = None  # default: <root>/.pytaskmake
    lint: bool = False  # trace every task that runs; BuildResult.lint says what was found
    trace_deps: bool = False  # trace every task that runs; record its reads as inputs
    trace_ignore: tuple[str, ...] | None = None  # folders outside the project that
    # traces ignore (None: access.default_ignored(): the OS, Python, temp, ~/.*)
    mem: int | None = None  # bytes running tasks may hold at once; None: available; 0: no limit
    resources: tuple[tuple[str, float], ...] = ()  # limits of named resources, (("gpu", 2.0),)
    stream: bool = False  # show task output as it comes, line by line (--stream)


class BuildResult(NamedTuple):
    """How a build ended: counts per outcome (events.RAN, ...), wall time, interrupt."""

    counts: Mapping[str, int] = EMPTY
    wall: float = 0.0
    interrupted: bool = False
    signal: int = 0  # the signal that stopped it (SIGTERM, SIGHUP), if any
    lint: LintReport | None = None  # with EngineOptions.lint

    @property
    def failed(self) -> int:
        return self.counts.get(ev.FAILED, 0)

    @property
    def exit_code(self) -> int:
        """The command line's: 128 + the signal that stopped it (130 for Ctrl-C),
        1 a task failed (or --lint found a problem), 0 all done."""
        if self.signal:
            return 128 + self.signal
        if self.interrupted:
            return 130
        return 1 if self.failed or (self.lint is not None and not self.lint.clean) else 0


class Fanout:
    """Send each event to several observers (console, trace file...)."""

    def __init__(self, *observers: ev.Observer) -> None:
        self.observers = observers

    def handle(self, event: ev.Event) -> None:
        for observer in self.observers:
            observer.handle(event)


class Engine:
    """Builds one project's tasks; reusable for many builds in one process."""

    def __init__(
        self,
        tasks: Registry | Iterable[Task],
        root: Path | str | None = None,
        options: EngineOptions | None = None,
        observers: Sequence[ev.Observer] = (),
        executor: ExecutorFactory | None = None,
    ) -> None:
        """`tasks`: a loaded Registry, or Task objects in declaration order (then
        `root` is required: the folder their paths are relative to)."""
        if isinstance(tasks, Registry):
            root = root or tasks.root
            by_name = tasks.tasks
        else:
            by_name = {t.name: t for t in tasks}
        if root is None:
            raise ValueError("Engine needs the project root its task paths are relative to")
        self.root = Path(root).resolve()
        # targets given as paths are relative to where the caller stood
        here = os.path.relpath(os.getcwd(), self.root)
        self.base = "." if here.startswith("..") else here
        self.options = options or EngineOptions()
        self.observer = Fanout(*observers)
        self._executor_factory = executor or _local_executor
        default = self.root / STATE_DIR
        if isinstance(tasks, Registry):
            default = state_dir_for(tasks.taskfile)
        self.state_dir = (self.options.state_dir or default).resolve()
        self._lock: BuildLock | None = None
        self._set_tasks(by_name)
        # the load's warnings, said once the graph is valid (a cycle is the news then)
        self._warnings = list(tasks.warnings) if isinstance(tasks, Registry) else []
        if isinstance(tasks, Registry):  # (known from the load: no pass over 200,000 tasks)
            self._always, self._trace = tasks.has_always, tasks.has_trace

    @classmethod
    def from_taskfile(
        cls,
        path: Path | str,
        options: EngineOptions | None = None,
        observers: Sequence[ev.Observer] = (),
        executor: ExecutorFactory | None = None,
        params: dict[str, str] | None = None,
    ) -> Engine:
        """Load a Taskfile (TaskfileError on any mistake in it) and make its engine;
        `params`: NAME=value for its param() calls."""
        registry = load_taskfile(Path(path), params=params)
        return cls(registry, registry.root, options, observers, executor)

    def _set_tasks(self, by_name: dict[str, Task]) -> None:
        self.tasks = by_name
        self._graph: BuildGraph | None = None
        self._local: BuildGraph | None = None  # a LocalGraph of these tasks (see _graph_for)
        self._chunks: snapshot.Chunks | None = None
        self._files: FileCache | None = None  # kept between builds told what changed
        self._saved: snapshot.Saved | None = None  # what our last build saved
        # digests (snapshot.value_digest) of that snapshot packed as the state keeps it,
        # and of the one the last comparison read: the values are ~7 MB at 100,000 tasks
        self._saved_value = b""
        self._seen_value = b"\0"
        self._readers: dict[str, list[int]] | None = None  # path -> chunks naming it
        self._inputs: set[str] | None = None  # every task's inputs (a watcher asks)
        self._written: set[str] | None = None  # every task's outputs and logs
        self._always: bool | None = None  # whether a task says always=True
        self._trace: bool | None = None  # whether a task says trace=True

    def _has_always(self) -> bool:
        """Whether a task runs on every build (then no snapshot can say "nothing to do")."""
        if self._always is None:
            self._always = any(t.always for t in self.tasks.values())
        return self._always

    def replace_tasks(self, tasks: Registry | Iterable[Task]) -> None:
        """New declarations (a reloaded Taskfile): the next build compares them with the
        last snapshot, so only tasks whose declarations or files changed are checked."""
        self._set_tasks(tasks.tasks if isinstance(tasks, Registry) else {t.name: t for t in tasks})
        self._warnings = list(tasks.warnings) if isinstance(tasks, Registry) else []
        if isinstance(tasks, Registry):
            self._always, self._trace = tasks.has_always, tasks.has_trace

    def reads(self, path: str) -> str | None:
        """The input a changed file counts for (itself, or an input folder holding it),
        or None when no task reads it; `path` relative to the root."""
        if self._inputs is None:
            self._inputs = {p for t in self.tasks.values() for p in t.inputs}
        return _self_or_parent_in(os.path.normpath(path), self._inputs)

    def sources(self) -> set[str]:
        """The inputs no task produces: the files a user edits."""
        if self._inputs is None:
            self._inputs = {p for t in self.tasks.values() for p in t.inputs}
        return {p for p in self._inputs if not self.writes(p)}

    def writes(self, path: str) -> bool:
        """Whether a task writes `path` (an output, a log, or inside an output folder)."""
        if self._written is None:
            written = {p for t in self.tasks.values() for p in t.outputs}
            written.update(t.log for t in self.tasks.values() if t.log)
            self._written = written
        return _self_or_parent_in(os.path.normpath(path), self._written) is not None

    @property
    def graph(self) -> BuildGraph:
        """The validated graph (GraphError on a cycle, clash or unknown dep)."""
        if self._graph is None:
            self._graph = BuildGraph(self.tasks)
            self._emit_warnings()
        return self._graph

    def _graph_for(self, known: snapshot.Comparison | None) -> BuildGraph:
        """The graph a build walks: past a snapshot comparison, only the part the build
        reaches (localgraph.py: ~1 s less of an edit at 100,000 points), else the whole."""
        if known is None or self._graph is not None:
            return self.graph
        if self._local is None:  # (kept across a watcher's builds: the same declarations)
            from .localgraph import LocalGraph

            self._local = LocalGraph(self.tasks, [t.name for t in known.redeclared()])
            self._emit_warnings()
        return self._local

    def _emit_warnings(self) -> None:
        """The load's warnings, said once the declarations are known to be valid."""
        for warning in self._warnings:
            self.observer.handle(ev.Notice(warning))
        self._warnings = []

    @property
    def jobs(self) -> int:
        return self.options.jobs or os.cpu_count() or 1

    # --- the lock ----------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the build lock across several builds (a watch); LockedError if taken."""
        if self._lock is not None:
            yield
            return
        lock = BuildLock(self.state_dir)
        lock.acquire()
        self._lock = lock
        try:
            yield
        finally:
            self._lock = None
            lock.release()

    @contextmanager
    def _inside(self) -> Iterator[None]:
        before = os.getcwd()
        os.chdir(self.root)
        try:
            yield
        finally:
            os.chdir(before)

    # --- building ----------------------------------------------------------------------

    def build(
        self,
        targets: Sequence[str] = (),
        *,
        changed_paths: Iterable[str] | None = None,
        always: bool = False,
        prefetch: snapshot.Prefetch | None = None,
        rerun: Sequence[str] = (),
    ) -> BuildResult:
        """Bring `targets` (task names or output paths; default all) up to date.

        `changed_paths`: the caller's word (a watcher's events) that no other file
        changed since this engine's last build; then only the tasks naming one of
        them are checked, with what this engine already knows of every other file.
        `always`: run every selected task (make -B). `prefetch`: stats taken while
        the Taskfile loaded (start_prefetch), used only if still valid. `rerun`:
        tasks (names or outputs) that run even when up to date, never restored
        (snakemake -f); what they feed reruns only if their outputs change.
        """
        try:
            with self.locked(), self._inside():
                assert self._lock is not None
                if prefetch is not None and self._lock.found != prefetch.lock_seen:
                    prefetch.spoil()  # another build held the lock meanwhile
                state = StateDB(self.state_dir)
                changed = None if changed_paths is None else list(changed_paths)  # read twice
                try:
                    forced = frozenset(self.graph.named(rerun, self.base)) if rerun else None
                    return self._build(list(targets), changed, always, state, prefetch, forced)
                finally:
                    state.close()
        finally:
            if prefetch is not None:
                prefetch.close()

    def _build(
        self,
        targets: list[str],
        changed_paths: Iterable[str] | None,
        always: bool,
        state: StateDB,
        prefetch: snapshot.Prefetch | None = None,
        rerun: frozenset[str] | None = None,
    ) -> BuildResult:
        from .executors.orphans import kill_leftovers

        start = time.monotonic()
        killed = kill_leftovers(self.state_dir / "running")
        if killed:
            message = f"stopped {killed} task process group(s) left running by a killed build"
            self.observer.handle(ev.Notice(message))
            changed_paths = None  # they may have written anything meanwhile
            if prefetch is not None:
                prefetch.spoil()
        with collector.paused():  # (the analysis: many objects, no cycles)
            files = self._file_memo(changed_paths)
            known: snapshot.Comparison | None = None
            if not targets and not always and not rerun and not self._has_always():
                known = self._compare(state, changed_paths, prefetch)
                if known is not None and known.nothing_changed:
                    self._saved, self._saved_value = known.saved, self._seen_value
                    return self._nothing_to_do(time.monotonic() - start)
            self._saved = None
            if known is None:
                state.load()  # the full path reads every record; otherwise only the suspects'
            if state.warning:
                self.observer.handle(ev.Notice(state.warning))
            from .build import Build, BuildOptions
            from .discovery import Discovery

            graph = self._graph_for(known)
            names = graph.select(targets, self.base)
        executor = self._executor_factory(self.jobs, self.state_dir)
        cache = self._run_cache()
        try:
            executor = self._traced(executor, names)
            discovery = Discovery(self._scope(), self.options.trace_deps)
            o = self.options
            options = BuildOptions(
                o.keep_going,
                always,
                cache,
                rerun=rerun or frozenset(),
                stream=o.stream,
                discovery=discovery,
                mem=o.mem,
                resources=o.resources,
            )
            build = Build(
                graph, names, state, executor, self.observer, options, self.state_dir, files, known
            )
            finished = build.run()
        finally:
            executor.close()
            if cache is not None:
                cache.close()  # (its journal's keys written: later lookups read those)
        if cache is not None and cache.stored:
            self._keep_cache_bounded(cache)
        self._saved = build.saved
        self._saved_value = snapshot.value_digest(build.saved_value)
        if build.chunks is not None and build.chunks is not self._chunks:
            self._chunks, self._readers = build.chunks, None
        report = self._lint(_traced_accesses(executor), names) if self.options.lint else None
        return BuildResult(
            finished.counts, finished.wall, finished.interrupted, finished.signal, report
        )

    def _scope(self) -> Scope:
        """Which files traces and depfiles keep (see access.py)."""
        from .access import Scope

        return Scope(str(self.root), self.options.trace_ignore, (str(self.state_dir),))

    def _traced(self, executor: Executor, names: list[str]) -> Executor:
        """`executor`, tracing what --lint, --trace-deps or trace=True ask for."""
        which = "--lint" if self.options.lint else "--trace-deps" * self.options.trace_deps
        if self._trace is None:
            self._trace = any(t.trace for t in self.tasks.values())
        if not which and not self._trace:
            return executor  # (no pass over the selected tasks: nothing to trace)
        notice = lambda message: self.observer.handle(ev.Notice(message))  # noqa: E731
        from . import tracing

        scope = self._scope()
        return tracing.wrap(executor, self.tasks, names, scope, self.state_dir, which, notice)

    def _lint(self, accesses: dict[str, Access], names: list[str]) -> LintReport:
        """What the traces of this build's runs say of the declarations."""
        from .depfile import listed
        from .lint import LintReport, lint

        if not accesses:  # (the no-op answer builds no graph, and needs none for this)
            return LintReport((), (), len(set(names)))
        listing = {
            n: listed(t.depfile, self._scope())
            for n in accesses
            if (t := self.tasks[n]).depfile is not None
        }
        return lint(self.graph, accesses, names, listing)

    def _file_memo(self, changed_paths: Iterable[str] | None) -> FileCache:
        """What is known of the files: kept from the last build when the caller says
        which changed (those are forgotten), else taken afresh."""
        if changed_paths is None or self._files is None:
            self._files = FileCache()
        else:
            for path in changed_paths:
                self._files.forget(self._relative(path))
        return self._files

    def _relative(self, path: str) -> str:
        if os.path.isabs(path):
            rel = os.path.relpath(path, self.root)
            return path if rel.startswith("..") else rel
        return os.path.normpath(path)

    def _compare(
        self,
        state: StateDB,
        changed_paths: Iterable[str] | None,
        prefetch: snapshot.Prefetch | None = None,
    ) -> snapshot.Comparison | None:
        """The declarations and files now against the last complete build's snapshot;
        None when there is none: the full path."""
        value = state.snapshot()  # (its head: the paths are read once needed)
        seen = self._seen_value = snapshot.value_digest(value)
        saved, chunks = self._saved, self._chunks
        if changed_paths is not None and saved is not None and chunks is not None:
            same = seen == self._saved_value and chunks.declarations == saved.declarations
            if same and (saved.has_paths or saved.take_paths(state.snapshot_paths())):
                paths = {self._relative(p) for p in changed_paths}
                return snapshot.assumed(saved, chunks, paths, self._chunks_naming(paths))
        saved = snapshot.Saved.parse(value)
        if saved is None:
            return None
        if chunks is None or chunks.bounds != saved.bounds:
            chunks = self._chunks = snapshot.chunks_like(saved, list(self.tasks.values()))
            self._readers = None
        taken = prefetch.digests(value) if prefetch is not None else None
        if taken is None and not saved.take_paths(state.snapshot_paths()):
            return None  # (damaged: the full path decides)
        found = snapshot.compare(saved, chunks, _stat_workers(), taken)
        if found is not None and not found.nothing_changed and not saved.has_paths:
            if not saved.take_paths(state.snapshot_paths()):
                return None  # (damaged: the full path decides)
        if found is not None and taken is not None:
            found.prefetch = prefetch  # (its children serve the stats until let go of)
        return found

    def _chunks_naming(self, paths: Iterable[str]) -> set[int]:
        """The chunks whose tasks read or write one of `paths` (files, as a watcher
        reports them: a folder's path names no task)."""
        chunks = self._chunks
        assert chunks is not None
        if self._readers is None:
            readers: dict[str, list[int]] = {}
            for j in range(len(chunks)):
                for p in snapshot.paths_of_tasks(chunks.tasks_of(j)):
                    readers.setdefault(p, []).append(j)
            self._readers = readers
        found: set[int] = set()
        for path in paths:
            found.update(self._readers.get(self._relative(path), ()))
        return found

    def _nothing_to_do(self, elapsed: float) -> BuildResult:
        """The no-op answer from the snapshot alone: no graph, no records."""
        self.observer.handle(ev.BuildStarted(0, self.jobs))  # nothing to do; all counted
        counts = dict.fromkeys((ev.RAN, ev.RESTORED, ev.UP_TO_DATE, ev.FAILED, ev.SKIPPED), 0)
        counts[ev.UP_TO_DATE] = len(self.tasks)
        self.observer.handle(ev.BuildFinished(counts, elapsed))
        report = self._lint({}, list(self.tasks)) if self.options.lint else None
        return BuildResult(counts, elapsed, lint=report)

    def _keep_cache_bounded(self, cache: RunCache) -> None:
        limit = self.options.cache_limit
        try:
            pruned = cache.keep_within(limit, cache.stored)
        except OSError as exc:  # a full or read-only cache must not fail the build
            self.observer.handle(ev.Notice(f"could not prune the run cache: {exc}"))
            return
        if pruned and pruned[0]:
            from .report import format_bytes

            removed, freed = pruned
            self.observer.handle(
                ev.Notice(
                    f"run cache past {format_bytes(limit)}: dropped {removed} least recently "
                    f"used entries ({format_bytes(freed)})",
                    "note",
                )
            )

    def _peek_cache(self) -> RunCache | None:
        """The run cache to look into without writing (None when there is none yet)."""
        directory = self.options.cache_dir or self.state_dir / "cache"
        if not self.options.use_cache or not (directory / "index").is_dir():
            return None
        from .cache import RunCache

        return RunCache(directory, read_only=True)

    def _run_cache(self) -> RunCache | None:
        if not self.options.use_cache:
            return None
        from .cache import RunCache

        return RunCache(self.options.cache_dir or self.state_dir / "cache")

    # --- looking, cleaning -------------------------------------------------------------

    def plan(
        self, targets: Sequence[str] = (), always: bool = False, rerun: Sequence[str] = ()
    ) -> dict[str, Verdict]:
        """What a build would do and why, for each selected task, touching nothing."""
        with self._inside():
            names = self.graph.select(list(targets), self.base)
            forced = frozenset(self.graph.named(rerun, self.base))
            state = StateDB(self.state_dir, readonly=True)
            try:
                if state.warning:
                    self.observer.handle(ev.Notice(state.warning))
                from .plan import plan

                verdicts = plan(
                    self.graph, names, state, FileCache(), always, self._peek_cache(), forced
                )
            finally:
                state.close()
            return {name: verdicts[name] for name in names}  # in declaration order

    def usage(self, names: Sequence[str]) -> dict[str, Usage]:
        """What the recorded runs of `names` measured (wall, CPU, peak memory), for -l."""
        state = StateDB(self.state_dir, readonly=True)
        try:
            return state.usage(list(names))
        finally:
            state.close()

    def select(self, targets: Sequence[str] = ()) -> list[str]:
        """The names of `targets` and all they need, in declaration order."""
        with self._inside():
            return self.graph.select(list(targets), self.base)

    def touch(self, targets: Sequence[str] = ()) -> int:
        """Adopt existing results (make -t): record the selected tasks as up to date
        with their outputs and inputs as they are now, without running anything.
        UsageError, recording nothing, if an output or input is missing. Returns the
        number of tasks recorded."""
        from .stale import current_inputs, record_stamp

        with self.locked(), self._inside():
            names = self.graph.select(list(targets), self.base)
            files = FileCache()
            found = []
            for name in names:
                task = self.tasks[name]
                outputs = {p: files.fingerprint(p) for p in task.outputs}
                inputs = current_inputs(task, files)  # (a fan-in's in slices)
                gone = [p for p, fp in outputs.items() if fp is None]
                gone += [p for p in task.inputs if p not in inputs]
                if gone:
                    what = "output" if gone[0] in outputs else "input"
                    raise UsageError(
                        f"cannot --touch {name!r} ({task.where}): its {what} {gone[0]} "
                        "does not exist; nothing was recorded"
                    )
                found.append((task, inputs, outputs))
            state = StateDB(self.state_dir)
            try:
                with state.transaction():
                    for task, inputs, outputs in found:
                        digest = task.action.digest
                        stamp = record_stamp(digest, inputs, outputs)  # type: ignore[arg-type]
                        state.save_success(task.name, digest, inputs, outputs, 0.0, stamp)  # type: ignore[arg-type]
            finally:
                state.close()
            self._saved = None
            return len(found)

    def clean(self, targets: Sequence[str] = (), dry_run: bool = False) -> Removal:
        """Remove the outputs and logs of the selected tasks and mark their records
        "cleaned" (they run next time, never restored); `dry_run`: only say what."""
        from . import clean

        if dry_run:  # (touches nothing, not even the lock file)
            with self._inside():
                return clean.of_tasks(self.tasks, self.graph.select(list(targets), self.base))
        with self.locked(), self._inside():
            names = self.graph.select(list(targets), self.base)
            found = clean.of_tasks(self.tasks, names)
            clean.remove_files(found.files)
            state = StateDB(self.state_dir)
            try:
                state.forget(names)
            finally:
                state.close()
            self._saved = None
            return found

    def clean_dead(self, dry_run: bool = False) -> Removal:
        """Remove the recorded outputs and the records of tasks the Taskfile no longer
        declares (ninja -t cleandead); `dry_run`: only say what."""
        from . import clean

        with contextlib.nullcontext() if dry_run else self.locked(), self._inside():
            state = StateDB(self.state_dir, readonly=dry_run)
            try:
                found = clean.of_dead_tasks(self.tasks, state)
                if not dry_run:
                    clean.remove_files(found.files)
                    state.delete(found.tasks)
            finally:
                state.close()
            return found

    def failed(self) -> list[str]:
        """The declared tasks whose last run failed, in declaration order."""
        with self._inside():
            state = StateDB(self.state_dir, readonly=True)
            try:
                failed = set(state.failed())
            finally:
                state.close()
            return [name for name in self.tasks if name in failed]


def _self_or_parent_in(path: str, paths: set[str]) -> str | None:
    while path and path != ".":
        if path in paths:
            return path
        path = os.path.dirname(path)
    return None


def start_prefetch(taskfile: Path) -> snapshot.Prefetch | None:
    """Start statting the last snapshot's files before the Taskfile loads (see
    snapshot.Prefetch); pass the result to load_taskfile's `on_write` (its `spoil`)
    and to Engine.build. For a one-shot process: not while another build may be
    running (it could change files after the stats), nor beside other threads.
    """
    state_dir = state_dir_for(taskfile)
    seen = last_holder(state_dir)
    if holder_alive(seen):
        return None
    early = snapshot.Prefetch.start(read_snapshot(state_dir), max(1, _stat_workers() - 1))
    if early is not None:
        early.lock_seen = seen
    return early


def _stat_workers() -> int:
    """Processes statting a snapshot's files: a few cores' worth, no more (I/O-bound)."""
    return min(os.cpu_count() or 1, 4)


def _local_executor(jobs: int, state_dir: Path) -> Executor:
    from .executors.local import LocalExecutor
    from .executors.orphans import ProcessJournal

    journal = ProcessJournal(state_dir / "running")
    return LocalExecutor(jobs, journal=journal, logs_dir=state_dir / "logs")


def _traced_accesses(executor: Executor) -> dict[str, Access]:
    """What the traced jobs of a build touched (tracing.py is imported by a build
    that traces only: ~4 ms of every other start)."""
    from .tracing import traced_of

    return traced_of(executor)
