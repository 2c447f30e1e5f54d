"""The taskrun compatibility layer (pytaskmake/taskrun/): taskrun scripts run as real
Python processes over the real engine, with the example's fake simulators on PATH;
what ran is read from the files the tasks write and the runs.log they append to."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "taskrun"
TOPOLOGIES = ("fat_tree", "mesh", "torus")
BUFFERS = ("1024", "2048", "4096", "8192")


def run(
    folder: Path, script: str = "run.py", cwd: Path | None = None, code: int | None = 0, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a script as a user would (`python3 script`), the fake simulators on PATH;
    insist on its exit code (unless None) and on no traceback."""
    full_env = {
        **os.environ,
        "NO_COLOR": "1",
        "PATH": f"{EXAMPLE / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "NETSIM_SLEEP": "0.02",
        **env,
    }
    result = subprocess.run(
        [sys.executable, str(folder / script)],
        cwd=cwd or folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
    )
    if code is not None:
        assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback (most recent call last)" not in result.stderr, result.stderr
    return result


def write(folder: Path, body: str, name: str = "run.py") -> Path:
    """A taskrun script: the import line of a migrated script, then `body`."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("import os, sys\nfrom pytaskmake import taskrun\n" + textwrap.dedent(body))
    return path


def runs(folder: Path, log: str = "runs.log") -> list[str]:
    """The lines the tasks appended to runs.log since the last call; then empties it."""
    path = folder / log
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    path.unlink()
    return lines


# --- the post's script ------------------------------------------------------------------


def test_the_posts_script_runs_then_resumes_only_the_failed_simulation(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    text = (tmp_path / "sweep.py").read_text()
    assert "from pytaskmake import taskrun\n" in text and text.count("pytaskmake") == 1
    runs_log = str(tmp_path / "runs.log")

    first = run(tmp_path, "sweep.py", code=1, NETSIM_FAIL="mesh-2048", RUNS_LOG=runs_log)
    assert "mesh-2048 sim" in first.stdout and "FAILED" in first.stdout
    done = runs(tmp_path)
    assert len([r for r in done if r.startswith("netsim")]) == 12
    assert len([r for r in done if r.startswith("parsesim")]) == 11  # not the failed run's
    assert sorted(r for r in done if r.startswith("graphsim")) == [
        "graphsim sims/fat_tree",
        "graphsim sims/torus",
    ]
    for topology in TOPOLOGIES:
        for buffer in BUFFERS:
            run_dir = tmp_path / "sims" / topology / buffer
            assert "netsim: simulating 1000 endpoints" in (run_dir / "sim.out").read_text()
            if (topology, buffer) == ("mesh", "2048"):
                assert "segmentation fault" in (run_dir / "sim.out").read_text()
                assert not (run_dir / "latency.csv").exists()
                continue
            assert (run_dir / "sim.dat").read_text().startswith("# netsim")
            assert (run_dir / "latency.csv").read_text().startswith("topology,buffer")
            assert "latencies ->" in (run_dir / "latency.out").read_text()
    assert (tmp_path / "sims/fat_tree/graph.png").read_bytes().startswith(b"\x89PNG")
    assert "4 runs" in (tmp_path / "sims/torus/graph.out").read_text()
    assert not (tmp_path / "sims/mesh/graph.png").exists()

    # the problem fixed (the simulator no longer crashes), the same script again
    second = run(tmp_path, "sweep.py", RUNS_LOG=runs_log)
    assert runs(tmp_path) == [
        "netsim mesh-2048",
        "parsesim sims/mesh/2048/sim.dat",
        "graphsim sims/mesh",
    ]
    assert (tmp_path / "sims/mesh/graph.png").read_bytes().startswith(b"\x89PNG")
    assert "4 runs" in (tmp_path / "sims/mesh/graph.out").read_text()
    assert "skipped 40 tasks done before" in second.stdout
    assert "fat_tree-1024 sim" in second.stdout and "make root" in second.stdout

    third = run(tmp_path, "sweep.py", RUNS_LOG=runs_log)
    assert runs(tmp_path) == []
    assert "skipped 43 tasks done before" in third.stdout


def test_the_native_taskfile_of_the_example_builds_the_same_files(tmp_path: Path) -> None:
    """README's migration: examples/taskrun/native/Taskfile.py, with the CLI."""
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    env = {**os.environ, "NO_COLOR": "1", "NETSIM_SLEEP": "0.02"}
    env["PATH"] = f"{EXAMPLE / 'bin'}{os.pathsep}{env['PATH']}"

    def build() -> str:
        command = [sys.executable, "-m", "pytaskmake", "-j", "4"]
        done = subprocess.run(command, cwd=tmp_path / "native", env=env, capture_output=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.decode()

    build()
    sims = tmp_path / "native/sims"
    for topology in TOPOLOGIES:
        assert (sims / topology / "graph.png").read_bytes().startswith(b"\x89PNG")
        for buffer in BUFFERS:
            assert (sims / topology / buffer / "latency.csv").read_text().startswith("topology")
    (sims / "mesh/2048/latency.csv").unlink()  # a lost result comes back from the run cache,
    assert "ran 0, restored 1, up to date 26" in build()  # the same bytes: nothing reruns
    assert (sims / "mesh/2048/latency.csv").read_text().startswith("topology")


# --- resume -------------------------------------------------------------------------------

CHAIN = """
    manager = taskrun.Task.Manager(numProcs=2, showCommands=True, runTasks=True, showProgress=True)
    a = manager.task_new('a', 'echo a >> runs.log')
    b = manager.task_new('b', 'echo {b} >> runs.log')
    b.dependency_is(a)
    c = manager.task_new('c', 'echo c >> runs.log')
    c.dependency_is(b)
    d = manager.task_new('d', 'echo d >> runs.log')
    manager.run_request_is()
"""


def test_a_changed_command_reruns_that_task_and_its_downstream_only(tmp_path: Path) -> None:
    write(tmp_path, CHAIN.format(b="b"))
    run(tmp_path)
    assert sorted(runs(tmp_path)) == ["a", "b", "c", "d"]
    second = run(tmp_path)
    assert runs(tmp_path) == [] and "skipped 4 tasks done before" in second.stdout
    write(tmp_path, CHAIN.format(b="b2"))
    third = run(tmp_path)
    assert runs(tmp_path) == ["b2", "c"]
    assert "c: dependency 'b' reran" in third.stdout  # said with showCommands
    assert "skipped 2 tasks done before" in third.stdout


def test_tasks_running_when_the_script_is_killed_run_again(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        manager = taskrun.Task.Manager(numProcs=2)
        a = manager.task_new('a', 'echo a >> runs.log')
        slow = manager.task_new(
            'slow', 'touch started; [ -n "$FAST" ] || sleep 60; echo slow >> runs.log'
        )
        slow.dependency_is(a)
        after = manager.task_new('after', 'echo after >> runs.log')
        after.dependency_is(slow)
        manager.run_request_is()
        """,
    )
    env = {**os.environ, "NO_COLOR": "1"}
    script = subprocess.Popen(
        [sys.executable, "run.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (tmp_path / "started").exists()
    finally:
        os.kill(script.pid, signal.SIGKILL)  # the script dies; its task is left running
        script.wait()
    assert runs(tmp_path) == ["a"]
    result = run(tmp_path, FAST="1")
    assert runs(tmp_path) == ["slow", "after"]  # 'a' succeeded before: skipped
    assert "left running by a killed build" in result.stdout


# --- failure modes --------------------------------------------------------------------------

FAILING = """
    rm = taskrun.ResourceManager(taskrun.CounterResource('slots', 1, 2))
    tm = taskrun.TaskManager(resource_manager=rm, observers=[taskrun.VerboseObserver()]{mode})
    taskrun.ProcessTask(tm, 'a', 'sleep 0.1; touch a.failed; exit 1')
    wait = 'while [ ! -e a.failed ]; do sleep 0.02; done'
    taskrun.ProcessTask(tm, 'b', wait + '; sleep {b}; touch b.done')
    taskrun.ProcessTask(tm, 'c', 'touch c.done')
    sys.exit(0 if tm.run_tasks() else 1)
"""


@pytest.mark.parametrize(
    ("mode", "b_sleep", "b_done", "c_done"),
    [
        ("", 0.3, True, True),  # the default: active_continue
        (", failure_mode=taskrun.FailureMode.ACTIVE_CONTINUE", 0.3, True, True),
        (", failure_mode='passive_fail'", 0.3, True, False),
        (", failure_mode=taskrun.FailureMode.AGGRESSIVE_FAIL", 30, False, False),
    ],
)
def test_failure_modes(
    tmp_path: Path, mode: str, b_sleep: float, b_done: bool, c_done: bool
) -> None:
    write(tmp_path, FAILING.format(mode=mode, b=b_sleep))
    result = run(tmp_path, code=1)
    assert (tmp_path / "b.done").exists() == b_done
    assert (tmp_path / "c.done").exists() == c_done
    assert "FAILED a" in result.stdout
    if not b_done:
        assert "killed: a failed (aggressive_fail)" in result.stdout


def test_blind_continue_runs_as_active_continue_and_says_so(tmp_path: Path) -> None:
    write(tmp_path, FAILING.format(mode=", failure_mode='blind_continue'", b=0))
    result = run(tmp_path, code=1)
    assert (tmp_path / "c.done").exists()
    assert "blind_continue" in result.stdout


# --- the taskrun 4 API ----------------------------------------------------------------------

API = """
    calls = []

    class Recorder(taskrun.Observer):
        def task_started(self, task):
            calls.append('started ' + task.name)

        def task_completed(self, task):
            calls.append('completed ' + task.name)

        def task_bypassed(self, task):
            calls.append('bypassed ' + task.name)

        def task_failed(self, task, errors):
            calls.append(f'failed {task.name} {errors}')


    def write_file(path, text):
        with open(path, 'w') as f:
            f.write(text)


    tm = taskrun.basic_task_manager(parallelism=2, verbosity=2)
    tm.add_observer(Recorder())
    mk = taskrun.FunctionTask(tm, 'make out', os.mkdir, 'out')
    hello = taskrun.ProcessTask(tm, 'hello', 'echo hello; echo oops >&2')
    hello.stdout_file = 'out/hello.out'
    hello.stderr_file = 'out/hello.err'
    hello.add_dependency(mk)
    f = taskrun.FunctionTask(tm, 'write', write_file, 'out/f.txt', text='hi')
    f.add_dependency(hello)
    done = taskrun.NopTask(tm, 'all')
    done.add_dependency(f)
    ok = tm.run_tasks()
    print('RESULT', ok, hello.returncode, sorted(calls))
"""


def test_the_taskrun_4_api_runs_and_resumes(tmp_path: Path) -> None:
    write(tmp_path, API)
    first = run(tmp_path)
    assert (tmp_path / "out/hello.out").read_text() == "hello\n"
    assert (tmp_path / "out/hello.err").read_text() == "oops\n"
    assert (tmp_path / "out/f.txt").read_text() == "hi"
    names = ("all", "hello", "make out", "write")
    expected = sorted([f"started {n}" for n in names] + [f"completed {n}" for n in names])
    assert f"RESULT True 0 {expected}" in first.stdout
    assert "$ echo hello; echo oops >&2" in first.stdout  # verbosity=2 shows the commands

    second = run(tmp_path)
    assert f"RESULT True None {sorted(f'bypassed {n}' for n in names)}" in second.stdout
    # state forgotten, `out` still there: the mkdir task is a directory task, not os.mkdir
    shutil.rmtree(tmp_path / ".pytaskmake")
    assert "RESULT True 0" in run(tmp_path).stdout


def test_the_posts_mkdir_tasks_make_folders_that_may_exist(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        manager = taskrun.Task.Manager(showCommands=True)
        top = manager.task_new('top', 'mkdir sims')
        sub = manager.task_new('sub', 'mkdir sims/a "sims/b c"')
        sub.dependency_is(top)
        manager.run_request_is()
        """,
    )
    first = run(tmp_path)
    assert (tmp_path / "sims/a").is_dir() and (tmp_path / "sims/b c").is_dir()
    assert "$ mkdir -p sims/a 'sims/b c'" in first.stdout
    shutil.rmtree(tmp_path / ".pytaskmake")  # the state forgotten, the folders still there
    run(tmp_path)


def test_a_function_task_returning_non_zero_fails(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        def check(value):
            return value

        tm = taskrun.TaskManager()
        taskrun.FunctionTask(tm, 'good', check, 0)
        taskrun.FunctionTask(tm, 'bad', check, 3)
        print('RESULT', tm.run_tasks())
        """,
    )
    assert "RESULT False" in run(tmp_path).stdout
    write(
        tmp_path,
        "tm = taskrun.TaskManager()\ntaskrun.FunctionTask(tm, 'good', int)\n"
        "print('RESULT', tm.run_tasks())\n",
    )
    assert "RESULT True" in run(tmp_path).stdout


def test_file_conditions_become_outputs_checked_by_content(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        tm = taskrun.TaskManager()
        make = taskrun.ProcessTask(tm, 'make', 'echo make >> runs.log; echo data > data.txt')
        make.add_condition(taskrun.FileModificationCondition([], ['data.txt']))
        use = taskrun.ProcessTask(tm, 'use', 'echo use >> runs.log; cp data.txt copy.txt')
        use.add_condition(taskrun.FileModificationCondition(['data.txt'], ['copy.txt']))
        use.add_dependency(make)
        sys.exit(0 if tm.run_tasks() else 1)
        """,
    )
    run(tmp_path)
    assert runs(tmp_path) == ["make", "use"]
    (tmp_path / "copy.txt").unlink()
    run(tmp_path)
    assert runs(tmp_path) == ["use"]
    (tmp_path / "data.txt").write_text("edited\n")  # an output edited outside the build
    run(tmp_path)
    assert runs(tmp_path) == ["make", "use"]


# --- the post's manager options ---------------------------------------------------------------


def test_run_tasks_false_is_a_dry_run(tmp_path: Path) -> None:
    body = CHAIN.format(b="b").replace("runTasks=True", "runTasks={runs}")
    write(tmp_path, body.format(runs=False))
    dry = run(tmp_path)
    assert runs(tmp_path) == [] and not (tmp_path / ".pytaskmake").exists()
    assert "would run b: never run" in dry.stdout
    assert "$ echo b >> runs.log" in dry.stdout  # showCommands
    assert "4 of 4 tasks would run" in dry.stdout
    write(tmp_path, body.format(runs=True))
    run(tmp_path)
    assert len(runs(tmp_path)) == 4
    write(tmp_path, body.format(runs=False).replace("echo c", "echo c2"))
    dry = run(tmp_path)
    assert "would run c: command changed" in dry.stdout and "1 of 4 tasks would run" in dry.stdout
    assert runs(tmp_path) == []


def test_num_procs_throttles(tmp_path: Path) -> None:
    tasks = "\n".join(
        f"manager.task_new('t{i}', 'mkdir busy || echo overlap >> overlaps; sleep 0.1; rmdir busy')"
        for i in range(4)
    )
    write(
        tmp_path, f"manager = taskrun.Task.Manager(numProcs=1)\n{tasks}\nmanager.run_request_is()\n"
    )
    run(tmp_path)
    assert not (tmp_path / "overlaps").exists()


def test_resources_limit_how_many_tasks_run_at_once(tmp_path: Path) -> None:
    (tmp_path / "running").mkdir()
    body = """
        rm = taskrun.ResourceManager(taskrun.CounterResource('cpus', 1, 4))
        tm = taskrun.TaskManager(resource_manager=rm)
        for i in range(4):
            t = taskrun.ProcessTask(tm, f't{i}', f'touch running/{i}; sleep 0.2; '
                                    f'ls running | wc -l >> counts; rm running/{i}')
            t.resources = {'cpus': 2}  # 4 cpus: two such tasks at once
        sys.exit(0 if tm.run_tasks() else 1)
    """
    write(tmp_path, body)
    run(tmp_path)
    counts = [int(c) for c in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 4 and max(counts) <= 2
    write(tmp_path, body.replace("{'cpus': 2}", "{'cpus': 5}"))
    result = run(tmp_path, code=2)
    assert "run.py:7: task 't0' uses 5 units of resource 'cpus' but there is only 4" in (
        result.stderr
    )


def test_state_lives_beside_the_script_wherever_it_is_run_from(tmp_path: Path) -> None:
    write(tmp_path, CHAIN.format(b="b"), name="study/run.py")
    result = run(tmp_path / "study", cwd=tmp_path)
    assert (tmp_path / "study/.pytaskmake").is_dir() and not (tmp_path / ".pytaskmake").exists()
    assert sorted(runs(tmp_path / "study")) == ["a", "b", "c", "d"]
    assert "the script's folder" in result.stdout


# --- mistakes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "m.task_new('sim', 'true')\nm.task_new('sim', 'false')",
            "run.py:5: task 'sim' is declared twice (first at run.py:4)",
        ),
        (
            "a = m.task_new('a', 'true')\nb = m.task_new('b', 'true')\n"
            "b.dependency_is(a)\na.dependency_is(b)",
            "run.py:7: task 'a': depending on 'b' makes a cycle",
        ),
        ("a = m.task_new('a', 'true')\na.dependency_is('b')", "run.py:5: task 'a': a dependency"),
        ("taskrun.ProcessTask(m, 'a')", "run.py:4: ProcessTask 'a' has no command"),
        (
            "a = m.task_new('a', 'true')\na.add_condition(taskrun.Condition())",
            "run.py:4: task 'a': Condition has no pytaskmake equivalent",
        ),
    ],
)
def test_mistakes_are_one_line_errors_naming_the_line(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "run.py"
    path.write_text(f"from pytaskmake import taskrun\nm = taskrun.Task.Manager()\n\n{body}\n")
    path.write_text(path.read_text() + "m.run_request_is()\nprint('not reached')\n")
    result = run(tmp_path, code=2)
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"pytaskmake: error: {message}"), result.stderr


def test_a_taskrun_feature_without_equivalent_is_a_one_line_error(tmp_path: Path) -> None:
    write(tmp_path, "tm = taskrun.TaskManager()\ntaskrun.ClusterTask(tm, 'x', 'true', 'slurm')\n")
    result = run(tmp_path, code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "pytaskmake: error: run.py:4: taskrun.ClusterTask"
    )
