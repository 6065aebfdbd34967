"""
An EventStreams-shaped fixture the project makes: ``recentchange``-like events for a few
wikis, with canary events, one event that is not JSON and one ``error`` event among them.

Deterministic for a seed: a test builds the same items as the feed server it starts.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any, NamedTuple

WIKIS = (
    ("enwiki", "en.wikipedia.org"),
    ("frwiki", "fr.wikipedia.org"),
    ("wikidatawiki", "www.wikidata.org"),
    ("dewiki", "de.wikipedia.org"),
)
TYPES = ("edit", "edit", "edit", "new", "log", "categorize")
#: 2026-01-05T00:00:00Z: where the fixture's event time starts.
START = 1_767_571_200.0
TOPIC = "eqiad.mediawiki.recentchange"


class Item(NamedTuple):
    """
    One thing the feed sends: ``kind`` is ``event`` (a recentchange), ``canary``, ``bad``
    (data that is not JSON) or ``error`` (an ``event: error``); ``offset`` its id's offset.
    """

    kind: str
    offset: int
    data: str

    @property
    def event_id(self) -> str:
        return json.dumps(
            [{"topic": TOPIC, "partition": 0, "offset": self.offset}], separators=(",", ":")
        )


def iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def items(count: int = 2000, seed: int = 7, gap: float = 30.0, users: int = 40) -> list[Item]:
    """
    ``count`` recentchange events (``users`` users, one in ten a bot, ``gap`` seconds apart
    on average, some users away for hours so that they have several sessions, a few events
    up to 40 s out of order), with a canary event every 250, one bad event after the 100th
    and one error event after the 200th.
    """
    rng = random.Random(seed)
    bots = max(users // 10, 1)
    names = [f"User {n}" for n in range(users - bots)] + [f"Bot {n}" for n in range(bots)]
    # Users away until this time: makes gaps above an hour.
    away: dict[str, float] = {}
    moment = START
    events: list[dict[str, Any]] = []
    for number in range(count):
        moment += rng.expovariate(1 / gap)
        user = rng.choice(names)
        if away.get(user, 0) > moment:
            present = [u for u in names if away.get(u, 0) <= moment] or names
            user = rng.choice(present)
        if rng.random() < 0.03:
            away[user] = moment + rng.uniform(3600, 4 * 3600)
        wiki, domain = rng.choice(WIKIS)
        dt = moment - (rng.uniform(0, 40) if rng.random() < 0.05 else 0.0)
        events.append(
            {
                "$schema": "/mediawiki/recentchange/1.0.0",
                "meta": {
                    "uri": f"https://{domain}/wiki/Page_{number}",
                    "id": f"00000000-0000-4000-8000-{number:012d}",
                    "dt": iso(dt),
                    "domain": domain,
                    "stream": "mediawiki.recentchange",
                    "topic": TOPIC,
                    "partition": 0,
                },
                "id": number,
                "type": rng.choice(TYPES),
                "namespace": rng.choice((0, 0, 0, 1, 2, 4, 14)),
                "title": f"Page {number}",
                "timestamp": int(dt),
                "user": user,
                "bot": user.startswith("Bot"),
                "server_name": domain,
                "wiki": wiki,
            }
        )
    found: list[Item] = []
    for number, event in enumerate(events):
        if number and number % 250 == 0:
            canary = {**event, "meta": {**event["meta"], "domain": "canary"}, "wiki": "canary"}
            found.append(Item("canary", len(found), json.dumps(canary)))
        found.append(Item("event", len(found), json.dumps(event)))
        if number == 100:
            found.append(Item("bad", len(found), '{"type": "edit", "user": '))
        if number == 200:
            found.append(Item("error", len(found), '{"message": "a test error"}'))
    return found


def kept(all_items: list[Item]) -> list[dict[str, Any]]:
    """
    The events a consumer keeps by default: the recentchange events, in order.
    """
    return [json.loads(item.data) for item in all_items if item.kind == "event"]
