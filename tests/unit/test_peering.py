"""The HA leadership loop: it must survive starting before the Kubernetes client exists (startup order)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from jobline.handlers.peering import _watch_leadership
from jobline.runtime import Runtime


class FakeKube:
    async def request(self, method: str, path: str) -> dict[str, Any]:
        seen = datetime.now(UTC).isoformat()
        return {
            "status": {
                "me@1": {"lastseen": seen, "lifetime": 60, "priority": 200},
                "other@1": {"lastseen": seen, "lifetime": 60, "priority": 100},
            }
        }


class Loop:
    def __init__(self) -> None:
        self.active = False

    def activate(self) -> None:
        self.active = True

    def deactivate(self) -> None:
        self.active = False


def test_leadership_waits_for_the_client_instead_of_dying() -> None:
    async def go() -> None:
        controller = Loop()
        memo = Runtime(controller=cast(Any, controller))  # no kube yet: startup.configure has not run
        task = asyncio.create_task(_watch_leadership(memo, "p", "apps", "me@1", 200))
        await asyncio.sleep(0.1)
        assert not task.done() and not controller.active
        memo.kube = cast(Any, FakeKube())
        for _ in range(40):
            if controller.active:
                break
            await asyncio.sleep(0.1)
        assert controller.active and not task.done()
        task.cancel()

    asyncio.run(go())
