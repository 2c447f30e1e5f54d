"""What happens during a build, as data: the engine emits events, reporters observe.

The engine never prints; the console reporter, the trace writer and (later) a
watch-mode UI are all observers of these events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

RAN = "ran"
RESTORED = "restored"
UP_TO_DATE = "up-to-date"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class BuildStarted:
    """The build is about to work on `total` tasks (`names`); the others are up to date."""

    total: int
    jobs: int
    names: tuple[str, ...] = ()
    expected: dict[str, float] = field(default_factory=dict)  # past durations, for ETAs
    cpus: dict[str, int] = field(default_factory=dict)  # tasks holding more than one slot
    mem_limit: int = 0  # bytes tasks may hold at once, when any declares or learned memory


@dataclass(frozen=True, slots=True)
class TaskStarted:
    name: str
    command: str
    reason: str
    attempt: int = 1
    slot: int = 0
    started: float = 0.0
    cpus: int = 1  # slots of -j it holds
    mem: int = 0  # bytes of memory it holds (0: not counted)


@dataclass(frozen=True, slots=True)
class TaskDone:
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


@dataclass(frozen=True, slots=True)
class TaskRetry:
    name: str
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class TaskOutput:
    """Output a running task just printed (--stream, or -j1): shown as it comes."""

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Notice:
    """A warning or note for the user (state DB rebuilt, Ctrl-C received...)."""

    message: str
    level: str = "warning"


@dataclass(frozen=True, slots=True)
class BuildFinished:
    counts: dict[str, int]
    wall: float
    interrupted: bool = False
    signal: int = 0  # SIGTERM or SIGHUP when one stopped the build


Event = BuildStarted | TaskStarted | TaskDone | TaskRetry | TaskOutput | Notice | BuildFinished


class Observer(Protocol):
    def handle(self, event: Event) -> None: ...
