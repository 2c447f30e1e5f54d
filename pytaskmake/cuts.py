"""Content-defined cut points: where to split a long list so that an insertion or a
removal moves only the cuts next to it (as rsync and restic cut files).

A cut falls after an item whose key's CRC-32 is a multiple of `mean`, or after
`most` items without one. Used for the snapshot's chunks of tasks (keys: task names)
and a fan-in's slices of inputs (keys: paths).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable


def cut_points(keys: Iterable[str], mean: int, most: int) -> list[int]:
    """Where each piece starts, then the number of keys (so [0] for none)."""
    bounds = [0]
    crc = zlib.crc32
    last = 0
    i = 0
    for i, key in enumerate(keys, 1):
        if not crc(key.encode()) % mean or i - last >= most:
            bounds.append(i)
            last = i
    if bounds[-1] != i:
        bounds.append(i)
    return bounds
