"""The stats a Prefetch's children take while the Taskfile loads are the ones the build
uses (snapshot.Prefetch.stats_of, Comparison.seed): past the snapshot, the build
process itself stats none of the files of the chunks it checks, and what the
children saw is what is on disk (an edit made before the run is found).

The build process is traced with strace without -f, so the forked children's own
stats are not counted: only the parent's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, build, runs

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")

POINTS = 300

TASKFILE = """
from pytaskmake import task
csvs = []
for i in range(1, {points} + 1):
    task(f"sim_{{i}}", f"echo sim_{{i}} >> runs.log; cat inputs/p_{{i}}.txt > out/sim_{{i}}.dat",
         inputs=[f"inputs/p_{{i}}.txt"], outputs=[f"out/sim_{{i}}.dat"])
    task(f"parse_{{i}}", f"echo parse_{{i}} >> runs.log; cat out/sim_{{i}}.dat > out/p_{{i}}.csv",
         inputs=[f"out/sim_{{i}}.dat"], outputs=[f"out/p_{{i}}.csv"])
    csvs.append(f"out/p_{{i}}.csv")
task("summary", "echo summary >> runs.log; cat out/p_*.csv > summary.txt",
     inputs=csvs, outputs=["summary.txt"])
"""


@pytest.fixture
def sweep(project: Project) -> Project:
    for i in range(1, POINTS + 2):
        project.write(f"inputs/p_{i}.txt", f"{i}\n")
    (project.root / "out").mkdir()
    project.write("Taskfile.py", TASKFILE.format(points=POINTS))
    build(project, "-j2")
    build(project)  # a no-op: the snapshot is saved
    runs(project)
    return project


def parent_stats(project: Project, trace: Path) -> list[str]:
    """Build once, traced (the build process only); the paths it stat'ed."""
    done = subprocess.run(
        ["strace", "-qq", "-e", "trace=%stat,%lstat,%fstat", "-o", str(trace), sys.executable, "-m",
         "pytaskmake", "-j2"],
        cwd=project.root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [line.split('"')[1] for line in trace.read_text().splitlines() if '"' in line]


def test_a_taskfile_edit_stats_nothing_the_children_already_stat_ed(
    sweep: Project, tmp_path: Path
) -> None:
    sweep.write("Taskfile.py", TASKFILE.format(points=POINTS + 1))  # one more point
    seen = parent_stats(sweep, tmp_path / "trace.log")
    assert sorted(runs(sweep)) == sorted([f"sim_{POINTS + 1}", f"parse_{POINTS + 1}", "summary"])
    old = [p for p in seen if p.startswith("out/p_") and p != f"out/p_{POINTS + 1}.csv"]
    assert old == []  # the summary's 300 other inputs: stat'ed by the children only
    assert f"out/p_{POINTS + 1}.csv" in seen  # (a new file: nobody had stat'ed it)


def test_the_childrens_stats_see_an_edit_made_before_the_run(
    sweep: Project, tmp_path: Path
) -> None:
    sweep.write("inputs/p_7.txt", "seven\n")
    sweep.write("Taskfile.py", TASKFILE.format(points=POINTS + 1))
    parent_stats(sweep, tmp_path / "trace.log")
    assert sorted(runs(sweep)) == sorted(
        ["sim_7", "parse_7", f"sim_{POINTS + 1}", f"parse_{POINTS + 1}", "summary"]
    )
    assert "seven" in sweep.read("summary.txt")
    build(sweep)
    assert runs(sweep) == []


PROBE = """
task("probe", "n=0; for s in /proc/[0-9]*/status; do "
     "grep -qs \\"^PPid:[[:space:]]*$PPID\\\\$\\" $s && n=$((n+1)); done; echo $n > probe.txt",
     outputs=["probe.txt"])
"""


def test_the_children_are_gone_once_tasks_run(sweep: Project) -> None:
    """They serve the stats while the build decides what to run, not for the hours the
    tasks may take: a task started by the build finds itself the build's only child."""
    sweep.write("Taskfile.py", TASKFILE.format(points=POINTS) + PROBE)
    build(sweep, "-j1")
    assert sweep.read("probe.txt").strip() == "1"
