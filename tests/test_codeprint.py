"""Fingerprints of Python code and values (codeprint.py): a callable task reruns when
what it does changes (its code, the project code and values it reaches, its
arguments), and only then.

Digests are unit-tested in process on code compiled from real files; reruns are
tested through the real CLI.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, build, ran, runs

from pytaskmake.codeprint import CodePrinter
from pytaskmake.errors import UnstableValueError

# --- digests, in process -------------------------------------------------------------


def load(root: Path, source: str, name: str = "Taskfile.py") -> dict[str, Any]:
    """Run `source` as the file `name` under `root` (as the loader runs a Taskfile)."""
    path = root / name
    path.write_text(source)
    space: dict[str, Any] = {"__name__": "__taskfile__", "__file__": str(path)}
    exec(compile(source, str(path), "exec", dont_inherit=True), space)
    return space


def digest(root: Path, source: str, what: str = "f") -> str:
    return CodePrinter(root).digest(load(root, source)[what])


def test_moved_reformatted_or_redocumented_code_keeps_its_digest(tmp_path: Path) -> None:
    plain = "def f(x):\n    return g(x) + 1\ndef g(x):\n    return x\n"
    same = [
        "\n\n# a comment\n" + plain,
        'def f(x):\n    """Adds one."""\n    return g(x)+1  # why\ndef g(x):\n    return (x)\n',
        "def g(x):\n    return x\ndef f(x):\n    return g(\n        x\n    ) + 1\n",
    ]
    assert {digest(tmp_path, text) for text in [plain, *same]} == {digest(tmp_path, plain)}
    assert digest(tmp_path, plain.replace("+ 1", "+ 2")) != digest(tmp_path, plain)
    assert digest(tmp_path, plain.replace("return x", "return -x")) != digest(tmp_path, plain)


SAMPLE = """
import math

RATE = 0.25

class Thing:
    def go(self, n: int, *, scale: float = 1.0) -> dict[str, float]:
        return {k: math.exp(-RATE * v) * scale for k, v in zip("ab", range(n))}

def f(p, outputs):
    try:
        x = Thing().go(p, scale=2)
    except ValueError as e:
        raise RuntimeError from e
    with open(outputs[0], "w") as out:
        out.write(f"{x!r:>10} {[i for i in range(p) if i % 2]}")
"""

DIGEST = """
import sys
from pytaskmake.codeprint import CodePrinter
space = {"__name__": "__taskfile__"}
exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), space)
print(CodePrinter(sys.argv[2]).digest(space["f"]))
"""


def other_pythons() -> list[str]:
    """Python 3 interpreters of other minor versions on this machine that run."""
    found = {shutil.which(f"python3.{minor}") for minor in range(10, 16)}
    found |= {str(p) for p in Path.home().glob(".pyenv/versions/3.1*/bin/python3")}
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    runs = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for python in sorted(p for p in found if p):
        done = subprocess.run([python, "--version"], capture_output=True, text=True)
        if done.returncode != 0 or mine in done.stdout:
            continue
        # (one without pytaskmake's dependencies installed, blake3 say, cannot take part)
        probe = [python, "-c", "import pytaskmake.codeprint"]
        if subprocess.run(probe, capture_output=True, env=env).returncode == 0:
            runs.append(python)
    return runs


def test_the_digest_is_the_same_on_every_python_3(tmp_path: Path) -> None:
    """A new Python minor version must not rerun every callable task."""
    pythons = other_pythons()
    if not pythons:
        pytest.skip("no other Python 3 minor version here that has pytaskmake's dependencies")
    path = tmp_path / "Taskfile.py"
    path.write_text(SAMPLE)
    here = digest(tmp_path, SAMPLE)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for python in pythons:
        done = subprocess.run(
            [python, "-c", DIGEST, str(path), str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert done.stdout.strip() == here, python


def test_mutual_recursion_terminates_and_each_covers_the_other(tmp_path: Path) -> None:
    text = (
        "def even(n):\n    return True if n == 0 else odd(n - 1)\n"
        "def odd(n):\n    return False if n == 0 else even(n - {k})\n"
        "def user():\n    return even(4)\n"
    )
    first = {f: digest(tmp_path, text.format(k=1), f) for f in ("even", "odd", "user")}
    second = {f: digest(tmp_path, text.format(k=2), f) for f in ("even", "odd", "user")}
    assert all(first[f] != second[f] for f in first), "an edit of odd reaches even and user"


def test_code_without_a_source_file_is_hashed_by_its_bytecode(tmp_path: Path) -> None:
    one: dict[str, Any] = {}
    two: dict[str, Any] = {}
    exec("f = lambda: 1", one)
    exec("f = lambda: 2", two)
    printer = CodePrinter(tmp_path)
    assert printer.digest(one["f"]) != printer.digest(two["f"])


def test_code_outside_the_project_is_named_not_hashed(tmp_path: Path) -> None:
    """A virtualenv inside the project is not the project's code."""
    lib = tmp_path / ".venv" / "lib" / "python3" / "site-packages"
    lib.mkdir(parents=True)
    digests = set()
    for body in ("return 1", "return 2"):
        external = load(lib, f"def helper():\n    {body}\n", "lib.py")["helper"]
        space = load(tmp_path, "def f():\n    return helper()\n")
        space["helper"] = external
        digests.add(CodePrinter(tmp_path).digest(space["f"]))
    assert len(digests) == 1


