"""QueuedJob watch events -> the controller's store (the schedule loop reads the same store)."""

from __future__ import annotations

from typing import Any

import kopf

from jobline import names, runtime


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL_QUEUEDJOBS)
async def queuedjob_event(event: kopf.RawEvent, memo: object, **_: Any) -> None:
    controller = runtime.of(memo).controller
    if controller is not None:
        obj = dict(event["object"])
        controller.note_watch("queuedjobs", event.get("type"), obj)
        controller.on_job(event.get("type"), obj)
