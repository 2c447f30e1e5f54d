"""Actions (action.py and the local executor): shell strings, argv lists, Python callables.

Signatures are unit-tested in process; running is tested through the real CLI.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from conftest import RAN_LINE, Project, build, ran, runs

from pytaskmake.action import ArgvAction, CallableAction, ShellAction, make_action

# --- signatures, in process ------------------------------------------------------------


def sig(value: object) -> str:
    return make_action(value, "t").signature


def test_kinds_of_action() -> None:
    assert isinstance(make_action("echo hi", "t"), ShellAction)
    argv = make_action(["prog", 1, 2.5], "t")
    assert isinstance(argv, ArgvAction) and argv.argv == ("prog", "1", "2.5")
    assert isinstance(make_action(("prog",), "t"), ArgvAction)
    assert isinstance(make_action(print, "t"), CallableAction)


@pytest.mark.parametrize("bad", ["", "  ", [], [None], 3, None])
def test_bad_actions_are_type_errors(bad: object) -> None:
    with pytest.raises(TypeError):
        make_action(bad, "t")


def test_shell_and_argv_signatures_follow_the_text() -> None:
    assert sig("echo 1") == sig("echo 1")
    assert sig("echo 1") != sig("echo 2")
    assert sig(["echo", "a b"]) != sig(["echo", "a", "b"])
    assert sig(["echo", "1"]) != sig("echo 1")


def _adder(n: int) -> Callable[[list[str]], int]:
    def add(outputs: list[str]) -> int:
        return n + len(outputs)

    return add


def _scaled(x: int, factor: int = 2) -> int:
    return x * factor


def test_callable_signature_tracks_closure_values_and_arguments() -> None:
    assert sig(_adder(1)) == sig(_adder(1))
    assert sig(_adder(1)) != sig(_adder(2))
    assert sig(functools.partial(_scaled, 1)) == sig(functools.partial(_scaled, 1))
    assert sig(functools.partial(_scaled, 1)) != sig(functools.partial(_scaled, 2))
    assert sig(functools.partial(_scaled, 1, factor=3)) != sig(functools.partial(_scaled, 1))
    assert sig(lambda k=1: k) != sig(lambda k=2: k)


def test_callable_signature_tracks_code() -> None:
    def one() -> int:
        return 1

    def two() -> int:
        return 2

    def one_call() -> int:
        return abs(1)

    two.__qualname__ = one_call.__qualname__ = one.__qualname__  # only the body differs
    assert sig(one) != sig(two)
    assert sig(one) != sig(one_call)


def test_callable_wants_only_parameters_it_names() -> None:
    def both(inputs: list[str], outputs: list[str]) -> None: ...

    def only_out(outputs: list[str]) -> None: ...

    def neither() -> None: ...

    assert make_action(both, "t").wants == ("inputs", "outputs")  # type: ignore[union-attr]
    assert make_action(only_out, "t").wants == ("outputs",)  # type: ignore[union-attr]
    assert make_action(neither, "t").wants == ()  # type: ignore[union-attr]

    def late(x: int, inputs: list[str], *, outputs: list[str]) -> None: ...

    partial = functools.partial
    assert make_action(partial(late, 1), "t").wants == ("inputs", "outputs")  # type: ignore[union-attr]
    assert make_action(partial(late, 1, []), "t").wants == ("outputs",)  # type: ignore[union-attr]
    assert make_action(partial(both, outputs=[]), "t").wants == ("inputs", "outputs")  # type: ignore[union-attr]


# --- running, through the CLI ----------------------------------------------------------


def test_shell_string_runs_in_sh_with_pipes_and_redirection(project: Project) -> None:
    project.taskfile(
        """
        task("sh", "printf 'b\\\\na\\\\n' | sort > deep/er/dir/sorted.txt && echo done",
             outputs=["deep/er/dir/sorted.txt"])
        """
    )
    result = build(project)
    assert project.read("deep/er/dir/sorted.txt") == "a\nb\n"
    assert "done" in result.stdout


def test_argv_list_runs_without_a_shell(project: Project) -> None:
    project.taskfile(
        """
        import sys
        task("argv", [sys.executable, "-c",
                      "import sys; open(sys.argv[1], 'w').write(repr(sys.argv[2:]))",
                      "out/args.txt", "a b", "$HOME", "*", 7],
             outputs=["out/args.txt"])
        """
    )
    build(project)
    assert project.read("out/args.txt") == "['a b', '$HOME', '*', '7']"


def test_argv_program_not_found_fails_cleanly(project: Project) -> None:
    project.taskfile(
        """
        task("ghost", ["no-such-program-pytaskmake-test", "x"], outputs=["o"])
        task("sh_ghost", "no-such-program-pytaskmake-test", outputs=["p"])
        """
    )
    result = build(project, "-k", code=1)
    assert "FAILED ghost" in result.stdout and "FAILED sh_ghost" in result.stdout
    assert "not found" in result.stdout


def test_callable_gets_inputs_and_outputs_and_its_output_is_shown(project: Project) -> None:
    project.taskfile(
        """
        def combine(inputs, outputs):
            print("combining", len(inputs), "inputs")
            with open(outputs[0], "w") as out:
                for path in inputs:
                    out.write(open(path).read())
            with open(outputs[1], "w") as out:
                out.write(",".join(inputs + outputs))

        def stamp(outputs):
            open(outputs[0], "w").write("stamped")

        def plain():
            open("plain.txt", "w").write("plain")

        task("combine", combine, inputs=["a.txt", "b.txt"],
             outputs=["res/ab.txt", "res/names.txt"])
        task("stamp", stamp, outputs=["new/dir/s.txt"])
        task("plain", plain, outputs=["plain.txt"])
        """
    )
    project.write("a.txt", "A\n")
    project.write("b.txt", "B\n")
    result = build(project)
    assert project.read("res/ab.txt") == "A\nB\n"
    assert project.read("res/names.txt") == "a.txt,b.txt,res/ab.txt,res/names.txt"
    assert project.read("new/dir/s.txt") == "stamped"
    assert project.read("plain.txt") == "plain"
    assert "combining 2 inputs" in result.stdout


@pytest.mark.parametrize(
    "body, shown",
    [
        ("return False", None),
        ("raise ValueError('bad parameter 17')", "bad parameter 17"),
        ("import sys; sys.exit(4)", None),
        ("import os; os._exit(5)", None),
    ],
)
def test_callable_failure(project: Project, body: str, shown: str | None) -> None:
    project.taskfile(
        f"""
        def work(outputs):
            open(outputs[0], "w").write("partial")
            {body}
        task("work", work, outputs=["w.txt"])
        task("after", "cp w.txt after.txt", inputs=["w.txt"], outputs=["after.txt"])
        """
    )
    result = build(project, code=1)
    assert "FAILED work" in result.stdout
    if shown:
        assert shown in result.stdout
    assert not project.exists("after.txt")
    assert not project.exists("w.txt"), "a failed task's output must not pass for good"
    if body == "return False":
        build(project, code=1)  # still stale: fails again


def test_callable_returning_none_or_true_succeeds(project: Project) -> None:
    project.taskfile(
        """
        def a(outputs):
            open(outputs[0], "w").write("a")
        def b(outputs):
            open(outputs[0], "w").write("b")
            return True
        task("a", a, outputs=["a"])
        task("b", b, outputs=["b"])
        """
    )
    build(project)
    assert project.read("a") + project.read("b") == "ab"


CALLABLE_TASKFILE = """
import functools
SCALE = {scale}

