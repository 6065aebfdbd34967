"""
Fan-out of traffic reports to every attached observer, each isolated from the others' failures.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from twisted.logger import Logger

from ..interfaces import IAccountObserver, IRequestObserver, ISessionObserver

if TYPE_CHECKING:
    from ..events import RequestEvent, SessionSummary


class TrafficObservers:
    """
    The observers attached to one Site.

    One raising observer is logged with its traceback and never stops the others, nor the
    request or the expiry that reported.
    """

    _log = Logger()

    def __init__(self) -> None:
        self._request_observers: list[IRequestObserver] = []
        self._session_observers: list[ISessionObserver] = []
        self._account_observers: list[IAccountObserver] = []
        # What request_finished calls, bound once rather than looked up per request.
        self._request_handlers: tuple[tuple[IRequestObserver, Callable[..., object]], ...] = ()

    @property
    def request_observers(self) -> list[IRequestObserver]:
        """
        The attached request observers, in the order they are called.
        """
        return list(self._request_observers)

    def _bind(self) -> None:
        self._request_handlers = tuple((o, o.request_finished) for o in self._request_observers)

    def add(self, observer: object) -> None:
        """
        Attach ``observer`` for every interface it provides.

        :raises TypeError: it provides none of :class:`IRequestObserver`,
            :class:`ISessionObserver` and :class:`IAccountObserver`.
        """
        matched = False
        if IRequestObserver.providedBy(observer):
            self._request_observers.append(observer)
            self._bind()
            matched = True
        if ISessionObserver.providedBy(observer):
            self._session_observers.append(observer)
            matched = True
        if IAccountObserver.providedBy(observer):
            self._account_observers.append(observer)
            matched = True
        if not matched:
            raise TypeError(
                f"{observer!r} provides none of IRequestObserver, ISessionObserver and "
                "IAccountObserver; declare one with @implementer"
            )

    def remove(self, observer: object) -> None:
        """
        Detach ``observer``; detaching one that is not attached does nothing.
        """
        self._request_observers = [o for o in self._request_observers if o is not observer]
        self._session_observers = [o for o in self._session_observers if o is not observer]
        self._account_observers = [o for o in self._account_observers if o is not observer]
        self._bind()

    def request_finished(self, event: RequestEvent) -> None:
        """
        Report a finished request to every request observer.
        """
        for observer, handle in self._request_handlers:
            try:
                handle(event)
            except Exception:
                self._log.failure("request observer {observer!r} failed", observer=observer)

    def session_ended(self, summary: SessionSummary) -> None:
        """
        Report an ended web session to every session observer.
        """
        for observer in self._session_observers:
            try:
                observer.session_ended(summary)
            except Exception:
                self._log.failure("session observer {observer!r} failed", observer=observer)

    def account_changed(
        self, logged_in: bool, user: Hashable, session_key: str, when: float
    ) -> None:
        """
        Report a login (``logged_in``) or a logout to every account observer.
        """
        for observer in self._account_observers:
            try:
                if logged_in:
                    observer.logged_in(user, session_key, when)
                else:
                    observer.logged_out(user, session_key, when)
            except Exception:
                self._log.failure("account observer {observer!r} failed", observer=observer)
