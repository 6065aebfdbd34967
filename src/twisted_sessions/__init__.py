"""
twisted-sessions: a session-aware Twisted web server and analytics library.

The public API of the web layer::

    from twisted_sessions import Site, Session

    class ShortSession(Session):
        sessionTimeout = 60

    site = Site(root)
    site.sessionFactory = ShortSession

Every name here is also importable from the subpackage it lives in, which is where the README
and the docs import it from: ``twisted_sessions.web``, ``.clustering``, ``.counters``,
``.storage`` and ``.stats`` (docs/architecture.md says what each holds). The clustered session
class is ``twisted_sessions.clustering.Session``; ``Session`` here is the web session.
"""

from .activity import Activity, Period
from .clustering import Cache, SessionClusterer, cluster
from .counters import (
    AveragedMetrica,
    Axis,
    CounterStore,
    Counting,
    HierarchicalAxis,
    Metrica,
    StoredChoiceAxis,
)
from .events import EndReason, RequestEvent, SessionSummary
from .interfaces import (
    ClusteredSession,
    IAccountObserver,
    IClusteredSessionSink,
    IFlushable,
    IRequestObserver,
    ISessionObserver,
)
from .stats import Mounted, StatsResource
from .storage import RedisAddress, RedisLink, parse_redis_url
from .web import CookiePolicy, Request, Session, Site

__all__ = [
    "Activity",
    "AveragedMetrica",
    "Axis",
    "Cache",
    "ClusteredSession",
    "CookiePolicy",
    "CounterStore",
    "Counting",
    "EndReason",
    "HierarchicalAxis",
    "IAccountObserver",
    "IClusteredSessionSink",
    "IFlushable",
    "IRequestObserver",
    "ISessionObserver",
    "Metrica",
    "Mounted",
    "Period",
    "RedisAddress",
    "RedisLink",
    "Request",
    "RequestEvent",
    "Session",
    "SessionClusterer",
    "SessionSummary",
    "Site",
    "StatsResource",
    "StoredChoiceAxis",
    "cluster",
    "parse_redis_url",
]
