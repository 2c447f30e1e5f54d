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
from .engine import (
    STATE_DIR,
    BuildResult,
    Engine,
    EngineOptions,
    ExecutorFactory,
    start_prefetch,
)
from .errors import UsageError
from .params import split_assignments
from .report import ConsoleReporter, ansi, use_colour
from .state import Usage
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
    args.targets, params = split_assignments(args.targets)
    cleaning = args.clean or args.clean_dead
    looking = args.graph or args.dry_run or args.explain or args.list or args.question
    building = not (looking or cleaning or args.touch)
    options = EngineOptions(
        jobs=args.jobs,
        keep_going=args.keep_going,
        use_cache=not args.no_cache,
        cache_dir=cache_directory(args, taskfile.resolve().parent),
        cache_limit=_cache_limit(args),
        lint=args.lint,
        trace_deps=args.trace_deps,
        trace_ignore=_trace_ignore(args),
        stream=args.stream,
        mem=_mem_limit(args),
        resources=_resource_limits(args),
    )
    if args.watch:
        from .watch import Watcher

        watcher = Watcher(
            taskfile,
            options,
            _observers(args, True),
            args.targets,
            args.always,
            sys.stdout,
            params=params,
        )
        return watcher.run()
    plain = not (args.targets or args.always or args.rerun or args.rerun_failed)
    if building and plain:
        return _build_with_prefetch(taskfile, options, _observers(args, True), params, executor)
    engine = Engine.from_taskfile(
        taskfile, options, _observers(args, building), executor, params=params
    )
    if not engine.tasks:
        print(f"pytaskmake: warning: {taskfile} declares no tasks", file=sys.stderr)
    if cleaning:
        return _clean(args, engine)
    if args.rerun_failed:
        args.targets = engine.failed()
        if not args.targets:
            print("pytaskmake: no task failed in its last run")
            return 0
    if building:
        return _finished(engine.build(args.targets, always=args.always, rerun=args.rerun))
    return _looking(args, engine)


def _looking(args: argparse.Namespace, engine: Engine) -> int:
    """-n, --explain, -l, --graph, --question, --touch: nothing runs."""
    if args.graph:
        return _graph(args, engine)
    if not args.touch:  # (touching waits for no one: the lock refuses it)
        _say_if_building(engine)
    if args.question:
        verdicts = engine.plan(args.targets, args.always, args.rerun)
        return 1 if any(v.stale for v in verdicts.values()) else 0
    if args.dry_run or args.explain or args.list:
        return _report_plan(args, engine)
    count = engine.touch(args.targets)
    print(f"pytaskmake: recorded {count} tasks as up to date, their outputs as they are")
    return 0


def _say_if_building(engine: Engine) -> None:
    """A listing taken while a build runs: the tasks it is running, and their
    downstream, look stale here (their outputs are being made)."""
    from .lock import building_now

    pid = building_now(engine.state_dir)
    if pid is not None:
        who = f" (pid {pid})" if pid else ""
        print(
            f"pytaskmake: note: a build is running here{who}: what it is running, and what "
            "needs it, is shown as it stands now",
            file=sys.stderr,
        )


def _clean(args: argparse.Namespace, engine: Engine) -> int:
    """--clean and --clean-dead; with -n, the files they would remove."""
    if args.clean_dead:
        found = engine.clean_dead(dry_run=args.dry_run)
        what = f"{len(found.tasks)} tasks no longer declared"
    else:
        found = engine.clean(args.targets, dry_run=args.dry_run)
        what = f"{len(found.tasks)} tasks"
    if args.dry_run:
        for path in found.files:
            print(f"would remove {path}")
        print(f"pytaskmake: would remove {len(found.files)} files of {what}")
    else:
        print(f"pytaskmake: removed {len(found.files)} files of {what}")
    return 0


def _build_with_prefetch(
    taskfile: Path,
    options: EngineOptions,
    observers: list[ev.Observer],
    params: dict[str, str],
    executor: ExecutorFactory | None = None,
) -> int:
    """A whole build: the snapshot's files are statted while the Taskfile loads."""
    early = start_prefetch(taskfile)
    try:
        spoil = early.spoil if early else None
        registry = load_taskfile(taskfile, on_write=spoil, params=params)
    except BaseException:
        if early is not None:
            early.close()
        raise
    if not registry.tasks:
        print(f"pytaskmake: warning: {taskfile} declares no tasks", file=sys.stderr)
    engine = Engine(registry, options=options, observers=observers, executor=executor)
    return _finished(engine.build(prefetch=early))


