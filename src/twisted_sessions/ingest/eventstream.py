"""
The ``text/event-stream`` format, parsed as the WHATWG HTML standard says (section 9.2.6).

There is no maintained Twisted SSE client on PyPI, and the Python ones (``sseclient``,
``requests-sse``) read a blocking ``requests`` response, so this small parser is our own. It
is fed bytes as they arrive and returns the events they complete:

- lines end with ``\\r\\n``, ``\\r`` or ``\\n`` (a ``\\r`` at the end of one chunk waits to see
  whether the next begins with ``\\n``); a byte-order mark at the start of a stream is dropped;
  bytes are UTF-8, invalid ones replaced;
- ``data`` lines join with ``\\n``; a line starting with ``:`` is a comment; ``event`` names
  the type (``message`` if none); ``retry`` with digits only sets the reconnection time;
  ``id`` sets the last event id unless it contains NUL, and that id is the one a reconnection
  sends back (``Last-Event-ID``) only once its event was dispatched;
- a blank line dispatches the event (none if no ``data`` came, though its ``id`` still
  counts); an event cut by the end of a connection is dropped (:meth:`EventStreamParser.reset`).
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple

_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


class MessageEvent(NamedTuple):
    """
    One dispatched event.

    :ivar type: the ``event`` field, ``"message"`` when there was none.
    :ivar data: the ``data`` lines joined by ``\\n``.
    :ivar last_event_id: the last event id when it was dispatched (``""`` if none yet): what
        a reconnection sends as ``Last-Event-ID`` to resume after this event.
    """

    type: str
    data: str
    last_event_id: str


class EventStreamParser:
    """
    Bytes of one event stream in, dispatched events out.

    :ivar last_event_id: the last event id of a dispatched event (kept across connections).
    :ivar retry: the reconnection time the server asked for, in milliseconds, or ``None``.
    """

    def __init__(self, last_event_id: str = "") -> None:
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self.reset()

    def reset(self) -> None:
        """
        A new connection: whatever the last one left half-received is dropped; the last
        event id and the retry time stay.
        """
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._started = False
        self._data: list[str] = []
        self._type = ""
        self._id_buffer = self.last_event_id

    def feed(self, chunk: bytes) -> list[MessageEvent]:
        """
        The events that ``chunk`` completes, in order.
        """
        text = self._pending + self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        lines = text.split("\n") if "\r" not in text else _LINE_END.split(text)
        # The last piece has no line end yet; a trailing "\r" may be the first half of "\r\n".
        self._pending = lines.pop()
        if text.endswith("\r"):
            # split() took "\r" as a line end: keep the line back until the next chunk says.
            self._pending = lines.pop() + "\r"
        events: list[MessageEvent] = []
        data = self._data
        for line in lines:
            if line:
                # The usual lines first, inline (a feed is mostly "id:", "data:" and
                # "event:" lines); anything else through _field.
                if line[:6] == "data: ":
                    data.append(line[6:])
                elif line[:4] == "id: " and "\x00" not in line:
                    self._id_buffer = line[4:]
                elif line[:7] == "event: ":
                    self._type = line[7:]
                else:
                    self._field(line)
                continue
            # A blank line: the id is taken even by an event without data (the standard's
            # dispatch sets the last event id first).
            self.last_event_id = self._id_buffer
            if data:
                text = data[0] if len(data) == 1 else "\n".join(data)
                events.append(MessageEvent(self._type or "message", text, self._id_buffer))
                data.clear()
            self._type = ""
        return events

    def _field(self, line: str) -> None:
        if line[0] == ":":
            return  # A comment (heartbeats are comments).
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
