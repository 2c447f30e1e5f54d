"""The command line (cli.py, commands.py, build.py) driven as a user would, as a subprocess."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Project, build, ran, runs

import pytaskmake


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root (state directory included) with its bytes and mtime."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


def db_rows(project: Project) -> list[tuple[object, ...]]:
    con = sqlite3.connect(project.root / ".pytaskmake" / "state.db")
    try:
        return sorted(con.execute("SELECT * FROM tasks"))
    finally:
        con.close()


# A small project: two simulations per parameter, a summary per parameter, a report.
SWEEP = """
for p in (1, 2):
    task(f"sim{p}", f"echo sim{p} >> runs.log; echo {p} > results/sim/{p}.txt",
         inputs=["params.txt"], outputs=[f"results/sim/{p}.txt"], log=f"logs/sim{p}.log")
    task(f"sum{p}", f"echo sum{p} >> runs.log; cat results/sim/{p}.txt > results/sum/{p}.txt",
         inputs=[f"results/sim/{p}.txt"], outputs=[f"results/sum/{p}.txt"])
task("report", "echo report >> runs.log; cat results/sum/*.txt > report.txt",
     inputs=["results/sum/1.txt", "results/sum/2.txt"], outputs=["report.txt"])
task("lonely", "echo lonely >> runs.log; echo x > resultsfile.txt", outputs=["resultsfile.txt"])
"""
ALL = ["lonely", "report", "sim1", "sim2", "sum1", "sum2"]


@pytest.fixture
def sweep(project: Project) -> Project:
    project.taskfile(SWEEP)
    project.write("params.txt", "a=1\n")
    return project


# --- exit codes, ran lines --------------------------------------------------------------


def test_full_build_then_up_to_date(sweep: Project) -> None:
    result = build(sweep)
    assert sorted(runs(sweep)) == ALL
    assert sorted(ran(result)) == ALL
    assert sweep.read("report.txt") == "1\n2\n"
    again = build(sweep)
    assert runs(sweep) == [] and ran(again) == []
    assert "up to date 6" in again.stdout


def test_python_dash_m_and_console_script(sweep: Project) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"pytaskmake {pytaskmake.__version__}"
    script = shutil.which("pytaskmake")
    if script is None:
        pytest.skip("console script not on PATH")
    result = subprocess.run(
        [script, "-j", "1", "lonely"], cwd=sweep.root, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert runs(sweep) == ["lonely"]


@pytest.mark.parametrize("args", [("-j", "0"), ("-j", "many"), ("nosuchtarget",)])
def test_usage_errors_exit_2_and_run_nothing(sweep: Project, args: tuple[str, ...]) -> None:
    result = build(sweep, *args, code=2)
    assert result.stderr.strip()
    assert runs(sweep) == []


def test_failure_exit_1_then_fixed_exit_0(project: Project) -> None:
    project.taskfile(
        """
        task("check", "test -e fixed && echo ok > ok.txt", outputs=["ok.txt"])
        """
    )
    result = build(project, code=1)
    assert "FAILED check" in result.stdout
    project.write("fixed", "")
    build(project)


# --- targets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "targets, expected",
    [
        (["sum1"], ["sim1", "sum1"]),
        (["results/sum/2.txt"], ["sim2", "sum2"]),
        (["./results/sim/1.txt"], ["sim1"]),
        (["results/sim"], ["sim1", "sim2"]),
        (["results"], ["sim1", "sim2", "sum1", "sum2"]),
        (["sum2", "lonely"], ["lonely", "sim2", "sum2"]),
    ],
)
def test_only_targets_and_their_ancestors_run(
    sweep: Project, targets: list[str], expected: list[str]
) -> None:
    result = build(sweep, *targets)
    assert sorted(runs(sweep)) == expected
    assert sorted(ran(result)) == expected


def test_target_already_built_runs_nothing_more(sweep: Project) -> None:
    build(sweep, "sum1")
    runs(sweep)
    build(sweep, "results/sum/1.txt")
    assert runs(sweep) == []
    build(sweep)
    assert sorted(runs(sweep)) == ["lonely", "report", "sim2", "sum2"]


def test_target_by_absolute_output_path(sweep: Project) -> None:
    build(sweep, str(sweep.root / "results" / "sum" / "1.txt"))
    assert sorted(runs(sweep)) == ["sim1", "sum1"]


# --- -n, -l -----------------------------------------------------------------------------


def test_dry_run_lists_reasons_and_touches_nothing(sweep: Project) -> None:
    build(sweep)
    runs(sweep)
    sweep.write("params.txt", "a=2\n")
    (sweep.root / "resultsfile.txt").unlink()
    before = snapshot(sweep.root)
    result = build(sweep, "-n")
    assert snapshot(sweep.root) == before
    lines = result.stdout.splitlines()
    assert "would run sim1: input params.txt changed" in lines
    assert "would run sim2: input params.txt changed" in lines
    assert "may run sum1 (if its inputs change): upstream sim1 will run" in lines
    assert "would restore lonely from cache: output resultsfile.txt is missing" in lines
    assert any(line.startswith("may run report") for line in lines)
    assert len([line for line in lines if line.startswith("would run")]) == 2
    assert lines[-1] == (
        "3 of 6 tasks would run, 3 more may run (if their inputs change) "
        "(1 restored from the run cache)"
    )
    # the real build: the simulations rerun, produce the same bytes, and the rest stops there
    result = build(sweep)
    assert sorted(runs(sweep)) in (["sim1", "sim2"], ["lonely", "sim1", "sim2"])
    assert sweep.exists("resultsfile.txt")  # run again or restored from the run cache


def test_dry_run_with_targets_and_force(sweep: Project) -> None:
    build(sweep)
    result = build(sweep, "-n", "-B", "sum2")
    assert result.stdout.splitlines() == [
        "would run sim2: forced (-B)",
        "would run sum2: forced (-B)",
        "2 of 2 tasks would run",
    ]
    assert build(sweep, "-n").stdout.splitlines() == ["0 of 6 tasks would run"]


def test_dry_run_on_a_fresh_project_writes_no_outputs(sweep: Project) -> None:
    result = build(sweep, "-n")
    assert sorted(result.stdout.splitlines()[:-1]) == [f"would run {n}: never run" for n in ALL]
    assert not sweep.exists("results") and not sweep.exists("logs")
    assert not sweep.exists("runs.log")
    assert build(sweep).returncode == 0
    assert sorted(runs(sweep)) == ALL


def test_dry_run_on_a_fresh_project_creates_no_files(sweep: Project) -> None:
    before = snapshot(sweep.root)
    build(sweep, "-n")
    build(sweep, "-l")
    assert snapshot(sweep.root) == before
    assert not sweep.exists(".pytaskmake")


def test_dry_run_leaves_a_damaged_state_database_alone(sweep: Project) -> None:
    state = sweep.root / ".pytaskmake"
    state.mkdir()
    (state / "state.db").write_bytes(b"not a database" * 100)
    before = snapshot(sweep.root)
    build(sweep, "-n")
    assert snapshot(sweep.root) == before


def states(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines of -l without what each task's runs measured (`  [last run ...]`)."""
    return [line.split("  [last run ")[0] for line in result.stdout.splitlines()]


