"""Declaring tasks and loading a Taskfile.py.

A Taskfile is plain Python: `task()` calls (often inside for-loops) append to the
registry of the file being loaded. Mistakes are reported as TaskfileError with the
file and line of the offending call, never as a traceback into pytaskmake.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from . import collector
from .action import Action, CallableAction, ShellAction, make_action
from .errors import TaskfileError
from .params import check_all_asked
from .placeholders import expand_argv, expand_command, has_placeholder
from .resources import AUTO, parse_cpus, parse_mem, parse_named

PathLike = str | os.PathLike[str]


class Task:
    """One unit of work: an action that turns input files into output files.

    A sweep declares 200,000 of these, so they are kept small: a shell command is
    kept as its string (`action` wraps it on each use), and the fields most tasks
    leave at their defaults (log, timeout, retries, cache) share one tuple.
    """

    __slots__ = ("name", "_action", "inputs", "outputs", "deps", "where", "_extra")

    def __init__(
        self,
        name: str,
        action: Action | str,
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        deps: tuple[str, ...] = (),
        log: str | None = None,
        timeout: float | None = None,
        retries: int = 0,
        cache: bool = True,
        where: str = "",  # "Taskfile.py:12", for messages
    ) -> None:
        # (task()'s common path sets these slots itself, without calling this)
        self.name = name
        if type(action) is ShellAction and type(action.command) is str:
            action = action.command  # (a str subclass stays wrapped: see `action`)
        self._action = action
        self.inputs, self.outputs, self.deps, self.where = inputs, outputs, deps, where
        self._extra = _DEFAULTS
        if log is not None or timeout is not None or retries != 0 or cache is not True:
            self._extra = (log, timeout, retries, cache, *_DEFAULTS[4:])

    @property
    def action(self) -> Action:
        action = self._action
        return ShellAction(action) if type(action) is str else action  # type: ignore[return-value]

    @property
    def signature(self) -> str:
        """Its action's signature, without building the action (see action.py)."""
        action = self._action
        return ShellAction.PREFIX + action if type(action) is str else action.signature  # type: ignore[union-attr]

    @property
    def log(self) -> str | None:
        return self._extra[0]

    @property
    def timeout(self) -> float | None:
        return self._extra[1]

    @property
    def retries(self) -> int:
        return self._extra[2]

    @property
    def cache(self) -> bool:
        return self._extra[3]

    @property
    def implicit(self) -> tuple[str, ...]:
        """The inputs found on its command line rather than declared (see implicit.py);
        they are also in `inputs`."""
        return self._extra[5]

    @property
    def implicit_allowed(self) -> bool:
        return self._extra[4]

    @property
    def trace(self) -> bool:
        """Trace its runs and record the files they read as its inputs (tracing.py)."""
        return self._extra[6]

    @property
    def depfile(self) -> str | None:
        """A Makefile-syntax file it writes listing what it read (gcc -MD -MF)."""
        return self._extra[7]

    @property
    def always(self) -> bool:
        """Runs on every build (a phony target), whatever its files say."""
        return self._extra[8]

    @property
    def scheduling(self) -> tuple[int, int, tuple[tuple[str, float], ...], float] | None:
        """(cpus, mem, resources, priority) when it declared any, else None."""
        return self._extra[9]

    @property
    def cpus(self) -> int:
        """Slots of -j it holds while it runs (see resources.py)."""
        sched = self._extra[9]
        return 1 if sched is None else sched[0]

    @property
    def mem(self) -> int:
        """Bytes of memory it declared, or resources.AUTO: its recorded peak."""
        sched = self._extra[9]
        return AUTO if sched is None else sched[1]

    @property
    def resources(self) -> tuple[tuple[str, float], ...]:
        """Named resources it holds while it runs, as sorted (name, amount) pairs."""
        sched = self._extra[9]
        return () if sched is None else sched[2]

    @property
    def priority(self) -> float:
        """Higher starts first among ready tasks (before the critical path decides)."""
        sched = self._extra[9]
        return 0 if sched is None else sched[3]

    def _set_scheduling(
        self, cpus: int, mem: int, resources: tuple[tuple[str, float], ...], priority: float
    ) -> None:
        """Set what it holds and its priority (checked by the caller)."""
        self._extra = (*self._extra[:9], (cpus, mem, resources, priority))

    def _set_limits(self, timeout: float | None, retries: int, cache: bool) -> None:
        """Set the run limits (checked by the caller)."""
        self._extra = (self.log, timeout, retries, cache, *self._extra[4:])

    def _set_always(self) -> None:
        self._extra = (*self._extra[:8], True, *self._extra[9:])

    def _set_implicit(self, allowed: bool, found: tuple[str, ...] = ()) -> None:
        """While loading: whether to look for implicit inputs, and those found."""
        self._extra = (*self._extra[:4], allowed, found, *self._extra[6:])
        self.inputs += found

    def _set_discovery(self, trace: bool, depfile: str | None) -> None:
        """While loading: trace=True and depfile= (checked by the caller)."""
        self._extra = (*self._extra[:6], trace, depfile, *self._extra[8:])

    def depends_on(self, *tasks: Task | str) -> Task:
        """Run after `tasks` even though no file links them; returns self for chaining."""
        self.deps += tuple(_task_name(other, self.name, self.where) for other in tasks)
        return self

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


