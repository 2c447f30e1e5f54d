"""Time pytaskmake against ninja, make, doit and snakemake on the same generated sweep.

Why it is built this way: build-tool overhead is small and noisy, so every number is
the median of several whole-process runs (as a user would see them, interpreter
start-up included), taken after an untimed warm-up, with the tools interleaved in
each repetition so that a slow minute of the machine hurts all of them alike. Each
tool gets its own fresh workspace (bench/workload.py writes all the build files),
and a tool that once runs past --timeout is skipped from then on, since the larger
sizes would only take longer.

Scenarios, per size N:
  full    build from scratch, 2 jobs (a fresh workspace each repetition)
  noop    rebuild with nothing changed
  touch   rebuild after one input's mtime moved, content unchanged
  regen   rebuild after every input was written again with the same content (a
          generator script rerun, a copy without -p): mtime tools rerun it all
  edit    rebuild after one input's content changed
  revert  pytaskmake only, cache vs --no-cache: edit params.txt (every sim depends
          on it), build, restore it, time the build that follows. Also run on
          examples/sweep ("sweep"), editing netsim.cfg.

Usage:  python bench/run.py [--sizes 1000,10000] [--repeat 5] [--tools ninja,make]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import importlib.util
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import workload  # bench/ is on sys.path when this file is run as a script

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "examples" / "sweep"
ALL_TOOLS = (
    "pytaskmake",
    "pytaskmake-before",
    "ninja",
    "ninja-rsp",
    "make",
    "make-r",
    "doit",
    "snakemake",
)
SCENARIOS = ("full", "noop", "touch", "regen", "edit", "add10", "cmd", "param", "remove10")
EDITS = ("add10", "cmd", "param", "remove10")  # Taskfile edits: pytaskmake and ninja only
EDITING_TOOLS = ("pytaskmake", "pytaskmake-before", "ninja", "ninja-rsp")
JOBS = "2"
T = TypeVar("T")


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class Tool:
    """How to invoke one build tool; `base` is empty when it is not installed."""

    name: str
    base: tuple[str, ...]
    version: str = ""
    parallel: tuple[str, ...] = ()  # flags for every run
    full_only: tuple[str, ...] = ()  # flags for from-scratch builds only
    env: dict[str, str] = field(default_factory=dict)

    @property
    def installed(self) -> bool:
        return bool(self.base)

    def argv(self, full: bool, extra: tuple[str, ...] = ()) -> list[str]:
        return [*self.base, *self.parallel, *(self.full_only if full else ()), *extra]


def first_line(argv: list[str], env: dict[str, str] | None = None) -> str | None:
    """First line of a `--version` style command, or None when it does not run."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env=env, cwd=tempfile.gettempdir()
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def command_for(name: str) -> tuple[str, ...]:
    """A program on PATH, else the Python module of that name run by this interpreter."""
    found = shutil.which(name)
    if found:
        return (found,)
    if importlib.util.find_spec(name) is not None:
        return (sys.executable, "-m", name)
    return ()


def pytaskmake_env(checkout: Path = REPO) -> dict[str, str]:
    """Make a checkout's package importable from the temporary workspaces."""
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": str(checkout) + (os.pathsep + path if path else "")}


BEFORE = "PYTASKMAKE_BEFORE"  # env: a checkout of earlier code, timed as pytaskmake-before


# Peer name -> (program, flags for every run). make-r is make with its built-in
# implicit rules off (-r): the typical Makefile pays for them on every prerequisite.
PEERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ninja": ("ninja", (f"-j{JOBS}",)),
    # the same sweep, the summary's input list in its command hash (workload.ninja)
    "ninja-rsp": ("ninja", ("-f", "build-rsp.ninja", f"-j{JOBS}")),
    "make": ("make", (f"-j{JOBS}", "-f", "Makefile")),
    "make-r": ("make", ("-r", f"-j{JOBS}", "-f", "Makefile")),
    "doit": ("doit", ("-n", JOBS)),
    "snakemake": ("snakemake", ("--cores", JOBS, "--quiet", "--scheduler", "greedy")),
}