def test_list_shows_each_task_up_to_date_or_stale(sweep: Project) -> None:
    listing = build(sweep, "-l").stdout.splitlines()
    assert sorted(listing) == sorted(f"{name}  (stale: never run)" for name in ALL)
    build(sweep)
    runs(sweep)
    sweep.write("params.txt", "changed\n")
    listing = states(build(sweep, "-l"))
    assert "lonely  (up to date)" in listing
    assert "sim1  (stale: input params.txt changed)" in listing
    assert "sum1  (stale: upstream sim1 will run)" in listing
    assert len(listing) == 6
    assert states(build(sweep, "-l", "lonely")) == ["lonely  (up to date)"]
    assert runs(sweep) == []


# --- --clean ----------------------------------------------------------------------------


def test_clean_removes_outputs_and_logs_and_marks_the_tasks_cleaned(sweep: Project) -> None:
    sweep.write("results/notes.txt", "mine\n")
    build(sweep)
    runs(sweep)
    assert sweep.exists("logs/sim1.log")
    build(sweep, "--clean")
    for path in ("report.txt", "results/sim/1.txt", "results/sum/2.txt", "logs/sim1.log"):
        assert not sweep.exists(path), path
    assert sweep.read("results/notes.txt") == "mine\n", "undeclared files stay"
    assert sweep.read("params.txt") == "a=1\n", "inputs stay"
    assert [row[1:3] for row in db_rows(sweep)] == [(0, "cleaned")] * 6
    listing = build(sweep, "-l").stdout
    assert listing.count("stale: cleaned (--clean): runs, never restored") == 6
    build(sweep)
    assert sweep.read("report.txt") == "1\n2\n"


