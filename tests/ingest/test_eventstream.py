"""
The event-stream parser follows the WHATWG rules, whatever the chunking of the bytes.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from twisted_sessions.ingest.eventstream import EventStreamParser, MessageEvent


def parse(*chunks: bytes) -> list[MessageEvent]:
    parser = EventStreamParser()
    found: list[MessageEvent] = []
    for chunk in chunks:
        found += parser.feed(chunk)
    return found


def test_line_ends_crlf_cr_and_lf_are_all_line_ends() -> None:
    """
    ``\\r\\n``, ``\\r`` and ``\\n`` each end a line, mixed in one stream.
    """
    assert parse(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        MessageEvent("message", "a", ""),
        MessageEvent("message", "b", ""),
        MessageEvent("message", "c", ""),
    ]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    """
    A ``\\r`` at the end of a chunk followed by ``\\n`` is one line end, not a blank line:
    the event is not dispatched twice or early.
    """
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [
        MessageEvent("message", "a\nb", "")
    ]


def test_a_leading_bom_is_dropped_once() -> None:
    """
    A byte-order mark starts the stream without spoiling its first field name; a second
    one is part of the text.
    """
    assert parse(b"\xef\xbb", b"\xbfdata: x\n\n") == [MessageEvent("message", "x", "")]
    assert parse("\ufeff\ufeffdata: x\n\n".encode()) == []


def test_data_lines_join_with_newlines_and_one_leading_space_is_dropped() -> None:
    """
    Multi-line data, a field without a colon, and only the first space after the colon
    removed.
    """
    assert parse(b"data:  two spaces\ndata\ndata:end\n\n") == [
        MessageEvent("message", " two spaces\n\nend", "")
    ]


def test_comments_event_types_and_empty_events() -> None:
    """
    Comments (heartbeats) dispatch nothing; ``event`` names the type of one event only; a
    blank line with no data dispatches nothing.
    """
    assert parse(b":heartbeat\n\nevent: error\ndata: bad\n\nevent: x\n\ndata: y\n\n") == [
        MessageEvent("error", "bad", ""),
        MessageEvent("message", "y", ""),
    ]


def test_ids_persist_nul_ids_are_ignored_and_an_empty_id_resets() -> None:
    """
    An event's id is the last id seen; one with NUL is ignored; ``id`` alone clears it; an
    id on an event without data still counts for a reconnection.
    """
    parser = EventStreamParser()
    events = parser.feed(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x003\ndata: c\n\nid\ndata: d\n\n")
    assert [(e.data, e.last_event_id) for e in events] == [
        ("a", "1"),
        ("b", "1"),
        ("c", "1"),
        ("d", ""),
    ]
    parser.feed(b"id: 9\n\n")
    assert parser.last_event_id == "9"


def test_retry_takes_digits_only() -> None:
    parser = EventStreamParser()
    parser.feed(b"retry: 2500\n\nretry: 10s\n\nretry: -1\n\n")
    assert parser.retry == 2500


def test_a_half_received_event_is_dropped_and_its_id_not_kept() -> None:
    """
    A connection cut mid-event: the next connection starts clean, and the last event id
    (sent as Last-Event-ID) is that of the last whole event.
    """
    parser = EventStreamParser()
    assert parser.feed(b"id: 1\ndata: whole\n\nid: 2\ndata: half") == [
        MessageEvent("message", "whole", "1")
    ]
    parser.reset()
    assert parser.last_event_id == "1"
    assert parser.feed(b"data: next\n\n") == [MessageEvent("message", "next", "1")]


def test_invalid_utf8_is_replaced_and_a_split_character_is_whole() -> None:
    assert parse(b"data: \xff\n\n") == [MessageEvent("message", "\ufffd", "")]
    assert parse(b"data: \xc3", b"\xa9\n\n") == [MessageEvent("message", "\u00e9", "")]


STREAM = (
    b"\xef\xbb\xbfretry: 10\r\n: hi\r\nid: 1\r\nevent: a\r\ndata: x\r\ndata: y\r\n\r\n"
    b"data: \xc3\xa9t\xc3\xa9\rid: 2\r\r:c\n\nid\nevent: error\ndata:z\n\n"
)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    """
    However the bytes arrive (every split, CR/LF and UTF-8 sequences cut included), the
    events are those of the whole stream at once.
    """
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert (
        parse(*chunks)
        == parse(STREAM)
        == [
            MessageEvent("a", "x\ny", "1"),
            MessageEvent("message", "\u00e9t\u00e9", "2"),
            MessageEvent("error", "z", ""),
        ]
    )
