"""
The batch command line: ``python -m twisted_sessions sessionize``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from twisted_sessions.clustering.sessionize import main

SEED_EVENTS = [
    {"user": "Willy on wheels", "timestamp": 100000, "rev_id": 1},
    {"user": "Walter", "timestamp": 100001, "rev_id": 2},
    {"user": "Willy on wheels", "timestamp": 100001, "rev_id": 3},
    {"user": "Walter", "timestamp": 100035, "rev_id": 4},
    {"user": "Willy on wheels", "timestamp": 103602, "rev_id": 5},
]


def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, io.StringIO(stdin), out, err)
    return status, out.getvalue(), err.getvalue()


def jsonl(records: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_seed_example_as_json_lines() -> None:
    """
    The seed's events, as JSON lines on stdin, give the seed's sessions, with their data.
    """
    status, out, err = run([], jsonl(SEED_EVENTS))
    assert status == 0
    sessions = [json.loads(line) for line in out.splitlines()]
    assert [(s["user"], [e["rev_id"] for e in s["events"]]) for s in sessions] == [
        ("Willy on wheels", [1, 3]),
        ("Walter", [2, 4]),
        ("Willy on wheels", [5]),
    ]
    assert [s["session"] for s in sessions] == [0, 0, 1]
    assert sessions[1]["start"] == "1970-01-02T03:46:41Z"
    assert sessions[1]["duration"] == 34
    assert "5 events, 3 sessions" in err


def test_tsv_with_named_columns(tmp_path: Path) -> None:
    """
    TSV input names its columns in a header; --user and --timestamp pick them; MediaWiki and
    ISO timestamps work; TSV output has one row per session.
    """
    source = tmp_path / "edits.tsv"
    source.write_text(
        "rev\teditor\twhen\n"
        "1\talice\t20150101000000\n"
        "2\tbob\t2015-01-01T00:10:00Z\n"
        "3\talice\t20150101003000\n"
        "4\talice\t20150101020000\n"
    )
    status, out, _ = run(
        [str(source), "--user", "editor", "--timestamp", "when", "--output-format", "tsv"]
    )
    assert status == 0
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == ["user", "session", "start", "end", "duration", "events"]
    # In the order the sessions end: bob's (last event 00:10) before alice's (00:30).
    assert rows[1:] == [
        ["bob", "0", "2015-01-01T00:10:00Z", "2015-01-01T00:10:00Z", "0", "1"],
        ["alice", "0", "2015-01-01T00:00:00Z", "2015-01-01T00:30:00Z", "1800", "2"],
        ["alice", "1", "2015-01-01T02:00:00Z", "2015-01-01T02:00:00Z", "0", "1"],
    ]


def test_bad_lines_are_reported_and_skipped() -> None:
    """
    Bad lines are reported with their line numbers and skipped; the rest is clustered.
    """
    lines = jsonl(SEED_EVENTS[:2]) + "not json\n" + '{"user": "x"}\n' + "[1, 2]\n"
    lines += json.dumps({"user": "y", "timestamp": "tomorrow"}) + "\n" + jsonl(SEED_EVENTS[2:])
    status, out, err = run([], lines)
    assert status == 0
    assert "stdin, line 3: not JSON" in err
    assert "stdin, line 4: no field 'timestamp'" in err
    assert "stdin, line 5: not a JSON object" in err
    assert "stdin, line 6: timestamp 'tomorrow'" in err
    assert "4 bad line(s) skipped" in err
    assert len(out.splitlines()) == 3


def test_stop_on_error() -> None:
    """
    With --on-error stop the first bad line stops the run with status 1.
    """
    lines = jsonl(SEED_EVENTS[:2]) + "oops\n" + jsonl(SEED_EVENTS[2:])
    status, out, err = run(["--on-error", "stop"], lines)
    assert status == 1
    assert "stdin, line 3: not JSON" in err
    assert out == ""


def test_late_events_rejected_on_request() -> None:
    """
    With --late reject an out-of-order event is a bad line; by default it is placed.
    """
    events = [SEED_EVENTS[1], SEED_EVENTS[0], *SEED_EVENTS[2:]]
    status, out, err = run(["--late", "reject"], jsonl(events))
    assert status == 0
    assert "stdin, line 2: event of user 'Willy on wheels'" in err
    status, out, err = run([], jsonl(events))
    assert "1 late event(s) placed" in err
    first = json.loads(out.splitlines()[0])
    assert [e["rev_id"] for e in first["events"]] == [1, 3]


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """
    On a terminal, reading a file shows a progress bar that reaches 100%.
    """

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    source = tmp_path / "events.jsonl"
    source.write_text(jsonl(SEED_EVENTS * 200))
    err = Terminal()
    assert main([str(source)], io.StringIO(), io.StringIO(), err) == 0
    assert "[##############################] 100%" in err.getvalue()
    quiet = Terminal()
    main([str(source), "--no-progress"], io.StringIO(), io.StringIO(), quiet)
    assert "100%" not in quiet.getvalue()


@pytest.mark.parametrize(
    "argv, option", [(["--cutoff", "-1"], "--cutoff"), (["--format", "xml"], "--format")]
)
def test_usage_errors_name_the_option(argv: list[str], option: str) -> None:
    """
    A bad option value exits with status 2 and a message naming the option.
    """
    result = subprocess.run(
        [sys.executable, "-m", "twisted_sessions", "sessionize", *argv],
        capture_output=True,
        text=True,
        input="",
    )
    assert result.returncode == 2
    assert option in result.stderr
    assert "Traceback" not in result.stderr


def test_module_entry_point(tmp_path: Path) -> None:
    """
    ``python -m twisted_sessions sessionize FILE -o OUT`` works as a command.
    """
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(jsonl(SEED_EVENTS))
    result = subprocess.run(
        [sys.executable, "-m", "twisted_sessions", "sessionize", str(source), "-o", str(target)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert len(target.read_text().splitlines()) == 3


def test_tsv_on_stdin_is_recognised() -> None:
    """
    TSV on standard input (no file name to go by) is read as TSV from its header line.
    """
    tsv = "rev\teditor\twhen\n1\talice\t20150101000000\n2\talice\t20150101003000\n"
    status, out, err = run(["--user", "editor", "--timestamp", "when"], stdin=tsv)
    assert status == 0, err
    [session] = [json.loads(line) for line in out.splitlines()]
    assert (session["user"], len(session["events"])) == ("alice", 2)


def test_a_run_where_no_line_could_be_read_fails() -> None:
    """
    Input of which not one line is usable (wrong field names) exits 1 and says what to check,
    rather than exiting 0 with nothing but "bad line" messages.
    """
    status, out, err = run(["--user", "editor"], stdin=jsonl([{"who": "a", "t": 1}] * 3))
    assert status == 1 and out == ""
    assert "no line could be read" in err
