"""
Timestamps as the clusterer accepts them, turned into UNIX seconds (UTC).

Accepted: ``int``/``float`` seconds, ``datetime`` (aware, or naive meaning UTC), ISO 8601
strings (``2015-01-01T00:00:00Z``; without an offset, UTC) and MediaWiki's 14-digit timestamps
(``"20150101000000"``, UTC), also as a 14-digit ``int`` as mwsessions accepts them (as seconds
such a number would be a date some 600,000 years ahead). Anything else is a ``TypeError`` or
``ValueError`` quoting the value.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

_MEDIAWIKI = re.compile(r"\d{14}")


def to_seconds(value: Any) -> float:
    """
    UNIX seconds (UTC) of ``value``.

    :raises TypeError: ``value`` is of a type that is not a timestamp (``bool`` included).
    :raises ValueError: ``value`` is a string that is not a timestamp, or not finite.
    """
    kind = type(value)
    if kind is int and 10**13 <= value < 10**14:
        return _string_to_seconds(str(value))
    if kind is int or kind is float:
        if not math.isfinite(value):
            raise ValueError(f"timestamp {value!r} is not a finite number of seconds")
        return float(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        seconds: float = value.timestamp()
        return seconds
    if isinstance(value, str):
        return _string_to_seconds(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return to_seconds(float(value))
    raise TypeError(
        f"timestamp {value!r} is a {kind.__name__}: expected seconds (int or float), a datetime, "
        "an ISO 8601 string or a 14-digit MediaWiki timestamp"
    )


def _string_to_seconds(text: str) -> float:
    stripped = text.strip()
    try:
        if _MEDIAWIKI.fullmatch(stripped):
            parsed = datetime.strptime(stripped, "%Y%m%d%H%M%S")
        elif stripped.isdigit():
            raise ValueError("digits only, but not 14 of them")
        else:
            parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"timestamp {text!r} is neither ISO 8601 (2015-01-01T00:00:00Z) nor a 14-digit "
            "MediaWiki timestamp (20150101000000)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
