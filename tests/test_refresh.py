"""Tasks found clean after their files' stats moved are re-recorded as the build goes.

A sweep whose inputs were all written again unchanged (a generator script rerun, a
copy without -p) is rehashed, found clean and re-recorded, so the next no-op is
fast. Those records reach the state file in batches while the build still checks
the rest: before, all of them waited for the end of the checking round, holding
every verdict in memory (738 MiB at 100,000 points) and losing every rehash to a
kill in the middle.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import recorded

from pytaskmake import events as ev
from pytaskmake.engine import Engine, EngineOptions
from pytaskmake.taskfile import Task

POINTS = 2500  # more than two batches


def stamps(root: Path) -> dict[str, int]:
    """The stamps the state file holds now, as another process would read them."""
    return recorded(root, "stamp")


class PeekAt:
    """At the `at`-th task found up to date, counts the records already re-recorded."""

    def __init__(self, root: Path, before: dict[str, int], at: int) -> None:
        self.root, self.before, self.at = root, before, at
        self.clean = 0
        self.rerecorded: int | None = None

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.TaskDone) and event.outcome == ev.UP_TO_DATE:
            self.clean += 1
            if self.clean == self.at:
                now = stamps(self.root)
                self.rerecorded = sum(now[name] != stamp for name, stamp in self.before.items())


def test_a_sweep_of_rewritten_inputs_is_rerecorded_while_it_is_checked(tmp_path: Path) -> None:
    tasks = []
    for i in range(POINTS):
        (tmp_path / f"in_{i}.txt").write_text(f"point {i}\n")
        (tmp_path / f"out_{i}.txt").write_text(f"POINT {i}\n")
        tasks.append(
            Task(
                f"t{i}",
                f"tr a-z A-Z < in_{i}.txt > out_{i}.txt",
                (f"in_{i}.txt",),
                (f"out_{i}.txt",),
            )
        )
    assert Engine(tasks, tmp_path).touch() == POINTS  # adopted as built, nothing run
    before = stamps(tmp_path)
    later = time.time() + 10
    for i in range(POINTS):
        os.utime(tmp_path / f"in_{i}.txt", (later, later))

    peek = PeekAt(tmp_path, before, at=POINTS - 100)
    result = Engine(tasks, tmp_path, EngineOptions(jobs=2), [peek]).build()

    assert result.exit_code == 0
    assert result.counts[ev.UP_TO_DATE] == POINTS and result.counts[ev.RAN] == 0
    assert peek.rerecorded is not None and peek.rerecorded >= 2000, (
        f"{peek.rerecorded} of the first {POINTS - 100} clean tasks were on disk"
    )
    after = stamps(tmp_path)
    assert all(after[name] != stamp for name, stamp in before.items())
