"""The build graph (graph.py): edges from files and deps, and the errors it must refuse.

Pure BuildGraph tests on in-memory tasks, then the same rules through the real CLI
(one-line message naming the culprits, exit code 2).
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import Project
from hypothesis import given, settings
from hypothesis import strategies as st

from pytaskmake.action import make_action
from pytaskmake.errors import GraphError, UsageError
from pytaskmake.graph import BuildGraph
from pytaskmake.taskfile import Task


def mk(
    name: str,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    deps: tuple[str, ...] = (),
) -> Task:
    return Task(name, make_action("true", name), inputs, outputs, list(deps), where="T.py:1")


def chain() -> BuildGraph:
    """src -> a -> mid.txt -> b -> out/b.txt ; c reads out/b.txt and src ; d alone."""
    return BuildGraph(
        [
            mk("a", ("src",), ("mid.txt",)),
            mk("b", ("mid.txt",), ("out/b.txt", "out/sub/b2.txt")),
            mk("c", ("out/b.txt", "src"), ("c.txt",)),
            mk("d", (), ("outside/d.txt",)),
        ]
    )


# --- edges -----------------------------------------------------------------------------


def test_edges_run_from_producer_to_every_reader() -> None:
    g = chain()
    assert g.upstream == {"a": (), "b": ("a",), "c": ("b",), "d": ()}
    assert g.dependants == {"a": ("b",), "b": ("c",), "c": (), "d": ()}
    assert g.producer["out/b.txt"] == "b"
    assert g.producer["out/sub/b2.txt"] == "b"


def test_explicit_deps_add_edges_and_duplicates_collapse() -> None:
    g = BuildGraph(
        [
            mk("a", (), ("x", "y")),
            mk("b", ("x", "y"), ("z",), deps=("a",)),
            mk("c", (), (), deps=("b", "a")),
        ]
    )
    assert g.upstream["b"] == ("a",)
    assert sorted(g.upstream["c"]) == ["a", "b"]
    assert sorted(g.dependants["a"]) == ["b", "c"]


def test_to_networkx_has_the_same_edges() -> None:
    graph = chain().to_networkx()
    assert set(graph.nodes) == {"a", "b", "c", "d"}
    assert set(graph.edges) == {("a", "b"), ("b", "c")}


def test_sources_are_inputs_no_task_produces_mapped_to_first_reader() -> None:
    g = chain()
    assert g.sources(["a", "b", "c", "d"]) == {"src": "a"}
    assert g.sources(["c"]) == {"src": "c"}
    assert g.sources(["b", "d"]) == {}


# --- errors ----------------------------------------------------------------------------


def test_cycle_is_refused_and_listed_in_order() -> None:
    tasks = [
        mk("a", ("c.out",), ("a.out",)),
        mk("b", ("a.out",), ("b.out",)),
        mk("c", ("b.out",), ("c.out",)),
        mk("free", (), ("free.out",)),
    ]
    with pytest.raises(GraphError) as info:
        BuildGraph(tasks)
    message = str(info.value)
    assert "cycle" in message
    cycle = message.split(": ", 1)[1].split(" -> ")
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["a", "b", "c"]
    # the cycle is listed in one consistent direction (runs-before or depends-on)
    edges = {("a", "b"), ("b", "c"), ("c", "a")}
    pairs = set(zip(cycle, cycle[1:], strict=False))
    assert pairs == edges or pairs == {(d, u) for u, d in edges}, message
    assert "free" not in message


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(GraphError, match="cycle"):
        BuildGraph([mk("a", deps=("a",))])


def test_two_producers_of_one_output_are_named() -> None:
    with pytest.raises(GraphError) as info:
        BuildGraph([mk("one", (), ("x/o.txt",)), mk("two", (), ("y", "x/o.txt"))])
    message = str(info.value)
    assert "x/o.txt" in message and "'one'" in message and "'two'" in message


def test_unknown_dep_is_named() -> None:
    with pytest.raises(GraphError) as info:
        BuildGraph([mk("a"), mk("b", deps=("a", "nosuch"))])
    assert "'nosuch'" in str(info.value) and "'b'" in str(info.value)


# --- target selection ------------------------------------------------------------------


def test_no_targets_selects_everything_in_declaration_order() -> None:
    assert chain().select([]) == ["a", "b", "c", "d"]


def test_target_by_name_selects_it_and_its_ancestors_only() -> None:
    g = chain()
    assert g.select(["b"]) == ["a", "b"]
    assert g.select(["c"]) == ["a", "b", "c"]
    assert g.select(["d", "a"]) == ["a", "d"]


def test_target_by_output_path_and_by_directory_prefix() -> None:
    g = chain()
    assert g.select(["mid.txt"]) == ["a"]
    assert g.select(["./out/b.txt"]) == ["a", "b"]
    assert g.select(["out"]) == ["a", "b"]
    assert g.select(["out/"]) == ["a", "b"]
    assert g.select(["out/sub"]) == ["a", "b"]


def test_directory_prefix_matches_whole_path_components_only() -> None:
    g = chain()
    # "out" must not select "outside/d.txt"
    assert "d" not in g.select(["out"])
    with pytest.raises(UsageError):
        g.select(["outs"])


def test_unknown_target_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="nosuch"):
        chain().select(["nosuch"])


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[list[Task], set[tuple[str, str]]]:
    n = draw(st.integers(min_value=1, max_value=10))
    tasks: list[Task] = []
    edges: set[tuple[str, str]] = set()
    for j in range(n):
        ins, deps = [], []
        for i in range(j):
            how = draw(st.sampled_from(["none", "file", "dep"]))
            if how == "file":
                ins.append(f"o{i}")
            elif how == "dep":
                deps.append(f"t{i}")
            if how != "none":
                edges.add((f"t{i}", f"t{j}"))
        tasks.append(mk(f"t{j}", tuple(ins), (f"o{j}",), tuple(deps)))
    return tasks, edges


@settings(max_examples=60, deadline=None)
@given(random_graphs(), st.data())
def test_selection_is_the_ancestor_closure(
    generated: tuple[list[Task], set[tuple[str, str]]], data: st.DataObject
) -> None:
    tasks, edges = generated
    g = BuildGraph(tasks)
    assert {(u, d) for d, ups in g.upstream.items() for u in ups} == edges
    target = data.draw(st.sampled_from([t.name for t in tasks]))
    wanted = {target}
    frontier = [target]
    while frontier:
        node = frontier.pop()
        for up, down in edges:
            if down == node and up not in wanted:
                wanted.add(up)
                frontier.append(up)
    order = [t.name for t in tasks]
    assert g.select([target]) == [n for n in order if n in wanted]
    assert g.select([f"o{order.index(target)}"]) == g.select([target])


# --- through the CLI -------------------------------------------------------------------


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_cli_cycle_exit_2_names_the_cycle(project: Project) -> None:
    project.taskfile(
        """
        task("x", "cat z > x", inputs=["z"], outputs=["x"])
        task("y", "cat x > y", inputs=["x"], outputs=["y"])
        task("zz", "cat y > z", inputs=["y"], outputs=["z"])
        """
    )
    line = assert_one_line_error(project.run(), "cycle")
    for name in ("x", "y", "zz"):
        assert name in line
    assert not project.exists("x")


def test_cli_cycle_through_depends_on(project: Project) -> None:
    project.taskfile(
        """
        a = task("a", "true")
        b = task("b", "true", deps=[a])
        a.depends_on(b)
        """
    )
    line = assert_one_line_error(project.run("-n"), "cycle")
    assert "a" in line and "b" in line


def test_cli_duplicate_output_exit_2(project: Project) -> None:
    project.taskfile(
        """
        task("first", "echo 1 > res/o.txt", outputs=["res/o.txt"])
        task("second", "echo 2 > res/o.txt", outputs=["./res//o.txt"])
        """
    )
    assert_one_line_error(project.run(), "res/o.txt", "first", "second")
    assert not project.exists("res/o.txt")


def test_cli_missing_source_fails_its_reader_and_stops(project: Project) -> None:
    project.taskfile(
        """
        task("ok", "echo ok > ok.txt", outputs=["ok.txt"])
        task("reader", "cat data/in.csv > r.txt", inputs=["data/in.csv"], outputs=["r.txt"])
        task("after", "cat r.txt > a.txt", inputs=["r.txt"], outputs=["a.txt"])
        """
    )
    result = project.run()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "reader" in result.stdout and "missing input data/in.csv" in result.stdout
    assert "(no task produces it)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not project.exists("ok.txt"), "without -k nothing else starts"


def test_cli_missing_source_blocks_only_what_needs_it_with_keep_going(project: Project) -> None:
    """One missing header or data file must not stop a whole sweep: with -k the rest
    builds, the blocked tasks are named, exit 1; -n, -l and --graph show them."""
    project.taskfile(
        """
        task("ok", "echo ok > ok.txt", outputs=["ok.txt"])
        task("reader", "cat data/in.csv > r.txt", inputs=["data/in.csv"], outputs=["r.txt"])
        task("after", "cat r.txt > a.txt", inputs=["r.txt"], outputs=["a.txt"])
        """
    )
    result = project.run("-k")
    assert result.returncode == 1, result.stdout + result.stderr
    assert project.read("ok.txt") == "ok\n"
    assert "missing input data/in.csv (no task produces it)" in result.stdout
    assert "command: \n" not in result.stdout + "\n"  # never started: no empty command line
    assert "needs reader, which failed" in result.stdout or "skipped 1" in result.stdout
    dry = project.run("-n")
    assert dry.returncode == 0, dry.stderr
    assert "would run reader: blocked: missing input data/in.csv" in dry.stdout
    assert "would run after: blocked: needs reader, which cannot run" in dry.stdout
    listing = project.run("-l")
    assert "reader  (stale: blocked: missing input data/in.csv" in listing.stdout
    assert "ok  (up to date)" in listing.stdout
    assert project.run("--graph").returncode == 0


def test_cli_missing_source_of_an_unselected_task_does_not_matter(project: Project) -> None:
    project.taskfile(
        """
        task("ok", "echo ok > ok.txt", outputs=["ok.txt"])
        task("reader", "cat nope > r.txt", inputs=["nope"], outputs=["r.txt"])
        """
    )
    result = project.run("ok")
    assert result.returncode == 0, result.stderr
    assert project.read("ok.txt") == "ok\n"


def test_cli_missing_source_appears_later_and_build_proceeds(project: Project) -> None:
    project.taskfile(
        """
        task("reader", "cat in.txt > r.txt", inputs=["in.txt"], outputs=["r.txt"])
        """
    )
    first = project.run()
    assert first.returncode == 1 and "missing input in.txt" in first.stdout
    project.write("in.txt", "hello\n")
    assert project.run().returncode == 0
    assert project.read("r.txt") == "hello\n"


def test_cli_unknown_dep_exit_2(project: Project) -> None:
    project.taskfile(
        """
        task("a", "true", deps=["ghost"])
        """
    )
    assert_one_line_error(project.run(), "ghost", "'a'")


def test_cli_dry_run_reports_missing_source_like_the_build(project: Project) -> None:
    project.taskfile(
        """
        task("reader", "cat nope > r.txt", inputs=["nope"], outputs=["r.txt"])
        """
    )
    assert "missing input nope (no task produces it)" in project.run().stdout
    assert "blocked: missing input nope (no task produces it)" in project.run("-n").stdout


def test_cli_produced_input_is_built_first(project: Project) -> None:
    project.taskfile(
        """
        task("consumer", "cat gen/a.txt gen/a.txt > both.txt",
             inputs=["gen/a.txt"], outputs=["both.txt"])
        task("producer", "sleep 0.2; echo A > gen/a.txt", outputs=["gen/a.txt"])
        """
    )
    result = project.run("-j", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("both.txt") == "A\nA\n"
