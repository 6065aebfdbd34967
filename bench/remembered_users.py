"""
Cost of a new user's first event before and past ``remember_users``, with the server's bounds.

    .venv/bin/python -m bench.remembered_users [--remember 1000000] [--past 600000]

The clusterer remembers how many sessions each user had (``Session.user_index``) for at most
``remember_users`` users (a million in the server), forgetting the least recently seen. Every
event here is a new user (a visitor id never seen: what a busy site or a crawler makes for
ever), so past the bound each one forgets another. The baseline is the same ``Cache`` in the
same run before the bound is reached; ``past / before`` should stay near 1, and the slowest
event (when a generation of remembered users is dropped) short. (With a plain dict
as the bounded map it was 17 over 200,000 users past the bound and 28 over 300,000:
``next(iter(dict))`` skips every slot deleted at its front since its last resize, so each new
user cost more, tens of microseconds and growing, until the next resize.)
"""

from __future__ import annotations

import argparse
import time

from twisted_sessions.clustering import Cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--remember", type=int, default=1_000_000)
    parser.add_argument("--past", type=int, default=600_000)
    args = parser.parse_args()
    cache = Cache(cutoff=1800, remember_users=args.remember, max_open=100_000, max_events=100)
    started = time.perf_counter()
    for number in range(args.remember):
        cache.process(f"{number:032x}", number / 1000, None)
    reached = time.perf_counter()
    slowest = 0.0
    for number in range(args.remember, args.remember + args.past):
        before_call = time.perf_counter()
        cache.process(f"{number:032x}", number / 1000, None)
        slowest = max(slowest, time.perf_counter() - before_call)
    done = time.perf_counter()
    before = (reached - started) / args.remember * 1e6
    # (The timing calls themselves add about 0.1 us to "past".)
    past = (done - reached) / args.past * 1e6
    print(f"us per new user: before the bound {before:.2f}, past it {past:.2f}")
    print(f"past / before: {past / before:.2f}")
    print(f"slowest single event past the bound: {slowest * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