def work(outputs, factor={factor}):
    with open("runs.log", "a") as log:
        log.write("work\\n")
    open(outputs[0], "w").write(str({expr}))

def closure_of(k):
    def make(outputs):
        with open("runs.log", "a") as log:
            log.write("closure\\n")
        open(outputs[0], "w").write(str(k))
    return make

def part(n, outputs):
    with open("runs.log", "a") as log:
        log.write("part\\n")
    open(outputs[0], "w").write(str(n))

task("work", work, outputs=["w.txt"], cache=False)
task("closure", closure_of(SCALE), outputs=["c.txt"], cache=False)
task("part", functools.partial(part, {partial}), outputs=["p.txt"], cache=False)
"""


def write_callables(project: Project, blank_lines: int = 0, **values: object) -> None:
    params = {"scale": 1, "factor": 2, "expr": "factor", "partial": 5, **values}
    project.taskfile("\n" * blank_lines + CALLABLE_TASKFILE.format(**params))


def test_callable_changes_rerun_exactly_the_changed_task(project: Project) -> None:
    write_callables(project)
    build(project)
    assert sorted(runs(project)) == ["closure", "part", "work"]
    steps: list[tuple[dict[str, object], list[str]]] = [
        ({"blank_lines": 3}, []),  # moving code is not changing it
        ({"factor": 3}, ["work"]),  # a default argument
        ({"factor": 3, "expr": "factor + 0"}, ["work"]),  # the code
        ({"factor": 3, "expr": "factor + 0", "scale": 2}, ["closure"]),  # a closure value
        ({"factor": 3, "expr": "factor + 0", "scale": 2, "partial": 6}, ["part"]),  # partial
    ]
    for change, expected in steps:
        write_callables(project, **change)  # type: ignore[arg-type]
        build(project)
        assert runs(project) == expected, change


def test_an_edit_behind_an_import_inside_a_callable_reruns_it(project: Project) -> None:
    """The callables import their modules when they run, not at load: an edit of
    what physics.py imports, or of lib/model.py (`from lib import model`), reruns
    the task that would run it, and only that one."""
    project.write("constants.py", "RATE = 2\n")
    project.write("physics.py", "from constants import RATE\ndef f(x):\n    return x * RATE\n")
    project.write("lib/__init__.py", "")
    project.write("lib/model.py", "def g(x):\n    return x + 100\n")
    project.taskfile(
        """
        def a(outputs):
            import physics
            open(outputs[0], "w").write(str(physics.f(10)))
        def b(outputs):
            from lib import model
            open(outputs[0], "w").write(str(model.g(1)))
        task("a", a, outputs=["a.txt"])
        task("b", b, outputs=["b.txt"])
        """
    )
    build(project)
    assert (project.read("a.txt"), project.read("b.txt")) == ("20", "101")
    project.write("constants.py", "RATE = 3\n")
    assert ran(build(project)) == ["a"] and project.read("a.txt") == "30"
    project.write("lib/model.py", "def g(x):\n    return x + 200\n")
    assert ran(build(project)) == ["b"] and project.read("b.txt") == "201"


def test_command_text_change_reruns(project: Project) -> None:
    project.taskfile(
        """
        task("t", "echo t >> runs.log; echo one > t.txt", outputs=["t.txt"], cache=False)
        task("u", ["sh", "-c", "echo u >> runs.log; echo one > u.txt"], outputs=["u.txt"],
             cache=False)
        """
    )
    build(project)
    assert sorted(runs(project)) == ["t", "u"]
    project.write("Taskfile.py", project.read("Taskfile.py").replace("one", "two"))
    build(project)
    assert sorted(runs(project)) == ["t", "u"]
    assert project.read("t.txt") == project.read("u.txt") == "two\n"


def test_log_file_receives_stdout_and_stderr(project: Project) -> None:
    project.taskfile(
        """
        task("logged", "echo to-out; echo to-err >&2; echo r > r.txt", outputs=["r.txt"],
             log="logs/deep/logged.log")
        def py(outputs):
            import sys
            print("py-out")
            print("py-err", file=sys.stderr)
            open(outputs[0], "w").write("p")
        task("pylogged", py, outputs=["p.txt"], log="logs/py.log")
        """
    )
    result = build(project)
    log = project.read("logs/deep/logged.log")
    assert "to-out" in log and "to-err" in log
    assert "to-out" not in result.stdout and "to-err" not in result.stdout
    pylog = project.read("logs/py.log")
    assert "py-out" in pylog and "py-err" in pylog
    assert "py-out" not in result.stdout


def test_failure_with_log_shows_its_tail(project: Project) -> None:
    project.taskfile(
        """
        task("bad", "echo first-line; echo why-it-failed >&2; exit 9", outputs=["x"],
             log="bad.log")
        """
    )
    result = build(project, code=1)
    assert "FAILED bad" in result.stdout
    assert "why-it-failed" in result.stdout
    assert "why-it-failed" in project.read("bad.log")


def test_unlogged_output_of_a_task_is_printed_with_its_line(project: Project) -> None:
    project.taskfile(
        """
        task("talk", "echo hello-from-task; echo oops >&2; touch t", outputs=["t"])
        """
    )
    result = build(project)
    lines = result.stdout.splitlines()
    index = next(i for i, line in enumerate(lines) if RAN_LINE.match(line))
    assert "talk" in lines[index]
    assert "hello-from-task" in lines[index + 1 :][:2]
    assert "oops" in result.stdout


def test_stdin_is_not_the_terminal(project: Project) -> None:
    project.taskfile(
        """
        task("reads", "cat > got.txt; echo done >> got.txt", outputs=["got.txt"], timeout=20)
        """
    )
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytaskmake"],
        cwd=project.root,
        input="should not be read\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("got.txt") == "done\n"
    assert time.monotonic() - start < 15


def test_timeout_kills_the_task(project: Project) -> None:
    project.taskfile(
        """
        task("slow", "sleep 30; touch s", outputs=["s"], timeout=0.5)
        """
    )
    start = time.monotonic()
    result = build(project, code=1)
    assert time.monotonic() - start < 10
    assert "FAILED slow" in result.stdout and "timed out" in result.stdout


def test_retries_rerun_a_failing_task(project: Project) -> None:
    project.taskfile(
        """
        task("flaky",
             "echo try >> runs.log; test $(wc -l < runs.log) -ge 3 && echo ok > f.txt",
             outputs=["f.txt"], retries=2)
        task("hopeless", "echo no >> hope.log; exit 1", outputs=["h.txt"], retries=1)
        """
    )
    result = build(project, "-k", code=1)
    assert runs(project) == ["try", "try", "try"]
    assert project.read("f.txt") == "ok\n"
    assert project.read("hope.log").split() == ["no", "no"]
    assert "FAILED hopeless" in result.stdout
    assert "FAILED flaky" not in result.stdout


def test_the_order_of_a_callables_inputs_is_part_of_its_signature(project: Project) -> None:
    """It receives them in that order (and may read only the first): reordering them
    reruns it; for a shell command, whose text names its files, it does not."""
    project.write("a.txt", "A\n")
    project.write("b.txt", "B\n")
    body = (
        "def first(inputs, outputs):\n"
        "    open(outputs[0], 'w').write(open(inputs[0]).read())\n"
        "task('first', first, inputs={ins}, outputs=['first.txt'])\n"
    )
    project.taskfile(body.format(ins='["a.txt", "b.txt"]'))
    build(project)
    assert project.read("first.txt") == "A\n"
    project.taskfile(body.format(ins='["b.txt", "a.txt"]'))
    build(project)
    assert project.read("first.txt") == "B\n"


def test_a_loop_variable_read_late_fails_the_task_with_the_fix(project: Project) -> None:
    """Declared for p = 1, 2, 3, a callable reading the loop's p would run p = 3 three
    times: the tasks whose p moved fail, naming the fix; a bound p runs as declared."""
    project.taskfile(
        """
        for p in (1, 2, 3):
            def late(outputs):
                open(outputs[0], "w").write(str(p))
            task(f"late{p}", late, outputs=[f"late{p}.txt"])

        def declare():
            for q in (1, 2):
                task(f"closure{q}", lambda outputs: open(outputs[0], "w").write(str(q)),
                     outputs=[f"closure{q}.txt"])
        declare()

        for r in (1, 2):
            task(f"bound{r}", lambda outputs, r=r: open(outputs[0], "w").write(str(r)),
                 outputs=[f"bound{r}.txt"])
        """
    )
    result = project.run("-k")
    assert result.returncode == 1
    out = result.stdout
    assert "p is 3 now but was 1 when the task was declared" in out
    assert "p is 3 now but was 2 when the task was declared" in out
    assert "q is 2 now but was 1 when the task was declared" in out
    assert "default argument" in out
    assert project.read("late3.txt") == "3" and project.read("closure2.txt") == "2"
    assert not project.exists("late1.txt") and not project.exists("closure1.txt")
    assert project.read("bound1.txt") == "1" and project.read("bound2.txt") == "2"


# --- issue 25: how a failing callable is reported -------------------------------------


def test_a_callable_returning_false_is_reported_as_such(project: Project) -> None:
    project.taskfile(
        """
        def check():
            print("checking")
            return False

        task("check", check, always=True)
        """
    )
    result = project.run()
    assert result.returncode == 1
    assert "FAILED check: returned False" in result.stdout


def test_a_failing_callable_shows_its_traceback_without_pytaskmake_frames(
    project: Project,
) -> None:
    project.taskfile(
        """
        def simulate():
            raise ValueError("bad buffer size")

        task("sim", simulate, always=True)
        """
    )
    result = project.run()
    assert result.returncode == 1
    assert "ValueError: bad buffer size" in result.stdout
    assert 'Taskfile.py", line 4, in simulate' in result.stdout
    assert "pytaskmake/executors" not in result.stdout
