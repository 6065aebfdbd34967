"""
The README's stream publisher, served by a real Site with real Streams, publishes its event.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from twisted.internet import reactor
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from twisted_sessions import Site
from twisted_sessions.storage.keys import stream_key
from twisted_sessions.streams import Streams

from .activity.case import ActivityTestCase
from .http import open_channel, request_bytes
from .reactor_case import coroutine_test

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


class ReadmeStreamsTests(ActivityTestCase):
    @coroutine_test
    async def test_readme_signup_resource_publishes(self) -> None:
        """
        POST to the README's Signup resource puts one event on the signups stream, with the
        fields it publishes.
        """
        [block] = [
            b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "class Signup" in b
        ]
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        link = await self.binary_link()
        await link.execute("DEL", stream_key("signups"))
        blocking = await self.binary_link()
        blocking.deadline = 3  # Longer than the reader's one-second XREAD.
        streams = Streams(reactor, link, blocking)
        root = Resource()
        root.putChild(b"signup", namespace["Signup"]())  # type: ignore[operator]
        site = Site(root, reactor=reactor)
        self.addCleanup(site.expire_all)
        site.streams = streams
        channel, transport = open_channel(site)
        channel.dataReceived(request_bytes("POST", "/signup"))
        channel.connectionLost(Failure(ConnectionError("done")))
        self.assertIn(b"welcome", transport.value())
        await streams.writer.flush()
        [(_, fields)] = await link.execute("XRANGE", stream_key("signups"), "-", "+")
        body = json.loads(dict(zip(fields[::2], fields[1::2], strict=True))[b"d"])
        self.assertEqual(body, {"plan": "pro", "referrer": "newsletter"})
