"""Interrupts, timeouts, retries, kill -9, the build lock and bad input.

Every test drives the real CLI in a subprocess and signals it the way a user (Ctrl-C,
SIGINT) or the machine (SIGKILL) would. A task is signalled only once it has written
a marker file, and every wait has a deadline, so a hang fails the test instead of
blocking it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Project, recorded, runs

from pytaskmake.cli import parser

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

NO_CACHE = ["--no-cache"] if "--no-cache" in parser().format_help() else []


# ---------------------------------------------------------------- helpers


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, ...]."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rpartition(")")[2].split()


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by init) counts as dead."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                found.append(int(entry))
    return found


def read_pid(path: Path) -> int:
    wait_for(lambda: path.exists() and path.read_text().strip().isdigit(), 10, f"{path.name}")
    return int(path.read_text())


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def state_rows(root: Path) -> dict[str, int]:
    """name -> ok of every task recorded in the state DB."""
    return recorded(root, "ok")


class Running:
    """A pytaskmake started in the background, its stdout and stderr going to files."""

    def __init__(self, project: Project, *args: str) -> None:
        self.out_path = project.root / "_pytaskmake.out"
        self.err_path = project.root / "_pytaskmake.err"
        env = {**os.environ, "NO_COLOR": "1"}
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytaskmake", *args],
                cwd=project.root,
                stdout=out,
                stderr=err,
                env=env,
            )
        self.pid = self.proc.pid

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"pytaskmake did not exit within {timeout}s") from None


@contextmanager
def background(project: Project, *args: str) -> Iterator[Running]:
    """Run pytaskmake in the background; never leave it (or its tasks) behind."""
    running = Running(project, *args)
    try:
        yield running
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(5)
        for pid_file in project.root.rglob("*.pid"):
            text = pid_file.read_text().strip()
            if text.isdigit():
                kill_group(int(text))  # each task is its own group, led by its shell


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


# ---------------------------------------------------------------- Ctrl-C


def test_first_sigint_lets_running_task_finish_and_records_it(project: Project) -> None:
    project.taskfile(
        """
        task("slow", "echo slow >> runs.log; touch slow.started; sleep 1; echo slow > slow.txt",
             outputs=["slow.txt"])
        task("later", "echo later >> runs.log; echo later > later.txt", outputs=["later.txt"])
        """
    )
    with background(project, "-j1", *NO_CACHE) as run:
        wait_for(lambda: project.exists("slow.started"), 10, "the slow task to start")
        run.signal(signal.SIGINT)
        code = run.wait(10)
        output = run.output()
    assert code == 130, output
    assert "Ctrl-C again" in output
    assert "Traceback" not in output
    assert project.read("slow.txt") == "slow\n"  # the running task was let finish...
    assert state_rows(project.root) == {"slow": 1}  # ...and recorded; nothing new started
    assert not project.exists("later.txt")
    assert runs(project) == ["slow"]

    again = project.run("-j1", *NO_CACHE)
    assert again.returncode == 0, again.stdout + again.stderr
    assert runs(project) == ["later"]  # the finished task is not redone


def test_first_sigint_stops_a_run_of_restores(project: Project) -> None:
    """Going back to earlier inputs restores every task without running one: a Ctrl-C
    then went unheard until the last restore (the loop restores all it can before
    it waits). It stops them now; what was restored is recorded, and the next build
    restores the rest."""
    project.taskfile(
        """
        for i in range(1500):
            task(f"t{i}", f"cat cfg.txt > out/{i}.txt", inputs=["cfg.txt"],
                 outputs=[f"out/{i}.txt"])
        """
    )
    for text in ("a\n", "b\n"):
        project.write("cfg.txt", text)
        assert project.run("-j2").returncode == 0
    project.write("cfg.txt", "a\n")
    with background(project, "-j2") as run:
        wait_for(lambda: "restored t" in run.output(), 30, "the first restore")
        run.signal(signal.SIGINT)
        code = run.wait(30)
        output = run.output()
    assert code == 130, output
    assert "Traceback" not in output
    restored = output.count("restored t")
    assert 0 < restored < 1500, output[-500:]
    again = project.run("-j2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"restored {1500 - restored}," in again.stdout, again.stdout[-500:]
    assert project.read("out/1499.txt") == "a\n"


def test_second_sigint_kills_every_running_process_group(project: Project) -> None:
    hang = (
        "echo {n} >> runs.log; echo partial > res/{n}.txt; "
        "if [ ! -f quick ]; then echo $$ > {n}.pid; sleep 30 & echo $! > {n}.bg; "
        "sleep 30; wait; fi; echo full > res/{n}.txt"
    )
    project.taskfile(
        f"""
        task("one", {hang.format(n="one")!r}, outputs=["res/one.txt"])
        task("two", {hang.format(n="two")!r}, outputs=["res/two.txt"])
        task("after", "cat res/one.txt res/two.txt > after.txt",
             inputs=["res/one.txt", "res/two.txt"], outputs=["after.txt"])
        """
    )
    root = project.root
    with background(project, "-j2", *NO_CACHE) as run:
        shells = [read_pid(root / "one.pid"), read_pid(root / "two.pid")]
        grandchildren = [read_pid(root / "one.bg"), read_pid(root / "two.bg")]
        assert all(group_members(pgid) for pgid in shells)
        run.signal(signal.SIGINT)
        wait_for(lambda: "Ctrl-C again" in run.output(), 10, "the first-interrupt notice")
        assert all(alive(pid) for pid in shells + grandchildren)  # first Ctrl-C kills nothing
        start = time.monotonic()
        run.signal(signal.SIGINT)
        code = run.wait(10)
        output = run.output()
        # SIGTERM reaches whole groups at once: no waiting out the 5 s SIGKILL grace
        wait_for(lambda: not any(map(alive, shells + grandchildren)), 3, "the tasks to die")
        wait_for(lambda: not any(map(group_members, shells)), 3, "the process groups to empty")
        assert time.monotonic() - start < 4
    assert code == 130, output
    assert "Traceback" not in output
    assert state_rows(root) == {"one": 0, "two": 0}  # recorded as failed, never as done
    for name in ("one", "two"):
        assert not project.exists(f"res/{name}.txt")
        assert project.read(f".pytaskmake/failed/res/{name}.txt") == "partial\n"
    assert not project.exists("after.txt")

    runs(project)
    project.write("quick", "")
    again = project.run("-j2", *NO_CACHE)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(runs(project)) == ["one", "two"]  # the killed tasks are redone
    assert project.read("after.txt") == "full\nfull\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_tasks_and_record_what_finished(
    project: Project, sig: signal.Signals
) -> None:
    """A batch system's time limit (SIGTERM) or a closed ssh session (SIGHUP): every
    task's process group is stopped, what finished is recorded, exit 128 + signal."""
    project.taskfile(
        """
        task("quick", "echo quick > quick.txt", outputs=["quick.txt"])
        task("hang", "echo $$ > hang.pid; sleep 30 & echo $! > hang.bg; sleep 30; wait; "
             "echo done > hang.txt", inputs=["quick.txt"], outputs=["hang.txt"])
        """
    )
    root = project.root
    with background(project, "-j2", *NO_CACHE) as run:
        shell, grandchild = read_pid(root / "hang.pid"), read_pid(root / "hang.bg")
        start = time.monotonic()
        run.signal(sig)
        code = run.wait(10)
        output = run.output()
        wait_for(lambda: not alive(shell) and not alive(grandchild), 3, "the task to die")
        wait_for(lambda: not group_members(shell), 3, "its process group to empty")
        assert time.monotonic() - start < 4
    assert code == 128 + sig, output
    assert f"received {sig.name}" in output
    assert "Traceback" not in output
    assert state_rows(root) == {"quick": 1, "hang": 0}  # the finished task is recorded
    assert not project.exists("hang.txt")


