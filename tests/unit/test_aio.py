"""The asyncio SDK (jobline.aio) against a fake async CustomObjects: the same bodies, selectors, patches,
refusals and errors as the synchronous SDK; wait on a fake clock; one connection per client, closed once.

No pytest-asyncio: each test drives its coroutines with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import kubernetes.aio.client as aio_client
import pytest
from kubernetes.aio.client.exceptions import ApiException
from kubernetes.client.exceptions import ApiException as SyncApiException

import jobline.aio as aio
from jobline import client, names, schedule_client
from jobline.core import actions
from jobline.core.models import FINISHED_PHASES, MAX_PAYLOAD_BYTES, QueuedJob, RetryPolicy
from jobline.schedule_client import CronPatterns

Call = tuple[str, tuple[Any, ...], dict[str, Any]]
MERGE_PATCH = "application/merge-patch+json"


class FakeCustomObjects:
    """An async CustomObjects: records every call; ``errors[verb]`` is raised instead of answering.

    Reads return ``objects`` in turn (the last one repeats); a list returns them all."""

    def __init__(self, *objects: dict[str, Any], errors: dict[str, Exception] | None = None) -> None:
        self.calls: list[Call] = []
        self.objects = list(objects)
        self.reads = 0
        self.errors = dict(errors or {})
        self.closed = 0

    def _record(self, verb: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> None:
        self.calls.append((verb, copy.deepcopy(args), kwargs or {}))
        if verb in self.errors:
            raise self.errors[verb]

    async def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: dict[str, Any]
    ) -> Any:
        self._record("create", (group, version, namespace, plural, body))
        await asyncio.sleep(0)  # a real request yields to the loop
        out = copy.deepcopy(body)
        out["metadata"].setdefault("name", out["metadata"].get("generateName", "") + "x7k2p")
        return out

    async def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any:
        self._record("get", (group, version, namespace, plural, name))
        await asyncio.sleep(0)
        obj = self.objects[min(self.reads, len(self.objects) - 1)]
        self.reads += 1
        return copy.deepcopy(obj)

    async def list_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> Any:
        given = {"field_selector": field_selector, "label_selector": label_selector}
        self._record("list", (group, version, namespace, plural), {k: v for k, v in given.items() if v})
        return {"items": copy.deepcopy(self.objects)}

    async def patch_namespaced_custom_object(
        self,
        group: str,
        version: str,
        namespace: str,
        plural: str,
        name: str,
        body: dict[str, Any],
        *,
        _content_type: str | None = None,
    ) -> Any:
        self._record(
            "patch", (group, version, namespace, plural, name, body), {"_content_type": _content_type}
        )
        return {}

    async def close(self) -> None:  # a passed api is the caller's: the client never calls this
        self.closed += 1


_protocol_check: aio.CustomObjects = FakeCustomObjects()  # the fake is a CustomObjects (for mypy)


class SyncApi:
    """The synchronous CustomObjectsApi, recorded the same way: what the sync SDK sends, to compare."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.calls: list[Call] = []
        self.objects = list(objects)

    def create_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("create", copy.deepcopy(args), {}))
        out = copy.deepcopy(args[-1])
        out["metadata"].setdefault("name", out["metadata"].get("generateName", "") + "x7k2p")
        return out

    def get_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("get", args, {}))
        return copy.deepcopy(self.objects[-1])

    def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list", args, kwargs))
        return {"items": copy.deepcopy(self.objects)}

    def patch_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("patch", copy.deepcopy(args), {}))
        return {}


def api_error(status: int, message: str = "x") -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return exc


def job_object(phase: str | None, name: str = "j", **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": names.API_VERSION,
        "kind": "QueuedJob",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"handler": "send-email", "queue": "default", "payload": {"to": "a@example.com"}, **spec},
    }
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def on(
    api: FakeCustomObjects, call: Callable[[aio.Client], Awaitable[Any]], namespace: str | None = "shop"
) -> Any:
    """Run ``call`` on a Client over ``api`` in a fresh event loop."""

    async def main() -> Any:
        async with aio.Client(namespace, api=api) as jobs:
            return await call(jobs)

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def no_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads a kubeconfig or opens a connection unless it says so."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the kubeconfig was read")

    monkeypatch.setattr(aio, "current_namespace", refuse)
    monkeypatch.setattr(aio, "configuration", refuse)


