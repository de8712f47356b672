"""jobline.metrics: what each controller hook records, the queue-depth collector, the /healthz + /metrics app."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from jobline import metrics, names
from jobline.controller.loop import Controller
from jobline.handlers.servers import health_app, leading_jobs
from jobline.runtime import Runtime


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def obj(
    ns: str,
    name: str = "j",
    *,
    queue: str = "q",
    handler: str = "h",
    created: str = "2026-01-10T12:00:00Z",
    **meta: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": name, "creationTimestamp": created, **meta},
        "spec": {"queue": queue, "handler": handler},
    }


def test_attempt_started_counts_and_measures_dispatch_latency() -> None:
    job = obj("m-start")
    metrics.attempt_started(job, 1, datetime(2026, 1, 10, 12, 0, 3, tzinfo=UTC))
    metrics.attempt_started(job, 2, datetime(2026, 1, 10, 12, 5, 0, tzinfo=UTC))
    assert sample("jobline_jobs_started_total", namespace="m-start", queue="q", handler="h") == 2
    assert sample("jobline_dispatch_latency_seconds_count", namespace="m-start", queue="q") == 1
    assert sample("jobline_dispatch_latency_seconds_sum", namespace="m-start", queue="q") == 3
    delayed = obj("m-start-runat")
    delayed["spec"]["runAt"] = "2026-01-10T13:00:00Z"
    metrics.attempt_started(delayed, 1, datetime(2026, 1, 10, 13, 0, 1, tzinfo=UTC))
    assert sample("jobline_dispatch_latency_seconds_sum", namespace="m-start-runat", queue="q") == 1


def test_job_transition_counts_finished_attempts_and_jobs_once() -> None:
    job = obj("m-trans")
    running = {
        "phase": "Running",
        "attemptHistory": [
            {
                "attempt": 1,
                "startedAt": "2026-01-10T12:00:00Z",
                "finishedAt": "2026-01-10T12:00:02Z",
                "reason": "Error",
            },
            {"attempt": 2, "startedAt": "2026-01-10T12:00:10Z"},
        ],
    }
    done = {
        "phase": "Succeeded",
        "attemptHistory": [
            running["attemptHistory"][0],
            {
                "attempt": 2,
                "startedAt": "2026-01-10T12:00:10Z",
                "finishedAt": "2026-01-10T12:00:15Z",
                "reason": "Completed",
            },
        ],
    }
    metrics.job_transition(job, {}, running)
    metrics.job_transition(job, running, done)
    metrics.job_transition(job, done, done)  # a later write of the same state counts nothing
    labels = {"namespace": "m-trans", "queue": "q", "handler": "h"}
    assert sample("jobline_attempt_duration_seconds_count", **labels, outcome="failed") == 1
    assert sample("jobline_attempt_duration_seconds_sum", **labels, outcome="failed") == 2
    assert sample("jobline_attempt_duration_seconds_sum", **labels, outcome="succeeded") == 5
    assert sample("jobline_jobs_finished_total", **labels, outcome="succeeded") == 1


def test_schedule_runs_and_lateness_from_created_jobs() -> None:
    scheduled = obj(
        "m-sched",
        created="2026-01-10T03:00:02Z",
        labels={names.LABEL_SCHEDULE: "nightly"},
        annotations={names.ANNOTATION_SCHEDULED_TIME: "2026-01-10T03:00:00Z"},
    )
    manual = obj(
        "m-sched",
        "m",
        labels={names.LABEL_SCHEDULE: "nightly"},
        annotations={names.ANNOTATION_MANUAL_TRIGGER: "x"},
    )
    metrics.job_seen("ADDED", scheduled)
    metrics.job_seen(None, scheduled)  # the initial listing after a restart is not a new run
    metrics.job_seen("MODIFIED", scheduled)
    metrics.job_seen("ADDED", manual)
    metrics.job_seen("ADDED", obj("m-sched", "plain"))
    assert (
        sample("jobline_schedule_runs_total", namespace="m-sched", schedule="nightly", trigger="scheduled")
        == 1
    )
    assert (
        sample("jobline_schedule_runs_total", namespace="m-sched", schedule="nightly", trigger="manual") == 1
    )
    assert sample("jobline_schedule_lateness_seconds_sum", namespace="m-sched", schedule="nightly") == 2


def test_hooks_never_raise() -> None:
    metrics.job_transition({"metadata": None}, {"attemptHistory": 5}, {"attemptHistory": [None]})  # type: ignore[dict-item]
    metrics.attempt_started({}, 1, None)  # type: ignore[arg-type]
    before = sample("jobline_reconcile_errors_total", stage="start")
    metrics.reconcile_error("start")
    assert sample("jobline_reconcile_errors_total", stage="start") == before + 1


def test_queue_depth_is_counted_at_scrape_time() -> None:
    jobs = [
        obj("m-depth", "a"),
        {**obj("m-depth", "b"), "status": {"phase": "Failed"}},
        {**obj("m-depth", "c"), "status": {"phase": "Failed"}},
    ]
    metrics.watch_jobs(lambda: jobs)
    assert sample("jobline_queue_depth", namespace="m-depth", queue="q", phase="Pending") == 1
    assert sample("jobline_queue_depth", namespace="m-depth", queue="q", phase="Failed") == 2
    assert sample("jobline_queue_depth", namespace="m-depth", queue="q", phase="Running") == 0
    jobs.pop()
    assert sample("jobline_queue_depth", namespace="m-depth", queue="q", phase="Failed") == 1
    metrics.watch_jobs(lambda: None)
    assert sample("jobline_queue_depth", namespace="m-depth", queue="q", phase="Pending") == 0


def test_healthz_and_metrics_endpoints() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_future()  # a "running" controller task
        memo = Runtime(controller=cast(Any, SimpleNamespace(synced=True)), controller_task=cast(Any, task))
        async with TestClient(TestServer(health_app(memo, with_metrics=True))) as client:
            resp = await client.get("/healthz")
            assert resp.status == 200 and (await resp.json())["synced"] is True
            resp = await client.get("/metrics")
            families = {f.name for f in text_string_to_metric_families(await resp.text())}
            assert {
                "jobline_jobs_started",
                "jobline_jobs_finished",
                "jobline_attempt_duration_seconds",
                "jobline_queue_depth",
                "jobline_dispatch_latency_seconds",
                "jobline_schedule_runs",
                "jobline_schedule_lateness_seconds",
                "jobline_reconcile_errors",
            } <= families
            task.set_result(None)  # the controller loop ended: the liveness probe fails
            resp = await client.get("/healthz")
            assert resp.status == 503 and (await resp.json())["controller"] == "stopped"
        async with TestClient(TestServer(health_app(memo, with_metrics=False))) as client:
            assert (await client.get("/metrics")).status == 404

    asyncio.run(go())


def test_readyz_waits_for_the_controllers_sync() -> None:
    async def go() -> None:
        task = asyncio.get_running_loop().create_future()
        controller = SimpleNamespace(synced=False)
        memo = Runtime(controller=cast(Any, controller), controller_task=cast(Any, task))
        async with TestClient(TestServer(health_app(memo, with_metrics=False))) as client:
            resp = await client.get("/readyz")
            assert resp.status == 503 and (await resp.json())["status"] == "not ready"
            assert (await client.get("/healthz")).status == 200  # alive, just not ready
            controller.synced = True
            assert (await client.get("/readyz")).status == 200
            task.set_result(None)
            assert (await client.get("/readyz")).status == 503
        task.cancel()

    asyncio.run(go())


def test_readyz_waits_for_the_schedule_loop_too() -> None:
    async def go() -> None:
        task = asyncio.get_running_loop().create_future()
        schedules = SimpleNamespace(synced=False)
        memo = Runtime(
            controller=cast(Any, SimpleNamespace(synced=True)),
            schedules=cast(Any, schedules),
            controller_task=cast(Any, task),
        )
        async with TestClient(TestServer(health_app(memo, with_metrics=False))) as client:
            resp = await client.get("/readyz")
            assert resp.status == 503 and (await resp.json())["schedules_synced"] is False
            schedules.synced = True
            assert (await client.get("/readyz")).status == 200
        task.cancel()

    asyncio.run(go())


def test_a_standby_exports_no_queue_depth_and_says_it_does_not_lead() -> None:
    controller = Controller(kube=None)  # type: ignore[arg-type]
    controller.store.put_job(obj("m-standby", "a"))
    rt = Runtime(controller=controller)
    metrics.watch_jobs(lambda: leading_jobs(rt))
    metrics.set_leader(True)
    assert sample("jobline_queue_depth", namespace="m-standby", queue="q", phase="Pending") == 1
    assert sample("jobline_leader") == 1
    controller.deactivate()
    metrics.set_leader(False)
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert [s.value for s in families["jobline_leader"].samples] == [0.0]
    assert not [s for s in families["jobline_queue_depth"].samples if s.labels["namespace"] == "m-standby"]
    controller.activate()
    metrics.set_leader(True)
    assert sample("jobline_queue_depth", namespace="m-standby", queue="q", phase="Pending") == 1
    metrics.watch_jobs(lambda: None)
