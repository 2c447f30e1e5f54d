"""EMPTY: the one empty mapping that named tuples' mapping fields default to.

Named tuples (events, engine options, resource limits) cannot default a field to a
fresh dict per instance as dataclasses do, so they share this one: read-only, and,
unlike MappingProxyType({}), it pickles and deep-copies (as itself) and hashes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NoReturn


class _Empty(Mapping[Any, Any]):
    """The empty mapping: the default of the named tuples' mapping fields. Shared, so
    read-only; unlike MappingProxyType, it pickles and deep-copies (as itself)."""

    __slots__ = ()

    def __getitem__(self, key: object) -> NoReturn:
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"

    def __hash__(self) -> int:
        return 0

    def __reduce__(self) -> str:
        return "EMPTY"  # pickled as a reference to this module's one instance


EMPTY: Mapping[Any, Any] = _Empty()
