"""One job run to its end by a function call: what a Dask worker does with a job.

The job's process gets its own process group (a timeout or a stop kills all of
it), its output goes to its log or is captured (capture.py), and the call returns
the Completion, with the CPU time and peak memory of the job's processes and, when
asked, its outputs' fingerprints taken where it ran. The local executor runs many
jobs from one selector loop instead (local.py); the pieces both need live here.
"""

from __future__ import annotations

import errno
import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..action import CallableAction, ShellAction
from ..fingerprint import FileCache, Fingerprint
from ..resources import thread_environment
from .base import Completion, Job
from .capture import Capture
from .orphans import boot_clock

GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL
RESET_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGQUIT)
POLL_SECONDS = 0.1  # how often a running job asks `stop` whether to stop


def open_output(job: Job, root: str | None = None) -> tuple[int, int | None]:
    """Where the job's process writes: its log file (`root` joined to a relative
    path), or a pipe whose read end is returned too (task output is buffered)."""
    if job.log is not None:
        path = job.log if root is None else os.path.join(root, job.log)
        if job.attempt == 1:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), None
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, f"\n--- pytaskmake: attempt {job.attempt} ---\n".encode())
        return fd, None
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    return write_end, read_end


def not_started(job: Job, slot: int, started: float, exc: OSError) -> Completion:
    """The program could not be found or executed: report like a shell would."""
    code = 127 if isinstance(exc, FileNotFoundError) else 126
    what = "command not found" if code == 127 else f"cannot execute ({exc.strerror})"
    program = exc.filename or getattr(job.action, "argv", ("?",))[0]
    error = f"{what}: {program}"
    command = getattr(job.action, "command", None)
    if exc.errno == errno.E2BIG and command is not None:
        error = (
            f"cannot execute: its command is {len(command.encode()):,} bytes, over the 128 KiB "
            "Linux allows one argument (/bin/sh -c COMMAND); for many files ({inputs} of a "
            "fan-in) give an argv action, each file its own argument: "
            '["sh", "-c", \'cat "$@" > out.txt\', "sh", "{inputs}"]'
        )
    return Completion(job.name, code, b"", started, 0.0, slot, error=error)


