"""
Cohort tables: of the users who did X in period N, how many did Y in period N+k.

- :func:`dates_data` has ``bitmapist.cohort.get_dates_data``'s semantics and shape, number for
  number: rows ``[start, count of select1, cell 0, ..., cell num_of_rows]``, a cell ``""`` when
  the row's cohort is empty or nothing was marked for select2 in that period, ``0.0`` for an
  empty intersection, else a percent of the cohort (or a count).
- :func:`cohort_table` has Flask-Bitmapist's ``get_cohort`` semantics (``None`` for a cell in
  the future, ``0`` when the second event has no marks then; with or without replacement: without,
  a user counts in the first cell they return in only), and adds the row and column totals and
  the column averages a retention chart shows.

Both read each bitmap once per table (a :class:`BitmapReader`), and do the operations in
Python (see :mod:`.bitmaps`): no Redis call blocks Redis for longer than one ``GET``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.defer import Deferred

from ..storage.link import gather
from .bitmaps import BitmapReader, Events, Expression
from .periods import TIME_GROUPS, Period

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime

    from ..storage.link import Link


async def _breathe(clock: IReactorTime | None) -> None:
    """
    Let the reactor serve what waits between two rows: a large table over a million users
    is a few hundred milliseconds of integer operations, which must not be one block.
    """
    if clock is not None:
        pause: Deferred[None] = Deferred()
        clock.callLater(0, pause.callback, None)
        await pause


async def _prefetch(
    reader: BitmapReader, events: tuple[str | None, ...], periods: list[Period]
) -> None:
    """
    Fetch every bitmap a table reads, all in flight at once (a table of 12 weeks reads 36),
    rather than one round trip after another as the cells ask for them.
    """
    keys = {
        key
        for event in events
        if event
        for period in periods
        for key in Events(reader, event, period).keys
    }
    await gather([reader.bitmap(key) for key in sorted(keys)])


def _select(reader: BitmapReader, event: str, extra: str | None, period: Period) -> Expression:
    found: Expression = Events(reader, event, period)
    if extra:
        found = found & Events(reader, extra, period)
    return found


def _scale(time_group: str) -> Any:
    scale = TIME_GROUPS.get(time_group)
    if scale is None:
        raise ValueError(f"time_group must be one of {', '.join(TIME_GROUPS)}, not {time_group!r}")
    return scale


async def dates_data(
    link: Link,
    select1: str,
    select2: str,
    select1b: str | None = None,
    select2b: str | None = None,
    time_group: str = "days",
    as_percent: bool = True,
    num_results: int = 31,
    num_of_rows: int = 12,
    start_date: date | None = None,
    now: datetime | None = None,
    clock: IReactorTime | None = None,
) -> list[list[Any]]:
    """
    ``bitmapist.cohort.get_dates_data``, read from our bitmaps: the same rows, the same cells.

    :param now: the current moment (``datetime.now(UTC)`` if not given; pass the reactor's).
    :param clock: the reactor: given, the reactor serves other work between rows.
    """
    scale = _scale(time_group)
    if num_results < 1 or num_of_rows < 0:
        raise ValueError("num_results must be at least 1 and num_of_rows at least 0")
    if start_date is not None:
        # As bitmapist: the last row is num_results - 1 *days* after start_date, whatever
        # the time group (so start_date names the first row only for days).
        moment = datetime(start_date.year, start_date.month, start_date.day, tzinfo=UTC)
        moment += timedelta(days=num_results - 1)
    else:
        moment = now if now is not None else datetime.now(UTC)
    if time_group == "years":
        num_results = 3  # As bitmapist does, whatever is asked.
    first = Period.of(moment, scale).delta(-(num_results - 1))
    reader = BitmapReader(link)
    await _prefetch(
        reader,
        (select1, select1b, select2, select2b),
        [first.delta(step) for step in range(num_results + num_of_rows)],
    )
    rows: list[list[Any]] = []
    for index in range(num_results):
        await _breathe(clock)
        period = first.delta(index)
        cohort = _select(reader, select1, select1b, period)
        size = await cohort.count()
        row: list[Any] = [period.start, size]
        for step in range(num_of_rows + 1):
            if size == 0:
                row.append("")
                continue
            second = _select(reader, select2, select2b, period.delta(step))
            if not await second.has_events_marked():
                row.append("")
                continue
            both = await (cohort & second).count()
            if both == 0:
                row.append(0.0)
            elif as_percent:
                row.append(both / size * 100)
            else:
                row.append(both)
        rows.append(row)
    return rows


@attrs.frozen
class CohortTable:
    """
    A cohort table as Flask-Bitmapist's ``get_cohort`` gives it, with totals and averages.

    :ivar periods: the first period of each row.
    :ivar totals: the size of each row's cohort (users who did the primary event then).
    :ivar rows: per row, per step: users of the cohort who did the secondary event that many
        periods later (``None``: in the future; a row of an empty cohort is all ``None``).
    :ivar row_totals: per row, the sum of its cells.
    :ivar column_totals: per step, the sum of its cells.
    :ivar column_averages: per step, the mean over the rows that have it of the cell as a
        percent of its cohort (``None`` if no row has it): the retention curve.
    """

    time_group: str
    periods: list[Period]
    totals: list[int]
    rows: list[list[int | None]]
    row_totals: list[int]
    column_totals: list[int]
    column_averages: list[float | None]

    def percents(self) -> list[list[float | None]]:
        """
        The cells as percents of their cohort.
        """
        return [
            [None if cell is None else (cell / total * 100 if total else 0.0) for cell in row]
            for row, total in zip(self.rows, self.totals, strict=True)
        ]


async def cohort_table(
    link: Link,
    primary: str,
    secondary: str,
    primary_and: str | None = None,
    secondary_and: str | None = None,
    time_group: str = "days",
    num_rows: int = 10,
    num_cols: int = 10,
    with_replacement: bool = False,
    now: datetime | None = None,
    clock: IReactorTime | None = None,
) -> CohortTable:
    """
    Flask-Bitmapist's ``get_cohort`` (its ``additional_events`` as ``primary_and`` and
    ``secondary_and``: an event both must have too), with the totals of a retention table.

    :param now: the current moment: rows end with its period, cells after it are ``None``.
    :param clock: the reactor: given, the reactor serves other work between rows.
    """
    scale = _scale(time_group)
    if not 1 <= num_rows <= 1000 or not 1 <= num_cols <= 1000:
        raise ValueError("num_rows and num_cols must be from 1 to 1000")
    moment = now if now is not None else datetime.now(UTC)
    current = Period.of(moment, scale)
    first = current.delta(-(num_rows - 1))
    reader = BitmapReader(link)
    await _prefetch(
        reader,
        (primary, primary_and, secondary, secondary_and),
        [first.delta(step) for step in range(num_rows)],
    )
    periods, totals, rows = [], [], []
    for index in range(num_rows):
        await _breathe(clock)
        period = first.delta(index)
        cohort = await _select(reader, primary, primary_and, period).value()
        total = cohort.bit_count()
        periods.append(period)
        totals.append(total)
        row: list[int | None] = []
        for step in range(num_cols):
            later = period.delta(step)
            if total == 0 or later > current:
                row.append(None)
                continue
            second = await _select(reader, secondary, secondary_and, later).value()
            both = cohort & second
            row.append(both.bit_count())
            if not with_replacement:
                cohort ^= both  # Who came back is not counted again in a later cell.
        rows.append(row)
    column_totals, column_averages = [], []
    for step in range(num_cols):
        cells = [
            (row[step], total)
            for row, total in zip(rows, totals, strict=True)
            if row[step] is not None
        ]
        column_totals.append(sum(cell for cell, _ in cells if cell is not None))
        percents = [cell / total * 100 for cell, total in cells if cell is not None and total]
        column_averages.append(sum(percents) / len(percents) if percents else None)
    return CohortTable(
        time_group,
        periods,
        totals,
        rows,
        [sum(cell for cell in row if cell is not None) for row in rows],
        column_totals,
        column_averages,
    )