def test_clean_forgets_state_so_the_next_run_reruns(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo a >> runs.log; echo a > a.txt", outputs=["a.txt"], cache=False)
        task("b", "echo b >> runs.log; echo b > b.txt", outputs=["b.txt"], cache=False)
        """
    )
    build(project)
    assert sorted(runs(project)) == ["a", "b"]
    build(project, "--clean", "b")
    assert project.exists("a.txt") and not project.exists("b.txt")
    build(project)
    assert runs(project) == ["b"]


def test_clean_of_a_target_leaves_other_tasks(sweep: Project) -> None:
    build(sweep)
    runs(sweep)
    build(sweep, "--clean", "lonely")
    assert not sweep.exists("resultsfile.txt")
    assert sweep.exists("report.txt") and sweep.exists("logs/sim2.log")
    assert "report  (up to date)" in build(sweep, "-l").stdout
    assert "lonely  (stale: cleaned (--clean)" in build(sweep, "-l").stdout
    result = build(sweep)
    assert runs(sweep) == ["lonely"]  # run again: never restored after --clean
    assert "lonely" in result.stdout and "report" not in result.stdout
    assert sweep.read("resultsfile.txt") == "x\n"


# --- -f, -C -----------------------------------------------------------------------------


def test_dash_f_other_taskfile_and_its_directory_is_the_root(project: Project) -> None:
    project.write(
        "sub/build.py",
        """
        from pytaskmake import task
        task("inner", "pwd > where.txt; cat in.txt >> where.txt", inputs=["in.txt"],
             outputs=["where.txt"])
        """,
    )
    project.write("sub/in.txt", "sub-input\n")
    build(project, "-f", "sub/build.py")
    lines = project.read("sub/where.txt").splitlines()
    assert Path(lines[0]).resolve() == (project.root / "sub").resolve()
    assert lines[1] == "sub-input"
    assert (project.root / "sub" / ".pytaskmake").is_dir()
    assert "inner  (up to date)" in build(project, "-f", "sub/build.py", "-l").stdout


def test_dash_capital_c_changes_directory_first(project: Project) -> None:
    project.write(
        "proj/Taskfile.py",
        """
        from pytaskmake import task
        task("t", "echo made > made.txt", outputs=["made.txt"])
        """,
    )
    build(project, "-C", "proj")
    assert project.read("proj/made.txt") == "made\n"
    assert not project.exists("made.txt")
    assert "t  (up to date)" in build(project, "-C", "proj", "-l").stdout
    build(project, "-C", "no/such/dir", code=2)


# --- concurrency ------------------------------------------------------------------------

TIMED = """
import os, time
def timed(name, pause):
    def run(outputs):
        start = time.monotonic()
        time.sleep(pause)
        end = time.monotonic()
        with open(outputs[0], "w") as f:
            f.write(f"{{start}} {{end}}")
    return run
for i in range({n}):
    task(f"t{{i}}", timed(f"t{{i}}", {pause}), outputs=[f"times/t{{i}}.txt"], cache=False)
"""

SHELL_TIMED = """
for i in range({n}):
    task(f"s{{i}}",
         f"date +%s.%N > times/s{{i}}.txt; sleep {pause}; date +%s.%N >> times/s{{i}}.txt",
         outputs=[f"times/s{{i}}.txt"], cache=False)
"""


def intervals(project: Project) -> list[tuple[float, float]]:
    spans = []
    for path in sorted((project.root / "times").iterdir()):
        start, end = (float(x) for x in path.read_text().split())
        spans.append((start, end))
    return spans


def max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    level = peak = 0
    for _, step in events:  # at equal times an end sorts before a start
        level += step
        peak = max(peak, level)
    return peak


@pytest.mark.parametrize("jobs, n", [(1, 4), (2, 6), (3, 6)])
def test_jobs_limit_concurrency_exactly(project: Project, jobs: int, n: int) -> None:
    project.taskfile(TIMED.format(n=n, pause=0.15))
    build(project, "-j", str(jobs))
    spans = intervals(project)
    assert len(spans) == n
    assert max_overlap(spans) == jobs


def test_jobs_limit_applies_to_shell_commands(project: Project) -> None:
    project.taskfile(SHELL_TIMED.format(n=5, pause=0.2))
    build(project, "-j", "2")
    spans = intervals(project)
    assert len(spans) == 5
    assert max_overlap(spans) == 2


def test_serial_build_follows_dependencies(project: Project) -> None:
    project.taskfile(
        """
        task("c", "echo c >> runs.log; cat b.txt > c.txt", inputs=["b.txt"], outputs=["c.txt"])
        task("b", "echo b >> runs.log; cat a.txt > b.txt", inputs=["a.txt"], outputs=["b.txt"])
        task("a", "echo a >> runs.log; echo A > a.txt", outputs=["a.txt"])
        """
    )
    build(project, "-j", "1")
    assert runs(project) == ["a", "b", "c"]
    assert project.read("c.txt") == "A\n"


def test_a_task_far_down_the_queue_is_checked_near_its_turn_not_at_the_start(
    project: Project,
) -> None:
    """Only a few stale tasks are checked ahead of a free slot: their inputs are
    fingerprinted then. Here the first task changes the last one's input behind the
    build's back (an undeclared write); the last task runs long after and reads the
    new content, so its record must hold that content, not what the file held when
    the build began (a build that checked all 200 ready tasks at once would record
    the old hash, and the next build would rerun it)."""
    project.write("in/199.txt", "old\n")
    project.taskfile(
        """
        task("t0", "sleep 0.5; echo changed > in/199.txt; echo t0 >> runs.log; touch out/0",
             outputs=["out/0"])
        for i in range(1, 200):
            task(f"t{i}", f"echo t{i} >> runs.log; touch out/{i}",
                 inputs=["in/199.txt"] if i == 199 else [], outputs=[f"out/{i}"])
        """
    )
    build(project, "-j", "1")
    assert len(runs(project)) == 200
    build(project, "-j", "1")
    assert runs(project) == []


def test_depends_on_orders_tasks_without_files(project: Project) -> None:
    project.taskfile(
        """
        setup = task("setup", "sleep 0.3; echo ready > marker", outputs=["marker"])
        use = task("use", "cat marker > seen.txt", outputs=["seen.txt"])
        use.depends_on(setup)
        task("by_name", "cat marker > seen2.txt", outputs=["seen2.txt"], deps=["setup"])
        """
    )
    build(project, "-j", "3")
    assert project.read("seen.txt") == "ready\n"
    assert project.read("seen2.txt") == "ready\n"
    runs(project)
    build(project, "-B", "use")  # selecting it selects what it depends on
    assert project.read("seen.txt") == "ready\n"


# --- failures ---------------------------------------------------------------------------

STOPPING = """
task("bad", "echo bad >> runs.log; sleep 0.1; exit 1", outputs=["bad.txt"])
task("slow", "echo slow >> runs.log; sleep 0.8; echo s > slow.txt", outputs=["slow.txt"])
task("later1", "echo later1 >> runs.log; echo 1 > l1.txt", outputs=["l1.txt"])
task("later2", "echo later2 >> runs.log; echo 2 > l2.txt", outputs=["l2.txt"])
task("child", "echo child >> runs.log; cat bad.txt > child.txt", inputs=["bad.txt"],
     outputs=["child.txt"])
"""


def test_failure_stops_new_tasks_but_running_ones_finish(project: Project) -> None:
    project.taskfile(STOPPING)
    result = build(project, "-j", "2", code=1)
    assert sorted(runs(project)) == ["bad", "slow"]
    assert "FAILED bad" in result.stdout
    assert project.read("slow.txt") == "s\n", "the running task was allowed to finish"
    assert ran(result) == ["slow"]
    listing = states(build(project, "-l"))
    assert "slow  (up to date)" in listing, "a task finishing after the failure is recorded"
    assert "bad  (stale: failed last time)" in listing
    assert "later1  (stale: never run)" in listing


def test_keep_going_builds_everything_not_depending_on_the_failure(project: Project) -> None:
    project.taskfile(STOPPING)
    result = build(project, "-j", "2", "-k", code=1)
    assert sorted(runs(project)) == ["bad", "later1", "later2", "slow"]
    assert sorted(ran(result)) == ["later1", "later2", "slow"]
    assert "skipped child" in result.stdout
    assert "FAILED bad" in result.stdout
    assert not project.exists("child.txt")


def test_keep_going_in_a_diamond(project: Project) -> None:
    project.taskfile(
        """
        task("root", "echo root >> runs.log; echo r > r.txt", outputs=["r.txt"])
        task("left", "echo left >> runs.log; exit 2", inputs=["r.txt"], outputs=["l.txt"])
        task("right", "echo right >> runs.log; cat r.txt > rr.txt", inputs=["r.txt"],
             outputs=["rr.txt"])
        task("join", "echo join >> runs.log; cat l.txt rr.txt > j.txt",
             inputs=["l.txt", "rr.txt"], outputs=["j.txt"])
        task("tail", "echo tail >> runs.log", inputs=["j.txt"])
        """
    )
    result = build(project, "-k", "-j", "1", code=1)
    assert runs(project) == ["root", "left", "right"]
    assert "skipped join" in result.stdout and "skipped tail" in result.stdout
    result = build(project, "-k", "-j", "1", code=1)
    assert runs(project) == ["left"], "only the failure reruns; the rest is up to date"


def test_failure_message_shows_command_and_output(project: Project) -> None:
    project.taskfile(
        """
        task("boom", "echo explaining the problem; exit 7", outputs=["x"])
        """
    )
    result = build(project, code=1)
    assert "FAILED boom" in result.stdout
    assert "exit code 7" in result.stdout
    assert "explaining the problem" in result.stdout
    assert "echo explaining the problem; exit 7" in result.stdout


def test_concurrent_build_in_same_directory_is_refused(project: Project) -> None:
    project.taskfile(
        """
        task("hold", "echo started > started; while [ ! -e release ]; do sleep 0.02; done; "
             "echo > held.txt", outputs=["held.txt"], timeout=60)
        """
    )
    first = project.popen()
    try:
        for _ in range(600):
            if project.exists("started"):
                break
            time.sleep(0.02)
        second = project.run()
    finally:
        project.write("release", "")
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err
    assert second.returncode == 2
    assert "another pytaskmake" in second.stderr and "Traceback" not in second.stderr


def test_task_that_cannot_start_fails_with_its_reason(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo a > blocker", outputs=["blocker"])
        task("b", "echo b > blocker/x.txt", inputs=["blocker"], outputs=["blocker/x.txt"])
        task("c", "echo c > c.txt", outputs=["c.txt"])
        """
    )
    result = build(project, "-k", "-j", "1", code=1)
    assert "FAILED b: could not start: Not a directory: blocker" in result.stdout
    assert project.read("c.txt") == "c\n"
    assert "b  (stale: failed last time)" in build(project, "-l").stdout


