"""The BLAKE2b that digests declarations, paths, stats and cache keys.

hashlib's own, taken from the module that provides it (`_blake2`, part of every
CPython since 3.6), because `import hashlib` first loads OpenSSL for algorithms
pytaskmake never uses: about 5 ms of a small project's 0.1 s no-op. File contents
are hashed with BLAKE3 (fingerprint.py), not this.
"""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # an interpreter built without it: the same function, slower to import
    from hashlib import blake2b

__all__ = ["blake2b"]
