"""The ready queue (scheduler.py): pure bookkeeping, tested on in-memory graphs."""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable

import pytest
from conftest import Project, build
from hypothesis import given, settings
from hypothesis import strategies as st

from pytaskmake.critical import Estimates, family, remaining_paths
from pytaskmake.resources import ONE, Demand, Limits, Pool
from pytaskmake.scheduler import Scheduler, positions
from pytaskmake.taskfile import Task

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


def test_int_keys_packed_with_positions_order_as_key_then_declaration() -> None:
    """Int priorities are kept with each task's position in one int (what for_build
    does: 100,000 ready simulations): the order is that of (key, position) tuples,
    negative keys and positions past 2**16 included, as tasks become ready in any order."""
    rnd = random.Random(7)
    names = [f"t{i}" for i in range(70_000)]
    key = {n: rnd.randrange(-40, 3) for n in names}
    heads = names[::7]  # each released the six tasks after it
    edges = [(names[i - i % 7], n) for i, n in enumerate(names) if i % 7]
    upstream, dependants = relations(edges, names)
    orders = []
    for int_keys in (True, False):
        s = Scheduler(names, upstream, dependants, key.__getitem__, int_keys=int_keys)
        order = []
        while (name := s.pop()) is not None:
            order.append(name)
            if int(name[1:]) % 5:  # the others fail to release their followers
                s.succeeded(name)
        orders.append((order, sorted(s.blocked())))
    assert orders[0] == orders[1]
    assert orders[0][0][0] == min(heads, key=lambda n: (key[n], int(n[1:])))
    assert len(orders[0][1]) > 1000, "some were left waiting"


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


# --- admission: the most urgent ready task that fits, never starved --------------------


def admitting(
    names: list[str],
    demand: dict[str, Demand],
    limits: Limits,
    estimate: dict[str, float],
    priority: dict[str, float] | None = None,
) -> Scheduler:
    upstream, dependants = relations([], names)
    key = None if priority is None else (lambda n: -priority.get(n, 0))
    return Scheduler(
        names,
        upstream,
        dependants,
        key,
        lambda n: demand.get(n, ONE),
        Pool(limits),
        lambda n: estimate.get(n, 1.0),
    )


def test_a_task_that_does_not_fit_is_passed_over_by_one_that_ends_in_time() -> None:
    s = admitting(
        ["long", "wide", "quick"],
        {"wide": Demand(cpus=2)},
        Limits(2),
        {"long": 10.0, "quick": 1.0},
    )
    assert s.admit(0.0) == "long"
    assert s.admit(0.0) == "quick", "wide waits for 2 slots; quick ends before long does"
    assert s.admit(0.0) is None


def test_a_task_waiting_for_room_is_never_starved_by_later_ones() -> None:
    names = ["first", "wide", *[f"late{i}" for i in range(5)]]
    s = admitting(
        names,
        {"wide": Demand(cpus=2)},
        Limits(2),
        {"first": 1.0, "wide": 1.0} | {f"late{i}": 5.0 for i in range(5)},
    )
    assert s.admit(0.0) == "first"
    assert s.admit(0.0) is None, "a 5 s task would hold wide past its reservation (1 s)"
    s.succeeded("first")
    assert s.admit(1.0) == "wide"
    assert s.admit(1.0) is None


def test_running_tasks_ending_at_once_with_different_demands() -> None:
    """The reservation sorts running tasks by their expected end only (two ending at
    the same moment once made it compare their demands, which have no order)."""
    gpu = Demand(named=(("gpu", 1.0),))
    s = admitting(
        ["plain", "card", "wide"],
        {"card": gpu, "wide": Demand(cpus=3)},
        Limits(3, 0, {"gpu": 1.0}),
        {},
    )
    assert s.admit(0.0) == "plain"
    assert s.admit(0.0) == "card"
    assert s.admit(0.0) is None, "wide waits for both, which end at the same time"


def test_a_task_fitting_beside_the_reserved_one_is_started() -> None:
    G = 1 << 30
    demand = {"hog": Demand(mem=6 * G), "huge": Demand(mem=8 * G), "lean": Demand(mem=2 * G)}
    s = admitting(["hog", "huge", "lean"], demand, Limits(4, 10 * G), {"lean": 50.0})
    assert s.admit(0.0) == "hog"
    assert s.admit(0.0) == "lean", "2 GB still leave room for huge when hog ends"
    assert s.admit(0.0) is None
    s.succeeded("hog")
    assert s.admit(2.0) == "huge"


def test_priority_decides_across_demands() -> None:
    s = admitting(
        ["a", "b", "c"],
        {"b": Demand(cpus=2)},
        Limits(4),
        {},
        priority={"a": 1, "b": 3, "c": 2},
    )
    assert [s.admit(0.0), s.admit(0.0), s.admit(0.0)] == ["b", "c", "a"]


