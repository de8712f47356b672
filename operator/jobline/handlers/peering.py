"""HA: pause the controller loops while kopf peering pauses this replica.

Started only with ``--peering NAME``. Polls the (Cluster)KopfPeering object once a second and
applies kopf's own rule (:mod:`jobline.core.leadership`); on becoming active the loops re-list
everything, because a paused replica's watches were paused too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import kopf

from jobline.core.leadership import is_active
from jobline.core.timefmt import now
from jobline.kube import KubeError

log = logging.getLogger("jobline.peering")


def _loops(memo: Any) -> list[Any]:
    return [x for x in (getattr(memo, "controller", None), getattr(memo, "schedules", None)) if x is not None]


async def _watch_leadership(memo: Any, name: str, namespace: str | None, identity: str, priority: int) -> None:
    path = (f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings/{name}" if namespace
            else f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}")
    active = False
    while True:
        kube = getattr(memo, "kube", None)  # set by startup.configure, which may run after this task starts
        try:
            if kube is None:
                want = False
            else:
                obj = await kube.request("GET", path)
                want = is_active(obj.get("status") or {}, identity, priority, now())
        except KubeError as exc:
            log.warning("cannot read peering object %s: %s", name, exc)
            want = False
        except Exception:  # this task must never die silently: the replica would never lead
            log.exception("leadership check failed; retrying")
            want = False
        if want != active:
            active = want
            log.info("%s (peering %s, identity %s, priority %d)", "active" if active else "standby", name,
                     identity, priority)
            for loop in _loops(memo):
                if hasattr(loop, "activate"):
                    (loop.activate if active else loop.deactivate)()
                else:
                    loop.active = active
        await asyncio.sleep(1)


@kopf.on.startup()
async def start_leadership(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    name = os.environ.get("JOBLINE_PEERING")
    if not name:
        return
    settings.peering.lifetime = int(os.environ.get("JOBLINE_PEERING_LIFETIME", "60"))
    namespaces = [ns for ns in os.environ.get("JOBLINE_NAMESPACES", "").split(",") if ns]
    memo.leadership_task = asyncio.create_task(_watch_leadership(
        memo, name, namespaces[0] if namespaces else None,
        os.environ["JOBLINE_IDENTITY"], int(os.environ["JOBLINE_PRIORITY"])), name="jobline-leadership")


@kopf.on.cleanup()
async def stop_leadership(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "leadership_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