# --- enqueue: the sync SDK's body ---------------------------------------------------------------

ENQUEUES: list[tuple[str, Any, dict[str, Any]]] = [
    ("send-email", {"to": "a@example.com"}, {}),
    ("Send_Welcome.Email", None, {"retry": RetryPolicy(limit=0)}),
    (
        "Send_Report",
        {"rows": 10, "none": None},
        {
            "queue": "reports",
            "priority": 5,
            "run_at": datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1))),
            "unique_key": "report-42",
            "retry": {"limit": 5, "backoff": {"initialSeconds": 5}, "nonRetryableExitCodes": [2]},
            "name": "report-42",
            "labels": {"team": "billing"},
            "timeout_seconds": 60,
            "depends_on": ["export-42"],
            "template": {"image": "example/app:1", "env": [{"name": "A", "value": "b"}]},
        },
    ),
    (
        "export",
        {"customer": 7},
        {
            "name": "e1",
            "concurrency_key": "customer-7",
            "dependency_timeout_seconds": 60,
            "ttl_seconds_after_finished": 3600,
            "suspend": True,
            "annotations": {"team": "billing"},
            "run_at": "2025-01-02T05:04:05+02:00",
        },
    ),
]


@pytest.mark.parametrize(("handler", "payload", "options"), ENQUEUES)
def test_enqueue_sends_the_sync_sdks_body(handler: str, payload: Any, options: dict[str, Any]) -> None:
    api, sync = FakeCustomObjects(), SyncApi()
    name = on(api, lambda jobs: jobs.enqueue(handler, payload, **options))
    assert name == client.enqueue(handler, payload, namespace="shop", api=sync, **options)
    assert api.calls == sync.calls
    ((verb, (group, version, namespace, plural, body), _),) = api.calls
    assert (verb, group, version, namespace, plural) == (
        "create",
        names.GROUP,
        names.VERSION,
        "shop",
        "queuedjobs",
    )
    assert body == client.build(handler, payload, namespace="shop", **options).to_manifest()


def test_enqueue_minimal_body_and_generated_name() -> None:
    api = FakeCustomObjects()
    assert on(api, lambda jobs: jobs.enqueue("send-email", {"to": "a@example.com"})) == "send-email-x7k2p"
    assert api.calls[0][1][-1] == {  # as tests/unit/test_client.py pins it for the sync SDK
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


def test_namespace_defaults_to_the_kubeconfigs_and_each_call_can_name_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aio, "current_namespace", lambda path, context: f"team-a:{path}:{context}")
    api = FakeCustomObjects(job_object("Running"))

    async def main() -> None:
        jobs = aio.Client(kubeconfig="/k", context="dev", api=api)
        assert jobs.namespace == "team-a:/k:dev"
        await jobs.enqueue("h")
        await jobs.enqueue("h", namespace="other")
        await jobs.get("j")
        await jobs.list_jobs(namespace="other")
        await jobs.cancel("j", namespace="other")
        await jobs.trigger_schedule("s")

    asyncio.run(main())
    assert [(verb, args[2]) for verb, args, _ in api.calls] == [
        ("create", "team-a:/k:dev"),
        ("create", "other"),
        ("get", "team-a:/k:dev"),
        ("list", "other"),
        ("get", "other"),
        ("patch", "other"),
        ("patch", "team-a:/k:dev"),
    ]
    assert api.calls[0][1][-1]["metadata"]["namespace"] == "team-a:/k:dev"


# --- invalid input: refused before any call (and before the kubeconfig) ---------------------------