# log, timeout, retries, cache, implicit inputs allowed, implicit inputs of most tasks,
# trace, depfile, always, scheduling (cpus, mem, resources, priority) or None: one
# slot, memory learned, priority 0
_DEFAULTS = (None, None, 0, True, True, (), False, None, False, None)


def declared_rows(tasks: Iterable[Task]) -> list[tuple[object, ...]]:
    """Per task, what the graph and the rebuilder read of its declaration: (name,
    signature, inputs, outputs, deps, log). The snapshot digests these for every
    task of a Taskfile edit; read here, without a property call per field, they
    take half the time (~4 ms at 20,000 tasks)."""
    prefix = ShellAction.PREFIX
    return [
        (
            t.name,
            prefix + a if type(a := t._action) is str else a.signature,  # type: ignore[union-attr]
            t.inputs,
            t.outputs,
            t.deps,
            t._extra[0],
        )
        for t in tasks
    ]


_new_task = object.__new__  # (a sweep's 200,000 tasks made without __init__: ~5% of a load)


class Registry:
    """The tasks declared by one Taskfile, in declaration order.

    Read-only once the load is over (`finish`): the graph, the rebuilder and the
    engine read the declarations and never change them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tasks: dict[str, Task] = {}
        self.taskfile = str(root / "Taskfile.py")
        self.unchecked: list[Task] = []  # declared the common way: paths checked in bulk
        self.unsigned: list[Task] = []  # callable tasks: signed once the Taskfile has run
        # id(a file's globals) -> (those globals, line -> "Taskfile.py:12"): a loop
        # declares thousands of tasks from one line; emptied once the load is done,
        # so that nothing of the Taskfile's is pinned
        self.where: Lines = {}
        # called when the Taskfile may write a file while it loads (see _audit)
        self.on_write: Callable[[], None] | None = None
        # what the load read besides the Taskfile, for a watcher (load_taskfile(track=True)):
        # project-local modules it imported and files it opened, folders it listed (globs)
        self.modules: set[str] = set()
        self.listed: set[str] | None = None
        self.warnings: list[str] = []  # said to the user; the load goes on
        self.has_always = False  # a task says always=True (no snapshot can say "no-op")
        self.has_trace = False  # a task says trace=True (tracing.wrap)
        self.given: dict[str, str] = {}  # NAME=value from the command line (params.py)
        self.asked: dict[str, str] = {}  # names param() was called with -> where

    def finish(self) -> None:
        """Check the paths declared in bulk, then add the implicit inputs (the
        declarations are final from here on)."""
        from .implicit import add_implicit_inputs

        self.where = {}
        self.check_paths()
        self.sign_callables()
        add_implicit_inputs(list(self.tasks.values()), self.root)
        self._warn_fileless()

    def _warn_fileless(self) -> None:
        """A task with neither inputs nor outputs runs once, ever: rarely what is meant."""
        fileless = [t for t in self.tasks.values() if not (t.inputs or t.outputs or t.always)]
        if not fileless:
            return
        first = fileless[0]
        others = f" (and {len(fileless) - 1} more)" if len(fileless) > 1 else ""
        self.warnings.append(
            f"task {first.name!r} ({first.where}){others} has neither inputs nor outputs: it "
            "runs once and never again; give it always=True to run it on every build, or "
            "declare its files"
        )

    def sign_callables(self) -> None:
        """Sign the callable actions now that the Taskfile has run: the globals,
        closures and arguments they reach are then what their runs will see, and one
        printer's memo serves them all (codeprint.py)."""
        tasks, self.unsigned = self.unsigned, []
        if not tasks:
            return
        from .codeprint import CodePrinter  # (only a Taskfile with callables needs it)

        printer = CodePrinter(self.root)
        for t in tasks:
            t._action.sign(printer, t.name, t.where)  # type: ignore[union-attr]
        self.modules.update(printer.unimported_files)

    def refuse_twice(self, new: Task, where: str) -> None:
        """`new` has the name of a task declared before it."""
        first = self.tasks[new.name].where
        raise TaskfileError(
            f"task {new.name!r} is declared twice (first at {first})", *_split_where(where)
        )

    def check_paths(self) -> None:
        """Check the paths of tasks declared the common way, many tasks per C call.

        A sweep declares 200,000 tasks of plain relative paths; checking each path
        in Python as it is declared was most of loading the Taskfile. Here the paths
        of 4,096 tasks are joined and searched once; only a chunk holding an unusual
        path (absolute, ./, .., not a string) is checked task by task.
        """
        tasks, self.unchecked = self.unchecked, []
        for start in range(0, len(tasks), 4096):
            chunk = tasks[start : start + 4096]
            if _all_plain(chunk):
                for t in _unusual(chunk):
                    _check_plain_task(t)
            else:
                for t in chunk:
                    _recheck_task(self.root, t)


