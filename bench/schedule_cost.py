"""What ordering costs the build loop at 200,001 tasks: the ready queue made and
every task admitted and released, in memory (no processes, no disk).

Why: the critical path and admission run once per task of every build that runs
something; this times exactly that part, with the durations of a previous run
known, so that a before/after of scheduling code is not lost in the noise of whole
builds. Run it with a checkout of earlier code on PYTHONPATH for the "before":

    python bench/schedule_cost.py                       # this checkout
    PYTHONPATH=/path/to/old python bench/schedule_cost.py
"""

from __future__ import annotations

import inspect
import statistics
import time
from array import array

from pytaskmake.graph import BuildGraph
from pytaskmake.scheduler import Scheduler
from pytaskmake.taskfile import Task

N = 100_000  # sweep points: 2N + 1 tasks, the shape of bench/workload.py


def sweep() -> BuildGraph:
    tasks = []
    for i in range(N):
        sim, csv = f"out/sim_{i}.dat", f"out/parse_{i}.csv"
        tasks.append(Task(f"sim_{i}", f"cat params.txt p_{i} > {sim}", ("params.txt",), (sim,)))
        tasks.append(Task(f"parse_{i}", f"tr a-z A-Z < {sim} > {csv}", (sim,), (csv,)))
    summary = tuple(f"out/parse_{i}.csv" for i in range(N))
    tasks.append(Task("summary", "cat out/parse_* > out/summary.csv", summary, ("s.csv",)))
    return BuildGraph(tasks)


def once(graph: BuildGraph, names: list[str], recorded: dict[str, float]) -> float:
    start = time.perf_counter()
    if hasattr(Scheduler, "for_build"):
        from pytaskmake.resources import Limits

        if "index" in inspect.signature(Scheduler.for_build).parameters:  # positions
            seconds = array("d", [recorded[n] for n in names])
            s = Scheduler.for_build(
                graph.tasks, names, graph.upstream, graph.dependants, Limits(2), seconds, {}
            )
        else:
            s = Scheduler.for_build(
                graph.tasks, names, graph.upstream, graph.dependants, Limits(2), dict(recorded), {}
            )
        take = lambda: s.admit(0.0)  # noqa: E731
    else:  # before the scheduling issue: declaration order, no admission
        s = Scheduler(names, graph.upstream, graph.dependants)
        take = s.pop
    while (name := take()) is not None:
        s.succeeded(name)
    return time.perf_counter() - start


def main() -> None:
    graph = sweep()
    names = list(graph.tasks)
    recorded = {n: 0.001 * (i % 7 + 1) for i, n in enumerate(names)}
    times = [once(graph, names, recorded) for _ in range(5)]
    print(
        f"{len(names):,} tasks ordered, admitted and released: median "
        f"{statistics.median(times):.2f} s, min {min(times):.2f} s (5 runs)"
    )


if __name__ == "__main__":
    main()