@pytest.mark.parametrize(
    ("handler", "kwargs", "message"),
    [
        ("h", {"run_at": datetime(2025, 1, 1)}, "time zone"),
        ("h", {"run_at": "tomorrow"}, "RFC 3339"),
        ("h", {"priority": "high"}, "invalid QueuedJob"),
        ("h", {"queue": "Not_A_Label"}, "invalid QueuedJob"),
        ("h", {"retry": {"limit": -1}}, "invalid QueuedJob"),
        ("h", {"retry": {"unknown": 1}}, "invalid QueuedJob"),
        ("h", {"depends_on": ["Bad Name"]}, "invalid QueuedJob"),
        ("h", {"name": "self", "depends_on": ["self"]}, "cannot depend on itself"),
        ("has space", {}, "invalid QueuedJob"),
        ("h", {"payload": {1, 2}}, "not JSON-serializable"),
        ("h", {"payload": {"blob": "x" * MAX_PAYLOAD_BYTES}}, f"more than the {MAX_PAYLOAD_BYTES}"),
    ],
)
@pytest.mark.parametrize("namespace", ["shop", None])
def test_invalid_jobs_are_refused_before_any_call(
    handler: str, kwargs: dict[str, Any], message: str, namespace: str | None
) -> None:
    """With no namespace given, not even the kubeconfig is read for the default one (the fixture)."""
    api = FakeCustomObjects()
    with pytest.raises(ValueError, match=message):
        on(api, lambda jobs: jobs.enqueue(handler, **kwargs), namespace=namespace)
    assert api.calls == []
    with pytest.raises(ValueError, match=message):  # the sync SDK refuses the same input
        client.enqueue(handler, namespace="shop", api=SyncApi(), **kwargs)


def test_the_payload_limit_is_exact() -> None:
    api = FakeCustomObjects()
    on(api, lambda jobs: jobs.enqueue("h", {"b": "x" * (MAX_PAYLOAD_BYTES - 8)}))  # exactly the limit
    assert len(api.calls) == 1


# --- error mapping ------------------------------------------------------------------------------


def enqueue_named(jobs: aio.Client) -> Awaitable[Any]:
    return jobs.enqueue("h", name="report-1")


@pytest.mark.parametrize(
    ("call", "verb", "status", "error", "match"),
    [
        (
            enqueue_named,
            "create",
            409,
            client.JobAlreadyExists,
            "QueuedJob shop/report-1 already exists: boom",
        ),
        (enqueue_named, "create", 404, client.JoblineError, "cannot create QueuedJobs .* CRD installed"),
        (
            enqueue_named,
            "create",
            403,
            PermissionError,
            "not allowed to create QueuedJobs in namespace 'shop'",
        ),
        (enqueue_named, "create", 401, PermissionError, "not allowed to create"),
        (enqueue_named, "create", 422, ValueError, "the apiserver refused the QueuedJob: boom"),
        (enqueue_named, "create", 400, ValueError, "refused the QueuedJob"),
        (lambda jobs: jobs.get("nope"), "get", 404, client.JobNotFound, "^QueuedJob shop/nope not found$"),
        (lambda jobs: jobs.get("nope"), "get", 403, PermissionError, "not allowed to read"),
        (lambda jobs: jobs.wait("nope", 5), "get", 404, client.JobNotFound, "QueuedJob shop/nope not found"),
        (lambda jobs: jobs.list_jobs(), "list", 404, client.JoblineError, "cannot list QueuedJobs .* CRD"),
        (lambda jobs: jobs.list_jobs(), "list", 403, PermissionError, "not allowed to list"),
        (lambda jobs: jobs.cancel("j"), "get", 404, client.JobNotFound, "QueuedJob shop/j not found"),
        (lambda jobs: jobs.retry("j"), "patch", 404, client.JobNotFound, "QueuedJob shop/j not found"),
        (lambda jobs: jobs.retry("j"), "patch", 403, PermissionError, "not allowed to retry QueuedJobs"),
        (
            lambda jobs: jobs.create_schedule("nightly", "@daily", "h"),
            "create",
            409,
            client.JobAlreadyExists,
            "JobSchedule shop/nightly already exists",
        ),
        (
            lambda jobs: jobs.create_schedule("nightly", "@daily", "h"),
            "create",
            404,
            client.JoblineError,
            "cannot create JobSchedules .* CRD installed",
        ),
        (
            lambda jobs: jobs.trigger_schedule("s"),
            "patch",
            404,
            client.JobNotFound,
            "^JobSchedule shop/s not found$",
        ),
        (
            lambda jobs: jobs.suspend_schedule("s"),
            "patch",
            403,
            PermissionError,
            "not allowed to suspend JobSchedules",
        ),
        (lambda jobs: jobs.resume_schedule("s"), "patch", 422, ValueError, "refused the JobSchedule"),
    ],
)
def test_api_errors_are_mapped_as_the_sync_sdk_maps_them(
    call: Callable[[aio.Client], Awaitable[Any]], verb: str, status: int, error: type[Exception], match: str
) -> None:
    api = FakeCustomObjects(job_object("Failed"), errors={verb: api_error(status, "boom")})
    with pytest.raises(error, match=match) as info:
        on(api, call)
    assert isinstance(info.value.__cause__, ApiException)


