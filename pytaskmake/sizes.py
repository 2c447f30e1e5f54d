"""Sizes as people write them ("10G", "500M"), for the cache limit and task memory.

Its own module so that reading a size does not import the run cache.
"""

from __future__ import annotations


def parse_size(text: str) -> int:
    """'10G', '500M', '1.5k', '1024' -> bytes (powers of 1024)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (try 10G, 500M, 1024)") from None
    if value < 0:
        raise ValueError(f"not a size: {text!r}")
    return int(value * units[unit])
