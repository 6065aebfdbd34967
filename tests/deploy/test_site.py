"""
Several servers behind HAProxy on one Redis Cluster: the site counts as one server would.

Each test starts its own site with :class:`LocalSite`, the code of ``python -m twisted_sessions
localsite``: a Redis Cluster of Debian's ``redis-server`` 7, three ``twistd sessions`` and
HAProxy, all on loopback ports, and drives browser-like visitors (each with its own cookies)
through HAProxy. A model of the traffic (what the site answered) is what the stats must equal.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

from twisted_sessions.deploy.localsite import LocalSite
from twisted_sessions.storage.cluster import key_slot

from .traffic import Traffic, get_json, stream_events, today, visit, wait_for


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LocalSite]:
    started = LocalSite(tmp_path / "site", servers=3, primaries=3).start()
    yield started
    started.stop()


def requests_counted(site: LocalSite, index: int) -> int | None:
    """
    The site's requests counted, as server ``index`` reads them; ``None`` while it answers
    503 (Redis, or the slot's primary, unreachable: a failover under way).
    """
    try:
        return int(get_json(f"{site.server_url(index)}/stats/metricas/requests")["count"])
    except HTTPError as error:
        if error.code != 503:
            raise
        return None


def active_today(site: LocalSite, index: int) -> int:
    day = today()
    found = get_json(
        f"{site.server_url(index)}/stats/activity/active?scale=day&since={day}&until={day}"
    )
    return int(found["points"][0]["users"])


def test_three_servers_count_as_one(site: LocalSite) -> None:
    """
    60 visitors of 4 requests each through HAProxy: every visitor stays on one server (one
    web session each, spread over all three), and every server's stats, read from the
    cluster, equal the model: requests, active users, the requests stream; after the servers
    stop (their visits end), sessions, the visits stream and the cohort table.
    """
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1)
    visitors, each = 60, 4
    traffic = visit(site.url, range(visitors), each, Traffic())
    assert traffic.failed == 0
    assert len(traffic.ok()) == visitors * each

    sessions = []
    for index in range(3):
        overview = wait_for(
            lambda i=index: get_json(f"{site.server_url(i)}/stats"),
            lambda found: found["server"]["alive"] == ["s1", "s2", "s3"],
        )
        assert overview["server"]["id"] == site.server_id(index)
        assert overview["server"]["alive"] == ["s1", "s2", "s3"]
        assert overview["server"]["alive_count"] == 3
        sessions.append(overview["gauges"]["web_sessions"])
    # Sticky: one web session per visitor, and the balancer used every server.
    assert sum(sessions) == visitors
    assert min(sessions) > 0

    total = visitors * each
    for index in range(3):  # Any server answers for the whole site.
        assert wait_for(lambda i=index: requests_counted(site, i), lambda n: n == total) == total
        assert wait_for(lambda i=index: active_today(site, i), lambda n: n == visitors) == visitors
    events = stream_events(site.server_url(1), "requests", since, visitors * each + 1)
    assert len(events) == visitors * each
    assert len({event["user"] for event in events}) == visitors

    for index in range(3):  # Their open visits end, and are counted, as they stop.
        # twistd re-raises SIGTERM after a clean shutdown.
        assert site.stop_server(index) in (0, -signal.SIGTERM)
    site.start_server(0)
    sessions_metrica = get_json(f"{site.server_url(0)}/stats/metricas/sessions")
    assert sessions_metrica["count"] == visitors
    visits = stream_events(site.server_url(0), "visits", since, visitors + 1)
    assert len(visits) == visitors
    day = today()
    cohort = get_json(
        f"{site.server_url(0)}/stats/cohort?primary=session:started&secondary=active"
        f"&time_group=days&rows=1&cols=1"
    )
    assert cohort["periods"] == [day]
    assert cohort["totals"] == [visitors]
    assert cohort["rows"] == [[visitors]]


def hot_slots() -> dict[str, int]:
    """
    The slots every tracked request writes to: the built-in metricas, the user ids, the
    activity bitmaps' HyperLogLogs, the streams and the heartbeats.
    """
    return {tag: key_slot(tag) for tag in ("m:requests", "m:sessions", "u", "a:active", "s", "f")}


def in_background(work: Callable[[], Traffic]) -> tuple[threading.Thread, list[Traffic]]:
    done: list[Traffic] = []
    thread = threading.Thread(target=lambda: done.append(work()))
    thread.start()
    return thread, done


def test_a_resharding_under_load_loses_and_doubles_nothing(site: LocalSite) -> None:
    """
    While visitors come, every slot the servers write to is migrated to another primary, key
    by key (the requests meet ASK, TRYAGAIN and MOVED): every count is still exact.
    """
    visitors, each = 48, 12
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    time.sleep(1)
    thread, done = in_background(
        lambda: visit(site.url, range(visitors), each, Traffic(), pause=0.05)
    )
    time.sleep(1.5)
    cluster = site.cluster
    primaries = cluster.primary_ports()
    moved = {}
    for tag, slot in hot_slots().items():
        owner = cluster.owner(slot)
        target = primaries[(primaries.index(owner) + 1) % len(primaries)]
        moved[tag] = (cluster.migrate_slot(slot, target, pause=0.02), target)
    thread.join()
    traffic = done[0]
    assert traffic.failed == 0
    assert len(traffic.ok()) == visitors * each
    for tag, (_keys, target) in moved.items():
        assert cluster.owner(key_slot(tag)) == target, tag
    assert moved["m:requests"][0] > 0  # The metrica's hashes really moved.
    # And the servers' commands met the moves (MOVED or ASK) and followed them.
    redirections = 0
    for index in range(3):
        with urlopen(f"{site.server_url(index)}/stats/metrics", timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("twisted_sessions_redis_cluster_redirections_total "):
                    redirections += int(float(line.split()[1]))
    assert redirections > 0
    total = visitors * each
    for index in range(3):
        assert wait_for(lambda i=index: requests_counted(site, i), lambda n: n == total) == total
    assert wait_for(lambda: active_today(site, 0), lambda n: n == visitors) == visitors
    # The streams' slot moved too: every request's event is there, once.
    events = stream_events(site.server_url(2), "requests", since, total + 1)
    assert len(events) == total
    assert len({event["meta"]["id"] for event in events}) == total


def test_a_killed_server_loses_at_most_its_last_flush(site: LocalSite) -> None:
    """
    A server killed with SIGKILL under load: the balancer moves its visitors (the site keeps
    answering), the others go on counting, it drops off the list of servers alive within the
    heartbeat's TTL, and the counts lack at most what it served in its last flush interval.
    """
    visitors, each = 64, 12
    thread, done = in_background(
        lambda: visit(site.url, range(visitors), each, Traffic(), pause=0.05)
    )
    time.sleep(2.5)
    killed_at = time.time()
    site.kill_server(1)
    thread.join()
    traffic = done[0]
    answered = len(traffic.ok())
    # Only what was in flight on the killed server when it died went unanswered.
    assert visitors * each - answered <= 8
    # The site goes on: new visitors after the kill are all answered (a connection refused
    # by the dead server is sent to another at once, before the checks notice).
    after = visit(site.url, range(visitors, visitors + 16), 3, Traffic())
    assert (after.failed, len(after.ok())) == (0, 48)
    # Counts: nothing twice; at most one flush interval (1 s) of its traffic missing.
    window = traffic.ok_between(killed_at - 1.5, killed_at)
    wait_for(
        lambda: requests_counted(site, 0),
        lambda n: n is not None and n >= answered - window + 48,
        timeout=10,
    )
    time.sleep(2)  # Nothing more arrives later.
    counted = requests_counted(site, 0)
    assert counted is not None
    assert answered - window + 48 <= counted <= visitors * each + 48
    overview = wait_for(
        lambda: get_json(f"{site.server_url(2)}/stats"),
        lambda found: found["server"]["alive"] == ["s1", "s3"],
        timeout=25,
    )
    assert overview["server"]["alive_count"] == 2


def test_a_primary_killed_under_load_fails_over_and_writes_resume(tmp_path: Path) -> None:
    """
    With a replica per primary: the primary of the busiest slots is killed with SIGKILL while
    visitors come; its replica is promoted within seconds, the servers' pending writes go to
    it, and the counts are exact but for what Redis's asynchronous replication may lose (what
    the dead primary acknowledged and had not yet sent on), never counted twice.
    """
    site = LocalSite(tmp_path / "site", servers=3, primaries=3, replicas=1).start()
    try:
        cluster = site.cluster
        slot = key_slot("m:requests")
        primary = cluster.owner(slot)
        replica = cluster.replica_of(primary)
        assert replica is not None
        visitors, each = 48, 14
        thread, done = in_background(
            lambda: visit(site.url, range(visitors), each, Traffic(), pause=0.05)
        )
        time.sleep(2)
        killed_at = time.time()
        cluster.kill(primary)
        assert cluster.wait_for_failover(slot, primary) == replica
        promoted_after = time.time() - killed_at
        thread.join()
        traffic = done[0]
        answered = len(traffic.ok())
        # The web never waited on Redis: every request was answered.
        assert traffic.failed == 0 and answered == visitors * each
        # Replication on loopback lags by far less than a flush: a few requests at most.
        lost_bound = traffic.ok_between(killed_at - 1.0, killed_at)
        counted = wait_for(lambda: requests_counted(site, 0), lambda n: n == answered, timeout=15)
        assert counted is not None
        assert answered - lost_bound <= counted <= answered
        assert promoted_after < 10
    finally:
        site.stop()
