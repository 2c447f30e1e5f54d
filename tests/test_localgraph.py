"""The graph a build walks past the snapshot (localgraph.py): the same edges as the
whole BuildGraph, and the same errors when a Taskfile edit breaks the graph.

In process, LocalGraph's edges are compared with BuildGraph's on a graph with every
kind of edge; through the real CLI, a project is built (so a snapshot exists) and
its Taskfile is then edited into a cycle, a clash or an unknown dep: each must be the
one-line error the whole graph gives, with nothing run.
"""

from __future__ import annotations

import pytest
from conftest import Project, build, runs

from pytaskmake.errors import GraphError
from pytaskmake.graph import BuildGraph
from pytaskmake.localgraph import LocalGraph
from pytaskmake.taskfile import Task


def shapes() -> dict[str, Task]:
    """Fan-out, fan-in, a reader of two outputs of one producer, explicit deps, a task
    with several outputs, and a dep that repeats a file edge."""
    tasks = [
        Task("gen", "g", ("src.txt",), ("a.txt", "b.txt")),
        Task("both", "x", ("a.txt", "b.txt"), ("ab.txt",)),
        Task("left", "l", ("a.txt",), ("l.txt",)),
        Task("right", "r", ("b.txt", "other.txt"), ("r.txt",)),
        Task("join", "j", ("l.txt", "r.txt", "ab.txt"), ("j.txt",)),
        Task("after", "s", (), ("s.txt",), deps=("join", "gen")),
        Task("dep_and_file", "d", ("l.txt",), ("d.txt",), deps=("left",)),
        Task("lonely", "z", ("z.txt",), ("zz.txt",)),
    ]
    return {t.name: t for t in tasks}


def test_local_edges_are_the_whole_graphs_edges() -> None:
    whole = BuildGraph(shapes())
    local = LocalGraph(shapes(), changed=[])
    for name in whole.tasks:
        assert local.upstream[name] == whole.upstream[name], name
        assert local.dependants[name] == whole.dependants[name], name
    assert len(local.upstream) == len(whole.upstream)


@pytest.mark.parametrize("start", [{"gen"}, {"left"}, {"right", "lonely"}, {"join"}])
def test_downstream_is_the_same_as_the_whole_graphs(start: set[str]) -> None:
    whole = BuildGraph(shapes()).downstream(set(start))
    assert LocalGraph(shapes(), changed=[]).downstream(set(start)) == whole
    selected = {"gen", "left", "join", "right"}
    assert LocalGraph(shapes(), changed=[]).downstream(set(start), selected) == (
        BuildGraph(shapes()).downstream(set(start), selected)
    )


def test_a_cycle_through_a_changed_task_is_found() -> None:
    tasks = shapes()
    tasks["gen"] = Task("gen", "g", ("src.txt", "j.txt"), ("a.txt", "b.txt"))
    with pytest.raises(GraphError, match="dependency cycle"):
        BuildGraph(dict(tasks))
    with pytest.raises(GraphError, match="dependency cycle"):
        LocalGraph(tasks, changed=["gen"])


SWEEP = """
from pytaskmake import task
for i in range(3):
    task(f"sim{i}", f"echo sim{i} >> runs.log; echo {i} > sim{i}.dat", inputs=["cfg.txt"],
         outputs=[f"sim{i}.dat"])
    task(f"parse{i}", f"echo parse{i} >> runs.log; cat sim{i}.dat > p{i}.csv",
         inputs=[f"sim{i}.dat"], outputs=[f"p{i}.csv"])
task("summary", "echo summary >> runs.log; cat p0.csv p1.csv p2.csv > all.csv",
     inputs=["p0.csv", "p1.csv", "p2.csv"], outputs=["all.csv"])
task("report", "echo report >> runs.log; cat all.csv > report.txt", outputs=["report.txt"],
     deps=["summary"])
"""