@st.composite
def loads(draw: st.DrawFn) -> tuple[Dag, dict[str, Demand], dict[str, float]]:
    names, edges = draw(dags())
    demand = {
        n: Demand(
            draw(st.integers(1, 3)),
            draw(st.sampled_from([0, 1, 2, 3])),
            draw(st.sampled_from([(), (("gpu", 1.0),)])),
        )
        for n in names
    }
    estimate = {n: draw(st.floats(0.1, 5.0)) for n in names}
    return (names, edges), demand, estimate


@settings(max_examples=60, deadline=None)
@given(loads(), st.randoms(use_true_random=False))
def test_limits_hold_and_every_task_runs(load: tuple, rnd: random.Random) -> None:
    (names, edges), demand, estimate = load
    upstream, dependants = relations(edges, names)
    limits = Limits(3, 4, {"gpu": 1.0})
    pool = Pool(limits)
    s = Scheduler(names, upstream, dependants, None, demand.__getitem__, pool, estimate.get)
    running: list[str] = []
    done: list[str] = []
    now = 0.0
    while len(done) < len(names):
        while (name := s.admit(now)) is not None:
            running.append(name)
            held = [demand[n] for n in running]
            assert sum(d.cpus for d in held) <= 3
            assert sum(d.mem for d in held) <= 4
            assert sum(dict(d.named).get("gpu", 0) for d in held) <= 1
        assert running, "nothing runs, yet tasks are left: starved or stuck"
        finished = running.pop(rnd.randrange(len(running)))
        now += rnd.random()
        s.succeeded(finished)
        done.append(finished)
    assert pool.in_use() == (0, 0)


# --- the critical path -----------------------------------------------------------------


def test_the_remaining_path_weighs_each_task_by_its_duration() -> None:
    #  a -> b -> d ; c -> d ; e alone
    names = ["a", "b", "c", "d", "e"]
    upstream, dependants = relations([("a", "b"), ("b", "d"), ("c", "d")], names)
    weight = {"a": 1.0, "b": 2.0, "c": 10.0, "d": 0.5, "e": 4.0}
    level = lengths(names, upstream, dependants, weight.__getitem__)
    assert level == {"d": 0.5, "b": 2.5, "a": 3.5, "c": 10.5, "e": 4.0}
    selected = lengths(["a", "b"], upstream, dependants, weight.__getitem__)
    assert selected == {"b": 2.0, "a": 3.0}, "only the selection counts"


def lengths(
    names: list[str], upstream: Relations, dependants: Relations, weight: Callable[[str], float]
) -> dict[str, float]:
    """remaining_paths by name."""
    found = remaining_paths(names, positions(names), upstream, dependants, weight)
    return dict(zip(names, found, strict=True))


def estimates(tasks: dict[str, Task], recorded: dict[str, float]) -> Estimates:
    names = list(tasks)
    seconds = array("d", [recorded.get(n, 0.0) for n in names])
    return Estimates(tasks, names, positions(names), seconds)


def test_unknown_durations_are_their_familys_mean_else_everyones() -> None:
    tasks = {
        n: Task(n, cmd, (), ())
        for n, cmd in [
            ("s1", "netsim -b 1"),
            ("s2", "netsim -b 2"),
            ("s3", "netsim -b 3"),
            ("p1", "python3 parse.py 1"),
            ("p2", "python3 parse.py 2"),
            ("x", "other"),
        ]
    }
    est = estimates(tasks, {"s1": 10.0, "s2": 20.0, "p1": 1.0})
    assert est("s3") == 15.0
    assert est("p2") == 1.0
    assert est("x") == pytest.approx(31.0 / 3)
    assert estimates(tasks, {})("x") == 1.0
    assert family(tasks["p1"]) == "python3 parse.py"


# --- order in a real build --------------------------------------------------------------


def order_of(project: Project) -> list[str]:
    names = project.read("runs.log").split()
    (project.root / "runs.log").unlink()
    return names


def test_priority_order_is_the_start_order_with_one_job(project: Project) -> None:
    project.taskfile(
        """
        for name, p in [("low", -1), ("plain", 0), ("urgent", 10), ("soon", 5)]:
            task(name, f"echo {name} >> runs.log", priority=p)
        task("after", "echo after >> runs.log", deps=["low"], priority=100)
        """
    )
    build(project, "-j", "1")
    assert order_of(project) == ["urgent", "soon", "plain", "low", "after"]


def test_critical_path_order_follows_recorded_durations(project: Project) -> None:
    """Without history every task weighs 1, so the two-task chain goes first; once
    durations are recorded, the long task declared last does."""
    project.taskfile(
        """
        task("short1", "echo short1 >> runs.log; sleep 0.25; touch s1", outputs=["s1"])
        task("short2", "echo short2 >> runs.log; sleep 0.25", inputs=["s1"])
        task("quick", "echo quick >> runs.log")
        task("long", "echo long >> runs.log; sleep 1")
        """
    )
    build(project, "-j", "1")
    assert order_of(project) == ["short1", "short2", "quick", "long"]
    build(project, "-j", "1", "-B")
    assert order_of(project) == ["long", "short1", "short2", "quick"]