def test_a_404_on_create_is_not_job_not_found() -> None:
    """A missing namespace or CRD: the named job is not what is missing (see Client._call)."""
    for call in (enqueue_named, lambda jobs: jobs.create_schedule("nightly", "@daily", "h")):
        with pytest.raises(client.JoblineError) as info:
            on(FakeCustomObjects(errors={"create": api_error(404)}), call)
        assert not isinstance(info.value, client.JobNotFound | LookupError)


def test_job_not_found_names_the_job_and_is_a_lookup_error() -> None:
    with pytest.raises(LookupError) as info:
        on(FakeCustomObjects(errors={"get": api_error(404)}), lambda jobs: jobs.get("nope", namespace="ns"))
    assert isinstance(info.value, aio.JobNotFound) and (info.value.name, info.value.namespace) == (
        "nope",
        "ns",
    )
    assert aio.JobNotFound is client.JobNotFound and aio.JobAlreadyExists is client.JobAlreadyExists
    assert aio.JoblineError is client.JoblineError


@pytest.mark.parametrize(
    "exc", [api_error(500, "etcd is down"), SyncApiException(status=404), ConnectionError("reset")]
)
def test_other_errors_pass_through(exc: Exception) -> None:
    """Unmapped statuses, and anything but the aio client's ApiException, reach the caller as they are."""
    with pytest.raises(type(exc)) as info:
        on(FakeCustomObjects(errors={"get": exc}), lambda jobs: jobs.get("j"))
    assert info.value is exc


# --- list_jobs: the sync SDK's selectors --------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "selectors"),
    [
        ({}, {}),
        ({"queue": "mail"}, {"field_selector": "spec.queue=mail"}),
        ({"handler": "send"}, {"field_selector": "spec.handler=send"}),
        ({"phase": "Failed"}, {"field_selector": "status.phase=Failed"}),
        ({"label_selector": "a=b"}, {"label_selector": "a=b"}),
        (
            {"queue": "mail", "handler": "send", "phase": "Failed", "label_selector": "a=b,c!=d"},
            {
                "field_selector": "spec.queue=mail,spec.handler=send,status.phase=Failed",
                "label_selector": "a=b,c!=d",
            },
        ),
    ],
)
def test_list_jobs_filters_on_the_server_as_the_sync_sdk(
    filters: dict[str, str], selectors: dict[str, str]
) -> None:
    api, sync = FakeCustomObjects(job_object("Failed", "a"), job_object(None, "b")), SyncApi()
    got = on(api, lambda jobs: jobs.list_jobs(**filters))
    client.list_jobs(namespace="shop", api=sync, **filters)
    ((verb, args, kwargs),) = api.calls
    assert (verb, args) == ("list", (names.GROUP, names.VERSION, "shop", "queuedjobs"))
    assert kwargs == selectors == sync.calls[0][2]
    assert all(isinstance(j, QueuedJob) for j in got)
    assert [(j.metadata["name"], j.status.phase if j.status else None) for j in got] == [
        ("a", "Failed"),
        ("b", None),
    ]