def discover(name: str) -> Tool:
    """Find a tool and its version; an uninstalled tool comes back with an empty `base`."""
    if name in ("pytaskmake", "pytaskmake-before"):
        checkout = REPO if name == "pytaskmake" else os.environ.get(BEFORE)
        if not checkout:
            return Tool(name, ())
        env = pytaskmake_env(Path(checkout))
        base = (sys.executable, "-m", "pytaskmake")
        version = first_line([*base, "--version"], {**os.environ, **env})
        found = base if version is not None else ()
        return Tool(name, found, version or "", full_only=("-j", JOBS), env=env)
    program, flags = PEERS[name]
    base = command_for(program)
    version = first_line([*base, "--version"]) if base else None
    if version is None:
        return Tool(name, ())
    if program not in version.lower():
        version = f"{program} {version}"
    return Tool(name, base, version, parallel=flags)


@functools.cache
def gnu_time() -> str | None:
    """GNU time, which measures max RSS of a child it forked itself (see timed_run)."""
    path = shutil.which("time") or "/usr/bin/time"
    ok = os.access(path, os.X_OK) and first_line([path, "-f", "%M", "true"]) is not None
    return path if ok else None


# --------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One whole-process execution: wall seconds, exit code and peak memory."""

    seconds: float
    returncode: int
    maxrss_kib: int
    timed_out: bool


def timed_run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float, log: Path) -> Run:
    """Run `argv` in `cwd`; wall time from spawn to reap. Past `timeout`, kill its group.

    Max RSS: a child forked from this runner starts with the runner's own peak RSS
    (Linux keeps the high-water mark across fork and exec), so wait4's ru_maxrss
    cannot go below it. GNU time forks the tool from a small process and reports
    the tool's own peak; wait4 is the fallback where GNU time is missing.
    """
    killed = threading.Event()
    rss_file = log.with_suffix(".rss")
    measure_rss = gnu_time()
    timer_cmd = [measure_rss, "-f", "%M", "-o", str(rss_file)] if measure_rss else []
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*timer_cmd, *argv],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        timer = threading.Timer(timeout, _kill_group, (proc.pid, killed))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C or SIGTERM: take the build's whole session down too
            _kill_group(proc.pid, killed)
            proc.wait()
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = _reported_rss(rss_file) if measure_rss else usage.ru_maxrss
    return Run(seconds, proc.returncode, rss, killed.is_set())


def _reported_rss(path: Path) -> int:
    """GNU time's %M (KiB): the last line of its -o file, after any exit-status note."""
    try:
        lines = path.read_text().split()
        return int(lines[-1]) if lines else 0
    except (OSError, ValueError):
        return 0


def _kill_group(pid: int, killed: threading.Event) -> None:
    killed.set()
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def log_tail(log: Path, lines: int = 5) -> str:
    text = log.read_text(errors="replace").strip().splitlines()
    return " / ".join(text[-lines:])


# --------------------------------------------------------------------------- scenarios


