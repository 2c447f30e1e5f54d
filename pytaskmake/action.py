"""What a task does: a shell command, an argv list, or a Python callable.

Each action has a *signature*, a string that changes exactly when what the action
would do changes; staleness and the run cache both key on it, so it is defined
once, here.
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .digest import blake2b
from .errors import UnstableValueError

if TYPE_CHECKING:
    from .codeprint import CodePrinter


def digest_of(signature: str) -> str:
    """What the state DB keeps of a signature: 128 bits, not the whole command text."""
    return blake2b(signature.encode(), digest_size=16).hexdigest()


class _Digested:
    """The digest of `signature`, computed when asked and not kept.

    A no-op build of 200,000 tasks never asks for it (the snapshot answers first),
    and a full build asks about twice per task: keeping 200,000 digests would cost
    more memory than recomputing costs time.
    """

    __slots__ = ()

    @property
    def signature(self) -> str:
        raise NotImplementedError

    @property
    def digest(self) -> str:
        return digest_of(self.signature)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.signature == self.signature  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.signature)


class ShellAction(_Digested):
    """A command line run by /bin/sh, as make and ninja do."""

    __slots__ = ("command",)
    cacheable = True
    PREFIX = "sh:"  # of its signature

    def __init__(self, command: str) -> None:
        self.command = command

    @property
    def signature(self) -> str:
        return self.PREFIX + self.command

    def describe(self) -> str:
        return self.command

    def __repr__(self) -> str:
        return f"ShellAction({self.command!r})"


class ArgvAction(_Digested):
    """A program and its arguments, run without a shell (no quoting surprises)."""

    __slots__ = ("argv",)
    cacheable = True

    def __init__(self, argv: tuple[str, ...]) -> None:
        self.argv = argv

    @property
    def signature(self) -> str:
        return "argv:" + "\0".join(self.argv)

    def describe(self) -> str:
        return shlex.join(self.argv)

    def __repr__(self) -> str:
        return f"ArgvAction({self.argv!r})"


class CallableAction(_Digested):
    """A Python function run in a forked child, so it cannot corrupt the build.

    Its signature is what the function does and everything it reaches (codeprint.py),
    computed by `sign` once the Taskfile has run: the values then are those its run
    will see. A value that cannot be hashed stably fails the load, so every signed
    callable can be cached.
    """

    __slots__ = ("function", "_signature", "wants", "bound", "order")
    cacheable = True

    def __init__(
        self,
        function: Callable[..., Any],
        wants: tuple[str, ...],
        bound: tuple[tuple[str, str], ...] = (),
        order: str = "",
    ) -> None:
        self.function, self.wants = function, wants
        self.bound = bound  # (name, repr) of the outside values it reads, when declared
        self.order = order  # digest of the order of its inputs, when it receives them
        self._signature: str | None = None

    def sign(self, printer: CodePrinter, task: str = "", where: str = "") -> None:
        """Compute the signature; raises UnstableValueError naming `task` and `where`."""
        try:
            digest = printer.digest(self.function)
        except UnstableValueError as exc:
            raise exc.of_task(task, where) from None
        order = f":inputs={self.order}" if self.order else ""
        self._signature = f"py:{_qualified_name(self.function)}:{digest}{order}"

    @property
    def signed(self) -> bool:
        return self._signature is not None

    def late_bound(self) -> str | None:
        """Why the callable would not do what was declared, or None: an outside value
        it reads (a closure variable, a Taskfile global) is not what it was when the
        task was declared, as when a loop's variable is read after the loop moved on."""
        now = dict(_bound_values(self.function))
        for name, then in self.bound:
            if name in now and now[name] != then:
                return (
                    f"{name} is {_short(now[name])} now but was {_short(then)} when the task "
                    f"was declared (a loop variable read late?); bind it when declaring: "
                    f"`lambda ..., {name}={name}: ...`, a default argument, or "
                    f"functools.partial(f, {name}={name})"
                )
        return None

    @property
    def signature(self) -> str:
        if self._signature is None:
            raise RuntimeError(f"{self!r} was never signed")
        return self._signature

    def reading(self, inputs: tuple[str, ...]) -> CallableAction:
        """The same callable, given `inputs` in this order: the order is part of its
        signature (it may well read only inputs[0])."""
        order = blake2b("\0".join(inputs).encode(), digest_size=8).hexdigest()
        return CallableAction(self.function, self.wants, self.bound, order)

    def describe(self) -> str:
        return f"python {_qualified_name(self.function)}()"

    def __repr__(self) -> str:
        return f"CallableAction({_qualified_name(self.function)}, {self._signature!r})"


