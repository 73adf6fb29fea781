"""The trigger filter language: validation, compiled matching, explanations and an index.

A filter is a JSON object whose keys are paths into the event's ``data`` (dots for nesting)
and whose values say what the value there must be::

    {"model_source": "hugging_face", "auto_deploy": true}        # equality, AND of keys
    {"environment": ["production", "staging"]}                   # any-of
    {"replicas": {"$gt": 2, "$lte": 10}}                         # operators
    {"$or": [{"meta.region": "eu"}, {"$event.source": "budmodel"}]}

Filters are validated and compiled once (:func:`compile_filter`) into closures, so matching
never interprets the JSON again. :class:`TriggerIndex` keeps many compiled filters per event
type and only evaluates the ones whose most selective equality clause can hold for the event.
The full grammar and semantics are in ``docs/filters.md``.

The rooms behind this face: ``values`` (JSON values and paths), ``clauses`` (per-operator
tests and compiled nodes), ``language`` (the compiler and :class:`Filter`), ``verdicts``
(explanations) and ``index`` (:class:`TriggerIndex`).
"""

from __future__ import annotations

from bud.filters.index import TriggerIndex
from bud.filters.language import (
    MAX_ANY_OF,
    MAX_CLAUSES,
    MAX_DEPTH,
    MAX_WILDCARD_LENGTH,
    MAX_WILDCARD_STARS,
    OPERATORS,
    Filter,
    compile_filter,
    matches,
)
from bud.filters.verdicts import explain, first_failure, summarize

__all__ = [
    "MAX_ANY_OF",
    "MAX_CLAUSES",
    "MAX_DEPTH",
    "MAX_WILDCARD_LENGTH",
    "MAX_WILDCARD_STARS",
    "OPERATORS",
    "Filter",
    "TriggerIndex",
    "compile_filter",
    "explain",
    "first_failure",
    "matches",
    "summarize",
]
