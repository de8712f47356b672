"""JobSchedule watch events -> the schedule loop (``jobline.controller.schedules``)."""

from __future__ import annotations

from typing import Any

import kopf

from jobline import names


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL_JOBSCHEDULES)
async def jobschedule_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    memo.schedules.on_schedule(event.get("type"), dict(event["object"]))
