"""
Staste's guests example on twisted-sessions: a metrica by gender and age, kicked and queried.

    python examples/guests.py

Runs against a throwaway redis-server of its own (the bundled one), prints a few totals.
"""

from __future__ import annotations

from datetime import datetime

from twisted_sessions.counters import Axis, CounterStore, Metrica, StoredChoiceAxis
from twisted_sessions.storage import RedisLink


async def guests_report(store: CounterStore) -> dict[str, object]:
    gender_axis = Axis(choices=["boy", "girl"])  # all choices known beforehand
    age_axis = StoredChoiceAxis()  # any value; the values seen are kept in Redis

    guests_metrica = Metrica(
        name="guest_visits_gender_age",
        axes=[("gender", gender_axis), ("age", age_axis)],
        store=store,
    )
    guests_metrica.kick(date=datetime(2010, 2, 1), gender="girl", age=18)
    guests_metrica.kick(date=datetime(2010, 2, 2), gender="boy", age=19)
    guests_metrica.kick(date=datetime(2010, 2, 2), gender="girl", age=19)
    await store.flush()  # kicks reach Redis with the next flush (every second by default)
    return {
        "2010": await guests_metrica.timespan(year=2010).total(),
        "girls": await guests_metrica.filter(gender="girl").total(),
        "girls aged 19": await guests_metrica.filter(gender="girl", age=19).total(),
        "by age": await guests_metrica.timespan(year=2010, month=2).iterate("age"),
    }


def main() -> None:
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred
    from twisted.internet.task import deferLater

    from tests.redis_process import RedisProcess

    redis = RedisProcess().start()

    async def run() -> None:
        link = RedisLink(reactor, redis.address)
        link.connect()
        while not link.connected:
            await deferLater(reactor, 0.05, lambda: None)
        print(await guests_report(CounterStore(reactor, link)))
        await link.disconnect()

    done = Deferred.fromCoroutine(run())
    done.addErrback(lambda failure: failure.printTraceback())
    done.addBoth(lambda _: reactor.stop())
    reactor.run()
    redis.stop()


if __name__ == "__main__":
    main()
