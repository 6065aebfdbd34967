"""
The HAProxy configuration in examples/ is the one the code writes, and HAProxy accepts it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from twisted_sessions.deploy.haproxy import haproxy_config

EXAMPLE = Path(__file__).parents[2] / "examples" / "haproxy.cfg"


def test_the_example_is_what_the_local_site_runs() -> None:
    """
    examples/haproxy.cfg is haproxy_config() for three servers on 8081-8083 behind 8080: what
    the docs describe is what the tests exercise.
    """
    servers = [("s1", 8081), ("s2", 8082), ("s3", 8083)]
    assert EXAMPLE.read_text() == haproxy_config(8080, servers)


def test_haproxy_accepts_it(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    for text in (
        EXAMPLE.read_text(),
        haproxy_config(8080, [("a", 9000)], log=True, socket=str(tmp_path / "h.sock")),
    ):
        config = tmp_path / "haproxy.cfg"
        config.write_text(text)
        checked = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_it_keeps_visitors_on_their_server() -> None:
    text = haproxy_config(8080, [("s1", 8081)], visitor_cookie="VISITOR")
    assert "stick on req.cook(VISITOR)" in text
    assert "stick store-response res.cook(VISITOR)" in text
    assert "option forwardfor" in text  # The stats tree then sees remote clients.
