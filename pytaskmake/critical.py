"""How long each task will take, and the critical path: the start order of a build.

Among ready tasks, the one heading the longest remaining chain of work starts
first, each task weighed by its recorded duration (unknown: the mean of its action
family, else of every recorded task, else 1). ninja 1.12 weighs every task 1; make
and doit keep no order at all. Computed once per build, in O(V+E) over the tasks
that may run, and only when some may (a no-op never does).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence

from .taskfile import Task

# programs that run a script: the script names the family ("python3 sim.py")
_INTERPRETERS = frozenset(("python", "python3", "Rscript", "julia", "sh", "bash", "perl", "ruby"))


def family(task: Task) -> str:
    """Tasks that likely take alike: a command's program (and script), a callable's
    qualified name."""
    action = task._action  # a shell command kept as its string: no object built
    if type(action) is str:
        words = [w for w in action.split(None, 8) if "=" not in w or w.startswith("-")]
    elif hasattr(action, "argv"):
        words = list(action.argv[:2])
    else:
        function = getattr(action, "function", None)
        function = getattr(function, "func", function)  # functools.partial
        module = getattr(function, "__module__", "")
        return f"{module}.{getattr(function, '__qualname__', type(function).__name__)}"
    if not words:
        return ""
    program = os.path.basename(words[0])
    if program in _INTERPRETERS and len(words) > 1 and not words[1].startswith("-"):
        return f"{program} {os.path.basename(words[1])}"
    return program


class Estimates:
    """Expected seconds of each task: recorded, else its family's mean, else the
    mean of all recorded, else 1."""

    def __init__(
        self, tasks: dict[str, Task], names: list[str], index: dict[str, int], recorded: array
    ) -> None:
        """`recorded`: the last duration of each of `names` (`index`: their positions),
        0 when unknown (never run, --touch, --clean); kept, not copied."""
        self._tasks, self._names, self._index = tasks, names, index
        self.recorded = recorded
        self._families: dict[str, float] | None = None  # computed when first needed
        count, total = 0, 0.0
        for seconds in recorded:
            if seconds > 0:
                count += 1
                total += seconds
        self.known = count > 0
        self.default = total / count if count else 1.0

    def __call__(self, name: str) -> float:
        k = self._index.get(name)
        found = self.recorded[k] if k is not None else 0.0
        if found > 0:
            return found
        if not self.known:
            return 1.0
        if self._families is None:
            self._families = self._family_means()
        return self._families.get(family(self._tasks[name]), self.default)

    def _family_means(self) -> dict[str, float]:
        sums: dict[str, list[float]] = {}
        for name, seconds in zip(self._names, self.recorded, strict=True):
            task = self._tasks.get(name)
            if task is not None and seconds > 0:
                total = sums.setdefault(family(task), [0.0, 0.0])
                total[0] += seconds
                total[1] += 1
        return {f: s / n for f, (s, n) in sums.items()}

    def completed(self) -> Expected:
        """The expected seconds of every task, those unrecorded estimated (for ETAs),
        when there is any history to estimate from; else the recorded ones alone."""
        if self.known:
            recorded = self.recorded
            for k, name in enumerate(self._names):
                if recorded[k] <= 0:
                    recorded[k] = self(name)
        return Expected(self._names, self._index, self.recorded)


class Expected(Mapping[str, float]):
    """Seconds by name, over a build's positions (a dict of 200,000 floats was 12 MiB);
    a task whose duration is unknown (0) is not a key."""

    def __init__(self, names: list[str], index: dict[str, int], seconds: array) -> None:
        self._names, self._index, self._seconds = names, index, seconds

    def get(self, name: str, default: float | None = None) -> float | None:  # type: ignore[override]
        k = self._index.get(name)
        found = self._seconds[k] if k is not None else 0.0
        return found if found > 0 else default

    def __getitem__(self, name: str) -> float:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return self.get(name) is not None  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return (n for n, s in zip(self._names, self._seconds, strict=True) if s > 0)

    def __len__(self) -> int:
        return sum(1 for s in self._seconds if s > 0)


def remaining_paths(
    names: list[str],
    index: dict[str, int],
    upstream: Mapping[str, Sequence[str]],
    dependants: Mapping[str, Sequence[str]],
    weight: Callable[[str], float] | None,
) -> array:
    """For each of `names` (a selection closed under what it needs; `index`: their
    positions), the longest path of weights (None: 1 each) from it to the end of the
    build, itself included, by position: O(V+E)."""
    everything = len(names) == len(upstream)
    # per position: how many of its selected dependants have no length yet
    below = array("q", bytes(8 * len(names)))
    for k, name in enumerate(names):
        below[k] = (
            len(dependants[name])
            if everything
            else sum(1 for child in dependants[name] if child in index)
        )
    stack = [k for k, count in enumerate(below) if not count]
    level = array("d", bytes(8 * len(names)))
    where = index.get
    while stack:
        k = stack.pop()
        name = names[k]
        longest = 0.0
        for child in dependants[name]:
            c = where(child)
            if c is not None and level[c] > longest:
                longest = level[c]
        level[k] = (1.0 if weight is None else weight(name)) + longest
        for up in upstream[name]:
            u = where(up)
            if u is not None:
                below[u] -= 1
                if not below[u]:
                    stack.append(u)
    return level
