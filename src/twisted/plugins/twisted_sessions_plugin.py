"""
The ``twistd sessions`` dropin: one ServiceMaker pointing at :mod:`twisted_sessions.tap`.
"""

from twisted.application.service import ServiceMaker

TwistedSessions = ServiceMaker(
    "twisted-sessions",
    "twisted_sessions.tap",
    "A session-tracking web server with counters in Redis.",
    "sessions",
)
