"""The console reporter: plain lines when piped, a status line on a terminal, colour, summary.

Unit tests feed events to ConsoleReporter over an io.StringIO; end-to-end tests run the
real CLI (stdout is a pipe there, NO_COLOR=1 unless overridden) and, for the terminal
behaviour, under a pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytaskmake import events as ev
from pytaskmake import report
from pytaskmake.report import ConsoleReporter, format_seconds, use_colour

if TYPE_CHECKING:
    from conftest import Project

CLEAR = "\r\x1b[K"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A duration as format_seconds writes it: 0.01s, 12.3s, 3m12s, 1h02m.
DURATION = re.compile(r"\b(?:\d+h\d\dm|\d+m\d\ds|\d+(?:\.\d+)?s)\b")


def norm(text: str) -> str:
    """Replace every duration by T, so assertions can compare exact texts."""
    return DURATION.sub("T", text)


def counts(**given: int) -> dict[str, int]:
    base = {ev.RAN: 0, ev.RESTORED: 0, ev.UP_TO_DATE: 0, ev.FAILED: 0, ev.SKIPPED: 0}
    base.update({k.replace("_", "-"): v for k, v in given.items()})
    return base


class FakeClock:
    """Stands in for report.time so redraw throttling is deterministic."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(report, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


# --------------------------------------------------------------------------- unit: helpers


def test_format_seconds_minutes_and_hours() -> None:
    assert format_seconds(192) == "3m12s"
    assert format_seconds(60) == "1m00s"
    assert format_seconds(3 * 3600 + 5 * 60 + 7) == "3h05m"
    assert DURATION.fullmatch(format_seconds(0.123))
    assert DURATION.fullmatch(format_seconds(42.0))


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("choice", "tty", "no_color", "expected"),
    [
        ("always", False, "1", True),
        ("always", True, "", True),
        ("never", True, "", False),
        ("auto", True, "", True),
        ("auto", True, "1", False),
        ("auto", False, "", False),
    ],
)
def test_use_colour(
    monkeypatch: pytest.MonkeyPatch, choice: str, tty: bool, no_color: str, expected: bool
) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    assert use_colour(choice, _Stream(tty)) is expected


# --------------------------------------------------------------------------- unit: plain lines


def test_plain_lines_for_finished_tasks_only() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.BuildStarted(4, 2, ("a", "b", "c", "d")))
    rep.handle(ev.TaskDone("a", ev.UP_TO_DATE, "up to date"))
    rep.handle(ev.TaskStarted("b", "make b", "never run"))
    rep.handle(ev.TaskDone("b", ev.RAN, duration=192.0, output=b"line 1\nline 2\n"))
    rep.handle(ev.TaskDone("c", ev.RESTORED, "restored from cache (never run)"))
    rep.handle(ev.TaskStarted("d", "make d", "never run"))
    rep.handle(ev.TaskDone("d", ev.RAN, duration=61.0))
    rep.handle(ev.BuildFinished(counts(ran=2, restored=1, up_to_date=1), wall=3700.0))
    assert out.getvalue() == (
        "[2/4] ran b (3m12s)\n"
        "line 1\n"
        "line 2\n"
        "[3/4] restored c\n"
        "[4/4] ran d (1m01s)\n"
        "pytaskmake: done: ran 2, restored 1, up to date 1 in 1h01m\n"
    )


def test_no_status_line_or_escape_codes_when_not_a_terminal() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.BuildStarted(2, 1, ("a", "b")))
    rep.handle(ev.TaskStarted("a", "cmd", "never run"))
    rep.handle(ev.TaskDone("a", ev.RAN, duration=1.0))
    rep.handle(ev.TaskStarted("b", "cmd", "never run"))
    rep.handle(ev.TaskDone("b", ev.FAILED, "exit code 1", duration=1.0, command="cmd"))
    rep.handle(ev.BuildFinished(counts(ran=1, failed=1), wall=2.0))
    assert "\r" not in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_failure_block_and_summary_exact() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.BuildStarted(5, 1, ("gen", "bad", "x", "y", "z")))
    rep.handle(ev.TaskDone("gen", ev.RAN, duration=61.0))
    output = "".join(f"line{i}\n" for i in range(1, 31)).encode()
    rep.handle(ev.TaskDone("bad", ev.FAILED, "exit code 3", 1.0, output, 3, "./sim --bad", None))
    rep.handle(ev.TaskDone("x", ev.SKIPPED, "needs bad, which failed"))
    rep.handle(ev.TaskDone("y", ev.SKIPPED, "needs bad, which failed"))
    rep.handle(ev.BuildFinished(counts(ran=1, failed=1, skipped=2), wall=120.0))
    tail = "".join(f"  | line{i}\n" for i in range(11, 31))
    assert out.getvalue() == (
        "[1/5] ran gen (1m01s)\n"
        "[2/5] FAILED bad: exit code 3\n"
        "  command: ./sim --bad\n"
        "  last 20 lines of output:\n" + tail + "skipped x: needs bad, which failed\n"
        "skipped y: needs bad, which failed\n"
        "pytaskmake: failed: ran 1, restored 0, up to date 0, failed 1, skipped 2, "
        "not started 1 in 2m00s\n"
    )


