"""What tracing costs: builds with --lint / --trace-deps against plain builds, same run.

    python bench/lint_overhead.py [--points 1000] [--files 20000] [--repeat 3]
                                  [--out bench/results-lint.md]

Three workloads, each built whole (-B -j2 --no-cache: every task runs, nothing is
restored), plain and traced alternating, median of --repeat runs after a warm-up:
the synthetic sweep of bench/workload.py (2N+1 one-line shell tasks), the example
sweep (examples/sweep, NETSIM_SLEEP=0: Python programs, so interpreter start-up is
traced too), and one file-heavy task (`find data -type f | xargs cat`, reading
--files files). Then the no-op of the synthetic sweep, plain (answered by the
snapshot) and after a --trace-deps build (records with traced inputs: no snapshot).
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

import workload

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "examples" / "sweep"


def timed(root: Path, *args: str) -> float:
    """Seconds of one `pytaskmake ARGS` in `root`; raises if it did not exit 0."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "NETSIM_SLEEP": "0"}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "-q", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"pytaskmake {' '.join(args)} in {root}: {done.stdout}{done.stderr}")
    return seconds


def compare(root: Path, repeat: int, variants: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """Median seconds of each variant's full build, alternating, after one warm-up each."""
    found: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(repeat + 1):
        order = list(variants.items())
        order = order[rep % len(order) :] + order[: rep % len(order)]
        for name, args in order:
            seconds = timed(root, "-B", "-j2", "--no-cache", *args)
            if rep:  # the first round warms the caches
                found[name].append(seconds)
    return {name: statistics.median(times) for name, times in found.items()}


def synthetic(base: Path, points: int) -> Path:
    root = base / "synthetic"
    workload.generate(root, points)
    return root


def example(base: Path) -> Path:
    root = base / "example"
    shutil.copytree(SWEEP, root, ignore=shutil.ignore_patterns("sims", ".pytaskmake"))
    return root


def undeclared(base: Path, points: int) -> Path:
    """The synthetic sweep, its simulations reading params.txt through a glob (not an
    implicit input) and not declaring it: --trace-deps finds it."""
    root = base / "undeclared"
    workload.generate(root, points)
    text = (root / "Taskfile.py").read_text()
    text = text.replace('inputs=["params.txt", ', "inputs=[").replace(
        "cat params.txt", "cat param[s].txt"
    )
    (root / "Taskfile.py").write_text(text)
    return root


def file_heavy(base: Path, files: int) -> Path:
    root = base / "files"
    data = root / "data"
    for i in range(files):
        folder = data / f"d{i // 1000}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.txt").write_text(f"line {i}\n")
    (root / "Taskfile.py").write_text(
        "from pytaskmake import task\n"
        "task('cat', 'find data -type f | LC_ALL=C sort | xargs cat > all.txt',\n"
        "     inputs=['data'], outputs=['all.txt'])\n"
    )
    return root


def noops(root: Path, repeat: int) -> tuple[float, float]:
    """Median no-op seconds: after a plain build, and after a --trace-deps build."""
    timed(root, "-B", "-j2", "--no-cache")
    plain = [timed(root) for _ in range(repeat + 1)][1:]
    timed(root, "-B", "-j2", "--no-cache", "--trace-deps")
    traced = [timed(root) for _ in range(repeat + 1)][1:]
    return statistics.median(plain), statistics.median(traced)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results-lint.md")
    args = p.parse_args()
    variants = {"plain": (), "--lint": ("--lint",), "--trace-deps": ("--trace-deps",)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="pytaskmake-lint-") as tmp:
        base = Path(tmp)
        sweep = f"synthetic sweep, {args.points} points ({2 * args.points + 1} tasks)"
        workloads = [
            (sweep, synthetic(base, args.points)),
            ("examples/sweep (28 tasks, Python programs)", example(base)),
            (f"one task reading {args.files} files", file_heavy(base, args.files)),
        ]
        for label, root in workloads:
            found = compare(root, args.repeat, variants)
            rows.append((label, found))
            print(label, found, flush=True)
        plain_noop, traced_noop = noops(undeclared(base, args.points), args.repeat)
    lines = [
        "# Tracing overhead (--lint, --trace-deps)",
        "",
        f"Full builds (-B -j2 --no-cache), median of {args.repeat} after a warm-up, variants",
        "alternating in the same run; ratio to the plain build.",
        "",
        "| workload | plain | --lint | --trace-deps |",
        "|---|---:|---:|---:|",
    ]
    for label, found in rows:
        base_s = found["plain"]
        cells = [f"{base_s:.2f} s"] + [
            f"{found[v]:.2f} s ({found[v] / base_s:.2f}x)" for v in ("--lint", "--trace-deps")
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"No-op of the synthetic sweep whose simulations read params.txt undeclared: "
        f"{plain_noop:.2f} s",
        f"after a plain build (the snapshot answers), {traced_noop:.2f} s after a --trace-deps "
        f"build ({traced_noop / plain_noop:.1f}x):",
        "its records then hold a traced input each, so no snapshot is saved and every task",
        "is checked.",
        "",
        f"Machine: {os.cpu_count()} CPUs; strace: {_strace_version()}.",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _strace_version() -> str:
    try:
        out = subprocess.run(["strace", "-V"], capture_output=True, text=True).stdout
    except OSError:
        return "not installed"
    return out.splitlines()[0] if out else "?"


if __name__ == "__main__":
    sys.exit(main())
