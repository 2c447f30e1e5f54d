"""Per-task overhead of a build on Dask: the same trivial sweep through a 2-worker
LocalCluster and through the local executor, alternating in one run.

Why it is built this way: the tasks are the benchmark sweep's one-liners (N points:
2N+1 tasks, bench/workload.py), so what is timed is the cost of getting a task to
a worker and its completion back (submit, the worker's spawn and hashing, the
result's round trip). Each build is a whole `pytaskmake` process in a fresh
workspace, as a user runs it, median of --repeat after a warm-up; the cluster is
started once, before, as a user's cluster would be. Dask's own cost per task (a
no-op function through the same cluster, as many in flight as workers) is measured
in the same run. Per-task overhead = (wall on Dask - wall locally) / tasks.

Usage:  python bench/dask_overhead.py [--points 1000] [--repeat 3] [--depths 2,8]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import workload  # bench/ is on sys.path when this file is run as a script
from run import pytaskmake_env, timed_run

WORKERS = 2


def _noop(i: int) -> int:
    return i


def dask_own_overhead(client: object, tasks: int, depth: int) -> float:
    """Seconds per no-op task with `depth` submitted at once (as pytaskmake submits)."""
    from distributed import as_completed

    start = time.perf_counter()
    first = [client.submit(_noop, i, pure=False) for i in range(depth)]  # type: ignore[attr-defined]
    pending = as_completed(first, loop=client.loop)  # type: ignore[attr-defined]
    submitted = depth
    for _ in pending:
        if submitted < tasks:
            pending.add(client.submit(_noop, submitted, pure=False))  # type: ignore[attr-defined]
            submitted += 1
    return (time.perf_counter() - start) / tasks


def build_once(name: str, argv: list[str], points: int, work: Path) -> float:
    folder = work / name
    shutil.rmtree(folder, ignore_errors=True)
    workload.generate(folder, points)
    run = timed_run(argv, folder, pytaskmake_env(), 1800, work / f"{name}.log")
    if run.returncode != 0:
        sys.exit(f"{name} failed: see {work / f'{name}.log'}")
    return run.seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=1000, help="sweep points (2N+1 tasks)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--depths", default="2,8", help="-j values on Dask (jobs in flight)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    from distributed import Client, LocalCluster

    tasks = 2 * args.points + 1
    work = Path(tempfile.mkdtemp(prefix="dask-overhead-"))
    base = [sys.executable, "-m", "pytaskmake"]
    cluster = LocalCluster(
        n_workers=WORKERS, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=logging.CRITICAL,
    )  # fmt: skip
    client = Client(cluster, set_as_default=False)
    variants = {"local -j 2": [*base, "-j", str(WORKERS)]}
    for depth in args.depths.split(","):
        address = cluster.scheduler_address
        variants[f"dask -j {depth}"] = [*base, "--scheduler", address, "-j", depth]
    times: dict[str, list[float]] = {name: [] for name in variants}
    own: list[float] = []
    load = [os.getloadavg()[0]]
    try:
        for rep in range(args.repeat + 1):  # the first is a warm-up
            for name, argv in variants.items():
                seconds = build_once(name.replace(" ", ""), argv, args.points, work)
                print(f"{'warm-up' if rep == 0 else rep}: {name}: {seconds:.2f} s", flush=True)
                if rep:
                    times[name].append(seconds)
            if rep:
                own.append(dask_own_overhead(client, tasks, WORKERS))
            load.append(os.getloadavg()[0])
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    report = _table(times, own, load, tasks, args)
    print(report)
    if args.out:
        args.out.write_text(report)


def _table(
    times: dict[str, list[float]], own: list[float], load: list[float], tasks: int, args: Any
) -> str:
    local = statistics.median(times["local -j 2"])
    dask_own = statistics.median(own)
    lines = [
        f"# Dask per-task overhead ({datetime.date.today()})",
        "",
        f"{tasks:,} trivial tasks (bench/workload.py, N = {args.points:,}), a 2-worker "
        f"LocalCluster (1 thread each) against the local executor (-j 2), alternating, "
        f"median of {args.repeat} after a warm-up. {platform.node()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; load average (1 min) during the run: "
        f"{min(load):.1f} to {max(load):.1f}.",
        "",
        "| executor | wall | per task | overhead per task vs local | of which Dask's own |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in times.items():
        wall = statistics.median(values)
        extra = mine = ""
        if not name.startswith("local"):
            extra = f"{(wall - local) / tasks * 1e3:+.2f} ms"
            mine = f"{dask_own * 1e3:.2f} ms"
        per_task = wall / tasks * 1e3
        lines.append(f"| {name} | {wall:.2f} s | {per_task:.2f} ms | {extra} | {mine} |")
    lines += [
        "",
        f"Dask's own cost per task: a no-op function through the same cluster, {WORKERS} in "
        f"flight, each next one submitted when one completes: {dask_own * 1e3:.2f} ms (all runs: "
        + ", ".join(f"{x * 1e3:.1f}" for x in own)
        + " ms). All runs, seconds: "
        + "; ".join(f"{n}: " + ", ".join(f"{x:.1f}" for x in v) for n, v in times.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
