"""
``python -m twisted_sessions sessionize --sse URL``: the sessions of a live feed, as
``sessionize`` finds them in a file of the same events.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twisted_sessions.clustering import to_seconds

from .feed_process import PROJECT, FeedProcess
from .fixture import items, kept


@pytest.fixture
def source() -> Iterator[FeedProcess]:
    feed = FeedProcess("--count", "1500", "--cut-every", "400").start()
    yield feed
    feed.stop()


def sessionize(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twisted_sessions", "sessionize", *args],
        cwd=PROJECT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def shape(output: str) -> list[tuple[Any, ...]]:
    sessions = [json.loads(line) for line in output.splitlines()]
    return sorted(
        (s["user"], s["session"], s["start"], s["end"], tuple(e["id"] for e in s["events"]))
        for s in sessions
    )


def test_live_sessions_equal_the_file_sessions(source: FeedProcess, tmp_path: Path) -> None:
    """
    Every kept event of a feed cut every 400 items, sessionized live by event time, gives
    the sessions (users, indexes, spans, events) sessionize gives from a file of the same
    events in time order; the summary counts what was left aside.
    """
    events = kept(items(1500))
    live = sessionize(
        "--sse", source.stream_url, "--since", "2026-01-01T00:00:00Z", "--max-items", "1500"
    )
    assert live.returncode == 0, live.stderr
    by_time = sorted(events, key=lambda e: to_seconds(e["meta"]["dt"]))
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in by_time))
    from_file = sessionize(str(path), "--timestamp", "timestamp", "--no-progress")
    assert from_file.returncode == 0, from_file.stderr
    # The file's timestamp field is whole seconds; compare by events and users.
    live_sessions = [(u, n, ids) for u, n, _, _, ids in shape(live.stdout)]
    file_sessions = [(u, n, ids) for u, n, _, _, ids in shape(from_file.stdout)]
    assert live_sessions == file_sessions
    assert "1500 events" in live.stderr
    assert "1 not JSON" in live.stderr
    assert "0 late" in live.stderr


def test_filters_and_max_items(source: FeedProcess) -> None:
    """
    ``--filter`` keeps matching events only (dotted paths, alternatives) and
    ``--max-items`` counts kept events.
    """
    result = sessionize(
        "--sse",
        source.stream_url,
        "--filter",
        "type=edit,new",
        "--filter",
        "meta.domain=fr.wikipedia.org",
        "--max-items",
        "40",
        "--output-format",
        "tsv",
    )
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1:]
    assert sum(int(row.split("\t")[-1]) for row in rows) == 40
    expected = [
        e for e in kept(items(1500)) if e["type"] in ("edit", "new") and e["wiki"] == "frwiki"
    ][:40]
    assert sorted({row.split("\t")[0] for row in rows}) == sorted({e["user"] for e in expected})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sse", "http://x/s", "--filter", "type"), "--filter"),
        (("--sse", "http://x/s", "--since", "yesterday"), "--since"),
        (("--sse", "http://x/s", "--max-items", "0"), "--max-items"),
        (("--sse", "http://x/s", "--lateness", "-5"), "--lateness"),
    ],
)
def test_bad_options_are_named(args: tuple[str, ...], message: str) -> None:
    result = sessionize(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_feed_is_an_error(source: FeedProcess) -> None:
    result = sessionize("--sse", source.url + "v2/stream/nope")
    assert result.returncode == 1
    assert "404" in result.stderr


def test_a_progress_line_on_a_terminal(source: FeedProcess) -> None:
    """
    With standard error on a terminal, a progress line (events, sessions, open sessions,
    lag) is redrawn in place while the feed runs; sessions still go to standard output.
    """
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twisted_sessions",
                "sessionize",
                "--sse",
                source.stream_url,
                "--since",
                "2026-01-01T00:00:00Z",
                "--max-items",
                "1500",
            ],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
        )
        output, _ = process.communicate(timeout=60)
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # The terminal's other end is closed: all is read.
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode == 0
    text = shown.decode()
    assert re.search(r"\r[\d,]+ events, [\d,]+ sessions, [\d,]+ open, lag [\d,]+ s", text), text
    assert "1500 events" in text
    assert len(output.splitlines()) > 10
