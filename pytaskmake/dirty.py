"""The dirty set: which selected tasks may run in this build, before any runs.

Those whose stamp moved (the rebuilder says), and everything downstream of them.
Every other task is up to date and stays so, since nothing it reads can change in
this build; the build counts them at once, without the scheduler or an event
each, so an edit among 200,000 tasks schedules the few it reaches (ninja's dirty
set). Downstream tasks are still checked one by one once their upstream is done,
so a rerun that rewrites the same bytes stops there (early cutoff).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import snapshot
from .graph import BuildGraph
from .taskfile import Task


def dirty_everywhere(
    names: list[str], graph: BuildGraph, moved: Callable[[Task, bool], bool]
) -> set[str]:
    """The dirty set, asking about every selected task (no snapshot to go by)."""
    tasks = graph.tasks
    return with_downstream({n for n in names if moved(tasks[n], False)}, names, graph)


def dirty_past_snapshot(
    known: snapshot.Comparison,
    names: list[str],
    graph: BuildGraph,
    moved: Callable[[Task], bool],
    read_ahead: Callable[[list[str]], None] = lambda names: None,
    seed: Callable[[int], None] = lambda j: None,
    suspects: Callable[[int], Sequence[Task] | None] = lambda j: None,
) -> tuple[set[str], set[int]]:
    """The dirty set when a snapshot comparison names the chunks that changed; and the
    chunks checked whole.

    The suspects of a changed chunk (`suspects`: the snapshot's answer, else every
    task of it) are asked about, then those of each chunk the dirty set reaches,
    until no new chunk is reached: at the end only those chunks are digested again,
    and from the stats taken here (a file edited during the build must not slip
    into the snapshot unchecked).
    """
    chunks = known.chunks
    if known.suspects is not None:  # the caller named the files that changed
        read_ahead([t.name for t in known.suspects])
        marked = with_downstream({t.name for t in known.suspects if moved(t)}, names, graph)
        chunk_of = chunks.index()
        position = {t.name: i for i, t in enumerate(chunks.tasks) if t.name in marked}
        return marked, {chunk_of[i] for i in position.values()} | set(known.changed)
    marked: set[str] = set()
    todo, checked = set(known.changed), set()
    chunk_of = chunks.index() if todo else None
    while todo:
        for j in todo:
            seed(j)  # their files' stats, when taken already (Comparison.seed)
            tasks = suspects(j)
            if tasks is None:
                tasks = chunks.tasks_of(j)
            read_ahead([t.name for t in tasks])  # their records, in a few queries
            # (a task already marked is checked once its upstream is done: a summary of
            # 100,000 inputs downstream of an edit is not also stamped here, before)
            marked.update([t.name for t in tasks if t.name not in marked and moved(t)])
        checked |= todo
        marked = with_downstream(marked, names, graph)
        assert chunk_of is not None
        todo = {chunk_of[i] for i, t in enumerate(chunks.tasks) if t.name in marked}
        todo -= checked
    return marked, checked


def with_downstream(marked: set[str], names: list[str], graph: BuildGraph) -> set[str]:
    """`marked` and every selected task downstream of one of them."""
    if marked and len(marked) < len(names):
        graph.downstream(marked, set(names) if len(names) < len(graph.tasks) else None)
    return marked