def test_an_unwritable_trace_path_is_refused_before_anything_runs(project: Project) -> None:
    project.taskfile('task("t", "echo t >> runs.log; echo t > t.txt", outputs=["t.txt"])\n')
    result = build(project, "--trace", "no/such/dir/t.json", code=2)
    assert "--trace" in result.stderr and "no such directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert runs(project) == [] and not project.exists("t.txt")  # nothing ran first


def test_touch_adopts_existing_results_without_running_anything(project: Project) -> None:
    """Results made before the Taskfile existed (or copied from a colleague) are
    adopted by --touch; the next build runs nothing, an edit afterwards reruns."""
    project.write("in.txt", "1\n")
    project.write("sim.txt", "made by hand\n")
    project.write("sum.txt", "also by hand\n")
    project.taskfile(
        """
        task("sim", "echo sim >> runs.log; cat in.txt > sim.txt", inputs=["in.txt"],
             outputs=["sim.txt"])
        task("sum", "echo sum >> runs.log; cat sim.txt > sum.txt", inputs=["sim.txt"],
             outputs=["sum.txt"])
        """
    )
    result = build(project, "--touch")
    assert "recorded 2 tasks as up to date" in result.stdout
    assert runs(project) == []
    assert "up to date 2" in build(project).stdout and runs(project) == []
    assert project.read("sum.txt") == "also by hand\n"
    project.write("in.txt", "2\n")
    build(project)
    assert runs(project) == ["sim", "sum"] and project.read("sum.txt") == "2\n"


