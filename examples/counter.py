"""
The Twisted Web tutorial's per-session visit counter (state by interface adaption), ported to
Python 3 (``@implementer`` instead of ``implements``) and to twisted-sessions.

Serve it with tracking::

    twistd -n sessions --app examples.counter.resource

Every reload of the page says "Visit #N for you!" with N counting up within your session.
"""

from __future__ import annotations

from typing import Any

from twisted.python.components import registerAdapter
from twisted.web.resource import Resource
from zope.interface import Attribute, Interface, implementer

from twisted_sessions import Session


class ICounter(Interface):
    value = Attribute("An int value which counts up once per page view.")


@implementer(ICounter)
class Counter:
    def __init__(self, session: Session) -> None:
        self.value = 0


registerAdapter(Counter, Session, ICounter)


class CounterResource(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        session = request.getSession()
        counter = ICounter(session)
        counter.value += 1
        return b"Visit #%d for you!" % (counter.value,)


resource = CounterResource()