def test_failure_tail_comes_from_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    log.write_text("".join(f"log line {i}\n" for i in range(25)))
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.BuildStarted(1, 1, ("bad",)))
    rep.handle(ev.TaskDone("bad", ev.FAILED, "exit code 2", 1.0, b"", 2, "run", str(log)))
    lines = out.getvalue().splitlines()
    assert lines[:3] == [
        "[1/1] FAILED bad: exit code 2",
        "  command: run",
        f"  last 20 lines of {log}:",
    ]
    assert lines[3:] == [f"  | log line {i}" for i in range(5, 25)]


def test_failure_without_output_prints_no_tail(tmp_path: Path) -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.BuildStarted(2, 1, ("a", "b")))
    rep.handle(ev.TaskDone("a", ev.FAILED, "exit code 1", command="false"))
    missing = str(tmp_path / "never-written.log")
    rep.handle(ev.TaskDone("b", ev.FAILED, "timed out after 1s", command="sleep 9", log=missing))
    assert out.getvalue() == (
        "[1/2] FAILED a: exit code 1\n  command: false\n"
        "[2/2] FAILED b: timed out after 1s\n  command: sleep 9\n"
    )


def test_undecodable_output_is_replaced_not_fatal() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.BuildStarted(1, 1, ("a",)))
    rep.handle(ev.TaskDone("a", ev.RAN, duration=61.0, output=b"caf\xe9 ok\n"))
    assert out.getvalue() == "[1/1] ran a (1m01s)\ncaf\ufffd ok\n"


def test_verbose_shows_each_command_as_it_starts() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, verbosity=1, status_line=False)
    rep.handle(ev.BuildStarted(1, 1, ("sim",)))
    rep.handle(ev.TaskStarted("sim", "./netsim -c netsim.cfg", "input netsim.cfg changed"))
    assert out.getvalue() == "$ ./netsim -c netsim.cfg    # sim: input netsim.cfg changed\n"


def test_quiet_prints_only_failures_notices_and_summary() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, verbosity=-1, status_line=False)
    rep.handle(ev.BuildStarted(3, 1, ("a", "b", "c")))
    rep.handle(ev.TaskStarted("a", "cmd a", "never run"))
    rep.handle(ev.TaskDone("a", ev.RAN, duration=1.0, output=b"chatty\n"))
    rep.handle(ev.TaskRetry("b", 2, "exit code 1"))
    rep.handle(ev.TaskDone("b", ev.FAILED, "exit code 1", command="cmd b"))
    rep.handle(ev.TaskDone("c", ev.SKIPPED, "needs b, which failed"))
    rep.handle(ev.Notice("state database rebuilt"))
    rep.handle(ev.BuildFinished(counts(ran=1, failed=1, skipped=1), wall=61.0))
    assert out.getvalue() == (
        "[2/3] FAILED b: exit code 1\n"
        "  command: cmd b\n"
        "pytaskmake: state database rebuilt\n"
        "pytaskmake: failed: ran 1, restored 0, up to date 0, failed 1, skipped 1 in 1m01s\n"
    )


def test_retry_and_notice_lines() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.TaskRetry("sim", 2, "exit code 1"))
    rep.handle(ev.Notice("interrupted: letting 1 running task(s) finish", level="note"))
    assert out.getvalue() == (
        "retry sim (attempt 2): exit code 1\n"
        "pytaskmake: interrupted: letting 1 running task(s) finish\n"
    )


