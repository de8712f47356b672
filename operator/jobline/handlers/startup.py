"""Operator start and stop: kopf settings, the API clients and the two loops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, cast

import kopf

from jobline import metrics, runtime
from jobline.controller.loop import Controller
from jobline.controller.schedules import ScheduleLoop
from jobline.handlers import watchjson
from jobline.kube import Kube, load_config

log = logging.getLogger("jobline")


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff base, switched off. kopf deep-copies and diffs every object on every watch event
    to detect field changes for on.create/update/field handlers; Jobline registers none (only on.event
    and indexes), so that work (a quarter of the operator's CPU under load) bought nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: object, **_: Any) -> None:
    rt = runtime.of(memo)
    settings.posting.enabled = False  # we post our own Events, one per job transition
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    watchjson.install()  # before kopf's watchers start (after the startup handlers)
    namespaces = list(rt.settings.namespaces) or None
    rt.kube = Kube(load_config(rt.settings.kubeconfig))
    rt.controller = Controller(rt.kube, namespaces)
    # The schedule loop reads the controller's store of jobs and has an API client of its own
    # (connections), so fire times never queue behind the controller's writes.
    rt.schedules_kube = Kube(load_config(rt.settings.kubeconfig))
    rt.schedules = ScheduleLoop(rt.schedules_kube, namespaces, jobs=rt.controller)
    if rt.settings.standby_first:  # HA: standby until kopf's peering says this replica leads
        for loop in rt.loops():
            loop.deactivate()
    metrics.set_leader(not rt.settings.standby_first)
    rt.controller_task = asyncio.create_task(rt.controller.run(), name="jobline-controller")
    rt.schedules_task = asyncio.create_task(rt.schedules.run(), name="jobline-schedules")
    log.info("controller started (namespaces: %s)", ", ".join(rt.settings.namespaces) or "all")


@kopf.on.cleanup()
async def stop(memo: object, **_: Any) -> None:
    rt = runtime.of(memo)
    for task in (rt.schedules_task, rt.controller_task):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for kube in (rt.kube, rt.schedules_kube):
        if kube is not None:
            await kube.close()
