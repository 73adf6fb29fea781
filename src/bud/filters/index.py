"""The trigger index: many compiled filters per event type, evaluated only when they can hold.

Each trigger gets a *guard*: a few terms such that whenever its filter matches an event, at
least one term is hit by that event. A term is an equality on a path (dict buckets), a string
prefix on a path (buckets per prefix length) or a numeric/string bound on a path (a sorted
list searched with bisect). Matching collects the triggers of every hit term and runs only
their compiled filters; triggers without a guard are scanned on every event.

Memory: an entry keeps only what matching needs, its guard terms and the *residual*
predicate (the filter minus the clause its guard proves), built from shared pieces; the
compiled :class:`~bud.filters.Filter` itself is not kept. A bucket holding one trigger holds
the entry itself rather than a one-item dict.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from bud.filters.clauses import _ORDERING, Predicate, _all_of, _Group, _Leaf, _Node, _true
from bud.filters.language import Filter, compile_filter
from bud.filters.values import MISSING, _is_number, _key, _make_getter

_EQ: Final = "eq"
_PREFIX: Final = "prefix"
_RANGE: Final = "range"
# A bound term is chosen only when no equality or prefix term is about as narrow, since it
# hits every event on the satisfied side of the bound.
_RANGE_BASE_COST: Final = 4.0
_NEW_PATH_COST: Final = 0.5

# (kind, path segments, payload): the payload is the equality keys, the prefix, or the pair
# (operator, bound). Equality keys are a frozenset while the guard is chosen; an entry keeps
# them as its one key, or a tuple of keys (a key is never a tuple).
_Term = tuple[str, tuple[str, ...], Any]


class _Entry:
    __slots__ = ("event_type", "fn", "seq", "terms", "trigger_id")

    def __init__(self, trigger_id: str, seq: int, event_type: str) -> None:
        self.trigger_id = trigger_id
        self.seq = seq
        self.event_type = event_type
        self.fn: Predicate = _true
        # The guard terms, flattened: (kind, segs, payload, kind, segs, payload, ...).
        self.terms: tuple[Any, ...] = ()

    def each_term(self) -> list[_Term]:
        t = self.terms
        return [(t[i], t[i + 1], t[i + 2]) for i in range(0, len(t), 3)]


# A bucket: the one entry of its key, or a dict of them by trigger id once there are more.
_Bucket = _Entry | dict[str, _Entry]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def _keys(payload: Any) -> Collection[Any]:
    """The equality keys of a payload, as chosen (a frozenset) or as kept (a key or a tuple)."""
    return payload if isinstance(payload, (tuple, frozenset)) else (payload,)


def _size(bucket: _Bucket | None) -> int:
    if bucket is None:
        return 0
    return 1 if isinstance(bucket, _Entry) else len(bucket)


def _add(buckets: dict[Any, _Bucket], key: Any, entry: _Entry) -> bool:
    """Put ``entry`` in the bucket at ``key``; False if its trigger was there already."""
    bucket = buckets.get(key)
    if bucket is None:
        buckets[key] = entry
        return True
    if isinstance(bucket, _Entry):
        if bucket.trigger_id == entry.trigger_id:
            buckets[key] = entry
            return False
        buckets[key] = {bucket.trigger_id: bucket, entry.trigger_id: entry}
        return True
    fresh = entry.trigger_id not in bucket
    bucket[entry.trigger_id] = entry
    return fresh


def _drop(buckets: dict[Any, _Bucket], key: Any, entry: _Entry) -> bool:
    """Take ``entry`` out of the bucket at ``key``; False if it was not there.

    An emptied bucket is dropped, so ``__bool__`` can tell an empty structure; a bucket left
    with one entry holds it directly again.
    """
    bucket = buckets.get(key)
    if bucket is None:
        return False
    if isinstance(bucket, _Entry):
        if bucket.trigger_id != entry.trigger_id:
            return False
        del buckets[key]
        return True
    if bucket.pop(entry.trigger_id, None) is None:
        return False
    if len(bucket) == 1:
        buckets[key] = next(iter(bucket.values()))
    elif not bucket:
        del buckets[key]
    return True


def _gather(bucket: _Bucket, out: dict[str, _Entry]) -> None:
    if isinstance(bucket, _Entry):
        out[bucket.trigger_id] = bucket
    else:
        out.update(bucket)


# ---------------------------------------------------------------------------------------------
# Structures. Each serves one kind of term on one path, and they share an interface: ``get``
# resolves the path, ``collect`` adds the triggers hit by the (present) value, ``crowd``
# estimates how many triggers a payload would share its hits with, ``add`` / ``discard``
# maintain it, and it is falsy once empty.


class _EqIndex:
    """path value -> triggers, with 1 and 1.0 in one bucket and True apart from 1."""

    __slots__ = ("buckets", "get")

    def __init__(self, segs: tuple[str, ...]) -> None:
        self.get = _make_getter(segs)
        self.buckets: dict[Any, _Bucket] = {}

    def crowd(self, keys: Any) -> int:
        return sum(_size(self.buckets.get(k)) for k in _keys(keys))

    def add(self, keys: Any, entry: _Entry) -> None:
        for key in _keys(keys):
            _add(self.buckets, key, entry)

    def discard(self, keys: Any, entry: _Entry) -> None:
        for key in _keys(keys):
            _drop(self.buckets, key, entry)

    def __bool__(self) -> bool:
        return bool(self.buckets)

    def collect(self, value: Any, out: dict[str, _Entry]) -> None:
        buckets = self.buckets
        if isinstance(value, (list, tuple)):
            for item in value:
                bucket = buckets.get(_key(item))
                if bucket is not None:
                    _gather(bucket, out)
        else:
            bucket = buckets.get(value if type(value) is str else _key(value))
            if bucket is not None:
                if isinstance(bucket, _Entry):
                    out[bucket.trigger_id] = bucket
                else:
                    out.update(bucket)


class _PrefixIndex:
    """prefix -> triggers; an event string is cut at each registered prefix length."""

    __slots__ = ("buckets", "get", "lengths", "sorted_lengths")

    def __init__(self, segs: tuple[str, ...]) -> None:
        self.get = _make_getter(segs)
        self.buckets: dict[str, _Bucket] = {}
        self.lengths: dict[int, int] = {}
        self.sorted_lengths: tuple[int, ...] = ()

    def crowd(self, prefix: str) -> int:
        return _size(self.buckets.get(prefix))

    def add(self, prefix: str, entry: _Entry) -> None:
        if not _add(self.buckets, prefix, entry):
            return
        size = len(prefix)
        self.lengths[size] = self.lengths.get(size, 0) + 1
        if self.lengths[size] == 1:
            self.sorted_lengths = tuple(sorted(self.lengths))

    def discard(self, prefix: str, entry: _Entry) -> None:
        if not _drop(self.buckets, prefix, entry):
            return
        size = len(prefix)
        self.lengths[size] -= 1
        if not self.lengths[size]:
            del self.lengths[size]
            self.sorted_lengths = tuple(sorted(self.lengths))

    def __bool__(self) -> bool:
        return bool(self.buckets)

    def collect(self, value: Any, out: dict[str, _Entry]) -> None:
        buckets = self.buckets
        for text in _strings(value):
            size = len(text)
            for cut in self.sorted_lengths:
                if cut > size:
                    break
                bucket = buckets.get(text[:cut])
                if bucket is not None:
                    _gather(bucket, out)


class _Bounds:
    """One operator's bounds on one path, sorted, each with its trigger."""

    __slots__ = ("bounds", "entries")

    def __init__(self) -> None:
        self.bounds: list[Any] = []
        self.entries: list[_Entry] = []

    def add(self, bound: Any, entry: _Entry) -> None:
        at = bisect.bisect_right(self.bounds, bound)
        self.bounds.insert(at, bound)
        self.entries.insert(at, entry)

    def discard(self, bound: Any, entry: _Entry) -> None:
        at = bisect.bisect_left(self.bounds, bound)
        end = bisect.bisect_right(self.bounds, bound)
        for i in range(at, end):
            if self.entries[i] is entry:
                del self.bounds[i]
                del self.entries[i]
                return

    def satisfied_by(self, op: str, value: Any) -> list[_Entry]:
        """The entries whose bound ``value`` satisfies under ``op``."""
        if op == "$gt":  # bound < value
            return self.entries[: bisect.bisect_left(self.bounds, value)]
        if op == "$gte":  # bound <= value
            return self.entries[: bisect.bisect_right(self.bounds, value)]
        if op == "$lt":  # value < bound
            return self.entries[bisect.bisect_right(self.bounds, value) :]
        return self.entries[bisect.bisect_left(self.bounds, value) :]  # $lte: value <= bound