def test_summary_interrupted_and_not_started() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.BuildStarted(10, 2))
    for i, outcome in enumerate([ev.RAN] * 3 + [ev.UP_TO_DATE] * 2):
        rep.handle(ev.TaskDone(f"t{i}", outcome))
    # 4 more up to date from the start: not part of the 10 the build set out to do
    rep.handle(ev.BuildFinished(counts(ran=3, up_to_date=6), wall=61.0, interrupted=True))
    assert out.getvalue().endswith(
        "pytaskmake: interrupted: ran 3, restored 0, up to date 6, not started 5 in 1m01s\n"
    )


# --------------------------------------------------------------------------- unit: colour


def test_colours_green_red_yellow_dim() -> None:
    from colorama import Fore, Style

    out = io.StringIO()
    rep = ConsoleReporter(out, colour=True, status_line=False)
    rep.handle(ev.BuildStarted(3, 1, ("a", "b", "c")))
    rep.handle(ev.TaskDone("a", ev.RAN, duration=1.0))
    rep.handle(ev.TaskDone("b", ev.FAILED, "exit code 1", command="false"))
    rep.handle(ev.TaskDone("c", ev.SKIPPED, "needs b, which failed"))
    rep.handle(ev.Notice("state database rebuilt"))
    rep.handle(ev.BuildFinished(counts(ran=1, failed=1, skipped=1), wall=1.0))
    text = out.getvalue()
    reset = Style.RESET_ALL
    assert f"{Fore.GREEN}ran{reset} a" in text
    assert f"{Fore.RED}{Style.BRIGHT}FAILED b: exit code 1{reset}" in text
    assert f"{Fore.YELLOW}skipped c: needs b, which failed{reset}" in text
    assert f"{Fore.YELLOW}pytaskmake: state database rebuilt{reset}" in text
    assert f"{Style.DIM}up to date 0{reset}" in text
    assert f"{Fore.GREEN}ran 1{reset}" in text
    assert f"{Fore.RED}failed 1{reset}" in text
    assert ANSI.sub("", text).count("\x1b") == 0  # every escape is a complete SGR code


def test_no_colour_means_no_escape_codes() -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=False)
    rep.handle(ev.BuildStarted(2, 1, ("a", "b")))
    rep.handle(ev.TaskDone("a", ev.RAN, duration=1.0))
    rep.handle(ev.TaskDone("b", ev.FAILED, "exit code 1", command="false"))
    rep.handle(ev.Notice("careful"))
    rep.handle(ev.BuildFinished(counts(ran=1, failed=1), wall=1.0))
    assert "\x1b" not in out.getvalue()


# --------------------------------------------------------------------------- unit: status line


def test_status_line_redraws_in_place(clock: FakeClock) -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=True)
    rep.handle(ev.BuildStarted(2, 1, ("a", "b"), {"a": 100.0, "b": 92.0}))
    clock.now += 1
    rep.handle(ev.TaskStarted("a", "cmd a", "never run"))
    assert rep.status_text() == "[0/2] 0% running:1 failed:0 ETA 3m12s  a"
    clock.now += 1
    rep.handle(ev.TaskDone("a", ev.RAN, duration=90.0, output=b"hello\n"))
    clock.now += 1
    rep.handle(ev.TaskStarted("b", "cmd b", "never run"))
    assert rep.status_text() == "[1/2] 50% running:1 failed:0 ETA 1m32s  b"
    clock.now += 1
    rep.handle(ev.TaskDone("b", ev.FAILED, "exit code 3", 1.0, b"boom\n", 3, "cmd b"))
    clock.now += 1
    rep.handle(ev.BuildFinished(counts(ran=1, failed=1), wall=200.0))
    assert out.getvalue() == (
        "[0/2] 0% running:1 failed:0 ETA 3m12s  a"
        + CLEAR
        + "[1/2] ran a (1m30s)\nhello\n"
        + "[1/2] 50% running:0 failed:0"
        + CLEAR
        + "[1/2] 50% running:1 failed:0 ETA 1m32s  b"
        + CLEAR
        + "[2/2] FAILED b: exit code 3\n  command: cmd b\n  last line of output:\n  | boom\n"
        + "[2/2] 100% running:0 failed:1"
        + CLEAR
        + "pytaskmake: failed: ran 1, restored 0, up to date 0, failed 1 in 3m20s\n"
    )


