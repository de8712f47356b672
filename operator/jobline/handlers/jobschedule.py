"""JobSchedule watch events -> the schedule loop (``jobline.controller.schedules``)."""

from __future__ import annotations

from typing import Any

import kopf

from jobline import names, runtime


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL_JOBSCHEDULES)
async def jobschedule_event(event: kopf.RawEvent, memo: object, **_: Any) -> None:
    schedules = runtime.of(memo).schedules
    if schedules is not None:
        obj = dict(event["object"])
        schedules.note_watch("jobschedules", event.get("type"), obj)
        schedules.on_schedule(event.get("type"), obj)
