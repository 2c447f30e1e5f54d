"""Property: an incremental build is correct and minimal, for random DAGs and edits.

Hypothesis draws a DAG of 3-10 tasks (each reads some sources and some earlier
tasks' outputs; shell commands, or Python callables that call a project module,
`helpers.py`, and take an argument) and a sequence of steps; each step edits
sources, touches files (mtime only), deletes or overwrites outputs, edits the helper
module (a function the callables call, or one nothing calls), changes a callable's
argument, edits an input while its task runs, or does nothing, then builds with the
real CLI. A Python model of the DAG says, after every build:

* correctness: every output equals what a from-scratch build would produce, except
  the output of a task whose input was edited while it ran (it is left stale);
* minimality: a task ran iff it never ran, its output is missing or was changed
  outside the build, one of its inputs' *content* differs from its last run, or
  (a callable) the helper it calls or its argument changed. So a touch reruns
  nothing, editing a helper function nothing calls reruns nothing, and a task whose
  upstream reran but produced the same bytes does not run (early cutoff: `wc -l`
  and `head -n 1` tasks make that common).

With the run cache on, a stale task whose (action, input contents) ran before must be
restored from the cache instead of run, except the run during which an input was
edited, which is never cached; the model tracks that too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pytaskmake.cli import parser

_HELP = parser().format_help()
CACHE = "--no-cache" in _HELP and "--cache-dir" in _HELP
SOURCES = 3
LIVE = SOURCES  # src/s3.txt: read by t0 only, which edits it while it runs when asked
KINDS = ("cat", "lines", "head")
ARGS = ("", "p\n", "q\n")  # a callable's argument (appended to what it writes)
# what helpers.tag() returns (appended too); of different lengths, as Python would run
# bytecode cached from an edit of the same size made in the same second
TAGS = ("", "h\n", "gg\n")
UNUSED = ("", "u" * 10, "v" * 20)  # what helpers.unused() returns (no sum of lengths twice)


@dataclass(frozen=True)
class Spec:
    kind: str  # cat: concatenation; lines: line count; head: first line
    inputs: tuple[str, ...]
    python: bool = False  # a callable calling helpers.apply and helpers.tag


def source(j: int) -> str:
    return f"src/s{j}.txt"


def output(i: int) -> str:
    return f"out/t{i}.txt"


def apply(kind: str, contents: list[str]) -> str:
    """What a task's command writes, computed in Python."""
    data = "".join(contents)
    if kind == "cat":
        return data
    if kind == "lines":
        return f"{data.count(chr(10))}\n"
    return data.splitlines(keepends=True)[0] if data else ""


def command(i: int, spec: Spec) -> str:
    ins, out = " ".join(spec.inputs), output(i)
    body = {
        "cat": f"cat {ins} > {out}",
        "lines": f"cat {ins} | wc -l | tr -d ' ' > {out}",
        "head": f"cat {ins} | head -n 1 > {out}",
    }[spec.kind]
    if i == 0:  # the edit "while it runs": after it read its inputs, before it ends
        body += f'; if [ -f "$PTM_MIDRUN" ]; then cat "$PTM_MIDRUN" > {source(LIVE)}; fi'
    return f"{body}; echo t{i} >> runs.log"


CALLABLE = """
import functools
import helpers

def run(kind, name, arg, inputs, outputs):
    data = "".join(open(path).read() for path in inputs)
    open(outputs[0], "w").write(helpers.apply(kind, data) + helpers.tag() + arg)
    with open("runs.log", "a") as log:
        log.write(name + "\\n")
"""


def taskfile(specs: list[Spec], args: dict[int, str] | None = None) -> str:
    lines = ["from pytaskmake import task", CALLABLE]
    for i, spec in enumerate(specs):
        action = command(i, spec)
        if spec.python:
            arg = (args or {}).get(i, "")
            action = f"functools.partial(run, {spec.kind!r}, 't{i}', {arg!r})"
        else:
            action = repr(action)
        lines.append(
            f"task('t{i}', {action}, inputs={list(spec.inputs)!r}, outputs=[{output(i)!r}])"
        )
    return "\n".join(lines) + "\n"


def helpers(tag: str, unused: str) -> str:
    return (
        "def apply(kind, data):\n"
        "    if kind == 'cat':\n"
        "        return data\n"
        "    if kind == 'lines':\n"
        '        return f"{data.count(chr(10))}\\n"\n'
        "    return data.splitlines(keepends=True)[0] if data else ''\n"
        f"def tag():\n    return {tag!r}\n"
        f"def unused():\n    return {unused!r}\n"
    )


# ---------------------------------------------------------------- strategies

contents = st.lists(st.sampled_from("abc"), max_size=3).map(lambda xs: "\n".join(xs + [""]))


