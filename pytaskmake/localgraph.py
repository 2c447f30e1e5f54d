"""The graph around the tasks a build reaches, when a snapshot vouches for the rest.

Past the no-op snapshot (dirty.py), a build needs the edges of a few tasks: who
reads what the suspects write, transitively, and what those tasks wait on. Every
edge of 200,000 tasks took ~1.1 s to build here, in an edit at 100,000 points that
ninja finishes in 3.4 s. `LocalGraph` finds the readers of a set of tasks with one
pass over the declarations (a set test per task, in C), and only for the tasks the
build reaches; a task's upstream is looked up when asked for.

Why that is still a validated graph: the last complete build's graph was acyclic,
and a chunk whose declarations match a saved chunk holds tasks that graph had,
unchanged. A new edge has a changed task at one end (a reader whose inputs or deps
changed, or a producer whose outputs did), so a new cycle passes through a changed
task and lies wholly downstream of it: Kahn's count over the downstream closure of
the changed tasks finds it. Clashing outputs and logs and unknown deps are checked
over every task, as BuildGraph does; they cost little.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from .errors import GraphError
from .graph import BuildGraph, _check_acyclic, _check_logs, _producers
from .taskfile import Task

Edges = tuple[str, ...]
# an edge list as kept: a task's one neighbour as its name alone (a 1-tuple costs 48
# bytes, and 200,000 tasks of a sweep have one reader or one producer each: 14 MiB
# at 100,000 points), any other number as a tuple
Kept = str | Edges


def _edges(kept: Kept) -> Edges:
    # (isinstance: a task may be named by a str subclass, a StrEnum member, and its
    # name is then kept as given)
    return (kept,) if isinstance(kept, str) else kept


def _kept(edges: Edges | list[str]) -> Kept:
    return edges[0] if len(edges) == 1 else tuple(edges)


class LocalGraph(BuildGraph):
    """A BuildGraph whose `upstream` and `dependants` are found on demand.

    `changed`: the tasks whose declarations no saved snapshot chunk holds (new or
    edited); a cycle through them is a GraphError now, as BuildGraph raises it.
    """

    def __init__(self, tasks: dict[str, Task], changed: Iterable[str]) -> None:
        self.tasks = tasks
        self.producer = _producers(tasks.values())
        _check_logs(tasks.values(), self.producer)
        _check_deps(tasks)
        self._upstream: dict[str, Kept] = {}
        self._readers: dict[str, Kept] = {}
        self.upstream = _Lazy(tasks, self._upstream_named)  # type: ignore[assignment]
        self.dependants = _Lazy(tasks, self._readers_named)  # type: ignore[assignment]
        changed = list(changed)
        if changed:
            self._check_acyclic_from(changed)

    def readers(self, names: Iterable[str]) -> Mapping[str, Kept]:
        """The dependants of `names` (and of any task asked about before), found in one
        pass over every task for those not known yet; as kept (see `_edges`)."""
        unknown = [n for n in names if n not in self._readers]
        if unknown:
            self._scan(unknown)
        return self._readers

    def _scan(self, names: list[str]) -> None:
        """Find, in declaration order, the tasks reading an output of `names` or naming
        one of them in deps (as BuildGraph's dependants list them)."""
        tasks = self.tasks
        wanted = set(names)
        producer_of = {p: n for n in names for p in tasks[n].outputs}
        written = set(producer_of)
        found: dict[str, list[str]] = {n: [] for n in names}
        for name, t in tasks.items():
            if not written.isdisjoint(t.inputs):
                for path in t.inputs:
                    up = producer_of.get(path)
                    if up is not None and (not found[up] or found[up][-1] != name):
                        found[up].append(name)
            if t.deps:
                for dep in t.deps:
                    if dep in wanted and (not found[dep] or found[dep][-1] != name):
                        found[dep].append(name)
        for n, readers in found.items():
            self._readers[n] = _kept(readers)

    def _readers_named(self, name: str) -> Edges:
        """One task's dependants; on a miss, those of every task not known yet, in the
        same pass (a caller going through many tasks one by one costs one pass, not
        one per task)."""
        found = self._readers.get(name)
        if found is None:
            self._scan([n for n in self.tasks if n not in self._readers])
            found = self._readers[name]
        return _edges(found)

    def _upstream_named(self, name: str) -> Edges:
        ups = self._upstream.get(name)
        if ups is None:
            found = self._upstream_of(self.tasks[name])
            self._upstream[name] = _kept(found)
            return found
        return _edges(ups)

    def downstream(self, marked: set[str], selected: set[str] | None = None) -> set[str]:
        """`marked` grown by every task downstream of one of them (of `selected`, when
        given), a level at a time: one pass over the declarations per level."""
        frontier = list(marked)
        while frontier:
            readers = self.readers(frontier)
            reached = []
            for name in frontier:
                for child in _edges(readers[name]):
                    if child not in marked and (selected is None or child in selected):
                        marked.add(child)
                        reached.append(child)
            frontier = reached
        return marked

    def _check_acyclic_from(self, changed: list[str]) -> None:
        """GraphError when a cycle passes through a changed task (see the module's
        docstring): Kahn's count over their downstream closure."""
        reach = self.downstream(set(changed))
        _check_acyclic(self.upstream, self.dependants, reach)


class _Lazy(Mapping[str, Edges]):
    """A task's edges, computed on first use; every task is a key."""

    def __init__(self, tasks: dict[str, Task], find: Callable[[str], Edges]) -> None:
        self._tasks, self._find = tasks, find

    def __getitem__(self, name: str) -> Edges:
        if name not in self._tasks:
            raise KeyError(name)
        return self._find(name)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)


def _check_deps(tasks: dict[str, Task]) -> None:
    """A dep naming no task (one removed from the Taskfile) is an error, as BuildGraph
    says it."""
    for t in tasks.values():
        if t.deps:
            for dep in t.deps:
                if dep not in tasks:
                    raise GraphError(f"task {t.name!r} ({t.where}) depends on unknown task {dep!r}")
