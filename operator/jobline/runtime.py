"""What one operator process holds while it runs: kopf's memo, typed.

``jobline-operator`` builds it from :class:`jobline.settings.Settings` and hands it to kopf
(``kopf.operator(memo=...)``); the startup handlers fill in the API clients, the two loops and the
servers before kopf starts watching, so every handler reads them as plain attributes. kopf gives each
watched object a shallow copy: the objects held here are shared, never replaced after startup.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobline.settings import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from jobline.controller.loop import Controller
    from jobline.controller.schedules import ScheduleLoop
    from jobline.kube import Kube


@dataclass
class Runtime:
    settings: Settings = field(default_factory=Settings)
    kube: Kube | None = None  # the controller's API client
    schedules_kube: Kube | None = None  # the schedule loop's own (fire times never queue behind writes)
    dashboard_kube: Kube | None = None  # TokenReviews, SubjectAccessReviews and the dashboard's actions
    controller: Controller | None = None
    schedules: ScheduleLoop | None = None
    controller_task: asyncio.Task[None] | None = None
    schedules_task: asyncio.Task[None] | None = None
    leadership_task: asyncio.Task[None] | None = None
    server_runners: list[web.AppRunner] = field(default_factory=list)

    def loops(self) -> list[Any]:
        """The loops HA switches between active and standby."""
        return [loop for loop in (self.controller, self.schedules) if loop is not None]

    def tasks(self) -> dict[str, asyncio.Task[None]]:
        """The loops' tasks by name, for /healthz."""
        return {
            name: task
            for name, task in (("controller", self.controller_task), ("schedules", self.schedules_task))
            if task is not None
        }


def of(memo: object) -> Runtime:
    """The runtime kopf passes as ``memo``; a clear error when the operator was not started by
    ``jobline-operator`` (plain ``kopf run`` has no settings)."""
    if not isinstance(memo, Runtime):
        import kopf

        raise kopf.PermanentError(
            "start Jobline with `jobline-operator` (it passes its settings to kopf as memo)"
        )
    return memo
