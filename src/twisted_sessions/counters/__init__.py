"""
Metrica counters (Staste semantics): counts, totals and averages for every combination of axis
values, in hour, day, month, year and all-time buckets, written to Redis asynchronously.

- :mod:`.axis`: the axes a metrica counts by (fixed choices, stored values, hierarchies).
- :mod:`.metrica`: :class:`Metrica`, :class:`AveragedMetrica` and their :class:`CounterStore`.
- :mod:`.query`: :class:`Query`, the reads: totals, breakdowns, time series.
- :mod:`.writer`: :class:`CounterWriter`, kicks coalesced and written in idempotent batches.
- :mod:`.timebuckets`: :class:`Timespan`, the time buckets.
- :mod:`.counting`: :class:`Counting`, the server's built-in metricas and the application's.

Keys are built by ``twisted_sessions.storage.keys``; the clusterer is known only through
``twisted_sessions.interfaces``.
"""

from .axis import OVERFLOW, Axis, HierarchicalAxis, StoredChoiceAxis
from .counting import Counting
from .metrica import AveragedMetrica, CounterStore, Metrica
from .query import Query
from .timebuckets import Timespan
from .writer import CounterWriter

__all__ = [
    "OVERFLOW",
    "AveragedMetrica",
    "Axis",
    "CounterStore",
    "CounterWriter",
    "Counting",
    "HierarchicalAxis",
    "Metrica",
    "Query",
    "StoredChoiceAxis",
    "Timespan",
]
