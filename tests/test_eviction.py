"""
Candidates for early eviction: oldest first, stale entries dropped, memory bounded.
"""

from __future__ import annotations

from twisted_sessions.eviction import Candidates


def test_oldest_live_candidate_first() -> None:
    """
    The oldest item that still is a candidate comes first; those that stopped are skipped.
    """
    stopped: set[int] = set()
    candidates = Candidates[int](lambda item: item not in stopped)
    for item in range(5):
        candidates.add(item, live=5)
    assert candidates.oldest() == 0
    stopped.update({0, 1, 3})
    assert candidates.oldest() == 2
    stopped.add(2)
    assert candidates.oldest() == 4
    stopped.add(4)
    assert candidates.oldest() is None
    assert len(candidates) == 0


def test_stale_entries_behind_a_live_one_are_bounded() -> None:
    """
    Items that stop being candidates behind one that stays (ended out of order) do not pile
    up: the entries stay within twice the live items plus the slack.
    """
    stopped: set[int] = set()
    candidates = Candidates[int](lambda item: item not in stopped)
    candidates.add(-1, live=1)  # Stays a candidate throughout.
    for item in range(100_000):
        candidates.add(item, live=2)
        stopped.add(item)
        assert len(candidates) <= 2 * 2 + 1024 + 1
    assert candidates.oldest() == -1
