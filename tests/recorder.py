"""
A test observer at the Site's seam: it keeps every finished request and ended session.
"""

from __future__ import annotations

from zope.interface import implementer

from twisted_sessions import IRequestObserver, ISessionObserver, RequestEvent, SessionSummary


@implementer(IRequestObserver, ISessionObserver)
class Recorder:
    """
    The test subscriber at the Site's seam.
    """

    def __init__(self) -> None:
        self.requests: list[RequestEvent] = []
        self.sessions: list[SessionSummary] = []

    def request_finished(self, event: RequestEvent) -> None:
        self.requests.append(event)

    def session_ended(self, summary: SessionSummary) -> None:
        self.sessions.append(summary)
