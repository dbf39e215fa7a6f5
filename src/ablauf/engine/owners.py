"""Processes on one store: who is alive is decided by leases, never by pids.

A process that hosts workers holds an owner row with a lease it renews every
second. Once a lease has passed (the process died, froze, or lost its file),
any other live process declares the owner gone: the workflow tasks it leased
are freed at once, and its running activity attempts time out from durable
timers at their own start-to-close and heartbeat deadlines, then retry.

Declaring a live owner gone by mistake (a stall longer than the lease) is
safe: its late workflow task completions are refused (their lease is gone),
and its attempts' deadlines are the ones it kept itself. It notices at its
next renewal and comes back under the same id.

Leases count wall-clock seconds (``time.time``), which every process on the
host shares; the engine's clock may be a test's, which jumps.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from ablauf.engine.context import EngineContext
from ablauf.store.base import WORKFLOW_TASK, OwnerRecord

__all__ = ["OWNER_LEASE", "RENEW_INTERVAL", "Owners"]

logger = logging.getLogger(__name__)

OWNER_LEASE = 5.0
"""Seconds an owner stays alive without renewing its lease."""
RENEW_INTERVAL = 1.0
"""How often a process renews its lease and looks for owners that are gone."""


class Owners:
    """This process's owner lease on one store, and what it knows of the others."""

    def __init__(self, engine: EngineContext) -> None:
        self.engine = engine
        self.owner_id = uuid.uuid4().hex
        self.wall: Callable[[], float] = time.time
        self._started_at = self.wall()
        # The lease as this process last wrote it; 0: no row.
        self.lease_until = 0.0
        self.workers_elsewhere = False
        """Whether, at the last :meth:`step`, another live process hosted workers."""

    def _record(self, until: float) -> OwnerRecord:
        return OwnerRecord(
            self.owner_id,
            os.getpid(),
            self._started_at,
            self.engine.matching.all_task_queues(),
            until,
            socket.gethostname(),
        )

    def publish(self) -> None:
        """Writes the task queues this process's workers poll (a worker started
        or stopped); without any, the process holds no lease and leaves no row."""
        engine = self.engine
        store = engine.store
        if engine.matching.all_task_queues():
            until = self.wall() + OWNER_LEASE
            with store.transaction():
                store.register_owner(self._record(until))
            self.lease_until = until
        elif self.lease_until:
            self.leave()

    def leave(self) -> None:
        """Gives up the lease: frees this process's workflow tasks and arms the
        timeouts of attempts still running here in the store, where they fire
        for whoever runs next."""
        engine = self.engine
        store = engine.store
        with store.transaction():
            store.release_leases([self.owner_id], WORKFLOW_TASK)
            engine.arm_lost([self.owner_id])
            store.remove_owner(self.owner_id)
        self.lease_until = 0.0
        engine.forget_runs()

    def live(self) -> list[OwnerRecord]:
        """The owners whose lease has not passed, this process included."""
        now = self.wall()
        return [o for o in self.engine.store.owners() if o.lease_until >= now]

    def step(self) -> None:
        """Renews this process's lease, checks the store is still its file, and
        declares owners gone whose lease has passed.

        Raises:
            StoreLostError: The store's file was removed or replaced.
        """
        engine = self.engine
        store = engine.store
        store.verify()
        if self.lease_until:
            self._renew()
        now = self.wall()
        owners = store.owners()
        self.workers_elsewhere = any(
            o.owner_id != self.owner_id and o.lease_until >= now and o.task_queues for o in owners
        )
        if not self.lease_until and self.workers_elsewhere:
            # A process without workers leaves that to the ones with workers.
            return
        gone = [o.owner_id for o in owners if o.owner_id != self.owner_id and o.lease_until < now]
        if gone:
            self._expire(gone, now)

    def _renew(self) -> None:
        store = self.engine.store
        with store.transaction():
            # Read once the write lock is held: waiting for it may take seconds,
            # in which the lease can pass and another process expire it.
            now = self.wall()
            until = now + OWNER_LEASE
            renewed = store.renew_owner(self.owner_id, self.lease_until, until)
            if not renewed:
                if now < self.lease_until:
                    # Nobody may take a lease that has not passed: the file holds
                    # rows this process never wrote (restored from a backup).
                    raise store.mark_lost("was replaced (its rows changed under this process)")
                store.register_owner(self._record(until))
        # Only once committed: a renewal that failed (a full disk) left the old lease.
        if renewed:
            self.lease_until = until
            return
        logger.warning(
            "ablauf: this process did not renew its lease on %s for %.1f s (stopped or "
            "starved) and was taken for gone: its workflow tasks went to other processes, "
            "and its running activities are timed out and retried as if it had died",
            store.path,
            now - self.lease_until + OWNER_LEASE,
        )
        self.lease_until = until
        self.engine.forget_runs()

    def _expire(self, gone: list[str], now: float) -> None:
        engine = self.engine
        store = engine.store
        with store.transaction():
            # Only those still gone and not taken by another process meanwhile.
            expired = [owner_id for owner_id in gone if store.expire_owner(owner_id, now)]
            if not expired:
                return
            freed = store.release_leases(expired, WORKFLOW_TASK)
            engine.arm_lost(expired)
        engine.forget_runs()
        logger.info(
            "ablauf: %d process(es) on %s stopped renewing their lease; freed %d "
            "workflow task(s) they held",
            len(expired),
            store.path,
            freed,
        )
