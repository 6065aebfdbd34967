"""
``python -m twisted_sessions sessionize --sse URL``: sessionize a live feed from the command
line, writing each session as it ends.

The same clustering as ``sessionize`` over files (the same output formats), by event time: a
session ends when the feed's watermark (its newest event time less ``--lateness``) is
``--cutoff`` past its last event, so a feed replayed from ``--since`` a week ago gives the
sessions a file of the same events would. ``--max-items`` stops after that many kept events
(then every open session is written); Ctrl-C does the same. On a terminal a progress line
shows events, sessions, open sessions and the feed's lag.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Hashable
from typing import IO, Any

from twisted.internet.defer import Deferred

from ..clustering.sessionize import FORMATS, positive_seconds, session_writer
from .eventstreams import EventStreams, since_text
from .eventtime import EventTimeSessions
from .feed import FEED_CUTOFF, FEED_LATENESS
from .filters import parse_filter
from .mapping import FieldMapping, Unmapped, path_predicate


def build_parser() -> argparse.ArgumentParser:
    """
    The options of ``sessionize --sse``.
    """
    parser = argparse.ArgumentParser(
        prog="python -m twisted_sessions sessionize --sse",
        description="Sessionize a live Server-Sent-Events feed (EventStreams-style): a user's "
        "events less than --cutoff seconds apart, by event time, form one session.",
    )
    parser.add_argument("--sse", required=True, metavar="URL", help="the feed's URL")
    parser.add_argument("--user", default="user", help="dotted path of the user (user)")
    parser.add_argument(
        "--timestamp",
        default="meta.dt",
        help="dotted path of the event time (meta.dt): ISO 8601, seconds, milliseconds or "
        "MediaWiki 14-digit",
    )
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="keep only events whose field matches (repeatable; all must match): "
        "type=edit, bot=false, type=edit,new for either",
    )
    parser.add_argument("--since", help="start at this time (ISO 8601 or MediaWiki 14-digit)")
    parser.add_argument("--canary", action="store_true", help="keep canary events")
    parser.add_argument(
        "--cutoff",
        type=positive_seconds,
        default=FEED_CUTOFF,
        help=f"seconds of inactivity that end a session ({FEED_CUTOFF})",
    )
    parser.add_argument(
        "--lateness",
        type=_non_negative,
        default=FEED_LATENESS,
        help=f"seconds an event may come after newer ones and still be in order "
        f"({FEED_LATENESS:g})",
    )
    parser.add_argument("--max-items", type=_positive_int, help="stop after this many kept events")
    parser.add_argument(
        "--idle-timeout",
        type=positive_seconds,
        default=60.0,
        help="seconds of silence (no event, no heartbeat) after which the feed is reconnected (60)",
    )
    parser.add_argument("--output", "-o", default="-", help="output file ('-': stdout)")
    parser.add_argument("--output-format", choices=FORMATS, default="jsonl")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    return parser


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or more seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Any]:
    """
    The parsed filters; a usage error naming the option for anything bad.
    """
    filters = []
    for text in args.filter:
        try:
            filters.append(parse_filter(text))
        except ValueError as error:
            parser.error(f"--filter: {error}")
    if args.since is not None:
        try:
            args.since = since_text(args.since)
        except ValueError as error:
            parser.error(f"--since: {error}")
    return filters


def main(argv: list[str], stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """
    Run the command (with the reactor); the exit status.
    """
    from twisted.internet.task import react

    parser = build_parser()
    args = parser.parse_args(argv)
    filters = _check(parser, args)
    status: list[int] = []

    def run(reactor: Any) -> Any:
        run_ = _Run(reactor, args, filters, stdout or sys.stdout, stderr or sys.stderr)
        return run_.start().addCallback(status.append)

    try:
        react(run)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return int(exit_.code) if isinstance(exit_.code, int) else 1
    return status[0] if status else 0


class _Run:
    """
    One run: the stream, the sessions, the output.
    """

    def __init__(
        self,
        reactor: Any,
        args: argparse.Namespace,
        filters: list[tuple[str, object]],
        stdout: IO[str],
        stderr: IO[str],
    ) -> None:
        self._reactor = reactor
        self._args = args
        self._stderr = stderr
        self._output = (
            stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
        )
        self._write = session_writer(args.output_format, self._output)
        self._mapping = FieldMapping(args.user, args.timestamp, ())
        self._sessions = EventTimeSessions(args.cutoff, args.lateness)
        self._stream = EventStreams(
            reactor,
            url=args.sse,
            since=args.since,
            canary=args.canary,
            idle_timeout=args.idle_timeout,
        )
        for path, value in filters:
            self._stream.register_filter(path_predicate(path, value))
        if args.max_items is not None:
            self._stream.set_maximum_items(args.max_items)
        self._counts = {"events": 0, "sessions": 0, "left_out": 0}
        self._progress = not args.no_progress and stderr.isatty()
        self._next_progress = 0.0

    def start(self) -> Any:
        reactor = self._reactor
        reactor.addSystemEventTrigger("before", "shutdown", self._stream.stop)
        done: Deferred[Any] = self._stream.start(self._item)
        done.addCallbacks(lambda _: 0, self._failed)
        return done.addCallback(self._finish)

    def _failed(self, failure: Any) -> int:
        self._stderr.write(f"\nsessionize: {failure.getErrorMessage()}\n")
        return 1

    def _item(self, data: dict[str, Any]) -> None:
        try:
            user, when, _ = self._mapping(data)
        except Unmapped as error:
            self._counts["left_out"] += 1
            if self._counts["left_out"] <= 10:
                self._stderr.write(f"event left out: {error}\n")
            return
        self._counts["events"] += 1
        user_key: Hashable = user
        for session in self._sessions.add(user_key, when, self._counts["events"], data):
            self._write(session)
            self._counts["sessions"] += 1
            self._output.flush()  # Each session as it ends, also through a pipe.
        if self._progress:
            now = self._reactor.seconds()
            if now >= self._next_progress:
                self._next_progress = now + 0.5
                self._show(now)

    def _show(self, now: float) -> None:
        newest = self._sessions.newest
        lag = f"{now - newest:,.0f} s" if newest is not None else "-"
        self._stderr.write(
            f"\r{self._counts['events']:,} events, {self._counts['sessions']:,} sessions, "
            f"{self._sessions.open_count:,} open, lag {lag}   "
        )
        self._stderr.flush()

    def _finish(self, status: int) -> int:
        for session in self._sessions.finish():
            self._write(session)
            self._counts["sessions"] += 1
        self._output.flush()
        if self._args.output != "-":
            self._output.close()
        stream = self._stream
        self._stderr.write(
            f"{chr(10) if self._progress else ''}{self._counts['events']} events, "
            f"{self._counts['sessions']} sessions, {stream.filtered} filtered, {stream.bad} not "
            f"JSON, {self._counts['left_out']} left out, {self._sessions.late} late\n"
        )
        return status