def _finished(result: BuildResult) -> int:
    """A build's exit code, after its lint report (--lint) if any."""
    if result.lint is not None:
        sys.stdout.write("".join(line + "\n" for line in result.lint.lines()))
        sys.stdout.flush()
    return result.exit_code


def _trace_ignore(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The folders traces ignore: the system's, and those given (--lint-ignore)."""
    if not args.lint_ignore:
        return None
    from .access import default_ignored

    return (*default_ignored(), *(os.path.abspath(p) for p in args.lint_ignore))


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
    from .sizes import parse_size

    text = args.cache_limit or os.environ.get("PYTASKMAKE_CACHE_LIMIT") or "10G"
    try:
        return parse_size(text)
    except ValueError as exc:
        raise UsageError(f"--cache-limit: {exc}") from None


def _mem_limit(args: argparse.Namespace) -> int | None:
    """--mem SIZE in bytes; None (not given): the memory available when a build starts."""
    from .sizes import parse_size

    if args.mem is None:
        return None
    try:
        return parse_size(args.mem)
    except ValueError as exc:
        raise UsageError(f"--mem: {exc}") from None


def _resource_limits(args: argparse.Namespace) -> tuple[tuple[str, float], ...]:
    from .resources import parse_limit

    limits: dict[str, float] = {}
    for text in args.resource:
        try:
            name, amount = parse_limit(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        limits[name] = amount
    return tuple(limits.items())


def cache_directory(args: argparse.Namespace, root: Path | None = None) -> Path:
    """--cache-dir, else $PYTASKMAKE_CACHE_DIR, else .pytaskmake/cache beside the Taskfile."""
    chosen = args.cache_dir or os.environ.get("PYTASKMAKE_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser().resolve()
    return (root or Path.cwd()) / STATE_DIR / "cache"


def _report_plan(args: argparse.Namespace, engine: Engine) -> int:
    from .stale import UPSTREAM  # (not with this module: a no-op never decides a task)

    verdicts = engine.plan(args.targets, args.always, args.rerun)
    names = list(verdicts)
    out = sys.stdout
    colour = use_colour(args.color, out)
    if args.list:
        measured = engine.usage(names)
        for name in names:
            v = verdicts[name]
            mark = ("stale: " + v.reason) if v.stale else "up to date"
            line = f"{name}  ({_dim(mark, colour) if not v.stale else mark})"
            if name in measured:
                line += "  " + _dim(_measured(measured[name]), colour)
            out.write(line + "\n")
        return 0
    stale = [n for n in names if verdicts[n].stale]
    if args.explain:
        from .plan import group_reasons

        for line in group_reasons(verdicts):
            out.write(line + "\n")
    else:
        for name in stale:
            v = verdicts[name]
            if v.restorable:
                out.write(f"would restore {name} from cache: {v.reason}\n")
            elif v.code == UPSTREAM:
                out.write(f"may run {name} (if its inputs change): {v.reason}\n")
            else:
                out.write(f"would run {name}: {v.reason}\n")
            if args.verbose and not v.restorable:  # make -n: the commands
                out.write(f"  {engine.tasks[name].action.describe()}\n")
    restorable = sum(1 for n in stale if verdicts[n].restorable)
    maybe = sum(1 for n in stale if verdicts[n].code == UPSTREAM)
    out.write(f"{len(stale) - maybe} of {len(names)} tasks would run")
    if maybe:
        out.write(f", {maybe} more may run (if their inputs change)")
    out.write(f" ({restorable} restored from the run cache)\n" if restorable else "\n")
    return 0


def _measured(u: Usage) -> str:
    """`[last run 1m02s, cpu 3m58s, peak 1.2 GiB; 4 runs]`: what -l shows of a task's runs."""
    from .report import format_bytes, format_seconds

    peak = format_bytes(u.rss) if u.rss else "-"
    runs = f"; {u.runs} runs" if u.runs > 1 else ""
    failed = "" if u.ok else " (failed)"
    return (
        f"[last run {format_seconds(u.wall)}{failed}, cpu {format_seconds(u.cpu)}, "
        f"peak {peak}{runs}]"
    )


def _dim(text: str, colour: bool) -> str:
    return f"{ansi('DIM')}{text}{ansi('RESET_ALL')}" if colour else text


def _graph(args: argparse.Namespace, engine: Engine) -> int:
    from .graphview import to_dot, to_text

    verdicts = engine.plan(args.targets, args.always)
    graph, names = engine.graph, list(verdicts)
    stale = {n for n, v in verdicts.items() if v.stale}
    text = to_dot(graph, names, stale) if args.graph == "dot" else to_text(graph, names, stale)
    sys.stdout.write(text)
    return 0
