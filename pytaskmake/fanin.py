"""A fan-in's inputs in slices, each with a stamp and a digest.

A summary reading 100,000 files used to be checked, keyed and recorded as one list:
one input edited decoded all 100,000 recorded fingerprints, hashed all 100,000 into
its run-cache key and encoded all 100,000 into its new record (1.5 s of the 6.3 s
that edit took at 100,000 points, against 3.6 s for ninja). A task with more than
THRESHOLD inputs now has them cut into slices of about MEAN paths where the paths
say (cuts.py), so adding or removing points moves only the slices around them. Each
slice has

- a stamp: a digest of its paths and their stats. A slice whose stamp its record
  holds is, file for file, what was recorded (the stat shortcut every record takes):
  it is not decoded, compared, hashed or encoded again;
- a digest of its paths and their content hashes: a fan-in's run-cache key is made
  of its slices' digests, so a slice as recorded keeps its digest.

Tasks with fewer inputs keep their records, stamps and keys as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Container, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, NamedTuple

from .cuts import cut_points
from .digest import blake2b
from .fingerprint import ABSENT, PACKED, FileCache, Fingerprint, Stat, packed_stats

if TYPE_CHECKING:
    from .state import TaskRecord

THRESHOLD = 8192  # tasks with more inputs than this are sliced
AT_ONCE = 4  # up to this many moved slices of a record are decoded at once (see Recorded)
MEAN = 4096  # mean paths per slice
_MOST = 4 * MEAN  # a run of paths without a cut is cut here


def is_fanin(inputs: int) -> bool:
    """Whether a task with this many inputs has them sliced."""
    return inputs > THRESHOLD


def slice_stamp(paths: Sequence[str], packed: bytes) -> int:
    """A digest of a slice's paths and their packed stats, in order (a missing file
    packed as such); non-negative and under 2**63, as SQLite keeps integers."""
    return _stamp(_paths_hashed(paths), packed)


def _paths_hashed(paths: Sequence[str]) -> blake2b:
    """The first half of a slice's stamp: its paths (the same at every stamp)."""
    h = blake2b(digest_size=8)
    h.update("\0".join(paths).encode())
    h.update(b"\1")
    return h


def _stamp(paths_hashed: blake2b, packed: bytes) -> int:
    h = paths_hashed.copy()
    h.update(packed)
    return int.from_bytes(h.digest(), "little") >> 1


def slice_digest(files: Mapping[str, Fingerprint]) -> str:
    """A digest of a slice's paths and content hashes, in order (its part of a key)."""
    text = "\0".join([f"{p}={fp[1]}" for p, fp in files.items()])
    return blake2b(text.encode(), digest_size=20).hexdigest()


class Slice(NamedTuple):
    """Consecutive declared inputs of a fan-in, as they are now."""

    paths: tuple[str, ...]
    packed: bytes  # their stats (fingerprint.packed_stats)
    stamp: int
    digest: str
    files: dict[str, Fingerprint] | None  # None: as the record's part `seq`, or `text`
    seq: int = -1
    # its files as its record's row will hold them (state.encode_inputs), made when
    # they are fingerprinted: ~150 bytes a file against ~420 as a dict of tuples (a
    # summary's 100,000 inputs are held from its key until its record is written)
    text: str | None = None

    @property
    def kept(self) -> bool:
        """Exactly as the record's part `seq`."""
        return self.files is None and self.text is None


class StoredSlice(NamedTuple):
    """A slice as a record keeps it (state.py): its part, stamp and digest."""

    seq: int
    stamp: int
    digest: str


