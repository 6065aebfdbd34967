"""
What every write-behind writer of the server shares (the counter writer, the activity marks):
the flush loop, one sending at a time, the bounded backlog's drop counter, the outage told
once, and the spool files that carry what Redis could not take at shutdown to the next start.

A writer subclasses :class:`WriteBehind` and says what it writes: :meth:`WriteBehind._send`
writes what is pending (and calls :meth:`WriteBehind._redis_away` and returns when Redis
cannot take it now), and the spool's lines are its own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorTime


class WriteBehind:
    """
    The rhythm and the bookkeeping of a writer that writes to Redis behind its callers.

    :param clock: the reactor clock.
    :param flush_interval: seconds between flushes.
    :param max_pending: the bound of the backlog (what a unit is, the subclass says).
    :param spool_path: where unwritten writes go at shutdown: each writer spools to a file of
        its own beside it (``counters.spool`` gives ``counters-<writer id>.spool``), and
        replays every such file at its start, so that two servers sharing a data directory
        never overwrite each other's spool.
    """

    _log = Logger()
    #: What the writer writes, in its log lines ("counter batches", "activity marks").
    noun = "writes"
    #: The warning when the backlog is full (with ``{limit}`` and ``{dropped}``).
    backlog_full = "backlog full ({limit}, Redis unreachable?): dropping; {dropped} dropped so far"

    def __init__(
        self,
        clock: IReactorTime,
        flush_interval: float,
        max_pending: int,
        spool_path: Path | None,
    ) -> None:
        self._clock = clock
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.spool_path = spool_path
        self.writer_id = secrets.token_hex(8)
        self._loop: LoopingCall | None = None
        self._sending: Deferred[None] | None = None
        self._waiters: list[Deferred[None]] = []
        # The spool files replayed, removed once what they held is written.
        self._replayed: list[Path] = []
        # Whether writes are waiting for Redis (told once per outage).
        self._waiting = False
        self.dropped = 0
        self._last_drop_warning = -float("inf")

    # -- the rhythm ------------------------------------------------------------------------

    def start(self) -> None:
        """
        Replay the spools of a previous run, then flush every ``flush_interval`` seconds.
        """
        self._replay_spool()
        loop = LoopingCall(self._tick)
        loop.clock = self._clock
        self._loop = loop
        loop.start(self.flush_interval, now=False).addErrback(
            lambda failure: self._log.failure(f"{self.noun}: flush loop stopped", failure)
        )

    async def _tick(self) -> None:
        await self.send()

    def stop(self) -> None:
        """
        Stop the periodic flushes (call ``flush`` for the last one).
        """
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def send(self) -> Deferred[None]:
        """
        Write what is pending; what Redis cannot take now stays for the next flush. Never two
        sendings at once: a call during one waits for it.
        """
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        if self._sending is None:
            self._sending = Deferred.fromCoroutine(self._send())
            self._sending.addBoth(self._sent)
        return waiter

    async def _send(self) -> None:
        raise NotImplementedError

    def _sent(self, result: object) -> None:
        self._sending = None
        if isinstance(result, Failure):
            self._log.failure(f"writing {self.noun} failed", result)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- outages and drops -----------------------------------------------------------------

    def _redis_away(self, error: Exception) -> None:
        """
        Writes wait for Redis: said once per outage (the link logs the outage itself).
        """
        if not self._waiting:
            self._waiting = True
            self._log.info(
                "{noun} wait for Redis ({error}); they are written when it is back",
                noun=self.noun,
                error=str(error),
            )

    def _redis_back(self, still: int) -> None:
        """
        Writes go through again: said once, when the outage ends.
        """
        if self._waiting:
            self._waiting = False
            self._log.info(
                "{noun} are written again ({count} still waiting)", noun=self.noun, count=still
            )

    def _drop(self, count: int = 1) -> None:
        """
        Count ``count`` writes the full backlog could not keep, and warn at most once a minute.
        """
        self.dropped += count
        now = self._clock.seconds()
        if now - self._last_drop_warning >= 60:
            self._last_drop_warning = now
            self._log.warn(self.backlog_full, limit=self.max_pending, dropped=self.dropped)

    # -- the spool -------------------------------------------------------------------------

    @property
    def own_spool(self) -> Path | None:
        """
        The file this writer spools to at shutdown (``None`` without a ``spool_path``).
        """
        path = self.spool_path
        if path is None:
            return None
        return path.with_name(f"{path.stem}-{self.writer_id}{path.suffix}")

    def _write_spool(self, lines: list[str], count: int) -> bool:
        """
        Spool ``lines`` (``count`` writes) to this writer's own file, atomically; whether it
        could (without a ``spool_path`` the writes stay in memory, and are lost at exit).
        """
        own = self.own_spool
        if own is None:
            self._log.error(
                "{count} {noun} could not be written and there is no spool file: they are lost",
                count=count,
                noun=self.noun,
            )
            return False
        own.parent.mkdir(parents=True, exist_ok=True)
        # Through a temporary file: a crash while writing leaves no half a spool to replay.
        temporary = own.with_suffix(".writing")
        with temporary.open("w", encoding="utf-8") as spool:
            for line in lines:
                spool.write(line + "\n")
            spool.flush()
            os.fsync(spool.fileno())
        temporary.replace(own)
        self._log.warn(
            "Redis unreachable at shutdown: {count} {noun} spooled to {path}, replayed at the "
            "next start",
            count=count,
            noun=self.noun,
            path=str(own),
        )
        return True

    def _spool_files(self) -> list[Path]:
        """
        Every writer's spool in the directory (and a single-file spool of an older version,
        ``counters.spool`` itself), oldest name first.
        """
        path = self.spool_path
        if path is None or not path.parent.is_dir():
            return []
        return sorted(path.parent.glob(f"{path.stem}*{path.suffix}"))

    def _replay_spool(self) -> None:
        """
        Take back what the spools hold; each file stays until its writes are written (a crash
        before then replays it again, which idempotent writes make harmless).
        """
        files = self._spool_files()
        if files:
            self._replay(files)
            self._replayed = files

    def _replay(self, files: list[Path]) -> None:
        raise NotImplementedError

    def _spools_written(self) -> None:
        """
        Everything the replayed spools held is written now: remove them.
        """
        spools, self._replayed = self._replayed, []
        for path in spools:
            path.unlink(missing_ok=True)
