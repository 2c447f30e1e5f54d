"""The console reporter: colour, a ninja-style status line, task output, the summary.

It observes build events and is the only place that writes progress to the
terminal. On a terminal one status line is redrawn in place; otherwise each
finished task gets one plain line, so logs of CI and batch jobs read cleanly.
"""

from __future__ import annotations

import os
import re
import sys
import time
import unicodedata
from typing import TextIO

from . import events as ev
from .resources import format_size

TAIL_LINES = 20
_REDRAW_SECONDS = 0.1


def use_colour(choice: str, stream: TextIO) -> bool:
    """--color=always|never|auto; auto means a terminal and no NO_COLOR variable."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def ansi(*names: str) -> str:
    """The escape codes of colorama's Fore and Style `names`. Imported when colour is
    on, not before: colorama's import is about 7 ms, a tenth of a small project's no-op."""
    from colorama import Fore, Style

    return "".join(getattr(Fore, n, None) or getattr(Style, n) for n in names if n)


def format_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


class ConsoleReporter:
    """Prints a build's events for a person; `verbosity` is -1 quiet, 0 normal, 1 verbose."""

    def __init__(
        self,
        stream: TextIO = sys.stdout,
        colour: bool = False,
        verbosity: int = 0,
        status_line: bool | None = None,
    ) -> None:
        self.out = stream
        self.colour = colour
        self.verbosity = verbosity
        if status_line is None:
            status_line = stream.isatty() and verbosity >= 0
        self.status_line = status_line
        self.total = self.done = self.failed = self.jobs = 0
        self.failed_names: list[str] = []
        self.running: dict[str, float] = {}
        self._holding: dict[str, tuple[int, int]] = {}  # running: (cpus, mem) each holds
        self._cpus: dict[str, int] = {}  # tasks holding more than one slot
        self._mem_limit = 0
        self._expected: dict[str, float] = {}
        self._remaining_known = 0.0
        self._unknown_left = 0
        self._ran_time = 0.0
        self._ran_count = 0
        self._line_shown = False
        self._last_draw = 0.0
        self._shown = ""
        self._streamed: set[str] = set()  # tasks whose output was shown as it came
        self._partial: dict[str, bytes] = {}  # the unfinished last line of each

    def _paint(self, text: str, *names: str) -> str:
        """`text` in colorama's colours `names` ("RED", "BRIGHT"...) when colour is on."""
        if not self.colour or not any(names):  # (an empty name: no colour)
            return text
        return f"{ansi(*names)}{text}{ansi('RESET_ALL')}"

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.TaskDone):
            self._task_done(event)
        elif isinstance(event, ev.TaskStarted):
            self._task_started(event)
        elif isinstance(event, ev.BuildStarted):
            self._build_started(event)
        elif isinstance(event, ev.TaskOutput):
            self._task_output(event)
        elif isinstance(event, ev.TaskRetry):
            self._print(
                self._paint(
                    f"retry {event.name} (attempt {event.attempt}): {event.reason}", "YELLOW"
                )
            )
        elif isinstance(event, ev.Notice):
            colour = "YELLOW" if event.level == "warning" else ""
            self._print(self._paint(f"pytaskmake: {event.message}", colour), force=True)
        elif isinstance(event, ev.BuildFinished):
            self._build_finished(event)

    def _build_started(self, e: ev.BuildStarted) -> None:
        # a watch builds many times with one reporter: each build counts from zero
        self.done = self.failed = 0
        self.failed_names = []
        self.running.clear()
        self._holding.clear()
        self.total, self.jobs = e.total, e.jobs
        self._expected, self._cpus, self._mem_limit = e.expected, e.cpus, e.mem_limit
        # work left in slot-seconds: a task holding 4 slots for 10 s is 40 of them
        weight = e.cpus.get
        known = [e.expected[n] * weight(n, 1) for n in e.names if n in e.expected]
        self._remaining_known = sum(known)
        wide = sum(c - 1 for n, c in e.cpus.items() if n not in e.expected)
        self._unknown_left = e.total - len(known) + wide

    def _task_started(self, e: ev.TaskStarted) -> None:
        self.running[e.name] = time.monotonic()
        self._holding[e.name] = (e.cpus, e.mem)
        if self.verbosity > 0:
            self._print(self._paint(f"$ {e.command}", "DIM") + f"    # {e.name}: {e.reason}")
        self._draw(force=True)

    def _task_done(self, e: ev.TaskDone) -> None:
        self.done += 1
        self.running.pop(e.name, None)
        self._holding.pop(e.name, None)
        self._account_eta(e)
        if e.outcome == ev.FAILED:
            self.failed += 1
            self.failed_names.append(e.name)
            self._print_failure(e)
        elif e.outcome in (ev.RAN, ev.RESTORED):
            self._print_finished(e)
        elif e.outcome == ev.SKIPPED and self.verbosity >= 0:
            self._print(self._paint(f"skipped {e.name}: {e.reason}", "YELLOW"))
        self._draw(force=e.outcome != ev.UP_TO_DATE)  # throttle only the flood of no-ops

    def _account_eta(self, e: ev.TaskDone) -> None:
        past = self._expected.get(e.name)
        cpus = self._cpus.get(e.name, 1)
        if past is None:
            self._unknown_left -= cpus
        else:
            self._remaining_known -= past * cpus
        if e.outcome == ev.RAN:
            self._ran_time += e.duration
            self._ran_count += 1

    def eta(self) -> float | None:
        """Seconds left: the remaining tasks' expected durations (as the scheduler
        expects them), else this run's mean, times the slots each holds, over all slots."""
        mean = self._ran_time / self._ran_count if self._ran_count else None
        unknown = self._unknown_left * mean if mean is not None else 0.0
        if mean is None and self._unknown_left and not self._remaining_known:
            return None
        return max(0.0, self._remaining_known + unknown) / max(1, self.jobs)

    def _task_output(self, e: ev.TaskOutput) -> None:
        """Whole lines as they come, prefixed by the task's name when several may run."""
        self._streamed.add(e.name)
        data = self._partial.pop(e.name, b"") + e.data
        lines = data.split(b"\n")
        if lines[-1]:
            self._partial[e.name] = lines[-1]
        prefix = f"[{e.name}] " if self.jobs != 1 else ""
        for line in lines[:-1]:
            self._print(prefix + _decode(line))

    def _flush_stream(self, name: str) -> None:
        rest = self._partial.pop(name, b"")
        if rest:
            self._print(("" if self.jobs == 1 else f"[{name}] ") + _decode(rest))

    def _print_finished(self, e: ev.TaskDone) -> None:
        if e.name in self._streamed:
            self._flush_stream(e.name)
            self._streamed.discard(e.name)
            e = e._replace(output=b"")  # shown already, as it came
        if self.verbosity < 0:
            return
        word = "restored" if e.outcome == ev.RESTORED else "ran"
        timing = f" ({format_seconds(e.duration)})" if e.outcome == ev.RAN else ""
        line = f"[{self.done}/{self.total}] {self._paint(word, 'GREEN')} {e.name}{timing}"
        text = _decode(e.output).rstrip("\n")
        if text and e.outcome == ev.RESTORED:  # replayed from the run cache: say so
            line += self._paint(" (replaying what it printed when it ran)", "DIM")
        self._print(line + ("\n" + text if text else ""))

    def _print_failure(self, e: ev.TaskDone) -> None:
        if e.name in self._streamed:  # (its last lines are shown again, below)
            self._flush_stream(e.name)
            self._streamed.discard(e.name)
        head = self._paint(f"FAILED {e.name}: {e.reason}", "RED", "BRIGHT")
        command = shorten_command(e.command, self.verbosity > 0)
        lines = [f"[{self.done}/{self.total}] {head}"]
        if command:  # (none for a task never started: a missing input)
            lines.append(f"  command: {command}")
        head, tail, source, cut = self._failure_lines(e)
        if head:
            lines.append(f"  first error lines of {source}:")
            lines += ["  | " + t for t in head]
        if tail:
            lines.append(f"  last {_lines(len(tail))} of {source}:")
            lines += ["  | " + t for t in tail]
        if e.log is None and e.full_log and cut:  # (a log= file is named above)
            lines.append(f"  whole output: {_shown_path(e.full_log)}")
        self._print("\n".join(lines), force=True)

    def _failure_lines(self, e: ev.TaskDone) -> tuple[list[str], list[str], str, bool]:
        """The first error-looking lines (when the tail does not show them) and the
        last lines of a failed task's output, where they come from, and whether
        lines were left out."""
        if e.log is not None:
            data = _ends_of(e.log)
            if data is None:
                return [], [], "", False
            source = e.log
        else:
            data, source = e.output, "output"
        text = _decode(data).splitlines()
        tail = text[-TAIL_LINES:]
        errors = [t for t in text[: len(text) - len(tail)] if _ERROR.search(t)]
        return errors[:ERROR_LINES], tail, source, len(text) > len(tail)

    def _build_finished(self, e: ev.BuildFinished) -> None:
        self._clear_line()
        c = e.counts
        not_started = self.total - self.done  # of the tasks the build set out to do
        parts = [
            self._paint(f"ran {c[ev.RAN]}", "GREEN" if c[ev.RAN] else ""),
            f"restored {c[ev.RESTORED]}",
            self._paint(f"up to date {c[ev.UP_TO_DATE]}", "DIM"),
        ]
        if c[ev.FAILED]:
            parts.append(self._paint(f"failed {c[ev.FAILED]}", "RED"))
        if c[ev.SKIPPED]:
            parts.append(self._paint(f"skipped {c[ev.SKIPPED]}", "YELLOW"))
        if not_started:
            parts.append(f"not started {not_started}")
        if len(self.failed_names) > 1:  # with -k: every failed task, named once more
            shown = self.failed_names[:FAILED_NAMES]
            more = len(self.failed_names) - len(shown)
            names = ", ".join(shown) + (f" and {more} more" if more else "")
            self.out.write(self._paint(f"pytaskmake: failed: {names}", "RED") + "\n")
        word = "interrupted" if e.interrupted else ("failed" if c[ev.FAILED] else "done")
        self.out.write(
            f"pytaskmake: {word}: " + ", ".join(parts) + f" in {format_seconds(e.wall)}\n"
        )
        self.out.flush()

    def _print(self, text: str, force: bool = False) -> None:
        if self.verbosity < 0 and not force:
            return
        self._clear_line()
        self.out.write(text + "\n")
        self.out.flush()
        self._draw(force=True)

    def _clear_line(self) -> None:
        if self._line_shown:
            self.out.write("\r\x1b[K")
            self._line_shown = False

    def _draw(self, force: bool = False) -> None:
        """Redraw the status line, at most ten times a second (a no-op must stay fast)."""
        if not self.status_line:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < _REDRAW_SECONDS:
            return
        self._last_draw = now
        text = self.status_text()
        if self._line_shown and text == self._shown:
            return
        self._clear_line()
        self.out.write(text)
        self.out.flush()
        self._line_shown = True
        self._shown = text

    def status_text(self) -> str:
        """`[done/total] pct% running:N failed:N ETA 3m12s  current-task`, fitted to the width."""
        pct = 100 * self.done // self.total if self.total else 100
        eta = self.eta()
        text = f"[{self.done}/{self.total}] {pct}% running:{len(self.running)}"
        text += self._in_use() + f" failed:{self.failed}"
        if eta is not None and self.running:
            text += f" ETA {format_seconds(eta)}"
        if self.running:
            text += "  " + next(reversed(self.running))
        text = fit_columns(text, self._width() - 1)
        if self.failed and self.colour:
            failed = f"failed:{self.failed}"
            text = text.replace(failed, self._paint(failed, "RED"), 1)
        return text

    def _in_use(self) -> str:
        """` cpus:3/4 mem:12G/30G`: shown when tasks hold more than a slot or memory."""
        text = ""
        if self._cpus:
            text += f" cpus:{sum(c for c, _ in self._holding.values())}/{self.jobs}"
        if self._mem_limit:
            held = sum(m for _, m in self._holding.values())
            text += f" mem:{format_size(held)}/{format_size(self._mem_limit)}"
        return text

    def _width(self) -> int:
        try:
            columns = os.get_terminal_size(self.out.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        return columns if columns >= 20 else 100


def fit_columns(text: str, columns: int) -> str:
    """The longest start of `text` that takes at most `columns` terminal columns (a
    CJK or other wide character takes two, a combining mark none)."""
    if text.isascii():
        return text[:columns]
    used = 0
    for i, char in enumerate(text):
        width = _char_width(char)
        if used + width > columns:
            return text[:i]
        used += width
    return text


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def shorten_command(command: str, verbose: bool, limit: int | None = None) -> str:
    """A command for a failure block: whole with -v, else its start and how much more."""
    limit = limit or LONG_COMMAND
    if verbose or len(command) <= limit:
        return command
    return f"{command[:limit]} ... ({len(command) - limit} more characters; -v shows it whole)"


def _lines(n: int) -> str:
    return "line" if n == 1 else f"{n} lines"


FAILED_NAMES = 50  # failed tasks named in the summary
LONG_COMMAND = 400  # characters of a command shown in a failure block without -v
ERROR_LINES = 10  # error-looking lines shown from before the tail
_ERROR = re.compile(r"\b(error|fatal|exception|traceback)\b|^E\s", re.IGNORECASE)
_ENDS = 64 * 1024  # bytes read from each end of a task's log file


def _shown_path(path: str) -> str:
    """A path as short as it reads well: relative when under the working directory."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _ends_of(path: str) -> bytes | None:
    """The first and last 64 KiB of a log file (a 1 GB log is not read whole)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= 2 * _ENDS:
                return f.read()
            head = f.read(_ENDS)
            f.seek(size - _ENDS)
            tail = f.read()
    except OSError:
        return None
    head = head[: head.rfind(b"\n") + 1]
    tail = tail[tail.find(b"\n") + 1 :]
    return head + f"[... {size - len(head) - len(tail):,} bytes not shown ...]\n".encode() + tail


def _decode(data: bytes) -> str:
    """Task output as text; bytes that are not UTF-8 are shown as U+FFFD, never a crash."""
    return data.decode("utf-8", errors="replace")