STUBBORN = "trap '' TERM; echo $$ > stubborn.pid; sleep 30 & sleep 30; wait"  # ignores SIGTERM


def test_third_sigint_does_not_postpone_the_kill(project: Project) -> None:
    project.taskfile(f"task('stubborn', {STUBBORN!r})\n")
    with background(project, *NO_CACHE) as run:
        pgid = read_pid(project.root / "stubborn.pid")
        run.signal(signal.SIGINT)
        wait_for(lambda: "Ctrl-C again" in run.output(), 10, "the first-interrupt notice")
        run.signal(signal.SIGINT)
        second = time.monotonic()
        time.sleep(3)
        assert group_members(pgid)  # SIGTERM is ignored: waiting out the 5 s grace
        run.signal(signal.SIGINT)  # impatient user
        wait_for(lambda: not group_members(pgid), 9 - (time.monotonic() - second), "SIGKILL")
        assert time.monotonic() - second < 6.5
        assert run.wait(10) == 130


# ---------------------------------------------------------------- timeouts and retries


def test_timeout_kills_the_task_process_group(project: Project) -> None:
    project.taskfile(
        """
        task("stuck", "echo $$ > stuck.pid; sleep 30 & echo $! > stuck.bg; sleep 30; wait",
             timeout=0.5)
        """
    )
    start = time.monotonic()
    result = project.run(*NO_CACHE, timeout=20)
    elapsed = time.monotonic() - start
    pgid = int(project.read("stuck.pid"))
    background_pid = int(project.read("stuck.bg"))
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "timed out after 0.5s" in result.stdout
        assert_no_traceback(result)
        assert elapsed < 5  # SIGTERM to the group, no waiting out the SIGKILL grace
        wait_for(lambda: not alive(background_pid), 3, "the background grandchild to die")
        wait_for(lambda: not group_members(pgid), 3, "the process group to empty")
        assert state_rows(project.root) == {"stuck": 0}
    finally:
        kill_group(pgid)


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(project: Project) -> None:
    project.taskfile(f"task('stubborn', {STUBBORN!r}, timeout=0.3)\n")
    start = time.monotonic()
    result = project.run(*NO_CACHE, timeout=30)
    pgid = int(project.read("stubborn.pid"))
    try:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "timed out after 0.3s" in result.stdout
        assert time.monotonic() - start < 12  # timeout + 5 s grace + startup
        wait_for(lambda: not group_members(pgid), 3, "the process group to die")
    finally:
        kill_group(pgid)


