"""The lint report: where a Taskfile's declarations and what its tasks did disagree.

From the traces of the tasks that ran (access.py) and the graph alone, per task:
files it read but did not declare (nor got from a task upstream), files it wrote
but did not declare, declared inputs it never read, and reads of another task's
output that no dependency orders (a race: the result depends on which ran first).
A pure function of in-memory data; the CLI prints its lines (`--lint`) and exits 1
when it finds anything (Shake's --lint, BuildFS's checks, inside a declared build).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .access import Access
from .graph import BuildGraph
from .taskfile import Task

READ = "undeclared-read"
WRITE = "undeclared-write"
REMOVE = "undeclared-remove"
UNUSED = "unused-input"
RACE = "race"

_GROUP = 4  # a finding shared by more tasks than this is said once, for all of them


@dataclass(frozen=True)
class Finding:
    """One disagreement: `task` did `kind` to `path` (`other`: the writer, for a race)."""

    task: str
    kind: str
    path: str
    other: str = ""
    note: str = ""

    def words(self) -> str:
        """The finding in plain words, without the task's name."""
        if self.kind == READ:
            return f"reads {self.path}, which is not one of its inputs"
        if self.kind == WRITE:
            return f"writes {self.path}, which is not one of its outputs"
        if self.kind == REMOVE:
            return f"removes {self.path}, which is not one of its outputs"
        if self.kind == RACE:
            return (
                f"reads {self.path}, written by {self.other!r}, but no dependency orders "
                f"{self.other!r} first (a race)"
            )
        return f"never reads its input {self.path}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class LintReport:
    """The findings, in task order, and what was looked at."""

    findings: tuple[Finding, ...]
    traced: tuple[str, ...]  # the tasks whose runs were traced, in declaration order
    not_traced: int = 0  # selected tasks that did not run (up to date, restored, failed)
    blind: dict[str, str] = field(default_factory=dict)  # task -> what its trace missed
    where: dict[str, str] = field(default_factory=dict)  # task -> "Taskfile.py:12"

    @property
    def clean(self) -> bool:
        return not self.findings

    def lines(self) -> list[str]:
        """The report for a person: shared findings once, then each task's own."""
        shared, own = _grouped(self.findings)
        lines = []
        for words, names in shared:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            lines.append(f"lint: {len(names)} tasks each {words}: {shown}")
        by_task: dict[str, list[Finding]] = defaultdict(list)
        for finding in own:
            by_task[finding.task].append(finding)
        for name, found in by_task.items():
            where = f" ({self.where[name]})" if self.where.get(name) else ""
            lines.append(f"lint: {name}{where}")
            lines += [f"  {f.words()}" for f in found]
        for name, what in self.blind.items():
            lines.append(f"lint: {name}: not seen: {what}")
        lines.append(self._summary())
        return lines

    def _summary(self) -> str:
        tasks = len({f.task for f in self.findings})
        text = (
            f"lint: {len(self.findings)} problem(s) in {tasks} of {len(self.traced)} traced tasks"
            if self.findings
            else f"lint: no problems in {len(self.traced)} traced tasks"
        )
        if self.not_traced:
            text += (
                f"; {self.not_traced} selected task(s) did not run, so were not traced "
                "(-B runs them all)"
            )
        return text


def _grouped(
    findings: Iterable[Finding],
) -> tuple[list[tuple[str, list[str]]], list[Finding]]:
    """Findings shared word for word by more than _GROUP tasks (a sweep's simulations
    all reading one undeclared config), and the others."""
    by_words: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_words[finding.words()].append(finding)
    shared = [(w, [f.task for f in fs]) for w, fs in by_words.items() if len(fs) > _GROUP]
    own = [f for fs in by_words.values() if len(fs) <= _GROUP for f in fs]
    return shared, own