# --- wait ---------------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # other tasks run while it sleeps


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    t = FakeTime()
    monkeypatch.setattr(aio, "_monotonic", t.monotonic)
    monkeypatch.setattr(aio, "_sleep", t.sleep)
    return t


@pytest.mark.parametrize("final", sorted(FINISHED_PHASES))
def test_wait_polls_until_each_final_phase(fake_time: FakeTime, final: str) -> None:
    api = FakeCustomObjects(job_object(None), job_object("Pending"), job_object("Running"), job_object(final))
    job = on(api, lambda jobs: jobs.wait("j", timeout=30))
    assert job.status is not None and job.status.phase == final
    assert api.reads == 4 and fake_time.sleeps == [1.0, 1.0, 1.0]


def test_wait_returns_at_once_for_a_finished_job_and_honours_poll_interval(fake_time: FakeTime) -> None:
    api = FakeCustomObjects(job_object("Succeeded"))
    on(api, lambda jobs: jobs.wait("j", 30))
    assert api.reads == 1 and fake_time.sleeps == []
    api = FakeCustomObjects(job_object("Running"), job_object("Running"), job_object("Failed"))
    on(api, lambda jobs: jobs.wait("j", 30, poll_interval=0.25, namespace="other"))
    assert fake_time.sleeps == [0.25, 0.25] and {args[2] for _, args, _ in api.calls} == {"other"}


@pytest.mark.parametrize(
    ("objects", "timeout", "sleeps", "message"),
    [
        ([job_object("Running")], 2.5, [1.0, 1.0, 0.5], r"QueuedJob shop/j still Running after 2\.5s"),
        ([job_object(None)], 1, [1.0], r"still without a phase after 1s"),
        ([job_object("Pending")], 0, [], r"still Pending after 0s"),
    ],
)
def test_wait_times_out(
    fake_time: FakeTime, objects: list[dict[str, Any]], timeout: float, sleeps: list[float], message: str
) -> None:
    api = FakeCustomObjects(*objects)
    with pytest.raises(TimeoutError, match=message):
        on(api, lambda jobs: jobs.wait("j", timeout=timeout))
    assert fake_time.sleeps == sleeps and api.reads == len(sleeps) + 1


def test_wait_leaves_the_loop_to_other_tasks(fake_time: FakeTime) -> None:
    api = FakeCustomObjects(*[job_object("Running")] * 5, job_object("Succeeded"))
    ticks: list[int] = []

    async def main() -> None:
        async def ticker() -> None:
            while True:
                ticks.append(len(ticks))
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        async with aio.Client("shop", api=api) as jobs:
            await jobs.wait("j", 60)
        task.cancel()

    asyncio.run(main())
    assert len(ticks) >= 5  # at least one tick per poll


# --- retry and cancel: actions' patches, the sync SDK's refusals ----------------------------------

FIXED = "2025-01-01T00:00:00Z-abc123"

RETRY_AND_CANCEL: list[tuple[str, dict[str, Any], str | None]] = [
    ("cancel", job_object(None), None),
    ("cancel", job_object("Pending"), None),
    ("cancel", job_object("Running"), None),
    *[
        ("cancel", job_object(p), f"is already {p}: only an unfinished job can be cancelled")
        for p in sorted(FINISHED_PHASES)
    ],
    ("retry", job_object("Succeeded"), None),
    ("retry", job_object("Failed"), None),
    ("retry", job_object("Cancelled", cancel=True), None),  # the patch also clears spec.cancel
    ("retry", job_object("Pending"), "only a finished job can be retried"),
    ("retry", job_object("Running"), "is Running: only a finished job can be retried"),
    (
        "retry",
        {**job_object("Superseded"), "status": {"phase": "Superseded", "supersededBy": "j2"}},
        "superseded by j2",
    ),
]