Action = ShellAction | ArgvAction | CallableAction


def make_action(value: object, task_name: str, sign: bool = True) -> Action:
    """Turn what the user passed as `action` into an Action, or raise TypeError.

    A callable is signed at once (its project: the current folder), unless `sign`
    is False: a Taskfile's loader signs its callables once the Taskfile has run.
    """
    if type(value) is str and value and not value.isspace():
        return ShellAction(value)  # the common case first: 200,000 calls per big Taskfile
    if isinstance(value, str):
        if not value.strip():
            raise TypeError(f"task {task_name!r} has an empty command")
        return ShellAction(value)
    if isinstance(value, (list, tuple)):
        return _argv_action(value, task_name)
    if callable(value):
        action = CallableAction(value, _wanted_parameters(value), _bound_values(value))
        if sign:
            from .codeprint import CodePrinter  # (a shell-only Taskfile never needs it)

            action.sign(CodePrinter(os.getcwd()), task_name)
        return action
    raise TypeError(
        f"task {task_name!r}: action must be a command string, an argv list or a callable, "
        f"not {type(value).__name__}"
    )


def _argv_action(value: Sequence[object], task_name: str) -> ArgvAction:
    if not value:
        raise TypeError(f"task {task_name!r} has an empty argv list")
    bad = [a for a in value if not isinstance(a, (str, int, float))]
    if bad:
        raise TypeError(f"task {task_name!r}: argv items must be strings, got {bad[0]!r}")
    return ArgvAction(tuple(str(a) for a in value))


_SCALARS = (int, float, str, bytes, bool, type(None))


def _plain(value: object) -> bool:
    """A value a loop typically moves on: a scalar, or a short tuple of scalars (lists
    and dicts are containers a Taskfile fills as it goes; reprs of those are not kept)."""
    if isinstance(value, _SCALARS):
        return not isinstance(value, (str, bytes)) or len(value) <= 4096
    return isinstance(value, tuple) and len(value) <= 64 and all(map(_plain, value))


def _bound_values(function: Callable[..., Any]) -> tuple[tuple[str, str], ...]:
    """(name, repr) of the plain values a callable reads from outside itself: its
    closure variables and the Taskfile globals it names (modules, functions and
    classes are code, not values that a loop moves on)."""
    inner = function.func if isinstance(function, functools.partial) else function
    code = getattr(inner, "__code__", None)
    if code is None:
        return ()
    found: list[tuple[str, str]] = []
    cells = getattr(inner, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars, cells, strict=False):
        if _cell_filled(cell) and _plain(cell.cell_contents):
            found.append((name, repr(cell.cell_contents)))
    space = getattr(inner, "__globals__", {})
    for name in code.co_names:
        value = space.get(name, _ABSENT)
        if value is not _ABSENT and _plain(value):
            found.append((name, repr(value)))
    return tuple(found)


_ABSENT = object()


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _wanted_parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    """Which of `inputs`/`outputs` the callable accepts by name (doit's convention)."""
    inner, bound = function, 0  # a partial's positional arguments take the first parameters
    if type(inner) is functools.partial:
        inner, bound = inner.func, len(inner.args)
    code = getattr(inner, "__code__", None)
    if type(inner) is types.FunctionType and not inner.__dict__ and code is not None:
        if bound <= code.co_argcount:  # (what inspect.signature says, 10 times faster)
            named = code.co_varnames[bound : code.co_argcount + code.co_kwonlyargcount]
            return tuple(name for name in ("inputs", "outputs") if name in named)
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return ()
    return tuple(name for name in ("inputs", "outputs") if name in params)


def _qualified_name(function: Callable[..., Any]) -> str:
    inner = function.func if isinstance(function, functools.partial) else function
    module = getattr(inner, "__module__", None) or "?"
    return f"{module}.{getattr(inner, '__qualname__', type(inner).__name__)}"


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True
