"""What happens during a build, as data: the engine emits events, reporters observe.

The engine never prints; the console reporter, the trace writer and (later) a
watch-mode UI are all observers of these events.

Events are named tuples: immutable, made at import in a quarter of a frozen
dataclass's time (seven frozen dataclasses with slots cost 10 ms of every start,
1.5 ms each, on Python 3.11). Being tuples, they also compare equal to a plain
tuple of the same values. A changed copy is `event._replace(field=value)`; a
mapping field left out is EMPTY, shared, read-only and picklable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from .empty import EMPTY

RAN = "ran"
RESTORED = "restored"
UP_TO_DATE = "up-to-date"
FAILED = "failed"
SKIPPED = "skipped"


class BuildStarted(NamedTuple):
    """The build is about to work on `total` tasks (`names`); the others are up to date."""

    total: int
    jobs: int
    names: tuple[str, ...] = ()
    expected: Mapping[str, float] = EMPTY  # past durations, for ETAs
    cpus: Mapping[str, int] = EMPTY  # tasks holding more than one slot
    mem_limit: int = 0  # bytes tasks may hold at once, when any declares or learned memory


class TaskStarted(NamedTuple):
    name: str
    command: str
    reason: str
    attempt: int = 1
    slot: int = 0
    started: float = 0.0
    cpus: int = 1  # slots of -j it holds
    mem: int = 0  # bytes of memory it holds (0: not counted)


class TaskDone(NamedTuple):
    """A task reached its end state for this build: see the outcome constants above."""

    name: str
    outcome: str
    reason: str = ""
    duration: float = 0.0
    output: bytes = b""
    returncode: int | None = None
    command: str = ""
    log: str | None = None
    slot: int = 0
    started: float = 0.0
    full_log: str | None = None  # where all of `output` is, when it was cut or kept


class TaskRetry(NamedTuple):
    name: str
    attempt: int
    reason: str


class TaskOutput(NamedTuple):
    """Output a running task just printed (--stream, or -j1): shown as it comes."""

    name: str
    data: bytes


class Notice(NamedTuple):
    """A warning or note for the user (state DB rebuilt, Ctrl-C received...)."""

    message: str
    level: str = "warning"


class BuildFinished(NamedTuple):
    counts: dict[str, int]
    wall: float
    interrupted: bool = False
    signal: int = 0  # SIGTERM or SIGHUP when one stopped the build


Event = BuildStarted | TaskStarted | TaskDone | TaskRetry | TaskOutput | Notice | BuildFinished


class Observer(Protocol):
    def handle(self, event: Event) -> None: ...
