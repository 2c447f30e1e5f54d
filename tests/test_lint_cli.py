"""--lint, trace=True, --trace-deps and depfiles end to end: the real CLI, real strace.

Tests that need strace are skipped, saying why, where it is not installed (CI
installs it: .ci/run).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import Project, build, ran

from pytaskmake import strace

needs_strace = pytest.mark.skipif(
    strace.find_strace() is None, reason="strace is not installed (apt-get install strace)"
)


@needs_strace
def test_lint_reports_undeclared_reads_writes_and_unread_inputs(project: Project) -> None:
    project.write("in.txt", "data\n")
    project.write("conf/helper.txt", "helping\n")
    project.write("unused.txt", "never read\n")
    project.taskfile(
        """
        task("make", "cat in.txt conf/*.txt > out.txt; echo side > side.txt",
             inputs=["in.txt", "unused.txt"], outputs=["out.txt"])
        """
    )
    result = build(project, "--lint", code=1)
    assert "lint: make (Taskfile.py:3)" in result.stdout
    assert "  reads conf/helper.txt, which is not one of its inputs" in result.stdout
    assert "  writes side.txt, which is not one of its outputs" in result.stdout
    assert "  never reads its input unused.txt" in result.stdout
    assert "lint: 3 problem(s) in 1 of 1 traced tasks" in result.stdout
    assert "in.txt" not in result.stdout.replace("unused.txt", "")


@needs_strace
def test_lint_of_a_clean_taskfile_exits_0(project: Project) -> None:
    project.write("in.txt", "data\n")
    project.taskfile(
        """
        task("copy", ["cp", "in.txt", "mid.txt"], inputs=["in.txt"], outputs=["mid.txt"])
        task("upper", "tr a-z A-Z < mid.txt > tmp.txt && mv tmp.txt out.txt",
             inputs=["mid.txt"], outputs=["out.txt"])
        """
    )
    result = build(project, "--lint")
    assert "lint: no problems in 2 traced tasks" in result.stdout
    assert project.read("out.txt") == "DATA\n"
    again = build(project, "--lint")  # nothing runs: nothing traced, still clean
    assert "lint: no problems in 0 traced tasks; 2 selected task(s) did not run" in again.stdout
    assert "lint: no problems in 2 traced tasks" in build(project, "--lint", "-B").stdout


@needs_strace
def test_lint_finds_a_race_between_tasks_no_dependency_orders(project: Project) -> None:
    project.write("in.txt", "data\n")
    project.taskfile(
        """
        task("first", "cp in.txt made.txt", inputs=["in.txt"], outputs=["made.txt"])
        task("second", "sleep 0.3; cat made.txt > copy.txt", outputs=["copy.txt"])
        """
    )
    result = build(project, "--lint", "-j2", code=1)
    assert (
        "  reads made.txt, written by 'first', but no dependency orders 'first' first (a race)"
        in result.stdout
    )


@needs_strace
def test_lint_sees_what_a_callable_reads(project: Project) -> None:
    project.write("config.ini", "x=1\n")
    project.taskfile(
        """
        def make(outputs):
            with open("config.ini") as f, open(outputs[0], "w") as out:
                out.write(f.read())

        task("py", make, outputs=["out.txt"])
        """
    )
    result = build(project, "--lint", code=1)
    assert "  reads config.ini, which is not one of its inputs" in result.stdout
    assert project.read("out.txt") == "x=1\n"


@needs_strace
def test_lint_sees_the_processes_a_callable_starts(project: Project) -> None:
    project.write("config.ini", "x=1\n")
    project.taskfile(
        """
        import subprocess

        def make(outputs):
            subprocess.run(["cp", "config.ini", outputs[0]], check=True)

        task("py", make, outputs=["out.txt"])
        """
    )
    result = build(project, "--lint", code=1)
    assert "  reads config.ini, which is not one of its inputs" in result.stdout


def test_lint_without_strace_names_the_missing_tool(project: Project, tmp_path: Path) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    project.write("in.txt", "data\n")
    project.taskfile('task("copy", "cat in.txt > out.txt", inputs=["in.txt"], outputs=["out.txt"])')
    result = project.run("--lint", PATH=str(empty))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pytaskmake: error: --lint (to see what commands read and write) needs strace, " in (
        result.stderr
    )
    assert "apt-get install strace" in result.stderr
    assert "Traceback" not in result.stderr
    assert not project.exists("out.txt")


@needs_strace
def test_trace_true_records_an_undeclared_helper_and_reruns_on_its_edit(
    project: Project,
) -> None:
    project.write("tool.py", "import helper\nprint(helper.VALUE)\n")
    project.write("helper.py", "VALUE = 1\n")
    project.taskfile(
        f"""
        task("run", "{sys.executable} tool.py > out.txt", outputs=["out.txt"], trace=True)
        task("other", "echo other > other.txt", outputs=["other.txt"])
        """
    )
    assert set(ran(build(project))) == {"run", "other"}
    assert project.read("out.txt") == "1\n"
    assert ran(build(project)) == []
    # (another size: Python's bytecode cache trusts a same-sized source of the same second)
    project.write("helper.py", "VALUE = 22\n")
    explained = build(project, "--explain")
    assert "run: traced input helper.py changed" in explained.stdout
    assert ran(build(project)) == ["run"]
    assert project.read("out.txt") == "22\n"
    (project.root / "helper.py").unlink()
    project.write("helper.py", "VALUE = 22\n")  # the same bytes again: nothing to do
    assert ran(build(project)) == []


@needs_strace
def test_trace_deps_records_reads_for_one_build_and_they_stay(project: Project) -> None:
    project.write("conf/cfg.txt", "a\n")
    project.taskfile('task("copy", "cat conf/*.txt > out.txt", outputs=["out.txt"])')
    build(project, "--trace-deps")
    project.write("conf/cfg.txt", "b\n")
    assert ran(build(project)) == ["copy"]  # a plain build: cfg.txt is known now
    assert project.read("out.txt") == "b\n"
    project.write("conf/cfg.txt", "c\n")
    assert "copy: traced input conf/cfg.txt changed" in build(project, "--explain").stdout
    assert ran(build(project)) == ["copy"]
    assert ran(build(project)) == []


@needs_strace
def test_traced_inputs_are_part_of_the_run_cache_key(project: Project) -> None:
    project.write("conf/cfg.txt", "a\n")
    project.taskfile(
        'task("copy", "cat conf/*.txt > out.txt", outputs=["out.txt"], trace=True)'
    )
    build(project)
    project.write("conf/cfg.txt", "b\n")
    assert ran(build(project)) == ["copy"]
    project.write("conf/cfg.txt", "a\n")  # back to the first content: restored, not run
    assert "would restore copy from cache" in build(project, "-n").stdout
    result = build(project)
    assert "restored copy" in result.stdout
    assert project.read("out.txt") == "a\n"


def test_depfile_inputs_are_recorded_and_rerun_the_task(project: Project) -> None:
    project.write("sim.c", "int main;\n")
    project.write("inc/sim.h", "#define A 1\n")
    project.taskfile(
        """
        task("cc", "cat sim.c inc/sim.h > sim.o && printf 'sim.o: sim.c inc/sim.h \\\\\\n"
             " /usr/include/stdio.h gone.h\\n' > sim.d",
             inputs=["sim.c"], outputs=["sim.o"], depfile="sim.d", implicit_inputs=False)
        """
    )
    build(project)
    assert ran(build(project)) == []
    project.write("inc/sim.h", "#define A 2\n")
    assert "cc: traced input inc/sim.h changed" in build(project, "--explain").stdout
    assert ran(build(project)) == ["cc"]
    (project.root / "inc/sim.h").unlink()  # a discovered input gone: reruns, no error
    project.write("sim.c", "int main; /* no header now */\n")
    result = project.run()
    assert result.returncode == 1 and "No such file" in result.stdout  # cat fails: no load error


def test_lint_and_trace_deps_refuse_modes_that_run_nothing(project: Project) -> None:
    project.taskfile('task("t", "true")')
    result = project.run("--lint", "-n")
    assert result.returncode == 2
    assert "--lint traces the tasks a build runs: not with -n" in result.stderr


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_trace_true_without_strace_runs_untraced_with_a_notice(
    project: Project, tmp_path: Path
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    (empty / "cat").symlink_to(shutil.which("cat") or "/bin/cat")
    project.write("cfg.txt", "a\n")
    project.taskfile('task("copy", "cat cfg.txt > out.txt", outputs=["out.txt"], trace=True)')
    result = project.run(PATH=str(empty), HOME=os.environ.get("HOME", "/"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "strace is not installed: the commands of 1 task(s) declared with trace=True" in (
        result.stdout
    )


def test_trace_and_depfile_arguments_are_checked_at_load(project: Project) -> None:
    project.taskfile('task("t", "true", trace="yes")')
    result = project.run()
    assert result.returncode == 2
    assert "Taskfile.py:2: task 't': trace must be True or False, not 'yes'" in result.stderr
    project.taskfile('task("t", "true", outputs=["x.d"], depfile="x.d")')
    result = project.run()
    assert result.returncode == 2
    assert "depfile 'x.d' is also one of its files" in result.stderr


@needs_strace
def test_trace_files_are_removed_once_read(project: Project) -> None:
    project.taskfile(
        """
        def make(outputs):
            open(outputs[0], "w").write("x")

        task("py", make, outputs=["a.txt"])
        task("sh", "echo b > b.txt", outputs=["b.txt"])
        """
    )
    assert "lint: no problems in 2 traced tasks" in build(project, "--lint").stdout
    assert not project.exists(".pytaskmake/traces")
