"""One build per directory at a time: an advisory lock on `.pytaskmake/lock`.

The kernel releases a flock when its holder dies, so a lock left by a killed run
is taken over automatically; there is never a manual unlock step.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import LockedError

LockMark = tuple[int, str]  # the lock file's mtime and the PID written in it


def last_holder(directory: Path) -> LockMark | None:
    """How the lock file looks now, without locking; None when there is none.

    A build compares it with `BuildLock.found` to learn whether another build held
    the lock in between (see snapshot.Prefetch).
    """
    try:
        fd = os.open(directory / "lock", os.O_RDONLY)
    except OSError:
        return None
    try:
        return _mark(fd)
    finally:
        os.close(fd)


def building_now(directory: Path) -> int | None:
    """The PID of the build holding the lock right now (0: unknown), or None when no
    build does; takes nothing (a shared lock tried and let go at once)."""
    try:
        fd = os.open(directory / "lock", os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(holder) if holder.isdigit() else 0
    finally:
        os.close(fd)  # (closing lets go of the shared lock, if taken)
    return None


def holder_alive(mark: LockMark | None) -> bool:
    """The process named in the lock file exists (it may be building right now)."""
    if mark is None or not mark[1].isdigit():
        return False
    try:
        os.kill(int(mark[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mark(fd: int) -> LockMark:
    return os.fstat(fd).st_mtime_ns, os.pread(fd, 32, 0).decode(errors="replace").strip()


class BuildLock:
    """Held for the whole build; the file names the holder's PID for the message."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "lock"
        self._fd: int | None = None
        self.found: LockMark | None = None  # the file as the last holder left it

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            for _ in range(20):  # the holder writes its PID just after locking
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                if holder:
                    break
                time.sleep(0.01)
            os.close(fd)
            raise LockedError(int(holder) if holder.isdigit() else 0, str(self.path)) from None
        self.found = _mark(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BuildLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