def test_status_line_names_the_latest_running_task_and_counts_failures(clock: FakeClock) -> None:
    rep = ConsoleReporter(io.StringIO(), colour=False, status_line=True)
    rep.handle(ev.BuildStarted(8, 4, tuple("abcdefgh")))
    for name in "abc":
        rep.handle(ev.TaskStarted(name, "cmd", "never run"))
    rep.handle(ev.TaskDone("b", ev.FAILED, "exit code 1"))
    rep.handle(ev.TaskDone("d", ev.UP_TO_DATE, "up to date"))
    # no task has finished running and none has a past duration: no ETA yet
    assert rep.status_text() == "[2/8] 25% running:2 failed:1  c"


def test_status_line_redraws_are_throttled(clock: FakeClock) -> None:
    """A no-op over many up-to-date tasks must not redraw once per task."""
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=True)
    rep.handle(ev.BuildStarted(1000, 4))
    for i in range(1000):
        rep.handle(ev.TaskDone(f"t{i}", ev.UP_TO_DATE, "up to date"))
    assert out.getvalue().count("running:") == 1
    clock.now += 1
    rep.handle(ev.BuildFinished(counts(up_to_date=1000), wall=61.0))
    assert out.getvalue().endswith(
        CLEAR + "pytaskmake: done: ran 0, restored 0, up to date 1000 in 1m01s\n"
    )


def test_status_line_shows_a_task_started_right_after_another_finished(
    clock: FakeClock,
) -> None:
    out = io.StringIO()
    rep = ConsoleReporter(out, colour=False, status_line=True)
    rep.handle(ev.BuildStarted(2, 1, ("a", "b")))
    rep.handle(ev.TaskStarted("a", "cmd a", "never run"))
    rep.handle(ev.TaskDone("a", ev.RAN, duration=61.0))
    rep.handle(ev.TaskStarted("b", "sleep 600", "never run"))  # same instant: throttled
    # b may run for minutes with no further event: the screen must already show it
    on_screen = out.getvalue().rsplit(CLEAR, 1)[-1]
    assert on_screen == rep.status_text() == "[1/2] 50% running:1 failed:0 ETA 1m01s  b"


@pytest.mark.parametrize("columns", [30, 40, 200])
def test_status_line_fits_the_terminal_and_keeps_escape_codes_whole(columns: int) -> None:
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))

        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

            def fileno(self) -> int:
                return slave

        rep = ConsoleReporter(Terminal(), colour=True, status_line=True)
        rep.handle(ev.BuildStarted(20, 2))
        for i in range(10):
            rep.handle(ev.TaskDone(f"t{i}", ev.UP_TO_DATE, "up to date"))
        rep.handle(ev.TaskDone("x", ev.FAILED, "exit code 1"))
        rep.handle(ev.TaskStarted("some-long-task-name-" + "x" * 60, "cmd", "never run"))
        text = rep.status_text()
    finally:
        os.close(master)
        os.close(slave)
    full = "[11/20] 55% running:1 failed:1  some-long-task-name-" + "x" * 60
    visible = ANSI.sub("", text)
    assert "\x1b" not in visible  # no escape sequence cut in half
    assert visible == full[: columns - 1]  # never wraps, so the \r redraw works
    if columns >= 40:  # the failure count is on screen, in red
        assert "\x1b[31mfailed:1\x1b[0m" in text
    if "\x1b[31m" in text:  # a colour switched on is switched off again
        assert "\x1b[0m" in text[text.rindex("\x1b[31m") :]


def test_status_line_plain_width_on_a_stream_that_is_not_a_terminal(clock: FakeClock) -> None:
    rep = ConsoleReporter(io.StringIO(), colour=False, status_line=True)
    rep.handle(ev.BuildStarted(1, 1))
    rep.handle(ev.TaskStarted("x" * 300, "cmd", "never run"))
    text = rep.status_text()
    assert text.startswith("[0/1] 0% running:1 failed:0  xxx")
    assert len(text) == 99


# --------------------------------------------------------------------------- unit: ETA


