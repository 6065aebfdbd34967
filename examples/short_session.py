"""
The Twisted Web tutorial's ShortSession + ExpirationLogger, on twisted-sessions.

Run it and visit http://localhost:8080/logme; keep visiting to keep your session alive, stop
for five seconds to see the expiration message::

    python examples/short_session.py

Ported from the seed (Python 2, stock Twisted): bytes paths and bodies, and the session's
non-secret ``key`` is printed instead of its ``uid``, which is the cookie value itself.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import Resource

from twisted_sessions import Session, Site


class ShortSession(Session):
    sessionTimeout = 5


class ExpirationLogger(Resource):
    def __init__(self) -> None:
        super().__init__()
        self.sessions: set[str] = set()

    def render_GET(self, request: Any) -> bytes:
        session = request.getSession()
        if session.key not in self.sessions:
            self.sessions.add(session.key)
            session.notifyOnExpire(lambda: self._expired(session.key))
        return b""

    def _expired(self, key: str) -> None:
        print("Session", key, "has expired.")
        self.sessions.remove(key)


def make_root() -> Resource:
    """
    The tutorial's resource tree: /logme.  Also servable with
    ``twistd -n sessions --session-timeout 5 --app examples.short_session.make_root``.
    """
    root = Resource()
    root.putChild(b"logme", ExpirationLogger())
    return root


def make_site(reactor: Any = None) -> Site:
    """
    The tutorial's Site: /logme, sessions of five seconds.
    """
    factory = Site(make_root(), reactor=reactor)
    factory.sessionFactory = ShortSession
    return factory


def main() -> None:
    from twisted.internet import reactor

    reactor.listenTCP(8080, make_site(reactor))  # type: ignore[arg-type]
    reactor.run()


if __name__ == "__main__":
    main()
