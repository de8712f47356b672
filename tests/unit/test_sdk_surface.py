"""The SDK beyond enqueue/get/wait: every spec field, list with filters, retry, and JobSchedules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from jobline import client, names, schedule_client
from jobline.core.cron import parse_schedule
from jobline.schedule_client import CronPatterns


class Api:
    """Records CustomObjectsApi calls."""

    def __init__(self, job: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.job = job

    def create_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("create", args, {}))
        return copy.deepcopy(args[-1])

    def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list", args, kwargs))
        return {"items": [self.job] if self.job else []}

    def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("get", args, {}))
        assert self.job is not None
        return self.job

    def patch_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("patch", args, {}))
        return {}


def job(phase: str | None) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": "QueuedJob",
        "metadata": {"name": "j", "namespace": "shop"},
        "spec": {"handler": "h"},
        **({"status": {"phase": phase}} if phase else {}),
    }


def test_enqueue_takes_every_spec_field() -> None:
    api = Api()
    client.enqueue(
        "export",
        {"customer": 7},
        namespace="shop",
        name="e1",
        api=api,
        concurrency_key="customer-7",
        dependency_timeout_seconds=60,
        ttl_seconds_after_finished=3600,
        suspend=True,
        annotations={"team": "billing"},
        priority=5,
        timeout_seconds=30,
        depends_on=["extract"],
        unique_key="u",
    )
    body = api.calls[0][1][-1]
    assert body["metadata"]["annotations"] == {"team": "billing"}
    assert {
        k: body["spec"][k]
        for k in (
            "concurrencyKey",
            "dependencyTimeoutSeconds",
            "ttlSecondsAfterFinished",
            "suspend",
            "priority",
            "timeoutSeconds",
            "dependsOn",
            "uniqueKey",
        )
    } == {
        "concurrencyKey": "customer-7",
        "dependencyTimeoutSeconds": 60,
        "ttlSecondsAfterFinished": 3600,
        "suspend": True,
        "priority": 5,
        "timeoutSeconds": 30,
        "dependsOn": ["extract"],
        "uniqueKey": "u",
    }


def test_list_jobs_filters_on_the_server() -> None:
    api = Api(job("Failed"))
    got = client.list_jobs(
        namespace="shop", queue="mail", handler="send", phase="Failed", label_selector="a=b", api=api
    )
    assert [j.metadata["name"] for j in got] == ["j"]
    _, args, kwargs = api.calls[0]
    assert args[2] == "shop" and kwargs == {
        "field_selector": "spec.queue=mail,spec.handler=send,status.phase=Failed",
        "label_selector": "a=b",
    }
    client.list_jobs(namespace="shop", api=api)
    assert api.calls[-1][2] == {}


def test_retry_requeues_a_finished_job_and_refuses_an_unfinished_one() -> None:
    api = Api(job("Failed"))
    client.retry("j", namespace="shop", api=api)
    verb, args, _ = api.calls[-1]
    assert verb == "patch" and names.ANNOTATION_REQUEUE in args[-1]["metadata"]["annotations"]
    with pytest.raises(ValueError, match="only a finished job can be retried"):
        client.retry("j", namespace="shop", api=Api(job("Running")))


def test_create_schedule_validates_and_creates() -> None:
    api = Api()
    assert (
        schedule_client.create_schedule(
            "daily-cleanup",
            CronPatterns.DAILY_3AM,
            "cleanup",
            {"days": 30},
            namespace="ops",
            api=api,
            time_zone="Europe/Berlin",
            missedRunPolicy="Skip",
        )
        == "daily-cleanup"
    )
    body = api.calls[0][1][-1]
    assert body["kind"] == "JobSchedule" and body["spec"]["schedule"] == "0 3 * * *"
    assert body["spec"]["timeZone"] == "Europe/Berlin" and body["spec"]["missedRunPolicy"] == "Skip"
    assert body["spec"]["jobTemplate"]["spec"] == {
        "handler": "cleanup",
        "payload": {"days": 30},
        "queue": "default",
        "suspend": False,
        "cancel": False,
    }
    with pytest.raises(ValueError, match="never fires"):
        schedule_client.create_schedule("x", "0 0 30 2 *", "h", namespace="ops", api=api)
    with pytest.raises(ValueError, match="unknown time zone"):
        schedule_client.create_schedule("x", "@daily", "h", namespace="ops", api=api, time_zone="Mars/Base")


def test_trigger_suspend_resume_patch_the_schedule() -> None:
    api = Api()
    value = schedule_client.trigger_schedule("s", namespace="ops", api=api)
    schedule_client.suspend_schedule("s", namespace="ops", api=api)
    schedule_client.resume_schedule("s", namespace="ops", api=api)
    patches = [c[1][-1] for c in api.calls]
    assert patches[0] == {"metadata": {"annotations": {names.ANNOTATION_TRIGGER: value}}}
    assert patches[1] == {"spec": {"suspend": True}} and patches[2] == {"spec": {"suspend": False}}
    assert all(c[1][3] == "jobschedules" for c in api.calls)


@pytest.mark.parametrize("pattern", [v for k, v in vars(CronPatterns).items() if k.isupper()])
def test_every_named_pattern_is_a_valid_schedule(pattern: str) -> None:
    parse_schedule(pattern)
