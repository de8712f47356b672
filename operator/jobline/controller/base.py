"""The skeleton both controller loops share: sync, wake-up, active/standby, background tasks, errors.

:class:`jobline.controller.loop.Controller` (QueuedJobs) and
:class:`jobline.controller.schedules.ScheduleLoop` (JobSchedules) are one task each. Watch events
set ``wakeup``; the loop sleeps until then or until its next timer, lists everything once before
its first step (and again after an HA standby, when the watches were paused), and never dies of
one failed step. A standby replica (``deactivate``) keeps its view but plans and writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from jobline import metrics
from jobline.core.timefmt import now as utcnow
from jobline.kube import Kube, KubeError

from .store import Key

SYNC_RETRY_SECONDS = 2.0  # after a failed (or not yet possible) sync
STEP_RETRY_SECONDS = 1.0  # after a step that raised
RELIST_SETTLE_SECONDS = 2.0  # after the last event of a kopf re-list, before the loop lists again


class Loop(ABC):
    """One controller loop. Subclasses say how to list (``sync``), what a step does (``step``), when
    they want to wake up on their own (``next_timeout``) and how to look at one object again later
    (``retry_later``)."""

    name = "loop"  # in log lines
    min_step_interval = 0.0  # seconds between two steps: under load, events batch into fewer steps

    def __init__(
        self, kube: Kube, namespaces: list[str] | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.kube = kube
        self.namespaces = namespaces  # None: all namespaces
        self.clock = clock
        self.log = logging.getLogger(f"jobline.{self.name}")
        self.wakeup = asyncio.Event()
        self.synced = False
        self.active = True  # False while a peer operator is active (HA standby)
        self._last_step = 0.0
        self._background: set[asyncio.Task[Any]] = set()
        self._live: set[tuple[str, str | None]] = set()  # watch streams that delivered a live event
        self._relisting: set[tuple[str, str | None]] = set()
        self.resync_at: float | None = None  # monotonic time of a re-list after a watch's re-list
        self.relists = 0  # watch re-lists seen (each followed by a sync)

    # ------------------------------------------------------------------ what a loop is
    @abstractmethod
    async def sync(self) -> bool:
        """List what the loop works on; True when its view is complete (False: try again shortly)."""

    @abstractmethod
    async def step(self) -> None:
        """Plan and apply everything that is due or changed."""

    def next_timeout(self) -> float | None:
        """Seconds until the loop must run on its own (None: only when woken)."""
        return None

    @abstractmethod
    def retry_later(self, key: Key, seconds: float) -> None:
        """Look at ``key`` again in ``seconds``."""

    # ------------------------------------------------------------------ HA
    def activate(self) -> None:
        """This replica leads: re-list first (the watches were paused meanwhile), then step."""
        self.active = True
        self.synced = False
        self.wakeup.set()

    def deactivate(self) -> None:
        self.active = False
        self.wakeup.set()

    # ------------------------------------------------------------------ watches
    def note_watch(self, kind: str, event: str | None, obj: dict[str, Any]) -> None:
        """Called by the kopf handlers with every watch event, before the loop's own ``on_*``.

        When a watch's resourceVersion has expired (410 Gone: etcd compacted, apiserver restarted), kopf
        lists the resource again and reports what the list returned as events of type None, and nothing
        about objects deleted in the gap: a job or attempt pod deleted then would stay in the store for
        good. A type-None event on a stream that had delivered live events is such a re-list: the loop
        stops stepping and, once the re-list has settled, lists everything again (``sync`` forgets what
        the list lacks)."""
        ns = (obj.get("metadata") or {}).get("namespace") if self.namespaces else None
        stream = (kind, ns)
        if event is not None:
            self._live.add(stream)
            self._relisting.discard(stream)
            return
        if stream in self._live:
            self._live.discard(stream)
            self._relisting.add(stream)
            self.relists += 1
            metrics.watch_relisted(kind)
            self.log.info(
                "the %s watch%s was re-listed: listing everything again", kind, f" in {ns}" if ns else ""
            )
        if stream in self._relisting:
            self.resync_at = time.monotonic() + RELIST_SETTLE_SECONDS
            self.wakeup.set()

    def _wait_timeout(self) -> float | None:
        timeout = self.next_timeout()
        if self.resync_at is not None:
            left = max(0.0, self.resync_at - time.monotonic())
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    def _resync_due(self) -> bool:
        if self.resync_at is None or time.monotonic() < self.resync_at:
            return False
        self.resync_at = None
        self._relisting.clear()
        return True

    def scopes(self) -> list[str | None]:
        """The namespaces to list, one by one; ``[None]`` for the whole cluster."""
        return list(self.namespaces) if self.namespaces else [None]

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        while True:
            if self.synced:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), self._wait_timeout())
                pause = self._last_step + self.min_step_interval - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
            self.wakeup.clear()
            if self.synced and self.resync_at is not None:
                if not self._resync_due():
                    continue  # no step on a view that may hold what was deleted in the gap
                self.synced = False
            if self.synced and not self.active:
                continue  # standby: the view is kept, nothing is planned
            try:
                if not self.synced:
                    self.synced = await self.sync()
                    if not self.synced:  # e.g. waiting for another loop's list: it wakes us
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.wakeup.wait(), SYNC_RETRY_SECONDS)
                        continue
                if self.active:
                    await self.step()
                self._last_step = time.monotonic()
            except Exception:  # one bad step must not stop the loop
                self.log.exception(
                    "%s failed; again in %.0fs",
                    "step" if self.synced else "sync",
                    STEP_RETRY_SECONDS if self.synced else SYNC_RETRY_SECONDS,
                )
                await asyncio.sleep(STEP_RETRY_SECONDS if self.synced else SYNC_RETRY_SECONDS)

    # ------------------------------------------------------------------ helpers
    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A background task the loop keeps a reference to until it ends."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def emit(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Post an Event in the background (failures are logged by Kube.event)."""
        self.spawn(self.kube.event(obj, type_, reason, message))

    def failed(self, stage: str, key: Key, exc: BaseException, retry: float) -> None:
        """One piece of work failed: counted (``jobline_reconcile_errors_total{stage}``), logged, and the
        object looked at again in ``retry`` seconds. API errors are one line; anything else a traceback."""
        metrics.reconcile_error(stage)
        if isinstance(exc, KubeError):
            self.log.warning("%s %s/%s failed: %s", stage, *key, exc)
        else:
            self.log.error("%s %s/%s failed", stage, *key, exc_info=exc)
        self.retry_later(key, retry)
