"""
Candidates for early eviction, oldest first: the web sessions whose cookie never came back,
the visits that still have a single request.

At a cap (``max_sessions``, ``max_open``), these are ended first: a client that never keeps
an identity (a crawler, a health check, a script without a cookie jar) makes one per request,
and ending its leftovers costs nobody anything, where ending the least recently active user's
session or visit would cut it short.

Items stop being candidates as they go (a session comes back, a visit takes a second request,
either ends), without telling: a deque in arrival order with lazy deletion. Stale entries are
dropped when they reach the front, so every operation is O(1) amortized and nothing pauses;
an ``OrderedDict`` with a removal on every change was measured to stall the server for tens of
milliseconds when its table of a hundred thousand entries was rebuilt (docs/benchmarks.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

#: Stale entries tolerated beyond the live items before the queue is rebuilt.
_SLACK = 1024


class Candidates(Generic[T]):
    """
    Items in the order they were added; :meth:`oldest` is the first that is still a candidate.

    :param still_candidate: whether an item added earlier still is a candidate; once false for
        an item, it must stay false.
    """

    def __init__(self, still_candidate: Callable[[T], bool]) -> None:
        self._queue: deque[T] = deque()
        self._still = still_candidate

    def __len__(self) -> int:
        """
        How many entries are kept, stale ones included.
        """
        return len(self._queue)

    def add(self, item: T, live: int) -> None:
        """
        Add the newest candidate. ``live``: how many items (candidates or not) are alive; the
        entries are kept within twice that, plus some slack.
        """
        queue = self._queue
        queue.append(item)
        if len(queue) > live:
            # Some entries are stale: drop those at the front.
            self.oldest()
            if len(queue) > 2 * live + _SLACK:
                # Stale entries behind a live one (items ended out of order): rare, and
                # amortized over at least ``live + _SLACK`` additions.
                self._queue = deque(filter(self._still, queue))

    def oldest(self) -> T | None:
        """
        The oldest item that still is a candidate, or ``None``.
        """
        queue, still = self._queue, self._still
        while queue:
            item = queue[0]
            if still(item):
                return item
            queue.popleft()
        return None

    def forget_oldest(self) -> None:
        """
        Drop the front entry: the item :meth:`oldest` returned, which the caller just ended.
        """
        self._queue.popleft()

    def clear(self) -> None:
        """
        Forget every entry.
        """
        self._queue.clear()
