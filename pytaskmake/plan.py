"""What a build would do, without doing it: for -n, --explain, --list and --graph.

Walks the selection in dependency order with the same rebuilder the build uses;
a task downstream of one that would run is reported as "upstream X will run",
since whether its inputs really change is only known after X runs.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from .cache import RunCache, cache_key, outputs_of
from .fanin import SlicedInputs
from .fingerprint import FileCache
from .graph import BuildGraph
from .scheduler import Scheduler
from .stale import (
    ALWAYS,
    BLOCKED,
    FORCED,
    MISSING_SOURCE,
    RERUN,
    UPSTREAM,
    Verdict,
    check,
    current_inputs,
    current_traced,
)
from .state import StateDB
from .taskfile import Task


def plan(
    graph: BuildGraph,
    names: list[str],
    state: StateDB,
    files: FileCache,
    always: bool = False,
    cache: RunCache | None = None,
    rerun: frozenset[str] = frozenset(),
) -> dict[str, Verdict]:
    """Verdict of every selected task, in dependency order; with `cache`, a stale task
    whose inputs are known now is marked restorable when the run cache holds it."""
    blocked = graph.missing_sources(names, lambda p: files.stat(p) is not None)
    scheduler = Scheduler(names, graph.upstream, graph.dependants)
    verdicts: dict[str, Verdict] = {}
    while (name := scheduler.pop()) is not None:
        task = graph.tasks[name]
        stale_ups = [u for u in graph.upstream[name] if u in verdicts and verdicts[u].stale]
        blocked_ups = [u for u in stale_ups if verdicts[u].code in (MISSING_SOURCE, BLOCKED)]
        if name in blocked:
            reason = f"blocked: missing input {blocked[name]} (no task produces it)"
            verdict = Verdict(True, MISSING_SOURCE, reason)
        elif blocked_ups:
            verdict = Verdict(True, BLOCKED, f"blocked: needs {blocked_ups[0]}, which cannot run")
        elif name in rerun and not always:
            verdict = RERUN
        elif task.always and not always:
            verdict = ALWAYS
        else:
            verdict = check(task, state.record(name), files, always)
            if isinstance(verdict.inputs, SlicedInputs):  # (it reads the state: not after)
                verdict = dataclasses.replace(verdict, inputs=dict(verdict.inputs))
        if not verdict.stale and stale_ups:
            verdict = Verdict(True, UPSTREAM, f"upstream {stale_ups[0]} will run")
        elif verdict.stale and not stale_ups and cache is not None and not always:
            verdict = _restorable(task, verdict, state, files, cache)
        verdicts[name] = verdict
        scheduler.succeeded(name)
    return verdicts


def _restorable(
    task: Task, verdict: Verdict, state: StateDB, files: FileCache, cache: RunCache
) -> Verdict:
    """`verdict`, marked restorable if the run cache holds this task's outputs for its
    inputs as they are now (the same test a build makes before it runs a task)."""
    if verdict.code in (FORCED, MISSING_SOURCE, BLOCKED) or not task.cache or not task.outputs:
        return verdict
    if not task.action.cacheable:
        return verdict
    record = state.record(task.name)
    inputs = current_inputs(task, files, record)
    key = cache_key(task.signature, task.outputs, inputs, current_traced(files, record))
    entry = cache.peek(key)
    if entry is None or set(outputs_of(entry)) != set(task.outputs):
        return verdict
    return dataclasses.replace(verdict, restorable=True)


def group_reasons(verdicts: dict[str, Verdict], limit: int = 5) -> list[str]:
    """Lines explaining the stale tasks, grouped when many share one reason."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for name, verdict in verdicts.items():
        if verdict.stale:
            by_reason[_group_key(verdict)].append(name)
    lines = []
    for reason, names in by_reason.items():
        if len(names) == 1:
            lines.append(f"{names[0]}: {verdicts[names[0]].reason}")
            continue
        shown = ", ".join(names[:limit]) + (
            f", ... ({len(names) - limit} more)" if len(names) > limit else ""
        )
        lines.append(f"{len(names)} tasks: {reason}: {shown}")
    return lines


def _group_key(verdict: Verdict) -> str:
    if verdict.code == UPSTREAM:
        return "an upstream task will run"
    return verdict.reason
