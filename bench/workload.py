"""One synthetic sweep, written out for every build tool the benchmark compares.

The point is to time the build tools, not the work, so every command is a cheap
shell one-liner and the build descriptions (Taskfile.py, Makefile, build.ninja,
build-rsp.ninja, dodo.py, Snakefile) are as equivalent as each tool allows: the
same N-point graph, the same commands, the same files. For each point i = 1..N:

    sim_i    cat params.txt inputs/p_i.txt    > out/sim_i.dat
    parse_i  tr a-z A-Z < out/sim_i.dat       > out/parse_i.csv
    summary  every out/parse_*.csv, in order  > out/summary.csv

The summary's command finds its inputs with `find | sort | xargs` rather than listing
them, because 100,000 paths on one command line would pass ARG_MAX; its declared
inputs are still all N CSVs, so every tool knows it depends on each of them. `out/`
is created here, up front, so no tool pays for (or is spared) a `mkdir -p`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PARAMS = "alpha=1\nbeta=2\n"
SUMMARY_CMD = "find out -name 'parse_*.csv' | LC_ALL=C sort | xargs cat > out/summary.csv"
FILES = ("Taskfile.py", "Makefile", "build.ninja", "build-rsp.ninja", "dodo.py", "Snakefile")


@dataclass(frozen=True)
class Variant:
    """The Taskfile edits the growing-a-sweep scenarios make, the same in every build file.

    `points`: the sweep's size (grown or shrunk by 10); `revised`: one point whose sim
    command carries a comment `# rev R` (same output); `param`: when set, every sim
    also writes `r=PARAM` (a parameter every simulation uses, changed).
    """

    points: int
    revised: int = 0  # 0: none
    rev: int = 0
    param: int = 0  # 0: none


def sim_extra(v: Variant) -> str:
    """What every sim appends to its output for the parameter edit."""
    return f"; echo r={v.param}" if v.param else ""


def sim_cmd(i: int | str, extra: str = "") -> str:
    if extra:
        return f"(cat params.txt inputs/p_{i}.txt{extra}) > out/sim_{i}.dat"
    return f"cat params.txt inputs/p_{i}.txt > out/sim_{i}.dat"


def parse_cmd(i: int | str) -> str:
    return f"tr a-z A-Z < out/sim_{i}.dat > out/parse_{i}.csv"


def point_input(i: int) -> str:
    return f"point {i}\n"


def generate(root: Path, n: int) -> None:
    """Write params.txt, inputs/p_1..p_n.txt, an empty out/ and the build files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.txt").write_text(PARAMS)
    write_inputs(root, n)
    (root / "out").mkdir(exist_ok=True)
    (root / "Taskfile.py").write_text(taskfile(n))
    (root / "Makefile").write_text(makefile(n))
    (root / "build.ninja").write_text(ninja(n))
    (root / "build-rsp.ninja").write_text(ninja(n, listed=True))
    (root / "dodo.py").write_text(dodo(n))
    (root / "Snakefile").write_text(snakefile(n))


def write_inputs(root: Path, n: int) -> None:
    """inputs/p_1..p_n.txt, each written only if missing (a grown sweep adds a few)."""
    inputs = root / "inputs"
    inputs.mkdir(exist_ok=True)
    for i in range(1, n + 1):
        path = inputs / f"p_{i}.txt"
        if not path.exists():
            path.write_text(point_input(i))


def rewrite(root: Path, v: Variant) -> None:
    """Edit the sweep as a user edits a Taskfile; build.ninja gets the same edit.

    Only pytaskmake and ninja are timed on these edits (make has no notion of a
    changed command; doit and snakemake are compared at the other scenarios).
    """
    write_inputs(root, v.points)
    (root / "Taskfile.py").write_text(taskfile(v.points, v))
    (root / "build.ninja").write_text(ninja(v.points, v))
    (root / "build-rsp.ninja").write_text(ninja(v.points, v, listed=True))


def taskfile(n: int, v: Variant | None = None) -> str:
    if v is None or v == Variant(n):
        return plain_taskfile(n)
    return f'''from pytaskmake import task

N = {n}
SUMMARY = {SUMMARY_CMD!r}
EXTRA = {sim_extra(v)!r}
REVISED, REV = {v.revised}, {v.rev}
csvs = []
for i in range(1, N + 1):
    cmd = f"{sim_cmd("{i}", "{EXTRA}")}" if EXTRA else f"{sim_cmd("{i}")}"
    if i == REVISED:
        cmd += f" # rev {{REV}}"
    task(f"sim_{{i}}", cmd,
         inputs=["params.txt", f"inputs/p_{{i}}.txt"], outputs=[f"out/sim_{{i}}.dat"])
    task(f"parse_{{i}}", f"{parse_cmd("{i}")}",
         inputs=[f"out/sim_{{i}}.dat"], outputs=[f"out/parse_{{i}}.csv"])
    csvs.append(f"out/parse_{{i}}.csv")
task("summary", SUMMARY, inputs=csvs, outputs=["out/summary.csv"])
'''


