"""Operator start and stop: kopf settings, the API client and the controller loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from typing import Any, cast

import kopf

from jobline.controller.loop import Controller
from jobline.controller.schedules import ScheduleLoop
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
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.posting.enabled = False  # we post our own Events, one per job transition
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    namespaces = [ns for ns in os.environ.get("JOBLINE_NAMESPACES", "").split(",") if ns]
    kube = Kube(load_config(os.environ.get("JOBLINE_KUBECONFIG") or None))
    controller = Controller(kube, namespaces or None)
    controller.active = not os.environ.get("JOBLINE_PEERING")  # HA: standby until peering says so
    memo.kube = kube
    memo.controller = controller
    memo.controller_task = asyncio.create_task(controller.run(), name="jobline-controller")
    # JobSchedule loop: one task firing every schedule, next to the controller, with an API client of
    # its own (threads, connections) so fire times never queue behind the controller's writes.
    memo.schedules_kube = Kube(load_config(os.environ.get("JOBLINE_KUBECONFIG") or None), workers=32)
    memo.schedules = ScheduleLoop(memo.schedules_kube, namespaces or None)
    memo.schedules.active = not os.environ.get("JOBLINE_PEERING")  # HA: standby until peering says so
    memo.schedules_task = asyncio.create_task(memo.schedules.run(), name="jobline-schedules")
    log.info("controller started (namespaces: %s)", ", ".join(namespaces) or "all")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for attr in ("schedules_task", "controller_task"):  # schedules_task: the JobSchedule loop
        task: asyncio.Task[None] | None = getattr(memo, attr, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    for attr in ("kube", "schedules_kube"):  # schedules_kube: the JobSchedule loop's client
        kube: Kube | None = getattr(memo, attr, None)
        if kube is not None:
            kube.close()
