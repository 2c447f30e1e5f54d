"""A job's needs as Dask worker resources, and whether any worker can ever meet them.

Dask leaves a task that no worker can run waiting forever; a build must refuse it
before anything runs instead, naming the task and what the workers offer.
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import Job

Resources = dict[str, float]


def resources_of(job: Job, cpus_everywhere: bool, mem_anywhere: bool = True) -> Resources:
    """The Dask worker resources a job holds while it runs: its named resources,
    "mem" (bytes) when it says how much it needs and some worker counts memory (a
    peak learned from history is a hint, not a need a cluster without "mem" could
    refuse), and "cpus" when it needs more than one or when every worker declares
    "cpus" (then every job holds its share)."""
    needs = dict(job.resources)
    if job.cpus > 1 or cpus_everywhere:
        needs["cpus"] = job.cpus
    if job.mem > 0 and mem_anywhere:
        needs["mem"] = job.mem
    return needs


def first_unsatisfiable(
    jobs: Iterable[Job], workers: dict[str, Resources], cpus_everywhere: bool
) -> tuple[str, str] | None:
    """(task, message) of the first job that no worker (address -> its resources)
    holds enough for, or None. Each distinct need is judged once."""
    verdicts: dict[tuple[tuple[str, float], ...], bool] = {}
    mem_anywhere = any("mem" in have for have in workers.values())
    for job in jobs:
        needs = resources_of(job, cpus_everywhere, mem_anywhere)
        if not needs:
            continue
        wanted = tuple(sorted(needs.items()))
        if wanted not in verdicts:
            verdicts[wanted] = any(_holds(have, needs) for have in workers.values())
        if not verdicts[wanted]:
            return job.name, _unsatisfiable(job.name, needs, workers)
    return None


def _holds(have: Resources, needs: Resources) -> bool:
    return all(have.get(name, 0) >= amount for name, amount in needs.items())


def _unsatisfiable(task: str, needs: Resources, workers: dict[str, Resources]) -> str:
    wanted = ", ".join(f"{k}={v:g}" for k, v in sorted(needs.items()))
    offered = sorted(
        {", ".join(f"{k}={v:g}" for k, v in sorted(r.items())) or "none" for r in workers.values()}
    )
    return (
        f"task {task!r} needs {wanted}, which no Dask worker has (workers' resources: "
        f"{'; '.join(offered) or 'no workers'}); start workers with "
        "`dask worker ... --resources`"
    )
