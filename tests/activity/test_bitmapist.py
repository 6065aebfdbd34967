"""
bitmapist itself reads what we write: the same counts, members, operations and cohort tables
on the same real Redis.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import bitmapist
import bitmapist.cohort

from twisted_sessions.activity import Period, dates_data

from ..reactor_case import coroutine_test
from .case import ActivityTestCase

START = datetime(2025, 12, 1, 10, tzinfo=UTC)


class BitmapistAgreementTests(ActivityTestCase):
    async def filled(self, seed: int = 3):
        """
        60 days of marks for 300 users: 'active' often, 'song:play' for some, 'signup' once.
        """
        activity = await self.activity(scales=("hour", "day", "week", "month", "unique"))
        rng = random.Random(seed)
        for user in range(300):
            first = rng.randrange(60)
            activity.mark("signup", f"user-{user}", START + timedelta(days=first))
            for day in range(first, 60):
                if rng.random() < 0.3:
                    when = START + timedelta(days=day, hours=rng.randrange(12))
                    activity.mark("active", f"user-{user}", when)
                    if rng.random() < 0.4:
                        activity.mark("song:play", f"user-{user}", when)
        await activity.writer.flush()
        self.assertEqual(activity.writer.backlog, 0)
        return activity

    @coroutine_test
    async def test_bitmapist_reads_the_same_users(self) -> None:
        """
        Month, ISO week, day, hour and unique bitmaps: bitmapist's len, membership, iteration
        and bit operations agree with ours, period by period.
        """
        activity = await self.filled()
        system = self.bitmapist()
        reader = activity.reader()
        for day in range(0, 60, 7):
            moment = START + timedelta(days=day)
            for scale, theirs in (
                ("month", bitmapist.MonthEvents.from_date("active", moment, system)),
                ("week", bitmapist.WeekEvents.from_date("active", moment, system)),
                ("day", bitmapist.DayEvents.from_date("active", moment, system)),
                ("hour", bitmapist.HourEvents.from_date("active", moment, system)),
            ):
                ours = activity.events("active", Period.of(moment, scale), reader)  # type: ignore[arg-type]
                self.assertEqual(await ours.count(), len(theirs), (scale, moment))
                self.assertEqual(await ours.ids(), list(theirs), (scale, moment))
                for uid in (0, 1, 57, 299):
                    self.assertEqual(await ours.contains(uid), uid in theirs)
            week = Period.of(moment, "week")
            played = activity.events("song:play", week, reader)
            active = activity.events("active", week, reader)
            their_active = bitmapist.WeekEvents.from_date("active", moment, system)
            their_played = bitmapist.WeekEvents.from_date("song:play", moment, system)
            self.assertEqual(
                await (active & played).count(),
                len(bitmapist.BitOpAnd(system, their_active, their_played)),
            )
            self.assertEqual(
                await (active | played).count(),
                len(bitmapist.BitOpOr(system, their_active, their_played)),
            )
            self.assertEqual(
                await (active ^ played).count(),
                len(bitmapist.BitOpXor(system, their_active, their_played)),
            )
        year = activity.events("active", Period.of(START, "year"), reader)
        self.assertEqual(await year.count(), len(bitmapist.YearEvents("active", 2025, system)))
        ever = activity.events("signup", Period.of(START, "unique"), reader)
        self.assertEqual(await ever.count(), len(bitmapist.UniqueEvents("signup", system)))
        self.assertEqual(await ever.count(), 300)
        bitmapist.delete_runtime_bitop_keys()

    @coroutine_test
    async def test_cohort_tables_match_bitmapists(self) -> None:
        """
        ``get_dates_data`` (days and weeks, percents and counts, with a second filter) gives
        the same rows as our ``dates_data`` on the same marks.
        """
        activity = await self.filled(seed=5)
        system = self.bitmapist()
        for time_group, num_results, num_of_rows, as_percent, select2b in (
            ("days", 20, 6, True, None),
            ("weeks", 6, 4, False, None),
            ("weeks", 5, 3, True, "song:play"),
            ("months", 3, 2, True, None),
        ):
            theirs = bitmapist.cohort.get_dates_data(
                select1="signup",
                select2="active",
                select2b=select2b,
                time_group=time_group,  # type: ignore[arg-type]
                system=system,
                as_percent=as_percent,
                num_results=num_results,
                num_of_rows=num_of_rows,
                start_date="2025-12-03",
            )
            ours = await dates_data(
                activity.link,
                "signup",
                "active",
                select2b=select2b,
                time_group=time_group,
                as_percent=as_percent,
                num_results=num_results,
                num_of_rows=num_of_rows,
                start_date=date(2025, 12, 3),
            )
            self.assertEqual(len(ours), len(theirs))
            for our_row, their_row in zip(ours, theirs, strict=True):
                # The first cell is the row's moment: bitmapist's keeps a time of day, ours
                # is the period's start; the period is the same.
                scale = {"days": "day", "weeks": "week", "months": "month"}[time_group]
                self.assertEqual(our_row[0], Period.of(their_row[0], scale).start)  # type: ignore[arg-type]
                self.assertEqual(our_row[1:], their_row[1:], (time_group, our_row[0]))
            self.assertTrue(any(row[1] for row in ours), "the tables are not all empty")
        bitmapist.delete_runtime_bitop_keys()

    @coroutine_test
    async def test_iso_weeks_across_a_year_end(self) -> None:
        """
        2010-01-03 is in ISO week 53 of 2009, for bitmapist and for us.
        """
        activity = await self.activity()
        activity.mark("active", "someone", datetime(2010, 1, 3, 12, tzinfo=UTC))
        await activity.writer.flush()
        system = self.bitmapist()
        self.assertEqual(Period.of(date(2010, 1, 3), "week").suffix, "W2009-53")
        theirs = bitmapist.WeekEvents("active", 2009, 53, system)
        self.assertEqual(len(theirs), 1)
        ours = activity.events("active", Period.of(date(2010, 1, 3), "week"))
        self.assertEqual(await ours.count(), 1)
        self.assertEqual(ours.period_start(), theirs.period_start())
        self.assertEqual(ours.period_end(), theirs.period_end())
        self.assertEqual(ours.next().period.suffix, theirs.next().redis_key.split("_")[-1])