@st.composite
def dags(draw: st.DrawFn) -> list[Spec]:
    specs = []
    for i in range(draw(st.integers(3, 10))):
        available = [source(j) for j in range(SOURCES)] + [output(k) for k in range(i)]
        inputs = draw(st.lists(st.sampled_from(available), min_size=1, max_size=3, unique=True))
        if i == 0:
            inputs.append(source(LIVE))
        python = i > 0 and draw(st.booleans())
        specs.append(Spec(draw(st.sampled_from(KINDS)), tuple(inputs), python))
    return specs


Op = tuple[object, ...]


def ops(tasks: int) -> st.SearchStrategy[Op]:
    files = st.one_of(st.integers(0, LIVE).map(source), st.integers(0, tasks - 1).map(output))
    return st.one_of(
        st.tuples(st.just("edit"), st.integers(0, LIVE), contents),
        st.tuples(st.just("touch"), files, st.sampled_from([-3600, -2, 1, 7, 86400])),
        st.tuples(st.just("delete"), st.integers(0, tasks - 1)),
        st.tuples(st.just("clobber"), st.integers(0, tasks - 1), st.sampled_from(["", "z\n"])),
        st.tuples(st.just("helper"), st.sampled_from(TAGS)),
        st.tuples(st.just("unused"), st.sampled_from(UNUSED)),
        st.tuples(st.just("arg"), st.integers(0, tasks - 1), st.sampled_from(ARGS)),
        st.tuples(st.just("midrun"), contents),
        st.tuples(st.just("noop")),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Spec], list[str], list[list[Op]], bool]:
    specs = draw(dags())
    initial = [draw(contents) for _ in range(LIVE + 1)]
    steps = draw(st.lists(st.lists(ops(len(specs)), min_size=1, max_size=3), max_size=4))
    use_cache = draw(st.booleans()) if CACHE else False
    return specs, initial, steps, use_cache


# ---------------------------------------------------------------- the model


@dataclass
class Model:
    """The files as they are, and what each task consumed and produced when it last ran."""

    specs: list[Spec]
    sources: list[str]
    use_cache: bool
    outputs: dict[str, str] = field(default_factory=dict)  # existing outputs
    last: dict[int, tuple[object, ...]] = field(default_factory=dict)  # inputs, signature
    produced: dict[int, str] = field(default_factory=dict)
    cache: dict[tuple[int, tuple[object, ...]], str] = field(default_factory=dict)
    poisoned: set[str] = field(default_factory=set)  # blobs maybe edited via a hard link
    tag: str = ""  # what helpers.tag() returns
    unused: str = ""  # what helpers.unused() returns (nothing calls it)
    args: dict[int, str] = field(default_factory=dict)  # callable arguments
    midrun: str | None = None  # what t0 writes into src/s3.txt while it runs, this build
    fresh: int = 0  # contents of src/s3.txt never seen before (so t0 must run)

    def content(self, path: str) -> str:
        if path.startswith("src/"):
            return self.sources[int(path[5:-4])]
        return self.outputs[path]

    def signature(self, i: int) -> tuple[str, str] | None:
        """What a callable's signature depends on, besides its code: the helper it
        calls and its argument."""
        return (self.tag, self.args.get(i, "")) if self.specs[i].python else None

    def build(self) -> tuple[set[str], set[str], set[str]]:
        """Tasks that must run, must be restored, and may do either."""
        ran: set[str] = set()
        restored: set[str] = set()
        either: set[str] = set()
        rebuilt: set[int] = set()
        for i, spec in enumerate(self.specs):
            out = output(i)
            now = (*((p, self.content(p)) for p in spec.inputs), self.signature(i))
            stale = (
                i not in self.last
                or self.outputs.get(out) != self.produced[i]
                or now != self.last[i]
            )
            if not stale:
                if any(p == output(k) for k in rebuilt for p in spec.inputs):
                    event("early cutoff: an input's task reran, same bytes")
                continue
            rebuilt.add(i)
            result = apply(spec.kind, [self.content(p) for p in spec.inputs])
            if spec.python:
                result += self.tag + self.args.get(i, "")
            key = (i, now)
            if not self.use_cache or key not in self.cache:
                ran.add(f"t{i}")
            elif self.cache[key] in self.poisoned:
                either.add(f"t{i}")  # a corrupt blob is detected and the task run instead
            else:
                restored.add(f"t{i}")
                event("restored from the run cache")
            self.outputs[out] = self.produced[i] = result
            self.last[i] = now  # the inputs as they were before it ran
            edited = i == 0 and self.midrun is not None and f"t{i}" in ran
            if self.use_cache and not edited:  # what ran while an input moved: not cached
                self.cache[key] = result
            if edited:
                self.edited_while_running()
        return ran, restored, either

    def edited_while_running(self) -> None:
        """t0 rewrote src/s3.txt (read by no other task) while it ran."""
        assert self.midrun is not None
        self.sources[LIVE], self.midrun = self.midrun, None
        event("an input edited while its task ran")


