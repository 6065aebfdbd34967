"""
A real browser (headless Chromium, driven by Playwright) follows a protected stream: its
EventSource, refused at first (it cannot send the bearer token), is reopened by the page's
script once the page has exchanged the token for the stats cookie, and gets every event.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from ..twistd_process import Twistd
from .test_streams_e2e import publish

TOKEN = "browser-token-0123456789"
#: Debian's Chromium (CI installs it): Playwright drives it, and downloads no browser of its own.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: The flags this machine's closed network needs (see the env notes): no background fetches.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_a_browser_follows_a_protected_stream(
    workdir: Path, servers: list[Twistd], browser_page: Any
) -> None:
    """
    Without the cookie the stream is refused (401), and the EventSource closes for good; the
    page's script reopens it; after the token exchange (an HttpOnly cookie the script cannot
    read) the reopened stream is accepted and every event published arrives.
    """
    token_file = workdir / "token"
    token_file.write_text(TOKEN)
    server = Twistd(
        workdir,
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--data-dir",
        "data",
        "--app",
        "tests.apps.stream_page",
        "--stats-token-file",
        str(token_file),
    ).start()
    servers.append(server)
    server.wait_for(r"Redis at \S+ db 0 is reachable")
    publish(server, "signups", 0)
    page = browser_page
    page.goto(server.url + "page")
    page.evaluate("follow('signups')")
    page.wait_for_function("window.refusals >= 2", timeout=10_000)
    assert page.evaluate(f"exchange('{TOKEN}')") == 204
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it.
    assert page.evaluate("window.opened") is False
    page.wait_for_function("window.opened", timeout=10_000)  # The script's next try is in.
    page.wait_for_timeout(300)
    publish(server, "signups", 5)
    page.wait_for_function("window.events.length >= 5", timeout=15_000)
    events = page.evaluate("window.events")
    assert [event["n"] for event in events] == [0, 1, 2, 3, 4]
    assert all(event["meta"]["stream"] == "signups" for event in events)
