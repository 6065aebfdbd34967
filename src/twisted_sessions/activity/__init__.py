"""
Activity: which users did what, per hour, day, ISO week, month and ever, as bitmaps in
bitmapist's layout (so bitmapist reads them), with HyperLogLog estimates, bitmapist's
operations and cohort tables.

- :mod:`.tracker`: :class:`Activity`, marking (``mark``, ``mark_event``, ``@marks``) and
  reading; the built-in marks.
- :mod:`.writer`: :class:`MarkWriter`, coalesced, bounded, spooled writing.
- :mod:`.ids`: :class:`UserIds`, users to dense bit offsets.
- :mod:`.periods`: :class:`Period`, the buckets and their bitmapist names.
- :mod:`.bitmaps`: :class:`Events` and the operations, evaluated on fetched bitmaps.
- :mod:`.cohort`: :func:`cohort_table` (Flask-Bitmapist) and :func:`dates_data` (bitmapist).

A domain beside clustering and counters, independent of both: it reads storage and the
interfaces only.
"""

from .bitmaps import BitmapReader, Events, Expression
from .cohort import CohortTable, cohort_table, dates_data
from .ids import UserIds
from .periods import SCALES, TIME_GROUPS, Period
from .tracker import BUILTIN, Activity
from .writer import MarkWriter

__all__ = [
    "BUILTIN",
    "SCALES",
    "TIME_GROUPS",
    "Activity",
    "BitmapReader",
    "CohortTable",
    "Events",
    "Expression",
    "MarkWriter",
    "Period",
    "UserIds",
    "cohort_table",
    "dates_data",
]