def touched_point(n: int) -> int:
    return max(1, n // 2)


def summary_text(ws: Path) -> str:
    path = ws / "out" / "summary.csv"
    return path.read_text() if path.exists() else ""


# Each prepare_* readies a workspace for one timed build of its scenario and returns
# a string the summary must then contain (or None).


def prepare_full(ws: Path, n: int, rep: int) -> str | None:
    """A brand-new workspace: no outputs, no tool state."""
    shutil.rmtree(ws, ignore_errors=True)
    _VARIANTS.pop(ws, None)
    workload.generate(ws, n)
    return None


def prepare_noop(ws: Path, n: int, rep: int) -> str | None:
    return None


def prepare_touch(ws: Path, n: int, rep: int) -> str | None:
    os.utime(ws / "inputs" / f"p_{touched_point(n)}.txt")
    return None


def prepare_regen(ws: Path, n: int, rep: int) -> str | None:
    """Every input's mtime moves past every output's; no content changes. Nothing
    needs to run; a tool that trusts mtimes runs everything."""
    now = time.time() + 1  # past the outputs the last build wrote, whatever the clock's grain
    for path in [ws / "params.txt", *(ws / "inputs").iterdir()]:
        os.utime(path, (now, now))
    return None


def prepare_edit(ws: Path, n: int, rep: int) -> str | None:
    """Give one input new content; its upper-cased marker must reach the summary."""
    k = touched_point(n)
    marker = f"point {k} edit {rep + 2}"
    (ws / "inputs" / f"p_{k}.txt").write_text(marker + "\n")
    return marker.upper()


_VARIANTS: dict[Path, workload.Variant] = {}  # each workspace's build files as last written


def _edit(ws: Path, n: int, **change: int) -> workload.Variant:
    """Rewrite the workspace's Taskfile.py and build.ninja with `change` applied."""
    v = dataclasses.replace(_VARIANTS.get(ws, workload.Variant(n)), **change)
    workload.rewrite(ws, v)
    _VARIANTS[ws] = v
    return v


def prepare_add10(ws: Path, n: int, rep: int) -> str | None:
    """Ten more points at the end of the sweep: 20 new tasks, and the summary reruns."""
    v = _edit(ws, n, points=_VARIANTS.get(ws, workload.Variant(n)).points + 10)
    return f"POINT {v.points}"


def prepare_remove10(ws: Path, n: int, rep: int) -> str | None:
    """Ten points fewer (their outputs stay, as every tool leaves them)."""
    _edit(ws, n, points=_VARIANTS.get(ws, workload.Variant(n)).points - 10)
    return None


def prepare_cmd(ws: Path, n: int, rep: int) -> str | None:
    """One simulation's command edited (a comment: the same output)."""
    _edit(ws, n, revised=touched_point(n), rev=rep + 2)
    return None


def prepare_param(ws: Path, n: int, rep: int) -> str | None:
    """A parameter every simulation uses changed: every sim, parse and the summary rerun."""
    _edit(ws, n, param=rep + 2)
    return f"R={rep + 2}"


PREPARE: dict[str, Callable[[Path, int, int], str | None]] = {
    "full": prepare_full,
    "noop": prepare_noop,
    "touch": prepare_touch,
    "regen": prepare_regen,
    "edit": prepare_edit,
    "add10": prepare_add10,
    "cmd": prepare_cmd,
    "param": prepare_param,
    "remove10": prepare_remove10,
}


def verify(ws: Path, n: int, scenario: str, marker: str | None) -> str | None:
    """Why the build's result is wrong, or None: a fast wrong tool must not look good."""
    text = summary_text(ws)
    if not text:
        return "no out/summary.csv"
    lines, expected = text.count("\n"), n * (workload.PARAMS.count("\n") + 1)
    if scenario == "full" and lines != expected:
        return f"summary has {lines} lines, expected {expected}"
    if marker and marker not in text:
        return f"edit did not reach the summary ({marker!r} missing)"
    return None


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class Cell:
    """The timed repetitions of one (size, scenario, tool)."""

    times: list[float] = field(default_factory=list)
    rss_kib: int = 0
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class Bench:
    """Settings, the tools, their per-size fate, and every measurement so far."""

    tools: list[Tool]
    repeat: int
    timeout: float
    setup_timeout: float
    workdir: Path
    keep: bool = False  # leave the workspaces behind, for a look at what a tool did
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)
    gone: dict[str, str] = field(default_factory=dict)  # tool -> why skipped from now on
    broken: dict[tuple[str, str], str] = field(default_factory=dict)  # (size, tool) -> why

    def cell(self, size: str, scenario: str, tool: str) -> Cell:
        return self.cells.setdefault((size, scenario, tool), Cell())

    def usable(self, size: str, tool: Tool) -> bool:
        gone = tool.name in self.gone or (size, tool.name) in self.broken
        return tool.installed and not gone

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


def rotated(items: list[T], rep: int) -> list[T]:
    """A different tool (or variant) goes first in each repetition."""
    k = rep % len(items) if items else 0
    return items[k:] + items[:k]


def measure(bench: Bench, n: int, scenario: str, tool: Tool, rep: int, setup: bool = False) -> None:
    """Prepare, run and check one build; record it unless it is the warm-up (rep -1).

    A `setup` build (the untimed full build before the other scenarios) may run
    until --setup-timeout: at N=100,000 every tool's full build takes minutes.
    """
    size = str(n)
    ws = bench.workdir / size / tool.name
    marker = PREPARE[scenario](ws, n, rep)
    log = bench.workdir / f"{tool.name}.log"
    timeout = bench.setup_timeout if setup else bench.timeout
    run = timed_run(tool.argv(scenario == "full"), ws, tool.env, timeout, log)
    # the set-up build is timed once, in a row of its own (`full-1`): no repetitions
    cell = bench.cell(size, SETUP if setup else scenario, tool.name)
    problem = diagnose(run, timeout, log) or verify(ws, n, scenario, marker)
    if problem is None:
        if rep >= 0 or setup:
            cell.times.append(run.seconds)
            cell.rss_kib = max(cell.rss_kib, run.maxrss_kib)
    else:
        cell.note = problem
        if run.timed_out:
            bench.gone[tool.name] = f"timed out at N={n:,} {scenario}"
        else:
            bench.broken[(size, tool.name)] = f"{scenario} went wrong"
    label = "warm-up" if rep < 0 else f"{rep + 1}/{bench.repeat}"
    bench.log(
        f"  N={n:,} {scenario:5} {label:7} {tool.name:10} {run.seconds:8.3f} s {problem or ''}"
    )


