"""How long each task will take, and the critical path: the start order of a build.

Among ready tasks, the one heading the longest remaining chain of work starts
first, each task weighed by its recorded duration (unknown: the mean of its action
family, else of every recorded task, else 1). ninja 1.12 weighs every task 1; make
and doit keep no order at all. Computed once per build, in O(V+E) over the tasks
that may run, and only when some may (a no-op never does).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

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

    def __init__(self, tasks: dict[str, Task], recorded: dict[str, float]) -> None:
        """`recorded`: last durations by name (0: --touch, --clean: unknown); kept, not
        copied (a sweep's is 200,000 entries)."""
        self._tasks = tasks
        self.recorded = recorded
        self._families: dict[str, float] | None = None  # computed when first needed
        known = [d for d in recorded.values() if d > 0]
        self.known = bool(known)
        self.default = sum(known) / len(known) if known else 1.0

    def __call__(self, name: str) -> float:
        found = self.recorded.get(name)
        if found is not None and found > 0:
            return found
        if not self.known:
            return 1.0
        if self._families is None:
            self._families = self._family_means()
        return self._families.get(family(self._tasks[name]), self.default)

    def _family_means(self) -> dict[str, float]:
        sums: dict[str, list[float]] = {}
        for name, seconds in self.recorded.items():
            task = self._tasks.get(name)
            if task is not None and seconds > 0:
                total = sums.setdefault(family(task), [0.0, 0.0])
                total[0] += seconds
                total[1] += 1
        return {f: s / n for f, (s, n) in sums.items()}

    def completed(self, names: list[str]) -> dict[str, float]:
        """`recorded` with the estimate of each of `names` it lacks (for ETAs), when
        there is any history to estimate from; else as it is."""
        if self.known:
            missing = {n: self(n) for n in names if self.recorded.get(n, 0.0) <= 0}
            self.recorded.update(missing)
        return self.recorded


def remaining_paths(
    names: list[str],
    upstream: dict[str, tuple[str, ...]],
    dependants: dict[str, tuple[str, ...]],
    weight: Callable[[str], float] | None,
) -> dict[str, float]:
    """For each of `names` (a selection closed under what it needs), the longest path
    of weights (None: 1 each) from it to the end of the build, itself included: O(V+E)."""
    everything = len(names) == len(upstream)
    selected: Iterable[str] | set[str] = upstream if everything else set(names)
    if everything:
        below = {n: len(dependants[n]) for n in names}
    else:
        below = {n: sum(1 for c in dependants[n] if c in selected) for n in names}
    stack = [n for n, count in below.items() if not count]
    level: dict[str, float] = {}
    get = level.get
    while stack:
        name = stack.pop()
        longest = 0.0
        for child in dependants[name]:
            after = get(child)
            if after is not None and after > longest:
                longest = after
        level[name] = (1.0 if weight is None else weight(name)) + longest
        for up in upstream[name]:
            count = below.get(up)
            if count is not None:
                if count == 1:
                    del below[up]
                    stack.append(up)
                else:
                    below[up] = count - 1
    return level
