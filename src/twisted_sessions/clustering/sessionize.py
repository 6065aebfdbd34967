"""
``python -m twisted_sessions sessionize``: cluster events from files into sessions, in batch.

Reads JSON lines (one object per line) or TSV (a header row naming the columns), from files or
standard input, and writes one session per line as JSON lines or TSV. A bad line is reported
with its file and line number and skipped (``--on-error skip``, the default) or stops the run
(``--on-error stop``, exit status 1). On a terminal a progress bar shows how far the input is.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

from .cache import CUTOFF, LATE_POLICIES, Cache
from .session import Session

FORMATS = ("jsonl", "tsv")


class BadLine(Exception):
    """
    One input line that cannot be used; the message says why.
    """


def build_parser() -> argparse.ArgumentParser:
    """
    The command's options.
    """
    parser = argparse.ArgumentParser(
        prog="python -m twisted_sessions sessionize",
        description="Cluster user events into sessions: a user's events less than --cutoff "
        "seconds apart form one session.",
    )
    parser.add_argument("files", nargs="*", default=["-"], help="input files ('-': stdin)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help=(
            "input format (default: by file extension, .tsv or else JSON lines; on stdin, "
            "by the first line: a TSV header or a JSON object)"
        ),
    )
    parser.add_argument("--user", default="user", help="field/column of the user (user)")
    parser.add_argument(
        "--timestamp",
        default="timestamp",
        help="field/column of the timestamp (timestamp): seconds, ISO 8601 or MediaWiki 14-digit",
    )
    parser.add_argument(
        "--cutoff",
        type=positive_seconds,
        default=CUTOFF,
        help="seconds of inactivity that end a session (3600)",
    )
    parser.add_argument(
        "--late",
        choices=LATE_POLICIES,
        default="place",
        help="events older than the newest seen: place them in their session, "
        "or reject them as bad lines (place)",
    )
    parser.add_argument("--output", "-o", default="-", help="output file ('-': stdout)")
    parser.add_argument(
        "--output-format",
        choices=FORMATS,
        default="jsonl",
        help="jsonl: one object per session with its events; tsv: user, "
        "session index, start, end, duration, events (jsonl)",
    )
    parser.add_argument(
        "--on-error",
        choices=("skip", "stop"),
        default="skip",
        help="a bad line is reported and skipped, or stops the run (skip)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar even on a terminal"
    )
    return parser


def positive_seconds(text: str) -> float:
    """
    An option's positive number of seconds (an argparse type).
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def main(
    argv: list[str] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """
    Run the command; returns the exit status (0; 1 for a stop on a bad line, or when not one
    line could be read; 2 for usage).
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    cache = Cache(args.cutoff, late=args.late)
    output = stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    write = session_writer(args.output_format, output)
    counts = {"events": 0, "sessions": 0, "bad": 0}
    status = 0
    try:
        for source, number, user, timestamp, data in _events(args, stdin, stderr, counts):
            try:
                ended = cache.process(user, timestamp, data)
            except (TypeError, ValueError) as error:  # LateEventError is a ValueError
                if _bad_line(args, stderr, source, number, str(error), counts):
                    raise BadLine(str(error)) from None
                continue
            counts["events"] += 1
            for session in ended:
                write(session)
                counts["sessions"] += 1
        # At the end of the input every open session is complete; after a stop it is not.
        for session in cache.finish_all():
            write(session)
            counts["sessions"] += 1
    except BadLine:
        status = 1
    finally:
        if output is not stdout:
            output.close()
    if counts["bad"] and not counts["events"]:
        # Not one usable line: a wrong format or wrong field names, not a few bad records.
        stderr.write("no line could be read: check --format, --user and --timestamp\n")
        status = 1
    stderr.write(
        f"{counts['events']} events, {counts['sessions']} sessions, {counts['bad']} bad "
        f"line(s) {'stopped the run' if status else 'skipped'}, "
        f"{cache.late_events} late event(s) placed\n"
    )
    return status


def _bad_line(
    args: argparse.Namespace,
    stderr: IO[str],
    source: str,
    number: int,
    problem: str,
    counts: dict[str, int],
) -> bool:
    """
    Report a bad line; True if the run must stop.
    """
    stderr.write(f"{source}, line {number}: {problem}\n")
    counts["bad"] += 1
    return bool(args.on_error == "stop")


def _events(
    args: argparse.Namespace, stdin: IO[str], stderr: IO[str], counts: dict[str, int]
) -> Iterator[tuple[str, int, Any, Any, Any]]:
    for name in args.files:
        stream = stdin if name == "-" else open(name, encoding="utf-8")  # noqa: SIM115
        label = "stdin" if name == "-" else name
        progress = _Progress(stream, label, stderr, enabled=not args.no_progress)
        lines: Iterable[str] = stream
        input_format = args.format
        if input_format is None and name == "-":
            # No file name to go by: the first line says (a JSON object, or a TSV header).
            first = stream.readline()
            input_format = (
                "tsv" if "\t" in first and not first.lstrip().startswith("{") else "jsonl"
            )
            lines = itertools.chain([first], stream)
        elif input_format is None:
            input_format = "tsv" if name.endswith(".tsv") else "jsonl"
        try:
            parse = _jsonl_lines if input_format == "jsonl" else _tsv_lines
            for number, parsed in parse(lines, args, progress):
                if isinstance(parsed, str):
                    if _bad_line(args, stderr, label, number, parsed, counts):
                        raise BadLine(parsed)
                    continue
                user, timestamp, data = parsed
                yield label, number, user, timestamp, data
        finally:
            progress.done()
            if stream is not stdin:
                stream.close()


def _jsonl_lines(
    stream: Iterable[str], args: argparse.Namespace, progress: _Progress
) -> Iterator[tuple[int, tuple[Any, Any, Any] | str]]:
    for number, line in enumerate(stream, 1):
        progress.advance(len(line))
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            yield number, f"not JSON: {error}"
            continue
        if not isinstance(record, dict):
            yield number, f"not a JSON object: {line.strip()[:60]!r}"
            continue
        missing = [f for f in (args.user, args.timestamp) if f not in record]
        if missing:
            yield number, f"no field {missing[0]!r}"
            continue
        user = record[args.user]
        if isinstance(user, dict | list):
            user = json.dumps(user, sort_keys=True)
        yield number, (user, record[args.timestamp], record)


def _tsv_lines(
    stream: Iterable[str], args: argparse.Namespace, progress: _Progress
) -> Iterator[tuple[int, tuple[Any, Any, Any] | str]]:
    stream = iter(stream)
    header_line = next(stream, "")
    progress.advance(len(header_line))
    header = header_line.rstrip("\r\n").split("\t")
    missing = [c for c in (args.user, args.timestamp) if c not in header]
    if missing:
        yield 1, f"the header has no column {missing[0]!r} (it has {', '.join(header)})"
        return
    user_at, timestamp_at = header.index(args.user), header.index(args.timestamp)
    for number, line in enumerate(stream, 2):
        progress.advance(len(line))
        if not line.strip():
            continue
        values = line.rstrip("\r\n").split("\t")
        if len(values) != len(header):
            yield number, f"{len(values)} columns where the header has {len(header)}"
            continue
        timestamp: Any = values[timestamp_at]
        if len(timestamp) != 14 or not timestamp.isdigit():
            # Seconds become a number; ISO 8601 text stays text: the clusterer parses it.
            with contextlib.suppress(ValueError):
                timestamp = float(timestamp)
        yield number, (values[user_at], timestamp, dict(zip(header, values, strict=True)))


def _iso(seconds: float) -> str:
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        return repr(seconds)  # Beyond what datetime represents: the number itself.
    return moment.isoformat().replace("+00:00", "Z")


def session_writer(output_format: str, output: IO[str]) -> Any:
    """
    A function writing one session to ``output`` (``jsonl`` or ``tsv``; the TSV header now).
    """
    if output_format == "jsonl":

        def write_json(session: Session) -> None:
            output.write(
                json.dumps(
                    {
                        "user": session.user,
                        "session": session.user_index,
                        "start": _iso(session.start),
                        "end": _iso(session.end),
                        "duration": session.duration,
                        "event_count": session.event_count,
                        "events": session.events,
                    },
                    default=str,
                )
                + "\n"
            )

        return write_json
    output.write("user\tsession\tstart\tend\tduration\tevents\n")

    def write_tsv(session: Session) -> None:
        user = str(session.user).replace("\t", " ").replace("\n", " ")
        output.write(
            f"{user}\t{session.user_index}\t{_iso(session.start)}\t{_iso(session.end)}\t"
            f"{session.duration:g}\t{session.event_count}\n"
        )

    return write_tsv


class _Progress:
    """
    A progress bar on a terminal, by bytes of a regular file read; nothing otherwise.
    """

    def __init__(self, stream: IO[str], label: str, out: IO[str], enabled: bool) -> None:
        self._out = out
        self._label = label
        self._read = 0
        self._next = 0.0
        self._total = 0
        if enabled and out.isatty():
            try:
                self._total = os.fstat(stream.fileno()).st_size
            except (OSError, ValueError, AttributeError):
                self._total = 0
        self._shown = False

    def advance(self, characters: int) -> None:
        if not self._total:
            return
        self._read += characters
        now = time.monotonic()
        if now >= self._next:
            self._next = now + 0.2
            self._draw()

    def _draw(self) -> None:
        fraction = min(self._read / self._total, 1.0)
        filled = int(fraction * 30)
        self._out.write(f"\r{self._label} [{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}")
        self._out.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self._read = self._total
            self._draw()
            self._out.write("\n")
