"""How well each tool orders and packs a DAG of tasks of unequal duration and memory.

Why it is built this way: the build tool's own cost is measured elsewhere (run.py);
here every task sleeps, so what is measured is the *order* tasks start in and how
many run at once. The same DAG is written as a Taskfile, a Makefile and a
build.ninja; each tool builds it once (pytaskmake then knows the durations and
peaks), then every task is forced to run again and timed, tools taking turns.
Makespan is the whole process's wall time over the lower bound max(critical path,
total work / slots). The memory scenario replays the tasks' own logs (start, end,
peak RSS) to find the most memory held at once.

Scenarios (-j2 unless said):
  chain      a chain of 4 x 1.0 s declared last, 36 independent 0.25 s tasks (bound 6.5 s)
  long-last  one 4.0 s task declared last, 36 independent 0.25 s tasks (bound 6.5 s)
  memory     8 tasks of ~300 MiB for 0.6 s each at -j4, 1 GiB to share (pytaskmake:
             --mem 1G, the peaks learned from its first build; and declared mem="300M")

Usage:  python bench/schedule.py [--repeat 3] [--out bench/results-schedule.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Job:
    name: str
    seconds: float
    after: str | None = None  # the task it needs (its output is this one's input)
    mem_mib: int = 0  # memory the task really touches


def chain_last() -> list[Job]:
    jobs = [Job(f"t{i}", 0.25) for i in range(36)]
    jobs += [Job(f"c{i}", 1.0, f"c{i - 1}" if i else None) for i in range(4)]
    return jobs


def long_last() -> list[Job]:
    return [Job(f"t{i}", 0.25) for i in range(36)] + [Job("long", 4.0)]


def hogs() -> list[Job]:
    return [Job(f"h{i}", 0.6, mem_mib=300) for i in range(8)]


# The command of every task: log its start, hold its memory and sleep, log its end
# and its own peak RSS (KiB), then write its output.
HOG = """import resource, sys, time
name, seconds, mib = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
with open("events.log", "a") as log:
    log.write(f"start {name} {time.time()}\\n")
held = bytearray(mib << 20)
time.sleep(seconds)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("events.log", "a") as log:
    log.write(f"end {name} {time.time()} {peak}\\n")
open(f"out/{name}", "w").close()
"""


def command(job: Job) -> str:
    """A sleep, then the output written by the shell itself: one process besides the
    shell, so that the tasks' own cost hardly adds to the sleeps."""
    if job.mem_mib:
        return f"python3 hog.py {job.name} {job.seconds} {job.mem_mib}"
    return f"sleep {job.seconds} && : > out/{job.name}"


def write_workspace(ws: Path, jobs: list[Job], declared_mem: bool = False) -> None:
    shutil.rmtree(ws, ignore_errors=True)
    (ws / "out").mkdir(parents=True)
    (ws / "hog.py").write_text(HOG)
    lines = ["from pytaskmake import task", ""]
    make = [".PHONY: all", "all: " + " ".join(f"out/{j.name}" for j in jobs), ""]
    ninja = ["rule run", "  command = $cmd", ""]
    for j in jobs:
        ins = [f"out/{j.after}"] if j.after else []
        mem = f", mem='{j.mem_mib}M'" if declared_mem and j.mem_mib else ""
        lines.append(
            f"task({j.name!r}, {command(j)!r}, inputs={ins!r}, outputs=['out/{j.name}']"
            f", cache=False{mem})"
        )
        make += [f"out/{j.name}: {' '.join(ins)}", f"\t{command(j)}", ""]
        ninja += [f"build out/{j.name}: run {' '.join(ins)}", f"  cmd = {command(j)}", ""]
    (ws / "Taskfile.py").write_text("\n".join(lines) + "\n")
    (ws / "Makefile").write_text("\n".join(make) + "\n")
    (ws / "build.ninja").write_text("\n".join(ninja) + "\n")


def argv(tool: str, jobs: int, forced: bool, extra: tuple[str, ...] = ()) -> list[str]:
    if tool.startswith("pytaskmake"):
        return [sys.executable, "-m", "pytaskmake", "-q", "-j", str(jobs), *extra] + (
            ["-B"] if forced else []
        )
    if tool == "make":
        return ["make", "-s", f"-j{jobs}"] + (["-B"] if forced else [])
    return [NINJAS.get(tool, "ninja"), f"-j{jobs}"]


NINJAS: dict[str, str] = {}  # "ninja 1.13.2" -> its binary (--ninja)


