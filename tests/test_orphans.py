"""The journal of process groups (executors/orphans.py): the next build kills what a
killed build left running, and only that. Real processes, real /proc."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytaskmake.executors.orphans import ProcessJournal, boot_clock, kill_leftovers

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@contextmanager
def sleeping_group() -> Iterator[subprocess.Popen[bytes]]:
    """A process group of its own (its leader a `sleep`), killed and reaped at the end."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def started_at(pid: int) -> float:
    """Its start time from /proc, in seconds of the boot clock."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
    return ticks / os.sysconf("SC_CLK_TCK")


def test_a_group_whose_start_was_journaled_late_is_still_killed(tmp_path: Path) -> None:
    """On a loaded machine the spawn can return more than a second after the process
    started: the journal then holds the moment before the spawn too, and the group
    is still recognised as this build's own (it was left running, and the orphaned
    task outlived the next build: a flaky test under load)."""
    journal = ProcessJournal(tmp_path / "running")
    since = boot_clock()
    with sleeping_group() as proc:
        time.sleep(1.5)  # the spawn returning late
        journal.record(proc.pid, since)
        assert kill_leftovers(tmp_path / "running", grace=5) == 1
        proc.wait(10)
        assert not alive(proc.pid)


def test_a_group_started_outside_the_journaled_moments_is_left_alone(tmp_path: Path) -> None:
    """A PID recycled by another program: its start is not between the moments."""
    with sleeping_group() as proc:
        time.sleep(1.5)
        journal = ProcessJournal(tmp_path / "running")
        since = boot_clock()  # as if this build started a group that got proc's PID
        journal.record(proc.pid, since)
        assert kill_leftovers(tmp_path / "running", grace=1) == 0
        assert alive(proc.pid)


def test_a_journal_line_reads_in_an_older_release_as_it_did(tmp_path: Path) -> None:
    """After a downgrade, an older release reads "PGID bAFTER" lines only (within a
    second of AFTER) and skips the "PGID sBEFORE" lines it does not know."""
    journal = ProcessJournal(tmp_path / "running")
    with sleeping_group() as proc:
        journal.record(proc.pid, boot_clock() - 0.5)
        lines = (tmp_path / "running").read_text().splitlines()
        assert [line.split()[1][0] for line in lines] == ["s", "b"]
        after = [line for line in lines if line.split()[1].startswith("b")]
        older = [line.partition(" ")[2][1:] for line in after]
        assert all(float(moment) for moment in older)  # a bare number, as before
        # the older release's rule: the b line's group, started within a second of it
        pgid, _, moment = after[0].partition(" ")
        assert int(pgid) == proc.pid and abs(started_at(proc.pid) - float(moment[1:])) <= 1


def test_an_older_journal_line_is_read_as_before(tmp_path: Path) -> None:
    """A journal of an older release: "PGID bAT", within a second of AT."""
    with sleeping_group() as proc:
        (tmp_path / "running").write_text(f"{proc.pid} b{boot_clock():.3f}\n")
        assert kill_leftovers(tmp_path / "running", grace=5) == 1
        proc.wait(10)
        assert not alive(proc.pid)
    assert not os.path.exists(tmp_path / "running")


def test_a_leader_left_a_zombie_with_nothing_alive_is_not_a_task_left_running(
    tmp_path: Path,
) -> None:
    """The killed build never reaped its task's exited shell: a zombie, nothing to
    stop. Counting it said "stopped 1 task process group(s)" after every kill -9 and
    threw away the stats a plain build takes while its Taskfile loads."""
    journal = ProcessJournal(tmp_path / "running")
    since = boot_clock()
    proc = subprocess.Popen(["true"], start_new_session=True)
    journal.record(proc.pid, since)
    deadline = time.monotonic() + 10
    while alive(proc.pid) and time.monotonic() < deadline:  # exits; unreaped: a zombie
        time.sleep(0.01)
    try:
        assert Path(f"/proc/{proc.pid}").exists() and not alive(proc.pid)
        assert kill_leftovers(tmp_path / "running", grace=1) == 0
    finally:
        proc.wait()
