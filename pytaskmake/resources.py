"""What a task holds while it runs (CPU slots of -j, memory, named resources), and
the pool of what is free.

`-j` alone counts a 4-thread simulation, a 30 GB run and a licence-limited tool
each as one. Here: the parsing of what tasks and the command line declare ("4G",
gpu=2), the memory learned from a task's recorded peak, the check that no task
asks for more than the whole machine, and the pool admission fits tasks into.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from .empty import EMPTY
from .errors import ResourceError

if TYPE_CHECKING:
    from .taskfile import Task

AUTO = -1  # mem="auto" (or no mem=): the recorded peak, when there is one
MARGIN = 1.25  # a learned peak is taken this much larger...
_STEPS = 4  # ...then rounded up to one of 4 sizes per doubling (1, 1.25, 1.5, 1.75 x 2^k)
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


class Demand(NamedTuple):
    """What one task holds while it runs. Tasks of a sweep share a few of these.
    (Named tuples, not dataclasses, here: see events.py.)"""

    cpus: int = 1
    mem: int = 0  # bytes; 0: not counted (unknown)
    named: tuple[tuple[str, float], ...] = ()


ONE = Demand()  # what a task declaring nothing holds: one slot


def parse_mem(value: object, task: str) -> int:
    """A task's `mem=`: None or "auto" (learn it), a size ("4G", "500M") or a number
    of bytes; ValueError/TypeError naming the task otherwise."""
    if value is None or value == "auto":
        return AUTO
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"task {task!r}: mem must be a size like '4G' or 'auto', not {value!r}")
    try:
        from .sizes import parse_size

        size = parse_size(value) if isinstance(value, str) else int(value)
    except ValueError:
        raise ValueError(f"task {task!r}: mem={value!r} is not a size (try '4G', '500M')") from None
    if size < 0:
        raise ValueError(f"task {task!r}: mem must not be negative")
    return size


def parse_named(value: object, task: str) -> tuple[tuple[str, float], ...]:
    """A task's `resources=` ({"gpu": 1}) as sorted (name, amount) pairs."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise TypeError(f"task {task!r}: resources must be a dict like {{'gpu': 1}}")
    pairs = []
    for name, amount in value.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"task {task!r}: resource names must be strings, not {name!r}")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise ValueError(f"task {task!r}: resource {name!r} needs an amount >= 0")
        if amount:
            pairs.append((name, float(amount)))
    return tuple(sorted(pairs))


def parse_cpus(value: object, task: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"task {task!r}: cpus must be a whole number >= 1, not {value!r}")
    return value


def parse_limit(text: str) -> tuple[str, float]:
    """--resource NAME=AMOUNT; ValueError in words."""
    name, sep, amount = text.partition("=")
    try:
        value = float(amount)
    except ValueError:
        value = -1.0
    if not sep or not name.strip() or value < 0 or not math.isfinite(value):
        raise ValueError(f"--resource {text!r}: expected NAME=AMOUNT, like gpu=2")
    return name.strip(), value


def learned(peak: int) -> int:
    """The memory to reserve for a task whose recorded peak is `peak` bytes: with a
    margin, rounded up to a few sizes per doubling (so a sweep's tasks share a few
    demands, which keeps admission cheap)."""
    if peak <= 0:
        return 0
    want = peak * MARGIN
    power = 2.0 ** math.floor(math.log2(want))
    step = math.ceil(want / power * _STEPS - 1e-9) / _STEPS
    return int(math.ceil(power * step))


def available_memory() -> int:
    """Bytes this machine can give tasks now without swapping (Linux MemAvailable);
    elsewhere, physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def format_size(size: float) -> str:
    for unit in ("", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if size == int(size) else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}G"


class Limits(NamedTuple):
    """The whole of each resource a build may hand out at once."""

    slots: int
    mem: int = 0  # bytes; 0: memory not limited
    named: Mapping[str, float] = EMPTY

    def check(self, name: str, where: str, demand: Demand, declared_mem: bool) -> None:
        """ResourceError if `demand` can never fit, naming the task and resource."""
        if demand.cpus > self.slots:
            raise ResourceError(name, where, "cpus", demand.cpus, self.slots, "-j")
        if declared_mem and self.mem and demand.mem > self.mem:
            raise ResourceError(
                name, where, "mem", format_size(demand.mem), format_size(self.mem), "--mem"
            )
        for resource, amount in demand.named:
            have = self.named.get(resource, 0.0)
            if amount > have:
                raise ResourceError(name, where, resource, f"{amount:g}", f"{have:g}", "--resource")


class Pool:
    """What is free now; a task starts only when its whole demand fits."""

    __slots__ = ("limits", "slots", "mem", "named")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.slots = limits.slots
        self.mem = limits.mem
        self.named = dict(limits.named)

    def copy(self) -> Pool:
        other = Pool(self.limits)
        other.slots, other.mem, other.named = self.slots, self.mem, dict(self.named)
        return other

    def fits(self, d: Demand) -> bool:
        if d.cpus > self.slots:
            return False
        if d.mem and self.limits.mem and d.mem > self.mem:
            return False
        if d.named:
            return all(self.named.get(k, 0.0) >= v - 1e-9 for k, v in d.named)
        return True

    def take(self, d: Demand) -> None:
        self.slots -= d.cpus
        if d.mem or d.named:
            self._add(d, -1)

    def give(self, d: Demand) -> None:
        self.slots += d.cpus
        if d.mem or d.named:
            self._add(d, 1)

    def _add(self, d: Demand, sign: int) -> None:
        if self.limits.mem:
            self.mem += sign * d.mem
        for k, v in d.named:
            self.named[k] = self.named.get(k, 0.0) + sign * v

    def in_use(self) -> tuple[int, int]:
        """(slots, memory bytes) held by running tasks."""
        mem = self.limits.mem - self.mem if self.limits.mem else 0
        return self.limits.slots - self.slots, mem


def thread_environment(base: Mapping[str, str], cpus: int) -> dict[str, str]:
    """`base` with the usual thread-count variables set to `cpus`, so that a task's
    OpenMP or BLAS uses the slots it holds, not every core of the machine (a command
    setting them itself wins: `OMP_NUM_THREADS=8 ./sim`)."""
    env = dict(base)
    env.update(dict.fromkeys(THREAD_VARIABLES, str(cpus)))
    return env


def demands_of(
    tasks: Mapping[str, Task], names: Iterable[str], peaks: Mapping[str, int], limits: Limits
) -> dict[str, Demand]:
    """What each of `names` holds when it is not ONE: declared, or for memory learned
    from its recorded peak; ResourceError if one can never fit in `limits`. A learned
    peak past the whole memory limit is cut to it (that task then runs alone)."""
    found: dict[str, Demand] = {}
    shared: dict[Demand, Demand] = {ONE: ONE}
    for name in names:
        task = tasks[name]
        declared = task.scheduling
        if declared is None and name not in peaks:
            continue
        cpus, mem, named = (1, AUTO, ()) if declared is None else declared[:3]
        if mem == AUTO:
            mem = learned(peaks.get(name, 0))
            if limits.mem and mem > limits.mem:
                mem = limits.mem
        demand = Demand(cpus, mem, named)
        declared_mem = declared is not None and declared[1] != AUTO
        limits.check(name, task.where, demand, declared_mem)
        found[name] = shared.setdefault(demand, demand)
    return found