def lint(
    graph: BuildGraph,
    accesses: Mapping[str, Access],
    selected: Iterable[str] = (),
    discovered: Mapping[str, Iterable[str]] | None = None,
) -> LintReport:
    """Compare what each traced task did (`accesses`, by task name) with `graph`'s
    declarations; `selected`: the tasks the build was asked about (those not traced
    are counted as such); `discovered`: inputs a task's depfile lists (as good as
    declared)."""
    writers = _writers(graph, accesses)
    ancestors = _Ancestors(graph)
    findings: list[Finding] = []
    traced = [name for name in graph.tasks if name in accesses]
    for name in traced:
        task, seen = graph.tasks[name], accesses[name]
        listed = set(discovered.get(name, ())) if discovered else set()
        findings += _reads(task, seen, writers, ancestors, listed)
        findings += _writes(task, seen)
        findings += _unused(task, seen)
    chosen = set(selected)
    blind = {name: accesses[name].blind for name in traced if accesses[name].blind}
    where = {name: graph.tasks[name].where for name in traced}
    return LintReport(tuple(findings), tuple(traced), len(chosen - set(traced)), blind, where)


def _writers(graph: BuildGraph, accesses: Mapping[str, Access]) -> dict[str, list[str]]:
    """Each file the traces saw written (undeclared too), with the tasks writing it."""
    found: dict[str, list[str]] = defaultdict(list)
    for name, seen in accesses.items():
        for path in seen.writes:
            if graph.producer.get(path) != name:
                found[path].append(name)
    return found


class _Ancestors:
    """Which tasks come before a task through dependencies (computed when asked)."""

    def __init__(self, graph: BuildGraph) -> None:
        self.graph = graph
        self._memo: dict[str, set[str]] = {}

    def of(self, name: str) -> set[str]:
        found = self._memo.get(name)
        if found is None:
            found, stack = set(), [name]
            upstream = self.graph.upstream
            while stack:
                for up in upstream[stack.pop()]:
                    if up not in found:
                        found.add(up)
                        stack.append(up)
            self._memo[name] = found
        return found


def _under(path: str, paths: set[str] | tuple[str, ...]) -> bool:
    """`path` is one of `paths` or inside one of them (a folder)."""
    while path and path not in ("/", "."):
        if path in paths:
            return True
        path = os.path.dirname(path)
    return False


def _reads(
    task: Task,
    seen: Access,
    writers: dict[str, list[str]],
    ancestors: _Ancestors,
    listed: set[str],
) -> list[Finding]:
    declared = set(task.inputs) | set(task.outputs) | listed
    declared.update(p for p in (task.log, task.depfile) if p)
    found = []
    for path in sorted(seen.reads):
        if _under(path, declared):
            continue
        producer = _producer(ancestors.graph, path)
        others = [w for w in [producer, *writers.get(path, ())] if w and w != task.name]
        if not others:
            found.append(Finding(task.name, READ, path))
            continue
        before = ancestors.of(task.name)
        for other in dict.fromkeys(others):
            if other not in before:  # (one upstream: produced there, in order)
                found.append(Finding(task.name, RACE, path, other))
    return found


def _producer(graph: BuildGraph, path: str) -> str | None:
    """The task declaring `path`, or a folder holding it, as an output."""
    while path and path not in ("/", "."):
        name = graph.producer.get(path)
        if name is not None:
            return name
        path = os.path.dirname(path)
    return None


def _writes(task: Task, seen: Access) -> list[Finding]:
    declared = set(task.outputs)
    declared.update(p for p in (task.log, task.depfile) if p)
    found = []
    for kind, paths in ((WRITE, seen.writes), (REMOVE, seen.removed)):
        found += [Finding(task.name, kind, p) for p in sorted(paths) if not _under(p, declared)]
    return found


def _unused(task: Task, seen: Access) -> list[Finding]:
    """Declared inputs it never opened, executed or (a folder) looked into."""
    used = seen.reads | seen.listed
    found = []
    for path in task.inputs:
        if path in used or _holds_any(path, used):
            continue
        if path in seen.missing:
            note = "it looked for it and found nothing"
        elif path in task.implicit:
            note = "named on its command line"
        else:
            note = ""
        found.append(Finding(task.name, UNUSED, path, note=note))
    return found


def _holds_any(folder: str, paths: frozenset[str]) -> bool:
    prefix = folder.rstrip("/") + "/"
    return any(p.startswith(prefix) for p in paths)