class _RangeIndex:
    """(operator, number-or-string) -> sorted bounds on one path."""

    __slots__ = ("get", "lists")

    def __init__(self, segs: tuple[str, ...]) -> None:
        self.get = _make_getter(segs)
        self.lists: dict[tuple[str, bool], _Bounds] = {}

    def crowd(self, payload: tuple[str, Any]) -> float:
        op, bound = payload
        found = self.lists.get((op, isinstance(bound, str)))
        # Half the bounds on the same side are hit by a typical value.
        return len(found.bounds) / 2 if found is not None else 0

    def add(self, payload: tuple[str, Any], entry: _Entry) -> None:
        op, bound = payload
        key = (op, isinstance(bound, str))
        found = self.lists.get(key)
        if found is None:
            found = self.lists[key] = _Bounds()
        found.add(bound, entry)

    def discard(self, payload: tuple[str, Any], entry: _Entry) -> None:
        op, bound = payload
        key = (op, isinstance(bound, str))
        found = self.lists.get(key)
        if found is not None:
            found.discard(bound, entry)
            if not found.bounds:
                del self.lists[key]

    def __bool__(self) -> bool:
        return bool(self.lists)

    def collect(self, value: Any, out: dict[str, _Entry]) -> None:
        items = value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if isinstance(item, str):
                text = True
            elif _is_number(item) and not (isinstance(item, float) and math.isnan(item)):
                text = False
            else:
                continue
            for (op, for_text), bounds in self.lists.items():
                if for_text is text:
                    for entry in bounds.satisfied_by(op, item):
                        out[entry.trigger_id] = entry


