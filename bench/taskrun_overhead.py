"""What the taskrun layer costs: a taskrun script against the same tasks as a native
Taskfile, both run by the engine, for sweeps of N points (N simulations, N parses,
one summary; every command is `true`, so the build tool is all that is measured).

    python bench/taskrun_overhead.py --sizes 1000 [--repeat 3] [--out bench/results-taskrun.md]

Rows: the full run (state deleted before each), the second run (everything skipped
as done) and the resume after one simulation failed (it, its parse and the summary
run again). The taskrun layer's own work is its run stamps: each task also starts a
subshell and `date`, and every task reads its dependencies' stamps.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TASKRUN = """\
from pytaskmake import taskrun

manager = taskrun.Task.Manager(numProcs=2)
summary = manager.task_new('summary', 'true')
for i in range({n}):
    sim = manager.task_new(f'sim {{i}}', f'[ "$FAIL" != {{i}} ]')
    parse = manager.task_new(f'parse {{i}}', 'true')
    parse.dependency_is(sim)
    summary.dependency_is(parse)
manager.run_request_is()
"""

NATIVE = """\
from pytaskmake import task

parses = []
for i in range({n}):
    task(f'sim {{i}}', f'[ "$FAIL" != {{i}} ]')
    parses.append(task(f'parse {{i}}', 'true', deps=[f'sim {{i}}']))
task('summary', 'true', deps=parses)
"""


def timed(command: list[str], cwd: Path, code: int = 0, **env: str) -> float:
    start = time.monotonic()
    done = subprocess.run(
        command, cwd=cwd, env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert done.returncode == code, done.stderr.decode()
    return time.monotonic() - start


def setup(kind: str, n: int, ws: Path) -> list[str]:
    """Write the script of `kind` into `ws`; returns the command that runs it."""
    if kind == "taskrun":
        (ws / "run.py").write_text(TASKRUN.format(n=n))
        return [sys.executable, "run.py"]
    (ws / "Taskfile.py").write_text(NATIVE.format(n=n))
    return [sys.executable, "-m", "pytaskmake", "-j2", "-k"]


def once(command: list[str], ws: Path, n: int) -> dict[str, float]:
    """Seconds of each scenario, once."""
    shutil.rmtree(ws / ".pytaskmake", ignore_errors=True)
    found = {"full": timed(command, ws), "second": timed(command, ws)}
    shutil.rmtree(ws / ".pytaskmake", ignore_errors=True)
    timed(command, ws, code=1, FAIL=str(n // 2))
    found["resume"] = timed(command, ws)
    return found


def measure(n: int, repeat: int) -> dict[str, dict[str, float]]:
    """kind -> scenario -> median seconds; the two kinds alternate (the machine's load
    drifts over minutes)."""
    kinds = ("taskrun", "native")
    samples: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
    with tempfile.TemporaryDirectory(prefix="pytaskmake-taskrun-") as root:
        spaces = {k: Path(root) / k for k in kinds}
        commands = {}
        for kind, ws in spaces.items():
            ws.mkdir()
            commands[kind] = setup(kind, n, ws)
        for _ in range(repeat):
            for kind in kinds:
                for name, seconds in once(commands[kind], spaces[kind], n).items():
                    samples[kind].setdefault(name, []).append(seconds)
    return {k: {name: statistics.median(v) for name, v in s.items()} for k, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lines = [
        "| N points (2N+1 tasks), -j2 | taskrun script | native Taskfile | ratio |",
        "|---|---:|---:|---:|",
    ]
    for n in (int(s) for s in args.sizes.split(",")):
        found = measure(n, args.repeat)
        taskrun, native = found["taskrun"], found["native"]
        for name in ("full", "second", "resume"):
            ratio = taskrun[name] / native[name]
            lines.append(
                f"| {n:,}: {name} | {taskrun[name]:.2f} s | {native[name]:.2f} s | {ratio:.2f}x |"
            )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(
            "# taskrun layer overhead\n\n`python bench/taskrun_overhead.py "
            f"--sizes {args.sizes} --repeat {args.repeat}`: medians, the two kinds alternating, "
            "2 cores shared with other work.\n\n" + text
        )


if __name__ == "__main__":
    main()
