"""The ready queue (scheduler.py): pure bookkeeping, tested on in-memory graphs."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pytaskmake.scheduler import Scheduler

Edges = list[tuple[str, str]]
Dag = tuple[list[str], Edges]
Relations = dict[str, list[str]]


def relations(edges: Edges, names: list[str]) -> tuple[Relations, Relations]:
    """upstream/dependants dicts from (producer, consumer) edges."""
    upstream: dict[str, list[str]] = {n: [] for n in names}
    dependants: dict[str, list[str]] = {n: [] for n in names}
    for up, down in edges:
        upstream[down].append(up)
        dependants[up].append(down)
    return upstream, dependants


def make(edges: Edges, names: list[str], selected: list[str] | None = None) -> Scheduler:
    upstream, dependants = relations(edges, names)
    return Scheduler(selected if selected is not None else names, upstream, dependants)


def drain(s: Scheduler) -> list[str]:
    """Pop everything ready right now."""
    out: list[str] = []
    while (name := s.pop()) is not None:
        out.append(name)
    return out


def test_initially_ready_are_tasks_without_upstream_in_declaration_order() -> None:
    names = ["c", "a", "b", "d"]
    s = make([("a", "d")], names)
    assert s.total == 4
    assert drain(s) == ["c", "a", "b"]
    assert s.pop() is None


def test_a_task_becomes_ready_only_when_all_its_upstream_succeeded() -> None:
    names = ["a", "b", "c"]
    s = make([("a", "c"), ("b", "c")], names)
    assert drain(s) == ["a", "b"]
    s.succeeded("a")
    assert s.pop() is None
    s.succeeded("b")
    assert s.pop() == "c"
    assert s.pop() is None
    assert s.blocked() == []


def test_released_tasks_join_the_ready_ones_in_declaration_order() -> None:
    """A sim's parse, declared right after it, goes before later sims still ready."""
    names = ["sim1", "parse1", "sim2", "parse2", "sim3", "parse3"]
    s = make([("sim1", "parse1"), ("sim2", "parse2"), ("sim3", "parse3")], names)
    assert s.pop() == "sim1"
    s.succeeded("sim1")
    assert drain(s) == ["parse1", "sim2", "sim3"]
    s.succeeded("sim3")  # finished first: parse3 is released before parse2
    s.succeeded("sim2")
    assert drain(s) == ["parse2", "parse3"]


def test_upstream_outside_the_selection_is_not_waited_for() -> None:
    names = ["a", "b"]
    s = make([("a", "b")], names, selected=["b"])
    assert s.total == 1
    assert drain(s) == ["b"]


def test_dependants_outside_the_selection_are_never_released() -> None:
    names = ["a", "b"]
    s = make([("a", "b")], names, selected=["a"])
    assert drain(s) == ["a"]
    s.succeeded("a")
    assert s.pop() is None


def test_failure_skips_exactly_the_transitive_dependants() -> None:
    #   a -> b -> d ;  c -> d ;  c -> e ;  f independent
    names = ["a", "b", "c", "d", "e", "f"]
    s = make([("a", "b"), ("b", "d"), ("c", "d"), ("c", "e")], names)
    assert drain(s) == ["a", "c", "f"]
    assert sorted(s.failed("a")) == ["b", "d"]
    s.succeeded("c")
    # d lost one of its two parents: it must not become ready through c
    assert drain(s) == ["e"]
    s.succeeded("e")
    s.succeeded("f")
    assert s.pop() is None
    assert s.blocked() == []


def test_failure_does_not_report_a_dependant_twice_in_a_diamond() -> None:
    names = ["a", "b", "c", "d"]
    s = make([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")], names)
    assert drain(s) == ["a"]
    skipped = s.failed("a")
    assert sorted(skipped) == ["b", "c", "d"]
    assert len(skipped) == len(set(skipped))


def test_blocked_lists_ready_and_waiting_tasks_left_behind() -> None:
    names = ["a", "b", "c"]
    s = make([("a", "c")], names)
    assert s.pop() == "a"
    assert sorted(s.blocked()) == ["b", "c"]


def test_custom_priority_orders_ready_tasks() -> None:
    names = ["a", "b", "c"]
    upstream, dependants = relations([], names)
    weight = {"a": 3.0, "b": 1.0, "c": 2.0}
    s = Scheduler(names, upstream, dependants, priority=weight.__getitem__)
    assert drain(s) == ["b", "c", "a"]


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    n = draw(st.integers(min_value=1, max_value=12))
    names = [f"t{i}" for i in range(n)]
    edges: Edges = []
    for j in range(n):
        for i in range(j):
            if draw(st.booleans()):
                edges.append((names[i], names[j]))
    return names, edges


@settings(max_examples=60, deadline=None)
@given(dags(), st.randoms(use_true_random=False))
def test_every_task_is_popped_once_in_topological_order(dag: Dag, rnd: random.Random) -> None:
    names, edges = dag
    s = make(edges, names)
    done: list[str] = []
    ready = drain(s)
    while ready:
        name = ready.pop(rnd.randrange(len(ready)))
        done.append(name)
        s.succeeded(name)
        ready += drain(s)
    assert sorted(done) == sorted(names)
    position = {n: i for i, n in enumerate(done)}
    for up, down in edges:
        assert position[up] < position[down]
    assert s.blocked() == []


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_failure_skips_the_descendants_and_nothing_else(dag: Dag, data: st.DataObject) -> None:
    names, edges = dag
    s = make(edges, names)
    ready = drain(s)
    victim = data.draw(st.sampled_from(ready))
    skipped = s.failed(victim)
    descendants: set[str] = set()
    frontier = [victim]
    while frontier:
        node = frontier.pop()
        for up, down in edges:
            if up == node and down not in descendants:
                descendants.add(down)
                frontier.append(down)
    assert sorted(skipped) == sorted(descendants)
    # everything else still runs to completion
    finished = {victim}
    ready = [n for n in ready if n != victim]
    while ready:
        name = ready.pop()
        finished.add(name)
        s.succeeded(name)
        ready += drain(s)
    assert finished | descendants == set(names)