def _unusual(tasks: list[Task]) -> list[Task]:
    """The tasks _check_plain_task would change or refuse: a repeated input, several
    outputs, or an output among the inputs; most tasks of a sweep are none of these."""
    return [
        t
        for t in tasks
        if (
            (n := len(t.inputs)) > 1
            and (t.inputs[0] == t.inputs[1] if n == 2 else len(set(t.inputs)) != n)
        )
        or (t.outputs and (len(t.outputs) > 1 or t.outputs[0] in t.inputs))
    ]


# The registry of the Taskfile being loaded, set only for the length of a load
# (a context variable: a watcher thread may load while another thread builds).
_loading: ContextVar[Registry | None] = ContextVar("pytaskmake_loading", default=None)


def task(
    name: str,
    action: str | list[str] | tuple[str, ...] | Callable[..., Any],
    inputs: Iterable[PathLike] = (),
    outputs: Iterable[PathLike] = (),
    deps: Iterable[Task | str] = (),
    log: PathLike | None = None,
    *,
    timeout: float | None = None,
    retries: int = 0,
    cache: bool = True,
    implicit_inputs: bool = True,
    always: bool = False,
    trace: bool = False,
    depfile: PathLike | None = None,
    cpus: int = 1,
    mem: int | str | None = None,
    resources: dict[str, float] | None = None,
    priority: float = 0,
) -> Task:
    """Declare a task of the Taskfile being loaded and return it.

    `action` is a shell command string, an argv list, or a Python callable (which
    may accept `inputs` and `outputs` keyword arguments). Paths are relative to
    the Taskfile's directory; output directories are created before the task runs.
    Project files its command line names are inputs too, unless `implicit_inputs`
    is False (see implicit.py). `{inputs}`, `{outputs}`, `{inputs[0]}` and, when
    inputs or outputs are given as a dict, `{inputs.NAME}` in a command expand to
    the paths, shell-quoted (see placeholders.py). `always`: run on every build.
    `trace`: record the files its runs read as its inputs (tracing.py); `depfile`:
    record those its depfile lists (depfile.py). `cpus`, `mem` ("4G"; default: its
    recorded peak) and `resources` ({"gpu": 1}) are what it holds while it runs;
    among ready tasks a higher `priority` starts first (see scheduler.py).
    """
    registry = _loading.get() or _registry()
    frame = sys._getframe(1)
    # a loop declares thousands of tasks from one line; keyed by the caller's globals
    # (a file's), as reading frame.f_code is an audit event: with the prefetch's audit
    # hook installed, one hook call per task cost ~0.3 s of a 100,000-point load
    file = frame.f_globals
    known = registry.where.get(id(file))
    where = known[1].get(frame.f_lineno) if known is not None and known[0] is file else None
    if where is None:
        where = _caller_location(frame, registry.where)
    if (
        type(action) is str
        and type(name) is str
        and (type(inputs) is list or type(inputs) is tuple)
        and (type(outputs) is list or type(outputs) is tuple)
        and not deps
        and log is None
        and timeout is None
        and type(retries) is int
        and retries == 0
        and cache is True
        and implicit_inputs is True
        and always is False
        and "{" not in action
        and trace is False
        and depfile is None
        and cpus == 1
        and mem is None
        and resources is None
        and priority == 0
        and name
        and "\0" not in name
        and action
        and not action.isspace()
    ):  # the sweep's shape: its paths are checked in bulk once the Taskfile has run
        new = _new_task(Task)  # (Task.__init__'s checks are all known to pass here)
        new.name, new._action, new.deps, new.where, new._extra = name, action, (), where, _DEFAULTS
        new.inputs, new.outputs = tuple(inputs), tuple(outputs)
        registry.unchecked.append(new)
    else:
        try:
            new = _build_task(registry.root, name, action, inputs, outputs, deps, log, where)
            if timeout is not None or retries != 0 or cache is not True:
                new._set_limits(*_check_limits(name, timeout, retries, cache))
            if implicit_inputs is not True:
                new._set_implicit(bool(implicit_inputs))
            if always:
                new._set_always()
                registry.has_always = True
            if type(new._action) is CallableAction:
                registry.unsigned.append(new)
            if trace is not False or depfile is not None:
                new._set_discovery(*_check_discovery(registry.root, new, trace, depfile))
                registry.has_trace = registry.has_trace or new.trace
            if cpus != 1 or mem is not None or resources is not None or priority != 0:
                new._set_scheduling(*_check_scheduling(name, cpus, mem, resources, priority))
        except (TypeError, ValueError) as exc:
            raise TaskfileError(str(exc), *_split_where(where)) from None
    if registry.tasks.setdefault(name, new) is not new:
        registry.refuse_twice(new, where)
    return new


