"""
Several servers behind HAProxy on one Redis Cluster: the site counts as one server would.

Each test starts its own site with :class:`LocalSite`, the code of ``python -m twisted_sessions
localsite``: a Redis Cluster of Debian's ``redis-server`` 7, three ``twistd sessions`` and
HAProxy, all on loopback ports, and drives browser-like visitors (each with its own cookies)
through HAProxy. A model of the traffic (what the site answered) is what the stats must equal.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from twisted_sessions.deploy.localsite import LocalSite

from .traffic import Traffic, get_json, stream_events, today, visit, wait_for


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LocalSite]:
    started = LocalSite(tmp_path / "site", servers=3, primaries=3).start()
    yield started
    started.stop()


def requests_counted(site: LocalSite, index: int) -> int:
    return int(get_json(f"{site.server_url(index)}/stats/metricas/requests")["count"])


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

    for index in range(3):  # Any server answers for the whole site.
        total = visitors * each
        assert wait_for(lambda i=index: requests_counted(site, i), total.__eq__) == total
        assert wait_for(lambda i=index: active_today(site, i), visitors.__eq__) == visitors
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