SETUP = "full-1"  # the untimed set-up full build of a size without `full`, run once


def diagnose(run: Run, timeout: float, log: Path) -> str | None:
    """Why a run cannot count (killed, or failed with the end of its output), or None."""
    if run.timed_out:
        return f"timeout > {timeout:g} s"
    if run.returncode != 0:
        return f"failed (exit {run.returncode}): {log_tail(log)}"
    return None


def bench_size(bench: Bench, n: int, scenarios: list[str]) -> None:
    """All scenarios for one size; without `full`, one untimed build sets the stage."""
    size = str(n)
    if "full" not in scenarios:
        for tool in bench.tools:
            if bench.usable(size, tool):
                measure(bench, n, "full", tool, -1, setup=True)
    for scenario in scenarios:
        for rep in range(-1, bench.repeat):
            for tool in rotated(bench.tools, rep):
                if scenario in EDITS and tool.name not in EDITING_TOOLS:
                    continue
                if bench.usable(size, tool):
                    measure(bench, n, scenario, tool, rep)
    if not bench.keep:
        shutil.rmtree(bench.workdir / size, ignore_errors=True)


# --------------------------------------------------------------------------- cache revert


REVERT_VARIANTS: dict[str, tuple[str, ...]] = {"cache": (), "no-cache": ("--no-cache",)}


@dataclass(frozen=True)
class RevertSpace:
    """One built workspace of the revert scenario and the file its edits go to."""

    variant: str
    root: Path
    edited: Path
    extra: tuple[str, ...]

    @property
    def log(self) -> Path:
        return self.root.parent / f"{self.variant}.log"


def revert_space(bench: Bench, what: str, variant: str) -> RevertSpace:
    """A fresh copy of the workload (or of examples/sweep), not yet built."""
    root = bench.workdir / f"revert-{what}" / variant
    shutil.rmtree(root, ignore_errors=True)
    if what == "sweep":
        shutil.copytree(SWEEP, root, ignore=shutil.ignore_patterns("sims", ".pytaskmake"))
        edited = root / "netsim.cfg"
    else:
        workload.generate(root, int(what))
        edited = root / "params.txt"
    return RevertSpace(variant, root, edited, REVERT_VARIANTS[variant])


def edit_line(what: str, rep: int) -> str:
    """A setting that changes every simulation's output, different in each repetition."""
    if what == "sweep":
        return f"load={0.7 + rep / 100:.2f}\n"  # netsim.cfg: later lines win
    return f"gamma={rep}\n"


def build(bench: Bench, tool: Tool, space: RevertSpace) -> tuple[Run, str | None]:
    run = timed_run(tool.argv(True, space.extra), space.root, tool.env, bench.timeout, space.log)
    return run, diagnose(run, bench.timeout, space.log)


def bench_revert(bench: Bench, what: str, tool: Tool) -> None:
    """Edit the file every simulation reads, build, restore it; time the rebuild after."""
    spaces = [revert_space(bench, what, variant) for variant in REVERT_VARIANTS]
    for space in spaces:
        problem = build(bench, tool, space)[1]
        if problem:
            bench.cell(what, "revert", space.variant).note = f"first build: {problem}"
            bench.log(f"  revert {what} {space.variant}: first build: {problem}")
            return
    for rep in range(-1, bench.repeat):
        for space in rotated(spaces, rep):
            if not revert_once(bench, what, tool, space, rep):
                return
    if not bench.keep:
        shutil.rmtree(bench.workdir / f"revert-{what}", ignore_errors=True)


def revert_once(bench: Bench, what: str, tool: Tool, space: RevertSpace, rep: int) -> bool:
    """One edit-build-revert-build round; only the last build is timed."""
    original = space.edited.read_text()
    space.edited.write_text(original + edit_line(what, rep))
    cell = bench.cell(what, "revert", space.variant)
    run, problem = build(bench, tool, space)
    space.edited.write_text(original)
    if problem is None:
        run, problem = build(bench, tool, space)
    if problem:
        cell.note = problem
        bench.log(f"  revert {what} {space.variant}: {problem}")
        return False
    if rep >= 0:
        cell.times.append(run.seconds)
        cell.rss_kib = max(cell.rss_kib, run.maxrss_kib)
    label = "warm-up" if rep < 0 else f"{rep + 1}/{bench.repeat}"
    bench.log(f"  revert {what:6} {label:7} {space.variant:9} {run.seconds:8.3f} s")
    return True


