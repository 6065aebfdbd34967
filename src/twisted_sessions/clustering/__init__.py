"""
Session clustering: a user's events less than ``cutoff`` seconds apart form one session
(mw.lib.sessions semantics).

- :mod:`.cache`: the library, no reactor needed: :class:`Cache` and :func:`cluster`.
- :mod:`.session`: the clustered :class:`Session`, a ``(user, events)`` namedtuple and more.
- :mod:`.clusterer`: :class:`SessionClusterer`, the Cache in the server, on the reactor clock.
- :mod:`.timestamps`: the timestamps it reads (seconds, ISO 8601, MediaWiki's 14 digits).
- :mod:`.sessionize`: the ``python -m twisted_sessions sessionize`` batch command.

It knows the counters only as an ``IClusteredSessionSink`` (``twisted_sessions.interfaces``).
"""

from .cache import CUTOFF, Cache, LateEventError, cluster
from .clusterer import SessionClusterer
from .session import Session
from .timestamps import to_seconds

__all__ = [
    "CUTOFF",
    "Cache",
    "LateEventError",
    "Session",
    "SessionClusterer",
    "cluster",
    "to_seconds",
]
