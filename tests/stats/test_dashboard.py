"""
The dashboard in a real browser (headless Chromium through Playwright) against a real server
with real traffic: no console error, no failed request and none to another origin, the
chart's and the table's numbers equal the JSON API's for the same query, the live counter
rises with a request; a screenshot of the page, wide and at phone width, for the README.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from ..streams.test_browser import CHROMIUM, FLAGS
from ..twistd_process import Twistd

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def visit(server: Twistd, paths: list[str]) -> None:
    """
    One visitor (a cookie jar) requesting ``paths``.
    """
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    for path in paths:
        try:
            with opener.open(server.url + path, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as error:
            assert error.code == 404


def wait_for(page: Any, expression: str, timeout: float = 15.0) -> None:
    """
    Poll ``expression`` from here: Playwright's ``wait_for_function`` compiles its predicate
    in the page, which the dashboard's CSP (no ``unsafe-eval``) rightly refuses.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"{expression}: not true in {timeout} s"
        page.wait_for_timeout(50)


def api(server: Twistd, path: str) -> Any:
    return json.loads(server.get("stats" + path)[1])


def test_the_dashboard_shows_what_the_api_says(
    workdir: Path, servers: list[Twistd], browser: Any
) -> None:
    server = Twistd(
        workdir, "--port", "tcp:0:interface=127.0.0.1", "--app", "tests.apps.pages", "--cutoff", "1"
    ).start()
    servers.append(server)
    server.wait_for(r"Redis at \S+ db 0 is reachable")
    made = 0
    for n in range(6):
        paths = ["a", "b", "a", "c"][: n % 4 + 1] + (["missing"] if n % 3 == 0 else [])
        visit(server, paths)
        made += len(paths)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    origins: set[str] = set()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on("request", lambda request: origins.add(urlsplit(request.url).netloc))
    # Counts reach Redis within a second, and the visits end (cutoff 1 s).
    page.wait_for_timeout(2500)
    response = page.goto(server.url + "stats/dashboard/")
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    wait_for(page, "window.dashboard && window.dashboard.ready")
    form = page.evaluate(
        "(() => { const f = document.getElementById('range');"
        " return [f.scale.value, f.since.value, f.until.value]; })()"
    )
    query = f"scale={form[0]}&since={form[1]}&until={form[2]}"
    requests = api(server, f"/metricas/requests/timeserie?{query}")
    visits = api(server, f"/metricas/sessions/timeserie?{query}")
    # The chart's data and the table's cells are the API's numbers.
    series = page.evaluate("window.dashboard.series")
    assert series["requests"] == [p["count"] for p in requests["points"]]
    assert series["visits"] == [p["count"] for p in visits["points"]]
    assert sum(series["requests"]) == made
    rows = page.eval_on_selector_all(
        "#series tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert [[int(r[1]), int(r[2])] for r in rows] == [
        [p["count"], v["count"]] for p, v in zip(requests["points"], visits["points"], strict=True)
    ]
    resources = {
        r["key"]: r["count"] for r in api(server, "/metricas/requests/iterate?by=resource")["items"]
    }
    shown = dict(
        page.eval_on_selector_all(
            "#resources tbody tr",
            "rows => rows.map(r => [r.cells[0].textContent, +r.cells[1].textContent])",
        )
    )
    assert shown == {key: count for key, count in resources.items() if count}
    # Without JavaScript: the page carries the same numbers as a table, made by the server.
    html = server.get("stats/dashboard/")[1]
    table = html.split('<table id="server-table">')[1].split("</table>")[0]
    days = re.findall(r"<th scope=row>([\d-]+)</th><td>(\d+)</td><td>(\d+)</td>", table)
    since, until = days[0][0], days[-1][0]
    by_day = api(server, f"/metricas/requests/timeserie?since={since}&until={until}")["points"]
    visits_by_day = api(server, f"/metricas/sessions/timeserie?since={since}&until={until}")
    assert [(int(r), int(v)) for _, r, v in days] == [
        (p["count"], v["count"]) for p, v in zip(by_day, visits_by_day["points"], strict=True)
    ]
    assert len(days) == 14 and sum(int(r) for _, r, _ in days) == made
    # The explorer: the chosen metrica by the chosen axis, as the API's iterate says.
    explorer = page.evaluate("window.dashboard.explorer")
    assert explorer["metrica"] == "requests"
    iterated = api(server, f"/metricas/requests/iterate?{explorer['query']}")["items"]
    assert explorer["values"] == [item["count"] for item in iterated if item["count"]]
    page.select_option("#explorer select[name=by]", "status")
    page.click("#explorer button")
    wait_for(page, "window.dashboard.explorer.query === 'by=status'")
    by_status = api(server, "/metricas/requests/iterate?by=status")["items"]
    assert page.evaluate("window.dashboard.explorer.values") == [
        item["count"] for item in by_status if item["count"]
    ]
    # Activity: distinct users per day, and the cohort table, as the API says.
    shown = page.evaluate("window.dashboard.activity")
    form = page.evaluate(
        "(() => { const f = document.getElementById('activity-form');"
        " return [f.event.value, f.primary.value, f.secondary.value, f.time_group.value]; })()"
    )
    assert form == ["active", "session:started", "active", "weeks"]
    users = api(server, f"/activity/{shown['query']}")["points"]
    assert shown["users"] == [point["users"] for point in users]
    assert shown["users"][-1] > 0  # Today's visitors.
    cohort = api(
        server,
        "/cohort?primary=session:started&secondary=active&time_group=weeks&rows=8&cols=8"
        "&percent=true",
    )
    assert (shown["cohort"], shown["totals"]) == (cohort["rows"], cohort["totals"])
    assert cohort["totals"][-1] > 0
    # The live feed: requests arrive as they are made; paused, none is added.
    wait_for(page, "document.getElementById('live-state').textContent === 'connected'")
    visit(server, ["c"])
    wait_for(
        page,
        "[...document.querySelectorAll('#feed td')].some(t => t.textContent.includes('GET /c'))",
    )
    page.click("#pause")
    rows_paused = page.evaluate("document.querySelectorAll('#feed tbody tr').length")
    received = page.evaluate("window.dashboard.feed")
    visit(server, ["b"])
    wait_for(page, f"window.dashboard.feed > {received}")
    assert page.evaluate("document.querySelectorAll('#feed tbody tr').length") == rows_paused
    assert "new)" in page.text_content("#live-state")
    # The live counter rises with a request.
    before = page.evaluate("window.dashboard.requestsToday")
    visit(server, ["a"])
    wait_for(page, f"window.dashboard.requestsToday > {before}", timeout=20)
    # Every control is reached with the keyboard, in the page's order, up to the pause.
    reached = []
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate("() => document.activeElement.name || document.activeElement.id")
        )
        if reached[-1] == "pause":
            break
    assert reached[-1] == "pause"
    assert {"scale", "since", "until", "metrica", "by", "event", "primary"} <= set(reached)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    for view in ("overview", "explorer", "activity", "live"):
        page.locator(f"#view-{view}").screenshot(path=str(SCREENSHOTS / f"dashboard-{view}.png"))
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.on("pageerror", lambda error: problems.append(str(error)))
    phone.goto(server.url + "stats/dashboard/")
    wait_for(phone, "window.dashboard && window.dashboard.ready")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # No sideways scroll.
    phone.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
    assert problems == []
    assert origins == {urlsplit(server.url).netloc}


