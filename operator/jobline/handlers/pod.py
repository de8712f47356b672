"""Attempt pods (labelled with their job) and pool worker pods (with their queue) -> the controller's store."""

from __future__ import annotations

from typing import Any

import kopf

from jobline import names, runtime


@kopf.on.event("v1", "pods", labels={names.LABEL_JOB: kopf.PRESENT})
async def pod_event(event: kopf.RawEvent, memo: object, **_: Any) -> None:
    controller = runtime.of(memo).controller
    if controller is not None:
        obj = dict(event["object"])
        controller.note_watch("pods", event.get("type"), obj)
        controller.on_pod(event.get("type"), obj)


@kopf.on.event("v1", "pods", labels={names.LABEL_POOL: kopf.PRESENT})
async def pool_pod_event(event: kopf.RawEvent, memo: object, **_: Any) -> None:
    controller = runtime.of(memo).controller
    if controller is not None:
        obj = dict(event["object"])
        controller.note_watch("pods", event.get("type"), obj)
        controller.on_pool_pod(event.get("type"), obj)
