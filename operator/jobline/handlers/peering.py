"""HA: pause the controller loops while kopf peering pauses this replica.

Started only with ``--peering NAME``. Polls the (Cluster)KopfPeering object once a second and
applies kopf's own rule (:mod:`jobline.core.leadership`); on becoming active the loops re-list
everything, because a paused replica's watches were paused too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from jobline import metrics, runtime
from jobline.core.leadership import is_active
from jobline.core.timefmt import now
from jobline.kube import KubeError
from jobline.runtime import Runtime

log = logging.getLogger("jobline.peering")


async def _watch_leadership(
    rt: Runtime, name: str, namespace: str | None, identity: str, priority: int
) -> None:
    path = (
        f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings/{name}"
        if namespace
        else f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}"
    )
    active = False
    while True:
        try:
            if rt.kube is None:  # set by startup.configure, which may run after this task starts
                want = False
            else:
                obj = await rt.kube.request("GET", path)
                want = is_active(obj.get("status") or {}, identity, priority, now())
        except KubeError as exc:
            log.warning("cannot read peering object %s: %s", name, exc)
            want = False
        except Exception:  # this task must never die silently: the replica would never lead
            log.exception("leadership check failed; retrying")
            want = False
        if want != active:
            active = want
            log.info(
                "%s (peering %s, identity %s, priority %d)",
                "active" if active else "standby",
                name,
                identity,
                priority,
            )
            for loop in rt.loops():
                (loop.activate if active else loop.deactivate)()
            metrics.set_leader(active)
        await asyncio.sleep(1)


@kopf.on.startup()
async def start_leadership(settings: kopf.OperatorSettings, memo: object, **_: Any) -> None:
    rt = runtime.of(memo)
    own = rt.settings
    if own.peering is None:
        return
    settings.peering.lifetime = own.peering_lifetime
    rt.leadership_task = asyncio.create_task(
        _watch_leadership(
            rt, own.peering, own.namespaces[0] if own.namespaces else None, own.identity, own.priority
        ),
        name="jobline-leadership",
    )


@kopf.on.cleanup()
async def stop_leadership(memo: object, **_: Any) -> None:
    task = runtime.of(memo).leadership_task
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
