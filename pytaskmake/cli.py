"""The `pytaskmake` command: parse arguments, run one command, map errors to exit codes.

Exit codes: 0 all requested work up to date, 1 a task failed, 2 a Taskfile or
usage error, 130 interrupted. Errors reach the user as one line; a traceback
means a bug in pytaskmake.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import PytaskmakeError, UsageError

EPILOG = """\
subcommands (anywhere among the options):
  why TARGET...        why each task would run (the same as --explain TARGET...)
  cache [--prune SIZE] the run cache's size; prune it to SIZE (0 empties it)

targets:
  NAME                 a task, and everything it needs
  PATH                 the task that outputs PATH (relative to where you stand)
  FOLDER, .            every task with an output under FOLDER (. is here)
  NAME=value           a parameter: param("NAME") in the Taskfile returns "value"

exit codes:
  0    everything asked for is up to date (--question: nothing would run)
  1    a task failed (--question: something would run; --lint: a finding)
  2    a mistake in the Taskfile or on the command line: nothing ran
  130  interrupted (Ctrl-C); 143 SIGTERM; 129 SIGHUP: finished tasks are recorded
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pytaskmake",
        description="Run the stale tasks of a Taskfile.py, in parallel.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="what to bring up to date (default: all; see TARGETS below), and "
        "NAME=value parameters for the Taskfile's param()",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="run at most N tasks at once (default: number of CPUs)",
    )
    p.add_argument(
        "--mem",
        metavar="SIZE",
        default=None,
        help="never start tasks whose memory (declared mem=, else recorded peak) adds up "
        "past SIZE (default: the memory available now; 0: no limit)",
    )
    p.add_argument(
        "--resource",
        action="append",
        default=[],
        metavar="NAME=N",
        help="how much of a named resource tasks may hold at once (gpu=2); repeatable",
    )
    p.add_argument(
        "-n", "--dry-run", action="store_true", help="list what would run and why, touching nothing"
    )
    p.add_argument(
        "-B",
        "--always",
        action="store_true",
        help="run every selected task: the targets and all they need (make -B)",
    )
    p.add_argument(
        "--rerun",
        action="append",
        default=[],
        metavar="TASK",
        help="run TASK (a name or output) even if up to date, never restored; what it "
        "feeds reruns if its outputs change (snakemake -f); repeatable",
    )
    p.add_argument(
        "--rerun-failed",
        action="store_true",
        help="build just the tasks whose last run failed (and what they need)",
    )
    p.add_argument(
        "-k",
        "--keep-going",
        action="store_true",
        help="after a failure, keep building what does not depend on it",
    )
    p.add_argument(
        "-f",
        "--file",
        default=None,
        help="the Taskfile (default: Taskfile.py here, else in the nearest folder above)",
    )
    p.add_argument(
        "-C", "--directory", default=None, metavar="DIR", help="change to DIR before doing anything"
    )
    p.add_argument("-l", "--list", action="store_true", help="list tasks and whether each is stale")
    p.add_argument(
        "--clean",
        action="store_true",
        help="remove the outputs and logs of the selected tasks and forget their state",
    )
    p.add_argument(
        "--clean-dead",
        action="store_true",
        help="remove the outputs and records of tasks the Taskfile no longer declares "
        "(ninja -t cleandead); with -n, list them",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="build, then keep rebuilding what each file change makes stale (Ctrl-C stops)",
    )
    p.add_argument(
        "--question",
        action="store_true",
        help="run nothing; exit 0 if every selected task is up to date, 1 otherwise (make -q)",
    )
    p.add_argument(
        "--touch",
        action="store_true",
        help="record the selected tasks' existing outputs as up to date, running nothing",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="say why each task that would run is stale, then stop",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show each command as it starts")
    p.add_argument(
        "--stream",
        action="store_true",
        help="show each task's output line by line as it comes, prefixed by its name "
        "(unprefixed with -j1); default: each task's output in one block at its end",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    p.add_argument("--color", "--colour", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--trace", metavar="FILE", help="write a Chrome/Perfetto trace of the run")
    p.add_argument(
        "--graph",
        nargs="?",
        const="text",
        choices=("text", "dot"),
        help="print the task graph (stale tasks marked) and stop",
    )
    p.add_argument(
        "--no-cache", action="store_true", help="neither restore from nor store into the run cache"
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="run cache directory (default: $PYTASKMAKE_CACHE_DIR or .pytaskmake/cache)",
    )
    p.add_argument(
        "--cache-limit",
        metavar="SIZE",
        default=None,
        help="prune the run cache past SIZE after a build (default: "
        "$PYTASKMAKE_CACHE_LIMIT or 10G)",
    )
    p.add_argument(
        "--lint",
        action="store_true",
        help="trace the files each task that runs reads and writes (strace), report "
        "what its declarations miss; exit 1 if anything",
    )
    p.add_argument(
        "--trace-deps",
        action="store_true",
        help="trace each task that runs and record the files it reads as its inputs",
    )
    p.add_argument(
        "--lint-ignore",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder outside the project whose files traces ignore (besides the "
        "system's); repeatable",
    )
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default=None,
        help="where tasks run: local processes (default), or a Dask cluster (a LocalCluster "
        "started here, or the one of --scheduler / --scheduler-file)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the tasks on the Dask scheduler at ADDRESS (tcp://HOST:PORT)",
    )
    p.add_argument(
        "--scheduler-file",
        metavar="FILE",
        help="run the tasks on the Dask scheduler FILE names (dask scheduler --scheduler-file)",
    )
    p.add_argument("--version", action="version", version=f"pytaskmake {__version__}")
    return p


def cache_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pytaskmake cache", description="Show the run cache's size, or prune it."
    )
    p.add_argument(
        "--prune",
        metavar="SIZE",
        help="remove least-recently-used entries until the cache fits in SIZE (10G)",
    )
    p.add_argument("--cache-dir", metavar="DIR", help="the cache directory to work on")
    p.add_argument(
        "-C", "--directory", default=None, metavar="DIR", help="change to DIR before doing anything"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # task output may hold any bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    try:
        command, at = _subcommand(argv)
        if command == "cache":
            return _cache(cache_parser().parse_args(argv[:at] + argv[at + 1 :]))
        if command == "why":  # `pytaskmake why TARGET`: the same as --explain TARGET
            argv = [*argv[:at], "--explain", *argv[at + 1 :]]
        args = parser().parse_args(argv)
        _refuse_conflicts(args)
        return _run(args)
    except PytaskmakeError as exc:
        print(f"pytaskmake: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except sqlite3.Error as exc:  # disk full, read-only folder, file damaged mid-build
        print(
            f"pytaskmake: error: state database: {exc} (tasks finished before this are recorded)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("pytaskmake: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


SUBCOMMANDS = ("why", "cache")
_TAKES_VALUE = frozenset(
    ("-j", "--jobs", "-f", "--file", "-C", "--directory", "--color", "--colour", "--trace")
    + ("--cache-dir", "--prune", "--cache-limit", "--lint-ignore", "--mem", "--resource")
    + ("--executor", "--scheduler", "--scheduler-file")
)


def _subcommand(argv: list[str]) -> tuple[str | None, int]:
    """The subcommand and its position, wherever it stands among the options
    (`pytaskmake -C sims why report`): the first word that is not an option nor an
    option's value."""
    expect_value = False
    for i, word in enumerate(argv):
        if expect_value:
            expect_value = False
            continue
        if word == "--":
            return None, -1
        if word.startswith("-"):
            expect_value = word in _TAKES_VALUE
            continue
        return (word, i) if word in SUBCOMMANDS else (None, -1)
    return None, -1


def _refuse_conflicts(args: argparse.Namespace) -> None:
    """Flags that ask for different things are a usage error, not silently resolved."""
    if args.quiet and args.verbose:
        raise UsageError("-q and -v ask for less and more output: give one")
    modes = [
        flag
        for flag, on in (
            ("--graph", args.graph),
            ("-n", args.dry_run),
            ("--explain", args.explain),
            ("-l", args.list),
            ("--clean", args.clean),
            ("--clean-dead", args.clean_dead),
            ("--touch", args.touch),
            ("--question", args.question),
            ("--watch", args.watch),
            ("--rerun-failed", args.rerun_failed),
        )
        if on
    ]
    if (args.clean or args.clean_dead) and args.dry_run:
        modes.remove("-n")  # --clean -n: list what --clean would remove
    if args.rerun and args.always:
        modes.append("--rerun")  # -B already reruns everything selected
    if len(modes) > 1:
        raise UsageError(f"{' and '.join(modes)} ask for different things: give one")
    for flag, on in (("--lint", args.lint), ("--trace-deps", args.trace_deps)):
        refused = [m for m in modes if not (m == "--watch" and flag == "--trace-deps")]
        if on and refused:
            raise UsageError(f"{flag} traces the tasks a build runs: not with {refused[0]}")
    _refuse_executor_conflicts(args)


def _refuse_executor_conflicts(args: argparse.Namespace) -> None:
    """--scheduler and --scheduler-file mean --executor dask; one scheduler at a time."""
    if args.scheduler and args.scheduler_file:
        raise UsageError("--scheduler and --scheduler-file name two schedulers: give one")
    given = "--scheduler" if args.scheduler else "--scheduler-file" if args.scheduler_file else ""
    if given and args.executor == "local":
        raise UsageError(f"--executor local and {given} ask for different things: give one")
    if given:
        args.executor = "dask"
    if args.executor == "dask" and args.watch:
        raise UsageError("--watch runs its tasks locally: leave out --executor dask")


def _enter(args: argparse.Namespace) -> None:
    if args.directory:
        try:
            os.chdir(args.directory)
        except OSError as exc:
            raise UsageError(f"cannot enter directory {args.directory}: {exc.strerror}") from None


def _cache(args: argparse.Namespace) -> int:
    from .cache import RunCache
    from .commands import cache_directory
    from .report import format_bytes
    from .sizes import parse_size

    _enter(args)
    root = None
    if not args.cache_dir:
        try:
            root = find_taskfile(None).resolve().parent
        except UsageError:
            pass  # no project: the cache of this folder, if any
    directory = cache_directory(args, root)
    if not directory.is_dir():
        print(f"pytaskmake: no run cache at {directory}")
        return 0
    cache = RunCache(directory)
    if args.prune is not None:
        try:
            limit = parse_size(args.prune)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        removed, freed = cache.prune(limit)
        print(f"pytaskmake: pruned {removed} entries, freed {format_bytes(freed)}")
    stats = cache.stats()
    print(
        f"{directory}: {stats.entries} entries, {stats.blobs} blobs, {format_bytes(stats.size)}"
        f" in the cache alone ({format_bytes(stats.disk)} of disk blocks), and"
        f" {format_bytes(stats.shared)} shared with current outputs by hard links"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from .commands import run_command

    _enter(args)
    if args.trace:  # relative to where the user stands, not to the Taskfile's folder
        args.trace = os.path.abspath(args.trace)
        _check_writable(args.trace, "--trace")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("-j must be at least 1")
    if args.scheduler_file:  # relative to where the user stands
        args.scheduler_file = os.path.abspath(args.scheduler_file)
    return run_command(args, find_taskfile(args.file))


def find_taskfile(given: str | None) -> Path:
    """-f FILE, else Taskfile.py here or in the nearest folder above (as git finds
    .git), saying which one when it is not here."""
    if given is not None:
        if not Path(given).is_file():
            raise UsageError(f"no {given} in {os.getcwd()} (use -f FILE or -C DIR)")
        return Path(given)
    here = Path.cwd()
    for folder in (here, *here.parents):
        found = folder / "Taskfile.py"
        if found.is_file():
            if folder != here:
                print(f"pytaskmake: using {found}", file=sys.stderr)
            return found
    raise UsageError(f"no Taskfile.py in {here} or any folder above (use -f FILE or -C DIR)")


def _check_writable(path: str, option: str) -> None:
    """Refuse now a file the build would only fail to write at its end."""
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: directory {folder} is not writable")


def entry() -> None:
    """The console script: main(), then exit without tearing down every object.

    Freeing 100,000 tasks one by one at exit costs a no-op ~10% of its time; all
    files and the database are closed by then, so skipping it loses nothing.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    entry()