def test_touch_refuses_when_an_output_is_missing_and_records_nothing(project: Project) -> None:
    project.write("a.txt", "a\n")
    project.taskfile(
        """
        task("a", "echo a >> runs.log; echo a > a.txt", outputs=["a.txt"])
        task("b", "echo b >> runs.log; echo b > b.txt", outputs=["b.txt"])
        """
    )
    result = build(project, "--touch", code=2)
    assert "cannot --touch 'b'" in result.stderr and "b.txt does not exist" in result.stderr
    assert "Taskfile.py:" in result.stderr
    build(project)
    assert sorted(runs(project)) == ["a", "b"]  # nothing was recorded by the refused --touch


# --- the command line a make, ninja and snakemake user expects ---------------------------


def test_the_taskfile_is_found_from_a_subfolder_and_targets_are_relative_to_it(
    sweep: Project,
) -> None:
    inside = sweep.root / "results" / "sum"
    inside.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "1.txt"],
        cwd=inside,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"using {sweep.root / 'Taskfile.py'}" in result.stderr
    assert sorted(runs(sweep)) == ["sim1", "sum1"]  # results/sum/1.txt, as seen from here
    dot = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "-n", "."],
        cwd=inside,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert "would run sum2" in dot.stdout and "lonely" not in dot.stdout


