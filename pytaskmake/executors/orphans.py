"""Process groups left running by a pytaskmake that was killed (kill -9, OOM killer).

Each task runs in its own process group, so it survives its parent. A journal
lists the groups a build started; the next build kills those still alive before
rerunning their tasks, so no orphaned simulator writes over the new run's output.
A group is killed only when its leader's start time (from /proc) lies between the
moments the journal recorded before and after starting it, so a recycled PID is
never hit; without /proc nothing is killed. The moments are read from
CLOCK_BOOTTIME, the clock of /proc's start times, at no cost: reading /proc for
every task cost 0.2 ms each.

Each group takes two lines, "PGID sBEFORE" and "PGID bAFTER". Releases before this
one wrote and read only the second, as within a second of the start, which the
spawn alone can exceed on a loaded machine (such a group was left running); an
older release still reads this journal so, after a downgrade.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


class ProcessJournal:
    """Append-only list of the process groups this build started."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)

    def record(self, pgid: int, since: float | None = None) -> None:
        """`since`: boot_clock() read before the group's leader was started (default:
        a second before now); its start lies between that and now."""
        now = boot_clock()
        low = now - _TOLERANCE if since is None else since
        os.write(self._fd, f"{pgid} s{low:.3f}\n{pgid} b{now:.3f}\n".encode())

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
    before: dict[str, str] = {}
    listed = []
    for line in lines:
        pgid, _, moment = line.partition(" ")
        if not pgid.isdigit():
            continue
        if moment.startswith("s"):
            before[pgid] = moment[1:]
        elif moment.startswith("b") and _started_at(int(pgid), before.get(pgid), moment[1:]):
            listed.append(int(pgid))
    # a leader left a zombie (its parent, the killed build, never reaped it) with
    # nothing of its group alive is not a task left running: nothing to stop
    live = _live_groups(set(listed)) if listed else set()
    ours = [pgid for pgid in listed if pgid in live]
    for pgid in ours:
        _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_leader_running(p) for p in ours):
        time.sleep(0.05)
    for pgid in ours:  # what ignored SIGTERM, and helpers the leader left behind
        _killpg(pgid, signal.SIGKILL)
    # a killed process exits when next scheduled, which on a loaded machine can come
    # after this build has started the task again: wait until none is left to write
    deadline = time.monotonic() + grace
    while ours and time.monotonic() < deadline and _members_running(set(ours)):
        time.sleep(0.01)
    path.unlink(missing_ok=True)
    return len(ours)


def _members_running(groups: set[int]) -> bool:
    """True while a process of one of `groups` is alive and not a zombie (from /proc)."""
    return bool(_live_groups(groups, first=True))


def _live_groups(groups: set[int], first: bool = False) -> set[int]:
    """Those of `groups` with a process alive and not a zombie (from /proc); `first`:
    stop at the first found."""
    live: set[int] = set()
    for entry in os.listdir("/proc"):
        fields = _proc_stat(int(entry)) if entry.isdigit() else None
        if fields and fields[0] not in ("Z", "X") and int(fields[2]) in groups:
            live.add(int(fields[2]))
            if first:
                break
    return live


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # gone, or no /proc
        return None
    return fields if len(fields) > 19 else None


def boot_clock() -> float:
    """Seconds since boot, suspend included: what /proc start times count."""
    clock = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
    return time.clock_gettime(clock)


_TOLERANCE = 1.0  # s around the one moment an older journal recorded
_TICK = 0.05  # s: start times are whole clock ticks (1/100 s), and the moments rounded


def _started_at(pid: int, before: str | None, after: str) -> bool:
    """True when `pid` is alive and started between the moments recorded `before` and
    `after` its start (an older journal has no `before`: within a second of `after`)."""
    fields = _proc_stat(pid)
    if fields is None:
        return False
    try:  # field 22 of the file: its start time in clock ticks
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        if before is None:
            return abs(started - float(after)) <= _TOLERANCE
        return float(before) - _TICK <= started <= float(after) + _TICK
    except ValueError:
        return False


def _leader_running(pid: int) -> bool:
    """Alive and not a zombie (a container's PID 1 may never reap it)."""
    fields = _proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
