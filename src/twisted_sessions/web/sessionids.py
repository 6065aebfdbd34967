"""
Session ids that tell, by themselves, that this server issued them and when.

A client that never sends its cookie back (a crawler, a health check, an API client) used to
cost a web session per request: an object, a place in the table, an expiry. Now the first
response only hands out an id, and the session starts to exist when that id comes back (or
when the application asks for the session during the request). To recognise an id that comes
back as one issued here, recently, without having kept it, the id carries its issue time and a
keyed hash of both: 32 hex digits of randomness, 8 of the issue time (UNIX seconds), 24 of a
BLAKE2s keyed with a secret of this process (96 bits: guessing one takes 2^95 tries). 64 hex
digits, as the ids were before. A restarted server has a new secret, so the ids of the last run
are new visitors' (their sessions were gone with the process anyway).
"""

from __future__ import annotations

import os
from hashlib import blake2s
from hmac import compare_digest

#: How many hex digits each part has.
_NONCE, _STAMP, _MAC = 32, 8, 24
LENGTH = _NONCE + _STAMP + _MAC
_HEX = b"0123456789abcdef"


class SessionIds:
    """
    Issues signed, timestamped session ids and checks the ones that come back.

    :param secret: the key (32 random bytes of this process by default).
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._hasher = blake2s(key=secret or os.urandom(32), digest_size=_MAC // 2)

    def _mac(self, body: bytes) -> bytes:
        # A copy of the keyed hasher: the key is not hashed again for every id.
        hasher = self._hasher.copy()
        hasher.update(body)
        return hasher.hexdigest().encode("ascii")

    def issue(self, now: float) -> bytes:
        """
        A new id, issued at ``now``.
        """
        body = os.urandom(_NONCE // 2).hex().encode("ascii") + b"%08x" % (int(now) & 0xFFFFFFFF)
        return body + self._mac(body)

    def issued_at(self, uid: bytes) -> float | None:
        """
        When ``uid`` was issued, if this server issued it; else ``None``.
        """
        if len(uid) != LENGTH or uid.strip(_HEX):
            return None
        body, mac = uid[: _NONCE + _STAMP], uid[_NONCE + _STAMP :]
        # In constant time: how much of a forged MAC matched must not show in the timing.
        if not compare_digest(self._mac(body), mac):
            return None
        return float(int(body[_NONCE:], 16))