class SlicedInputs(Mapping[str, Fingerprint]):
    """A fan-in's inputs as its next record will hold them, most slices as recorded.

    A mapping like any task's inputs; reading a file's fingerprint decodes the
    slices kept as recorded, so only do that before the record is written again
    (the build itself reads only `slices` and `stats`).
    """

    def __init__(self, slices: list[Slice], record: TaskRecord | None = None) -> None:
        self.slices = slices
        self._record = record
        self._all: dict[str, Fingerprint] | None = None

    @classmethod
    def of(cls, files: Mapping[str, Fingerprint]) -> SlicedInputs:
        """Fingerprints taken elsewhere (a dict), sliced: every slice new."""
        if isinstance(files, SlicedInputs):
            return files
        paths = tuple(files)
        slices = []
        for a, b in pairwise(cut_points(paths, MEAN, _MOST)):
            part = paths[a:b]
            mine = {p: files[p] for p in part}
            packed = packed_stats([fp[0] for fp in mine.values()])
            slices.append(Slice(part, packed, slice_stamp(part, packed), slice_digest(mine), mine))
        return cls(slices)

    def __reduce__(self) -> tuple[type, tuple[dict[str, Fingerprint]]]:
        """Pickled (or copied) as the plain dict it stands for: a SlicedInputs reads
        kept slices through its record, which a pickle cannot carry."""
        return (dict, (dict(self._files()),))

    def __len__(self) -> int:
        return sum(1 for _ in self.stats())

    def __iter__(self) -> Iterator[str]:
        return (path for path, _ in self.stats())

    def __getitem__(self, path: str) -> Fingerprint:
        return self._files()[path]

    def stats(self, skip: Container[str] = ()) -> Iterator[tuple[str, Stat]]:
        """Each present input and its stat, without decoding anything; `skip`: paths
        left out before their stat is unpacked."""
        unpack, size = PACKED.unpack_from, PACKED.size
        for s in self.slices:
            packed = s.packed
            for k, path in enumerate(s.paths):
                if path not in skip:
                    item = packed[k * size : (k + 1) * size]
                    if item != ABSENT:
                        yield path, unpack(item)  # type: ignore[misc]

    def _files(self) -> dict[str, Fingerprint]:
        if self._all is None:
            found: dict[str, Fingerprint] = {}
            for s in self.slices:
                if s.files is not None:
                    found.update(s.files)
                elif s.text is not None:
                    found.update(_decoded(s.text))
                else:
                    found.update(self._recorded(s))
            self._all = found
        return self._all

    def _recorded(self, s: Slice) -> dict[str, Fingerprint]:
        files = self._record.slice_files([s.seq]) if self._record is not None else {}
        if tuple(files) != tuple(p for p, _ in _present(s)):
            raise RuntimeError(f"slice {s.seq} of a record changed under its reader")
        return files


def encoded(s: Slice, files: dict[str, Fingerprint]) -> Slice:
    """`s` with these files fingerprinted, encoded as its record's row will hold them."""
    from .state import encode_inputs  # (state imports this module)

    return s._replace(files=None, text=encode_inputs(files), digest=slice_digest(files))


def _decoded(text: str) -> dict[str, Fingerprint]:
    from .state import decode_parts

    return decode_parts([text])[0]


def _present(s: Slice) -> Iterator[tuple[str, bytes]]:
    """Each path of a slice whose file exists, and its packed stat."""
    return ((path, item) for path, item in _packed_items(s.paths, s.packed) if item != ABSENT)


def _packed_items(paths: tuple[str, ...], packed: bytes) -> Iterator[tuple[str, bytes]]:
    size = PACKED.size
    return ((path, packed[k * size : (k + 1) * size]) for k, path in enumerate(paths))


def stats_of(
    inputs: Mapping[str, Fingerprint], skip: Container[str] = ()
) -> Iterator[tuple[str, Stat]]:
    """Each input and its stat, from any task's inputs (a fan-in's: nothing decoded);
    `skip`: paths left out (a summary's 100,000 produced inputs: no stat unpacked)."""
    if isinstance(inputs, SlicedInputs):
        return inputs.stats(skip)
    return ((path, fp[0]) for path, fp in inputs.items() if path not in skip)


def cut(paths: tuple[str, ...], files: FileCache) -> list[tuple[tuple[str, ...], bytes, int]]:
    """The slices of `paths` as they are now: (paths, packed stats, stamp) each."""
    found = []
    for part, paths_hashed in _plan(paths):
        packed = files.packed(part)
        found.append((part, packed, _stamp(paths_hashed, packed)))
    return found


_PLANS: dict[tuple[str, ...], list[tuple[tuple[str, ...], blake2b]]] = {}
_PLANS_KEPT = 8