def test_an_instance_argument_covers_the_code_of_its_class(tmp_path: Path) -> None:
    text = (
        "import functools\n"
        "class P:\n    def __init__(self, v):\n        self.v = v\n"
        "    def scaled(self):\n        return self.v * {k}\n"
        "def run(p):\n    return p.scaled()\n"
        "f = functools.partial(run, P(1))\n"
    )
    assert digest(tmp_path, text.format(k=1)) != digest(tmp_path, text.format(k=2))


def test_classes_with_slots_enums_and_properties_are_hashed(tmp_path: Path) -> None:
    text = (
        "import dataclasses, enum, functools\n"
        "class Mode(enum.Enum):\n    FAST = 1\n    SLOW = 2\n"
        "@dataclasses.dataclass(slots=True, frozen=True)\n"
        "class Cfg:\n    n: int\n    mode: Mode = Mode.FAST\n"
        "    @property\n    def twice(self):\n        return self.n * {k}\n"
        "def run(cfg):\n    return cfg.twice\n"
        "f = functools.partial(run, Cfg(1, Mode.SLOW))\n"
    )
    assert digest(tmp_path, text.format(k=2)) != digest(tmp_path, text.format(k=3))


def test_a_project_module_imported_inside_the_function_counts(tmp_path: Path) -> None:
    """Even when nothing imported it yet: its source is read where it would be found."""
    text = "def f():\n    import lazyhelp\n    return lazyhelp.g()\n"
    digests = set()
    for body in ("1", "22"):
        (tmp_path / "lazyhelp.py").write_text(f"def g():\n    return {body}\n")
        digests.add(digest(tmp_path, text))
    assert len(digests) == 2


@pytest.mark.parametrize(
    "entry, files, edited",
    [
        (  # what the module imported inside the function imports in turn
            "import physics as m",
            {
                "physics.py": "from constants import RATE\ndef f():\n    return RATE\n",
                "constants.py": "RATE = {}\n",
            },
            "constants.py",
        ),
        (  # `from lib import model`: a submodule, not lib/__init__.py alone
            "from lib import model as m",
            {"lib/__init__.py": "", "lib/model.py": "def f():\n    return {}\n"},
            "lib/model.py",
        ),
        (  # a relative import in a package, inside a function of it
            "from pkg import physics as m",
            {
                "pkg/__init__.py": "",
                "pkg/physics.py": "def f():\n    from . import c\n    return c.K\n",
                "pkg/c.py": "K = {}\n",
            },
            "pkg/c.py",
        ),
    ],
    ids=["its-imports", "submodule", "relative"],
)
def test_what_a_module_imported_inside_the_function_imports_counts(
    tmp_path: Path, entry: str, files: dict[str, str], edited: str
) -> None:
    """Nothing imported it during the load: which files it would run is read from
    the import statements, as far as they reach in the project."""
    text = f"def f():\n    {entry}\n    return m.f()\n"
    digests = set()
    for value in ("1", "22"):
        for name, body in files.items():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(body.format(value) if name == edited else body)
        digests.add(digest(tmp_path, text))
    assert len(digests) == 2