def perform(op: Op, model: Model, root: Path) -> None:
    kind = op[0]
    event(f"step: {kind}")
    if kind in ("helper", "unused"):
        setattr(model, "tag" if kind == "helper" else "unused", str(op[1]))
        (root / "helpers.py").write_text(helpers(model.tag, model.unused))
    elif kind == "arg":
        model.args[int(str(op[1]))] = str(op[2])
        (root / "Taskfile.py").write_text(taskfile(model.specs, model.args))
    elif kind == "midrun":  # t0 must run (a new src/s3.txt), and edits it meanwhile
        model.fresh += 1
        model.sources[LIVE] = f"fresh {model.fresh}\n"
        (root / source(LIVE)).write_text(model.sources[LIVE])
        model.midrun = str(op[1])
    elif kind == "edit":
        j, text = op[1], op[2]
        assert isinstance(j, int) and isinstance(text, str)
        (root / source(j)).write_text(text)
        model.sources[j] = text
    elif kind == "touch":
        path, shift = root / str(op[1]), op[2]
        assert isinstance(shift, int)
        if path.exists():
            mtime = path.stat().st_mtime_ns + shift * 1_000_000_000
            os.utime(path, ns=(mtime, mtime))
    elif kind == "delete":
        out = output(int(str(op[1])))
        if out in model.outputs:
            (root / out).unlink()
            del model.outputs[out]
    elif kind == "clobber":  # edited in place, as an editor without atomic save would
        out, text = output(int(str(op[1]))), str(op[2])
        if out in model.outputs:
            model.poisoned.add(model.outputs[out])
        with open(root / out, "w") as f:
            f.write(text)
        model.outputs[out] = text


def run_build(root: Path, use_cache: bool, midrun: Path) -> tuple[set[str], set[str], str]:
    """Build with the real CLI; returns (tasks that ran, tasks restored, stdout).
    t0 copies `midrun`, when it exists, into its input src/s3.txt while it runs."""
    (root / "runs.log").write_text("")
    flags = ["--cache-dir", str(root / ".pytaskmake" / "cache")] if use_cache else []
    if CACHE and not use_cache:
        flags = ["--no-cache"]
    env = {k: v for k, v in os.environ.items() if k != "PYTASKMAKE_CACHE_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "pytaskmake", "-j2", *flags],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "NO_COLOR": "1", "PTM_MIDRUN": str(midrun)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ran = (root / "runs.log").read_text().split()
    assert len(ran) == len(set(ran)), f"a task ran twice: {ran}"
    return set(ran), set(re.findall(r"\] restored (\S+)", result.stdout)), result.stdout


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_incremental_build_is_correct_and_minimal(
    scenario: tuple[list[Spec], list[str], list[list[Op]], bool],
) -> None:
    specs, initial, steps, use_cache = scenario
    with tempfile.TemporaryDirectory(prefix="ptm-prop-") as tmp:
        root = Path(tmp) / "project"  # the mid-run edit's text is kept outside it
        midrun = Path(tmp) / "midrun.txt"
        (root / "src").mkdir(parents=True)
        (root / "Taskfile.py").write_text(taskfile(specs))
        (root / "helpers.py").write_text(helpers("", ""))
        for j, text in enumerate(initial):
            (root / source(j)).write_text(text)
        model = Model(specs, list(initial), use_cache)
        history = textwrap.indent(taskfile(specs), "    ")
        for number, step in enumerate([[], *steps]):
            for op in step:
                perform(op, model, root)
            if model.midrun is not None:
                midrun.write_text(model.midrun)
            history += f"step {number}: {step}\n"
            must_run, must_restore, may_either = model.build()
            ran, restored, stdout = run_build(root, use_cache, midrun)
            if model.midrun is not None and "t0" in ran:  # it ran though it might not
                model.edited_while_running()
            model.midrun = None
            midrun.unlink(missing_ok=True)
            where = f"\n{history}stdout:\n{stdout}"
            assert not ran & restored, where
            assert must_run <= ran, f"stale tasks not run: {must_run - ran}{where}"
            assert must_restore <= restored, f"not restored: {must_restore - restored}{where}"
            extra = (ran | restored) - (must_run | must_restore | may_either)
            assert not extra, f"ran although up to date: {sorted(extra)}{where}"
            for i in range(len(specs)):
                actual = (root / output(i)).read_text()
                assert actual == model.outputs[output(i)], f"wrong {output(i)}{where}"
