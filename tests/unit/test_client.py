"""The client SDK against a fake CustomObjectsApi: request bodies, validation, error mapping, wait."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from jobline import client, names
from jobline.core.models import MAX_PAYLOAD_BYTES, QueuedJob, RetryPolicy


class FakeApi:
    """Records calls like CustomObjectsApi; `error` is raised instead when set."""

    def __init__(self, objects: list[dict[str, Any]] | None = None) -> None:
        self.created: list[tuple[str, str, str, str, dict[str, Any]]] = []
        self.reads = 0
        self.objects = objects or []  # what successive reads return (the last one repeats)
        self.error: ApiException | None = None

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        if self.error:
            raise self.error
        self.created.append((group, version, namespace, plural, copy.deepcopy(body)))
        out = copy.deepcopy(body)
        meta = out["metadata"]
        meta.setdefault("name", meta.get("generateName", "") + "x7k2p")
        return out

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> dict[str, Any]:
        assert (group, version, plural) == (names.GROUP, names.VERSION, "queuedjobs")
        if self.error:
            raise self.error
        obj = self.objects[min(self.reads, len(self.objects) - 1)]
        self.reads += 1
        return obj


def api_error(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return exc


def job_object(phase: str | None, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": names.API_VERSION,
        "kind": "QueuedJob",
        "metadata": {"name": "send-email-x7k2p", "namespace": "shop"},
        "spec": {"handler": "send-email", "queue": "default", "payload": {"to": "a@example.com"}},
    }
    if phase:
        obj["status"] = {"phase": phase, **status}
    return obj


# --- enqueue ---------------------------------------------------------------------------------


def test_enqueue_minimal_body() -> None:
    api = FakeApi()
    name = client.enqueue("send-email", {"to": "a@example.com"}, namespace="shop", api=api)
    assert name == "send-email-x7k2p"
    ((group, version, namespace, plural, body),) = api.created
    assert (group, version, namespace, plural) == (names.GROUP, names.VERSION, "shop", "queuedjobs")
    assert body == {
        "apiVersion": "jobline.dev/v1alpha1",
        "kind": "QueuedJob",
        "metadata": {"generateName": "send-email-", "namespace": "shop"},
        "spec": {
            "queue": "default",
            "handler": "send-email",
            "payload": {"to": "a@example.com"},
            "suspend": False,
            "cancel": False,
        },
    }


def test_enqueue_full_body_is_camel_case() -> None:
    api = FakeApi()
    run_at = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    name = client.enqueue(
        "Send_Report",
        {"rows": 10, "none": None},
        queue="reports",
        priority=5,
        run_at=run_at,
        unique_key="report-42",
        retry={"limit": 5, "backoff": {"initialSeconds": 5}, "nonRetryableExitCodes": [2]},
        namespace="shop",
        name="report-42",
        labels={"team": "billing"},
        timeout_seconds=60,
        depends_on=["export-42"],
        template={"image": "example/app:1", "env": [{"name": "A", "value": "b"}]},
        api=api,
    )
    assert name == "report-42"
    body = api.created[0][4]
    assert body["metadata"] == {"name": "report-42", "namespace": "shop", "labels": {"team": "billing"}}
    assert body["spec"] == {
        "queue": "reports",
        "handler": "Send_Report",
        "payload": {"rows": 10, "none": None},
        "priority": 5,
        "runAt": "2025-03-01T08:00:00Z",
        "retry": {"limit": 5, "backoff": {"initialSeconds": 5}, "nonRetryableExitCodes": [2]},
        "timeoutSeconds": 60,
        "suspend": False,
        "cancel": False,
        "uniqueKey": "report-42",
        "dependsOn": ["export-42"],
        "template": {"image": "example/app:1", "env": [{"name": "A", "value": "b"}]},
    }


@pytest.mark.parametrize(
    ("run_at", "expected"),
    [
        ("2025-01-02T03:04:05Z", "2025-01-02T03:04:05Z"),
        ("2025-01-02T05:04:05+02:00", "2025-01-02T03:04:05Z"),
        (datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "2025-01-02T03:04:05Z"),
    ],
)
def test_run_at_is_rfc3339_utc(run_at: Any, expected: str) -> None:
    api = FakeApi()
    client.enqueue("h", run_at=run_at, namespace="ns", api=api)
    assert api.created[0][4]["spec"]["runAt"] == expected


def test_retry_policy_object_and_generate_name_sanitised() -> None:
    api = FakeApi()
    client.enqueue("Send_Welcome.Email", retry=RetryPolicy(limit=0), namespace="ns", api=api)
    body = api.created[0][4]
    assert body["metadata"]["generateName"] == "send-welcome.email-"
    assert body["spec"]["retry"] == {"limit": 0}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"run_at": datetime(2025, 1, 1)}, "time zone"),
        ({"run_at": "tomorrow"}, "RFC 3339"),
        ({"priority": "high"}, "invalid QueuedJob"),
        ({"queue": "Not_A_Label"}, "invalid QueuedJob"),
        ({"retry": {"limit": -1}}, "invalid QueuedJob"),
        ({"retry": {"unknown": 1}}, "invalid QueuedJob"),
        ({"depends_on": ["Bad Name"]}, "invalid QueuedJob"),
        ({"payload": {1, 2}}, "not JSON-serializable"),
    ],
)
def test_invalid_jobs_are_refused_before_the_api(kwargs: dict[str, Any], message: str) -> None:
    api = FakeApi()
    kwargs.setdefault("payload", None)
    with pytest.raises(ValueError, match=message):
        client.enqueue("h", namespace="ns", api=api, **kwargs)
    assert api.created == []


def test_invalid_handler_name_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid QueuedJob"):
        client.enqueue("has space", namespace="ns", api=FakeApi())


def test_oversize_payload_is_refused_before_any_api_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_api() -> Any:
        raise AssertionError("no API may be built")

    monkeypatch.setattr(client, "custom_objects_api", no_api)
    monkeypatch.setattr(client, "current_namespace", no_api)
    payload = {"blob": "x" * MAX_PAYLOAD_BYTES}
    with pytest.raises(
        ValueError, match=rf"payload is {MAX_PAYLOAD_BYTES + 11} bytes .* {MAX_PAYLOAD_BYTES}"
    ):
        client.enqueue("h", payload)  # not even the kubeconfig is read for the namespace
    exact = {"b": "x" * (MAX_PAYLOAD_BYTES - 8)}  # {"b":"..."} is exactly the limit
    api = FakeApi()
    client.enqueue("h", exact, namespace="ns", api=api)
    assert len(api.created) == 1


@pytest.mark.parametrize(
    ("status", "error", "match"),
    [
        (
            403,
            PermissionError,
            "not allowed to create QueuedJobs in namespace 'shop': queuedjobs is forbidden",
        ),
        (401, PermissionError, "not allowed"),
        (422, ValueError, "refused the QueuedJob: spec.handler: Invalid value"),
        (400, ValueError, "admission webhook denied"),
        (404, client.JoblineError, "is the Jobline CRD installed"),
        (409, client.JobAlreadyExists, "shop/report-1 already exists"),
    ],
)
def test_enqueue_maps_api_errors(status: int, error: type[Exception], match: str) -> None:
    api = FakeApi()
    messages = {
        403: "queuedjobs is forbidden",
        422: "spec.handler: Invalid value",
        400: "admission webhook denied the request",
    }
    api.error = api_error(status, messages.get(status, "x"))
    with pytest.raises(error, match=match):
        client.enqueue("h", namespace="shop", name="report-1", api=api)


def test_other_api_errors_pass_through() -> None:
    api = FakeApi()
    api.error = api_error(500, "etcd is down")
    with pytest.raises(ApiException):
        client.enqueue("h", namespace="shop", api=api)


# --- namespace -------------------------------------------------------------------------------


def test_default_namespace_from_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: c, user: u, namespace: team-a}
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
"""
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert client.current_namespace() == "team-a"
    api = FakeApi()
    client.enqueue("h", api=api)
    assert api.created[0][2] == "team-a"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert client.current_namespace() == "default"