def test_a_typo_in_a_target_suggests_the_closest_names(sweep: Project) -> None:
    result = build(sweep, "reprot", code=2)
    assert "unknown target 'reprot'" in result.stderr and "did you mean 'report'" in result.stderr


def test_subcommands_work_after_global_options(sweep: Project) -> None:
    build(sweep)
    runs(sweep)
    sweep.write("params.txt", "a=2\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "-C", str(sweep.root), "why", "sum1"],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "sim1: input params.txt changed" in result.stdout
    cache = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "-C", str(sweep.root), "cache"],
        capture_output=True,
        text=True,
    )
    assert cache.returncode == 0 and "entries" in cache.stdout, cache.stderr


def test_conflicting_flags_are_a_usage_error(sweep: Project) -> None:
    assert "-q and -v" in build(sweep, "-q", "-v", code=2).stderr
    assert "--graph and -l" in build(sweep, "--graph", "-l", code=2).stderr
    assert runs(sweep) == []


def test_question_mode_runs_nothing_and_answers_with_its_exit_code(sweep: Project) -> None:
    assert build(sweep, "--question", code=1).stdout == ""
    assert runs(sweep) == []
    build(sweep)
    runs(sweep)
    build(sweep, "--question", code=0)
    sweep.write("params.txt", "a=3\n")
    build(sweep, "--question", code=1)
    assert runs(sweep) == []


def test_an_empty_taskfile_warns(project: Project) -> None:
    project.write("Taskfile.py", "# nothing yet\n")
    result = build(project)
    assert "declares no tasks" in result.stderr


# --- issue 25: --rerun, --rerun-failed, --clean -n, --clean-dead, -n -v ----------------


def test_rerun_runs_just_the_named_task_and_never_restores_it(sweep: Project) -> None:
    build(sweep)
    runs(sweep)
    result = build(sweep, "--rerun", "sim1")
    assert runs(sweep) == ["sim1"]  # same bytes out: sum1 and report do not rerun
    assert "ran sim1" in result.stdout and "restored sim1" not in result.stdout
    build(sweep, "--rerun", "results/sum/2.txt", "--rerun", "lonely")  # outputs name tasks
    assert sorted(runs(sweep)) == ["lonely", "sum2"]
    assert "would run sim2: forced (--rerun)" in build(sweep, "-n", "--rerun", "sim2").stdout
    assert build(sweep, "--rerun", "nope", code=2).stderr.startswith("pytaskmake: error:")


