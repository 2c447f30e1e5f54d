"""What a build would do, without doing it: for -n, --explain, --list and --graph.

Walks the selection in dependency order with the same rebuilder the build uses;
a task downstream of one that would run is reported as "upstream X will run",
since whether its inputs really change is only known after X runs.
"""

from __future__ import annotations

from collections import defaultdict

from .fingerprint import FileCache
from .graph import BuildGraph
from .scheduler import Scheduler
from .stale import UPSTREAM, Verdict, check
from .state import StateDB


def plan(
    graph: BuildGraph, names: list[str], state: StateDB, files: FileCache, always: bool = False
) -> dict[str, Verdict]:
    """Verdict of every selected task, in dependency order."""
    graph.check_sources(names, lambda p: files.stat(p) is not None)
    scheduler = Scheduler(names, graph.upstream, graph.dependants)
    verdicts: dict[str, Verdict] = {}
    while (name := scheduler.pop()) is not None:
        task = graph.tasks[name]
        stale_ups = [u for u in graph.upstream[name] if u in verdicts and verdicts[u].stale]
        verdict = check(task, state.record(name), files, always)
        if not verdict.stale and stale_ups:
            verdict = Verdict(True, UPSTREAM, f"upstream {stale_ups[0]} will run")
        verdicts[name] = verdict
        scheduler.succeeded(name)
    return verdicts


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
