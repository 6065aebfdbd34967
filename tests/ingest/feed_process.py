"""
The test feed server (:mod:`tests.ingest.feed_server`) in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.request import urlopen

PROJECT = Path(__file__).resolve().parent.parent.parent


class FeedProcess:
    def __init__(self, *args: str) -> None:
        self.args = args
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> FeedProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.ingest.feed_server", *self.args],
            cwd=PROJECT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = line.split()[-1]
        return self

    @property
    def stream_url(self) -> str:
        return self.url + "v2/stream/recentchange"

    def log(self) -> list[dict[str, Any]]:
        with urlopen(self.url + "log", timeout=10) as response:
            found: list[dict[str, Any]] = json.loads(response.read())
            return found

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
