"""Process groups left running by a pytaskmake that was killed (kill -9, OOM, reboot-less crash).

Each task runs in its own process group, so it survives its parent. A journal
lists the groups a build started; the next build kills those still alive before
rerunning their tasks, so no orphaned simulator writes over the new run's output.
A group is only killed when its leader still carries this journal's token in its
environment, so a recycled PID is never hit.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

TOKEN_VARIABLE = "PYTASKMAKE_RUN"


class ProcessJournal:
    """Append-only list of the process groups this build started."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.token = uuid.uuid4().hex
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)

    def record(self, pgid: int) -> None:
        os.write(self._fd, f"{self.token} {pgid}\n".encode())

    def close(self) -> None:
        """The build ended normally: every group it started has been reaped."""
        os.close(self._fd)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def kill_leftovers(path: Path, grace: float = 5.0) -> int:
    """Terminate live groups listed by a dead build's journal; returns how many."""
    try:
        lines = path.read_text().split("\n")
    except FileNotFoundError:
        return 0
    alive = []
    for line in lines:
        token, _, pgid = line.partition(" ")
        if pgid.isdigit() and _leader_has_token(int(pgid), token):
            alive.append(int(pgid))
    found = len(alive)
    for pgid in alive:
        _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _group_exists(p)]
        time.sleep(0.05)
    for pgid in alive:
        _killpg(pgid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return found


def _leader_has_token(pgid: int, token: str) -> bool:
    try:
        environ = Path(f"/proc/{pgid}/environ").read_bytes()
    except OSError:  # gone, not ours, or no /proc (macOS): never guess
        return False
    return f"{TOKEN_VARIABLE}={token}".encode() in environ.split(b"\0")


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
