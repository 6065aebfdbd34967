"""
The examples in examples/, which port the Twisted Web tutorial (seed 002), run as tests.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from twisted.web.resource import Resource

from examples import counter, short_session
from twisted_sessions import Site

from .http import Browser


def test_short_session_expiration_logger(capsys: pytest.CaptureFixture[str]) -> None:
    """
    The tutorial's ShortSession lasts five seconds without activity; the ExpirationLogger
    prints a message when it expires, and visiting keeps it alive.
    """
    clock = Clock()
    site = short_session.make_site(clock)
    browser = Browser(site)
    browser.get("/logme")
    for _ in range(3):
        clock.advance(4)
        browser.get("/logme")
    assert capsys.readouterr().out == ""
    clock.advance(5)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("Session ") and line.endswith(" has expired.")
    assert browser.cookies["TWISTED_SESSION"] not in line, "the cookie value is never printed"


def test_counter_counts_per_session() -> None:
    """
    "Visit #N for you!" counts up within a session, and starts again for a new one.
    """
    root = Resource()
    root.putChild(b"count", counter.resource)
    clock = Clock()
    site = Site(root, reactor=clock)
    alice, bob = Browser(site), Browser(site)
    assert alice.get("/count").body == b"Visit #1 for you!"
    assert alice.get("/count").body == b"Visit #2 for you!"
    assert bob.get("/count").body == b"Visit #1 for you!"
    assert alice.get("/count").body == b"Visit #3 for you!"
    clock.advance(900)
    assert alice.get("/count").body == b"Visit #1 for you!"


def test_counter_adaption_keeps_one_object() -> None:
    """
    The tutorial's doctest: adapting a session to ICounter gives the same Counter each time.
    """
    site = Site(Resource(), reactor=Clock())
    ses = site.makeSession()
    data = counter.ICounter(ses)
    assert isinstance(data, counter.Counter)
    assert data is counter.ICounter(ses)
