"""Run jobs as local processes, each in its own process group, from one thread.

Commands start through posix_spawn (the cheapest fork+exec Python has), Python
callables in a forked child. One selector waits on every child's pidfd and output
pipe at once, so there are no reader threads, output never interleaves, and a
timeout or Ctrl-C can kill a task's whole process group. Each child is reaped
with wait4, whose rusage gives the task's CPU time and peak memory for free.
"""

from __future__ import annotations

import heapq
import math
import os
import resource
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..action import ArgvAction, CallableAction, ShellAction
from ..resources import thread_environment
from .base import Completion, Job
from .capture import Capture
from .job import GRACE_SECONDS, RESET_SIGNALS, fork_callable, not_started, open_output
from .orphans import ProcessJournal, boot_clock


@dataclass(slots=True)
class _Running:
    job: Job
    pid: int
    slot: int
    started: float
    start_mono: float
    pidfd: int | None
    pipe: int | None
    capture: Capture
    deadline: float | None = None  # monotonic time to send SIGTERM (timeout)
    kill_at: float | None = None  # monotonic time to send SIGKILL
    error: str | None = None
    timed_out: bool = False
    floor: int = 0  # our own peak RSS when it started: its rusage cannot tell less


class LocalExecutor:
    """At most `jobs` processes at once on this machine."""

    def __init__(
        self,
        jobs: int,
        grace: float = GRACE_SECONDS,
        journal: ProcessJournal | None = None,
        logs_dir: Path | None = None,
    ) -> None:
        """`logs_dir`: where the whole output of each task without a log file is kept
        (see capture.py); None keeps output in memory only."""
        self.jobs = jobs
        self._logs_dir = logs_dir
        self.grace = grace
        self._selector = _Poller()
        self._running: dict[int, _Running] = {}
        self._slots = list(range(jobs))
        self._done: list[Completion] = []
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self._selector.register(self._wake_r, None)
        self._use_pidfd = hasattr(os, "pidfd_open")
        # os.environ re-encodes itself on every spawn; one copy per thread count
        self._envs: dict[int, dict[str, str]] = {}
        self._journal = journal
        self._on_output: Callable[[str, bytes], None] | None = None

    def check(self, jobs: Iterable[Job]) -> None:
        """Every job can run here (`jobs` is not even read)."""

    def stream(self, on_output: Callable[[str, bytes], None]) -> None:
        """Hand each task's output to `on_output` as it is read (--stream)."""
        self._on_output = on_output

    def running(self) -> int:
        """Jobs submitted and not yet collected by wait() (a job that could not start counts)."""
        return len(self._running) + len(self._done)

    def submit(self, job: Job) -> int:
        slot = heapq.heappop(self._slots)
        out_fd, pipe_r = open_output(job)
        started, mono = time.time(), time.monotonic()
        since = boot_clock() if self._journal is not None else 0.0
        try:
            pid = self._start(job, out_fd)
        except OSError as exc:
            heapq.heappush(self._slots, slot)
            self._close_quietly(pipe_r)
            self._done.append(not_started(job, slot, started, exc))
            return slot
        finally:
            os.close(out_fd)
        if self._journal is not None:
            self._journal.record(pid, since)
        capture = Capture(self._logs_dir if pipe_r else None, job.name, job.attempt)
        proc = _Running(job, pid, slot, started, mono, self._pidfd(pid), pipe_r, capture)
        proc.floor = _own_peak()
        if job.timeout is not None:
            proc.deadline = mono + job.timeout
        self._running[pid] = proc
        if proc.pidfd is not None:
            self._selector.register(proc.pidfd, ("exit", pid))
        if pipe_r is not None:
            self._selector.register(pipe_r, ("out", pid))
        return slot

    def _start(self, job: Job, out_fd: int) -> int:
        action = job.action
        if isinstance(action, CallableAction):
            return fork_callable(job, action, out_fd)
        files = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_fd, 1),
            (os.POSIX_SPAWN_DUP2, out_fd, 2),
        ]
        options = {"file_actions": files, "setpgroup": 0, "setsigdef": RESET_SIGNALS}
        env = self._envs.get(job.cpus)
        if env is None:
            env = self._envs[job.cpus] = thread_environment(os.environ, job.cpus)
        if isinstance(action, ShellAction):
            return os.posix_spawn("/bin/sh", ["/bin/sh", "-c", action.command], env, **options)
        assert isinstance(action, ArgvAction)
        return os.posix_spawnp(action.argv[0], list(action.argv), env, **options)

    def _pidfd(self, pid: int) -> int | None:
        if not self._use_pidfd:
            return None
        try:
            return os.pidfd_open(pid)
        except OSError:  # kernel without pidfds: fall back to polling
            self._use_pidfd = False
            return None

    def wait(self, timeout: float | None) -> list[Completion]:
        if not self._done and self._running:
            for data in self._selector.select(self._select_timeout(timeout)):
                self._dispatch(data)
            if not self._use_pidfd:
                self._poll_exits()
            self._enforce_deadlines()
        done, self._done = self._done, []
        return done

    def _select_timeout(self, timeout: float | None) -> float | None:
        now = time.monotonic()
        limits = [timeout] if timeout is not None else []
        for proc in self._running.values():
            for moment in (proc.deadline, proc.kill_at):
                if moment is not None:
                    limits.append(max(0.0, moment - now))
        if not self._use_pidfd:
            limits.append(0.01)
        return min(limits) if limits else None

    def _dispatch(self, data: tuple[str, int] | None) -> None:
        if data is None:  # a signal arrived: drain the wake-up pipe, let the caller look
            self._drain_wakeups()
            return
        kind, pid = data
        proc = self._running.get(pid)
        if proc is None:
            return
        if kind == "out":
            self._read_output(proc)
        else:
            _, status, usage = os.wait4(pid, 0)
            self._reap(proc, status, usage)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _read_output(self, proc: _Running) -> bool:
        """Read what the pipe holds; False when it held nothing (yet)."""
        assert proc.pipe is not None
        chunk = proc.capture.read_from(proc.pipe)
        if chunk is None:
            return False
        if chunk:
            if self._on_output is not None:
                self._on_output(proc.job.name, chunk)
        else:
            self._selector.unregister(proc.pipe)
            os.close(proc.pipe)
            proc.pipe = None
        return True

    def _poll_exits(self) -> None:
        for pid, proc in list(self._running.items()):
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                self._reap(proc, status, usage)

    def _reap(self, proc: _Running, status: int, usage: resource.struct_rusage) -> None:
        """The child exited: collect what is left of its output and report it."""
        while proc.pipe is not None:
            read = self._read_output(proc)
            if proc.pipe is not None and not read:
                self._selector.unregister(proc.pipe)  # a grandchild holds the pipe open
                os.close(proc.pipe)
                proc.pipe = None
        if proc.pidfd is not None:
            self._selector.unregister(proc.pidfd)
            os.close(proc.pidfd)
        del self._running[proc.pid]
        heapq.heappush(self._slots, proc.slot)
        output, full_log = proc.capture.finish()
        self._done.append(
            Completion(
                name=proc.job.name,
                returncode=os.waitstatus_to_exitcode(status),
                output=output,
                full_log=full_log,
                started=proc.started,
                duration=time.monotonic() - proc.start_mono,
                slot=proc.slot,
                timed_out=proc.timed_out,
                error=proc.error,
                cpu_seconds=usage.ru_utime + usage.ru_stime,
                max_rss=_peak_above(usage.ru_maxrss, proc.floor),
            )
        )

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for proc in self._running.values():
            if proc.deadline is not None and now >= proc.deadline:
                proc.deadline = None
                proc.timed_out = True
                proc.error = f"timed out after {proc.job.timeout:g}s"
                self._signal(proc, signal.SIGTERM)
                proc.kill_at = now + self.grace
            elif proc.kill_at is not None and now >= proc.kill_at:
                proc.kill_at = None
                self._signal(proc, signal.SIGKILL)

    def _signal(self, proc: _Running, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        now = time.monotonic()
        for proc in self._running.values():
            if proc.kill_at is not None:
                continue  # already terminating: another Ctrl-C must not postpone SIGKILL
            proc.error = proc.error or "interrupted"
            proc.deadline = None
            self._signal(proc, signal.SIGTERM)
            proc.kill_at = now + self.grace

    def close(self) -> None:
        if self._journal is not None and not self._running:
            self._journal.close()
        signal.set_wakeup_fd(self._old_wakeup)
        self._selector.close()
        self._close_quietly(self._wake_r)
        self._close_quietly(self._wake_w)

    @staticmethod
    def _close_quietly(fd: int | None) -> None:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


_RSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux


def _own_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_above(maxrss: int, floor: int) -> int:
    """A child's peak RSS in bytes, or 0 when it cannot be told: Linux starts a
    child's high-water mark at its parent's (posix_spawn shares our memory until the
    exec; fork copies it), so a peak at or below ours at spawn may be ours."""
    return maxrss * _RSS_UNIT if maxrss > floor else 0


class _Poller:
    """The build loop's file descriptors (task pipes and pidfds, the signal wake-up
    pipe), each with what it stands for, waited on for reading with poll(2). The
    selectors module's bookkeeping (a key object per registration, a lookup per
    event) cost ~50 us of the loop per task: two registrations, two removals, the
    waits; a poll object takes one C call each."""

    def __init__(self) -> None:
        self._poll = select.poll()
        self._data: dict[int, tuple[str, int] | None] = {}

    def register(self, fd: int, data: tuple[str, int] | None) -> None:
        self._poll.register(fd, select.POLLIN)
        self._data[fd] = data

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)
        del self._data[fd]

    def select(self, timeout: float | None) -> list[tuple[str, int] | None]:
        """What stands behind each descriptor ready to read (or hung up), waiting at
        most `timeout` seconds (None: until one is)."""
        ms = None if timeout is None else math.ceil(max(timeout, 0.0) * 1000)
        data = self._data
        return [data[fd] for fd, _ in self._poll.poll(ms) if fd in data]

    def close(self) -> None:
        for fd in list(self._data):
            self._poll.unregister(fd)
        self._data.clear()
