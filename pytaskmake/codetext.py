"""What a piece of Python code says, whatever its layout or Python version.

A callable's signature (codeprint.py) needs the text of its code without
docstrings, comments, layout or line numbers, and the names it reads (globals,
module attributes, its own imports); this module reads both from the source file
(ast) and the code object (dis), falling back to bytecode when there is no source.
"""

from __future__ import annotations

import ast
import dis
import functools
import types
from collections.abc import Iterator
from typing import NamedTuple


class CodeFacts:
    """What one code object says: its normalised source (or bytecode), the names it
    reads from its module (each with the attribute chains read off it: helpers.f),
    the names of its locals read the same way, and the modules it imports itself."""

    __slots__ = ("text", "params", "globals", "sorted_globals", "locals", "imports", "dynamic")

    def __init__(self, text: str, code: types.CodeType) -> None:
        self.text = text
        self.params = code.co_varnames[: code.co_argcount]
        self.globals: dict[str, set[tuple[str, ...]]] = {}
        self.locals: dict[str, set[tuple[str, ...]]] = {}
        self.imports: dict[str, Import] = {}
        for inner in _code_objects(code):
            self._read(list(dis.get_instructions(inner)))
        self.sorted_globals = sorted(self.globals.items())
        names = set(self.globals).union(*self.globals.values(), *self.locals.values())
        self.dynamic = not names.isdisjoint(_DYNAMIC)

    def _read(self, ops: list[dis.Instruction]) -> None:
        for i, op in enumerate(ops):
            if op.opname in _LOAD_GLOBAL:
                table = self.globals
            elif op.opname in _LOAD_LOCAL:
                table = self.locals
            else:
                if op.opname == "IMPORT_NAME":
                    self._note_import(ops, i)
                continue
            chain = []
            for j in range(i + 1, len(ops)):
                if ops[j].opname not in _ATTR:
                    break
                chain.append(ops[j].argval)
            table.setdefault(op.argval, set()).add(tuple(chain))

    def _note_import(self, ops: list[dis.Instruction], i: int) -> None:
        """`import a.b` binds a, `import a.b as c` binds a.b, `from a import b` a's b;
        each with the dotted name the statement imports and its level (`from ..a`: 2)."""
        name, fromlist = ops[i].argval, ops[i - 1].argval if i else None
        level = ops[i - 2].argval if i > 1 and ops[i - 2].opname == "LOAD_CONST" else 0
        level = level if type(level) is int else 0
        module, member = name.partition(".")[0], None
        for op in ops[i + 1 : i + 12]:
            if op.opname == "IMPORT_FROM":
                module, member = (name, op.argval) if fromlist is not None else (name, None)
            elif op.opname in _STORE:
                self.imports[op.argval] = Import(module, member, name, level)
            elif op.opname not in ("ROT_TWO", "SWAP", "POP_TOP", "COPY"):
                break


class Import(NamedTuple):
    """What an import statement in a function binds to a name."""

    module: str  # the module whose value is bound (or whose member is)
    member: str | None  # `from module import member`
    imported: str  # the dotted name the statement imports (`import a.b.c`: a.b.c)
    level: int  # leading dots of a relative import


_LOAD_GLOBAL = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
_LOAD_LOCAL = frozenset(
    {"LOAD_FAST", "LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FAST_CHECK", "LOAD_FROM_DICT_OR_DEREF"}
)
_ATTR = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_STORE = frozenset({"STORE_FAST", "STORE_DEREF", "STORE_NAME", "STORE_GLOBAL"})
# names through which code may read any member of a module: it is then hashed whole
_DYNAMIC = frozenset(
    {"getattr", "vars", "globals", "__dict__", "__import__", "import_module", "eval", "exec"}
)


class SourceFile:
    """A parsed source file: normalised texts (no docstrings, comments, layout or
    line numbers) of its functions, by first line and name, and classes, by qualname;
    each made when first asked for."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.functions: dict[tuple[int, str], list[ast.AST]] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        _drop_docstring(tree)
        self._index(tree, "")

    @classmethod
    def read(cls, filename: str) -> SourceFile | None:
        if not filename or filename.startswith("<"):
            return None
        try:
            with open(filename, "rb") as f:
                return cls(ast.parse(f.read(), filename))
        except (OSError, SyntaxError, ValueError):
            return None

    @functools.cached_property
    def whole(self) -> str:
        return _canonical(self.tree)

    def function(self, line: int, name: str) -> str | None:
        """The text of the function (or lambdas: all of them) defined there."""
        nodes = self.functions.get((line, name))
        return "|".join(map(_canonical, nodes)) if nodes else None

    def cls(self, qualname: str) -> str | None:
        node = self.classes.get(qualname)
        return _canonical(node) if node else None

    def _index(self, tree: ast.AST, prefix: str) -> None:
        """Each function and class by where it starts, depth first (lambdas on one
        line in source order). With a stack, not recursion: a chain of 300 elifs is
        a tree 300 deep."""
        stack: list[tuple[ast.AST, str]] = [
            (child, prefix) for child in reversed(list(ast.iter_child_nodes(tree)))
        ]
        while stack:
            node, prefix = stack.pop()
            _drop_docstring(node)
            inner = prefix
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                name = getattr(node, "name", "<lambda>")
                lines = [d.lineno for d in getattr(node, "decorator_list", [])]
                self.functions.setdefault((min([node.lineno, *lines]), name), []).append(node)
                inner = f"{prefix}{name}.<locals>."
            elif isinstance(node, ast.ClassDef):
                self.classes[prefix + node.name] = node
                inner = f"{prefix}{node.name}."
            stack.extend((child, inner) for child in reversed(list(ast.iter_child_nodes(node))))


def _drop_docstring(node: ast.AST) -> None:
    body = getattr(node, "body", None)
    if (
        isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        del body[0]


class _Literal(str):
    """Text of _canonical's own (brackets, names), not a value to repr."""


def _canonical(node: object) -> str:
    """ast.dump without positions, and without empty fields (which Python versions
    add and drop), so the same source reads the same on any Python 3. With a stack,
    not recursion (a chain of 300 elifs is a tree 300 deep)."""
    out: list[str] = []
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if type(item) is _Literal:
            out.append(item)
            continue
        parts: list[object]
        if isinstance(item, ast.AST):
            parts = [_Literal(f"{type(item).__name__}(")]
            for name, value in ast.iter_fields(item):
                if value is not None and value != []:
                    if len(parts) > 1:
                        parts.append(_Literal(", "))
                    parts += (_Literal(f"{name}="), value)
            parts.append(_Literal(")"))
        elif isinstance(item, list):
            parts = [_Literal("[")]
            for k, value in enumerate(item):
                if k:
                    parts.append(_Literal(", "))
                parts.append(value)
            parts.append(_Literal("]"))
        else:
            out.append(repr(item))
            continue
        stack.extend(reversed(parts))
    return "".join(out)


def bytecode_text(code: types.CodeType) -> str:
    """What a code object is when its source cannot be read (exec'd text)."""
    consts = [
        bytecode_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts
    ]
    return f"{code.co_code.hex()}|{consts}|{code.co_names}"


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)
