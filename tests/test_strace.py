"""Reading strace's output (strace.py) and keeping what counts (access.py).

Unit tests feed the reader lines as strace 6 prints them with -f -y; one test runs
the real strace on a real shell command (skipped, saying why, where strace is not
installed).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pytaskmake import strace
from pytaskmake.access import Access, Recorder, Scope

ROOT = "/tmp/proj"
needs_strace = pytest.mark.skipif(
    strace.find_strace() is None, reason="strace is not installed (apt-get install strace)"
)


def access_of(text: str, cwd: str = ROOT, ignored: tuple[str, ...] = ("/usr", "/etc")) -> Access:
    recorder = Recorder(Scope(ROOT, ignored))
    strace.parse(text.strip("\n").splitlines(), cwd, recorder)
    return recorder.finish()


def test_reads_writes_and_failed_opens() -> None:
    found = access_of(
        """
101 execve("/bin/sh", ["/bin/sh", "-c", "cat a.txt > out.txt"], 0x7ffc /* 35 vars */) = 0
101 openat(AT_FDCWD</tmp/proj>, "out.txt", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</tmp/proj/out.txt>
102 openat(AT_FDCWD</tmp/proj>, "/etc/locale.alias", O_RDONLY|O_CLOEXEC) = 3</etc/locale.alias>
102 openat(AT_FDCWD</tmp/proj>, "a.txt", O_RDONLY) = 3</tmp/proj/a.txt>
102 openat(AT_FDCWD</tmp/proj>, "gone.txt", O_RDONLY) = -1 ENOENT (No such file or directory)
102 open("rel/b.txt", O_RDONLY) = 4</tmp/proj/rel/b.txt>
"""
    )
    assert found.reads == {"a.txt", "rel/b.txt", "/bin/sh"}
    assert found.writes == {"out.txt"}
    assert found.missing == {"gone.txt"}


def test_unfinished_and_resumed_lines_are_joined_per_process() -> None:
    found = access_of(
        """
200 vfork( <unfinished ...>
201 execve("/tmp/proj/bin/netsim", ["netsim"], 0x55 /* 35 vars */ <unfinished ...>
200 <... vfork resumed>)              = 201
201 <... execve resumed>)             = 0
201 openat(AT_FDCWD</tmp/proj>, "in.dat", O_RDONLY <unfinished ...>
200 openat(AT_FDCWD</tmp/proj>, "log.txt", O_WRONLY|O_CREAT|O_APPEND, 0666) = 3</tmp/proj/log.txt>
201 <... openat resumed>) = 3</tmp/proj/in.dat>
202 <... openat resumed>) = 3</tmp/proj/lost.dat>
"""
    )
    assert found.reads == {"bin/netsim", "in.dat"}  # (lost.dat's start was never seen)
    assert found.writes == {"log.txt"}


def test_working_directory_follows_chdir_and_forks() -> None:
    found = access_of(
        """
300 chdir("sub") = 0
300 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x7f) = 301
301 open("x.txt", O_RDONLY) = 3
300 chdir("/nowhere") = -1 ENOENT (No such file or directory)
300 open("../y.txt", O_RDONLY) = 3
302 open("z.txt", O_RDONLY) = 3
"""
    )
    assert found.reads == {"sub/x.txt", "y.txt", "z.txt"}


def test_renames_unlinks_and_temporary_files() -> None:
    found = access_of(
        """
400 openat(AT_FDCWD</tmp/proj>, "out.tmp", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</tmp/proj/out.tmp>
400 renameat2(AT_FDCWD</tmp/proj>, "out.tmp", AT_FDCWD</tmp/proj>, "out.dat", RENAME_NOREPLACE) = 0
400 openat(AT_FDCWD</tmp/proj>, "scratch", O_RDWR|O_CREAT|O_EXCL, 0600) = 4</tmp/proj/scratch>
400 openat(AT_FDCWD</tmp/proj>, "scratch", O_RDONLY) = 5</tmp/proj/scratch>
400 unlinkat(AT_FDCWD</tmp/proj>, "scratch", 0) = 0
400 unlink("old.dat") = 0
400 rename("a", "b") = -1 ENOENT (No such file or directory)
400 unlinkat(AT_FDCWD</tmp/proj>, "somedir", AT_REMOVEDIR) = 0
"""
    )
    assert found.writes == {"out.dat"}
    assert found.removed == {"old.dat"}
    assert found.reads == set()  # scratch was its own file


def test_dirfd_paths_and_odd_file_names() -> None:
    found = access_of(
        r"""
500 openat(3</tmp/proj/we\76ird), x>, "f\"g\303\251\n", O_RDONLY) = 4
500 openat(AT_FDCWD</tmp/proj>, "data", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3
500 openat(AT_FDCWD</tmp/proj>, "handle", O_RDONLY|O_PATH) = 3</tmp/proj/handle>
500 openat2(AT_FDCWD</tmp/proj>, "via2", {flags=O_RDONLY|O_CLOEXEC, resolve=0x4}, 24) = 3
500 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=27734} ---
500 +++ exited with 0 +++
"""
    )
    assert found.reads == {"we>ird), x/f\"gé\n", "via2"}
    assert found.listed == {"data"}


def test_scope_keeps_the_project_under_tmp_and_drops_the_system() -> None:
    scope = Scope("/tmp/proj", ("/tmp", "/usr", os.path.expanduser("~") + "/."))
    assert scope.view("/tmp/proj/a.txt") == "a.txt"
    assert scope.view("/tmp/other/a.txt") is None
    assert scope.view("/usr/lib/libc.so") is None
    assert scope.view("/usrlocal/x") == "/usrlocal/x"
    assert scope.view(os.path.expanduser("~/.pyenv/shims/python3")) is None
    assert scope.view("/opt/sim/bin/netsim") == "/opt/sim/bin/netsim"
    assert scope.view("/tmp/proj/.pytaskmake/state.db") is None
    assert scope.view("/tmp/proj/pkg/__pycache__/m.cpython-311.pyc") is None
    assert scope.view("/tmp/proj") is None


def test_access_packs_and_unpacks() -> None:
    found = Access(frozenset({"a", "b\nc"}), frozenset({"o"}), blind="processes")
    assert Access.unpack(found.pack()) == found
    assert Access.unpack(b"") == Access()
    with pytest.raises(ValueError):
        Access.unpack(b"R\0a\0Q")


@needs_strace
def test_real_strace_of_a_shell_command(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b\n")
    trace = tmp_path / ".pytaskmake" / "t.strace"
    trace.parent.mkdir()
    script = "cat a.txt > out.txt; cd sub && cat b.txt nothing.txt > ../two.txt; rm -f ../two.txt"
    argv = strace.command(strace.find_strace() or "strace", str(trace), ["/bin/sh", "-c", script])
    subprocess.run(argv, cwd=tmp_path, capture_output=True, check=False)
    found = strace.read_trace(str(trace), str(tmp_path), Scope(str(tmp_path)))
    assert found.reads == {"a.txt", "sub/b.txt"}
    assert found.writes == {"out.txt"}
    assert "sub/nothing.txt" in found.missing
