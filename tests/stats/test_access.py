"""
The stats tree is not traffic and not public: untracked, loopback-only without a token.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.python.failure import Failure

from twisted_sessions.stats.access import StatsAccess, is_loopback_client
from twisted_sessions.tap import Options, build_server

from ..http import LOCAL_CLIENT, Response, open_channel, parse_response, request_bytes
from ..recorder import Recorder

TOKEN = "0123456789abcdef0123"


def server(*argv: str) -> Any:
    options = Options()
    options.parseOptions(["--redis", "redis://127.0.0.1:6390/0", *argv])
    return build_server(Clock(), options)


def fetch(
    site: Any,
    path: str,
    client: IPv4Address | IPv6Address = LOCAL_CLIENT,
    headers: dict[str, str] | None = None,
) -> Response:
    channel, transport = open_channel(site, client=client)
    channel.dataReceived(request_bytes("GET", path, headers=headers))
    raw = transport.value()
    channel.connectionLost(Failure(ConnectionError("test done")))
    return parse_response(raw)


def test_stats_requests_are_not_traffic() -> None:
    """
    A cookieless scraper polling the stats tree gets no cookie, makes no web session, and is
    reported to no observer (so no metrica and no visit counts it); the site's own pages
    still are.
    """
    built = server()
    site = built.site
    recorder = Recorder()
    site.add_observer(recorder)
    for path in ("/stats", "/stats/metricas", "/stats/openapi.json", "/stats/nothing"):
        response = fetch(site, path)
        assert response.status in (200, 404), path
        assert response.header("Set-Cookie") is None, path
    assert len(site.sessions) == 0
    assert recorder.requests == []
    page = fetch(site, "/")
    assert page.header("Set-Cookie") is not None
    assert [event.path for event in recorder.requests] == ["/"]
    # A first request is handed a session id; the session exists once the id comes back.
    assert len(site.sessions) == 0


@pytest.mark.parametrize(
    "client",
    [
        IPv4Address("TCP", "127.0.0.1", 1),
        IPv4Address("TCP", "127.8.9.10", 1),
        IPv6Address("TCP", "::1", 1),
        IPv6Address("TCP", "::ffff:127.0.0.1", 1),
    ],
    ids=str,
)
def test_loopback_clients_read_the_stats_without_a_token(client: Any) -> None:
    """
    With no token and no --stats-public, a client on this host reads the statistics.
    """
    assert fetch(server().site, "/stats", client).status == 200


@pytest.mark.parametrize(
    "client, headers",
    [
        (IPv4Address("TCP", "10.1.2.3", 1), {}),
        (IPv6Address("TCP", "2001:db8::1", 1), {}),
        (IPv4Address("TCP", "127.0.0.1", 1), {"X-Forwarded-For": "203.0.113.9"}),
        (IPv4Address("TCP", "127.0.0.1", 1), {"X-Real-IP": "203.0.113.9"}),
        (IPv4Address("TCP", "127.0.0.1", 1), {"Forwarded": "for=203.0.113.9"}),
    ],
)
def test_other_clients_get_a_403_saying_how_to_open_it(client: Any, headers: Any) -> None:
    """
    A remote client, or any request relayed by a proxy (even one on this host), gets a 403
    whose JSON body names both ways to allow remote access; nothing below /stats leaks.
    """
    site = server().site
    for path in ("/stats", "/stats/metricas/requests", "/stats/openapi.json"):
        response = fetch(site, path, client, headers)
        assert response.status == 403, path
        error = json.loads(response.body)["error"]
        assert "--stats-token-file" in error and "--stats-public" in error


def test_stats_public_opens_it_and_a_token_replaces_the_loopback_rule(tmp_path: Any) -> None:
    """
    --stats-public answers every client; with a token, any client with it is answered and
    one without it (even local) gets a 401.
    """
    remote = IPv4Address("TCP", "10.1.2.3", 1)
    assert fetch(server("--stats-public").site, "/stats", remote).status == 200
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    site = server("--stats-token-file", str(token_file)).site
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert fetch(site, "/stats", remote, bearer).status == 200
    assert fetch(site, "/stats", remote).status == 401
    assert fetch(site, "/stats").status == 401


def test_unix_socket_clients_are_local() -> None:
    """
    A client on the server's unix socket is on this host.
    """

    class Request:
        class requestHeaders:  # noqa: N801 - the attribute name Twisted uses
            @staticmethod
            def hasHeader(name: bytes) -> bool:
                return False

        @staticmethod
        def getClientAddress() -> UNIXAddress:
            return UNIXAddress(b"/tmp/sessions.sock")

    assert is_loopback_client(Request())
    assert StatsAccess().refusal(Request()) is None


def test_cors_only_for_the_origins_named() -> None:
    """
    With ``--stats-cors-origin``, a page of that origin can read the API (preflight answered,
    ``Access-Control-Allow-Origin`` on answers); other origins, and a server without the
    option, get no CORS headers.
    """
    dash = "https://dash.example"
    site = server("--stats-cors-origin", dash, "--stats-cors-origin", "http://127.0.0.1:3000").site
    answer = fetch(site, "/stats", headers={"Origin": dash})
    assert answer.status == 200
    assert answer.header("Access-Control-Allow-Origin") == dash
    channel, transport = open_channel(site)
    channel.dataReceived(
        request_bytes(
            "OPTIONS",
            "/stats/metricas",
            headers={"Origin": dash, "Access-Control-Request-Method": "GET"},
        )
    )
    preflight = parse_response(transport.value())
    channel.connectionLost(Failure(ConnectionError("test done")))
    assert preflight.status == 204
    assert preflight.header("Access-Control-Allow-Origin") == dash
    assert "GET" in (preflight.header("Access-Control-Allow-Methods") or "")
    assert "Authorization" in (preflight.header("Access-Control-Allow-Headers") or "")
    other = fetch(site, "/stats", headers={"Origin": "https://evil.example"})
    assert other.header("Access-Control-Allow-Origin") is None
    plain = fetch(server().site, "/stats", headers={"Origin": dash})
    assert plain.header("Access-Control-Allow-Origin") is None
    with pytest.raises(usage.UsageError, match="--stats-cors-origin"):
        server("--stats-cors-origin", "dash.example")


def test_openapi_follows_the_mount_and_the_protection(tmp_path: Any) -> None:
    """
    The OpenAPI document's paths start where the tree is mounted (``--stats-path``), and it
    declares the bearer security (and the 401) only when a token is required.
    """
    plain = json.loads(fetch(server("--stats-path", "numbers").site, "/numbers/openapi.json").body)
    assert plain["paths"] and all(path.startswith("/numbers") for path in plain["paths"])
    # The built-in metricas, each with its own paths.
    assert "/numbers/metricas/requests/timeserie" in plain["paths"]
    assert "security" not in plain and "securitySchemes" not in plain["components"]
    assert "401" not in plain["paths"]["/numbers"]["get"]["responses"]
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    site = server("--stats-token-file", str(token_file)).site
    guarded = json.loads(
        fetch(site, "/stats/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).body
    )
    assert guarded["security"] == [{"bearer": []}]
    assert guarded["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "401" in guarded["paths"]["/stats"]["get"]["responses"]


def call(site: Any, method: str, path: str, **headers: str) -> Response:
    channel, transport = open_channel(site, client=IPv4Address("TCP", "10.1.2.3", 1))
    channel.dataReceived(request_bytes(method, path, headers=headers))
    raw = transport.value()
    channel.connectionLost(Failure(ConnectionError("test done")))
    return parse_response(raw)


def test_a_browser_exchanges_the_token_for_a_cookie(tmp_path: Any) -> None:
    """
    An EventSource cannot send the bearer token: a page's script exchanges it once (POST
    /stats/auth with the header) for an HttpOnly, SameSite=Strict cookie scoped to the stats
    path, which the tree then accepts until it expires (12 hours); DELETE removes it, and the
    cookie alone cannot renew itself.
    """
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    built = server("--stats-token-file", str(token_file))
    site, clock = built.site, built.counters.clock
    assert call(site, "POST", "/stats/auth").status == 401
    exchanged = call(site, "POST", "/stats/auth", Authorization=f"Bearer {TOKEN}")
    assert exchanged.status == 204
    set_cookie = exchanged.header("Set-Cookie") or ""
    name_value, *attributes = [part.strip() for part in set_cookie.split(";")]
    assert {"HttpOnly", "SameSite=Strict", "Path=/stats", "Max-Age=43200"} <= set(attributes)
    cookie = {"Cookie": name_value}
    assert call(site, "GET", "/stats", **cookie).status == 200
    assert call(site, "POST", "/stats/auth", **cookie).status == 401
    forged = name_value[:-4] + ("0000" if not name_value.endswith("0000") else "1111")
    assert call(site, "GET", "/stats", Cookie=forged).status == 401
    clock.advance(12 * 3600 + 1)
    assert call(site, "GET", "/stats", **cookie).status == 401
    removed = call(site, "DELETE", "/stats/auth", Authorization=f"Bearer {TOKEN}")
    assert "Max-Age=0" in (removed.header("Set-Cookie") or "")


def test_no_cookie_without_a_token() -> None:
    """
    Without a token there is nothing to exchange: a 400 that says so.
    """
    response = call(server("--stats-public").site, "POST", "/stats/auth")
    assert response.status == 400
    assert "no token" in json.loads(response.body)["error"]


def test_streams_are_protected_and_not_traffic() -> None:
    """
    The stream endpoints follow the stats tree's rule: a remote client without a token gets a
    403 (JSON) and no cookie, before anything streams.
    """
    site = server().site
    remote = IPv4Address("TCP", "10.1.2.3", 1)
    for path in ("/stats/stream", "/stats/stream/visits", "/stats/stream/requests,visits"):
        response = fetch(site, path, remote)
        assert response.status == 403, path
        assert "loopback" in json.loads(response.body)["error"]
        assert response.header("Set-Cookie") is None
    assert len(site.sessions) == 0