def test_eta_uses_past_durations_divided_among_jobs() -> None:
    rep = ConsoleReporter(io.StringIO(), status_line=False)
    rep.handle(ev.BuildStarted(3, 2, ("a", "b", "c"), {"a": 10.0, "b": 20.0, "c": 30.0}))
    assert rep.eta() == pytest.approx(30.0)
    rep.handle(ev.TaskDone("c", ev.RAN, duration=1.0))  # ran much faster than last time
    assert rep.eta() == pytest.approx(15.0)
    rep.handle(ev.TaskDone("a", ev.UP_TO_DATE, "up to date"))
    assert rep.eta() == pytest.approx(10.0)
    rep.handle(ev.TaskDone("b", ev.RAN, duration=1.0))
    assert rep.eta() == pytest.approx(0.0)


def test_eta_falls_back_to_the_mean_of_this_run() -> None:
    rep = ConsoleReporter(io.StringIO(), status_line=False)
    rep.handle(ev.BuildStarted(5, 1, tuple("abcde")))
    assert rep.eta() is None  # nothing known yet
    rep.handle(ev.TaskDone("a", ev.UP_TO_DATE, "up to date"))
    assert rep.eta() is None  # up-to-date tasks say nothing about run time
    rep.handle(ev.TaskDone("b", ev.RAN, duration=4.0))
    assert rep.eta() == pytest.approx(3 * 4.0)
    rep.handle(ev.TaskDone("c", ev.RAN, duration=8.0))
    assert rep.eta() == pytest.approx(2 * 6.0)


def test_eta_mixes_past_durations_and_the_mean() -> None:
    rep = ConsoleReporter(io.StringIO(), status_line=False)
    rep.handle(ev.BuildStarted(4, 2, ("a", "b", "c", "d"), {"a": 100.0, "b": 20.0}))
    rep.handle(ev.TaskDone("c", ev.RAN, duration=4.0))  # unknown: d is estimated at 4
    assert rep.eta() == pytest.approx((100.0 + 20.0 + 4.0) / 2)
    rep.handle(ev.TaskDone("a", ev.RAN, duration=12.0))  # mean of this run is now 8
    assert rep.eta() == pytest.approx((20.0 + 8.0) / 2)


def test_status_line_shows_eta_only_while_something_runs(clock: FakeClock) -> None:
    rep = ConsoleReporter(io.StringIO(), status_line=True)
    rep.handle(ev.BuildStarted(2, 1, ("a", "b"), {"a": 192.0, "b": 192.0}))
    assert "ETA" not in rep.status_text()
    rep.handle(ev.TaskStarted("a", "cmd", "never run"))
    assert "ETA 6m24s" in rep.status_text()


def test_eta_and_status_line_count_the_slots_and_memory_tasks_hold(clock: FakeClock) -> None:
    """A task holding 4 of 4 slots for 10 s is 10 s of the ETA, not 2.5."""
    rep = ConsoleReporter(io.StringIO(), status_line=True)
    expected = {"wide": 10.0, "a": 10.0}
    rep.handle(ev.BuildStarted(2, 4, ("wide", "a"), expected, {"wide": 4}, 8 << 30))
    assert rep.eta() == pytest.approx((10.0 * 4 + 10.0) / 4)
    rep.handle(ev.TaskStarted("wide", "cmd", "never run", cpus=4, mem=3 << 29))
    assert "running:1 cpus:4/4 mem:1.5G/8G failed:0" in rep.status_text()
    rep.handle(ev.TaskDone("wide", ev.RAN, duration=10.0))
    assert rep.eta() == pytest.approx(10.0 / 4)
    assert "cpus:0/4 mem:0/8G" in rep.status_text()


# --------------------------------------------------------------------------- the real CLI

TWO_TASKS = """
task("gen", "echo hello; echo world; echo x > a.txt", outputs=["a.txt"])
task("copy", "cp a.txt b.txt", inputs=["a.txt"], outputs=["b.txt"])
"""


def test_cli_prints_one_line_per_finished_task(project: Project) -> None:
    project.taskfile(TWO_TASKS)
    r = project.run("-j1")
    assert r.returncode == 0, r.stderr
    assert norm(r.stdout) == (
        "[1/2] ran gen (T)\n"
        "hello\n"
        "world\n"
        "[2/2] ran copy (T)\n"
        "pytaskmake: done: ran 2, restored 0, up to date 0 in T\n"
    )
    assert r.stderr == ""


