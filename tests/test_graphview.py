"""--graph=dot and --graph (text tree): every selected task and edge, stale tasks marked.

pydot is not a dependency, so the DOT text is read back by a small strict parser below
(every line must be a header, a node statement or an edge statement) into networkx.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import networkx as nx

if TYPE_CHECKING:
    from conftest import Project

_ID = r'"((?:[^"\\]|\\.)*)"'
_NODE = re.compile(rf"^\s*{_ID}\s*\[(.*)\];\s*$")
_EDGE = re.compile(rf"^\s*{_ID}\s*->\s*{_ID}\s*;\s*$")
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s,;\]"]+)')
_HEADER = {"digraph pytaskmake {", "rankdir=LR;", "node [shape=box];", "}"}


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_dot(text: str) -> nx.DiGraph:
    """The DiGraph a DOT text describes; node attributes as strings (quotes removed)."""
    lines = text.splitlines()
    assert lines[0] == "digraph pytaskmake {"
    assert lines[-1] == "}"
    graph = nx.DiGraph()
    for line in lines:
        if (node := _NODE.match(line)) is not None:
            attrs = {k: _unquote(v.strip('"')) for k, v in _ATTR.findall(node.group(2))}
            assert re.sub(_ATTR, "", node.group(2)).strip(" ,") == "", line
            name = _unquote(node.group(1))
            assert name not in graph, f"node {name!r} declared twice"
            graph.add_node(name, **attrs)
        elif (edge := _EDGE.match(line)) is not None:
            up, down = _unquote(edge.group(1)), _unquote(edge.group(2))
            assert up in graph and down in graph, line  # no implicit nodes
            graph.add_edge(up, down)
        else:
            assert line.strip() in _HEADER, f"unparsed DOT line: {line!r}"
    return graph


TREE_DRAWING = "╟╙╎├└─╼│ "


def parse_tree(text: str) -> dict[str, set[bool]]:
    """Each task named in the text tree -> the set of stale flags it was shown with."""
    lines = text.splitlines()
    assert lines[-1] == "(* = stale)"
    seen: dict[str, set[bool]] = {}
    for line in lines[:-1]:
        for label in line.lstrip(TREE_DRAWING).split(" ╾ "):
            label = label.strip()
            if label in ("", "..."):
                continue
            is_stale = label.endswith(" *")
            seen.setdefault(label[:-2] if is_stale else label, set()).add(is_stale)
    return seen


ODD = 'odd "name" x'
DIAMOND = """
task("src", "cat src.cfg > s.txt", inputs=["src.cfg"], outputs=["s.txt"])
task("left", "cat s.txt left.cfg > l.txt", inputs=["s.txt", "left.cfg"], outputs=["l.txt"])
task("right", "cp s.txt r.txt", inputs=["s.txt"], outputs=["r.txt"])
task("join", "cat l.txt r.txt > j.txt", inputs=["l.txt", "r.txt"], outputs=["j.txt"])
task('odd "name" x', "true").depends_on("join")
task("alone", "echo alone > alone.txt", outputs=["alone.txt"])
"""
ALL = {"src", "left", "right", "join", ODD, "alone"}
EDGES = {("src", "left"), ("src", "right"), ("left", "join"), ("right", "join"), ("join", ODD)}


def setup_diamond(project: Project) -> None:
    project.taskfile(DIAMOND)
    project.write("src.cfg", "1\n")
    project.write("left.cfg", "1\n")


def stale_in_dot(graph: nx.DiGraph) -> set[str]:
    flags = nx.get_node_attributes(graph, "stale")
    assert set(flags) == set(graph.nodes)  # every node says true or false
    assert set(flags.values()) <= {"true", "false"}
    return {n for n, v in flags.items() if v == "true"}


def test_dot_has_exactly_the_dag_and_everything_stale_at_first(project: Project) -> None:
    setup_diamond(project)
    r = project.run("--graph=dot")
    assert r.returncode == 0, r.stderr
    graph = parse_dot(r.stdout)
    assert set(graph.nodes) == ALL
    assert set(graph.edges) == EDGES
    assert nx.is_directed_acyclic_graph(graph)
    assert stale_in_dot(graph) == ALL
    assert all(graph.nodes[n].get("fillcolor") == "orange" for n in ALL)
    # printing the graph runs nothing
    assert not project.exists("s.txt") and not project.exists("alone.txt")
    # (the one task without files is warned about, on stderr: stdout stays DOT)
    assert "has neither inputs nor outputs" in r.stderr and len(r.stderr.splitlines()) == 1


def test_dot_marks_only_the_stale_part(project: Project) -> None:
    setup_diamond(project)
    assert project.run("-q").returncode == 0
    graph = parse_dot(project.run("--graph=dot").stdout)
    assert set(graph.edges) == EDGES
    assert stale_in_dot(graph) == set()
    assert not any("fillcolor" in graph.nodes[n] for n in graph.nodes)

    project.write("left.cfg", "2\n")
    graph = parse_dot(project.run("--graph=dot").stdout)
    assert set(graph.nodes) == ALL
    assert stale_in_dot(graph) == {"left", "join", ODD}
    assert {n for n in graph.nodes if graph.nodes[n].get("fillcolor") == "orange"} == {
        "left",
        "join",
        ODD,
    }


def test_dot_of_a_target_has_only_what_it_needs(project: Project) -> None:
    setup_diamond(project)
    r = project.run("join", "--graph=dot")
    assert r.returncode == 0, r.stderr
    graph = parse_dot(r.stdout)
    assert set(graph.nodes) == {"src", "left", "right", "join"}
    assert set(graph.edges) == EDGES - {("join", ODD)}

    graph = parse_dot(project.run("r.txt", "--graph=dot").stdout)
    assert set(graph.nodes) == {"src", "right"}
    assert set(graph.edges) == {("src", "right")}


def test_dot_quotes_awkward_names(project: Project) -> None:
    names = ['a "quoted" name', "with space", "semi;colon", "arrow->name", "brace{}"]
    project.taskfile(
        "names = " + repr(names) + "\n"
        "prev = None\n"
        "for n in names:\n"
        "    t = task(n, 'true')\n"
        "    if prev is not None:\n"
        "        t.depends_on(prev)\n"
        "    prev = t\n"
    )
    r = project.run("--graph=dot")
    assert r.returncode == 0, r.stderr
    graph = parse_dot(r.stdout)
    assert set(graph.nodes) == set(names)
    assert set(graph.edges) == set(zip(names, names[1:], strict=False))


def test_text_tree_lists_every_task_with_stars_on_stale_ones(project: Project) -> None:
    setup_diamond(project)
    r = project.run("--graph")
    assert r.returncode == 0, r.stderr
    assert parse_tree(r.stdout) == {name: {True} for name in ALL}

    assert project.run("-q").returncode == 0
    assert parse_tree(project.run("--graph").stdout) == {name: {False} for name in ALL}

    project.write("left.cfg", "2\n")
    r = project.run("--graph=text")
    shown = parse_tree(r.stdout)
    assert set(shown) == ALL
    assert {n for n, flags in shown.items() if True in flags} == {"left", "join", ODD}
    assert all(len(flags) == 1 for flags in shown.values())  # never both marked and not


def test_text_tree_of_a_target(project: Project) -> None:
    setup_diamond(project)
    r = project.run("alone", "--graph")
    assert r.stdout.splitlines() == ["╙── alone *", "(* = stale)"]