def test_a_module_read_by_getattr_counts_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which member it reads is not in the code: every member counts."""
    monkeypatch.syspath_prepend(str(tmp_path))
    text = "import dynmod\ndef f(name):\n    return getattr(dynmod, name)()\n"
    digests = set()
    for body in ("1", "22"):
        (tmp_path / "dynmod.py").write_text(
            f"def a():\n    return 0\ndef b():\n    return {body}\n"
        )
        monkeypatch.delitem(sys.modules, "dynmod", raising=False)
        digests.add(digest(tmp_path, text))
    monkeypatch.delitem(sys.modules, "dynmod", raising=False)
    assert len(digests) == 2


@dataclasses.dataclass
class Point:
    x: int
    y: list[int]


class Hidden:
    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "Hidden(...)"


def _work(*args: object, **kwargs: object) -> None: ...


def sig(*args: object, **kwargs: object) -> str:
    return CodePrinter(Path(__file__).parent).digest(functools.partial(_work, *args, **kwargs))


def test_values_are_hashed_by_content_and_canonically() -> None:
    assert sig(Hidden(1)) != sig(Hidden(2)), "not by a repr that hides the value"
    assert sig(Point(1, [2])) == sig(Point(1, [2])) != sig(Point(1, [3]))
    assert sig({"a": 1, "b": 2}) == sig({"b": 2, "a": 1})
    assert sig({3, "x", (1, "y")}) == sig({(1, "y"), "x", 3}), "mixed types, any order"
    assert sig(frozenset({frozenset("ab"), frozenset("c")})) != sig(frozenset({frozenset("a")}))
    assert sig(1) != sig(1.0) != sig("1")
    assert sig([1, "a"]) == sig([1, "a"]) != sig(["a", 1]) != sig((1, "a"))
    assert sig([1.5, 2]) != sig([1.5, 2.0])
    assert sig(x=1) != sig(1)


class Counter:
    """Its state changes each time it is read: no hash of it can be trusted."""

    def __init__(self) -> None:
        self.n = 0

    def __getstate__(self) -> dict[str, int]:
        self.n += 1
        return {"n": self.n}


@pytest.mark.parametrize(
    "value, reason",
    [
        (threading.Lock(), "cannot pickle"),
        ((i for i in range(3)), "cannot pickle"),
        (Counter(), "differs from one call to the next"),
    ],
)
def test_a_value_without_a_stable_hash_is_an_error(value: object, reason: str) -> None:
    with pytest.raises(UnstableValueError, match=reason) as caught:
        sig(1, value)
    assert "argument 2 of the partial" in str(caught.value)


def test_an_lru_cached_helper_is_hashed_by_its_code(tmp_path: Path) -> None:
    text = (
        "import functools\n"
        "@functools.lru_cache\ndef helper(x):\n    return x + {k}\n"
        "def f():\n    return helper(1)\n"
    )
    assert digest(tmp_path, text.format(k=1)) != digest(tmp_path, text.format(k=2))


# --- reruns, through the CLI ----------------------------------------------------------

TASKFILE = """
import helpers
from pytaskmake import task

SCALE = {scale}

def helper(x):
    return x + {local}

def log(name):
    with open("runs.log", "a") as f:
        f.write(name + "\\n")

def local(outputs):
    log("local")
    open(outputs[0], "w").write(str(helper(1)))

def module(outputs):
    log("module")
    open(outputs[0], "w").write(str(helpers.model(2)))

def constant(outputs):
    log("constant")
    open(outputs[0], "w").write(str(SCALE))

task("local", local, outputs=["local.txt"])
task("module", module, outputs=["module.txt"])
task("constant", constant, outputs=["constant.txt"])
"""

HELPERS = """
import physics

RATE = {rate}

def model(p):
    return {model}

def unused():
    return {unused}
"""

PHYSICS = """
def step(p):
    return p + {step}