def _build_task(
    root: Path,
    name: object,
    action: object,
    inputs: Iterable[PathLike],
    outputs: Iterable[PathLike],
    deps: Iterable[Task | str],
    log: PathLike | None,
    where: str,
) -> Task:
    if type(name) is not str or not name or "\0" in name:
        if not isinstance(name, str) or not name:
            raise TypeError(f"task name must be a non-empty string, not {name!r}")
        if "\0" in name:
            raise ValueError(f"task name {name!r} contains a NUL character")
    if action is None:
        raise TypeError(f"task {name!r} has no action")
    named_in, inputs = _named(root, inputs, name, "input")
    named_out, outputs = _named(root, outputs, name, "output")
    ins, outs = _checked_files(root, name, inputs, outputs)
    action = _expanded(action, ins, outs, named_in, named_out)
    log_path = _normalize(root, log, name, "log") if log is not None else None
    if log_path is not None and (log_path in ins or log_path in outs):
        raise ValueError(f"task {name!r}: log {log_path!r} is also one of its inputs or outputs")
    dep_names = _dep_names(deps, name, where) if deps else ()
    made = make_action(action, name, sign=False)  # signed by Registry.finish
    if isinstance(made, CallableAction) and "inputs" in made.wants and len(ins) > 1:
        made = made.reading(ins)  # it receives them in this order: part of what it does
    return Task(name, made, ins, outs, dep_names, log_path, where=where)


