"""
Pywikibot's ``EventStreams``, the Twisted way: the same arguments and filters, events handed
to a callback as they arrive instead of a blocking generator::

    stream = EventStreams(reactor, streams=["recentchange", "revision-create"],
                          since="20260101000000")
    stream.register_filter(server_name="fr.wikipedia.org", type="edit")
    stream.set_maximum_items(5)
    stream.start(print)       # each kept event's data, a dict
    stream.done               # a Deferred fired after the fifth

What differs from Pywikibot's, on purpose: nothing blocks; a reconnection resumes with
``Last-Event-ID`` after the last event *dispatched* (Pywikibot's after the last one it yielded
to you, so that filtered events are fetched again); every read has a deadline; a float filter
value is compared, not a ``TypeError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from .eventstream import MessageEvent
from .filters import FilterType, Predicate, StreamFilter
from .source import EventSource

#: Where Wikimedia serves its streams (``https://stream.wikimedia.org/?doc``).
WIKIMEDIA = "https://stream.wikimedia.org/v2/stream"


def since_text(since: object) -> str:
    """
    ``since`` as an EventStreams ``since=`` value: ISO 8601 text as it is, a MediaWiki
    14-digit timestamp and a ``datetime`` (naive: UTC) as ISO 8601, a number as milliseconds
    since the epoch (what EventStreams takes too).

    :raises ValueError: anything else, naming it.
    """
    if isinstance(since, datetime):
        moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(since, str):
        text = since.strip()
        if len(text) == 14 and text.isdigit():
            try:
                moment = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            except ValueError:
                raise ValueError(f"since: not a MediaWiki timestamp: {since!r}") from None
            return since_text(moment)
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"since must be ISO 8601, a 14-digit MediaWiki timestamp, a datetime or "
                f"milliseconds, not {since!r}"
            ) from None
        return text
    if isinstance(since, int | float) and not isinstance(since, bool) and since >= 0:
        return str(int(since))
    raise ValueError(
        f"since must be ISO 8601, a 14-digit MediaWiki timestamp, a datetime or milliseconds, "
        f"not {since!r}"
    )


class EventStreams:
    """
    Consume an EventStreams-style feed.

    :param reactor: the reactor (network and time).
    :param streams: a stream name or several (a list, or names joined by commas), appended
        to ``base``; or give ``url``.
    :param url: the whole URL of the feed (``since`` is added to it if given).
    :param since: start at this time (see :func:`since_text`); ignored once an event was
        received: reconnections resume by ``Last-Event-ID``.
    :param canary: keep the canary events Wikimedia sends to check its pipelines (they carry
        ``meta.domain == "canary"``; dropped by default, as Pywikibot does).
    :param last_event_id: resume after this event instead of ``since``.
    :param base: where stream names are appended.
    :param source_options: passed to :class:`EventSource` (``retry``, ``idle_timeout``,
        ``connect_timeout``, ``max_delay``, ``headers``, ``agent``).
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        *,
        streams: str | Iterable[str] | None = None,
        url: str | None = None,
        since: object = None,
        canary: bool = False,
        last_event_id: str = "",
        base: str = WIKIMEDIA,
        **source_options: Any,
    ) -> None:
        if url is None and not streams:
            raise ValueError("EventStreams needs streams= (a name or a list) or url=")
        if streams is not None and not isinstance(streams, str):
            streams = ",".join(streams)
        self._reactor = reactor
        self.streams = streams
        self.since = since_text(since) if since is not None else None
        self.canary = canary
        if url is None:
            url = f"{base.rstrip('/')}/{streams}"
        if self.since is not None:
            url += ("&" if "?" in url else "?") + f"since={self.since}"
        self.url = url
        self.filter = StreamFilter()
        self._total: int | None = None
        self._source_options = source_options
        self._last_event_id = last_event_id
        self.source: EventSource | None = None
        self._on_item: Callable[[dict[str, Any]], object] | None = None
        self._on_message: Callable[[MessageEvent, dict[str, Any] | None], object] | None = None
        #: Fires when the maximum number of items was reached, or the source stopped.
        self.done: Deferred[None] = Deferred()
        self.kept = 0
        self.filtered = 0
        self.bad = 0
        self.errors = 0

    def __repr__(self) -> str:
        return f"EventStreams(url={self.url!r})"

    def register_filter(
        self, *funcs: Predicate, ftype: FilterType = "all", **key_values: Any
    ) -> None:
        """
        Register filters, as Pywikibot's ``register_filter`` does (see
        :mod:`twisted_sessions.ingest.filters`).
        """
        self.filter.register(*funcs, ftype=ftype, **key_values)

    def set_maximum_items(self, value: int | None) -> None:
        """
        Stop after ``value`` kept events (filtered ones do not count); ``None``: never.
        """
        self._total = None if value is None else int(value)

    def streamfilter(self, data: Mapping[str, Any]) -> bool:
        """
        Whether an event's data is kept: canary events are not (unless ``canary``), then
        the registered filters decide.
        """
        if not self.canary:
            meta = data.get("meta")
            if type(meta) is dict and meta.get("domain") == "canary":
                return False
        filters = self.filter
        return not filters or filters(data)

    @property
    def last_event_id(self) -> str:
        """
        The id of the last event received (where a reconnection resumes).
        """
        if self.source is not None:
            return self.source.last_event_id
        return self._last_event_id

    def start(
        self,
        on_item: Callable[[dict[str, Any]], object],
        on_message: Callable[[MessageEvent, dict[str, Any] | None], object] | None = None,
    ) -> Deferred[None]:
        """
        Connect, and call ``on_item(data)`` with each kept event's data (a dict), in order;
        ``on_message(event, data)`` too, if given, with every message event (``data`` is
        ``None`` for an event not kept). Returns :attr:`done`.
        """
        self._on_item = on_item
        self._on_message = on_message
        self.source = EventSource(
            self._reactor,
            self.url,
            self._received,
            last_event_id=self._last_event_id,
            **self._source_options,
        )
        self.source.done.addBoth(self._source_done)
        if self._total is not None and self._total <= 0:
            self._finish()
        else:
            self.source.start()
        return self.done

    def stop(self) -> None:
        """
        Stop consuming; :attr:`done` fires.
        """
        if self.source is not None:
            self.source.stop()
        self._finish()

    def _finish(self) -> None:
        if not self.done.called:
            self.done.callback(None)

    def _source_done(self, result: object) -> None:
        if self.done.called:
            return
        if isinstance(result, Failure):
            self.done.errback(result)
        else:
            self.done.callback(None)

    def _received(self, event: MessageEvent) -> None:
        if event.type == "error":
            self.errors += 1
            self._log.warn("feed {url} sent an error: {data}", url=self.url, data=event.data)
            return
        if event.type != "message":
            self._log.warn(
                "feed {url}: unknown event type {type!r}, skipped", url=self.url, type=event.type
            )
            return
        data: dict[str, Any] | None = None
        try:
            parsed = json.loads(event.data)
        except ValueError as error:
            self.bad += 1
            self._log.warn(
                "feed {url}: an event that is not JSON, skipped ({error}): {data!r}",
                url=self.url,
                error=str(error),
                data=event.data[:200],
            )
        else:
            if not isinstance(parsed, dict):
                self.bad += 1
                self._log.warn(
                    "feed {url}: an event that is not a JSON object, skipped: {data!r}",
                    url=self.url,
                    data=event.data[:200],
                )
            elif self.streamfilter(parsed):
                data = parsed
            else:
                self.filtered += 1
        if self._on_message is not None:
            self._on_message(event, data)
        if data is None or self.done.called:
            return
        self.kept += 1
        assert self._on_item is not None
        self._on_item(data)
        if self._total is not None and self.kept >= self._total:
            self.stop()
