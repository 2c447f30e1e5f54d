"""The build graph: which task must finish before which, from files and explicit deps.

Edges run from the task producing a file to every task reading it, plus explicit
`deps`. The hot path (a no-op over 100,000 tasks) uses the edges as plain dicts;
the networkx DiGraph of the same edges is built on demand (target selection,
cycle reports, --graph), because importing networkx alone costs ~0.25 s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from .errors import GraphError, UsageError
from .taskfile import Task

if TYPE_CHECKING:
    import networkx as nx


class BuildGraph:
    """Validated tasks with their upstream/downstream relations, in declaration order."""

    def __init__(self, tasks: Iterable[Task] | dict[str, Task]) -> None:
        """`tasks` in declaration order; a dict by name (the registry's) is used as is."""
        self.tasks: dict[str, Task] = (
            tasks if isinstance(tasks, dict) else {t.name: t for t in tasks}
        )
        self.producer: dict[str, str] = _producers(self.tasks.values())
        _check_logs(self.tasks.values(), self.producer)
        # tuples, and the one empty tuple for the many tasks with none: 200,000 tasks
        # of lists cost ~20 MB more
        self.upstream: dict[str, tuple[str, ...]] = {}
        for t in self.tasks.values():
            self.upstream[t.name] = self._upstream_of(t)
        found: dict[str, list[str]] = {}
        for name, ups in self.upstream.items():
            for up in ups:
                found.setdefault(up, []).append(name)
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # 100,000 parse tasks feed one summary
        self.dependants: dict[str, tuple[str, ...]] = {
            name: shared.setdefault(t := tuple(found[name]), t) if name in found else ()
            for name in self.tasks
        }
        _check_acyclic(self.upstream, self.dependants)

    def _upstream_of(self, t: Task) -> tuple[str, ...]:
        """The tasks producing `t`'s inputs, plus its deps.

        The one change the graph makes to a declaration, and an invisible one: an
        input a task produces becomes the producer's own string object (an equal
        value: digests, stamps and names are unaffected). A sweep's Taskfile spells
        every intermediate path twice, once as an output and once as an input: 13 MB
        at 100,000 points, which kept the full build under 300 MB. Done here because
        the producer of each input is looked up here anyway (done at load, it cost
        0.3 s of a 2.4 s no-op that never builds the graph).
        """
        producer, tasks = self.producer, self.tasks
        if not t.deps and len(t.inputs) == 1:  # the sweep's usual shape, made cheap
            up = producer.get(t.inputs[0])
            if up is None:
                return ()
            if tasks[up].outputs == t.inputs:
                t.inputs = tasks[up].outputs
            return (up,)
        ups: dict[str, None] = {}
        shared = []
        for path in t.inputs:
            up = producer.get(path)
            if up is not None:
                ups[up] = None
                outs = tasks[up].outputs
                if outs[0] == path:
                    path = outs[0]
                elif len(outs) <= 8:  # (a generator of 100,000 files: no scan per reader)
                    path = next(o for o in outs if o == path)
            shared.append(path)
        if ups:
            t.inputs = tuple(shared)
        for dep in t.deps:
            if dep not in self.tasks:
                raise GraphError(f"task {t.name!r} ({t.where}) depends on unknown task {dep!r}")
            ups[dep] = None
        return tuple(ups)

    def downstream(self, marked: set[str], selected: set[str] | None = None) -> set[str]:
        """`marked` grown by every task downstream of one of them (of `selected`, when
        given)."""
        dependants = self.dependants
        stack = list(marked)
        while stack:
            for child in dependants[stack.pop()]:
                if child not in marked and (selected is None or child in selected):
                    marked.add(child)
                    stack.append(child)
        return marked

    def missing_sources(
        self, names: Iterable[str], exists: Callable[[str], bool]
    ) -> dict[str, str]:
        """Each selected task reading a file that neither exists nor is produced by any
        task, mapped to the first such file: it cannot run (a missing header, a data
        file not copied yet); the rest of the build can."""
        producer, tasks = self.producer, self.tasks
        found: dict[str, str] = {}
        absent: dict[str, bool] = {}
        for name in names:
            for path in tasks[name].inputs:
                if path in producer:
                    continue
                gone = absent.get(path)
                if gone is None:
                    gone = absent[path] = not exists(path)
                if gone:
                    found[name] = path
                    break
        return found

    def sources(self, names: Iterable[str]) -> dict[str, str]:
        """Input files no task produces, mapped to the first selected task reading each."""
        found: dict[str, str] = {}
        producer = self.producer
        for name in names:
            for path in self.tasks[name].inputs:
                if path not in producer and path not in found:
                    found[path] = name
        return found

    def select(self, targets: list[str], base: str = ".") -> list[str]:
        """Names of the targets and everything they need, in declaration order.

        A target is a task name, or a path (an output, or a folder holding outputs;
        `.` is every task with an output under `base`), relative to `base`: the
        folder the user stands in, relative to the project root.
        """
        if not targets:
            return list(self.tasks)
        import networkx as nx

        graph = self.to_networkx()
        wanted: set[str] = set()
        for target in targets:
            for name in self._resolve_target(target, base):
                wanted.add(name)
                wanted.update(nx.ancestors(graph, name))
        return [name for name in self.tasks if name in wanted]

    def named(self, targets: Iterable[str], base: str = ".") -> list[str]:
        """The tasks the targets name (not what they need), in declaration order;
        UsageError for a target that names none."""
        wanted = {name for target in targets for name in self._resolve_target(target, base)}
        return [name for name in self.tasks if name in wanted]

    def _resolve_target(self, target: str, base: str = ".") -> list[str]:
        if target in self.tasks:
            return [target]
        if os.path.isabs(target):
            path = os.path.normpath(os.path.relpath(target))
        else:
            path = os.path.normpath(os.path.join(base, target))
        if path in self.producer:
            return [self.producer[path]]
        prefix = "" if path == "." else path.rstrip("/") + "/"
        under = sorted({n for p, n in self.producer.items() if p.startswith(prefix)})
        if under:
            return under
        raise UsageError(
            f"unknown target {target!r}: not a task name nor a declared output"
            + (self._did_you_mean(target))
        )

    def _did_you_mean(self, target: str) -> str:
        """ninja's habit: the closest names and outputs to a typo."""
        import difflib

        close = difflib.get_close_matches(target, [*self.tasks, *self.producer], n=3, cutoff=0.6)
        return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""

    def to_networkx(self) -> nx.DiGraph:
        """The DAG as a networkx DiGraph; each edge carries the files linking the tasks."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(self.tasks)
        for name, ups in self.upstream.items():
            graph.add_edges_from((up, name) for up in ups)
        return graph


def _producers(tasks: Iterable[Task]) -> dict[str, str]:
    producer: dict[str, str] = {}
    for t in tasks:
        for path in t.outputs:
            other = producer.setdefault(path, t.name)
            if other != t.name:
                raise GraphError(f"output {path!r} is declared by both {other!r} and {t.name!r}")
    return producer


def _check_logs(tasks: Iterable[Task], producer: dict[str, str]) -> None:
    """A log file is written by its task: it must not be anyone's output or another's log."""
    logs: dict[str, str] = {}
    for t in tasks:
        if t.log is None:
            continue
        other = producer.get(t.log) or logs.get(t.log)
        if other is not None:
            raise GraphError(f"log {t.log!r} of task {t.name!r} is also written by {other!r}")
        logs[t.log] = t.name


def _check_acyclic(
    upstream: Mapping[str, tuple[str, ...]],
    dependants: Mapping[str, tuple[str, ...]],
    within: set[str] | None = None,
) -> None:
    """Reject a cycle, naming its tasks in order; `within`: only among these tasks (a
    set closed under `dependants`), else among all.

    Counting in-degrees (Kahn) is O(V+E) and cheap; only when tasks are left over
    is networkx asked to find the cycle among them.
    """
    waiting: dict[str, int] = {}
    ready: list[str] = []
    for name in upstream if within is None else within:
        ups = upstream[name]
        count = len(ups) if within is None else sum(1 for up in ups if up in within)
        if count:
            waiting[name] = count
        else:
            ready.append(name)
    while ready:
        for child in dependants[ready.pop()]:
            waiting[child] -= 1
            if not waiting[child]:
                ready.append(child)
    left = [name for name, count in waiting.items() if count]
    if left:
        import networkx as nx

        graph = nx.DiGraph((up, n) for n in left for up in upstream[n] if up in waiting)
        cycle = [edge[0] for edge in nx.find_cycle(graph)]
        raise GraphError("dependency cycle: " + " -> ".join([*cycle, cycle[0]]))
