"""What a Dask worker runs for pytaskmake: one job, at most once, outputs hashed there.

This module is imported on the workers. A job runs through job.run_job in the
project folder (a shared filesystem, the same path on every host). A job whose
worker died is never run a second time: its first run leaves a token file, and a
rerun that finds it reports the loss instead of running. The process groups a
worker starts are journaled (orphans.py), so those a dead worker left running are
killed by the next worker started on its host, or by the pytaskmake process there.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from distributed import WorkerPlugin, get_worker

from .base import Completion, Job
from .job import run_job
from .orphans import ProcessJournal, kill_leftovers

LOST = "its worker died while it ran (not run a second time)"
# Completions are pushed to the build through this topic as they happen, saving the
# round trip of fetching each result: most are tiny (no output, a few fingerprints).
# One topic for every build: the scheduler keeps its last 1,000 events, so at most
# 1,000 x INLINE bytes; a bigger completion is fetched as a result instead.
TOPIC = "pytaskmake-completions"
INLINE = 16 * 1024


@dataclass(frozen=True)
class WorkerSpec:
    """Where a build's jobs run and keep their files: absolute paths seen by every host."""

    root: str  # the project folder
    logs_dir: str  # .pytaskmake/logs: the whole output of tasks without a log file
    tokens: str  # one file per job started in this build
    journals: str  # one process-group journal per worker
    plugin: str  # the name of this build's BuildPlugin on the workers


@dataclass(frozen=True)
class WorkerResult:
    """A job's completion and where it ran (a worker thread: one row of a trace)."""

    completion: Completion
    worker: str
    thread: int


class BuildPlugin(WorkerPlugin):
    """One build's presence on a worker: its process-group journal and its stop flag."""

    def __init__(self, journals: str) -> None:
        self.journals = journals
        self.stopped = False
        self.journal: ProcessJournal | None = None

    def setup(self, worker: object) -> None:
        host = socket.gethostname()
        kill_orphans(self.journals, host)  # left by a worker that died on this host
        os.makedirs(self.journals, exist_ok=True)
        name = f"{host}-{os.getpid()}-{threading.get_ident()}-{id(self)}"
        self.journal = ProcessJournal(Path(self.journals) / name)

    def teardown(self, worker: object) -> None:
        if self.journal is not None:
            self.journal.close()
            self.journal = None


def kill_orphans(journals: str, host: str) -> int:
    """Stop the process groups journaled by workers of `host` that are dead (run on
    that host: a worker starting, or the pytaskmake process); returns how many."""
    try:
        names = os.listdir(journals)
    except FileNotFoundError:
        return 0
    killed = 0
    for name in names:
        owner, _, rest = name.removeprefix(host + "-").partition("-")
        if name.startswith(host + "-") and rest and owner.isdigit() and not _alive(int(owner)):
            killed += kill_leftovers(Path(journals) / name)
    return killed


def _alive(pid: int) -> bool:
    """Alive and not a zombie (a worker just killed is one until its nanny reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):  # no /proc: alive, as far as we can tell
        return True


def run_on_worker(job: Job, spec: WorkerSpec, token: str) -> WorkerResult:
    """Run `job` here, once: a rerun of it (its first worker died) reports the loss."""
    worker = get_worker()
    here = (worker.address, threading.get_ident())
    if not _first_run(os.path.join(spec.tokens, token)):
        return WorkerResult(_not_run(job, LOST), *here)
    plugin = worker.plugins.get(spec.plugin)
    if isinstance(plugin, BuildPlugin) and plugin.stopped:
        return WorkerResult(_not_run(job, "interrupted"), *here)
    key = worker.get_current_task()

    def stop() -> bool:
        """The build stopped its jobs, or Dask gave up on this one (its client left)."""
        if isinstance(plugin, BuildPlugin) and plugin.stopped:
            return True
        state = worker.state.tasks.get(key)
        return state is None or state.state == "cancelled"

    journal = plugin.journal if isinstance(plugin, BuildPlugin) else None
    completion = run_job(
        job,
        spec.root,
        Path(spec.logs_dir),
        stop=stop,
        on_start=journal.record if journal is not None else None,
        fingerprint=True,
    )
    result = WorkerResult(completion, *here)
    packed = pickle.dumps(result)
    if len(packed) <= INLINE:
        worker.log_event(TOPIC, {"key": key, "result": packed})
    return result


def _first_run(token: str) -> bool:
    """Leave the job's token; False when it was there already (O_EXCL: atomic, on NFS too)."""
    try:
        os.close(os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def _not_run(job: Job, why: str) -> Completion:
    return Completion(job.name, 1, b"", time.time(), 0.0, 0, error=why)


def stop_build(plugin: str, dask_worker: object) -> None:
    """Run on every worker (Client.run) to stop a build's running jobs."""
    found = getattr(dask_worker, "plugins", {}).get(plugin)
    if isinstance(found, BuildPlugin):
        found.stopped = True


def sees(root: str) -> bool:
    """Run on every worker (Client.run): is the project folder there?"""
    return os.path.isdir(root)


def dask_setup(worker: object) -> None:
    """Preload of the workers of a LocalCluster that pytaskmake starts: their own
    process group, so a Ctrl-C at the terminal reaches pytaskmake, not them."""
    os.setpgid(0, 0)
