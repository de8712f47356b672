"""JobQueue watch events -> the controller's store."""

from __future__ import annotations

from typing import Any

import kopf

from jobline import names, runtime


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL_JOBQUEUES)
async def jobqueue_event(event: kopf.RawEvent, memo: object, **_: Any) -> None:
    controller = runtime.of(memo).controller
    if controller is not None:
        obj = dict(event["object"])
        controller.note_watch("jobqueues", event.get("type"), obj)
        controller.on_queue(event.get("type"), obj)
