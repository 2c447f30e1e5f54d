"""Watch mode latency: from an input's save to its task's output written, median of
20 saves, for sweeps of N points (the workload of run.py).

    python bench/watch_latency.py --sizes 100,10000 [--out bench/results-watch.md]

Each size: the sweep is built once, `pytaskmake --watch` is started, and 20 times
one input (a different point each time) gets new content; the time until that
point's `out/sim_K.dat` holds it is one sample (it includes running `cat`, ~2 ms).
The goal: under 150 ms median at both sizes (not growing with N).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import workload  # bench/ is on sys.path when this file is run as a script

REPO = Path(__file__).resolve().parent.parent


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}


def measure(n: int, saves: int = 20) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="pytaskmake-watch-") as root:
        ws = Path(root)
        workload.generate(ws, n)
        subprocess.run(
            [sys.executable, "-m", "pytaskmake", "-q", "-j2"], cwd=ws, env=env(), check=True
        )
        log = open(ws / "watch.log", "wb")  # noqa: SIM115
        watch = subprocess.Popen(
            [sys.executable, "-m", "pytaskmake", "--watch", "-q"],
            cwd=ws,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(lambda: b"watching" in (ws / "watch.log").read_bytes(), 600)
            samples = []
            for i in range(saves):
                k = 1 + (i * 7919) % n
                marker = f"save {i}\n"
                out = ws / "out" / f"sim_{k}.dat"
                idle = _read(ws / "watch.log").count("watching")
                start = time.monotonic()
                (ws / "inputs" / f"p_{k}.txt").write_text(marker)
                _wait_for(lambda out=out, m=marker: m in _read(out), 60)
                samples.append(time.monotonic() - start)
                # the next save goes to an idle watcher: its downstream (the summary of
                # all N points) has finished
                _wait_for(lambda n=idle: _read(ws / "watch.log").count("watching") > n, 120)
            return samples
        except TimeoutError:
            print(_read(ws / "watch.log")[-3000:], file=sys.stderr)
            raise
        finally:
            watch.send_signal(signal.SIGINT)
            watch.wait(30)
            log.close()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the watch did not answer")
        time.sleep(0.001)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100,10000")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results-watch.md")
    args = p.parse_args()
    lines = [
        "# Watch mode: an input's save to its task's output written (20 saves)",
        "",
        "| N points | tasks | median ms | min ms | max ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in (int(s) for s in args.sizes.split(",")):
        samples = [1000 * s for s in measure(n)]
        lines.append(
            f"| {n:,} | {2 * n + 1:,} | {statistics.median(samples):.0f} | "
            f"{min(samples):.0f} | {max(samples):.0f} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