def _named(
    root: Path, paths: Iterable[PathLike] | Mapping[str, PathLike], name: str, what: str
) -> tuple[dict[str, str], Iterable[PathLike]]:
    """Paths given as a dict (names for placeholders): the names and the paths."""
    if not isinstance(paths, Mapping):
        return {}, paths
    named = {str(k): _normalize(root, v, name, what) for k, v in paths.items()}
    return named, list(paths.values())


def _expanded(
    action: object,
    ins: tuple[str, ...],
    outs: tuple[str, ...],
    named_in: dict[str, str],
    named_out: dict[str, str],
) -> object:
    """The action with {inputs}/{outputs} placeholders expanded (placeholders.py)."""
    paths = {"inputs": ins, "outputs": outs}
    names = {"inputs": named_in, "outputs": named_out}
    if isinstance(action, str) and has_placeholder(action):
        return expand_command(action, paths, names)
    if isinstance(action, (list, tuple)) and any(
        isinstance(a, str) and has_placeholder(a) for a in action
    ):
        return expand_argv(action, paths, names)
    return action


def _checked_files(
    root: Path, name: str, inputs: Iterable[PathLike], outputs: Iterable[PathLike]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A task's inputs and outputs, normalized and checked; raises TypeError/ValueError."""
    ins = _without_repeats(_paths(root, inputs, name, "input"))
    outs = _paths(root, outputs, name, "output")
    _check_outputs(name, ins, outs)
    return ins, outs


def _all_plain(tasks: list[Task]) -> bool:
    """True when every path of `tasks` is a string normpath would leave as it is."""
    paths = [p for t in tasks for p in t.inputs]
    paths += [p for t in tasks for p in t.outputs]
    step = 16_384  # (a summary's 100,000 paths joined at once were a 6 MiB peak)
    return all(_all_plain_paths(paths[k : k + step]) for k in range(0, len(paths), step))


def _without_repeats(ins: tuple[str, ...]) -> tuple[str, ...]:
    """The inputs in order, each once: a repeated input means nothing."""
    n = len(ins)
    if n > 1 and (ins[0] == ins[1] if n == 2 else len(set(ins)) != n):
        return tuple(dict.fromkeys(ins))
    return ins


def _check_plain_task(t: Task) -> None:
    """What is left to check of a task whose paths are all plain."""
    t.inputs = ins = _without_repeats(t.inputs)
    outs = t.outputs
    if outs and (len(outs) > 1 or outs[0] in ins):
        try:
            _check_outputs(t.name, ins, outs)
        except ValueError as exc:
            raise TaskfileError(str(exc), *_split_where(t.where)) from None


def _recheck_task(root: Path, t: Task) -> None:
    try:
        t.inputs, t.outputs = _checked_files(root, t.name, t.inputs, t.outputs)
    except (TypeError, ValueError) as exc:
        raise TaskfileError(str(exc), *_split_where(t.where)) from None
    except Exception as exc:  # a PathLike whose __fspath__ raised: the user's code
        message = f"task {t.name!r}: {type(exc).__name__}: {exc}"
        raise TaskfileError(message, *_split_where(t.where)) from None


def _dep_names(deps: Iterable[Task | str], name: str, where: str) -> tuple[str, ...]:
    return tuple([_task_name(d, name, where) for d in _as_list(deps, name, "deps")])


def _paths(root: Path, values: Iterable[PathLike], name: str, what: str) -> tuple[str, ...]:
    if (type(values) is list or type(values) is tuple) and _all_plain_paths(values):
        return tuple(values)
    items = _as_list(values, name, what + "s")
    return tuple([_normalize(root, p, name, what) for p in items])


def _all_plain_paths(paths: list[Any] | tuple[Any, ...]) -> bool:
    """True when every item is a string normpath would leave as it is, inside the project.

    The paths are joined with NULs and searched with a few substring scans, so a
    list of 100,000 paths costs a handful of C calls, not 100,000 Python ones.
    """
    if not paths:
        return True
    try:
        joined = "\0" + "\0".join(paths) + "\0"
    except TypeError:  # not all strings: Path objects, or mistakes
        return False
    if joined.count("\0") != len(paths) + 1:  # a path with a NUL in it
        return False
    return not any(bad in joined for bad in _NOT_PLAIN_PARTS)


# Substrings of NUL-framed paths that normpath would change or that leave the
# project: a leading / or ., an empty path, //, /. and a trailing /.
_NOT_PLAIN_PARTS = ("\0/", "\0.", "\0\0", "//", "/.", "/\0")


def _check_outputs(name: str, ins: tuple[str, ...], outs: tuple[str, ...]) -> None:
    inputs = set(ins) if len(ins) > 8 else ins
    for out in outs:
        if out[0] in "./" and (out == ".." or out.startswith("../") or os.path.isabs(out)):
            raise ValueError(f"task {name!r}: output {out!r} is outside the project")
        if out in inputs:
            raise ValueError(f"task {name!r}: {out!r} is both an input and an output")
    if len(outs) > 1 and len(set(outs)) != len(outs):
        raise ValueError(f"task {name!r} lists an output twice")


def _check_limits(
    name: str, timeout: float | None, retries: int, cache: bool
) -> tuple[float | None, int, bool]:
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"task {name!r}: timeout must be a positive number of seconds")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"task {name!r}: retries must be a whole number >= 0")
    return (float(timeout) if timeout is not None else None), retries, bool(cache)