# --- get and wait ----------------------------------------------------------------------------


def test_get_returns_typed_job() -> None:
    api = FakeApi([job_object("Succeeded", result={"messageId": "<m>"}, attempts=1, progress=100)])
    job = client.get("send-email-x7k2p", namespace="shop", api=api)
    assert isinstance(job, QueuedJob)
    assert job.spec.handler == "send-email"
    assert job.status is not None
    assert (job.status.phase, job.status.result, job.status.progress) == (
        "Succeeded",
        {"messageId": "<m>"},
        100,
    )


def test_get_maps_not_found_and_forbidden() -> None:
    api = FakeApi()
    api.error = api_error(404, 'queuedjobs.jobline.dev "nope" not found')
    with pytest.raises(client.JobNotFound, match="QueuedJob shop/nope not found") as info:
        client.get("nope", namespace="shop", api=api)
    assert isinstance(info.value, LookupError) and info.value.name == "nope"
    api.error = api_error(403, "forbidden")
    with pytest.raises(PermissionError, match="not allowed to read"):
        client.get("nope", namespace="shop", api=api)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    t = FakeTime()
    monkeypatch.setattr(client, "_monotonic", t.monotonic)
    monkeypatch.setattr(client, "_sleep", t.sleep)
    return t


def test_wait_polls_until_finished(fake_time: FakeTime) -> None:
    api = FakeApi([job_object(None), job_object("Pending"), job_object("Running"), job_object("Failed")])
    job = client.wait("send-email-x7k2p", timeout=30, namespace="shop", api=api)
    assert job.status is not None and job.status.phase == "Failed"
    assert api.reads == 4 and fake_time.sleeps == [1.0, 1.0, 1.0]


def test_wait_times_out(fake_time: FakeTime) -> None:
    api = FakeApi([job_object("Running")])
    with pytest.raises(TimeoutError, match=r"still Running after 2\.5s"):
        client.wait("send-email-x7k2p", timeout=2.5, namespace="shop", api=api)
    assert fake_time.sleeps == [1.0, 1.0, 0.5]
