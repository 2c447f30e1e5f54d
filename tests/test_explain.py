"""--explain and -n: what would run and why, grouped when many tasks share a reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytaskmake.plan import group_reasons
from pytaskmake.stale import CLEAN, INPUT, NEVER_RUN, UPSTREAM, Verdict

if TYPE_CHECKING:
    from conftest import Project


# --------------------------------------------------------------------------- group_reasons


def stale(reason: str, code: str = INPUT) -> Verdict:
    return Verdict(True, code, reason)


CLEAN_VERDICT = Verdict(False, CLEAN, "up to date")


def test_group_reasons_one_line_per_lone_reason_and_skips_clean_tasks() -> None:
    verdicts = {
        "sim": stale("input netsim.cfg changed"),
        "ok": CLEAN_VERDICT,
        "plot": stale("action changed", "action"),
    }
    assert group_reasons(verdicts) == ["sim: input netsim.cfg changed", "plot: action changed"]


def test_group_reasons_groups_and_elides_beyond_the_limit() -> None:
    names = [f"t{i}" for i in range(8)]
    verdicts = {n: stale("never run", NEVER_RUN) for n in names}
    verdicts["x"] = stale("input x changed")
    assert group_reasons(verdicts) == [
        "8 tasks: never run: t0, t1, t2, t3, t4, ... (3 more)",
        "x: input x changed",
    ]
    assert group_reasons(verdicts, limit=2) == [
        "8 tasks: never run: t0, t1, ... (6 more)",
        "x: input x changed",
    ]
    assert group_reasons(verdicts, limit=8)[0] == (
        "8 tasks: never run: t0, t1, t2, t3, t4, t5, t6, t7"
    )


def test_group_reasons_exactly_at_the_limit_lists_all() -> None:
    verdicts = {f"t{i}": stale("never run", NEVER_RUN) for i in range(5)}
    assert group_reasons(verdicts) == ["5 tasks: never run: t0, t1, t2, t3, t4"]


def test_group_reasons_merges_different_upstreams() -> None:
    verdicts = {
        "a": stale("input a.cfg changed"),
        "b": stale("upstream a will run", UPSTREAM),
        "c": stale("upstream b will run", UPSTREAM),
    }
    assert group_reasons(verdicts) == [
        "a: input a.cfg changed",
        "2 tasks: an upstream task will run: b, c",
    ]


def test_group_reasons_nothing_stale() -> None:
    assert group_reasons({"a": CLEAN_VERDICT}) == []
    assert group_reasons({}) == []


# --------------------------------------------------------------------------- the CLI

SWEEP = """
task("sim", "cat netsim.cfg > sim.out", inputs=["netsim.cfg"], outputs=["sim.out"])
task("plot", "echo plot > plot.png", outputs=["plot.png"])
task("table", "echo table > table.txt", outputs=["table.txt"])
"""


def test_explain_names_the_changed_input(project: Project) -> None:
    project.taskfile(SWEEP)
    project.write("netsim.cfg", "rate=1\n")
    assert project.run("-q").returncode == 0
    project.write("netsim.cfg", "rate=2\n")
    r = project.run("--explain")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "sim: input netsim.cfg changed\n1 of 3 tasks would run\n"
    assert r.stderr == ""


def test_explain_groups_many_tasks_sharing_a_reason(project: Project) -> None:
    project.taskfile(
        """
        task("setup", "echo s > setup.txt", outputs=["setup.txt"])
        for i in range(9):
            task(f"run{i}", f"echo {i} > r{i}.txt", outputs=[f"r{i}.txt"])
        """
    )
    r = project.run("--explain")
    assert r.stdout == (
        "10 tasks: never run: setup, run0, run1, run2, run3, ... (5 more)\n"
        "10 of 10 tasks would run\n"
    )


def test_explain_groups_downstream_of_a_change(project: Project) -> None:
    project.taskfile(
        """
        task("sim", "cat netsim.cfg > sim.out", inputs=["netsim.cfg"], outputs=["sim.out"])
        for i in range(7):
            task(f"stat{i}", f"cp sim.out s{i}.txt", inputs=["sim.out"], outputs=[f"s{i}.txt"])
        task("other", "echo o > o.txt", outputs=["o.txt"])
        """
    )
    project.write("netsim.cfg", "rate=1\n")
    assert project.run("-q").returncode == 0
    project.write("netsim.cfg", "rate=2\n")
    r = project.run("--explain")
    assert r.stdout == (
        "sim: input netsim.cfg changed\n"
        "7 tasks: an upstream task will run: stat0, stat1, stat2, stat3, stat4, ... (2 more)\n"
        "1 of 9 tasks would run, 7 more may run (if their inputs change)\n"
    )


def test_explain_lone_downstream_task_names_its_upstream(project: Project) -> None:
    project.taskfile(
        """
        task("sim", "cat netsim.cfg > sim.out", inputs=["netsim.cfg"], outputs=["sim.out"])
        task("report", "cp sim.out report.txt", inputs=["sim.out"], outputs=["report.txt"])
        """
    )
    project.write("netsim.cfg", "rate=1\n")
    assert project.run("-q").returncode == 0
    project.write("netsim.cfg", "rate=2\n")
    r = project.run("--explain")
    assert r.stdout == (
        "sim: input netsim.cfg changed\nreport: upstream sim will run\n"
        "1 of 2 tasks would run, 1 more may run (if their inputs change)\n"
    )


def test_explain_various_reasons(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo a > a.txt", outputs=["a.txt"])
        task("b", "echo b > b.txt", outputs=["b.txt"])
        task("c", "echo c > c.txt", outputs=["c.txt"])
        """
    )
    assert project.run("-q").returncode == 0
    (project.root / "a.txt").unlink()
    project.taskfile(
        """
        task("a", "echo a > a.txt", outputs=["a.txt"])
        task("b", "echo B > b.txt", outputs=["b.txt"])
        task("c", "echo c > c.txt; exit 1", outputs=["c.txt"])
        """
    )
    assert project.run("-q", "c").returncode == 1
    project.taskfile(
        """
        task("a", "echo a > a.txt", outputs=["a.txt"])
        task("b", "echo B > b.txt", outputs=["b.txt"])
        task("c", "echo c > c.txt", outputs=["c.txt"])
        """
    )
    r = project.run("--explain")
    assert r.stdout == (
        "a: output a.txt is missing\n"
        "b: action changed\n"
        "c: failed last time\n"
        "3 of 3 tasks would run (2 restored from the run cache)\n"  # a, and c as it was
    )


