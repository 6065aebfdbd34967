"""
``/stats/metrics`` over a real port, read by prometheus_client's own parser: the figures
equal what the server counts and what ``/stats`` says.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..twistd_process import Twistd


def scrape(server: Twistd, headers: dict[str, str] | None = None) -> dict[str, float]:
    """
    Every sample of the scrape, keyed ``name{label="value",...}``.
    """
    request = urllib.request.Request(server.url + "stats/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_the_figures_are_the_servers(workdir: Path, servers: list[Twistd]) -> None:
    """
    Requests by status class and their duration histogram, web sessions, visits open and
    ended by reason, the writers, Redis, the streams, and the process: parsed by
    prometheus_client, equal to what was done and to /stats.
    """
    server = Twistd(
        workdir, "--port", "tcp:0:interface=127.0.0.1", "--app", "tests.apps.pages", "--cutoff", "1"
    ).start()
    servers.append(server)
    server.wait_for(r"Redis at \S+ db 0 is reachable")
    visitor = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    for path in ("a", "b", "a", "nope", "c"):
        try:
            with visitor.open(server.url + path, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as error:
            assert error.code == 404
    time.sleep(2.2)  # The visit ends (cutoff 1 s) and the tally folds (every second).
    samples = scrape(server)
    assert samples['twisted_sessions_requests_total{status_class="2xx"}'] == 4
    assert samples['twisted_sessions_requests_total{status_class="4xx"}'] == 1
    assert samples["twisted_sessions_request_duration_seconds_count"] == 5
    assert samples['twisted_sessions_request_duration_seconds_bucket{le="+Inf"}'] == 5
    assert 0 < samples["twisted_sessions_request_duration_seconds_sum"] < 5
    assert samples['twisted_sessions_visits_ended_total{reason="cutoff"}'] == 1
    assert samples["twisted_sessions_visits_open"] == 0
    index = json.loads(server.get("stats")[1])
    assert samples["twisted_sessions_web_sessions"] == index["gauges"]["web_sessions"] == 1
    assert samples["twisted_sessions_redis_reachable"] == 1
    assert samples["twisted_sessions_counter_kicks_dropped_total"] == 0
    assert samples["twisted_sessions_stream_events_written_total"] >= 5
    # A stream client, counted by stream.
    host, port = server.url.split("//")[1].rstrip("/").split(":")
    client = http.client.HTTPConnection(host, int(port), timeout=10)
    client.request("GET", "/stats/stream/requests")
    assert client.getresponse().status == 200
    deadline = time.monotonic() + 10
    while scrape(server).get('twisted_sessions_stream_clients{stream="requests"}') != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.close()
    assert samples["process_resident_memory_bytes"] > 10_000_000
    # Scrapes are not traffic: after them and a fold, still the five requests.
    time.sleep(1.2)
    again = scrape(server)
    assert again["twisted_sessions_request_duration_seconds_count"] == 5


def test_metrics_are_protected_like_the_stats_tree(workdir: Path, servers: list[Twistd]) -> None:
    token = workdir / "token"
    token.write_text("a-token-of-24-characters\n")
    server = Twistd(
        workdir, "--port", "tcp:0:interface=127.0.0.1", "--stats-token-file", str(token)
    ).start()
    servers.append(server)
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(server)
    assert refused.value.code == 401
    samples = scrape(server, {"Authorization": "Bearer a-token-of-24-characters"})
    assert "twisted_sessions_web_sessions" in samples


def test_the_tally_folds_into_prometheus_buckets() -> None:
    """
    A duration on a bucket's bound is in that bucket (Prometheus's ``le``); statuses count
    by class, anything odd as 5xx; the histogram is cumulative as prometheus_client writes it.
    """
    from twisted.internet.task import Clock

    from twisted_sessions.events import RequestEvent
    from twisted_sessions.stats.metrics import BUCKETS, RequestTally, request_families

    tally = RequestTally(Clock())
    for status, duration in ((200, 0.005), (200, 0.0051), (404, 0.5), (999, 20.0), (301, 0.0)):
        tally.request_finished(RequestEvent("u", 0.0, "GET", "/", status, duration, "k"))
    tally.fold()
    assert tally.by_class == {"2xx": 2, "4xx": 1, "5xx": 1, "3xx": 1}
    assert tally.buckets[BUCKETS.index(0.005)] == 2  # 0.0 and 0.005
    assert tally.buckets[BUCKETS.index(0.01)] == 1  # 0.0051
    assert tally.buckets[BUCKETS.index(0.5)] == 1
    assert tally.buckets[-1] == 1  # 20 s: only +Inf
    [_, histogram] = list(request_families(tally))
    samples = {(s.name, s.labels.get("le")): s.value for s in histogram.samples}
    assert samples[("twisted_sessions_request_duration_seconds_bucket", "0.01")] == 3
    assert samples[("twisted_sessions_request_duration_seconds_bucket", "+Inf")] == 5
    assert samples[("twisted_sessions_request_duration_seconds_sum", None)] == pytest.approx(
        20.5101
    )
