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
    try:
        for rep in range(args.repeat + 1):  # the first is a warm-up
            for name, argv in variants.items():
                seconds = build_once(name.replace(" ", ""), argv, args.points, work)
                print(f"{'warm-up' if rep == 0 else rep}: {name}: {seconds:.2f} s", flush=True)
                if rep:
                    times[name].append(seconds)
            if rep:
                own.append(dask_own_overhead(client, tasks, WORKERS))
    finally:
        client.close()
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)
    report = _table(times, own, tasks, args)
    print(report)
    if args.out:
        args.out.write_text(report)


def _table(times: dict[str, list[float]], own: list[float], tasks: int, args: object) -> str:
    local = statistics.median(times["local -j 2"])
    lines = [
        f"# Dask per-task overhead ({datetime.date.today()})",
        "",
        f"{tasks:,} trivial tasks (bench/workload.py, N = {args.points:,}), a 2-worker "  # type: ignore[attr-defined]
        f"LocalCluster (1 thread each) against the local executor (-j 2), alternating, "
        f"median of {args.repeat} after a warm-up. {platform.node()}, {os.cpu_count()} CPUs, "  # type: ignore[attr-defined]
        f"Python {platform.python_version()}.",
        "",
        "| executor | wall | per task | overhead per task vs local |",
        "|---|---:|---:|---:|",
    ]
    for name, values in times.items():
        wall = statistics.median(values)
        extra = "" if name.startswith("local") else f"{(wall - local) / tasks * 1e3:+.2f} ms"
        lines.append(f"| {name} | {wall:.2f} s | {wall / tasks * 1e3:.2f} ms | {extra} |")
    lines += [
        "",
        f"Dask's own cost per task (a no-op function, {WORKERS} in flight, same cluster): "
        f"{statistics.median(own) * 1e3:.2f} ms.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
