"""Tracing the files each job touches, behind the executor interface.

A TracingExecutor wraps any executor. A traced command runs under strace (see
strace.py); a traced callable runs with an audit hook in its forked child, and
with strace attached to that child where strace is installed (so the processes it
starts are seen too). When the job completes, its trace is read back and attached
to its Completion as an Access. The build loop, the scheduler and the executor
underneath know nothing of it: they see one more executor.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import strace
from .access import Access, Recorder, Scope
from .action import ArgvAction, CallableAction, ShellAction
from .errors import MissingTool
from .executors.base import Completion, Executor, Job
from .taskfile import Task

_ATTACH_SECONDS = 5.0  # strace attaching to a callable's child: give up after this


class TracingExecutor:
    """Runs the jobs `traced(name)` selects under a trace; passes others through.

    `accesses`: what each traced job that succeeded touched, by task name, when
    `keep` (the lint report reads them after the build).
    """

    def __init__(
        self,
        inner: Executor,
        scope: Scope,
        folder: Path,
        traced: Callable[[str], bool],
        strace_path: str | None,
        keep: bool = True,
    ) -> None:
        self.inner, self.scope, self.folder = inner, scope, folder
        self.jobs = inner.jobs
        self._traced, self._strace = traced, strace_path
        self._pending: dict[str, tuple[Path, Path | None]] = {}  # name -> trace files
        self._numbers = itertools.count()
        self._keep = keep
        self.accesses: dict[str, Access] = {}

    def submit(self, job: Job) -> int:
        if not self._traced(job.name):
            return self.inner.submit(job)
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"{os.getpid()}-{next(self._numbers)}"
        action = job.action
        audit: Path | None = None
        if isinstance(action, CallableAction):
            audit = stem.with_suffix(".audit")
            wrapped: Any = _traced_callable(action, str(audit), str(stem), self.scope, self._strace)
        elif self._strace is None:  # (the engine said so): run it as it is
            return self.inner.submit(job)
        else:
            wrapped = ArgvAction(strace.command(self._strace, str(stem), _argv(action)))
        self._pending[job.name] = (stem, audit)
        try:
            return self.inner.submit(dataclasses.replace(job, action=wrapped))
        except BaseException:
            del self._pending[job.name]
            raise

    def stream(self, on_output: Callable[[str, bytes], None]) -> None:
        """Live output, when the executor underneath has it (see local.py)."""
        inner = getattr(self.inner, "stream", None)
        if inner is not None:
            inner(on_output)

    def check(self, jobs: Iterable[Job]) -> None:
        """The executor underneath says whether it can ever run these (see base.py)."""
        self.inner.check(jobs)

    def running(self) -> int:
        return self.inner.running()

    def wait(self, timeout: float | None) -> list[Completion]:
        return [self._read(c) for c in self.inner.wait(timeout)]

    def _read(self, c: Completion) -> Completion:
        files = self._pending.pop(c.name, None)
        if files is None:
            return c
        access = read_traces(*files, scope=self.scope)
        if self._keep and c.returncode == 0 and c.error is None:
            self.accesses[c.name] = access
        return dataclasses.replace(c, access=access)

    def terminate(self) -> None:
        self.inner.terminate()

    def close(self) -> None:
        self.inner.close()
        try:
            self.folder.rmdir()  # empty unless a job is still running
        except OSError:
            pass


def _argv(action: ShellAction | ArgvAction) -> tuple[str, ...]:
    """The command line an action runs, as the local executor starts it."""
    return ("/bin/sh", "-c", action.command) if isinstance(action, ShellAction) else action.argv


def read_traces(stem: Path, audit: Path | None, scope: Scope) -> Access:
    """What a job's trace files say (and remove them): strace's output at `stem` (a
    callable's may be absent: strace not installed) and an audit record."""
    found = Access(blind="" if audit is not None else "no trace was written")
    try:
        found = strace.read_trace(str(stem), scope.root, scope)
        stem.unlink()
    except FileNotFoundError:
        pass
    except (OSError, UnicodeError) as exc:
        found = Access(blind=f"its trace could not be read ({exc})")
    if audit is not None:
        try:
            found = Access.unpack(audit.read_bytes()).merged(found)
            audit.unlink()
        except (OSError, ValueError) as exc:
            found = dataclasses.replace(found, blind=f"its audit record was lost ({exc})")
    return found


# --- choosing what to trace ----------------------------------------------------------


def wrap(
    executor: Executor,
    tasks: Mapping[str, Task],
    names: Iterable[str],
    scope: Scope,
    state_dir: Path,
    everything: str,
    notice: Callable[[str], None] = lambda message: None,
) -> Executor:
    """`executor`, traced where asked: every job when `everything` names the option
    asking it ("--lint", "--trace-deps"; "" for none), else the jobs of tasks
    declared with trace=True. MissingTool when the option needs strace for a
    command and strace is not installed; a task's trace=True without it only
    loses its commands' traces (`notice` says so).
    """
    chosen = [n for n in names if everything or tasks[n].trace]
    if not chosen:
        return executor
    found = strace.find_strace()
    commands = [n for n in chosen if not isinstance(tasks[n].action, CallableAction)]
    if found is None and commands:
        if everything:
            raise MissingTool("strace", f"{everything} (to see what commands read and write)")
        notice(
            f"strace is not installed: the commands of {len(commands)} task(s) declared "
            f"with trace=True run untraced (first: {commands[0]!r}); install strace"
        )
    traced = (lambda name: True) if everything else (lambda name: tasks[name].trace)
    keep = everything == "--lint"
    return TracingExecutor(executor, scope, state_dir / "traces", traced, found, keep)


def traced_of(executor: Executor) -> dict[str, Access]:
    """What the traced jobs of a build touched (empty when nothing was traced)."""
    return executor.accesses if isinstance(executor, TracingExecutor) else {}


# --- a callable, traced in its forked child -------------------------------------------


class _TracedCallable(CallableAction):
    """A callable's action, run under an audit hook: same signature, same checks."""

    __slots__ = ("original",)

    def __init__(self, original: CallableAction, function: Callable[..., Any]) -> None:
        super().__init__(function, original.wants, original.bound, original.order)
        self._signature = original._signature  # the same task: the same signature
        self.original = original

    def late_bound(self) -> str | None:
        return self.original.late_bound()


def _traced_callable(
    action: CallableAction, audit: str, stem: str, scope: Scope, strace_path: str | None
) -> _TracedCallable:
    def run(**kwargs: Any) -> Any:
        return _run_traced(action.function, kwargs, audit, stem, scope, strace_path)

    return _TracedCallable(action, run)


def _run_traced(
    function: Callable[..., Any],
    kwargs: dict[str, Any],
    audit: str,
    stem: str,
    scope: Scope,
    strace_path: str | None,
) -> Any:
    """In the forked child: run `function` with a recorder listening (and strace
    attached, when there is one), then leave the record for the parent to read."""
    tracer = _attach(strace_path, stem) if strace_path else None
    recorder = Recorder(scope)
    hook = _AuditHook(recorder)
    sys.addaudithook(hook)  # (in the child only: it exits when the callable returns)
    try:
        return function(**kwargs)
    finally:
        hook.active = False
        if tracer is not None:
            _detach(tracer)
        blind = ""
        if hook.started and tracer is None:
            why = "not installed" if strace_path is None else "could not attach"
            blind = f"the processes it started (strace {why})"
        found = _settled(recorder.finish(blind), scope.root)
        with open(audit, "wb") as f:
            f.write(found.pack())


def _settled(found: Access, root: str) -> Access:
    """An audit hook hears of an open before it happens: keep the reads of files that
    exist (folders are listings) and the writes that are still there."""
    full = lambda p: os.path.join(root, p)  # noqa: E731 (absolute paths stay as they are)
    reads = {p for p in found.reads if os.path.isfile(full(p))}
    listed = found.listed | {p for p in found.reads if os.path.isdir(full(p))}
    missing = found.missing | {p for p in found.reads if not os.path.lexists(full(p))}
    writes = {p for p in found.writes if os.path.lexists(full(p))}
    return dataclasses.replace(
        found,
        reads=frozenset(reads),
        writes=frozenset(writes),
        missing=frozenset(missing),
        listed=frozenset(listed),
    )


class _AuditHook:
    """Python's audit events of file access, as recorder events (a hook cannot be
    removed: it goes quiet when `active` is False)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.active = True
        self.started = False  # it started a process (only strace sees into those)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        try:
            self._event(event, args)
        except Exception:  # noqa: BLE001 - a hook must never break the task
            pass

    def _event(self, event: str, args: tuple[Any, ...]) -> None:
        r = self.recorder
        if event == "open":
            _open_event(r, args)
        elif event in ("os.listdir", "os.scandir"):
            if (path := _absolute(args[0] if args and args[0] is not None else ".")) is not None:
                r.listing(path)
        elif event == "os.rename" and args[2] is None and args[3] is None:
            source, target = _absolute(args[0]), _absolute(args[1])
            if source is not None and target is not None:
                r.rename(source, target)
        elif event == "os.remove" and args[1] is None:
            if (path := _absolute(args[0])) is not None:
                r.remove(path)
        elif event in ("os.truncate", "os.link", "os.symlink"):
            if (path := _absolute(args[0] if event == "os.truncate" else args[1])) is not None:
                r.write(path)
        elif event in ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.system", "os.spawn"):
            self.started = True


def _open_event(r: Recorder, args: tuple[Any, ...]) -> None:
    path = _absolute(args[0])
    if path is None:
        return
    mode, flags = args[1], args[2] if len(args) > 2 else None
    if isinstance(flags, int):
        if flags & getattr(os, "O_DIRECTORY", 0):
            r.listing(path)
            return
        access = flags & os.O_ACCMODE
        reads = access != os.O_WRONLY and not flags & (os.O_TRUNC | os.O_EXCL)
        writes = access != os.O_RDONLY or bool(flags & os.O_CREAT)
    else:
        text = mode if isinstance(mode, str) else "r"
        reads = "r" in text or "+" in text
        writes = any(c in text for c in "wax+")
    if reads:
        r.read(path)
    if writes:
        r.write(path)


def _absolute(path: object) -> str | None:
    """An audit event's path argument as an absolute path (None: an fd, or unknown)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    elif isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        return None
    return os.path.normpath(os.path.join(os.getcwd(), path))


def _attach(strace_path: str, stem: str) -> int | None:
    """Start strace on this very process; its pid once attached, None if it could not."""
    _allow_tracing()
    try:
        argv = list(strace.attach_command(strace_path, stem, os.getpid()))
        pid = os.posix_spawn(strace_path, argv, os.environ)
    except OSError:
        return None
    deadline = time.monotonic() + _ATTACH_SECONDS
    while time.monotonic() < deadline:
        if _traced_now():
            return pid
        if os.waitpid(pid, os.WNOHANG)[0]:
            return None  # it gave up (no permission to trace)
        time.sleep(0.001)
    _detach(pid)
    return None


def _traced_now() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return line.split()[1] != "0"
    except OSError:
        pass
    return False


def _allow_tracing() -> None:
    """Under Yama's ptrace_scope 1, only an ancestor may trace a process: allow any
    (strace is this child's child; PR_SET_PTRACER, PR_SET_PTRACER_ANY)."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            if f.read().strip() != "1":
                return
        import ctypes

        ctypes.CDLL(None).prctl(0x59616D61, ctypes.c_ulong(-1 & (2**64 - 1)), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _detach(pid: int) -> None:
    """Stop strace: it detaches, writes out what it saw, and exits."""
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