_Structure = _EqIndex | _PrefixIndex | _RangeIndex

# In this order, which is also the order ``match`` collects in.
_STRUCTURES: Final[dict[str, Callable[[tuple[str, ...]], _Structure]]] = {
    _EQ: _EqIndex,
    _PREFIX: _PrefixIndex,
    _RANGE: _RangeIndex,
}


# ---------------------------------------------------------------------------------------------
# Guards


class _TypeIndex:
    """The triggers of one event type: per kind of term, one structure per path."""

    __slots__ = ("count", "scan", "structures", "tables")

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, ...], _Structure]] = {
            kind: {} for kind in _STRUCTURES
        }
        # Every structure of every table, in kind order: what ``match`` walks.
        self.structures: tuple[_Structure, ...] = ()
        self.scan: dict[str, _Entry] = {}
        self.count = 0

    def _restructured(self) -> None:
        self.structures = tuple(s for table in self.tables.values() for s in table.values())

    def _cost(self, term: _Term) -> float:
        kind, segs, payload = term
        where = self.tables[kind].get(segs)
        crowd = where.crowd(payload) if where is not None else _NEW_PATH_COST
        if kind == _EQ:
            return crowd + 0.01 * len(payload)
        if kind == _PREFIX:
            return 1.0 + crowd
        return _RANGE_BASE_COST + crowd

    def guard(self, node: _Node) -> tuple[float, list[_Term]] | None:
        """The cheapest guard for a node, with its estimated candidate count."""
        if isinstance(node, _Leaf):
            term = _leaf_term(node)
            return None if term is None else (self._cost(term), [term])
        if node.op == "$not":
            return None
        options = [self.guard(child) for child in node.children]
        if node.op == "$or":
            total, terms = 0.0, []
            for option in options:
                if option is None:
                    return None
                total += option[0]
                terms.extend(option[1])
            return total, terms
        best: tuple[float, list[_Term]] | None = None
        for option in options:
            if option is not None and (best is None or option[0] < best[0]):
                best = option
        return best

    def link(self, entry: _Entry, root: _Group) -> None:
        self.count += 1
        found = self.guard(root) if root.children else None
        if found is None:
            entry.fn = root.predicate()
            self.scan[entry.trigger_id] = entry
            return
        terms = found[1]
        entry.fn = _residual(root, terms[0]) if len(terms) == 1 else root.predicate()
        entry.terms = tuple(part for term in terms for part in _stored(term))
        for kind, segs, payload in entry.each_term():
            table = self.tables[kind]
            where = table.get(segs)
            if where is None:
                where = table[segs] = _STRUCTURES[kind](segs)
                self._restructured()
            where.add(payload, entry)

    def unlink(self, entry: _Entry) -> None:
        self.count -= 1
        self.scan.pop(entry.trigger_id, None)
        for kind, segs, payload in entry.each_term():
            table = self.tables[kind]
            where = table.get(segs)
            if where is None:
                continue
            where.discard(payload, entry)
            if not where:
                del table[segs]
                self._restructured()
        entry.terms = ()