def plain_taskfile(n: int) -> str:
    return f'''from pytaskmake import task

N = {n}
SUMMARY = {SUMMARY_CMD!r}
csvs = []
for i in range(1, N + 1):
    task(f"sim_{{i}}", f"{sim_cmd("{i}")}",
         inputs=["params.txt", f"inputs/p_{{i}}.txt"], outputs=[f"out/sim_{{i}}.dat"])
    task(f"parse_{{i}}", f"{parse_cmd("{i}")}",
         inputs=[f"out/sim_{{i}}.dat"], outputs=[f"out/parse_{{i}}.csv"])
    csvs.append(f"out/parse_{{i}}.csv")
task("summary", SUMMARY, inputs=csvs, outputs=["out/summary.csv"])
'''


def makefile(n: int) -> str:
    """Pattern rules, as people write them; the runner also times `make -r` on it.

    Built-in implicit rules stay on here (make tries them on every prerequisite,
    which is most of its no-op time); the `make-r` tool turns them off from the
    command line. .SECONDARY keeps make from deleting out/sim_*.dat, which only
    pattern rules mention and which make would otherwise treat as intermediate.
    """
    return f""".SECONDARY:
N := {n}
CSVS := $(patsubst %,out/parse_%.csv,$(shell seq 1 $(N)))

out/summary.csv: $(CSVS)
\t{SUMMARY_CMD}

out/sim_%.dat: inputs/p_%.txt params.txt
\t{sim_cmd("$*")}

out/parse_%.csv: out/sim_%.dat
\t{parse_cmd("$*")}
"""


def ninja(n: int, v: Variant | None = None, listed: bool = False) -> str:
    """build.ninja; `listed`: build-rsp.ninja, whose summary also writes its input list
    to a response file, so that ninja's command hash covers the list and a shorter
    list reruns the summary, as pytaskmake's declared inputs do (plain ninja leaves
    it: its inputs' mtimes are older and its command did not change)."""
    v = v or Variant(n)
    sim = f"(cat params.txt $in{sim_extra(v)}) > $out" if v.param else "cat params.txt $in > $out"
    lines = [
        "rule sim",
        f"  command = {sim}$rev",
        "rule parse",
        "  command = tr a-z A-Z < $in > $out",
        "rule summary",
        f"  command = {SUMMARY_CMD}",
    ]
    if listed:
        lines += ["  rspfile = out/summary.rsp", "  rspfile_content = $in"]
    for i in range(1, n + 1):
        lines.append(f"build out/sim_{i}.dat: sim inputs/p_{i}.txt | params.txt")
        if i == v.revised:
            lines.append(f"  rev = $ # rev {v.rev}")
        lines.append(f"build out/parse_{i}.csv: parse out/sim_{i}.dat")
    csvs = " $\n    ".join(f"out/parse_{i}.csv" for i in range(1, n + 1))
    lines.append(f"build out/summary.csv: summary $\n    {csvs}")
    lines.append("default out/summary.csv")
    return "\n".join(lines) + "\n"


def dodo(n: int) -> str:
    return f'''N = {n}
CSVS = [f"out/parse_{{i}}.csv" for i in range(1, N + 1)]


def task_sim():
    for i in range(1, N + 1):
        yield {{
            "name": str(i),
            "actions": [f"{sim_cmd("{i}")}"],
            "file_dep": ["params.txt", f"inputs/p_{{i}}.txt"],
            "targets": [f"out/sim_{{i}}.dat"],
        }}


def task_parse():
    for i in range(1, N + 1):
        yield {{
            "name": str(i),
            "actions": [f"{parse_cmd("{i}")}"],
            "file_dep": [f"out/sim_{{i}}.dat"],
            "targets": [f"out/parse_{{i}}.csv"],
        }}


def task_summary():
    return {{
        "actions": [{SUMMARY_CMD!r}],
        "file_dep": CSVS,
        "targets": ["out/summary.csv"],
    }}
'''


def snakefile(n: int) -> str:
    return f"""N = {n}

wildcard_constraints:
    i=r"\\d+"

rule summary:
    input: expand("out/parse_{{i}}.csv", i=range(1, N + 1))
    output: "out/summary.csv"
    shell: {SUMMARY_CMD!r}

rule sim:
    input: "params.txt", "inputs/p_{{i}}.txt"
    output: "out/sim_{{i}}.dat"
    shell: "cat {{input}} > {{output}}"

rule parse:
    input: "out/sim_{{i}}.dat"
    output: "out/parse_{{i}}.csv"
    shell: "tr a-z A-Z < {{input}} > {{output}}"
"""
