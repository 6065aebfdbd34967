"""
Streams: live events out, as Wikimedia EventStreams serves them (Server-Sent Events, resumable
with ``Last-Event-ID``), with their history in Redis Streams shared by every server.

- :mod:`.hub`: :class:`Streams`, publishing (``publish``, the built-in streams) and the clients.
- :mod:`.writer`: :class:`StreamWriter`, batched, exactly-once, bounded, spooled writes.
- :mod:`.reader`: :class:`StreamReader`, one ``XREAD`` per process fanned out to its clients.
- :mod:`.client`: :class:`StreamClient`, one connection and its bound.
- :mod:`.frames`: events on the wire, and the ids that resume them.
- :mod:`.filters`: :class:`EventFilter`, Pywikibot's filter semantics on the server.

A domain beside clustering, counters and activity, independent of them: it reads storage and
the interfaces only.
"""

from .filters import EventFilter
from .frames import public_user
from .hub import BUILTIN_STREAMS, Streams
from .reader import StreamReader
from .writer import StreamWriter

__all__ = [
    "BUILTIN_STREAMS",
    "EventFilter",
    "StreamReader",
    "StreamWriter",
    "Streams",
    "public_user",
]