def fork_callable(job: Job, action: CallableAction, out_fd: int, cwd: str | None = None) -> int:
    """Run a Python callable in a forked child with its output on `out_fd`, in `cwd`
    (None: where this process stands)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child already did it, or already exited
        return pid
    code = 1
    try:
        os.setpgid(0, 0)
        _child_setup(out_fd, cwd)
        os.environ.update(thread_environment({}, job.cpus))  # the slots it holds
        late = action.late_bound()
        if late is not None:
            print(f"pytaskmake: not run: {late}", file=sys.stderr)
            return 0  # (the finally exits with code 1)
        kwargs = {name: list(getattr(job, name)) for name in action.wants}
        result = action.function(**kwargs)
        code = RETURNED_FALSE if result is False else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:
        _print_user_traceback(exc)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    return 0  # not reached


RETURNED_FALSE = 121  # the exit status of a forked callable that returned False


def _print_user_traceback(exc: BaseException) -> None:
    """The traceback of a failing callable from the user's first frame on: the frames
    of pytaskmake's own that called it say nothing about the user's mistake."""
    import traceback  # (here, in the failing child: ~1.5 ms of every start otherwise)

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__)


_PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep


def _child_setup(out_fd: int, cwd: str | None) -> None:
    """In a forked child: default signals, output on `out_fd`, nothing else held open.

    New stdout/stderr objects: a thread of the parent (a Dask worker has several) may
    have held the old ones' locks at the fork, and no thread would ever release them.
    """
    signal.set_wakeup_fd(-1)
    for sig in RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.closerange(3, 1 << 16)  # the build lock, the state DB: not the task's to hold
    out, err = sys.__stdout__, sys.__stderr__
    sys.stdout = open(  # noqa: SIM115 (closed by _exit)
        1, "w", encoding=out.encoding if out else None, errors="replace", closefd=False
    )
    sys.stderr = open(  # noqa: SIM115
        2, "w", 1, err.encoding if err else None, "backslashreplace", closefd=False
    )
    if cwd is not None:
        os.chdir(cwd)


def fingerprint_outputs(outputs: tuple[str, ...], root: str) -> dict[str, Fingerprint]:
    """The outputs that exist, hashed here (where the job wrote them)."""
    files = FileCache()
    found = {}
    for path in outputs:
        fp = files.fingerprint(os.path.join(root, path))
        if fp is not None:
            found[path] = fp
    return found


def _never() -> bool:
    return False


def run_job(
    job: Job,
    root: str,
    logs_dir: Path | None = None,
    *,
    stop: Callable[[], bool] = _never,
    on_start: Callable[[int, float], None] | None = None,
    grace: float = GRACE_SECONDS,
    fingerprint: bool = False,
) -> Completion:
    """Run `job` in the folder `root` until it ends; never raises for the job's sake.

    `stop` is asked every POLL_SECONDS: when it says so the job's process group gets
    SIGTERM, then SIGKILL after `grace`, and the job fails as "interrupted".
    `on_start` receives the process group's id and the boot clock read before it was
    started (a journal of them, see orphans.py).
    `logs_dir`: where the whole output of a job without a log file is kept.
    """
    started, mono = time.time(), time.monotonic()
    try:
        out_fd, pipe = open_output(job, root)
    except OSError as exc:  # an unwritable log: as the build loop says it locally
        where = f": {exc.filename}" if exc.filename else ""
        error = f"could not start: {exc.strerror}{where}"
        return Completion(job.name, 1, b"", started, 0.0, 0, error=error)
    since = boot_clock()
    try:
        process = _spawn(job, root, out_fd)
    except OSError as exc:
        if pipe is not None:
            os.close(pipe)
        return not_started(job, 0, started, exc)
    finally:
        os.close(out_fd)
    if on_start is not None:
        on_start(process.pid, since)
    capture = Capture(logs_dir if pipe is not None else None, job.name, job.attempt)
    follow = _Follow(process, pipe, capture, job.timeout, stop, grace)
    status, usage = follow.run()
    output, full_log = follow.capture.finish()
    completion = Completion(
        job.name,
        os.waitstatus_to_exitcode(status),
        output,
        started,
        time.monotonic() - mono,
        0,
        timed_out=follow.timed_out,
        error=follow.error,
        full_log=full_log,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        max_rss=usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024),
    )
    if fingerprint and completion.returncode == 0 and completion.error is None:
        completion.fingerprints = fingerprint_outputs(job.outputs, root)
    return completion


class _Process:
    """A started job: its pid (= its process group), and the Popen object that must
    live until we reap it (a dropped Popen may be reaped by the next Popen elsewhere)."""

    __slots__ = ("pid", "popen")

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid, self.popen = pid, popen


def _spawn(job: Job, root: str, out_fd: int) -> _Process:
    action = job.action
    if isinstance(action, CallableAction):
        return _Process(fork_callable(job, action, out_fd, root))
    argv = ["/bin/sh", "-c", action.command] if isinstance(action, ShellAction) else action.argv
    popen = subprocess.Popen(  # (Popen has the working-directory argument posix_spawn lacks)
        list(argv),
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=out_fd,
        stderr=out_fd,
        env=thread_environment(os.environ, job.cpus),  # the slots it holds
        start_new_session=True,  # its own process group, away from any terminal
    )
    return _Process(popen.pid, popen)


class _Follow:
    """Read a running job's output, enforce its timeout and `stop`, and reap it."""

    def __init__(
        self,
        process: _Process,
        pipe: int | None,
        capture: Capture,
        timeout: float | None,
        stop: Callable[[], bool],
        grace: float,
    ) -> None:
        self.process, self.pipe, self.capture = process, pipe, capture
        self.stop, self.grace, self.timeout = stop, grace, timeout
        now = time.monotonic()
        self.deadline = now + timeout if timeout is not None else None
        self.kill_at: float | None = None
        self.error: str | None = None
        self.timed_out = False

    def run(self) -> tuple[int, resource.struct_rusage]:
        """Until the process exits: (its wait status, its resource usage)."""
        selector = selectors.DefaultSelector()
        pidfd = _pidfd(self.process.pid)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ, "exit")
        if self.pipe is not None:
            selector.register(self.pipe, selectors.EVENT_READ, "out")
        try:
            while True:
                for key, _ in selector.select(self._wait_limit(pidfd is None)):
                    if key.data == "out" and self._read() is False:
                        selector.unregister(key.fd)
                        self._close_pipe()
                pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
                if pid:
                    break
                self._enforce(time.monotonic())
        finally:
            selector.close()
            if pidfd is not None:
                os.close(pidfd)
        if self.process.popen is not None:
            self.process.popen.returncode = os.waitstatus_to_exitcode(status)
        self._drain()
        return status, usage

    def _wait_limit(self, polling: bool) -> float:
        now = time.monotonic()
        limit = 0.01 if polling else POLL_SECONDS
        for moment in (self.deadline, self.kill_at):
            if moment is not None:
                limit = min(limit, max(0.0, moment - now))
        return limit

    def _read(self) -> bool | None:
        """One read of the pipe: False at its end (closed), None when it held nothing."""
        assert self.pipe is not None
        chunk = self.capture.read_from(self.pipe)
        return None if chunk is None else bool(chunk)

    def _close_pipe(self) -> None:
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None

    def _drain(self) -> None:
        """What the exited process left in the pipe (a grandchild may hold it open)."""
        while self.pipe is not None and self._read():
            pass
        self._close_pipe()

    def _enforce(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None
            self.timed_out = True
            self.error = f"timed out after {self.timeout:g}s"
            self._terminate(now)
        elif self.kill_at is None and self.error is None and self.stop():
            self.error = "interrupted"
            self.deadline = None
            self._terminate(now)
        elif self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            _killpg(self.process.pid, signal.SIGKILL)

    def _terminate(self, now: float) -> None:
        _killpg(self.process.pid, signal.SIGTERM)
        self.kill_at = now + self.grace


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when `pid` exits (Linux); None: poll."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
