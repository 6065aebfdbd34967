"""
Streams in: consume EventStreams-style Server-Sent-Events feeds, and sessionize them live.

- :mod:`.eventstream`: the ``text/event-stream`` parser (WHATWG rules), no reactor.
- :mod:`.source`: :class:`EventSource`, one feed read with treq, reconnected with backoff,
  ``retry:`` and ``Last-Event-ID``, every read under a deadline.
- :mod:`.filters` and :mod:`.eventstreams`: Pywikibot's ``EventStreams`` API and filter rules.
- :mod:`.mapping`: from an event's data to user, time and axis values (dotted paths).
- :mod:`.eventtime`: sessions by event time, ended by the feed's watermark.
- :mod:`.feed`: a feed in the server: counted, marked, sessionized, checkpointed with its counts.
- :mod:`.command`: ``python -m twisted_sessions sessionize --sse URL``.

This package sits above the domains it feeds (clustering, counters, activity, streams) and
below the stats tree and the composition root.
"""

from .eventstream import EventStreamParser, MessageEvent
from .eventstreams import EventStreams
from .eventtime import EventTimeSessions
from .feed import Feed
from .filters import StreamFilter
from .mapping import FieldMapping
from .source import EventSource

__all__ = [
    "EventSource",
    "EventStreamParser",
    "EventStreams",
    "EventTimeSessions",
    "Feed",
    "FieldMapping",
    "MessageEvent",
    "StreamFilter",
]