"""


def write_sources(project: Project, **values: object) -> None:
    v = {"scale": 1, "local": 1, "rate": 2, "model": "physics.step(p) * RATE", "unused": 0}
    v.update({"step": 1}, **values)
    project.write("Taskfile.py", TASKFILE.format(**v))
    project.write("helpers.py", HELPERS.format(**v))
    project.write("physics.py", PHYSICS.format(**v))


def test_edits_of_code_and_constants_a_callable_reaches_rerun_exactly_its_task(
    project: Project,
) -> None:
    write_sources(project)
    build(project)
    assert sorted(runs(project)) == ["constant", "local", "module"]
    # (each edit changes the file's size: Python would run a module's bytecode cached
    # from an edit of the same size made in the same second)
    steps: list[tuple[dict[str, object], list[str], str, str]] = [
        ({"local": 20}, ["local"], "local.txt", "21"),  # a Taskfile function it calls
        ({"step": 20}, ["module"], "module.txt", "44"),  # a function a project module calls
        ({"model": "physics.step(p) * RATE + 1"}, ["module"], "module.txt", "45"),  # the module
        ({"rate": 30}, ["module"], "module.txt", "661"),  # a constant of that module
        ({"scale": 50}, ["constant"], "constant.txt", "50"),  # a Taskfile constant
        ({"unused": 10}, [], "module.txt", "661"),  # a function nothing calls
    ]
    values: dict[str, object] = {}
    for change, expected, path, content in steps:
        values.update(change)
        write_sources(project, **values)
        build(project)
        assert runs(project) == expected, change
        assert project.read(path) == content, change


def test_docstring_comment_and_layout_edits_rerun_nothing(project: Project) -> None:
    write_sources(project)
    build(project)
    runs(project)
    taskfile = (
        project.read("Taskfile.py")
        .replace(
            "def helper(x):\n", 'def helper(x):\n    """Shifted by one."""  # for the figure\n'
        )
        .replace("def local(outputs):\n", 'def local(outputs):\n    """The task itself."""\n')
    )
    taskfile = "# the sweep of chapter 3\n\n" + taskfile.replace("x + 1", "(x+1)")
    project.write("Taskfile.py", taskfile)
    project.write(
        "helpers.py",
        '"""Models."""\n'
        + project.read("helpers.py").replace(
            "def model(p):\n", 'def model(\n    p,\n):\n    """The model."""\n'
        ),
    )
    build(project)
    assert runs(project) == []


VALUES = """
import functools
from pytaskmake import task

class Params:
    def __init__(self, rate):
        self.rate = rate
    def __repr__(self):
        return "Params(...)"

def work(params, outputs):
    with open("runs.log", "a") as f:
        f.write("work\\n")
    open(outputs[0], "w").write(str(params.rate))

task("work", functools.partial(work, Params({rate})), outputs=["w.txt"])
"""


def test_an_argument_whose_repr_hides_its_value_reruns_when_it_changes(project: Project) -> None:
    project.taskfile(VALUES.format(rate=1))
    build(project)
    build(project)
    assert runs(project) == ["work"]
    project.taskfile(VALUES.format(rate=2))
    build(project)
    assert runs(project) == ["work"] and project.read("w.txt") == "2"


DATACLASS = """
import dataclasses, functools
from pytaskmake import task

@dataclasses.dataclass(frozen=True)
class Params:
    rate: float
    tags: frozenset[str] = frozenset()

def work(params: Params, outputs: list[str]) -> None:
    with open("runs.log", "a") as f:
        f.write("work\\n")
    open(outputs[0], "w").write(str(params.rate))

task("work", functools.partial(work, Params({rate}, frozenset({{"a", "b"}}))), outputs=["w.txt"])
"""


def test_a_dataclass_declared_in_the_taskfile_is_an_argument_by_its_fields(
    project: Project,
) -> None:
    """(Loading such a Taskfile failed: it was compiled with pytaskmake's own
    `from __future__ import annotations`, and dataclasses then look for the module.)"""
    project.taskfile(DATACLASS.format(rate=1.5))
    build(project)
    build(project)
    assert runs(project) == ["work"]
    project.taskfile(DATACLASS.format(rate=2.5))
    build(project)
    assert runs(project) == ["work"] and project.read("w.txt") == "2.5"


ARRAY = """
import functools
import numpy as np
from pytaskmake import task

ARR = np.zeros(10000)
ARR[7777] = {value}

def work(arr, outputs):
    with open("runs.log", "a") as f:
        f.write("work\\n")
    open(outputs[0], "w").write(str(arr.sum()))

