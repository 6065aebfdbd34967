"""
The README's activity example runs against a real Redis and gives the numbers it shows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from twisted_sessions import Site
from twisted_sessions.activity import Period

from .activity.case import ActivityTestCase
from .http import open_channel, request_bytes
from .reactor_case import coroutine_test

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


class ReadmeActivityTests(ActivityTestCase):
    @coroutine_test
    async def test_readme_activity_example(self) -> None:
        blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
        [block] = [b for b in blocks if "async def activity_example" in b]
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        run = namespace["activity_example"]
        result = await Deferred.fromCoroutine(run(await self.activity()))  # type: ignore[operator]
        shown = re.search(r"gives `(\{.*?\})`", README, flags=re.S)
        assert shown is not None
        self.assertEqual(result, eval(shown.group(1).replace("\n", " ")))

    @coroutine_test
    async def test_readme_player_resource_marks_through_a_real_site(self) -> None:
        """
        The README's resource, served by a real Site with a real Activity, marks its visitor.
        """
        blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
        [block] = [b for b in blocks if "class Player" in b]
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        activity = await self.activity()
        root = Resource()
        root.putChild(b"play", namespace["Player"]())  # type: ignore[operator]
        site = Site(root, reactor=reactor)
        self.addCleanup(site.expire_all)
        site.activity = activity
        channel, transport = open_channel(site)
        channel.dataReceived(request_bytes("GET", "/play"))
        channel.connectionLost(Failure(ConnectionError("done")))
        self.assertIn(b"playing", transport.value())
        await activity.writer.flush()
        today = Period.of(datetime.fromtimestamp(reactor.seconds(), UTC), "day")
        self.assertEqual(await activity.events("song:play", today).count(), 1)
