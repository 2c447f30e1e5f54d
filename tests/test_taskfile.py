"""Declaring tasks and loading a Taskfile (taskfile.py), in process and through the CLI."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import Project, build, runs

from pytaskmake import Task, task
from pytaskmake.action import ArgvAction, CallableAction, ShellAction
from pytaskmake.errors import TaskfileError
from pytaskmake.taskfile import Registry, load_taskfile


def load(tmp_path: Path, body: str, name: str = "Taskfile.py") -> Registry:
    path = tmp_path / name
    path.write_text("from pytaskmake import task\n" + textwrap.dedent(body))
    return load_taskfile(path)


def load_error(tmp_path: Path, body: str, name: str = "Taskfile.py") -> str:
    with pytest.raises(TaskfileError) as info:
        load(tmp_path, body, name)
    return str(info.value)


# --- the task() API, in process --------------------------------------------------------


def test_tasks_are_registered_in_declaration_order_with_their_fields(tmp_path: Path) -> None:
    reg = load(
        tmp_path,
        """
        from pathlib import Path
        for i in range(3):
            task(f"sim{i}", f"echo {i} > out/{i}.txt", outputs=[f"out/{i}.txt"])
        task("sum", ["cat", "out/0.txt"], inputs=[Path("out/0.txt"), "./out//1.txt"],
             outputs="total.txt", deps=["sim2"], log="logs/sum.log",
             timeout=2, retries=1, cache=False)
        """,
    )
    assert list(reg.tasks) == ["sim0", "sim1", "sim2", "sum"]
    s = reg.tasks["sum"]
    assert isinstance(s, Task)
    assert s.inputs == ("out/0.txt", "out/1.txt")
    assert s.outputs == ("total.txt",)
    assert s.deps == ("sim2",)
    assert s.log == "logs/sum.log"
    assert (s.timeout, s.retries, s.cache) == (2.0, 1, False)
    assert s.where == "Taskfile.py:6"  # line 1 is the import, line 2 is blank
    assert reg.tasks["sim1"].where == "Taskfile.py:5"
    assert isinstance(s.action, ArgvAction)
    assert isinstance(reg.tasks["sim0"].action, ShellAction)
    assert reg.tasks["sim0"].timeout is None and reg.tasks["sim0"].retries == 0
    assert reg.tasks["sim0"].cache is True


def test_absolute_paths_inside_the_project_become_relative(tmp_path: Path) -> None:
    reg = load(
        tmp_path,
        f"""
        task("a", "true", inputs=[{str(tmp_path / "src" / "x.txt")!r}],
             outputs=[{str(tmp_path / "build" / "y.txt")!r}])
        """,
    )
    assert reg.tasks["a"].inputs == ("src/x.txt",)
    assert reg.tasks["a"].outputs == ("build/y.txt",)


def test_paths_checked_in_bulk_are_normalized_and_located(tmp_path: Path) -> None:
    """Thousands of tasks are checked together; an odd path in any chunk is still found."""
    reg = load(
        tmp_path,
        """
        from pathlib import Path
        for i in range(5000):
            odd = i in (17, 4500)
            src = f"./in/../in/{i}.txt" if odd else f"in/{i}.txt"
            task(f"t{i}", "true", inputs=[src, src, Path("p.txt")] if odd else [src],
                 outputs=[f"out/{i}.txt"])
        """,
    )
    assert reg.tasks["t4500"].inputs == ("in/4500.txt", "p.txt")  # normalized, deduplicated
    assert reg.tasks["t17"].inputs == ("in/17.txt", "p.txt")
    assert reg.tasks["t4499"].inputs == ("in/4499.txt",)
    for bad, words in [
        ('"/etc/x"', "outside"),
        ('f"in/{i}.txt"', "both an input and an output"),
        ('"a\\0b"', "NUL"),
        ("3", "must be a string"),
    ]:
        message = load_error(
            tmp_path,
            f"""
            for i in range(5000):
                out = {bad} if i == 4321 else f"out/{{i}}.txt"
                task(f"t{{i}}", "true", inputs=[f"in/{{i}}.txt"],
                     outputs=[out])
            """,
        )
        assert "Taskfile.py:5" in message and "'t4321'" in message and words in message, message


def test_deps_accept_tasks_and_names_and_depends_on_chains(tmp_path: Path) -> None:
    reg = load(
        tmp_path,
        """
        a = task("a", "true")
        b = task("b", "true", deps=a)
        c = task("c", "true", deps=[a, "b"])
        d = task("d", "true").depends_on(a, "c").depends_on(b)
        assert isinstance(d, type(a))
        """,
    )
    assert reg.tasks["b"].deps == ("a",)
    assert reg.tasks["c"].deps == ("a", "b")
    assert reg.tasks["d"].deps == ("a", "c", "b")


def test_callable_action(tmp_path: Path) -> None:
    reg = load(
        tmp_path,
        """
        def make(inputs, outputs):
            pass
        task("py", make, outputs=["o"])
        """,
    )
    assert isinstance(reg.tasks["py"].action, CallableAction)


def test_task_outside_a_taskfile_is_refused() -> None:
    with pytest.raises(RuntimeError):
        task("x", "true")


def test_loading_restores_cwd_and_runs_in_the_taskfile_directory(tmp_path: Path) -> None:
    (tmp_path / "params.txt").write_text("3\n")
    before = os.getcwd()
    reg = load(
        tmp_path,
        """
        n = int(open("params.txt").read())
        for i in range(n):
            task(f"t{i}", "true")
        """,
    )
    assert os.getcwd() == before
    assert list(reg.tasks) == ["t0", "t1", "t2"]


def test_taskfile_can_import_a_sibling_module(tmp_path: Path) -> None:
    (tmp_path / "helpers_for_taskfile_test.py").write_text(
        "from pytaskmake import task\n\ndef declare(name):\n    return task(name, 'true')\n"
    )
    reg = load(
        tmp_path,
        """
        from helpers_for_taskfile_test import declare
        declare("from_helper")
        """,
    )
    assert reg.tasks["from_helper"].where == "helpers_for_taskfile_test.py:4"


# --- errors, in process ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body, line, words",
    [
        ("x = (\n", 2, ["syntax"]),
        ("\n\nraise ValueError('boom')\n", 4, ["ValueError", "boom"]),
        ("def f():\n    return {}['k']\n\nf()\n", 3, ["KeyError"]),
        ("task('a', None)\n", 2, ["'a'", "action"]),
        ("task('a')\n", 2, ["action"]),
        ("task('a', 'true', inputs=[1])\n", 2, ["'a'", "1"]),
        ("task('a', 'true', outputs=[None])\n", 2, ["'a'", "None"]),
        ("task('a', 'true', log=3.5)\n", 2, ["'a'", "3.5"]),
        ("task('a', 'true', outputs=['../x'])\n", 2, ["'a'", "../x", "outside"]),
        ("task('a', 'true', outputs=['/elsewhere/x'])\n", 2, ["'a'", "outside"]),
        ("task('a', 'true', outputs=['d/../../x'])\n", 2, ["'a'", "outside"]),
        ("task('a', 'true', inputs=['x'], outputs=['./x'])\n", 2, ["'a'", "x"]),
        ("task('a', 'true')\n\ntask('a', 'false')\n", 4, ["'a'", "Taskfile.py:2"]),
        ("task('a', 'true', deps=[3])\n", 2, ["'a'", "3"]),
        ("task('', 'true')\n", 2, ["name"]),
        ("task('a', '   ')\n", 2, ["'a'", "empty"]),
        ("task('a', [])\n", 2, ["'a'", "empty"]),
        ("task('a', 42)\n", 2, ["'a'", "int"]),
        ("task('a', 'true', outputs=['o', './o'])\n", 2, ["'a'", "twice"]),
        ("task('a', 'true', timeout=-1)\n", 2, ["'a'", "timeout"]),
        ("task('a', 'true', retries=-1)\n", 2, ["'a'", "retries"]),
    ],
)
def test_taskfile_errors_name_file_and_line(
    tmp_path: Path, body: str, line: int, words: list[str]
) -> None:
    message = load_error(tmp_path, body)
    assert f"Taskfile.py:{line}" in message
    assert "\n" not in message
    for word in words:
        assert word in message


def test_error_in_a_task_call_of_a_loop_points_at_the_call(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """
        for i in range(3):
            task(f"t{i}", "true", outputs=["same.txt"] if i else ["../bad"])
        """,
    )
    assert message.startswith("Taskfile.py:4:")
    assert "'t0'" in message


def test_error_messages_use_the_given_file_name(tmp_path: Path) -> None:
    message = load_error(tmp_path, "task('a', 'true')\ntask('a', 'x')\n", name="sweep.py")
    assert "sweep.py:3" in message and "sweep.py:2" in message


def test_unreadable_taskfile(tmp_path: Path) -> None:
    with pytest.raises(TaskfileError, match="cannot read"):
        load_taskfile(tmp_path / "nope.py")


def test_output_starting_with_two_dots_is_inside_the_project(tmp_path: Path) -> None:
    reg = load(tmp_path, "task('a', 'true', outputs=['..hidden', 'sub/..x'])\n")
    assert reg.tasks["a"].outputs == ("..hidden", "sub/..x")


# --- errors through the CLI: one line on stderr, exit code 2, no traceback -------------


def assert_taskfile_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.mark.parametrize("args", [(), ("-n",), ("--clean",)])
def test_cli_syntax_error(project: Project, args: tuple[str, ...]) -> None:
    project.taskfile(
        """
        task("a", "true")
        task("b", "true"
        task("c", "true")
        """
    )
    assert_taskfile_error(project.run(*args), "Taskfile.py:4")


def test_cli_exception_in_taskfile(project: Project) -> None:
    project.taskfile(
        """
        import json
        params = json.loads("{not json")
        """
    )
    line = assert_taskfile_error(project.run(), "Taskfile.py:4")
    assert "JSONDecodeError" in line


@pytest.mark.parametrize(
    "body, needles",
    [
        ('task("a", None)\n', ["Taskfile.py:2", "'a'"]),
        ('task("a", "true", inputs=[42])\n', ["Taskfile.py:2", "42"]),
        ('task("a\\0b", "true")\n', ["Taskfile.py:2", "NUL"]),
        ('task("a", "true", outputs=["../../etc/x"])\n', ["Taskfile.py:2", "outside"]),
        ('task("a", "cp x x", inputs=["x"], outputs=["x"])\n', ["Taskfile.py:2", "'x'"]),
        ('task("a", "true")\ntask("b", "true")\ntask("a", "false")\n', ["Taskfile.py:4", ":2"]),
    ],
)
def test_cli_declaration_errors(project: Project, body: str, needles: list[str]) -> None:
    project.write("Taskfile.py", "from pytaskmake import task\n" + body)
    assert_taskfile_error(project.run(), *needles)
    assert not project.exists(".pytaskmake/state.db")


def test_cli_error_with_other_taskfile_name(project: Project) -> None:
    project.write("pipeline.py", "from pytaskmake import task\n\n1 / 0\n")
    assert_taskfile_error(project.run("-f", "pipeline.py"), "pipeline.py:3", "ZeroDivisionError")


def test_cli_missing_taskfile(project: Project) -> None:
    result = project.run()
    assert result.returncode == 2
    assert "Taskfile.py" in result.stderr and "Traceback" not in result.stderr


def test_cli_log_equal_to_an_input_is_refused(project: Project) -> None:
    project.taskfile(
        """
        task("a", "cat data.txt > out.txt", inputs=["data.txt"], outputs=["out.txt"],
             log="data.txt")
        """
    )
    project.write("data.txt", "precious\n")
    result = project.run()
    assert project.read("data.txt") == "precious\n", "the input was destroyed"
    assert_taskfile_error(result, "data.txt")


def test_cli_log_equal_to_another_tasks_output_is_refused(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo result > out.txt", outputs=["out.txt"])
        task("b", "echo b > b.txt", outputs=["b.txt"], log="out.txt")
        """
    )
    result = project.run("-j", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "out.txt" in result.stderr and "Traceback" not in result.stderr


def test_cli_sys_exit_in_taskfile_is_a_taskfile_error(project: Project) -> None:
    project.taskfile(
        """
        import sys
        sys.exit("config.yaml is missing")
        """
    )
    assert_taskfile_error(project.run(), "Taskfile.py:4", "config.yaml is missing")


def test_a_command_given_as_a_str_subclass_is_a_shell_command(project: Project) -> None:
    """numpy.str_ and friends: kept as a ShellAction, built and then up to date."""
    project.taskfile(
        """
        class Text(str):
            pass
        task("t", Text("echo hi > out.txt"), outputs=[Text("out.txt")])
        """
    )
    first = project.run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert project.read("out.txt") == "hi\n"
    again = project.run("-n")
    assert again.returncode == 0 and "0 of 1 tasks would run" in again.stdout, again.stdout


# --- issue 25: always=True, fileless tasks, placeholders ------------------------------


def test_always_runs_on_every_build_and_the_rest_stays_up_to_date(project: Project) -> None:
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        task("upload", "echo upload >> runs.log", always=True)
        task("sim", "echo sim >> runs.log; cat in.txt > out.txt",
             inputs=["in.txt"], outputs=["out.txt"])
        """
    )
    build(project)
    assert sorted(runs(project)) == ["sim", "upload"]
    result = build(project)
    assert runs(project) == ["upload"]  # not answered "nothing to do" by the snapshot
    assert "upload: runs on every build (always=True)" in build(project, "--explain").stdout
    assert "neither inputs nor outputs" not in result.stdout + result.stderr


def test_a_task_without_files_gets_a_warning_naming_it(project: Project) -> None:
    project.taskfile(
        """
        task("lint", "echo lint >> runs.log")
        task("check", "echo check >> runs.log")
        """
    )
    result = build(project)
    said = result.stdout + result.stderr
    assert "task 'lint' (Taskfile.py:3) (and 1 more) has neither inputs nor outputs" in said
    assert "always=True" in said
    assert sorted(runs(project)) == ["check", "lint"]
    build(project)
    assert runs(project) == []  # once, ever: as the warning says


def test_placeholders_expand_shell_quoted(project: Project) -> None:
    project.write("a b.txt", "A\n")
    project.write("c.txt", "C\n")
    project.taskfile(
        """
        task("cat", "cat {inputs} > {outputs[0]}; echo '{keep $1}' > {outputs[1]}",
             inputs=["a b.txt", "c.txt"], outputs=["all.txt", "braces.txt"])
        task("named", "cat {inputs.cfg} {inputs[data]} > {outputs.result}",
             inputs={"cfg": "c.txt", "data": "all.txt"}, outputs={"result": "r.txt"})
        task("argv", ["cp", "{inputs}", "{outputs}"], inputs=["c.txt"], outputs=["copy.txt"])
        """
    )
    build(project)
    assert project.read("all.txt") == "A\nC\n"
    assert project.read("braces.txt") == "{keep $1}\n"  # other braces are left alone
    assert project.read("r.txt") == "C\nA\nC\n"
    assert project.read("copy.txt") == "C\n"
    assert "cat 'a b.txt' c.txt > all.txt" in build(project, "-n", "-v", "-B", "cat").stdout


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("cat {inputs[3]}", "{inputs[3]}: it has 1 inputs"),
        ("cat {inputs.cfg}", "no inputs named 'cfg' (none: give inputs as a dict"),
    ],
)
def test_a_bad_placeholder_is_a_load_error_with_its_line(
    project: Project, command: str, said: str
) -> None:
    project.write("c.txt", "C\n")
    project.taskfile(f'\ntask("t", "{command}", inputs=["c.txt"], outputs=["o"])\n')
    result = build(project, code=2)
    assert "Taskfile.py:3" in result.stderr and said in result.stderr


# --- issue 25: parameters from the command line ----------------------------------------

PARAMS = """
from pytaskmake import param
seeds = param("seeds", 2)
topo = param("topo", "ring")
fast = param("fast", False)
for s in range(seeds):
    task(f"sim{s}", f"echo sim{s} >> runs.log; echo {topo} {fast} > out{s}.txt",
         outputs=[f"out{s}.txt"])
"""


def test_params_reach_the_taskfile_and_rerun_what_uses_them(project: Project) -> None:
    project.taskfile(PARAMS)
    build(project)
    assert sorted(runs(project)) == ["sim0", "sim1"]
    assert project.read("out0.txt") == "ring False\n"
    build(project, "seeds=3", "topo=mesh", "fast=yes")
    assert sorted(runs(project)) == ["sim0", "sim1", "sim2"]  # the command changed
    assert project.read("out2.txt") == "mesh True\n"
    build(project, "seeds=3", "topo=mesh", "fast=yes", "sim1")  # with a target too
    assert runs(project) == []


@pytest.mark.parametrize(
    ("word", "said"),
    [
        ("seed=3", "unknown parameter seed=3: Taskfile.py asks for: fast, seeds, topo"),
        ("seeds=many", "Taskfile.py:4: parameter seeds=many: not a valid int"),
        ("fast=maybe", "parameter fast=maybe: not a valid bool"),
    ],
)
def test_a_bad_parameter_is_a_one_line_error(project: Project, word: str, said: str) -> None:
    project.taskfile(PARAMS)
    result = build(project, word, code=2)
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_load_keeps_pytaskmakes_bytecode_but_writes_none_for_the_project(
    tmp_path: Path,
) -> None:
    """Only the project's modules go without a .pyc (an edit within the same second
    could run old bytecode); pytaskmake's own modules imported during a load (the
    callable signer, the placeholders) keep theirs, or every run compiles them again."""
    import shutil
    import sys

    import pytaskmake

    package = tmp_path / "lib" / "pytaskmake"
    shutil.copytree(
        Path(pytaskmake.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    project = tmp_path / "proj"
    project.mkdir()
    (project / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (project / "Taskfile.py").write_text(
        "from pytaskmake import task\nimport helpers\n"
        "task('shell', 'cp {inputs} {outputs}', inputs=['a.txt'], outputs=['b.txt'])\n"
        "task('call', helpers.double, outputs=['c.txt'])\n"
    )
    (project / "a.txt").write_text("a\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tmp_path / "lib")
    done = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "-n"], cwd=project, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    cached = {p.name.split(".")[0] for p in (package / "__pycache__").glob("*.pyc")}
    assert {"taskfile", "placeholders", "codeprint", "implicit"} <= cached
    assert not (project / "__pycache__").exists()


def test_a_glob_is_a_listing_and_importing_a_project_module_is_not(tmp_path: Path) -> None:
    """A watcher reloads the Taskfile when a file appears in a folder it listed. The
    import system lists the project folder too (to find `helpers`), again each time
    the folder changed, and so does pytaskmake's implicit-input pass: neither must
    count, or every file a task writes there (a log, a scratch file) would reload the
    Taskfile."""
    (tmp_path / "data").mkdir()
    (tmp_path / "helpers.py").write_text("N = 1\n")
    (tmp_path / "Taskfile.py").write_text(
        "import glob\nfrom helpers import N\nfrom pytaskmake import task\n"
        "for p in glob.glob('data/*.csv'):\n    task(p, 'true', inputs=[p])\n"
        "task('x', 'cat notes.txt > o', outputs=['o'])\n"  # (the implicit pass lists too)
    )
    (tmp_path / "notes.txt").write_text("n\n")
    first = load_taskfile(tmp_path / "Taskfile.py", track=True)
    (tmp_path / "notes.txt").write_text("the folder changed: the import lists it again\n")
    again = load_taskfile(tmp_path / "Taskfile.py", track=True)
    assert first.listed == again.listed == {str(tmp_path / "data")}
