"""
The README's ``edit_sessions`` example, run as written against the test feed: the editing
sessions of French Wikipedia's human editors, as ``cluster()`` finds them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from twisted_sessions.clustering import cluster, to_seconds

from ..reactor_case import coroutine_test
from .feed_process import FeedProcess
from .fixture import items, kept

README = (Path(__file__).resolve().parent.parent.parent / "README.md").read_text()


class ReadmeIngestTests(TestCase):
    timeout = 60

    @coroutine_test
    async def test_edit_sessions(self) -> None:
        [block] = [
            b
            for b in re.findall(r"```python\n(.*?)```", README, flags=re.S)
            if "def edit_sessions" in b
        ]
        namespace: dict[str, Any] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        feed = FeedProcess("--count", "1500").start()
        self.addCleanup(feed.stop)
        edits = [
            e
            for e in kept(items(1500))
            if e["server_name"] == "fr.wikipedia.org" and e["type"] == "edit" and not e["bot"]
        ]
        found = await namespace["edit_sessions"](reactor, url=feed.stream_url, count=len(edits))
        by_time = sorted(edits, key=lambda e: to_seconds(e["meta"]["dt"]))
        expected = cluster((e["user"], to_seconds(e["meta"]["dt"]), e["id"]) for e in by_time)
        self.assertEqual(
            sorted((s.user, sorted(e["id"] for e in s.events)) for s in found),
            sorted((s.user, sorted(s.events)) for s in expected),
        )
        self.assertGreater(len(found), 10)