def _check_discovery(
    root: Path, t: Task, trace: object, depfile: PathLike | None
) -> tuple[bool, str | None]:
    if not isinstance(trace, bool):
        raise TypeError(f"task {t.name!r}: trace must be True or False, not {trace!r}")
    if depfile is None:
        return trace, None
    path = _normalize(root, depfile, t.name, "depfile")
    if path in t.inputs or path in t.outputs or path == t.log:
        raise ValueError(f"task {t.name!r}: depfile {path!r} is also one of its files")
    return trace, path


def _check_scheduling(
    name: str, cpus: object, mem: object, resources: object, priority: object
) -> tuple[int, int, tuple[tuple[str, float], ...], float]:
    if isinstance(priority, bool) or not isinstance(priority, (int, float)):
        raise TypeError(f"task {name!r}: priority must be a number, not {priority!r}")
    return (
        parse_cpus(cpus, name),
        parse_mem(mem, name),
        parse_named(resources, name),
        priority,
    )


def _as_list(value: object, name: str, what: str) -> list[Any]:
    if isinstance(value, (str, os.PathLike, Task)):
        return [value]
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"task {name!r}: {what} must be a list, not {value!r}") from None


def _normalize(root: Path, path: object, name: str, what: str) -> str:
    """A path relative to the project root (absolute only when outside it)."""
    if type(path) is str and _all_plain_paths((path,)):
        return path  # the common case: skip normpath
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"task {name!r}: {what} path must be a string, not {path!r}")
    text = os.fspath(path)
    if not text:
        raise ValueError(f"task {name!r}: empty {what} path")
    if "\0" in text:
        raise ValueError(f"task {name!r}: {what} path {text!r} contains a NUL character")
    if os.path.isabs(text):
        rel = os.path.relpath(text, root)
        text = text if rel.startswith("..") else rel
    return os.path.normpath(text)


def _task_name(value: object, name: str, where: str) -> str:
    if isinstance(value, Task):
        return value.name
    if isinstance(value, str):
        return value
    raise TaskfileError(
        f"task {name!r}: a dependency must be a task or a task name, not {value!r}",
        *_split_where(where),
    )


