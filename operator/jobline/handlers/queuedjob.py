"""QueuedJob watch events -> the controller's store."""

from __future__ import annotations

from typing import Any

import kopf

from jobline import names


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL_QUEUEDJOBS)
async def queuedjob_event(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
    obj = dict(event["object"])
    memo.controller.on_job(event.get("type"), obj)
    # JobSchedule loop: it follows the jobs its schedules created (active, finished) without listing.
    schedules = getattr(memo, "schedules", None)
    if schedules is not None:
        schedules.on_job(event.get("type"), obj)
