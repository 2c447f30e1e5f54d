"""Load time of a Taskfile of N callable tasks: what fingerprinting Python code costs.

    python bench/codeprint_load.py [--n 10000] [--repeat 5] [--before DIR] [--out FILE]

Three shapes of the same sweep, each N tasks over one Taskfile function that calls a
project module (`helpers.py`): functools.partial(simulate, p), a lambda with a default
argument, and a closure made per point. Each load runs in a fresh process
(`load_taskfile`, as every build does); --before times an earlier checkout in the same
run, alternating, so the two columns share the machine's mood.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

HELPERS = '''
"""A project module the Taskfile imports."""
import math

RATE = 0.25


def model(p):
    """The physics."""
    return math.exp(-RATE * p) + step(p)


def step(p):
    return p % 7


def write(path, value):
    with open(path, "w") as f:
        f.write(repr(value))
'''

HEAD = """
import functools
import helpers
from pytaskmake import task

SCALE = 3


def simulate(p, outputs):
    helpers.write(outputs[0], helpers.model(p) * SCALE)


def closure(p):
    def run(outputs):
        simulate(p, outputs)
    return run
"""

SHAPES = {
    "partial": "functools.partial(simulate, p)",
    "lambda": "lambda outputs, p=p: simulate(p, outputs)",
    "closure": "closure(p)",
}

LOAD = """
import sys, time
from pathlib import Path
from pytaskmake.taskfile import load_taskfile
start = time.perf_counter()
registry = load_taskfile(Path("Taskfile.py"))
assert len(registry.tasks) == int(sys.argv[1])
print(time.perf_counter() - start)
"""


def write_project(root: Path, shape: str, n: int) -> None:
    (root / "helpers.py").write_text(HELPERS)
    loop = (
        f"\nfor p in range({n}):\n"
        f"    task(f'sim{{p}}', {SHAPES[shape]}, outputs=[f'out/{{p}}.txt'])\n"
    )
    (root / "Taskfile.py").write_text(HEAD + loop)


def load_seconds(checkout: Path, root: Path, n: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(n)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="callable tasks in the Taskfile")
    p.add_argument("--repeat", type=int, default=5, help="timed loads per shape and checkout")
    p.add_argument("--before", type=Path, help="a checkout of earlier code to compare")
    p.add_argument("--out", type=Path, help="write the table there too (markdown)")
    args = p.parse_args()
    checkouts = [("this checkout", REPO)]
    if args.before:
        checkouts.append(("before", args.before.resolve()))
    lines = [
        f"# Loading a Taskfile of {args.n:,} callable tasks (median of {args.repeat}, seconds)",
        "",
        "| shape | " + " | ".join(name for name, _ in checkouts) + " |",
        "|---|" + "---:|" * len(checkouts),
    ]
    for shape in SHAPES:
        with tempfile.TemporaryDirectory(prefix="pytaskmake-codeprint-") as tmp:
            root = Path(tmp)
            write_project(root, shape, args.n)
            times: dict[str, list[float]] = {name: [] for name, _ in checkouts}
            for _ in range(args.repeat + 1):  # the first round warms the disk cache
                for name, checkout in checkouts:
                    times[name].append(load_seconds(checkout, root, args.n))
            cells = [f"{statistics.median(times[name][1:]):.3f}" for name, _ in checkouts]
            lines.append(f"| {shape} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", f"{os.cpu_count()} CPUs; load average at the end: {load}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
