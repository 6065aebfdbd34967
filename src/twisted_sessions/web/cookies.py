"""
The two cookies of a tracked Site: the web session cookie and the long-lived visitor cookie.

Both are HttpOnly and SameSite=Lax, and Secure when the request came over TLS. A visitor id is
only taken when it has exactly the shape the server issues, and a session value only matches a
live session's id, so an empty, oversized, malformed or forged cookie costs nothing and simply
gets a fresh id.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from twisted.web.server import Request

#: Visitor ids are 16 random bytes, hex encoded: 32 of these digits.
_VISITOR_DIGITS = b"0123456789abcdef"
_VISITOR_LENGTH = 32
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}")

#: Two years, the usual lifetime of an analytics visitor cookie.
DEFAULT_VISITOR_MAX_AGE = 2 * 365 * 24 * 3600


def _check_cookie_name(option: str, name: str) -> bytes:
    if not _COOKIE_NAME.fullmatch(name):
        raise ValueError(
            f"{option} must be a cookie name made of letters, digits and !#$%&'*+-.^_`|~ "
            f"(at most 128), not {name!r}"
        )
    return name.encode("ascii")


@attrs.frozen
class CookiePolicy:
    """
    How a tracked Site names and sets its cookies.

    :ivar session_cookie: name of the web session cookie.
    :ivar visitor_cookie: name of the persistent visitor cookie, or ``None`` to turn it off
        (then the web session itself is the user).
    :ivar visitor_max_age: lifetime of the visitor cookie in seconds.
    """

    session_cookie: str = "TWISTED_SESSION"
    visitor_cookie: str | None = "TWISTED_VISITOR"
    visitor_max_age: int = DEFAULT_VISITOR_MAX_AGE
    _session_name: bytes = attrs.field(init=False)
    _visitor_name: bytes | None = attrs.field(init=False)
    _session_prefix: bytes = attrs.field(init=False)
    _visitor_prefix: bytes | None = attrs.field(init=False)
    _plain_suffix: bytes = attrs.field(init=False)
    _visitor_suffix: bytes = attrs.field(init=False)
    _visitor_suffix_secure: bytes = attrs.field(init=False)
    #: Whether the visitor cookie is on (an attribute: read on every request).
    tracks_visitors: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        session_name = _check_cookie_name("session_cookie", self.session_cookie)
        visitor_name = (
            None
            if self.visitor_cookie is None
            else _check_cookie_name("visitor_cookie", self.visitor_cookie)
        )
        if visitor_name == session_name:
            raise ValueError(
                f"visitor_cookie and session_cookie must differ, both are {self.session_cookie!r}"
            )
        if self.visitor_max_age <= 0:
            raise ValueError(f"visitor_max_age must be positive, not {self.visitor_max_age!r}")
        visitor_suffix = b"; Max-Age=%d; Path=/" % self.visitor_max_age
        for name, value in (
            ("_session_name", session_name),
            ("_visitor_name", visitor_name),
            ("_session_prefix", session_name + b"="),
            ("_visitor_prefix", None if visitor_name is None else visitor_name + b"="),
            ("_plain_suffix", b"; Path=/; HttpOnly; SameSite=Lax"),
            ("_visitor_suffix", visitor_suffix + b"; HttpOnly; SameSite=Lax"),
            ("_visitor_suffix_secure", visitor_suffix + b"; Secure; HttpOnly; SameSite=Lax"),
            ("tracks_visitors", visitor_name is not None),
        ):
            object.__setattr__(self, name, value)

    def read_ids(self, request: Request) -> tuple[bytes | None, str | None]:
        """
        The session cookie's value as sent, and the visitor id if it has the shape of one the
        server issues. The session value needs no check of its own: it is only ever looked up
        among the live sessions' ids, which nothing else can match.
        """
        received = request.received_cookies
        session_id: bytes | None = received.get(self._session_name)
        visitor_name = self._visitor_name
        if visitor_name is None:
            return session_id, None
        visitor_id = received.get(visitor_name)
        # Exactly 32 lowercase hex digits: stripping those leaves nothing (a third of the
        # cost of the equivalent regular expression, on every request).
        if (
            visitor_id is None
            or len(visitor_id) != _VISITOR_LENGTH
            or visitor_id.strip(_VISITOR_DIGITS)
        ):
            return session_id, None
        return session_id, visitor_id.decode("ascii")

    def set_session_cookie(self, request: Request, uid: bytes, secure: bool) -> None:
        """
        Hand the session id to the client: a browser-session cookie for the whole site.
        """
        # Formatted here rather than by Request.addCookie, which costs about 13 us a cookie
        # re-validating what is already known to be safe: the name was checked when the policy
        # was made, and the value is hex the server issued.
        suffix = b"; Path=/; Secure; HttpOnly; SameSite=Lax" if secure else self._plain_suffix
        request.cookies.append(self._session_prefix + uid + suffix)

    def set_visitor_cookie(self, request: Request, visitor_id: str, secure: bool) -> None:
        """
        Hand a new visitor id to the client, for ``visitor_max_age`` seconds.
        """
        assert self._visitor_prefix is not None, "the visitor cookie is off"
        suffix = self._visitor_suffix_secure if secure else self._visitor_suffix
        request.cookies.append(self._visitor_prefix + visitor_id.encode("ascii") + suffix)