def _plan(paths: tuple[str, ...]) -> list[tuple[tuple[str, ...], blake2b]]:
    """Where a fan-in's inputs are cut, and each slice's paths hashed: the same at
    every stamp of the same inputs. A build stamps a fan-in up to three times (dirty
    set, verdict, record) and watch mode once per rebuild; kept for the last few
    fan-ins stamped (by value: a graph build gives a task a new inputs tuple)."""
    plan = _PLANS.pop(paths, None)
    if plan is None:
        plan = [
            (paths[a:b], _paths_hashed(paths[a:b]))
            for a, b in pairwise(cut_points(paths, MEAN, _MOST))
        ]
        if len(_PLANS) >= _PLANS_KEPT:
            del _PLANS[next(iter(_PLANS))]  # the least recently used
    _PLANS[paths] = plan
    return plan


def first_missing(part: tuple[str, ...], packed: bytes) -> str | None:
    """The first path of a slice whose file does not exist, or None."""
    if ABSENT not in packed:  # (a quick no for nearly every slice)
        return None
    return next((path for path, item in _packed_items(part, packed) if item == ABSENT), None)


def current(paths: tuple[str, ...], files: FileCache, record: TaskRecord | None) -> SlicedInputs:
    """A fan-in's inputs just before it runs (what its record will say): the slices
    its record holds are kept as they are; in the others, files whose stat still
    matches the record keep its hash unread."""
    stored = record.slices if record is not None and record.ok else None
    by_stamp = {s.stamp: s for s in stored or ()}
    slices: list[Slice] = []
    pending: list[int] = []
    for part, packed, stamp in cut(paths, files):
        hit = by_stamp.pop(stamp, None)
        if hit is not None:
            slices.append(Slice(part, packed, stamp, hit.digest, None, hit.seq))
        else:
            pending.append(len(slices))
            slices.append(Slice(part, packed, stamp, "", {}))
    if pending:
        known = _known(record, stored, by_stamp)
        fingerprint = files.fingerprint
        for i in pending:
            s = slices[i]
            found = {}
            for p in s.paths:
                fp = fingerprint(p, known.get(p))
                if fp is not None:
                    found[p] = fp
            slices[i] = encoded(s, found)
    return SlicedInputs(slices, record)


def _known(
    record: TaskRecord | None,
    stored: list[StoredSlice] | None,
    unmatched: dict[int, StoredSlice],
) -> dict[str, Fingerprint] | Recorded:
    """What the record says of the files of slices it does not hold as they are now."""
    if record is None or not record.ok:
        return {}
    if stored is None:  # recorded before slices (or in an older layout): all of it
        return record.inputs
    return recorded(record, [s.seq for s in unmatched.values()])


def recorded(record: TaskRecord, seqs: list[int]) -> dict[str, Fingerprint] | Recorded:
    """The files a record holds in its slices `seqs`: decoded at once when few, else a
    Recorded window (every slice of a summary of 100,000 inputs moves when a parameter
    every point reads changes: decoded at once, they were ~40 MiB)."""
    return record.slice_files(seqs) if len(seqs) <= AT_ONCE else Recorded(record, seqs)


class Recorded:
    """A record's moved slices, decoded one at a time in record order as their paths
    are asked for, each fingerprint dropped once given (`get`): asked in input order,
    about one slice is held at a time; asked otherwise, still every answer."""

    def __init__(self, record: TaskRecord, seqs: list[int]) -> None:
        self._record, self._todo = record, deque(seqs)
        self._known: dict[str, Fingerprint] = {}

    def get(self, path: str) -> Fingerprint | None:
        known = self._known
        while path not in known and self._todo:
            known.update(self._record.slice_files([self._todo.popleft()]))
        return known.pop(path, None)

    def __getitem__(self, path: str) -> Fingerprint:
        found = self.get(path)
        if found is None:
            raise KeyError(path)
        return found

    def exhausted(self) -> bool:
        """Every recorded file was asked for."""
        return not self._known and not self._todo


def sliced_stamp(key: int, slice_stamps: list[int], others: list[Stat | None]) -> int:
    """A fan-in record's stamp: its slices' stamps stand for its inputs' stats."""
    return hash((key, *slice_stamps, *others))