def _registry() -> Registry:
    raise RuntimeError("task() is only available while pytaskmake loads a Taskfile")


_HERE = os.path.dirname(__file__)


Lines = dict[int, tuple[dict[str, Any], dict[int, str]]]  # see Registry.where


def _caller_location(frame: types.FrameType | None, memo: Lines | None = None) -> str:
    """file:line of the Taskfile statement that called task() from `frame`, for messages.

    Remembered per file (its globals) and line, when `frame` is the user's (not a
    helper of pytaskmake's, which has many callers).
    """
    first = frame
    while frame is not None and frame.f_code.co_filename.startswith(_HERE):
        frame = frame.f_back
    if frame is None:
        return ""
    code, line = frame.f_code, frame.f_lineno
    where = f"{os.path.basename(code.co_filename)}:{line}"
    if frame is first and memo is not None:
        file = frame.f_globals
        known = memo.get(id(file))
        if known is None or known[0] is not file:
            known = memo[id(file)] = (file, {})
        known[1][line] = where
    return where


def _split_where(where: str) -> tuple[str | None, int | None]:
    path, _, line = where.rpartition(":")
    return (path or None), (int(line) if line.isdigit() else None)


def load_taskfile(
    path: Path,
    on_write: Callable[[], None] | None = None,
    track: bool = False,
    params: dict[str, str] | None = None,
) -> Registry:
    """Execute a Taskfile and return the tasks it declared, in order.

    Leaves no trace in the process: the working directory, `sys.path` and
    `sys.modules` are as before (project-local modules the Taskfile imported are
    dropped, so that a reload sees their edits), and nothing is pinned in memory.

    `on_write` is called if the Taskfile does anything that may change a file
    (opens one for writing, renames, removes, starts a process...), as Python's
    audit events tell: stats taken while it ran may then be out of date.
    `track`: note the folders the Taskfile lists (a glob over data/*.csv), so that
    a watcher reloads it when a file appears there (Registry.listed). `params`:
    NAME=value from the command line, for param() (UsageError for one not asked for).
    """
    path = path.resolve()
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise TaskfileError(f"cannot read Taskfile: {exc.strerror}", str(path)) from None
    registry = Registry(path.parent)
    registry.taskfile = str(path)
    registry.on_write = on_write
    registry.given = dict(params or {})
    if track:
        registry.listed = set()
    if on_write is not None or track:
        _watch_writes()
    token = _loading.set(registry)
    old_cwd = os.getcwd()
    modules = set(sys.modules)
    # no .pyc of the project's modules: one written now would hold an edit's old code
    # when the next edit keeps the size within the same second (the signature reads
    # the source, the run would use the bytecode)
    # (only while the Taskfile runs: pytaskmake's own modules imported after it, such
    # as codeprint, keep their caches, or every load would compile them again)
    old_dont_write = sys.dont_write_bytecode
    try:
        os.chdir(path.parent)  # the Taskfile's own relative paths (globs) mean its folder
        sys.dont_write_bytecode = True
        try:
            _execute(source, path)
        finally:
            sys.dont_write_bytecode = old_dont_write
        registry.finish()
        check_all_asked(registry.given, registry.asked, path.name)
    finally:
        _loading.reset(token)
        os.chdir(old_cwd)
        registry.modules.update(_forget_local_modules(modules, str(path.parent) + os.sep))
    return registry


def _forget_local_modules(before: set[str], root: str) -> set[str]:
    """Drop the modules imported during a load from under the project folder;
    returns their files."""
    files = set()
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        where = getattr(module, "__file__", None) or ""
        if where.startswith(root):
            del sys.modules[name]
            files.add(where)
    return files


