"""The lint report (lint.py) on in-memory traces and graphs: no process, no strace."""

from __future__ import annotations

from pytaskmake.access import Access
from pytaskmake.graph import BuildGraph
from pytaskmake.lint import RACE, READ, REMOVE, UNUSED, WRITE, Finding, lint
from pytaskmake.taskfile import Task


def seen(reads: set[str] = frozenset(), writes: set[str] = frozenset(), **more: object) -> Access:
    return Access(frozenset(reads), frozenset(writes), **more)  # type: ignore[arg-type]


def graph(*tasks: Task) -> BuildGraph:
    return BuildGraph(list(tasks))


def test_a_clean_trace_has_no_findings() -> None:
    g = graph(Task("sim", "sim", ("cfg",), ("out",)), Task("parse", "p", ("out",), ("csv",)))
    report = lint(g, {"sim": seen({"cfg"}, {"out"}), "parse": seen({"out"}, {"csv"})})
    assert report.clean
    assert report.lines() == ["lint: no problems in 2 traced tasks"]


def test_undeclared_read_and_write_and_unused_input() -> None:
    g = graph(Task("sim", "sim", ("cfg", "unused.txt"), ("out",)))
    report = lint(g, {"sim": seen({"cfg", "helper.py"}, {"out", "extra.txt"})})
    assert report.findings == (
        Finding("sim", READ, "helper.py"),
        Finding("sim", WRITE, "extra.txt"),
        Finding("sim", UNUSED, "unused.txt"),
    )
    assert "  reads helper.py, which is not one of its inputs" in report.lines()
    assert report.lines()[-1] == "lint: 3 problem(s) in 1 of 1 traced tasks"


def test_reads_of_an_upstream_output_are_fine_and_of_an_unordered_one_a_race() -> None:
    g = graph(
        Task("a", "a", (), ("a.out",)),
        Task("b", "b", ("a.out",), ("b.out",)),
        Task("c", "c", (), ("c.out",)),
    )
    report = lint(
        g,
        {
            "a": seen(set(), {"a.out"}),
            "b": seen({"a.out"}, {"b.out"}),
            "c": seen({"a.out", "b.out"}, {"c.out", "scratch"}),
        },
    )
    assert report.findings == (
        Finding("c", RACE, "a.out", "a"),
        Finding("c", RACE, "b.out", "b"),
        Finding("c", WRITE, "scratch"),
    )


def test_an_ancestor_through_deps_orders_a_read_of_its_undeclared_output() -> None:
    a = Task("a", "a", (), ("a.out",))
    b = Task("b", "b", ("a.out",), ("b.out",))
    c = Task("c", "c", (), ("c.out",), deps=("b",))
    accesses = {"a": seen(set(), {"a.out", "side.txt"}), "c": seen({"side.txt"}, {"c.out"})}
    report = lint(graph(a, b, c), accesses)
    # c reads a's undeclared side file: ordered (a -> b -> c), so only a's write is reported
    assert report.findings == (Finding("a", WRITE, "side.txt"),)


def test_folders_temporaries_logs_and_removals() -> None:
    g = graph(Task("t", "t", ("data",), ("results",), log="t.log"))
    found = seen({"data/x.csv"}, {"results/a", "t.log"}, removed=frozenset({"old.txt"}))
    report = lint(g, {"t": found})
    assert report.findings == (Finding("t", REMOVE, "old.txt"),)


def test_unused_notes_missing_and_implicit_inputs() -> None:
    t = Task("t", "tool in.txt", ("in.txt",), ("o",))
    t._set_implicit(True, ("tool",))
    report = lint(graph(t), {"t": seen(set(), {"o"}, missing=frozenset({"in.txt"}))})
    assert [f.words() for f in report.findings] == [
        "never reads its input in.txt (it looked for it and found nothing)",
        "never reads its input tool (named on its command line)",
    ]


def test_shared_findings_are_said_once_and_untraced_tasks_counted() -> None:
    tasks = [Task(f"sim-{i}", f"sim {i}", (), (f"o{i}",)) for i in range(8)]
    accesses = {t.name: seen({"netsim.cfg"}, set(t.outputs)) for t in tasks[:6]}
    report = lint(graph(*tasks), accesses, [t.name for t in tasks])
    assert report.lines() == [
        "lint: 6 tasks each reads netsim.cfg, which is not one of its inputs: "
        "sim-0, sim-1, sim-2 and 3 more",
        "lint: 6 problem(s) in 6 of 6 traced tasks; 2 selected task(s) did not run, "
        "so were not traced (-B runs them all)",
    ]
