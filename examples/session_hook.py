"""
A clustered-session hook: print every finished visit.

    twistd -n sessions --cutoff 1800 --session-hook examples.session_hook.print_visit

A visit is a user's requests less than ``--cutoff`` seconds apart; it is printed once the user
has been away for that long (or when the server stops).
"""

from __future__ import annotations

from twisted_sessions.clustering import Session


def print_visit(session: Session) -> None:
    paths = [event.path for event in session.events]
    print(
        f"visit #{session.user_index} of {session.user}: {session.event_count} request(s) "
        f"over {session.duration:.0f} s, entering at {paths[0]}"
    )