def test_cli_up_to_date_tasks_print_no_line(project: Project) -> None:
    project.taskfile(TWO_TASKS)
    assert project.run("-j1").returncode == 0
    r = project.run("-j1")
    assert norm(r.stdout) == "pytaskmake: done: ran 0, restored 0, up to date 2 in T\n"
    project.write("b.txt", "edited\n")  # copy's output modified outside the build
    r = project.run("-j1", "--no-cache")
    assert norm(r.stdout) == (  # progress counts the work to do, as ninja's does
        "[1/1] ran copy (T)\npytaskmake: done: ran 1, restored 0, up to date 1 in T\n"
    )


FAILING = """
task("gen", "echo x > a.txt", outputs=["a.txt"])
task("bad", "for i in $(seq 1 30); do echo line$i; done; exit 3",
     inputs=["a.txt"], outputs=["b.txt"])
task("after", "cp b.txt c.txt", inputs=["b.txt"], outputs=["c.txt"])
task("after2", "cp c.txt d.txt", inputs=["c.txt"], outputs=["d.txt"])
"""

FAILURE_BLOCK = (
    "[2/4] FAILED bad: exit code 3\n"
    "  command: for i in $(seq 1 30); do echo line$i; done; exit 3\n"
    "  last 20 lines of output:\n"
    + "".join(f"  | line{i}\n" for i in range(11, 31))
    + "  whole output: .pytaskmake/logs/bad.log\n"
)


def test_cli_failure_report_and_summary(project: Project) -> None:
    project.taskfile(FAILING)
    r = project.run("-j1")
    assert r.returncode == 1
    assert norm(r.stdout) == (
        "[1/4] ran gen (T)\n"
        + FAILURE_BLOCK
        + "skipped after: needs bad, which failed\n"
        + "skipped after2: needs bad, which failed\n"
        + "pytaskmake: failed: ran 1, restored 0, up to date 0, failed 1, skipped 2 in T\n"
    )


def test_cli_quiet_prints_only_failures_and_summary(project: Project) -> None:
    project.taskfile(FAILING)
    r = project.run("-j1", "-q")
    assert r.returncode == 1
    assert norm(r.stdout) == (
        FAILURE_BLOCK
        + "pytaskmake: failed: ran 1, restored 0, up to date 0, failed 1, skipped 2 in T\n"
    )


def test_cli_quiet_success_prints_only_the_summary(project: Project) -> None:
    project.taskfile(TWO_TASKS)
    r = project.run("-q")
    assert r.returncode == 0
    assert norm(r.stdout) == "pytaskmake: done: ran 2, restored 0, up to date 0 in T\n"


def test_cli_counts_tasks_not_started_after_a_failure(project: Project) -> None:
    project.taskfile(
        """
        task("bad", "echo oops; exit 5", always=True)
        task("x", "echo x", always=True)
        task("y", "echo y", always=True)
        """
    )
    r = project.run("-j1")
    assert r.returncode == 1
    assert norm(r.stdout) == (
        "[1/3] FAILED bad: exit code 5\n"
        "  command: echo oops; exit 5\n"
        "  last line of output:\n"
        "  | oops\n"
        "pytaskmake: failed: ran 0, restored 0, up to date 0, failed 1, not started 2 in T\n"
    )


def test_cli_verbose_shows_commands_with_reasons(project: Project) -> None:
    project.taskfile(TWO_TASKS)
    r = project.run("-j1", "-v")
    assert norm(r.stdout) == (
        "$ echo hello; echo world; echo x > a.txt    # gen: never run\n"
        "[1/2] ran gen (T)\n"
        "hello\n"
        "world\n"
        "$ cp a.txt b.txt    # copy: never run\n"
        "[2/2] ran copy (T)\n"
        "pytaskmake: done: ran 2, restored 0, up to date 0 in T\n"
    )


