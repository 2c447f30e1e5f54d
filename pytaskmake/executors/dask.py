"""Run a build's jobs on a Dask cluster: a LocalCluster it starts, or a scheduler.

The pytaskmake process keeps the graph, the staleness decisions, the state and the
run cache; Dask workers only run jobs (dask_worker.py), in the project folder on a
shared filesystem. A task whose worker dies fails and never runs twice in a build:
a scheduler started here allows no failures, and any other scheduler's reruns find
the job's token (dask_worker.py). Needs the optional extra: pytaskmake[dask].
"""

from __future__ import annotations

import heapq
import logging
import os
import pickle
import select
import shutil
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..action import CallableAction
from ..errors import ExecutorError
from .base import Completion, Job
from .dask_resources import first_unsatisfiable, resources_of

INSTALL = "pip install 'pytaskmake[dask]'"


class DaskCluster:
    """The connection to Dask, made by the first build that runs something and kept
    for the next ones: `executor` is an engine's executor factory (engine.py)."""

    def __init__(
        self,
        scheduler: str | None = None,
        scheduler_file: str | None = None,
        jobs: int | None = None,
    ) -> None:
        """`scheduler` (tcp://HOST:PORT) or `scheduler_file` (as `dask scheduler` and
        dask-jobqueue write it): an existing scheduler; neither: start a LocalCluster
        of one worker with `jobs` threads (default: every CPU). `jobs` also bounds
        how many jobs are submitted at once (default: every worker thread)."""
        self.scheduler, self.scheduler_file, self.jobs = scheduler, scheduler_file, jobs
        self.client: Any = None
        self._cluster: Any = None

    def executor(self, jobs: int, state_dir: Path) -> DaskExecutor:
        """A build's executor; its jobs run in the folder the engine stands in."""
        if self.client is None:
            self._connect(self.jobs or jobs)
        threads = sum(self.client.nthreads().values())
        return DaskExecutor(self.client, self.jobs or max(1, threads), state_dir, os.getcwd())

    def _connect(self, jobs: int) -> None:
        try:
            import dask
            from distributed import Client
        except ImportError:
            raise ExecutorError(f"--executor dask needs Dask: {INSTALL}") from None
        where = self.scheduler_file or self.scheduler
        timeout = dask.config.get("distributed.comm.timeouts.connect")
        try:
            if self.scheduler_file is not None:
                if not os.path.isfile(self.scheduler_file):
                    raise ExecutorError(
                        f"no scheduler file {self.scheduler_file} (is the scheduler running?)"
                    )
                self.client = Client(scheduler_file=self.scheduler_file, set_as_default=False)
            elif self.scheduler is not None:
                self.client = Client(self.scheduler, set_as_default=False)
            else:
                self._cluster = _local_cluster(jobs)
                self.client = Client(self._cluster, set_as_default=False)
            self.client.wait_for_workers(1, timeout=dask.utils.parse_timedelta(timeout))
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            what = f"the Dask scheduler at {where}" if where else "a local Dask cluster"
            raise ExecutorError(f"cannot use {what}: {exc or type(exc).__name__}") from None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _local_cluster(jobs: int) -> Any:
    """One worker process with `jobs` threads, holding "cpus" = `jobs` and "mem" =
    this machine's memory; a lost worker fails its tasks (no failure allowed)."""
    import dask
    from distributed import LocalCluster

    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    settings = {
        "distributed.scheduler.allowed-failures": 0,
        # nobody reads its sampling profiler, which costs CPU on every task (measured
        # here: 7.5-8 ms of worker CPU per trivial task without it, 9-13 ms with)
        "distributed.worker.profile.enabled": False,
    }
    with dask.config.set(settings):
        return LocalCluster(
            n_workers=1,
            threads_per_worker=jobs,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            memory_limit=0,  # the worker holds no data: its jobs' memory is theirs
            resources={"cpus": jobs, "mem": memory},
            silence_logs=logging.CRITICAL,  # a lost worker is reported as its task's failure
            preload=["pytaskmake.executors.dask_worker"],  # (dask_setup: own process group)
        )


