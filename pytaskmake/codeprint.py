"""Fingerprints of Python code and values: what a callable task does, as one digest.

A callable's signature must change exactly when what it would do changes: its source
(without docstrings, comments or layout, so a new Python or a reworded docstring
reruns nothing), every project-local function, class, module-level value and module
it reaches through its globals, closures and arguments, and those values hashed
canonically by joblib's hasher (sets and dicts order-free, numpy arrays by
dtype/shape/bytes, objects by their state, never by a repr that hides the value).
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.machinery
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .codetext import CodeFacts, Import, SourceFile, bytecode_text
from .digest import blake2b
from .errors import UnstableValueError

Text = tuple[str, list[object]]  # a text to hash, and the code objects (nodes) it names
_ABSENT = object()
_SCALARS = frozenset((int, float, complex, str, bytes, bool, type(None)))
_MODULE_OR_NONE = (types.ModuleType, type(None))


class CodePrinter:
    """Digests of callables, for one load of a Taskfile whose folder is `root`.

    Used once the Taskfile has run, when nothing a callable reaches changes any
    more: every answer is memoised by object identity (each object is held while
    the printer lives, so an id is never reused), and 10,000 tasks over one
    function walk what it reaches once.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = os.path.join(os.path.realpath(root), "")
        prefixes = (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
        inside = {os.path.join(os.path.realpath(p), "") for p in prefixes}
        self._venvs = tuple(p for p in inside if p.startswith(self.root))  # a .venv in it
        self._local_files: dict[str, bool] = {}
        self._sources: dict[str, SourceFile | None] = {}
        self._codes: dict[int, tuple[types.CodeType, CodeFacts]] = {}
        self._texts: dict[int, tuple[object, str, list[object]]] = {}
        self._digests: dict[int, tuple[object, str]] = {}
        self._values: dict[int, tuple[object, str, list[object]]] = {}
        # project files read for modules imported inside functions, not yet imported:
        # a watcher reloads the Taskfile when one changes
        self.unimported_files: set[str] = set()
        self._search: list[str] | None = None  # where project modules are found

    def digest(self, function: Callable[..., Any]) -> str:
        """What `function` does and all it reaches, as a hex digest; raises
        UnstableValueError naming the value (argument, global...) with no stable hash."""
        text, nodes = self._callable(function)
        return _hex(text, [self._digest(node) for node in nodes])

    # ------------------------------------------------------------ callables and values

    def _callable(self, function: object) -> Text:
        if isinstance(function, functools.partial):
            parts = [self._callable(function.func)]
            for i, arg in enumerate(function.args):
                parts.append(self._value(arg, f"argument {i + 1} of the partial"))
            for key, arg in sorted(function.keywords.items()):
                text, nodes = self._value(arg, f"argument {key!r} of the partial")
                parts.append((f"{key}={text}", nodes))
            return _joined("partial", parts)
        if isinstance(function, types.MethodType):
            name = getattr(function.__func__, "__qualname__", "?")
            owner = self._value(function.__self__, f"the object of method {name}")
            return _joined("method", [self._callable(function.__func__), owner])
        return self._value(function, "the callable")

    def _value(self, value: object, what: str) -> Text:
        """A value's text: scalars as themselves, code by reference (a node), anything
        else by joblib's hash of its state (twice: it must not differ)."""
        kind = type(value)
        if kind in _SCALARS:
            return f"{kind.__name__}:{value!r}", []
        if kind is types.FunctionType or kind is types.ModuleType or isinstance(value, type):
            nodes: list[object] = []
            return self._reference(value, nodes), nodes
        if kind is types.BuiltinFunctionType and isinstance(value.__self__, _MODULE_OR_NONE):
            return f"ext:{value.__module__}.{value.__qualname__}", []  # print, math.exp
        memo = self._values.get(id(value))
        if memo is not None and memo[0] is value:
            return memo[1], memo[2]
        if (kind is list or kind is tuple) and all(type(x) in _SCALARS for x in value):
            text = f"{kind.__name__}:{_hex(repr(value), [])}"  # 200,000 paths: no pickling
            self._values[id(value)] = (value, text, [])
            return text, []
        try:
            first, nodes = self._hashed(value)
            again, _ = self._hashed(value)
        except UnstableValueError:
            raise
        except Exception as exc:  # unpicklable: a file, a lock, a generator...
            raise UnstableValueError(_described(what, value), _reason(exc)) from None
        if first != again:
            raise UnstableValueError(
                _described(what, value), "its hash differs from one call to the next"
            )
        self._values[id(value)] = (value, "value:" + first, nodes)
        return "value:" + first, nodes

    def _hashed(self, value: object) -> tuple[str, list[object]]:
        from .valuehash import value_hash  # (pickle: for values that are not scalars)

        return value_hash(value, self._reference)

    def _reference(self, value: object, nodes: list[object]) -> str:
        """How code is named in a text: project code becomes a node (hashed by what it
        is), code from elsewhere (stdlib, site-packages) is named only."""
        module = getattr(value, "__module__", None)
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
        if isinstance(value, types.ModuleType):
            module = None
        if self._is_local(value):
            nodes.append(value)
            return f"local:{module}.{name}"
        return f"ext:{module}.{name}"

    def _is_local(self, value: object) -> bool:
        if isinstance(value, types.FunctionType):
            return self._local_file(value.__code__.co_filename)
        if isinstance(value, types.ModuleType):
            where = getattr(value, "__file__", None)
            return bool(where) and self._local_file(where)
        module = sys.modules.get(getattr(value, "__module__", None) or "")
        if module is not None:  # a class of an imported module
            where = getattr(module, "__file__", None)
            return bool(where) and self._local_file(where)
        code = _first_code(value)  # the Taskfile's own (not in sys.modules), or unknown:
        return code is None or self._local_file(code.co_filename)  # better hashed than missed

    def _local_file(self, filename: str) -> bool:
        """Under the project folder, and not in a virtualenv or site-packages there;
        code from a file that is no file (exec'd text) is hashed too (by bytecode)."""
        known = self._local_files.get(filename)
        if known is None:
            if filename.startswith("<"):
                known = True
            else:
                path = os.path.realpath(filename)
                parts = path.split(os.sep)
                known = (
                    path.startswith(self.root)
                    and not path.startswith(self._venvs or ("\0",))
                    and "site-packages" not in parts
                    and "dist-packages" not in parts
                )
            self._local_files[filename] = known
        return known

    # ------------------------------------------------------------------ nodes

    def _digest(self, node: object) -> str:
        """The digest of a node and everything it reaches. Mutually recursive code
        forms a cycle: each strongly connected component (Tarjan) gets one digest, made
        of its members' texts and the digests of the components they reach."""
        done = self._digests.get(id(node))
        if done is not None:
            return done[1]
        children = self._text(node)[1]
        if all(id(child) in self._digests for child in children):  # the common case:
            self._seal([node], node)  # a new lambda over functions already digested
            return self._digests[id(node)][1]
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        stack: list[object] = []
        work: list[tuple[object, int]] = [(node, 0)]
        while work:
            current, i = work.pop()
            key = id(current)
            if i == 0:
                index[key] = low[key] = len(index)
                stack.append(current)
            children = self._text(current)[1]
            while i < len(children):
                child = children[i]
                i += 1
                if id(child) in self._digests:
                    continue
                if id(child) not in index:
                    work.append((current, i))
                    work.append((child, 0))
                    break
                if id(child) in low:  # on the stack: a cycle back to it
                    low[key] = min(low[key], index[id(child)])
            else:
                if work:
                    parent = id(work[-1][0])
                    low[parent] = min(low[parent], low[key])
                if low[key] == index[key]:
                    self._seal(stack, current)
        return self._digests[id(node)][1]

    def _seal(self, stack: list[object], root: object) -> None:
        members = []
        while True:
            member = stack.pop()
            members.append(member)
            if member is root:
                break
        inside = {id(m) for m in members}
        lines = []
        for member in members:
            text, children = self._text(member)
            reached = ["~" if id(c) in inside else self._digests[id(c)][1] for c in children]
            lines.append(text + "->" + ",".join(reached))
        digest = _hex("\n".join(sorted(lines)), [])
        for member in members:
            self._digests[id(member)] = (member, digest)

    def _text(self, node: object) -> tuple[str, list[object]]:
        """A node's own text and the nodes it names, once per node."""
        memo = self._texts.get(id(node))
        if memo is not None and memo[0] is node:
            return memo[1], memo[2]
        if isinstance(node, types.FunctionType):
            text, children = self._function_text(node)
        elif isinstance(node, types.ModuleType):
            text, children = self._module_text(node)
        else:
            text, children = self._class_text(node)  # type: ignore[arg-type]
        self._texts[id(node)] = (node, text, children)
        return text, children

    def _function_text(self, f: types.FunctionType) -> Text:
        code = self._code(f.__code__)
        name = f.__qualname__
        parts: list[Text] = [(f"def {f.__module__}.{name} {code.text}", [])]
        defaults = f.__defaults__ or ()
        named = code.params[len(code.params) - len(defaults) :]
        for param, value in zip(named, defaults, strict=False):
            if type(value) in _SCALARS:
                parts.append((f"{type(value).__name__}:{value!r}", []))
            else:
                parts.append(self._value(value, f"the default of {param!r} in {name}"))
        for param, value in sorted((f.__kwdefaults__ or {}).items()):
            parts.append(self._value(value, f"the default of {param!r} in {name}"))
        for var, cell in zip(f.__code__.co_freevars, f.__closure__ or (), strict=False):
            try:
                value = cell.cell_contents
            except ValueError:  # not yet assigned
                continue
            chains = code.locals.get(var, {()})
            parts.append(self._reached(var, value, chains, code, f"closure variable {var!r}"))
        space = f.__globals__
        base = space.get("__builtins__", builtins)
        base = vars(base) if isinstance(base, types.ModuleType) else base
        for var, chains in code.sorted_globals:
            value = space.get(var, _ABSENT)
            if value is _ABSENT and var in base:  # a builtin: by its name (open's module
                parts.append((f"{var}=builtin", []))  # is io in 3.11, _io in 3.12)
            elif value is not _ABSENT:
                what = f"global {var!r} read by {name}"
                parts.append(self._reached(var, value, chains, code, what))
        for alias, statement in sorted(code.imports.items()):
            parts.append(self._imported(alias, statement, code, name, space))
        return _joined("function", parts)

    def _reached(
        self, var: str, value: object, chains: set[tuple[str, ...]], code: CodeFacts, what: str
    ) -> Text:
        """A value a function reads by name; of a project module, only the members it
        names (helpers.simulate), unless it uses the module as a whole or by getattr."""
        if not (isinstance(value, types.ModuleType) and self._is_local(value)):
            text, nodes = self._value(value, what)
            return f"{var}={text}", nodes
        if code.dynamic or () in chains:
            nodes = []
            return f"{var}={self._reference(value, nodes)}", nodes
        parts = [self._member(value, chain, what) for chain in sorted(chains)]
        text, nodes = _joined(f"{var}=module {value.__name__}", parts)
        return text, nodes

    def _member(self, module: types.ModuleType, chain: tuple[str, ...], what: str) -> Text:
        """What `module.a.b...` names, following project modules down the chain."""
        value: object = module
        for depth, attr in enumerate(chain):
            if not (isinstance(value, types.ModuleType) and self._is_local(value)):
                break
            name = value.__name__
            value = vars(value).get(attr, sys.modules.get(f"{name}.{attr}", _ABSENT))
            if value is _ABSENT:
                return f"{'.'.join(chain[: depth + 1])}=absent", []
        text, nodes = self._value(value, f"{module.__name__}.{'.'.join(chain)} ({what})")
        return f"{'.'.join(chain)}={text}", nodes

    def _imported(
        self, alias: str, statement: Import, code: CodeFacts, name: str, space: dict[str, Any]
    ) -> Text:
        """A module the function imports itself, or a member of one. One not imported
        yet (or a submodule not imported yet) counts by the files it would run."""
        module, member, imported, level = statement
        if level:  # relative to the function's package
            base = _package_base(space, level)
            if base is None:
                return f"import {'.' * level}{imported}=unresolved", []
            imported = module = f"{base}.{imported}" if imported else base
        found = sys.modules.get(module)
        targets = [imported, f"{imported}.{member}"] if member else [imported]
        if found is None or imported not in sys.modules:
            return f"import {imported}={self._unimported(targets)}", []
        value: object = found
        if member is not None:
            value = vars(found).get(member, sys.modules.get(f"{module}.{member}", _ABSENT))
        if value is _ABSENT:
            return f"import {module}.{member}={self._unimported(targets)}", []
        chains = code.locals.get(alias, {()})
        return self._reached(alias, value, chains, code, f"{alias!r} imported by {name}")

    def _unimported(self, names: list[str]) -> str:
        """Project modules nothing imported yet (a function imports them when it runs):
        the source of every project file importing them would run, found without
        running it: the packages along each name, the module, and what their own
        import statements reach in the project, on and on."""
        files = self._import_closure(names)
        self.unimported_files.update(files)
        if not files:
            return "elsewhere"
        texts = []
        for file in sorted(files):
            source = self._source(file)
            texts.append(f"{os.path.relpath(file, self.root)}={source and source.whole}")
        return "|".join(texts)

    def _import_closure(self, names: list[str]) -> set[str]:
        files: set[str] = set()
        todo, seen = list(names), set(names)
        while todo:
            name = todo.pop()
            if name.endswith(".*"):  # `from pkg import *`: any of its modules
                subs = self._submodules(name[:-2])
                found = [row for sub in subs for row in self._module_files(sub)]
            else:
                found = self._module_files(name)
            for dotted, file, package in found:
                if file in files:
                    continue
                files.add(file)
                source = self._source(file)
                where = dotted if package else dotted.rpartition(".")[0]
                for imported in _imports_in(source.tree if source else None, where):
                    if imported not in seen:
                        seen.add(imported)
                        todo.append(imported)
        return files

    def _module_files(self, dotted: str) -> list[tuple[str, str, bool]]:
        """The project files `import dotted` runs: each package's __init__.py along
        the name, then the module: (name, file, whether a package); [] past the
        first part that is not the project's. Looked for in the project folder and
        the project folders on sys.path (a src/ layout)."""
        found: list[tuple[str, str, bool]] = []
        path: list[str] | None = self._search_path()
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            try:
                spec = importlib.machinery.PathFinder.find_spec(part, path)
            except (ImportError, ValueError):
                spec = None
            if spec is None:
                break
            origin = spec.origin
            path = list(spec.submodule_search_locations or ()) or None
            if origin and os.path.isfile(origin):  # (a namespace package has no file)
                if not self._local_file(origin):
                    break
                found.append((".".join(parts[: depth + 1]), origin, path is not None))
            if path is None:
                break
        return found

    def _submodules(self, package: str) -> list[str]:
        """The modules and packages directly inside a project package."""
        files = self._module_files(package)
        if not files or not files[-1][2] or files[-1][0] != package:
            return []
        folder = os.path.dirname(files[-1][1])
        names = []
        for entry in sorted(os.listdir(folder)):
            stem, ext = os.path.splitext(entry)
            if ext == ".py" and stem != "__init__":
                names.append(f"{package}.{stem}")
            elif os.path.isfile(os.path.join(folder, entry, "__init__.py")):
                names.append(f"{package}.{entry}")
        return names

    def _search_path(self) -> list[str]:
        if self._search is None:
            local = [
                p for p in sys.path if p and self._local_file(os.path.join(os.path.abspath(p), "_"))
            ]
            self._search = [self.root.rstrip(os.sep), *dict.fromkeys(local)]
        return self._search

    def _module_text(self, module: types.ModuleType) -> Text:
        """A project module used as a whole: its source and all its members."""
        source = self._source(getattr(module, "__file__", None) or "")
        parts: list[Text] = [(f"module {module.__name__} {source and source.whole}", [])]
        for name, value in sorted(vars(module).items()):
            if not (name.startswith("__") and name.endswith("__")):
                parts.append(self._value(value, f"{module.__name__}.{name}"))
        return _joined("module", parts)

    def _class_text(self, cls: type) -> Text:
        """A project class: its source when found (with dataclass fields and generated
        methods), its bases, methods and class-level values."""
        code = _first_code(cls)
        source = self._source(code.co_filename if code else _module_file(cls) or "")
        text = source.cls(cls.__qualname__) if source else None
        parts: list[Text] = [(f"class {cls.__module__}.{cls.__qualname__} {text}", [])]
        parts += [self._value(base, f"a base of {cls.__qualname__}") for base in cls.__bases__]
        for name, member in sorted(vars(cls).items()):
            for function in _functions_of(member):
                generated = not self._local_file(function.__code__.co_filename) or (
                    text is not None and function.__code__.co_filename.startswith("<")
                )
                if not generated:
                    parts.append(self._value(function, f"{cls.__qualname__}.{name}"))
            if not (_functions_of(member) or (name[:1] == "_" and name[-1:] == "_")):
                parts.append(self._value(member, f"{cls.__qualname__}.{name}"))
        return _joined("class", parts)

    # ------------------------------------------------------------------ sources

    def _code(self, code: types.CodeType) -> CodeFacts:
        memo = self._codes.get(id(code))
        if memo is not None and memo[0] is code:
            return memo[1]
        source = self._source(code.co_filename)
        text = source.function(code.co_firstlineno, code.co_name) if source else None
        text = "source:" + text if text else "bytecode:" + bytecode_text(code)
        info = CodeFacts(text, code)
        self._codes[id(code)] = (code, info)
        return info

    def _source(self, filename: str) -> SourceFile | None:
        if filename not in self._sources:
            self._sources[filename] = SourceFile.read(filename)
        return self._sources[filename]


def _package_base(space: dict[str, Any], level: int) -> str | None:
    """The package a relative import of `level` dots starts from, in a module whose
    globals are `space` (None: beyond the top, or not in a package)."""
    package = space.get("__package__")
    if package is None:
        name = space.get("__name__") or ""
        package = name if "__path__" in space else name.rpartition(".")[0]
    return _relative_base(package, level)


def _relative_base(package: str, level: int) -> str | None:
    """Where `from {level dots} import` starts in `package` (None: beyond the top)."""
    parts = package.split(".") if package else []
    if not parts or level - 1 >= len(parts):
        return None
    return ".".join(parts[: len(parts) - (level - 1)])


def _imports_in(tree: ast.Module | None, package: str) -> list[str]:
    """The modules a file's import statements name (anywhere in it: inside functions
    too), relative ones made absolute from its `package`; for `from a import b`,
    both a and a.b (b may be a submodule)."""
    if tree is None:
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                start = _relative_base(package, node.level)
                if start is None:
                    continue  # (Python refuses it too)
                base = f"{start}.{base}" if base else start
            if base:
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names)  # (a.*: any)
    return names


def _functions_of(member: object) -> list[types.FunctionType]:
    """The functions behind a class member: a method, a static or class method, a
    property's accessors, a cached property."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        found = [member.fget, member.fset, member.fdel]
    else:
        found = [member, getattr(member, "func", None)] if not isinstance(member, type) else []
    return [f for f in found if isinstance(f, types.FunctionType)]


def _first_code(cls: object) -> types.CodeType | None:
    for member in vars(cls).values() if isinstance(cls, type) else ():
        for function in _functions_of(member):
            return function.__code__
    return None


def _module_file(cls: type) -> str | None:
    module = sys.modules.get(cls.__module__)
    return getattr(module, "__file__", None)


def _joined(kind: str, parts: list[Text]) -> Text:
    nodes: list[object] = []
    for _, found in parts:
        nodes += found
    return f"{kind}({'; '.join(text for text, _ in parts)})", nodes


def _hex(text: str, digests: list[str]) -> str:
    whole = text + "->" + ",".join(digests)
    return blake2b(whole.encode(), digest_size=16).hexdigest()


def _described(what: str, value: object) -> str:
    return f"{what} (a {type(value).__module__}.{type(value).__qualname__})"


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
