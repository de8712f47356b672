"""The asyncio SDK (jobline.aio) end to end: a real Client on its own kubernetes.aio connection, made from
the test cluster's kubeconfig, against the running operator and real worker pods."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

import jobline.aio
from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess

T = TypeVar("T")
JOBS = 20
TICK = 0.05  # the ticker's sleep: a loop left free ticks about 1/TICK times a second


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Await ``check`` until it returns something truthy (asyncio's tests.kube.wait_for)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = await check()
        if got:
            return got
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.3)


async def scenario(kubeconfig: str, namespace: str) -> None:
    loop = asyncio.get_running_loop()
    batch = uuid.uuid4().hex[:8]
    async with jobline.aio.Client(namespace=namespace, kubeconfig=kubeconfig) as jobs:
        # 20 enqueues at once, on the client's one connection.
        enqueued = await asyncio.gather(
            *(jobs.enqueue("echo", {"i": i}, labels={"batch": batch}, priority=i % 3) for i in range(JOBS))
        )
        assert len(set(enqueued)) == JOBS and all(n.startswith("echo-") for n in enqueued), enqueued

        # Wait for all of them at once, while a ticker proves the loop is not blocked by the waiting.
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(TICK)

        ticking = asyncio.create_task(ticker())
        began = loop.time()
        finished = await asyncio.gather(*(jobs.wait(n, timeout=120, poll_interval=0.5) for n in enqueued))
        waited = loop.time() - began
        ticking.cancel()
        print(
            f"\njobline.aio: {JOBS} jobs Succeeded {waited:.1f}s after their concurrent enqueue; {ticks} ticks"
        )
        for i, (name, job) in enumerate(zip(enqueued, finished, strict=True)):
            assert job.metadata["name"] == name and job.status is not None, job
            assert job.status.phase == "Succeeded", (name, job.status)
            assert job.status.result == {"i": i}, (name, job.status.result)
        # A blocked loop would tick only between polls; a free one about 1/TICK times a second.
        assert ticks >= max(10, waited / TICK / 5), (ticks, waited)

        # get and list_jobs, their filters on the server.
        first = await jobs.get(enqueued[0])
        assert (first.spec.handler, first.spec.payload, first.spec.priority) == ("echo", {"i": 0}, 0)
        listed = await jobs.list_jobs(label_selector=f"batch={batch}", handler="echo", queue="default")
        assert sorted(j.metadata["name"] for j in listed) == sorted(enqueued)
        assert await jobs.list_jobs(handler="no-such-handler") == []

        async def all_labelled_succeeded() -> list[Any] | None:
            got = await jobs.list_jobs(phase="Succeeded", label_selector=f"batch={batch}")
            return got if len(got) == JOBS else None

        await eventually(all_labelled_succeeded, 30, "the phase label on every job")

        # A pending (suspended) job cancelled: Cancelled at once; a second cancel is refused.
        held = await jobs.enqueue("echo", {"held": True}, suspend=True)

        async def suspended() -> bool:
            job = await jobs.get(held)
            return bool(job.status and job.status.phase in ("Pending", "Suspended"))

        await eventually(suspended, 30, f"job {held} to be held")
        await jobs.cancel(held)
        cancelled = await jobs.wait(held, timeout=30, poll_interval=0.3)
        assert cancelled.status is not None and cancelled.status.phase == "Cancelled", cancelled.status
        assert not cancelled.status.attempts, cancelled.status
        with pytest.raises(ValueError, match="already Cancelled"):
            await jobs.cancel(held)

        # Errors: a duplicate name, a missing job.
        await jobs.enqueue("echo", {"n": 1}, name=f"dup-{batch}", suspend=True)
        with pytest.raises(jobline.aio.JobAlreadyExists, match=f"dup-{batch} already exists"):
            await jobs.enqueue("echo", {"n": 2}, name=f"dup-{batch}")
        with pytest.raises(jobline.aio.JobNotFound, match=f"QueuedJob {namespace}/ghost not found"):
            await jobs.get("ghost")

    # One call, one connection: the module-level coroutines.
    again = await jobline.aio.get(enqueued[-1], namespace=namespace, kubeconfig=kubeconfig)
    assert again.status is not None and again.status.result == {"i": JOBS - 1}


def test_aio_client_enqueue_wait_list_cancel_and_errors(
    cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess
) -> None:
    Jobs(cluster, namespace).queue(concurrency=10)
    asyncio.run(scenario(str(cluster.kubeconfig), namespace))