def test_explain_nothing_to_do(project: Project) -> None:
    project.taskfile(SWEEP)
    project.write("netsim.cfg", "rate=1\n")
    assert project.run("-q").returncode == 0
    r = project.run("--explain")
    assert r.stdout == "0 of 3 tasks would run\n"


def test_explain_honours_targets_and_why_alias(project: Project) -> None:
    project.taskfile(SWEEP)
    project.write("netsim.cfg", "rate=1\n")
    r = project.run("--explain", "sim")
    assert r.stdout == "sim: never run\n1 of 1 tasks would run\n"
    assert project.run("why", "sim").stdout == r.stdout
    assert (
        project.run("--explain", "table.txt").stdout == "table: never run\n1 of 1 tasks would run\n"
    )


def test_explain_forced(project: Project) -> None:
    project.taskfile(SWEEP)
    project.write("netsim.cfg", "rate=1\n")
    assert project.run("-q").returncode == 0
    r = project.run("--explain", "-B")
    assert r.stdout == "3 tasks: forced (-B): sim, plot, table\n3 of 3 tasks would run\n"


def test_dry_run_lists_would_run_lines_and_touches_nothing(project: Project) -> None:
    project.taskfile(
        """
        task("sim", "cat netsim.cfg > sim.out", inputs=["netsim.cfg"], outputs=["sim.out"])
        task("report", "cp sim.out report.txt", inputs=["sim.out"], outputs=["report.txt"])
        task("plot", "echo plot > plot.png", outputs=["plot.png"])
        """
    )
    project.write("netsim.cfg", "rate=1\n")
    r = project.run("-n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "would run sim: never run\n"
        "would run report: never run\n"
        "would run plot: never run\n"
        "3 of 3 tasks would run\n"
    )
    for out in ("sim.out", "report.txt", "plot.png"):
        assert not project.exists(out)
    assert project.run("-n").stdout == r.stdout  # nothing was recorded either

    assert project.run("-q").returncode == 0
    project.write("netsim.cfg", "rate=2\n")
    before = project.read("sim.out")
    r = project.run("-n")
    assert r.stdout == (
        "would run sim: input netsim.cfg changed\n"
        "may run report (if its inputs change): upstream sim will run\n"
        "1 of 3 tasks would run, 1 more may run (if their inputs change)\n"
    )
    assert project.read("sim.out") == before


def test_dry_run_nothing_to_do(project: Project) -> None:
    project.taskfile(SWEEP)
    project.write("netsim.cfg", "rate=1\n")
    assert project.run("-q").returncode == 0
    r = project.run("-n")
    assert r.stdout == "0 of 3 tasks would run\n"
