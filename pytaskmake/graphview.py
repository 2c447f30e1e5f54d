"""The task graph as pictures: Graphviz DOT for tools, a text tree for the terminal.

Both come from the networkx DiGraph of the selection; stale tasks are marked so a
user sees at a glance what the next build will run.
"""

from __future__ import annotations

import io

import networkx as nx

from .graph import BuildGraph


def _selected(graph: BuildGraph, names: list[str], stale: set[str]) -> nx.DiGraph:
    g = graph.to_networkx().subgraph(names).copy()
    for name in g.nodes:
        g.nodes[name]["stale"] = name in stale
    return g


def to_dot(graph: BuildGraph, names: list[str], stale: set[str]) -> str:
    """DOT text; stale tasks are filled orange, and networkx can parse it back."""
    g = _selected(graph, names, stale)
    lines = ["digraph pytaskmake {", "  rankdir=LR;", "  node [shape=box];"]
    for name in g.nodes:
        style = ' style=filled fillcolor="orange"' if name in stale else ""
        lines.append(f"  {_quote(name)} [stale={str(name in stale).lower()}{style}];")
    for up, down in g.edges:
        lines.append(f"  {_quote(up)} -> {_quote(down)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_text(graph: BuildGraph, names: list[str], stale: set[str]) -> str:
    """A tree drawn with networkx's write_network_text; '*' marks a stale task."""
    g = _selected(graph, names, stale)
    labels = {n: (f"{n} *" if n in stale else n) for n in g.nodes}
    out = io.StringIO()
    nx.write_network_text(nx.relabel_nodes(g, labels), path=out, ascii_only=False)
    return out.getvalue() + "(* = stale)\n"