def test_cli_task_with_log_writes_output_there_not_to_stdout(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo secret-a; echo a > a.txt", outputs=["a.txt"], log="logs/a.log")
        task("b", "echo b-out; echo oops >&2; exit 4", inputs=["a.txt"], log="logs/b.log")
        """
    )
    r = project.run("-j1")
    assert r.returncode == 1
    assert project.read("logs/a.log") == "secret-a\n"
    assert norm(r.stdout) == (
        "[1/2] ran a (T)\n"
        "[2/2] FAILED b: exit code 4\n"
        "  command: echo b-out; echo oops >&2; exit 4\n"
        "  last 2 lines of logs/b.log:\n"
        "  | b-out\n"
        "  | oops\n"
        "pytaskmake: failed: ran 1, restored 0, up to date 0, failed 1 in T\n"
    )


def test_cli_failure_tail_of_a_long_log(project: Project) -> None:
    project.taskfile(
        """
        task("sim", "seq 1 100; exit 2", log="sim.log")
        """
    )
    r = project.run()
    assert r.returncode == 1
    assert "  last 20 lines of sim.log:\n" in r.stdout
    tail = [line[4:] for line in r.stdout.splitlines() if line.startswith("  | ")]
    assert tail == [str(i) for i in range(81, 101)]
    assert len(project.read("sim.log").splitlines()) == 100


def test_cli_parallel_task_output_is_never_interleaved(project: Project) -> None:
    project.taskfile(
        """
        for name in ("left", "right"):
            task(name, f"for i in $(seq 1 25); do echo {name}-$i; sleep 0.01; done",
                 always=True)
        """
    )
    r = project.run("-j2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for name in ("left", "right"):
        at = lines.index(next(line for line in lines if f"ran {name} (" in line))
        assert lines[at + 1 : at + 26] == [f"{name}-{i}" for i in range(1, 26)]
    assert len(lines) == 2 * 26 + 1


# --------------------------------------------------------------------------- CLI colour

COLOUR_TASKS = """
task("good", "echo fine")
task("bad", "exit 3")
"""


def _has_sgr(text: str) -> bool:
    return re.search(r"\x1b\[[0-9;]*m", text) is not None


def test_cli_color_always_forces_ansi_even_when_piped(project: Project) -> None:
    project.taskfile(COLOUR_TASKS)
    r = project.run("-j1", "-k", "--color=always")  # NO_COLOR=1 from the fixture, too
    assert r.returncode == 1
    assert "\x1b[32mran\x1b[0m good" in r.stdout
    assert "\x1b[31m\x1b[1mFAILED bad: exit code 3\x1b[0m" in r.stdout


@pytest.mark.parametrize(
    ("flags", "no_color"),
    [((), "1"), (("--color=auto",), "1"), (("--color=never",), ""), (("--color=auto",), "")],
    ids=["default+NO_COLOR", "auto+NO_COLOR", "never", "auto-on-pipe"],
)
def test_cli_no_ansi_without_colour(
    project: Project, flags: tuple[str, ...], no_color: str
) -> None:
    project.taskfile(COLOUR_TASKS)
    r = project.run("-j1", "-k", *flags, NO_COLOR=no_color)
    assert r.returncode == 1
    assert "FAILED bad" in r.stdout
    assert "\x1b" not in r.stdout
    assert "\x1b" not in r.stderr


def _run_in_terminal(root: Path, *args: str, env: dict[str, str]) -> str:
    """Run the CLI with stdout on a pseudo-terminal 100 columns wide; returns all it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytaskmake", *args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    data = bytearray()
    deadline = time.monotonic() + 60
    try:
        for chunk in _read_until_eof(master, deadline):
            data += chunk
    finally:
        os.close(master)
        proc.wait(timeout=30)
    assert proc.returncode is not None
    return data.decode("utf-8", errors="replace")


def _read_until_eof(fd: int, deadline: float) -> Iterator[bytes]:
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            return
        if not chunk:
            return
        yield chunk


def test_terminal_gets_status_line_and_colour(project: Project) -> None:
    project.taskfile(
        """
        task("first", "sleep 0.2; echo a > a.txt", outputs=["a.txt"])
        task("second", "sleep 0.2; echo done-2", inputs=["a.txt"])
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    text = _run_in_terminal(project.root, "-j1", env=env).replace("\r\n", "\n")
    assert "running:1 failed:0" in text
    assert "  first" in text  # the running task named on the status line
    assert CLEAR in text  # redrawn in place
    assert "\x1b[32mran\x1b[0m first" in text
    last = text.rsplit(CLEAR, 1)[-1]
    assert norm(ANSI.sub("", last)) == "pytaskmake: done: ran 2, restored 0, up to date 0 in T\n"


def test_terminal_with_no_color_has_status_line_but_no_colour(project: Project) -> None:
    project.taskfile(
        """
        task("only", "sleep 0.1; echo hi")
        """
    )
    env = {**os.environ, "NO_COLOR": "1"}
    text = _run_in_terminal(project.root, "-j1", env=env)
    assert "[0/1] 0% running:1 failed:0  only" in text
    assert not _has_sgr(text)


# --- output kept whole on disk, bounded in memory -------------------------------------------


def test_a_huge_output_is_kept_whole_on_disk_and_shown_cut(project: Project) -> None:
    """20 MB of output: the console shows its head and tail, the log holds all of it,
    and the first error far above the tail is shown."""
    project.taskfile(
        """
        task("chatty", "echo 'main.c:3: error: missing include'; "
             "yes 'warning: something harmless' | head -c 20000000; echo; exit 1")
        """
    )
    result = project.run()
    assert result.returncode == 1
    log = project.root / ".pytaskmake" / "logs" / "chatty.log"
    assert log.stat().st_size > 20_000_000
    assert "first error lines of output:" in result.stdout
    assert "| main.c:3: error: missing include" in result.stdout
    assert "whole output: .pytaskmake/logs/chatty.log" in result.stdout
    assert len(result.stdout) < 200_000


def test_the_summary_names_every_failed_task(project: Project) -> None:
    project.taskfile(
        """
        for i in range(3):
            task(f"bad{i}", "exit 1")
        task("good", "true")
        """
    )
    result = project.run("-k", "-j1")
    assert result.returncode == 1
    assert "pytaskmake: failed: bad0, bad1, bad2" in result.stdout


# --- issue 25: details ---------------------------------------------------------------


def test_the_status_line_is_fitted_in_terminal_columns() -> None:
    from pytaskmake.report import fit_columns

    assert fit_columns("sim 模拟器 run", 8) == "sim 模拟"  # two columns per wide character
    assert fit_columns("e\u0301te", 3) == "e\u0301te"  # a combining accent takes none
    assert fit_columns("plain ascii", 5) == "plain"


def test_a_huge_failing_command_is_shortened_unless_verbose(project: Project) -> None:
    long_words = " ".join(f"word{i}" for i in range(200))
    project.taskfile(f'task("long", "echo {long_words} > /dev/null; exit 3", outputs=["o"])\n')
    quiet = project.run()
    line = next(x for x in quiet.stdout.splitlines() if x.startswith("  command:"))
    assert "more characters; -v shows it whole" in line and len(line) < 520
    verbose = project.run("-v")
    assert "word199 > /dev/null; exit 3" in verbose.stdout


def test_restored_tasks_have_their_own_row_in_the_trace(project: Project) -> None:
    project.write("in.txt", "1\n")
    project.taskfile('task("t", "cat in.txt > o", inputs=["in.txt"], outputs=["o"])\n')
    assert project.run().returncode == 0
    project.write("in.txt", "2\n")
    assert project.run().returncode == 0
    project.write("in.txt", "1\n")
    assert project.run("--trace", "trace.json").returncode == 0
    trace = json.loads(project.read("trace.json"))["traceEvents"]
    rows = {e["args"]["name"] for e in trace if e["ph"] == "M"}
    assert rows == {"restored from cache"}
    assert [e["cat"] for e in trace if e["ph"] == "X"] == ["restored"]


def test_stream_shows_output_as_it_comes_prefixed_by_the_task(project: Project) -> None:
    """--stream: the first line is on the console while the task still runs."""
    project.taskfile(
        """
        task("slow", "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second",
             always=True)
        task("other", "echo other-line", always=True)
        """
    )
    proc = project.popen("--stream", "-j2")
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if line.startswith("[slow] first"):
            break  # printed while "slow" waits for us: it came as it was written
    (project.root / "go").write_text("")
    # (the rest through the same reader: communicate() reads the pipe itself, and would
    # lose what this reader had buffered beyond the first line)
    rest = proc.stdout.read()
    proc.wait(timeout=60)
    lines = seen + rest.splitlines()
    assert proc.returncode == 0
    assert "[slow] second" in lines and "[other] other-line" in lines
    assert lines.count("first") == 0 and sum("first" in x for x in lines) == 1  # once


def test_stream_with_one_job_has_no_prefix(project: Project) -> None:
    project.taskfile('task("t", "echo one; echo two", always=True)\n')
    result = project.run("--stream", "-j1")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[:2] == ["one", "two"] and lines[2].startswith("[1/1] ran t (")
    assert len(lines) == 4  # and not again under the "ran" line