def _stored(term: _Term) -> _Term:
    """The term as an entry keeps it: equality keys as the key or a tuple, which are smaller."""
    kind, segs, payload = term
    if kind != _EQ:
        return term
    return (kind, segs, next(iter(payload)) if len(payload) == 1 else tuple(payload))


def _leaf_term(leaf: _Leaf) -> _Term | None:
    if leaf.index_keys is not None:
        return (_EQ, leaf.segs, leaf.index_keys)
    if leaf.op == "$prefix":
        return (_PREFIX, leaf.segs, leaf.expected)
    if leaf.op == "$wildcard":
        # Every string a glob matches starts with the literal text before its first '*'.
        head = str(leaf.expected).split("*", 1)[0]
        return (_PREFIX, leaf.segs, head) if head else None
    if leaf.op in _ORDERING:
        return (_RANGE, leaf.segs, (leaf.op, leaf.expected))
    return None


def _residual(root: _Group, term: _Term) -> Predicate:
    """The filter without the conjunct that ``term`` stands for, when a hit proves it.

    A candidate reached through an equality, ``$prefix`` or bound term already satisfies that
    clause, so testing it again is wasted work. (A ``$wildcard`` head proves nothing.)
    """
    for i, child in enumerate(root.children):
        if isinstance(child, _Leaf) and child.op != "$wildcard" and _leaf_term(child) == term:
            rest = root.children[:i] + root.children[i + 1 :]
            return _all_of([c.predicate() for c in rest])
    return root.predicate()


def _seq_of(entry: _Entry) -> int:
    return entry.seq


class TriggerIndex:
    """Compiled trigger filters grouped by event type, each reachable through its guard.

    :meth:`match` returns trigger ids in the order they were first put (replacing a trigger
    keeps its place). Not thread-safe: callers serialise :meth:`put` / :meth:`remove` against
    :meth:`match`.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._types: dict[str, _TypeIndex] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, trigger_id: object) -> bool:
        return trigger_id in self._entries

    def put(
        self, trigger_id: str, event_type: str, filter: Filter | Mapping[str, Any] | None
    ) -> None:
        """Add a trigger, or replace the one with the same id."""
        flt = compile_filter(filter)
        old = self._entries.get(trigger_id)
        if old is not None:
            seq = old.seq
            self._unlink(old)
        else:
            self._seq += 1
            seq = self._seq
        tindex = self._types.get(event_type)
        if tindex is None:
            tindex = self._types[event_type] = _TypeIndex()
        entry = _Entry(trigger_id, seq, event_type)
        self._entries[trigger_id] = entry
        tindex.link(entry, flt._root)

    def _unlink(self, entry: _Entry) -> None:
        tindex = self._types.get(entry.event_type)
        if tindex is None:
            return
        tindex.unlink(entry)
        if not tindex.count:
            del self._types[entry.event_type]

    def remove(self, trigger_id: str) -> None:
        """Forget a trigger; unknown ids are ignored."""
        entry = self._entries.pop(trigger_id, None)
        if entry is not None:
            self._unlink(entry)

    def candidates(self, event_type: str) -> list[str]:
        """Every trigger id registered for ``event_type``, in insertion order."""
        if event_type not in self._types:
            return []
        found = [e for e in self._entries.values() if e.event_type == event_type]
        return [e.trigger_id for e in sorted(found, key=_seq_of)]

    def match(self, event: Mapping[str, Any]) -> list[str]:
        """Ids of the triggers for ``event["event_type"]`` whose filter matches, in put order."""
        event_type = event.get("event_type")
        if type(event_type) is not str:
            return []
        tindex = self._types.get(event_type)
        if tindex is None:
            return []
        found: dict[str, _Entry] = {}
        for where in tindex.structures:
            value = where.get(event)
            if value is not MISSING:
                where.collect(value, found)
        hits = [entry for entry in found.values() if entry.fn(event)]
        for entry in tindex.scan.values():
            if entry.fn(event):
                hits.append(entry)
        if len(hits) > 1:
            hits.sort(key=_seq_of)
        return [e.trigger_id for e in hits]