# --------------------------------------------------------------------------- report


def fmt_seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def note_text(text: str, limit: int = 160) -> str:
    """A note fit for one markdown table cell."""
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or base is None or base <= 0:
        return "–"
    return f"{value / base:.2f}×"


def size_table(bench: Bench, n: int, scenarios: list[str]) -> list[str]:
    size = str(n)
    rows = [
        f"### N = {n:,}",
        "",
        "| scenario | tool | median s | min–max s | vs ninja | vs make | max RSS MiB | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for scenario in scenarios:
        ninja = bench.cells.get((size, scenario, "ninja"), Cell()).median
        make = bench.cells.get((size, scenario, "make"), Cell()).median
        for tool in bench.tools:
            rows.append(table_row(bench, size, scenario, tool, ninja, make))
    return rows + [""]


def table_row(
    bench: Bench, size: str, scenario: str, tool: Tool, ninja: float | None, make: float | None
) -> str:
    cell = bench.cells.get((size, scenario, tool.name), Cell())
    note = cell.note if cell.times else cell.note or skip_reason(bench, size, tool)
    spread = f"{min(cell.times):.3f}–{max(cell.times):.3f}" if cell.times else "–"
    rss = f"{cell.rss_kib / 1024:.0f}" if cell.times else "–"
    return (
        f"| {scenario} | {tool.name} | {fmt_seconds(cell.median)} | {spread} | "
        f"{ratio(cell.median, ninja)} | {ratio(cell.median, make)} | {rss} | {note_text(note)} |"
    )


def skip_reason(bench: Bench, size: str, tool: Tool) -> str:
    if not tool.installed:
        return "not installed"
    if (size, tool.name) in bench.broken:
        return "skipped: " + bench.broken[(size, tool.name)][:120]
    if tool.name in bench.gone:
        return "skipped: " + bench.gone[tool.name]
    return "not run"


def revert_table(bench: Bench, targets: list[str]) -> list[str]:
    rows = [
        "### Cache revert (pytaskmake)",
        "",
        "| workload | with cache s | --no-cache s | speed-up | max RSS MiB (cache) | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for what in targets:
        cached = bench.cells.get((what, "revert", "cache"), Cell())
        plain = bench.cells.get((what, "revert", "no-cache"), Cell())
        label = "examples/sweep" if what == "sweep" else f"N = {int(what):,}"
        speedup = ratio(plain.median, cached.median)
        rss = f"{cached.rss_kib / 1024:.0f}" if cached.times else "–"
        note = "; ".join(x for x in (cached.note, plain.note) if x)
        rows.append(
            f"| {label} | {fmt_seconds(cached.median)} | {fmt_seconds(plain.median)} | "
            f"{speedup} | {rss} | {note_text(note)} |"
        )
    return rows + [""]


def machine_info(bench: Bench) -> list[str]:
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "?"
    mem_kib = _proc_field("/proc/meminfo", "MemTotal").split()
    memory = f"{int(mem_kib[0]) / 2**20:.1f} GiB memory" if mem_kib else "memory unknown"
    rss_by = f"GNU time ({gnu_time()} -f %M)" if gnu_time() else "wait4 (floored at runner RSS)"
    rows = [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- machine: nproc {len(os.sched_getaffinity(0))}, {cpu}, {memory}",
        f"- system: {platform.platform()}",
        f"- python: {platform.python_version()} ({sys.executable})",
    ]
    for tool in bench.tools:
        rows.append(f"- {tool.name}: {tool.version if tool.installed else 'not installed'}")
    rows.append(
        f"- repetitions: {bench.repeat} timed after 1 warm-up, median reported; "
        f"timeout {bench.timeout:g} s per run; max RSS by {rss_by}"
    )
    return rows


def _proc_field(path: str, key: str) -> str:
    """The value of the first `key: value` line of a /proc file, or ''."""
    for line in _read_lines(path):
        if line.startswith(key) and ":" in line:
            return line.split(":", 1)[1].strip()
    return ""


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def commands(bench: Bench) -> list[str]:
    rows = ["Commands (full build / other scenarios):", ""]
    for tool in bench.tools:
        if tool.installed:
            full = " ".join(_short(tool.argv(True)))
            rest = " ".join(_short(tool.argv(False)))
            rows.append(f"- {tool.name}: `{full}` / `{rest}`")
    return rows + [""]


def _short(argv: list[str]) -> list[str]:
    return [Path(a).name if os.sep in a else a for a in argv]


def report(bench: Bench, sizes: list[int], scenarios: list[str], reverts: list[str]) -> str:
    lines = [
        "# pytaskmake benchmark results",
        "",
        *machine_info(bench),
        "",
        "Wall seconds of whole-process runs, median of the repetitions; `vs ninja` and",
        "`vs make` divide a tool's median by theirs (2.00× = twice as slow). Max RSS is",
        "the peak resident memory of the largest single process of the run, in MiB.",
        "See bench/README.md for the workload and the scenarios.",
        "",
        *commands(bench),
    ]
    for n in sizes:
        lines += size_table(bench, n, scenarios if "full" in scenarios else [SETUP, *scenarios])
    if reverts:
        lines += revert_table(bench, reverts)
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sizes", default="1000,10000,100000", help="comma-separated values of N")
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions, after one warm-up")
    p.add_argument("--tools", default=",".join(ALL_TOOLS), help="comma-separated tools to time")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenarios")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is killed")
    p.add_argument(
        "--setup-timeout",
        type=float,
        default=3600.0,
        help="the same for the untimed full build that precedes the other scenarios "
        "when `full` itself is not timed",
    )
    p.add_argument(
        "--cache-revert",
        default="sweep,1000",
        help="pytaskmake revert scenario, cache vs --no-cache: sizes and/or 'sweep' "
        "(examples/sweep); '' skips it",
    )
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results.md", help="report")
    p.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()), help="scratch space parent"
    )
    p.add_argument("--keep", action="store_true", help="keep the workspaces and logs")
    p.add_argument(
        "--before",
        metavar="DIR",
        help="a checkout of earlier code (git worktree add DIR REF), timed as pytaskmake-before",
    )
    args = p.parse_args(argv)
    wrong = set(_split(args.tools)) - set(ALL_TOOLS)
    wrong |= set(_split(args.scenarios)) - set(SCENARIOS)
    wrong |= {w for w in _split(args.cache_revert) if w != "sweep" and not w.isdigit()}
    if wrong:
        p.error(f"unknown tool, scenario or workload: {', '.join(sorted(wrong))}")
    return args


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.before:
        os.environ[BEFORE] = str(Path(args.before).resolve())
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    os.environ.pop("PYTASKMAKE_CACHE_DIR", None)  # each workspace keeps its own run cache
    # a user's Python keeps bytecode caches (pip writes them at install): with this set
    # in the shell, every timed run would compile pytaskmake's modules again (~0.1 s)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sizes = [int(s.replace("_", "")) for s in _split(args.sizes)]
    scenarios = [s for s in SCENARIOS if s in _split(args.scenarios)]
    tools = [discover(name) for name in ALL_TOOLS if name in _split(args.tools)]
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pytaskmake-bench-", dir=args.workdir))
    bench = Bench(tools, args.repeat, args.timeout, args.setup_timeout, workdir, args.keep)
    for tool in tools:
        bench.log(f"{tool.name}: {tool.version if tool.installed else 'not installed, skipped'}")
    try:
        for done, n in enumerate(sizes, 1):
            bench.log(f"N = {n:,}")
            bench_size(bench, n, scenarios)
            write_report(args.out, report(bench, sizes[:done], scenarios, []))  # a long run
        reverts = run_reverts(bench, _split(args.cache_revert))  # keeps what it measured
    finally:
        if bench.keep:
            bench.log(f"workspaces kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report(bench, sizes, scenarios, reverts)
    print(text)
    write_report(args.out, text)
    bench.log(f"wrote {args.out}")
    return 0


def write_report(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def run_reverts(bench: Bench, targets: list[str]) -> list[str]:
    tool = next((t for t in bench.tools if t.name == "pytaskmake"), None)
    if tool is None or not tool.installed or not targets:
        return []
    for what in targets:
        if "pytaskmake" in bench.gone:
            bench.cell(what, "revert", "cache").note = "skipped: " + bench.gone["pytaskmake"]
            continue
        bench.log(f"cache revert: {what}")
        bench_revert(bench, what, tool)
    return targets


if __name__ == "__main__":
    sys.exit(main())