@pytest.mark.parametrize(("action", "job", "refusal"), RETRY_AND_CANCEL)
def test_retry_and_cancel_patch_as_actions_and_refuse_as_the_sync_sdk(
    monkeypatch: pytest.MonkeyPatch, action: str, job: dict[str, Any], refusal: str | None
) -> None:
    monkeypatch.setattr(actions, "fresh_value", lambda now: FIXED)
    api, sync = FakeCustomObjects(job), SyncApi(job)
    sync_call = getattr(client, action)
    if refusal:
        with pytest.raises(ValueError, match=refusal) as info:
            on(api, lambda jobs: getattr(jobs, action)("j"))
        with pytest.raises(ValueError) as sync_info:
            sync_call("j", namespace="shop", api=sync)
        assert str(info.value) == str(sync_info.value)
        assert [verb for verb, _, _ in api.calls] == ["get"]  # read, refused, nothing written
        return
    assert on(api, lambda jobs: getattr(jobs, action)("j")) is None
    sync_call("j", namespace="shop", api=sync)
    get, (verb, args, kwargs) = api.calls
    assert get == ("get", (names.GROUP, names.VERSION, "shop", "queuedjobs", "j"), {})
    expected = actions.cancel() if action == "cancel" else actions.requeue(FIXED, job)
    assert (verb, args, kwargs) == (
        "patch",
        (names.GROUP, names.VERSION, "shop", "queuedjobs", "j", expected),
        {"_content_type": MERGE_PATCH},
    )
    assert args == sync.calls[-1][1]  # the very request the sync SDK sends
    if job["spec"].get("cancel"):
        assert expected["spec"] == {"cancel": False}


# --- JobSchedules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (("daily-cleanup", CronPatterns.DAILY_3AM, "cleanup", {"days": 30}), {}),
        (
            ("daily-cleanup", CronPatterns.DAILY_3AM, "cleanup", {"days": 30}),
            {"time_zone": "Europe/Berlin", "missedRunPolicy": "Skip", "queue": "ops", "suspend": True},
        ),
        (("hourly", "@hourly", "ping"), {"job_spec": {"priority": 3}}),
    ],
)
def test_create_schedule_sends_the_sync_sdks_body(args: tuple[Any, ...], options: dict[str, Any]) -> None:
    api, sync = FakeCustomObjects(), SyncApi()
    assert on(api, lambda jobs: jobs.create_schedule(*args, **options), namespace="ops") == args[0]
    schedule_client.create_schedule(*args, namespace="ops", api=sync, **options)
    assert api.calls == sync.calls
    body = api.calls[0][1][-1]
    assert api.calls[0][1][:4] == (names.GROUP, names.VERSION, "ops", "jobschedules")
    assert body["kind"] == "JobSchedule" and body["metadata"] == {"name": args[0], "namespace": "ops"}
    assert body["spec"]["schedule"] == args[1]


@pytest.mark.parametrize(
    ("schedule", "options", "message"),
    [
        ("0 0 30 2 *", {}, "never fires"),
        ("@daily", {"time_zone": "Mars/Base"}, "unknown time zone"),
        ("61 * * * *", {}, "out of range 0-59"),
        ("@daily", {"concurrencyPolicy": "Sometimes"}, "invalid JobSchedule"),
    ],
)
@pytest.mark.parametrize("namespace", ["ops", None])
def test_create_schedule_refuses_invalid_schedules_before_any_call(
    schedule: str, options: dict[str, Any], message: str, namespace: str | None
) -> None:
    api = FakeCustomObjects()
    with pytest.raises(ValueError, match=message):
        on(api, lambda jobs: jobs.create_schedule("x", schedule, "h", **options), namespace=namespace)
    assert api.calls == []


def test_trigger_suspend_resume_patch_the_schedule() -> None:
    api = FakeCustomObjects()

    async def calls(jobs: aio.Client) -> str:
        value = await jobs.trigger_schedule("s")
        await jobs.suspend_schedule("s")
        await jobs.resume_schedule("s", namespace="other")
        return value

    value = on(api, calls, namespace="ops")
    assert value.startswith(datetime.now(UTC).strftime("%Y-"))
    assert [(verb, args[:5], kwargs) for verb, args, kwargs in api.calls] == [
        ("patch", (names.GROUP, names.VERSION, ns, "jobschedules", "s"), {"_content_type": MERGE_PATCH})
        for ns in ("ops", "ops", "other")
    ]
    assert [args[-1] for _, args, _ in api.calls] == [
        actions.trigger(value),
        actions.suspend_schedule(),
        actions.resume_schedule(),
    ]


