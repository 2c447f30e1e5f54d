"""The executor interface: submit jobs, wait for completions, terminate.

The build loop talks only to this interface, so local processes and a Dask
cluster are interchangeable and the loop never knows which one runs its jobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..action import Action
from ..fingerprint import Fingerprint

if TYPE_CHECKING:  # (only traced builds need it: tracing.py)
    from ..access import Access


@dataclass(slots=True)
class Job:
    """One attempt at running a task's action."""

    name: str
    action: Action
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    log: str | None = None
    timeout: float | None = None
    attempt: int = 1  # a retry appends to the log instead of replacing it
    cpus: int = 1  # slots of -j this job holds (scheduling)
    mem: int = 0  # bytes it may use at its peak; 0 = unknown (scheduling)
    resources: tuple[tuple[str, float], ...] = ()  # named resources held, e.g. (("gpu", 1.0),)


@dataclass(slots=True)
class Completion:
    """How a job ended. `output` is its combined stdout+stderr (empty when logged)."""

    name: str
    returncode: int
    output: bytes
    started: float
    duration: float
    slot: int
    timed_out: bool = False
    # its outputs as hashed where it ran (a Dask worker; a missing one is absent), or
    # None: the build loop hashes them itself
    fingerprints: dict[str, Fingerprint] | None = None
    error: str | None = None  # why it could not start or was killed, in words
    full_log: str | None = None  # the file holding all its output (see capture.py)
    access: Access | None = None  # the files it touched, when traced (see tracing.py)
    cpu_seconds: float = 0.0  # user+system CPU time of the job's processes (rusage)
    max_rss: int = 0  # peak resident set size in bytes (rusage; 0 = unknown)


class Executor(Protocol):
    jobs: int

    def check(self, jobs: Iterable[Job]) -> None:
        """Before anything runs: raise ExecutorError naming the first job that this
        executor can never run (a resource no worker has). May leave `jobs` unread."""
        ...

    def submit(self, job: Job) -> int:
        """Start `job` now (the caller keeps at most `jobs` running); returns its slot."""
        ...

    def running(self) -> int: ...

    def wait(self, timeout: float | None) -> list[Completion]:
        """Completions so far; may return [] early when a signal arrives."""
        ...

    def terminate(self) -> None:
        """Stop every running job (whole process groups), escalating to SIGKILL."""
        ...

    def close(self) -> None: ...
