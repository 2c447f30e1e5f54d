"""The CLI's commands over a loaded Taskfile: build, dry run, explain, list, clean, graph.

Each command is a small function; cli.py picks one from the flags. Commands that
only read state do not take the build lock; build and clean do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import events as ev
from . import snapshot
from .build import Build, BuildOptions
from .cache import RunCache
from .fingerprint import FileCache
from .graph import BuildGraph
from .lock import BuildLock, holder_alive, last_holder
from .plan import group_reasons, plan
from .report import ConsoleReporter, use_colour
from .state import StateDB, read_snapshot
from .taskfile import Task, load_taskfile

STATE_DIR = ".pytaskmake"


class Fanout:
    """Send each event to several observers (console, trace file...)."""

    def __init__(self, *observers: ev.Observer) -> None:
        self.observers = observers

    def handle(self, event: ev.Event) -> None:
        for observer in self.observers:
            observer.handle(event)


def run_command(args: argparse.Namespace, taskfile: Path) -> int:
    building = not (args.graph or args.dry_run or args.explain or args.list or args.clean)
    early = _prefetch(taskfile) if building and not args.targets and not args.always else None
    try:
        registry = load_taskfile(taskfile, on_write=early.spoil if early else None)
        root = registry.root
        os.chdir(root)
        state_dir = root / STATE_DIR
        if building:
            with BuildLock(state_dir) as lock:
                if early is not None and lock.found != early.lock_seen:
                    early.spoil()  # another build held the lock meanwhile: stats may be old
                state = StateDB(state_dir)
                try:
                    return _build(args, registry.tasks, state, state_dir, early)
                finally:
                    state.close()
    finally:
        if early is not None:
            early.close()
    graph = BuildGraph(registry.tasks)
    names = graph.select(list(args.targets))
    if args.graph:
        return _graph(args, graph, names, state_dir)
    if args.dry_run or args.explain or args.list:
        return _report_plan(args, graph, names, state_dir)
    with BuildLock(state_dir):
        state = StateDB(state_dir)
        try:
            return _clean(graph, names, state)
        finally:
            state.close()


def _prefetch(taskfile: Path) -> snapshot.Prefetch | None:
    """Start statting the last snapshot's files before the Taskfile loads (see Prefetch).

    Not while another build may be running: it could change files after the stats.
    """
    state_dir = taskfile.resolve().parent / STATE_DIR
    seen = last_holder(state_dir)
    if holder_alive(seen):
        return None
    early = snapshot.Prefetch.start(
        read_snapshot(state_dir),
        max(1, _stat_workers() - 1),  # this process loads
    )
    if early is not None:
        early.lock_seen = seen
    return early


def _reporter(args: argparse.Namespace) -> ConsoleReporter:
    verbosity = -1 if args.quiet else (1 if args.verbose else 0)
    return ConsoleReporter(sys.stdout, use_colour(args.color, sys.stdout), verbosity)


def _build(
    args: argparse.Namespace,
    by_name: dict[str, Task],
    state: StateDB,
    state_dir: Path,
    early: snapshot.Prefetch | None = None,
) -> int:
    from .executors.orphans import kill_leftovers

    console = _reporter(args)
    observers: list[ev.Observer] = [console]
    if args.trace:
        from .trace import TraceWriter

        observers.append(TraceWriter(args.trace))
    observer = Fanout(*observers)
    killed = kill_leftovers(state_dir / "running")
    if killed:
        observer.handle(
            ev.Notice(f"stopped {killed} task process group(s) left running by a killed build")
        )
        if early is not None:
            early.spoil()  # they may have written files after the prefetched stats
    jobs = args.jobs or os.cpu_count() or 1
    files = FileCache()
    tasks = list(by_name.values())
    known: snapshot.Comparison | None = None
    if not args.targets and not args.always:
        start = time.monotonic()
        known = _compare_with_snapshot(tasks, state, early)
        if known is not None and known.nothing_changed:
            _report_nothing_to_do(len(tasks), jobs, observer, time.monotonic() - start)
            return 0
    if known is None:
        state.load()  # the full path reads every record; otherwise only the suspects'
    if state.warning:
        observer.handle(ev.Notice(state.warning))
    graph = BuildGraph(by_name)
    names = graph.select(list(args.targets))
    return _run_build(args, graph, names, state, state_dir, observer, jobs, files, known)


def _compare_with_snapshot(
    tasks: list[Task], state: StateDB, early: snapshot.Prefetch | None
) -> snapshot.Comparison | None:
    """The files now against the last complete build's, when the declarations are its own.

    None when there is no snapshot or the declarations differ: the full path.
    """
    value = state.snapshot()
    saved = snapshot.Saved.parse(value)
    if saved is None or snapshot.declarations_digest(tasks) != saved.declarations:
        if early is not None:
            early.close()  # its children need not stat on through the build
        return None
    found = early.digests(value) if early is not None else None
    if found is not None:
        return snapshot.Comparison(saved, found)
    return snapshot.compare(saved, workers=_stat_workers())


def _stat_workers() -> int:
    """Processes statting a snapshot's files: a few cores' worth, no more (I/O-bound)."""
    return min(os.cpu_count() or 1, 4)


def _report_nothing_to_do(total: int, jobs: int, observer: ev.Observer, elapsed: float) -> None:
    """The no-op answer from the snapshot alone: no graph, no records (see snapshot.py)."""
    observer.handle(ev.BuildStarted(0, jobs))  # nothing to do; all counted below
    counts = dict.fromkeys((ev.RAN, ev.RESTORED, ev.UP_TO_DATE, ev.FAILED, ev.SKIPPED), 0)
    counts[ev.UP_TO_DATE] = total
    observer.handle(ev.BuildFinished(counts, elapsed))


def _run_build(
    args: argparse.Namespace,
    graph: BuildGraph,
    names: list[str],
    state: StateDB,
    state_dir: Path,
    observer: ev.Observer,
    jobs: int,
    files: FileCache,
    known: snapshot.Comparison | None = None,
) -> int:
    from .executors.local import LocalExecutor
    from .executors.orphans import ProcessJournal

    executor = LocalExecutor(jobs, journal=ProcessJournal(state_dir / "running"))
    try:
        options = BuildOptions(
            jobs=jobs, keep_going=args.keep_going, always=args.always, cache=_run_cache(args)
        )
        build = Build(graph, names, state, executor, observer, options, state_dir, files, known)
        finished = build.run()
    finally:
        executor.close()
    if finished.interrupted:
        return 130
    return 1 if finished.counts[ev.FAILED] else 0


def cache_directory(args: argparse.Namespace) -> Path:
    """--cache-dir, else $PYTASKMAKE_CACHE_DIR, else .pytaskmake/cache beside the Taskfile."""
    chosen = args.cache_dir or os.environ.get("PYTASKMAKE_CACHE_DIR")
    return Path(chosen).expanduser().resolve() if chosen else Path(STATE_DIR) / "cache"


def _run_cache(args: argparse.Namespace) -> RunCache | None:
    if args.no_cache:
        return None
    return RunCache(cache_directory(args))


def _report_plan(
    args: argparse.Namespace, graph: BuildGraph, names: list[str], state_dir: Path
) -> int:
    state = _readonly_state(state_dir)
    try:
        verdicts = plan(graph, names, state, FileCache(), args.always)
    finally:
        state.close()
    out = sys.stdout
    colour = use_colour(args.color, out)
    if args.list:
        for name in names:
            v = verdicts[name]
            mark = ("stale: " + v.reason) if v.stale else "up to date"
            out.write(f"{name}  ({_dim(mark, colour) if not v.stale else mark})\n")
        return 0
    stale = [n for n in names if verdicts[n].stale]
    if args.explain:
        for line in group_reasons(verdicts):
            out.write(line + "\n")
    else:
        for name in stale:
            out.write(f"would run {name}: {verdicts[name].reason}\n")
    out.write(f"{len(stale)} of {len(names)} tasks would run\n")
    return 0


def _readonly_state(state_dir: Path) -> StateDB:
    state = StateDB(state_dir, readonly=True)
    if state.warning:
        print(f"pytaskmake: warning: {state.warning}", file=sys.stderr)
    return state


def _dim(text: str, colour: bool) -> str:
    from colorama import Style

    return f"{Style.DIM}{text}{Style.RESET_ALL}" if colour else text


def _clean(graph: BuildGraph, names: list[str], state: StateDB) -> int:
    removed = 0
    for name in names:
        task = graph.tasks[name]
        for path in (*task.outputs, *([task.log] if task.log else [])):
            try:
                os.unlink(path)
                removed += 1
            except (FileNotFoundError, IsADirectoryError):
                pass
    state.forget(names)
    print(f"pytaskmake: removed {removed} files of {len(names)} tasks")
    return 0


def _graph(args: argparse.Namespace, graph: BuildGraph, names: list[str], state_dir: Path) -> int:
    from .graphview import to_dot, to_text

    state = _readonly_state(state_dir)
    try:
        verdicts = plan(graph, names, state, FileCache(), args.always)
    finally:
        state.close()
    stale = {n for n, v in verdicts.items() if v.stale}
    text = to_dot(graph, names, stale) if args.graph == "dot" else to_text(graph, names, stale)
    sys.stdout.write(text)
    return 0