def test_two_triggers_differ() -> None:
    async def twice(jobs: aio.Client) -> tuple[str, str]:
        return await jobs.trigger_schedule("s"), await jobs.trigger_schedule("s")

    first, second = on(FakeCustomObjects(), twice)
    assert first != second


# --- the connection: made once, on first use; closed once; a passed api left alone ----------------


class FakeApiClient:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


class Connections:
    """``configuration`` and ``kubernetes.aio.client.ApiClient``/``CustomObjectsApi``, faked and counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, api: FakeCustomObjects) -> None:
        self.api = api
        self.configs: list[tuple[str | None, str | None]] = []
        self.clients: list[FakeApiClient] = []
        self.failures = 0  # the next configurations to fail

        async def configuration(path: str | None = None, context: str | None = None) -> Any:
            self.configs.append((path, context))
            for _ in range(3):
                await asyncio.sleep(0)  # reading a kubeconfig yields: others may call meanwhile
            if self.failures:
                self.failures -= 1
                raise OSError("no kubeconfig")
            return {"cfg": len(self.configs)}

        def api_client(cfg: Any) -> FakeApiClient:
            self.clients.append(FakeApiClient(cfg))
            return self.clients[-1]

        def custom_objects_api(api_client: FakeApiClient) -> FakeCustomObjects:
            assert api_client is self.clients[-1]
            return self.api

        monkeypatch.setattr(aio, "configuration", configuration)
        monkeypatch.setattr(aio, "current_namespace", lambda path, context: "from-kubeconfig")
        monkeypatch.setattr(aio_client, "ApiClient", api_client)
        monkeypatch.setattr(aio_client, "CustomObjectsApi", custom_objects_api)

    @property
    def closes(self) -> list[int]:
        return [c.closed for c in self.clients]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    return Connections(monkeypatch, FakeCustomObjects(job_object("Failed")))


def test_concurrent_first_calls_share_one_connection(connections: Connections) -> None:
    async def main() -> list[Any]:
        async with aio.Client("shop", kubeconfig="/k", context="dev") as jobs:
            assert connections.clients == []  # nothing before the first call
            return await asyncio.gather(
                *(jobs.get("j") for _ in range(5)), *(jobs.enqueue("h", {"i": i}) for i in range(5))
            )

    got = asyncio.run(main())
    assert len(got) == 10 and connections.configs == [("/k", "dev")]
    assert len(connections.clients) == 1 and connections.clients[0].cfg == {"cfg": 1}
    assert connections.closes == [1] and len(connections.api.calls) == 10


def test_a_failed_connection_is_not_kept(connections: Connections) -> None:
    connections.failures = 1

    async def main() -> None:
        jobs = aio.Client("shop")
        with pytest.raises(OSError, match="no kubeconfig"):
            await jobs.get("j")
        await jobs.get("j")  # tried again
        await jobs.close()

    asyncio.run(main())
    assert len(connections.configs) == 2 and connections.closes == [1]


def test_close_is_idempotent_and_a_closed_client_connects_again(connections: Connections) -> None:
    async def main() -> None:
        jobs = aio.Client("shop")
        await jobs.close()  # never connected: nothing to close
        await jobs.get("j")
        await jobs.close()
        await jobs.close()
        assert connections.closes == [1]
        await jobs.get("j")
        async with jobs:
            pass
        await jobs.close()

    asyncio.run(main())
    assert connections.closes == [1, 1]


def test_a_passed_api_is_used_and_never_closed(connections: Connections) -> None:
    api = FakeCustomObjects(job_object("Running"))

    async def main() -> None:
        async with aio.Client("shop", api=api) as jobs:
            await jobs.get("j")
        await jobs.close()
        await jobs.get("j")  # still usable: the caller owns it

    asyncio.run(main())
    assert api.closed == 0 and len(api.calls) == 2
    assert connections.configs == [] and connections.clients == []


def test_the_connection_closes_when_the_call_fails(connections: Connections) -> None:
    connections.api.errors["get"] = api_error(404)

    async def main() -> None:
        async with aio.Client("shop") as jobs:
            await jobs.get("nope")

    with pytest.raises(client.JobNotFound):
        asyncio.run(main())
    assert connections.closes == [1]


# --- module-level coroutines: one call, one connection --------------------------------------------


@pytest.mark.parametrize(
    ("call", "verbs", "refusal"),
    [
        (lambda: aio.enqueue("h", {"a": 1}, namespace="shop", priority=2), ["create"], None),
        (lambda: aio.get("j", namespace="shop"), ["get"], None),
        (lambda: aio.wait("j", 10, namespace="shop"), ["get"], None),
        (lambda: aio.list_jobs(namespace="shop", queue="q"), ["list"], None),
        (lambda: aio.retry("j", namespace="shop"), ["get", "patch"], None),
        (lambda: aio.cancel("j", namespace="shop"), ["get"], "already Failed"),  # the job is Failed
    ],
)
def test_module_coroutines_open_and_close_one_connection(
    connections: Connections, call: Callable[[], Awaitable[Any]], verbs: list[str], refusal: str | None
) -> None:
    if refusal:
        with pytest.raises(ValueError, match=refusal):
            run(call())
    else:
        run(call())
    assert [verb for verb, _, _ in connections.api.calls] == verbs
    assert {args[2] for _, args, _ in connections.api.calls} == {"shop"}
    assert connections.configs == [(None, None)] and connections.closes == [1]


def test_module_coroutines_pass_kubeconfig_context_and_options(connections: Connections) -> None:
    name = run(aio.enqueue("h", None, kubeconfig="/k", context="dev", name="n1", labels={"a": "b"}))
    assert name == "n1" and connections.configs == [("/k", "dev")]
    body = connections.api.calls[0][1][-1]
    assert body["metadata"] == {"name": "n1", "namespace": "from-kubeconfig", "labels": {"a": "b"}}
    run(aio.list_jobs(phase="Failed", label_selector="x=y", handler="h"))
    assert connections.api.calls[-1][2] == {
        "field_selector": "spec.handler=h,status.phase=Failed",
        "label_selector": "x=y",
    }


def test_module_enqueue_refuses_invalid_input_before_connecting(connections: Connections) -> None:
    with pytest.raises(ValueError, match="more than"):
        run(aio.enqueue("h", {"blob": "x" * MAX_PAYLOAD_BYTES}))
    with pytest.raises(ValueError, match="invalid QueuedJob"):
        run(aio.enqueue("has space"))
    assert connections.configs == [] and connections.api.calls == []


# --- configuration: the kubeconfig module's one order ---------------------------------------------


def test_configuration_from_a_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.undo()  # the real configuration()
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
current-context: dev
contexts:
- {name: dev, context: {cluster: c, user: u, namespace: team-a}}
- {name: prod, context: {cluster: p, user: u}}
clusters:
- {name: c, cluster: {server: "https://127.0.0.1:6443"}}
- {name: p, cluster: {server: "https://10.1.2.3:443"}}
users:
- {name: u, user: {token: t0k}}
"""
    )
    cfg = run(aio.configuration(str(kubeconfig)))
    assert isinstance(cfg, aio_client.Configuration) and cfg.host == "https://127.0.0.1:6443"
    assert any("t0k" in str(v) for v in cfg.api_key.values())
    assert run(aio.configuration(str(kubeconfig), "prod")).host == "https://10.1.2.3:443"
    assert aio_client.Configuration.get_default_copy().host != cfg.host  # the global default left alone
    assert aio.Client(kubeconfig=str(kubeconfig)).namespace == "team-a"


def test_configuration_in_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.undo()
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("not checked until a request")
    monkeypatch.setattr(aio, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.setattr(aio, "kubeconfig_path", lambda path, context: None)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = run(aio.configuration())
    assert cfg.host == "https://10.0.0.1:443" and cfg.ssl_ca_cert == str(tmp_path / "ca.crt")
    assert any("sa-token" in str(v) for v in cfg.api_key.values())
