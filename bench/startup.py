"""Small projects: the example sweep's no-op against `python -c pass`, alternating.

    python bench/startup.py [--repeat 21] [--before DIR] [--out FILE]

Why: on a 28-task sweep a researcher waits on the tool's own start, not on any
task; Python's own start is the floor. The goal (issue "Performance, round two",
item 2) is the no-op under 2x `python -c pass`. Also timed: `import pytaskmake`
alone; `python -S -c pass` (no site-packages set-up: an editable install's finder,
imported at every start, makes `python -c pass` itself slower); and the floor of
any tool built like this one, which must import sqlite3 (its state), argparse (its
command line) and pathlib. Bytecode caches are kept (a user's installed package has
them), so no run compiles a module.
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
SWEEP = REPO / "examples" / "sweep"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _site_kind() -> str:
    """Whether this Python's start imports an editable install's finder (pathlib and
    importlib.util, at every start): it slows `python -c pass` and the no-op alike."""
    import site

    folders = [*site.getsitepackages(), site.getusersitepackages()]
    pth = [p.name for f in folders if os.path.isdir(f) for p in Path(f).glob("*.pth")]
    editable = any(name.startswith("__editable__") for name in pth)
    return "an editable install's finder runs at start" if editable else "no editable finder"


def env_for(checkout: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "NO_COLOR": "1", "NETSIM_SLEEP": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps bytecode caches
    return env


def built_sweep(root: Path, checkout: Path) -> Path:
    """A copy of the example sweep, built once (then every run is a no-op)."""
    ws = root / f"sweep-{checkout.name}"
    shutil.copytree(SWEEP, ws, ignore=shutil.ignore_patterns(".pytaskmake", "sims"))
    cmd = [sys.executable, "-m", "pytaskmake", "-q", "-j2"]
    subprocess.run(cmd, cwd=ws, env=env_for(checkout), check=True, stdout=subprocess.DEVNULL)
    return ws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--before", help="an earlier checkout, timed beside this one")
    parser.add_argument("--out", default="bench/results-startup.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pytaskmake-startup-") as tmp:
        root = Path(tmp)
        commands: dict[str, tuple[list[str], Path, dict[str, str]]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], root, env_for(REPO)),
            "python -S -c pass": ([sys.executable, "-S", "-c", "pass"], root, env_for(REPO)),
            "floor: python -c 'import sqlite3, argparse, pathlib'": (
                [sys.executable, "-c", "import sqlite3, argparse, pathlib"],
                root,
                env_for(REPO),
            ),
            "python -c 'import pytaskmake'": (
                [sys.executable, "-c", "import pytaskmake"],
                root,
                env_for(REPO),
            ),
            "pytaskmake (no-op)": (
                [sys.executable, "-m", "pytaskmake", "-q"],
                built_sweep(root, REPO),
                env_for(REPO),
            ),
        }
        if args.before:
            before = Path(args.before).resolve()
            commands["pytaskmake-before (no-op)"] = (
                [sys.executable, "-m", "pytaskmake", "-q"],
                built_sweep(root, before),
                env_for(before),
            )
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for rep in range(args.repeat + 1):  # the first round warms caches and is dropped
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                seconds = timed(*commands[name])
                if rep:
                    times[name].append(seconds)
    base = statistics.median(times["python -c pass"])
    lines = [
        "# Start-up: the example sweep's no-op (28 tasks) against Python's own start",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; python "
        f"{sys.version.split()[0]}; nproc {os.cpu_count()}; {args.repeat} alternating runs each",
        f"- site-packages: {_site_kind()}",
        "",
        "| command | median s | min-max s | vs `python -c pass` |",
        "|---|---:|---:|---:|",
    ]
    for name, values in times.items():
        med = statistics.median(values)
        lines.append(
            f"| {name} | {med:.3f} | {min(values):.3f}-{max(values):.3f} | {med / base:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
