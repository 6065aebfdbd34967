"""
Metricas against a real Redis: Staste's README numbers, Staste's bugs fixed, axes, queries.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from twisted.internet import reactor

from twisted_sessions.counters import (
    OVERFLOW,
    AveragedMetrica,
    Axis,
    CounterStore,
    HierarchicalAxis,
    Metrica,
    StoredChoiceAxis,
)

from ..reactor_case import MetricaTestCase, coroutine_test


class StasteReadmeTests(MetricaTestCase):
    @coroutine_test
    async def test_averaged_metrica_example(self) -> None:
        """
        Staste's AveragedMetrica example gives exactly its numbers.
        """
        store = await self.store()
        axis = Axis(choices=["a", "b"])
        metrica = AveragedMetrica(
            "some_averaged_metrica", axes=[("c", axis)], multiplier=100, store=store
        )
        d1, d2, d3 = datetime(2010, 2, 7), datetime(2010, 2, 8), datetime(2010, 2, 9)
        metrica.kick(date=d1, value=12, c="a")
        metrica.kick(date=d1, value=2, c="b")
        metrica.kick(date=d2, value=7.5, c="a")
        metrica.kick(date=d2, value=0.16, c="a")
        metrica.kick(date=d3, c="b")
        await store.flush()
        days = (await metrica.timespan(year=2010, month=2).iterate_counts())[5:10]
        self.assertEqual(days, [(6, 0), (7, 2), (8, 2), (9, 1), (10, 0)])
        days = (await metrica.timespan(year=2010, month=2).iterate_averages())[5:10]
        self.assertEqual(days, [(6, None), (7, 7), (8, 3.83), (9, 1), (10, None)])
        chars = await metrica.filter().iterate_counts("c")
        self.assertEqual(chars, [("a", 3), ("b", 2)])
        chars = await metrica.filter().iterate_averages("c")
        self.assertEqual(chars, [("a", (12 + 7.5 + 0.16) / 3), ("b", 1.5)])

    @coroutine_test
    async def test_guests_example(self) -> None:
        """
        The guests example: totals by year, gender, age and month, and the age breakdown in
        the order values were first seen, as in Staste's README.
        """
        store = await self.store()
        guests = Metrica(
            "guest_visits_gender_age",
            axes=[("gender", Axis(choices=["boy", "girl"])), ("age", StoredChoiceAxis())],
            store=store,
        )
        february = [
            (1, "boy", 120, 1),
            (2, "girl", 19, 3),
            (3, "boy", 17, 10),
            (4, "boy", 18, 17),
            (5, "girl", 18, 5),
        ]
        for day, gender, age, times in february:
            for _ in range(times):
                guests.kick(date=datetime(2010, 2, day), gender=gender, age=age)
        guests.kick(date=datetime(2010, 3, 1), gender="boy", age=19)
        guests.kick(date=datetime(2011, 1, 1), gender="girl", age=30)
        await store.flush()
        self.assertEqual(await guests.timespan(year=2010).total(), 37)
        self.assertEqual(await guests.timespan(year=2010).filter(gender="girl").total(), 8)
        self.assertEqual(await guests.filter(gender="girl", age=19).total(), 3)
        query = guests.filter(gender="boy").timespan(year=2010, month=2).filter(age=17)
        self.assertEqual(await query.total(), 10)
        breakdown = await guests.timespan(year=2010, month=2).filter(gender="boy").iterate("age")
        self.assertEqual(breakdown[:4], [("120", 1), ("19", 0), ("17", 10), ("18", 17)])
        self.assertEqual(await guests.iterate(), [(2010, 37), (2011, 1)])


class StasteBugsFixedTests(MetricaTestCase):
    @coroutine_test
    async def test_iteration_includes_last_units(self) -> None:
        """
        Iterating a year includes December, a month its last day, a day hour 23.
        """
        store = await self.store()
        metrica = Metrica("edges", store=store)
        metrica.kick(date=datetime(2012, 12, 31, 23, 59))
        metrica.kick(date=datetime(2012, 2, 29, 23))
        await store.flush()
        months = await metrica.timespan(year=2012).iterate()
        self.assertEqual(months[11], (12, 1))
        self.assertEqual(months[1], (2, 1))
        february = await metrica.timespan(year=2012, month=2).iterate()
        self.assertEqual((len(february), february[-1]), (29, (29, 1)))
        hours = await metrica.timespan(year=2012, month=12, day=31).iterate()
        self.assertEqual((len(hours), hours[-1]), (24, (23, 1)))

    @coroutine_test
    async def test_falsy_values_are_values(self) -> None:
        """
        ``0`` and ``""`` are values of their own, not "all"; leaving an axis out counts under
        "all" only.
        """
        store = await self.store()
        metrica = Metrica(
            "falsy",
            axes=[
                ("n", StoredChoiceAxis()),
                ("tag", StoredChoiceAxis()),
                ("kind", Axis(["x", "y"])),
            ],
            store=store,
        )
        metrica.kick(n=0, tag="")
        metrica.kick(n=1, tag="t", kind="x")
        metrica.kick()
        await store.flush()
        self.assertEqual(await metrica.total(), 3)
        self.assertEqual(await metrica.filter(n=0).total(), 1)
        self.assertEqual(await metrica.filter(tag="").total(), 1)
        self.assertEqual(await metrica.filter(kind="x").total(), 1)
        self.assertEqual(await metrica.filter(kind="y").total(), 0)
        self.assertEqual(await metrica.iterate("n"), [("0", 1), ("1", 1)])

    @coroutine_test
    async def test_average_of_nothing_is_none(self) -> None:
        """
        An average over an empty bucket is None, not a crash.
        """
        store = await self.store()
        metrica = AveragedMetrica("empty", store=store)
        self.assertIsNone(await metrica.average())
        self.assertIsNone(await metrica.timespan(year=2001, month=1).average())
        self.assertEqual(await metrica.count(), 0)


class AxisTests(MetricaTestCase):
    @coroutine_test
    async def test_hierarchical_axis_counts_every_prefix(self) -> None:
        """
        A tuple value counts under each of its prefixes; iterating lists one level below the
        filter.
        """
        store = await self.store()
        metrica = Metrica("places", axes=[("place", HierarchicalAxis())], store=store)
        metrica.kick(place=("fr", "paris"))
        metrica.kick(place=("fr", "lyon"))
        metrica.kick(place=("uk", "london"))
        await store.flush()
        self.assertEqual(await metrica.filter(place=("fr",)).total(), 2)
        self.assertEqual(await metrica.filter(place=("fr", "lyon")).total(), 1)
        self.assertEqual(await metrica.iterate("place"), [(("fr",), 2), (("uk",), 1)])
        self.assertEqual(
            await metrica.filter(place=("fr",)).iterate("place"),
            [(("fr", "paris"), 1), (("fr", "lyon"), 1)],
        )

    @coroutine_test
    async def test_stored_axis_cap_counts_overflow(self) -> None:
        """
        Past its cap a stored axis counts new values under OVERFLOW, and counts how many.
        """
        store = await self.store()
        metrica = Metrica("capped", axes=[("ua", StoredChoiceAxis(cap=2))], store=store)
        for agent in ["a", "b", "c", "d", "a"]:
            metrica.kick(ua=agent)
        await store.flush()
        self.assertEqual(await metrica.iterate("ua"), [("a", 2), ("b", 1), (OVERFLOW, 2)])
        self.assertEqual(metrica.overflowed, {"ua": 2})
        self.assertEqual(await metrica.total(), 5)

    @coroutine_test
    async def test_the_cap_holds_for_the_site_and_across_restarts(self) -> None:
        """
        Two servers (two stores) count one metrica: once one has stored the cap's worth of
        values and the other has learnt them, the other counts those values under their own
        names (even "007", which Redis's client would read as 7) and a new one as overflow;
        so does a server restarted with nothing in memory.
        """
        one = await self.store()
        two = CounterStore(reactor, one.link)
        axes = [("ua", StoredChoiceAxis(cap=3))]
        first = Metrica("shared", axes=axes, store=one)
        second = Metrica("shared", axes=axes, store=two)
        for agent in ["a", "007", "c"]:
            first.kick(ua=agent)
        await one.flush()
        await second.learn_stored_values()
        for agent in ["007", "d", "a"]:
            second.kick(ua=agent)
        await two.flush()
        self.assertEqual(await first.iterate("ua"), [("a", 2), ("007", 2), ("c", 1), (OVERFLOW, 1)])
        self.assertEqual(second.overflowed, {"ua": 1})

        restarted = Metrica("shared", axes=axes, store=CounterStore(reactor, one.link))
        await restarted.learn_stored_values()
        restarted.kick(ua="e")
        restarted.kick(ua="c")
        await restarted.store.flush()
        self.assertEqual(await first.iterate("ua"), [("a", 2), ("007", 2), ("c", 2), (OVERFLOW, 2)])

    @coroutine_test
    async def test_iterating_a_stored_axis_with_no_values_yet(self) -> None:
        """
        Before anything was counted, a stored (or hierarchical) axis iterates as nothing, not
        as a Redis error (schemathesis found this one as a 500 of ``/iterate?by=entry``).
        """
        store = await self.store()
        metrica = AveragedMetrica(
            "fresh", axes=[("ua", StoredChoiceAxis()), ("place", HierarchicalAxis())], store=store
        )
        self.assertEqual(await metrica.iterate("ua"), [])
        self.assertEqual(await metrica.iterate_counts("place"), [])
        self.assertEqual(await metrica.iterate_averages("ua"), [])

    @coroutine_test
    async def test_kick_row_counts_as_kick_at(self) -> None:
        """
        A row in axis order (None: not given) counts exactly as the same kick by keywords,
        stored-axis overflow included, and is checked the same way.
        """
        store = await self.store()
        axes = [("ua", StoredChoiceAxis(cap=1)), ("gender", Axis(["boy", "girl"]))]
        by_row = Metrica("by_row", axes=axes, store=store)
        by_name = Metrica("by_name", axes=axes, store=store)
        when = datetime(2026, 11, 21, 10, tzinfo=UTC).timestamp()
        for ua, gender in [("a", "boy"), ("b", "girl"), ("a", None)]:
            by_row.kick_row(when, 2, (ua, gender))
            by_name.kick_at(when, 2, ua=ua, **({"gender": gender} if gender else {}))
        with self.assertRaisesRegex(ValueError, "'other' is not a choice of axis 'gender'"):
            by_row.kick_row(when, 1, ("a", "other"))
        with self.assertRaisesRegex(TypeError, "2 axes, a row of 1 values"):
            by_row.kick_row(when, 1, ("a",))
        await store.flush()
        for metrica in (by_row, by_name):
            # Both values were first seen at the same time: no order between them to check.
            self.assertEqual(sorted(await metrica.iterate("ua")), sorted([("a", 4), (OVERFLOW, 2)]))
            self.assertEqual(await metrica.iterate("gender"), [("boy", 2), ("girl", 2)])
            self.assertEqual(metrica.overflowed, {"ua": 1})

    @coroutine_test
    async def test_hostile_values_cannot_collide(self) -> None:
        """
        Values full of separators and unicode are counted apart and never touch another
        metrica's keys.
        """
        store = await self.store()
        metrica = Metrica("m:{x}", axes=[("v", StoredChoiceAxis())], store=store)
        other = Metrica("m", axes=[("v", StoredChoiceAxis())], store=store)
        hostile = ["a,b", "a", "b", "*", "x:y", "{m}", "é\n", "%2C", "a/b"]
        for value in hostile:
            metrica.kick(v=value)
        await store.flush()
        self.assertEqual(await metrica.iterate("v"), [(v, 1) for v in hostile])
        self.assertEqual(await other.total(), 0)


def test_kick_errors_name_the_problem() -> None:
    """
    Unknown axes are TypeErrors, values outside a fixed axis are ValueErrors naming the axis
    and its choices; nothing is counted for either.
    """
    from twisted.internet.task import Clock

    store = CounterStore(Clock(), None)  # type: ignore[arg-type]
    metrica = Metrica("g", axes=[("gender", Axis(["boy", "girl"]))], store=store)
    with pytest.raises(TypeError, match="no axis 'age'"):
        metrica.kick(age=3)
    with pytest.raises(ValueError, match=r"'other' is not a choice of axis 'gender'.*'boy'"):
        metrica.kick(gender="other")
    with pytest.raises(TypeError, match="value"):
        metrica.kick(value="many")
    with pytest.raises(ValueError, match="does not exist"):
        metrica.timespan(year=2010, month=2, day=30)
    assert store.writer.backlog == 0


def test_kick_defaults_to_the_clock_in_utc() -> None:
    """
    Without a date a kick counts at the store clock's now (UTC); naive datetimes are UTC.
    """
    from twisted.internet.task import Clock

    clock = Clock()
    clock.advance(datetime(2015, 6, 1, 13, 30, tzinfo=UTC).timestamp())
    store = CounterStore(clock, None)  # type: ignore[arg-type]
    metrica = Metrica("now", store=store)
    metrica.kick()
    metrica.kick(date=datetime(2015, 6, 1, 13, 59))
    [(key, count)] = store.writer._pending.items()
    assert key[1] == int(clock.seconds() // 3600) and count == [2, 2]


class GuestsExampleTests(MetricaTestCase):
    @coroutine_test
    async def test_guests_example_runs(self) -> None:
        """
        examples/guests.py gives the totals its kicks imply.
        """
        from examples.guests import guests_report

        report = await guests_report(await self.store())
        self.assertEqual(report["2010"], 3)
        self.assertEqual(report["girls"], 2)
        self.assertEqual(report["girls aged 19"], 1)
        self.assertEqual(report["by age"], [("18", 1), ("19", 2)])


class TimeserieTests(MetricaTestCase):
    @coroutine_test
    async def test_timeserie_for_a_chart(self) -> None:
        """
        ``timeserie`` gives one (start, total) per bucket, zeros included.
        """
        store = await self.store()
        metrica = Metrica("chart", store=store)
        metrica.kick(date=datetime(2020, 3, 1, 10))
        metrica.kick(date=datetime(2020, 3, 3, 10), value=5)
        await store.flush()
        serie = await metrica.timeserie(datetime(2020, 3, 1), datetime(2020, 3, 3), "day")
        self.assertEqual(
            serie,
            [
                (datetime(2020, 3, day, tzinfo=UTC), total)
                for day, total in [(1, 1), (2, 0), (3, 5)]
            ],
        )


def test_chained_timespans_narrow_like_stastes() -> None:
    """
    ``timespan(year=2006).timespan(month=2)`` is February 2006, as in Staste; a later part
    replaces the same part, and an impossible merge is still named.
    """
    from twisted.internet.task import Clock

    metrica = Metrica("chained", store=CounterStore(Clock(), None))  # type: ignore[arg-type]
    february = metrica.timespan(year=2006).timespan(month=2)
    assert february.span.label == "2006-02"
    assert february.timespan(day=7).timespan(month=3).span.label == "2006-03-07"
    assert metrica.filter().timespan(year=2010).span.label == "2010"
    with pytest.raises(ValueError, match="day 31"):
        february.timespan(day=31)