def test_the_dashboard_is_protected_and_not_traffic(workdir: Path, servers: list[Twistd]) -> None:
    """
    Behind a token like the rest of the stats tree; its requests count in no metrica.
    """
    token = workdir / "token"
    token.write_text("a-token-of-24-characters\n")
    server = Twistd(
        workdir, "--port", "tcp:0:interface=127.0.0.1", "--stats-token-file", str(token)
    ).start()
    servers.append(server)
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.get("stats/dashboard/")
    assert refused.value.code == 401
    request = urllib.request.Request(
        server.url + "stats/dashboard/dashboard.js",
        headers={"Authorization": "Bearer a-token-of-24-characters"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/javascript")
        assert b"uPlot" in response.read()


def test_the_vendored_chart_library_is_the_pinned_one() -> None:
    """
    uPlot's files are the ones whose SHA-256 sums were recorded when it was vendored, and its
    licence ships with them.
    """
    vendor = (
        Path(__file__).resolve().parent.parent.parent / "src/twisted_sessions/stats/assets/vendor"
    )
    sums = dict(
        reversed(line.split("  ")) for line in (vendor / "SHA256SUMS").read_text().splitlines()
    )
    assert set(sums) == {"uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in sums.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest
    assert "Leon Sorokin" in (vendor / "LICENSE-uPlot").read_text()
    assert "uPlot" in (vendor / "uPlot.iife.min.js").read_text()[:2000]