def _execute(source: bytes, path: Path) -> None:
    try:
        # dont_inherit: not this module's `from __future__ import annotations` (a
        # dataclass declared in the Taskfile would then fail to build)
        code = compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise TaskfileError(f"syntax error: {exc.msg}", path.name, exc.lineno) from None
    namespace = {"__name__": "__taskfile__", "__file__": str(path)}
    sys.path.insert(0, str(path.parent))
    try:
        with collector.less_often(collector.LOAD_THRESHOLD):  # (~1,000,000 objects)
            exec(code, namespace)
    except TaskfileError:
        raise
    except SystemExit as exc:
        line = _last_line_in(exc, str(path))
        raise TaskfileError(
            f"the Taskfile called sys.exit({exc.code!r})", path.name, line
        ) from None
    except Exception as exc:  # the user's code raised: point at their line
        line = _last_line_in(exc, str(path))
        raise TaskfileError(f"{type(exc).__name__}: {exc}", path.name, line) from None
    finally:
        sys.path.remove(str(path.parent))


_hooked = False
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# audited operations that may change files (Python's audit events table): anything
# of these families but the few that only read
_CHANGING = ("os.", "shutil.", "subprocess.", "ctypes.", "sqlite3.", "pty.", "tempfile.")
_ONLY_READING = frozenset(
    ("os.listdir", "os.scandir", "os.walk", "os.fwalk", "os.chdir", "os.getxattr")
    + ("os.listxattr", "os.putenv", "os.unsetenv", "os.add_dll_directory")
)


def _watch_writes() -> None:
    """Install the audit hook once (a hook cannot be removed); outside a load that
    asked for it, it returns at its first test."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "sys._getframe":  # once per task() (first: a load raises ~200,000)
        return
    registry = _loading.get()
    if registry is None:
        return
    if registry.listed is not None:
        if event in _LISTING and not _importing():
            _note_listing(registry.listed, event, args)
        elif event == "open" and _reads(args) and not _importing():
            _note_read(registry, args[0])
    if registry.on_write is None:
        return
    if event == "open":
        if not (len(args) > 2 and type(args[2]) is int and args[2] & _WRITE_FLAGS):
            return
    elif not event.startswith(_CHANGING) or event in _ONLY_READING:
        return
    if args and isinstance(args[0], str) and "__pycache__" in args[0]:
        return  # importing a module may write its bytecode cache: not a build file
    registry.on_write()


_LISTING = frozenset(("os.listdir", "os.scandir", "glob.glob"))


def _reads(args: tuple[Any, ...]) -> bool:
    """An `open` audit event's (path, mode, flags) open a file for reading only."""
    flags = args[2] if len(args) > 2 else 0
    return type(flags) is int and not flags & _WRITE_FLAGS and isinstance(args[0], (str, bytes))


def _note_read(registry: Registry, path: str | bytes) -> None:
    """A project file the Taskfile read while loading (a list of points): a watcher
    reloads it when that file changes."""
    full = os.path.abspath(os.fsdecode(path))
    if full.startswith(str(registry.root) + os.sep) and "__pycache__" not in full:
        registry.modules.add(full)


def _importing() -> bool:
    """Whether the listing or read being audited is the import system's (its
    FileFinder lists a folder on sys.path to find a module, again whenever the folder
    changed) or pytaskmake's own (the implicit-input pass lists the project folder
    once): not the Taskfile's, or every file written beside a project module would
    reload a watched Taskfile. Frame 2 is the caller (0 is this, 1 the hook;
    os.listdir is C, no frame)."""
    caller = sys._getframe(2).f_code.co_filename
    return caller.startswith(("<frozen importlib", _PACKAGE))


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _note_listing(listed: set[str], event: str, args: tuple[Any, ...]) -> None:
    """The folder a listing or glob looked into, as an absolute path."""
    target = args[0] if args else "."
    if not isinstance(target, (str, os.PathLike)):
        return
    text = os.fspath(target)
    if event == "glob.glob":  # the folder before the first wildcard
        text = os.path.dirname(text.split("*")[0].split("?")[0].split("[")[0]) or "."
    listed.add(os.path.abspath(text or "."))


def _last_line_in(exc: BaseException, filename: str) -> int | None:
    """The last line of `filename` the error passed through. Walked by hand: importing
    traceback here would find a project's own traceback.py (the Taskfile's folder is
    first on sys.path while it runs)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
