"""Running one job as a function (executors/job.py): what a Dask worker calls."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from pytaskmake.action import make_action
from pytaskmake.executors.base import Job
from pytaskmake.executors.job import run_job
from pytaskmake.fingerprint import FileCache


def job(name: str, action: object, outputs: tuple[str, ...] = (), **kw: object) -> Job:
    return Job(name, make_action(action, name), (), outputs, **kw)  # type: ignore[arg-type]


def _gone(pid: int, within: float = 10.0) -> bool:
    """The process exits within `within` seconds (a SIGTERM takes effect when the
    process is next scheduled: later, on a busy machine)."""
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _written(path: Path) -> bool:
    return path.exists() and path.read_text().strip() != ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_command_runs_in_the_root_in_its_own_group_and_its_output_is_captured(
    tmp_path: Path,
) -> None:
    here = os.getcwd()
    c = run_job(job("a", "pwd; ps -o pgid= -p $$; echo $$; exit 3"), str(tmp_path))
    assert os.getcwd() == here
    folder, pgid, pid = c.output.decode().split()
    assert folder == str(tmp_path)
    assert pgid == pid  # the shell leads its own process group
    assert c.returncode == 3 and c.error is None and c.fingerprints is None


def test_outputs_are_fingerprinted_where_the_job_ran(tmp_path: Path) -> None:
    c = run_job(
        job("w", ["sh", "-c", "echo hi > out.txt"], ("out.txt", "missing.txt")),
        str(tmp_path),
        fingerprint=True,
    )
    assert c.returncode == 0
    assert c.fingerprints == {"out.txt": FileCache().fingerprint(str(tmp_path / "out.txt"))}


def test_a_missing_program_is_reported_as_a_shell_would(tmp_path: Path) -> None:
    c = run_job(job("m", ["no-such-program-xyz"]), str(tmp_path), fingerprint=True)
    assert c.returncode == 127 and c.error == "command not found: no-such-program-xyz"
    assert c.fingerprints is None


def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    c = run_job(job("t", "sleep 30 & echo $! > child.pid; wait", timeout=0.5), str(tmp_path))
    assert c.timed_out and c.error == "timed out after 0.5s"
    assert _gone(int((tmp_path / "child.pid").read_text()))


def test_stop_terminates_the_job_as_interrupted(tmp_path: Path) -> None:
    pids: list[int] = []
    c = run_job(
        job("s", "sleep 30 & echo $! > child.pid; wait"),
        str(tmp_path),
        stop=lambda: _written(tmp_path / "child.pid"),
        on_start=lambda pid, _since: pids.append(pid),
    )
    assert c.error == "interrupted" and c.returncode != 0
    assert pids and _gone(pids[0])
    assert _gone(int((tmp_path / "child.pid").read_text()))


def test_a_callable_runs_in_the_root_with_its_output_captured(tmp_path: Path) -> None:
    def write(outputs: list[str]) -> None:
        print("writing", outputs[0])
        Path(outputs[0]).write_text(os.getcwd())

    c = run_job(job("c", write, ("res.txt",)), str(tmp_path), fingerprint=True)
    assert c.returncode == 0, c.output
    assert c.output == b"writing res.txt\n"
    assert (tmp_path / "res.txt").read_text() == str(tmp_path)
    assert c.fingerprints is not None and set(c.fingerprints) == {"res.txt"}


def test_a_log_file_gets_the_output_and_a_retry_appends(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    first = run_job(job("l", "echo one", log="logs/l.log"), str(tmp_path))
    again = run_job(job("l", "echo two", log="logs/l.log", attempt=2), str(tmp_path))
    assert first.output == again.output == b""
    text = (tmp_path / "logs/l.log").read_text()
    assert text.startswith("one\n") and text.endswith("attempt 2 ---\ntwo\n")


def test_big_output_spills_to_the_logs_folder(tmp_path: Path) -> None:
    script = "import sys; sys.stdout.write('x' * 400000 + '\\nEND\\n')"
    c = run_job(job("big", [sys.executable, "-c", script]), str(tmp_path), tmp_path / "logs")
    assert c.full_log is not None and Path(c.full_log).stat().st_size == 400005
    assert c.output.endswith(b"END\n") and len(c.output) < 400000


def test_cpu_time_and_peak_memory_are_measured(tmp_path: Path) -> None:
    busy = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.2: pass')"
    c = run_job(job("cpu", [sys.executable, "-c", busy]), str(tmp_path))
    assert c.returncode == 0
    assert c.cpu_seconds >= 0.2
    assert c.max_rss > 1 << 20  # a Python interpreter is bigger than 1 MiB
