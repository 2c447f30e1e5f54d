"""A canonical hash of Python values: joblib's hasher, completed for signatures.

joblib hashes a value by pickling it (objects by their state, numpy arrays by
dtype, shape and bytes, dicts and sets order-free); what it lacks for a signature is
added here: code met inside a value is named by the caller (project code is hashed by
what it is, and the Taskfile's own classes cannot be pickled by reference), and
sets, frozensets and dict keys of mixed types are ordered by their own hashes, not by
hash(), which differs between processes for strings. joblib is imported on the
first value that needs it (importing it costs a third of a second: no build without
such a value pays for it).
"""

from __future__ import annotations

import functools
import pickle
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

# names a piece of code met inside a value, adding what must be hashed to the list
Namer = Callable[[object, list[object]], str]


def value_hash(value: object, namer: Namer) -> tuple[str, list[object]]:
    """joblib's hash of `value`, and the code objects `namer` was given on the way.
    Raises what pickling raises for a value that cannot be pickled."""
    plain, with_numpy = _hashers()
    hasher = (with_numpy if "numpy" in sys.modules else plain)(namer)
    return hasher.hash(value), hasher.nodes


@functools.cache
def _hashers() -> tuple[type[Any], type[Any]]:
    """joblib's hashers completed by _Canonical: without numpy, and with it."""
    from joblib import hashing

    class Canonical(_Canonical):
        dispatch = {**hashing.Hasher.dispatch, set: _save_set, frozenset: _save_set}

    class Hasher(Canonical, hashing.Hasher):
        pass

    class NumpyHasher(Canonical, hashing.NumpyHasher):
        pass

    return Hasher, NumpyHasher


class _Canonical:
    """What joblib's hasher is missing for a signature: project code met inside a
    value is a node (hashed by what it is, not pickled by reference, which fails for
    the Taskfile's own classes), and sets, frozensets and dict keys of mixed or
    partially ordered types are ordered by their own hashes, not by hash() (which
    differs between processes for strings)."""

    namer: Namer
    nodes: list[object]

    def __init__(self, namer: Namer) -> None:
        super().__init__()  # type: ignore[call-arg]
        self.namer = namer
        self.nodes = []

    def persistent_id(self, obj: object) -> str | None:
        if (
            type(obj) is types.FunctionType
            or type(obj) is types.ModuleType
            or isinstance(obj, type)
        ):
            return self.namer(obj, self.nodes)
        wrapped = getattr(type(obj), "__module__", None) == "functools" and getattr(
            obj, "__wrapped__", None
        )
        if isinstance(wrapped, types.FunctionType):  # an lru_cache'd function
            return "cached " + self.namer(wrapped, self.nodes)
        return None

    def save(self, obj: object, save_persistent_id: bool = True) -> None:
        if save_persistent_id:  # joblib's save (it does not pass the flag on)
            super().save(obj)  # type: ignore[misc]
        else:  # the persistent id itself
            pickle._Pickler.save(self, obj, save_persistent_id)  # type: ignore[attr-defined]

    def _ordered(self, items: list[object]) -> list[object]:
        kinds = {type(item) for item in items}
        if kinds <= _NUMBERS or (len(kinds) == 1 and kinds <= _TOTAL):
            return sorted(items)  # type: ignore[type-var]
        keys = {}
        for item in items:
            sub = type(self)(self.namer)
            keys[id(item)] = sub.hash(item)
            self.nodes += sub.nodes
        return sorted(items, key=lambda item: keys[id(item)])

    def _batch_setitems(self, items: Iterator[tuple[object, object]], *args: object) -> None:
        pairs = dict(items)
        ordered = [(key, pairs[key]) for key in self._ordered(list(pairs))]
        pickle._Pickler._batch_setitems(self, iter(ordered), *args)  # type: ignore[attr-defined]


def _save_set(self: _Canonical, obj: set[object] | frozenset[object]) -> None:
    self.save((type(obj).__name__, self._ordered(list(obj))))


_NUMBERS = frozenset((int, float, bool))
_TOTAL = frozenset((int, float, bool, str, bytes))
