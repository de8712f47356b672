"""`/metrics` and `/healthz` of the real operator, scraped after real jobs and schedule runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.e2e.test_dashboard import operator_with
from tests.kube import create_schedule, wait_for

GROUP, VERSION = "jobline.dev", "v1alpha1"
FAMILIES = {
    "jobline_jobs_started",
    "jobline_jobs_finished",
    "jobline_attempt_duration_seconds",
    "jobline_queue_depth",
    "jobline_dispatch_latency_seconds",
    "jobline_schedule_runs",
    "jobline_schedule_lateness_seconds",
    "jobline_reconcile_errors",
}


@pytest.fixture(scope="module")
def health_url(
    operator: OperatorProcess, cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from tests.cluster.procs import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("metrics-operator") / "operator.log"
    with operator_with(operator, cluster, log, "--health-port", str(port)):
        wait_for(lambda: "serving /healthz and /metrics" in log.read_text(), 30, "the health server")
        yield f"http://127.0.0.1:{port}"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_and_metric_families(health_url: str) -> None:
    resp = requests.get(f"{health_url}/healthz", timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "ok" and resp.json()["synced"] is True
    resp = requests.get(f"{health_url}/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert {f.name for f in text_string_to_metric_families(resp.text)} >= FAMILIES


def test_metrics_count_jobs_attempts_and_schedule_runs(
    health_url: str, cluster: ClusterHandle, namespace: str
) -> None:
    jobs = Jobs(cluster, namespace)
    jobs.queue(defaults={"retry": {"limit": 1, "backoff": {"initialSeconds": 1, "jitter": 0}}})
    jobs.create("ok-1", "echo", {})
    jobs.create("ok-2", "echo", {})
    jobs.create("bad", "fail", None)
    create_schedule(
        jobs.api,
        namespace,
        "tick",
        {
            "schedule": "@every 2s",
            "successfulJobsHistoryLimit": 100,
            "jobTemplate": {"spec": {"handler": "sleep", "payload": {"seconds": 0.1}}},
        },
    )

    def schedule_jobs() -> list[dict[str, Any]]:
        return list(
            jobs.api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "queuedjobs", label_selector="jobline.dev/schedule=tick"
            )["items"]
        )

    wait_for(lambda: len(schedule_jobs()) >= 2, 60, "two scheduled runs")
    jobs.api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "jobschedules",
        "tick",
        {"spec": {"suspend": True}, "metadata": {"annotations": {"jobline.dev/trigger": "by-hand"}}},
    )
    wait_for(
        lambda: any(
            j["metadata"]["annotations"].get("jobline.dev/manual-trigger") == "by-hand"
            for j in schedule_jobs()
        ),
        60,
        "the manual run",
    )
    jobs.wait_phase("ok-1", "Succeeded")
    jobs.wait_phase("ok-2", "Succeeded")
    assert jobs.wait_phase("bad", "Failed")["attempts"] == 2
    for j in schedule_jobs():
        jobs.wait_phase(j["metadata"]["name"], "Succeeded")

    def expected() -> dict[str, float]:
        runs = schedule_jobs()
        scheduled = sum(1 for j in runs if "jobline.dev/scheduled-time" in j["metadata"]["annotations"])
        return {"scheduled": scheduled, "runs": len(runs)}

    ns = {"namespace": namespace}
    q = {**ns, "queue": "default"}

    def settled() -> tuple[dict[str, float], Any] | None:
        want = expected()
        got = scrape(health_url)
        checks = [
            value(got, "jobline_jobs_started_total", **q, handler="echo") == 2,
            value(got, "jobline_jobs_started_total", **q, handler="fail") == 2,
            value(got, "jobline_jobs_started_total", **q, handler="sleep") == want["runs"],
            value(got, "jobline_jobs_finished_total", **q, handler="echo", outcome="succeeded") == 2,
            value(got, "jobline_jobs_finished_total", **q, handler="fail", outcome="failed") == 1,
            value(got, "jobline_jobs_finished_total", **q, handler="sleep", outcome="succeeded")
            == want["runs"],
            value(got, "jobline_attempt_duration_seconds_count", **q, handler="fail", outcome="failed") == 2,
            value(got, "jobline_attempt_duration_seconds_count", **q, handler="echo", outcome="succeeded")
            == 2,
            value(got, "jobline_queue_depth", **q, phase="Succeeded") == 2 + want["runs"],
            value(got, "jobline_queue_depth", **q, phase="Failed") == 1,
            value(got, "jobline_queue_depth", **q, phase="Pending") == 0,
            value(got, "jobline_dispatch_latency_seconds_count", **q) == 3 + want["runs"],
            value(got, "jobline_schedule_runs_total", **ns, schedule="tick", trigger="scheduled")
            == want["scheduled"],
            value(got, "jobline_schedule_runs_total", **ns, schedule="tick", trigger="manual") == 1,
            value(got, "jobline_schedule_lateness_seconds_count", **ns, schedule="tick") == want["scheduled"],
        ]
        return (want, got) if all(checks) else None

    want, got = wait_for(settled, 30, "the metrics to match the jobs and runs")
    assert want["scheduled"] >= 2
    assert ("jobline_reconcile_errors_total", (("stage", "reconcile"),)) in got