def run(ws: Path, cmd: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if (ws / "events.log").exists():
        (ws / "events.log").unlink()
    if Path(cmd[0]).name == "ninja":  # ninja has no -B: its outputs go, its log stays
        for f in (ws / "out").iterdir():
            f.unlink()
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {ws}:\n{done.stdout}{done.stderr}")
    return seconds


def events(ws: Path) -> list[tuple[float, str, str, int]]:
    found = []
    for line in (ws / "events.log").read_text().split("\n"):
        if line:
            kind, name, when, *peak = line.split()
            found.append((float(when), kind, name, int(peak[0]) * 1024 if peak else 0))
    return sorted(found)


def peak_held(ws: Path) -> int:
    """The most memory held at once, in bytes: each task counted at its own peak from
    its start to its end (an upper bound of what really was)."""
    log = events(ws)
    peak_of = {name: p for _, kind, name, p in log if kind == "end"}
    held = top = 0
    for _, kind, name, _ in log:
        held += peak_of[name] if kind == "start" else -peak_of[name]
        top = max(top, held)
    return top


def task_span(ws: Path, jobs: list[Job]) -> float:
    """First task start to last task end (the makespan), from the outputs' times: each
    task writes its output when its sleep ends."""
    ends = {j.name: (ws / "out" / j.name).stat().st_mtime_ns / 1e9 for j in jobs}
    return max(ends.values()) - min(ends[j.name] - j.seconds for j in jobs)


def bound(jobs: list[Job], slots: int) -> float:
    finish: dict[str, float] = {}
    for j in jobs:  # declared after what they need
        finish[j.name] = j.seconds + (finish[j.after] if j.after else 0.0)
    return max(max(finish.values()), sum(j.seconds for j in jobs) / slots)


def timing(scenario: str, jobs: list[Job], tools: list[str], repeat: int, root: Path) -> list[str]:
    slots = 2
    low = bound(jobs, slots)
    times: dict[str, list[float]] = {t: [] for t in tools}
    spans: dict[str, list[float]] = {t: [] for t in tools}
    for tool in tools:
        write_workspace(root / scenario / tool, jobs)
        run(root / scenario / tool, argv(tool, slots, False))  # the history run
    for rep in range(repeat):
        for tool in tools[rep % len(tools) :] + tools[: rep % len(tools)]:
            ws = root / scenario / tool
            times[tool].append(run(ws, argv(tool, slots, True)))
            spans[tool].append(task_span(ws, jobs))
    rows = []
    for tool in tools:
        wall, span = statistics.median(times[tool]), statistics.median(spans[tool])
        rows.append(
            f"| {scenario} | {tool} | {wall:.2f} s | {wall / low:.3f} | {span:.2f} s "
            f"| {span / low:.3f} | {low:.2f} s | {min(times[tool]):.2f}-{max(times[tool]):.2f} |"
        )
    return rows


def memory(tools: list[str], root: Path) -> list[str]:
    jobs, slots, limit = hogs(), 4, 1 << 30
    rows = []
    for tool in ["pytaskmake", "pytaskmake-declared", *[t for t in tools if t != "pytaskmake"]]:
        ws = root / "memory" / tool
        write_workspace(ws, jobs, declared_mem=tool == "pytaskmake-declared")
        extra = ("--mem", "1G") if tool.startswith("pytaskmake") else ()
        run(ws, argv(tool, slots, False, ("--mem", "0") if tool == "pytaskmake" else extra))
        wall = run(ws, argv(tool, slots, True, extra))
        held = peak_held(ws)
        verdict = "within" if held <= limit else "**over**"
        rows.append(f"| {tool} | {held / (1 << 20):.0f} MiB | {verdict} 1 GiB | {wall:.2f} s |")
    return rows


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "not installed"
    return out.splitlines()[0] if out else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tools", default="pytaskmake,make,ninja")
    p.add_argument("--out", default=str(REPO / "bench" / "results-schedule.md"))
    p.add_argument("--keep", action="store_true", help="leave the workspaces behind")
    p.add_argument(
        "--ninja",
        action="append",
        default=[],
        metavar="PATH",
        help="another ninja binary to time too (pip install --target DIR ninja: 1.13)",
    )
    args = p.parse_args()
    tools = [t for t in args.tools.split(",") if t == "pytaskmake" or shutil.which(t)]
    for path in args.ninja:
        name = "ninja " + version([path, "--version"]).split(".git")[0]
        NINJAS[name] = path
        tools.append(name)
    root = Path(tempfile.mkdtemp(prefix="schedule-bench-"))
    load = os.getloadavg()[0]
    try:
        rows = timing("chain", chain_last(), tools, args.repeat, root)
        rows += timing("long-last", long_last(), tools, args.repeat, root)
        mem_rows = memory(tools, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report(Path(args.out), rows, mem_rows, args.repeat, load)


def report(out: Path, rows: list[str], mem_rows: list[str], repeat: int, load: float) -> None:
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = [
        "# Scheduling: makespan against the lower bound, and memory held at once",
        "",
        f"{when}; {os.cpu_count()} cores; {platform.platform()}; Python "
        f"{platform.python_version()}; {version(['make', '--version'])}; ninja "
        f"{version(['ninja', '--version'])}; load average {load:.1f} at the start (the",
        "machine is shared). `python bench/schedule.py` (`pytaskmake bench-schedule`).",
        "",
        "Every task sleeps; each tool built the DAG once (pytaskmake records durations),",
        f"then every task is forced to run again, -j2, median of {repeat}, tools taking turns.",
        "Span (the makespan): first task start to last task end, from the outputs' times;",
        "wall: the whole process (interpreter start-up and loading included: pytaskmake's",
        "is 0.3 to 0.5 s on this machine). Bound: max(critical path, work / slots).",
        "",
        "| scenario | tool | wall | wall / bound | span | span / bound | bound | wall range |",
        "|---|---|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Memory: 8 tasks each touching 300 MiB for 0.6 s, -j4, 1 GiB to share. Held at",
        "once: each task's own peak RSS from its start to its end, replayed from its log.",
        "pytaskmake learned the peaks in its first build (`--mem 0`), then ran with",
        "`--mem 1G` (a learned peak is reserved with a 25% margin, rounded up: 448 MiB);",
        "pytaskmake-declared says `mem='300M'` in the Taskfile.",
        "",
        "| tool | most held at once | limit | wall |",
        "|---|---:|---|---:|",
        *mem_rows,
        "",
    ]
    out.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
