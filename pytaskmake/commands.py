"""The CLI's commands over a loaded Taskfile: build, dry run, explain, list, clean, graph.

Each command is a small function over an Engine (engine.py), which does the work;
cli.py picks one from the flags. Commands that only read state do not take the
build lock; build and clean do.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import events as ev
from .engine import STATE_DIR, Engine, EngineOptions, ExecutorFactory, start_prefetch
from .errors import UsageError
from .plan import group_reasons
from .report import ConsoleReporter, use_colour
from .taskfile import load_taskfile


def run_command(args: argparse.Namespace, taskfile: Path) -> int:
    if args.executor != "dask":
        return _run_command(args, taskfile, None)
    from .executors.dask import DaskCluster

    cluster = DaskCluster(args.scheduler, args.scheduler_file, args.jobs)
    try:  # (connected by the first build that runs a task, if any)
        return _run_command(args, taskfile, cluster.executor)
    finally:
        cluster.close()


def _run_command(args: argparse.Namespace, taskfile: Path, executor: ExecutorFactory | None) -> int:
    looking = args.graph or args.dry_run or args.explain or args.list or args.question
    building = not (looking or args.clean or args.touch)
    options = EngineOptions(
        jobs=args.jobs,
        keep_going=args.keep_going,
        use_cache=not args.no_cache,
        cache_dir=cache_directory(args, taskfile.resolve().parent),
        cache_limit=_cache_limit(args),
    )
    if args.watch:
        from .watch import Watcher

        watcher = Watcher(
            taskfile, options, _observers(args, True), args.targets, args.always, sys.stdout
        )
        return watcher.run()
    if building and not args.targets and not args.always:
        return _build_with_prefetch(taskfile, options, _observers(args, True), executor)
    engine = Engine.from_taskfile(taskfile, options, _observers(args, building), executor)
    if not engine.tasks:
        print(f"pytaskmake: warning: {taskfile} declares no tasks", file=sys.stderr)
    if building:
        return engine.build(args.targets, always=args.always).exit_code
    if args.graph:
        return _graph(args, engine)
    if args.question:
        verdicts = engine.plan(args.targets, args.always)
        return 1 if any(v.stale for v in verdicts.values()) else 0
    if args.dry_run or args.explain or args.list:
        return _report_plan(args, engine)
    if args.touch:
        count = engine.touch(args.targets)
        print(f"pytaskmake: recorded {count} tasks as up to date, their outputs as they are")
        return 0
    removed, count = engine.clean(args.targets)
    print(f"pytaskmake: removed {removed} files of {count} tasks")
    return 0


def _build_with_prefetch(
    taskfile: Path,
    options: EngineOptions,
    observers: list[ev.Observer],
    executor: ExecutorFactory | None = None,
) -> int:
    """A whole build: the snapshot's files are statted while the Taskfile loads."""
    early = start_prefetch(taskfile)
    try:
        registry = load_taskfile(taskfile, on_write=early.spoil if early else None)
    except BaseException:
        if early is not None:
            early.close()
        raise
    if not registry.tasks:
        print(f"pytaskmake: warning: {taskfile} declares no tasks", file=sys.stderr)
    engine = Engine(registry, options=options, observers=observers, executor=executor)
    return engine.build(prefetch=early).exit_code


def _observers(args: argparse.Namespace, building: bool) -> list[ev.Observer]:
    """The console (and --trace file) for a build; for the other commands, a printer
    of warnings to stderr."""
    if not building:
        return [_Warnings()]
    verbosity = -1 if args.quiet else (1 if args.verbose else 0)
    observers: list[ev.Observer] = [
        ConsoleReporter(sys.stdout, use_colour(args.color, sys.stdout), verbosity)
    ]
    if args.trace:
        from .trace import TraceWriter

        observers.append(TraceWriter(args.trace))
    return observers


class _Warnings:
    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Notice):
            print(f"pytaskmake: warning: {event.message}", file=sys.stderr)


def _cache_limit(args: argparse.Namespace) -> int:
    """--cache-limit, else $PYTASKMAKE_CACHE_LIMIT, else 10 GiB."""
    from .cache import parse_size

    text = args.cache_limit or os.environ.get("PYTASKMAKE_CACHE_LIMIT") or "10G"
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"--cache-limit: {exc}") from None


def cache_directory(args: argparse.Namespace, root: Path | None = None) -> Path:
    """--cache-dir, else $PYTASKMAKE_CACHE_DIR, else .pytaskmake/cache beside the Taskfile."""
    chosen = args.cache_dir or os.environ.get("PYTASKMAKE_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser().resolve()
    return (root or Path.cwd()) / STATE_DIR / "cache"


def _report_plan(args: argparse.Namespace, engine: Engine) -> int:
    verdicts = engine.plan(args.targets, args.always)
    names = list(verdicts)
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
            v = verdicts[name]
            if v.restorable:
                out.write(f"would restore {name} from cache: {v.reason}\n")
            else:
                out.write(f"would run {name}: {v.reason}\n")
    restorable = sum(1 for n in stale if verdicts[n].restorable)
    out.write(f"{len(stale)} of {len(names)} tasks would run")
    out.write(f" ({restorable} restored from the run cache)\n" if restorable else "\n")
    return 0


def _dim(text: str, colour: bool) -> str:
    from colorama import Style

    return f"{Style.DIM}{text}{Style.RESET_ALL}" if colour else text


def _graph(args: argparse.Namespace, engine: Engine) -> int:
    from .graphview import to_dot, to_text

    verdicts = engine.plan(args.targets, args.always)
    graph, names = engine.graph, list(verdicts)
    stale = {n for n, v in verdicts.items() if v.stale}
    text = to_dot(graph, names, stale) if args.graph == "dot" else to_text(graph, names, stale)
    sys.stdout.write(text)
    return 0