task("work", functools.partial(work, ARR), outputs=["w.txt"])
"""


def test_one_element_of_a_large_numpy_array_argument_reruns(project: Project) -> None:
    pytest.importorskip("numpy")
    project.taskfile(ARRAY.format(value=1))
    build(project)
    build(project)
    assert runs(project) == ["work"]
    project.taskfile(ARRAY.format(value=2))
    build(project)
    assert runs(project) == ["work"] and project.read("w.txt") == "2.0"


def test_set_arguments_do_not_rerun_in_a_new_process(project: Project) -> None:
    """Sets iterate in an order that depends on the hash seed of each process."""
    names = [f"point{i}" for i in range(12)]
    project.taskfile(
        f"""
        import functools
        def work(tags, table, mixed, outputs):
            with open("runs.log", "a") as f:
                f.write("work\\n")
            open(outputs[0], "w").write(" ".join(sorted(tags)))
        task("work", functools.partial(work, {set(names)!r}, {{"tags": {frozenset(names)!r}}},
                                       {{1, "a", ("b", 2)}}), outputs=["w.txt"])
        """
    )
    for seed in ("1", "2", "3"):
        result = project.run(PYTHONHASHSEED=seed)
        assert result.returncode == 0, result.stdout + result.stderr
    assert runs(project) == ["work"]


@pytest.mark.parametrize(
    "declaration, named",
    [
        ('functools.partial(work, open("data.txt"))', "argument 1 of the partial"),
        ("lambda outputs, lock=threading.Lock(): work(lock, outputs)", "the default of 'lock'"),
        ("lambda outputs: work(SOURCE, outputs)", "global 'SOURCE'"),
    ],
)
def test_an_argument_without_a_stable_hash_is_a_one_line_error(
    project: Project, declaration: str, named: str
) -> None:
    project.write("data.txt", "1\n")
    project.taskfile(
        f"""
        import functools, threading
        SOURCE = (line for line in open("data.txt"))
        def work(value, outputs):
            open(outputs[0], "w").write("done")

        task("bad", {declaration},
             outputs=["b.txt"])
        """
    )
    result = build(project, code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Taskfile.py:8: task 'bad':" in lines[0] and named in lines[0], lines[0]
    assert "cannot be hashed stably" in lines[0]
    assert not project.exists("b.txt")


def test_imports_inside_callables_in_every_shape_rerun_their_task(project: Project) -> None:
    """Each task imports its module when it runs, in one shape; editing the file
    behind it reruns that task alone (a plain `import a.b.c`, a submodule of a
    package the load imported, a relative import in a package's function, a module
    of a package imported with *, a module of a src/ folder the Taskfile put on
    sys.path)."""
    files = {
        "a/__init__.py": "",
        "a/b/__init__.py": "",
        "a/b/c.py": "V = 1\n",
        "pkg/__init__.py": "",
        "pkg/sub.py": "V = 1\n",
        "pkg/tasks.py": "def f():\n    from .physics import V\n    return V\n",
        "pkg/physics.py": "V = 1\n",
        "star/__init__.py": "from .inner import *\n",
        "star/inner.py": "V = 1\n",
        "uses_star.py": "from star import *\n",
        "src/srcmod.py": "V = 1\n",
    }
    for name, text in files.items():
        project.write(name, text)
    project.taskfile(
        """
        import os, sys
        import pkg
        from pkg.tasks import f as relative
        sys.path.insert(0, os.path.abspath("src"))
        def plain(outputs):
            import a.b.c
            open(outputs[0], "w").write(str(a.b.c.V))
        def submodule(outputs):
            from pkg import sub
            open(outputs[0], "w").write(str(sub.V))
        def rel(outputs):
            open(outputs[0], "w").write(str(relative()))
        def star(outputs):
            import uses_star
            open(outputs[0], "w").write(str(uses_star.V))
        def src(outputs):
            import srcmod
            open(outputs[0], "w").write(str(srcmod.V))
        for t in (plain, submodule, rel, star, src):
            task(t.__name__, t, outputs=[t.__name__ + ".txt"])
        """
    )
    build(project)
    edits = {
        "plain": "a/b/c.py",
        "submodule": "pkg/sub.py",
        "rel": "pkg/physics.py",
        "star": "star/inner.py",
        "src": "src/srcmod.py",
    }
    for name, path in edits.items():
        project.write(path, "V = 2\n")
        result = build(project)
        assert ran(result) == [name], (path, result.stdout)
        assert project.read(name + ".txt") == "2"


def test_a_function_300_elifs_deep_is_read_without_a_recursion_error(tmp_path: Path) -> None:
    """An elif chain is a tree as deep as it is long: read with a stack, its text
    still changes with any branch."""
    branches = "".join(f"    elif x == {i}:\n        return {i}\n" for i in range(1, 300))
    digests = set()
    for last in ("299", "-1"):
        table = "def g(x):\n    if x == 0:\n        return 0\n" + branches.replace(
            "return 299", f"return {last}"
        )
        (tmp_path / "table.py").write_text(table)
        digests.add(digest(tmp_path, "def f():\n    from table import g\n    return g(5)\n"))
    assert len(digests) == 2