def test_rerun_failed_builds_exactly_the_tasks_that_failed(project: Project) -> None:
    project.write("flag.txt", "bad\n")
    project.write("other.txt", "1\n")
    project.taskfile(
        """
        task("fragile", "echo fragile >> runs.log; grep -q good flag.txt && echo ok > f.txt",
             inputs=["flag.txt"], outputs=["f.txt"], cache=False)
        task("steady", "echo steady >> runs.log; cat other.txt > s.txt",
             inputs=["other.txt"], outputs=["s.txt"], cache=False)
        """
    )
    build(project, "-k", code=1)
    assert sorted(runs(project)) == ["fragile", "steady"]
    project.write("flag.txt", "good\n")
    project.write("other.txt", "2\n")  # steady is stale too, but did not fail
    build(project, "--rerun-failed")
    assert runs(project) == ["fragile"]
    assert build(project, "--rerun-failed").stdout.strip() == (
        "pytaskmake: no task failed in its last run"
    )
    build(project)
    assert runs(project) == ["steady"]


def test_clean_dash_n_lists_and_removes_nothing(sweep: Project) -> None:
    build(sweep)
    before = snapshot(sweep.root)
    result = build(sweep, "--clean", "-n", "sum1")
    assert snapshot(sweep.root) == before
    assert result.stdout.splitlines() == [
        "would remove results/sim/1.txt",
        "would remove logs/sim1.log",
        "would remove results/sum/1.txt",
        "pytaskmake: would remove 3 files of 2 tasks",
    ]


def test_clean_dead_removes_outputs_and_records_of_removed_tasks(sweep: Project) -> None:
    build(sweep)
    runs(sweep)
    sweep.taskfile(
        SWEEP.replace("for p in (1, 2):", "for p in (1,):").replace(
            '"results/sum/1.txt", "results/sum/2.txt"', '"results/sum/1.txt"'
        )
    )
    listed = build(sweep, "--clean-dead", "-n")
    assert listed.stdout.splitlines() == [
        "would remove results/sim/2.txt",
        "would remove results/sum/2.txt",
        "pytaskmake: would remove 2 files of 2 tasks no longer declared",
    ]
    assert sweep.exists("results/sim/2.txt")
    build(sweep, "--clean-dead")
    assert not sweep.exists("results/sim/2.txt") and not sweep.exists("results/sum/2.txt")
    assert sweep.exists("results/sim/1.txt") and sweep.exists("report.txt")
    assert {row[0] for row in db_rows(sweep)} == {"sim1", "sum1", "report", "lonely"}
    assert build(sweep, "--clean-dead").stdout.strip() == (
        "pytaskmake: removed 0 files of 0 tasks no longer declared"
    )


def test_dry_run_verbose_prints_the_commands(sweep: Project) -> None:
    lines = build(sweep, "-n", "-v", "sim1").stdout.splitlines()
    assert lines[:2] == [
        "would run sim1: never run",
        "  echo sim1 >> runs.log; echo 1 > results/sim/1.txt",
    ]


def test_two_taskfiles_in_one_folder_keep_their_own_records(project: Project) -> None:
    """`-f a.py` and `-f b.py` both declare "sim": b's is not up to date by a's record."""
    project.write("in.txt", "x\n")
    for name in ("a", "b"):
        project.write(
            f"{name}.py",
            "from pytaskmake import task\n"
            f'task("sim", "echo {name} >> runs.log; cat in.txt > {name}.out", '
            f'inputs=["in.txt"], outputs=["{name}.out"])\n',
        )
    build(project, "-f", "a.py")
    build(project, "-f", "b.py")
    assert runs(project) == ["a", "b"]
    build(project, "-f", "a.py")
    build(project, "-f", "b.py")
    assert runs(project) == []


def test_help_lists_subcommands_targets_and_exit_codes(project: Project) -> None:
    text = build(project, "--help").stdout
    for part in ("subcommands", "why TARGET", "cache [--prune SIZE]", "NAME=value", "exit codes"):
        assert part in text


def test_a_listing_taken_while_a_build_runs_says_so(project: Project) -> None:
    project.taskfile('task("slow", "touch started; sleep 3; echo > out.txt", outputs=["out.txt"])')
    running = project.popen()
    try:
        deadline = time.monotonic() + 10
        while not project.exists("started"):
            assert time.monotonic() < deadline and running.poll() is None
            time.sleep(0.02)
        for option in ("-n", "-l"):
            result = project.run(option)
            assert f"a build is running here (pid {running.pid})" in result.stderr, option
    finally:
        running.communicate(timeout=30)
    assert "a build is running" not in project.run("-n").stderr