@pytest.fixture
def built(project: Project) -> Project:
    project.write("cfg.txt", "1\n")
    project.write("Taskfile.py", SWEEP)
    build(project)
    runs(project)
    build(project)  # (a no-op: the snapshot is there)
    assert runs(project) == []
    return project


def edited(project: Project, old: str, new: str) -> None:
    text = project.read("Taskfile.py")
    assert old in text
    project.write("Taskfile.py", text.replace(old, new))


def test_an_edit_making_a_cycle_is_refused_before_anything_runs(built: Project) -> None:
    # only sim0's declaration changes: the cycle sim0 -> parse0 -> summary -> sim0
    edited(built, 'inputs=["cfg.txt"],', 'inputs=["cfg.txt"] + (["all.csv"] if i == 0 else []),')
    built.write("cfg.txt", "2\n")
    done = build(built, code=2)
    assert "dependency cycle" in done.stderr
    assert "sim0" in done.stderr and "summary" in done.stderr
    assert runs(built) == []


def test_removing_a_task_another_depends_on_is_refused(built: Project) -> None:
    edited(built, 'task("summary",', 'if False: task("summary",')
    done = build(built, code=2)
    assert "depends on unknown task 'summary'" in done.stderr
    assert runs(built) == []


def test_a_new_task_writing_an_output_already_written_is_refused(built: Project) -> None:
    built.write("Taskfile.py", SWEEP + 'task("again", "echo x > p1.csv", outputs=["p1.csv"])\n')
    done = build(built, code=2)
    assert "'p1.csv' is declared by both" in done.stderr
    assert runs(built) == []


def test_an_edit_reruns_its_tasks_and_what_is_downstream_of_them(
    built: Project,
) -> None:
    edited(built, "echo {i} > sim{i}.dat", "echo {i}{i} > sim{i}.dat")  # every sim's output
    build(built)
    # (report only waits on summary through deps, and reads no file that changed)
    assert sorted(runs(built)) == sorted(
        ["sim0", "sim1", "sim2", "parse0", "parse1", "parse2", "summary"]
    )
    built.write("cfg.txt", "3\n")  # an input edit: every sim reruns, same outputs
    build(built)
    assert sorted(runs(built)) == ["sim0", "sim1", "sim2"]


NAMED = """
class Name(str):  # a task named by a str subclass (a StrEnum member, say)
    pass

task(Name("gen"), "sleep 0.3; cp in.txt mid.txt; echo gen >> runs.log",
     inputs=["in.txt"], outputs=["mid.txt"])
for k in (1, 2):
    task(Name(f"use{k}"), f"cp mid.txt o{k}.txt; echo use{k} >> runs.log",
         inputs=["mid.txt"], outputs=[f"o{k}.txt"])
task(Name("other"), "cp x.txt other.txt; echo other >> runs.log",
     inputs=["x.txt"], outputs=["other.txt"])
"""


def test_tasks_named_by_a_str_subclass_keep_their_edges_past_the_snapshot(
    project: Project,
) -> None:
    """A task's one neighbour is kept as its name alone: a name given as a str
    subclass must still read as one name, never as its letters (a reader of "gen"
    then waited on three tasks, or on none, and started before gen finished)."""
    project.write("in.txt", "1\n")
    project.write("x.txt", "1\n")
    project.taskfile(NAMED)
    build(project, "-j3")
    assert sorted(runs(project)) == ["gen", "other", "use1", "use2"]
    for edited, version in ((["in.txt"], "2"), (["in.txt", "x.txt"], "3")):
        for path in edited:  # some of the tasks, then all of them
            project.write(path, f"{version}\n")
        build(project, "-j3")
        done = runs(project)
        assert sorted(done) == sorted(["gen", "use1", "use2"] + ["other"] * (len(edited) - 1))
        assert done.index("gen") < done.index("use1") and done.index("gen") < done.index("use2")
        assert project.read("o1.txt") == project.read("o2.txt") == f"{version}\n"
    build(project, "-j3", "use1")  # a target: a selection of the tasks
    assert runs(project) == []