COUNTED = (
    "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; "
    "[ $n -ge 3 ] && echo ok > out.txt"
)


@pytest.mark.parametrize(("retries", "code", "attempts"), [(2, 0, 3), (1, 1, 2), (0, 1, 1)])
def test_retries(project: Project, retries: int, code: int, attempts: int) -> None:
    project.taskfile(f"task('flaky', {COUNTED!r}, outputs=['out.txt'], retries={retries})\n")
    result = project.run(*NO_CACHE)
    assert result.returncode == code, result.stdout + result.stderr
    assert project.read("count") == f"{attempts}\n"
    assert result.stdout.count("retry flaky") == attempts - 1
    if code == 0:
        assert project.read("out.txt") == "ok\n"
        assert state_rows(project.root) == {"flaky": 1}
    else:
        assert "FAILED flaky: exit code 1" in result.stdout
        assert state_rows(project.root) == {"flaky": 0}


def test_retry_starts_without_the_failed_attempts_outputs(project: Project) -> None:
    # A common script idiom: skip the work when the output already exists. The first
    # attempt writes a partial output and crashes; the retry must not find it there.
    project.taskfile(
        """
        task("sim", "if [ -f out.txt ]; then exit 0; fi; "
                    "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; "
                    "echo partial > out.txt; [ $n -ge 2 ] || exit 1; echo full > out.txt",
             outputs=["out.txt"], retries=1)
        """
    )
    result = project.run(*NO_CACHE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("out.txt") == "full\n"


# ---------------------------------------------------------------- kill -9 and the lock


def test_kill9_next_run_redoes_exactly_the_unfinished_tasks(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo a >> runs.log; echo a > a.txt", outputs=["a.txt"])
        task("b", "echo b >> runs.log; echo part > b.txt; "
                  "if [ ! -f quick ]; then echo $$ > b.pid; sleep 30; fi; echo b > b.txt",
             outputs=["b.txt"])
        task("c", "echo c >> runs.log; cat a.txt > c.txt", inputs=["a.txt"], outputs=["c.txt"])
        task("d", "echo d >> runs.log; cat b.txt > d.txt", inputs=["b.txt"], outputs=["d.txt"])
        """
    )
    with background(project, "-j1", *NO_CACHE) as run:
        pgid = read_pid(project.root / "b.pid")
        run.signal(signal.SIGKILL)
        assert run.wait(10) == -signal.SIGKILL
        kill_group(pgid)  # the orphaned task
        wait_for(lambda: not group_members(pgid), 5, "the orphaned task to die")
    assert state_rows(project.root) == {"a": 1}
    assert project.read(".pytaskmake/lock").strip() == str(run.pid)  # left by the dead run
    assert runs(project) == ["a", "b"]

    project.write("quick", "")
    again = project.run("-j1", *NO_CACHE, timeout=30)
    assert again.returncode == 0, again.stdout + again.stderr  # the stale lock is taken over
    assert "another pytaskmake" not in again.stderr
    assert sorted(runs(project)) == ["b", "c", "d"]
    assert project.read("b.txt") == "b\n"
    assert project.read("d.txt") == "b\n"


def test_second_build_in_same_directory_exits_2_naming_the_first(project: Project) -> None:
    project.taskfile(
        """
        task("long", "echo $$ > long.pid; sleep 30", outputs=[])
        task("quick", "echo hi > quick.txt", outputs=["quick.txt"])
        """
    )
    with background(project, "-j1", "long") as first:
        read_pid(project.root / "long.pid")
        start = time.monotonic()
        second = project.run("quick", timeout=30)
        elapsed = time.monotonic() - start
        first.signal(signal.SIGINT)
        wait_for(lambda: "Ctrl-C again" in first.output(), 10, "the first-interrupt notice")
        first.signal(signal.SIGINT)
        assert first.wait(10) == 130
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert_no_traceback(second)
    assert elapsed < 5  # at once: it does not wait for the lock
    assert not project.exists("quick.txt")


def test_lock_of_killed_run_is_free_even_while_its_callable_task_lingers(
    project: Project,
) -> None:
    # A forked Python task must not inherit (and so keep holding) the build lock.
    project.taskfile(
        """
        import os, time
        def slow():
            with open("slow.pid", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(30)
        task("slow", slow)
        task("other", "echo hi > other.txt", outputs=["other.txt"])
        """
    )
    with background(project, "-j1", "slow") as run:
        pid = read_pid(project.root / "slow.pid")
        run.signal(signal.SIGKILL)
        run.wait(10)
        assert alive(pid)
        result = project.run("other", timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("other.txt") == "hi\n"


SLOW_SHELL = """
task("slow", "echo slow >> runs.log; echo $$ > slow.pid; "
             "if [ ! -f quick ]; then sleep 30 & sleep 30; fi; echo done > slow.txt",
     outputs=["slow.txt"])
"""
SLOW_PYTHON = """
import os, time
def slow():
    with open("runs.log", "a") as f:
        f.write("slow\\n")
    with open("slow.pid", "w") as f:
        f.write(str(os.getpid()))
    if not os.path.exists("quick"):
        time.sleep(30)
    with open("slow.txt", "w") as f:
        f.write("done\\n")
task("slow", slow, outputs=["slow.txt"])
"""


@pytest.mark.parametrize(
    "taskfile",
    [
        pytest.param(SLOW_SHELL, id="shell"),
        pytest.param(SLOW_PYTHON, id="callable"),
    ],
)
def test_next_build_stops_tasks_orphaned_by_kill9(project: Project, taskfile: str) -> None:
    project.taskfile(taskfile)
    with background(project, "-j1", *NO_CACHE) as run:
        pgid = read_pid(project.root / "slow.pid")
        run.signal(signal.SIGKILL)
        run.wait(10)
        assert group_members(pgid)  # orphaned, still running
        assert runs(project) == ["slow"]
        project.write("quick", "")
        again = project.run("-j1", *NO_CACHE, timeout=60)
        still_running = group_members(pgid)  # before the cleanup in background() kills it
    assert not still_running, "the orphaned task outlived the next build"
    assert again.returncode == 0, again.stdout + again.stderr
    assert runs(project) == ["slow"]  # the unfinished task is redone
    assert project.read("slow.txt") == "done\n"


# ---------------------------------------------------------------- bad input


def test_taskfile_syntax_error_names_file_and_line(project: Project) -> None:
    project.write(
        "Taskfile.py",
        "from pytaskmake import task\ntask('a', 'true')\ntask('b', 'true'\nx = 1\n",
    )
    result = project.run()
    assert result.returncode == 2
    assert "Taskfile.py:3" in result.stderr or "Taskfile.py:4" in result.stderr, result.stderr
    assert "syntax error" in result.stderr
    assert_no_traceback(result)


def test_taskfile_exception_names_file_and_line(project: Project) -> None:
    project.write("Taskfile.py", "from pytaskmake import task\n\ntask('a', undefined_name)\n")
    result = project.run()
    assert result.returncode == 2
    assert "Taskfile.py:3" in result.stderr and "NameError" in result.stderr, result.stderr
    assert_no_traceback(result)


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(["no-such-program-ptm"], id="argv"),
        pytest.param("no-such-program-ptm --flag", id="shell"),
    ],
)
def test_command_not_found_is_a_task_failure(project: Project, action: object) -> None:
    project.taskfile(
        f"""
        task('a', {action!r}, outputs=['a.txt'])
        task('b', 'cat a.txt > b.txt', inputs=['a.txt'], outputs=['b.txt'])
        """
    )
    result = project.run()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED a: command not found" in result.stdout
    assert "no-such-program-ptm" in result.stdout
    assert_no_traceback(result)
    assert state_rows(project.root) == {"a": 0}


def test_command_not_found_beside_a_running_task(project: Project) -> None:
    project.taskfile(
        """
        task('slow', 'sleep 0.3')
        task('a', ['no-such-program-ptm'], outputs=['a.txt'])
        """
    )
    result = project.run("-j2", "-k")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED a: command not found: no-such-program-ptm" in result.stdout
    assert_no_traceback(result)


def test_declared_output_not_produced(project: Project) -> None:
    project.taskfile("task('a', 'echo made > other.txt', outputs=['a.txt'])\n")
    result = project.run()
    assert result.returncode == 1
    assert "did not produce declared output a.txt" in result.stdout
    assert_no_traceback(result)
    assert state_rows(project.root) == {"a": 0}


NOT_UTF8 = """
task("good", "printf 'caf\\\\351 \\\\377\\\\376 ok\\\\n'")
task("bad", "printf 'oops \\\\377\\\\376\\\\200\\\\n'; exit 3")
"""


def test_non_utf8_task_output_does_not_crash_the_reporter(project: Project) -> None:
    project.taskfile(NOT_UTF8)
    result = project.run("-k")
    assert result.returncode == 1, result.stdout + result.stderr
    assert_no_traceback(result)
    assert "FAILED bad: exit code 3" in result.stdout
    assert "oops \ufffd" in result.stdout
    assert "caf\ufffd" in result.stdout


def test_non_utf8_task_output_with_a_latin1_terminal(project: Project) -> None:
    project.taskfile(NOT_UTF8)
    env = {**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": "latin-1"}  # LANG=*.ISO-8859-1
    result = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "-k"],
        cwd=project.root,
        capture_output=True,
        timeout=60,
        env=env,
    )
    output = (result.stdout + result.stderr).decode("latin-1")
    assert "Traceback" not in output, output
    assert result.returncode == 1
    assert "FAILED bad: exit code 3" in output


def _built_twice(project: Project, big: bool = False) -> int:
    """Build 40 small tasks (and one with 300 inputs: a record on overflow pages)."""
    extra = ""
    if big:
        for i in range(300):
            project.write(f"src/a_rather_long_source_file_name_{i:04d}.txt", f"{i}\n")
        extra = """
        import glob
        task("big", "echo big >> runs.log; cat src/* > big.txt",
             inputs=sorted(glob.glob("src/*.txt")), outputs=["big.txt"])
        """
    project.taskfile(
        extra
        + """
        for i in range(40):
            task(f"t{i:02d}", f"echo t{i:02d} >> runs.log; echo {i} > out/t{i:02d}.txt",
                 outputs=[f"out/t{i:02d}.txt"])
        """
    )
    total = 41 if big else 40
    first = project.run(*NO_CACHE)
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(runs(project)) == total
    assert project.run(*NO_CACHE).returncode == 0
    assert runs(project) == []
    return total


def _assert_rebuilt_from_nothing(project: Project, total: int) -> None:
    result = project.run(*NO_CACHE)
    assert_no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "state.db" in result.stdout + result.stderr  # the warning names the file
    assert len(runs(project)) == total  # everything treated as never run
    assert list((project.root / ".pytaskmake").glob("state.db.damaged*"))
    assert len(state_rows(project.root)) == total
    assert project.run(*NO_CACHE).returncode == 0
    assert runs(project) == []


def test_garbage_state_db_is_set_aside(project: Project) -> None:
    total = _built_twice(project)
    (project.root / ".pytaskmake" / "state.db").write_bytes(b"\x00garbage\xff" * 500)
    _assert_rebuilt_from_nothing(project, total)


def test_truncated_state_db_is_set_aside(project: Project) -> None:
    total = _built_twice(project)
    path = project.root / ".pytaskmake" / "state.db"
    path.write_bytes(path.read_bytes()[:100])
    _assert_rebuilt_from_nothing(project, total)


def test_state_db_with_garbage_in_its_middle_is_set_aside(project: Project) -> None:
    total = _built_twice(project, big=True)
    path = project.root / ".pytaskmake" / "state.db"
    db = sqlite3.connect(path)
    try:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        overflow = [
            n
            for (n,) in db.execute(
                "SELECT pageno FROM dbstat WHERE pagetype='overflow' AND name='tasks'"
            )
        ]
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table")
    finally:
        db.close()
    assert overflow  # the big record spills onto overflow pages: damage only those
    data = bytearray(path.read_bytes())
    for number in overflow:
        data[(number - 1) * page : number * page] = b"\xde\xad\xbe\xef" * (page // 4)
    path.write_bytes(bytes(data))
    # The records are not read while the no-op snapshot (an intact page) vouches for
    # every file; as soon as a file of the damaged record's task moves it is, and the
    # damage shows: the state is set aside, that task reruns, and no snapshot is saved
    # (the records of the tasks this build did not read are lost), so the next build
    # treats every other task as never run.
    quiet = project.run(*NO_CACHE)
    assert quiet.returncode == 0 and runs(project) == [], quiet.stdout + quiet.stderr
    (project.root / "big.txt").unlink()
    found = project.run(*NO_CACHE)
    assert_no_traceback(found)
    assert found.returncode == 0 and "state.db" in found.stdout + found.stderr
    assert runs(project) == ["big"]
    assert list((project.root / ".pytaskmake").glob("state.db.damaged*"))
    assert project.run(*NO_CACHE).returncode == 0
    assert len(runs(project)) == total - 1  # the records lost: never run
    assert len(state_rows(project.root)) == total
    assert project.run(*NO_CACHE).returncode == 0
    assert runs(project) == []


def test_state_database_write_error_is_one_line(project: Project) -> None:
    """A database another program holds locked: a clear message and exit 2, no traceback."""
    import sqlite3

    project.taskfile('task("a", "echo a > a.txt", outputs=["a.txt"], cache=False)\n')
    assert project.run().returncode == 0
    (project.root / "a.txt").unlink()
    holder = sqlite3.connect(project.root / ".pytaskmake/state.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = project.run(timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "state database: database is locked" in result.stderr
    assert "Traceback" not in result.stderr
    assert project.run().returncode == 0  # released: the next build records it


# ---------------------------------------------------------------- old outputs are never lost


def test_a_failed_rerun_keeps_the_last_good_output(project: Project) -> None:
    project.write("in.txt", "good\n")
    project.taskfile(
        """
        task("sim", "cat in.txt > out.txt; grep -q good in.txt", inputs=["in.txt"],
             outputs=["out.txt"])
        """
    )
    assert project.run(*NO_CACHE).returncode == 0
    project.write("in.txt", "typo\n")
    result = project.run(*NO_CACHE)
    assert result.returncode == 1, result.stdout + result.stderr
    assert project.read("out.txt") == "good\n"  # the last good output is back in place
    assert project.read(".pytaskmake/failed/out.txt") == "typo\n"  # the attempt, for a look
    assert "partial outputs moved to .pytaskmake/failed/" in result.stdout
    again = project.run("-n", *NO_CACHE)
    assert "would run sim: failed last time" in again.stdout  # and it stays stale


def test_existing_results_without_a_record_are_kept_when_replaced(project: Project) -> None:
    project.write("out.txt", "from a colleague\n")
    project.taskfile('task("sim", "echo mine > out.txt", outputs=["out.txt"])\n')
    result = project.run(*NO_CACHE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("out.txt") == "mine\n"
    assert project.read(".pytaskmake/replaced/out.txt") == "from a colleague\n"
    assert "replaced out.txt, which no record vouched for" in result.stdout


def test_existing_results_are_put_back_when_the_first_run_fails(project: Project) -> None:
    project.write("out.txt", "from a colleague\n")
    project.taskfile('task("sim", "echo half > out.txt; exit 3", outputs=["out.txt"])\n')
    assert project.run(*NO_CACHE).returncode == 1
    assert project.read("out.txt") == "from a colleague\n"


def test_stopping_a_rerun_puts_the_old_output_back(project: Project) -> None:
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        task("sim", "cat in.txt > out.txt; if grep -q 2 in.txt; then echo $$ > sim.pid; "
             "sleep 30; fi", inputs=["in.txt"], outputs=["out.txt"])
        """
    )
    assert project.run(*NO_CACHE).returncode == 0
    project.write("in.txt", "2\n")
    with background(project, *NO_CACHE) as run:
        read_pid(project.root / "sim.pid")
        run.signal(signal.SIGTERM)
        assert run.wait(10) == 128 + signal.SIGTERM
    assert project.read("out.txt") == "1\n"
    assert not [p for p in (project.root / ".pytaskmake/backup").rglob("*") if p.is_file()]


def test_a_rerun_killed_outright_gets_its_old_output_back_next_time(project: Project) -> None:
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        task("sim", "cat in.txt > out.txt; if grep -q 2 in.txt; then echo $$ > sim.pid; "
             "sleep 30; fi", inputs=["in.txt"], outputs=["out.txt"])
        task("other", "echo other > other.txt", outputs=["other.txt"])
        """
    )
    assert project.run(*NO_CACHE).returncode == 0
    project.write("in.txt", "2\n")
    with background(project, *NO_CACHE) as run:
        pgid = read_pid(project.root / "sim.pid")
        run.signal(signal.SIGKILL)
        run.wait(10)
        kill_group(pgid)
    assert project.read("out.txt") == "2\n"  # the killed attempt's partial output
    result = project.run("-n", *NO_CACHE)  # a look changes nothing
    project.write("in.txt", "1\n")  # the user reverts the edit
    result = project.run(*NO_CACHE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "put back out.txt" in result.stdout
    assert project.read("out.txt") == "1\n"
    assert "ran 0" in result.stdout  # the old output is the good one for these inputs


def test_outputs_put_back_are_not_judged_by_stats_taken_before(project: Project) -> None:
    """A plain build stats the snapshot's files while the Taskfile loads (snapshot.py):
    out.txt was then still set aside by the killed build, absent. Once it is put back,
    that stat is stale: the task must be judged by the output as it is now (up to
    date), not rerun for a missing output."""
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        task("sim", "if grep -q 2 in.txt; then echo $$ > sim.pid; sleep 30; fi; "
             "cat in.txt > out.txt", inputs=["in.txt"], outputs=["out.txt"])
        task("other", "echo other > other.txt", outputs=["other.txt"])
        """
    )
    assert project.run().returncode == 0  # (saves the snapshot)
    project.write("in.txt", "2\n")
    with background(project) as run:
        pgid = read_pid(project.root / "sim.pid")
        run.signal(signal.SIGKILL)
        run.wait(10)
        kill_group(pgid)
    assert not project.exists("out.txt")  # set aside, and the killed attempt wrote none
    project.write("in.txt", "1\n")  # the user reverts the edit
    result = project.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "put back out.txt" in result.stdout
    assert project.read("out.txt") == "1\n"
    assert "ran 0, restored 0, up to date 2" in result.stdout, result.stdout  # (not "restored")


def test_a_folder_output_set_aside_by_a_killed_build_comes_back_whole(project: Project) -> None:
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        task("sim", "mkdir -p runs/a && cp in.txt runs/a/x.dat && "
             "if grep -q 2 in.txt; then echo $$ > sim.pid; echo partial > runs/a/new.dat; "
             "sleep 30; fi; cp in.txt runs/a/y.dat", inputs=["in.txt"], outputs=["runs/a/"])
        """
    )
    assert project.run(*NO_CACHE).returncode == 0
    project.write("in.txt", "2\n")
    with background(project, *NO_CACHE) as run:
        pgid = read_pid(project.root / "sim.pid")
        run.signal(signal.SIGKILL)
        run.wait(10)
        kill_group(pgid)
    project.write("in.txt", "1\n")
    result = project.run(*NO_CACHE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "put back runs/a" in result.stdout
    assert sorted(p.name for p in (project.root / "runs" / "a").iterdir()) == ["x.dat", "y.dat"]
    assert project.read("runs/a/x.dat") == "1\n" and "ran 0" in result.stdout


def test_taskfile_error_beside_a_project_traceback_py_names_its_line(project: Project) -> None:
    """The Taskfile's folder is first on sys.path while it runs: the error's line must
    be found without importing a module the project may shadow."""
    project.write("traceback.py", "# the project's own module of that name\n")
    project.write("Taskfile.py", "from pytaskmake import task\n\nraise ValueError('oops')\n")
    result = project.run()
    assert result.returncode == 2
    assert "Taskfile.py:3" in result.stderr and "oops" in result.stderr, result.stderr
    assert_no_traceback(result)


def test_a_shell_command_too_long_for_one_argument_says_what_to_do(project: Project) -> None:
    """{inputs} of a fan-in in a shell string: Linux refuses one argument over 128 KiB
    (E2BIG); the failure says how long it is and what works instead."""
    paths = [f"data/point_{i:05}_results.csv" for i in range(5_000)]  # 150 KB
    (project.root / "data").mkdir()
    for p in paths:
        (project.root / p).write_text("1\n")
    project.taskfile(
        f"""
        files = {paths!r}
        task('summary', 'cat {{inputs}} > summary.txt', inputs=files, outputs=['summary.txt'])
        task('argv', ['sh', '-c', 'cat "$@" > argv.txt', 'sh', '{{inputs}}'],
             inputs=files, outputs=['argv.txt'])
        """
    )
    result = project.run("-k")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED summary: cannot execute: its command is " in result.stdout
    assert "bytes, over the 128 KiB Linux allows one argument" in result.stdout
    assert '["sh", "-c", \'cat "$@" > out.txt\', "sh", "{inputs}"]' in result.stdout
    assert_no_traceback(result)
    assert project.read("argv.txt") == "1\n" * 5_000  # the argv form runs