class DaskExecutor:
    """At most `jobs` jobs submitted to a Dask cluster at once."""

    def __init__(self, client: Any, jobs: int, state_dir: Path, root: str) -> None:
        from .dask_worker import TOPIC, BuildPlugin, WorkerSpec

        self.jobs = jobs
        self._client = client
        self._root = root
        build = uuid.uuid4().hex[:12]
        folder = state_dir.resolve() / "dask"
        self._tokens = folder / "tokens" / build
        self._tokens.mkdir(parents=True, exist_ok=True)
        self._spec = WorkerSpec(
            root,
            str(state_dir.resolve() / "logs"),
            str(self._tokens),
            str(folder / "running"),
            f"pytaskmake-{build}",
        )
        try:
            client.register_plugin(BuildPlugin(self._spec.journals), name=self._spec.plugin)
        except (ImportError, AttributeError) as exc:  # the workers cannot unpickle it
            shutil.rmtree(self._tokens, ignore_errors=True)
            raise ExecutorError(
                f"the Dask workers cannot run pytaskmake ({exc}): {INSTALL}"
            ) from None
        self._futures: dict[str, Any] = {}  # key -> future, until collected
        self._slot_of: dict[str, tuple[int, str]] = {}  # key -> (slot, task name)
        self._slots = list(range(jobs))
        self._finished: deque[Any] = deque()  # appended by Dask's callback thread
        self._pushed: deque[tuple[str, bytes]] = deque()  # appended by Dask's event loop
        self._unsent: list[Completion] = []
        self._rows: dict[tuple[str, int], int] = {}  # (worker, thread) -> trace row
        self._count = 0
        self._cpus_everywhere: bool | None = None
        self._mem_anywhere = False  # (with _cpus_everywhere, from the workers' resources)
        self._wake_r, self._wake_w = os.pipe()
        self._wake_lock = threading.Lock()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._old_wakeup: int | None = None
        if threading.current_thread() is threading.main_thread():
            self._old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        client.subscribe_topic(TOPIC, self._on_event)

    # --- before anything runs ---------------------------------------------------------

    def check(self, jobs: Iterable[Job]) -> None:
        """Every worker sees the project folder, and each job's resources are held by
        some worker (ExecutorError naming the first that no worker has)."""
        from .dask_worker import sees

        for address, seen in self._client.run(sees, self._root, on_error="return").items():
            if isinstance(seen, BaseException):
                raise ExecutorError(
                    f"Dask worker {address} cannot run pytaskmake "
                    f"({type(seen).__name__}: {seen}): {INSTALL} where the workers run"
                )
            if seen is not True:
                raise ExecutorError(
                    f"Dask worker {address} does not see the project folder {self._root}: "
                    "the workers need it on a shared filesystem, at the same path"
                )
        workers = self._worker_resources()
        refused = first_unsatisfiable(jobs, workers, self._cpus())
        if refused is not None:
            raise ExecutorError(refused[1], refused[0])

    def _worker_resources(self) -> dict[str, dict[str, float]]:
        info = self._client.scheduler_info(n_workers=-1)["workers"]
        return {address: dict(w.get("resources") or {}) for address, w in info.items()}

    def _cpus(self) -> bool:
        if self._cpus_everywhere is None:
            found = self._worker_resources().values()
            self._cpus_everywhere = bool(found) and all("cpus" in r for r in found)
            self._mem_anywhere = any("mem" in r for r in found)
        return self._cpus_everywhere

    # --- running ------------------------------------------------------------------------

    def running(self) -> int:
        """Jobs submitted and not yet collected by wait()."""
        return len(self._futures) + len(self._unsent)

    def submit(self, job: Job) -> int:
        from .dask_worker import run_on_worker

        slot = heapq.heappop(self._slots)
        self._count += 1
        key = f"{job.name} #{job.attempt} {self._spec.plugin}-{self._count}"
        unsendable = _unpicklable(job)
        if unsendable is not None:
            heapq.heappush(self._slots, slot)
            why = f"cannot be sent to the Dask workers: {unsendable}"
            self._unsent.append(Completion(job.name, 1, b"", time.time(), 0.0, slot, error=why))
            return slot
        future = self._client.submit(
            run_on_worker,
            job,
            self._spec,
            str(self._count),
            key=key,
            pure=False,
            retries=0,
            resources=resources_of(job, self._cpus(), self._mem_anywhere) or None,
        )
        self._futures[key] = future
        self._slot_of[key] = (slot, job.name)
        future.add_done_callback(self._on_done)
        return slot

    def _on_done(self, future: Any) -> None:
        """(Dask's callback thread) Queue it and wake wait()."""
        self._finished.append(future)
        self._wake()

    def _on_event(self, event: tuple[float, Any]) -> None:
        """(Dask's event loop) A completion pushed by a worker (see dask_worker.TOPIC);
        those of other builds sharing the scheduler are not ours."""
        message = event[1]
        if isinstance(message, dict) and message.get("key") in self._futures:
            self._pushed.append((message["key"], message["result"]))
            self._wake()

    def _wake(self) -> None:
        # (a callback may come after close(): a future cancelled then, or a worker's
        # late word; the pipe is gone, and its number may be another file's by now)
        with self._wake_lock:
            if self._wake_w < 0:
                return
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:
                pass  # the pipe is full: wait() will wake anyway

    def wait(self, timeout: float | None) -> list[Completion]:
        if not self._finished and not self._unsent and not self._pushed:
            select.select([self._wake_r], [], [], timeout)  # a completion, or a signal
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
        done, self._unsent = self._unsent, []
        while self._pushed:
            key, packed = self._pushed.popleft()
            if key in self._futures:  # (not already collected)
                done.append(self._completion(key, pickle.loads(packed)))
        futures = []
        while self._finished:
            futures.append(self._finished.popleft())
        if futures:
            done.extend(self._collect(futures))
        return done

    def _collect(self, futures: list[Any]) -> list[Completion]:
        """The completions of finished futures, fetched in one round trip; futures are
        released at once (a result left on a worker is recomputed if it dies)."""
        futures = [f for f in futures if f.key in self._futures]  # (reported once)
        finished = [f for f in futures if f.status == "finished"]
        others = [f for f in futures if f.status != "finished"]
        try:
            results = self._client.gather(finished) if finished else []
        except Exception:  # a worker holding one died meanwhile: one by one
            results = [self._result(f) for f in finished]
        done = []
        for future, result in zip(finished, results, strict=True):
            done.append(self._completion(future.key, result))
        done.extend(self._failed(future) for future in others)
        return done

    def _result(self, future: Any) -> Any:
        try:
            return future.result()
        except Exception as exc:
            return exc

    def _completion(self, key: str, result: Any) -> Completion:
        from .dask_worker import LOST, WorkerResult

        slot, name = self._release(key)
        if not isinstance(result, WorkerResult):
            return self._lost_or_error(name, slot, result)
        completion = result.completion
        completion.slot = self._rows.setdefault((result.worker, result.thread), len(self._rows))
        if completion.error == LOST:
            self._kill_orphans()
        return completion

    def _failed(self, future: Any) -> Completion:
        """A future that erred (a KilledWorker: its worker died) or was cancelled."""
        if future.status == "cancelled":
            error: Any = "cancelled by Dask (its scheduler restarted, or is gone?)"
        else:
            error = future.exception()
        slot, name = self._release(future.key)
        return self._lost_or_error(name, slot, error)

    def _lost_or_error(self, name: str, slot: int, error: Any) -> Completion:
        from distributed import KilledWorker

        if isinstance(error, KilledWorker):
            self._kill_orphans()
            why = f"its worker died while it ran ({error.last_worker.address}); not run again"
        elif isinstance(error, BaseException):
            why = f"Dask could not run it: {type(error).__name__}: {error}"
        else:
            why = str(error)
        return Completion(name, 1, b"", time.time(), 0.0, slot, error=why)

    def _release(self, key: str) -> tuple[int, str]:
        """Forget a collected future (Dask drops its result) and free its slot."""
        self._futures.pop(key).release()
        slot, name = self._slot_of.pop(key)
        heapq.heappush(self._slots, slot)
        return slot, name

    def _kill_orphans(self) -> None:
        """A worker died: stop what it left running, if it ran on this host (a worker
        started there later does it elsewhere), before its outputs are put back."""
        from .dask_worker import kill_orphans

        kill_orphans(self._spec.journals, socket.gethostname())

    def terminate(self) -> None:
        """Stop every running job: each worker terminates its jobs' process groups
        (SIGKILL after 5 s) and reports them interrupted; queued ones never start."""
        from .dask_worker import stop_build

        if self._futures:
            self._client.run(stop_build, self._spec.plugin, on_error="ignore")

    def close(self) -> None:
        if self._futures:  # (an error in the build loop) nothing of ours may run on
            self.terminate()
            self._client.cancel(list(self._futures.values()))
            self._futures.clear()
        from .dask_worker import TOPIC

        self._client.unsubscribe_topic(TOPIC)
        try:
            self._client.unregister_worker_plugin(self._spec.plugin)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self._tokens, ignore_errors=True)
        if self._old_wakeup is not None:
            signal.set_wakeup_fd(self._old_wakeup)
        with self._wake_lock:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_w = -1


def _unpicklable(job: Job) -> str | None:
    """Why a job's callable cannot be pickled (Dask would log a traceback), or None."""
    if not isinstance(job.action, CallableAction):
        return None
    import cloudpickle  # (what Dask pickles with)

    try:
        cloudpickle.dumps(job.action.function)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
