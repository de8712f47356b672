"""The admission checks as pure functions: a started job's payload is frozen, schedules are checked."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from jobline.controller.loop import Controller
from jobline.handlers.admission import escape_field_value, validate_jobschedule, validate_queuedjob
from jobline.kube import KubeError
from jobline.runtime import Runtime


def _update(old_spec: dict[str, Any], attempts: int, new_spec: dict[str, Any]) -> None:
    old = kopf.Body({"spec": old_spec, "status": {"attempts": attempts}})
    asyncio.run(
        validate_queuedjob(
            kopf.Body({"spec": new_spec}).spec, "ns", "job", Runtime(), operation="UPDATE", old=old
        )
    )


@pytest.mark.parametrize(
    ("old", "attempts", "new", "refused"),
    [
        pytest.param({"payload": {"n": 1}}, 1, {"payload": {"n": 2}}, True, id="started-payload-changed"),
        pytest.param({"payload": {"n": 1}}, 1, {}, True, id="started-payload-removed"),
        pytest.param({}, 2, {"payload": 1}, True, id="started-payload-added"),
        pytest.param(
            {"payload": {"n": 1}}, 1, {"payload": {"n": 1}, "priority": 5}, False, id="started-other-field"
        ),
        pytest.param({"payload": {"n": 1}}, 0, {"payload": {"n": 2}}, False, id="not-started"),
    ],
)
def test_a_started_jobs_payload_is_frozen(
    old: dict[str, Any], attempts: int, new: dict[str, Any], refused: bool
) -> None:
    if refused:
        with pytest.raises(
            kopf.AdmissionError, match=r"spec\.payload cannot change once the job's first attempt"
        ):
            _update(old, attempts, new)
    else:
        _update(old, attempts, new)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"schedule": "5-1 * * * *"}, "spec.schedule: minute field '5-1': range 5-1 is reversed"),
        ({"schedule": "0 0 30 2 *"}, "spec.schedule: schedule '0 0 30 2 *' never fires"),
        ({"schedule": "0 3 * * *", "timeZone": "Mars/Olympus_Mons"}, "spec.timeZone: unknown time zone"),
    ],
)
def test_schedules_the_pattern_cannot_judge_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(kopf.AdmissionError, match=message.replace("*", r"\*")):
        asyncio.run(validate_jobschedule(kopf.Body({"spec": spec}).spec, "ns", Runtime()))


def test_a_valid_schedule_is_admitted() -> None:
    spec = kopf.Body({"spec": {"schedule": "0 0 13 * L5", "timeZone": "Europe/Berlin"}}).spec
    asyncio.run(validate_jobschedule(spec, "ns", Runtime()))


# --- uniqueKey: from current state on every replica ---------------------------------------------


class FakeKube:
    """The apiserver as the standby's webhook asks it: a JobQueue and a field-selected job list."""

    def __init__(self, queues: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        self.queues, self.jobs = queues, jobs
        self.asked: list[tuple[str, str, Any]] = []

    async def get_object(self, plural: str, namespace: str, name: str) -> Any:
        self.asked.append(("GET", f"{plural}/{name}", None))
        if name not in self.queues:
            raise KubeError(404, "NotFound", f"{plural} {name} not found")
        return self.queues[name]

    async def request(self, method: str, path: str, body: Any = None, *, query: Any = None) -> Any:
        self.asked.append((method, path, query))
        return {"items": self.jobs}


def job(name: str, phase: str | None, queue: str = "default", key: str = "k") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": "2026-12-02T10:00:00Z"},
        "spec": {"handler": "h", "queue": queue, "uniqueKey": key},
        "status": {"phase": phase} if phase else {},
    }


def create(rt: Runtime, name: str = "new", key: str = "k", queue: str = "default") -> None:
    spec = kopf.Body({"spec": {"handler": "h", "uniqueKey": key, "queue": queue}}).spec
    asyncio.run(validate_queuedjob(spec, "ns", name, rt, operation="CREATE"))


def test_the_active_replica_answers_from_its_store() -> None:
    controller = Controller(kube=None)  # type: ignore[arg-type]
    controller.store.put_job(job("old", "Running"))
    controller.store.synced = controller.synced = True
    rt = Runtime(controller=controller)
    with pytest.raises(kopf.AdmissionError, match="'k' is taken in queue default by the unfinished job old"):
        create(rt)
    controller.store.put_job(
        job("old", "Succeeded") | {"metadata": {**job("old", None)["metadata"], "resourceVersion": "9"}}
    )
    create(rt)  # the store is current: old finished


def test_a_standby_asks_the_apiserver_not_its_frozen_store() -> None:
    """The standby's store froze when it stepped down: there, old is still Running. The apiserver
    knows it finished, and the standby's webhook asks it."""
    controller = Controller(kube=None)  # type: ignore[arg-type]
    controller.store.put_job(job("old", "Running"))
    controller.synced = True
    controller.deactivate()
    kube = FakeKube({}, [job("old", "Succeeded"), job("other-queue", "Running", queue="mail")])
    create(Runtime(controller=controller, kube=kube))  # type: ignore[arg-type]
    assert kube.asked[-1] == (
        "GET",
        "/apis/jobline.dev/v1alpha1/namespaces/ns/queuedjobs",
        {"fieldSelector": "spec.uniqueKey=k"},
    )
    kube.jobs = [job("old", "Running")]
    with pytest.raises(kopf.AdmissionError, match="by the unfinished job old"):
        create(Runtime(controller=controller, kube=kube))  # type: ignore[arg-type]
    kube.queues = {"default": {"spec": {"debounce": {"seconds": 5}}}}
    create(Runtime(controller=controller, kube=kube))  # type: ignore[arg-type]  # debounce lets it in


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("plain", "plain"), ("a,b", "a\\,b"), ("k=v", "k\\=v"), ("back\\slash", "back\\\\slash")],
)
def test_field_selector_values_are_escaped(value: str, escaped: str) -> None:
    assert escape_field_value(value) == escaped


# --- jobOverrides: what a job may set, judged against its queue -----------------------------------


def _active(queues: dict[str, dict[str, Any]]) -> Runtime:
    controller = Controller(kube=None)  # type: ignore[arg-type]
    for name, spec in queues.items():
        controller.store.put_queue(
            {"metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"}, "spec": spec}
        )
    controller.store.synced = controller.synced = True
    return Runtime(controller=controller)


def _create_job(rt: Runtime, spec: dict[str, Any]) -> None:
    asyncio.run(
        validate_queuedjob(
            kopf.Body({"spec": {"handler": "h", **spec}}).spec, "ns", "j", rt, operation="CREATE"
        )
    )


@pytest.mark.parametrize(
    ("queue", "job", "refusal"),
    [
        pytest.param(
            {},
            {"template": {"env": [{"name": "A", "value": "1"}], "args": ["x"]}},
            None,
            id="default-env-args",
        ),
        pytest.param(
            {}, {"template": {"resources": {"limits": {"memory": "1Gi"}}}}, None, id="default-resources"
        ),
        pytest.param(
            {},
            {"template": {"image": "evil:1"}},
            r"spec\.template\.image: JobQueue default does not let its jobs set image \(its spec\.jobOverrides "
            r"allows args, env, resources \(the default\)\)",
            id="default-image",
        ),
        pytest.param(
            {}, {"template": {"podSpecPatch": {"hostPID": True}}}, r"spec\.template\.podSpecPatch", id="patch"
        ),
        pytest.param(
            {},
            {"template": {"securityContext": {"privileged": True}}},
            r"spec\.template\.securityContext",
            id="sc",
        ),
        pytest.param(
            {}, {"template": {"serviceAccountName": "admin"}}, r"spec\.template\.serviceAccountName", id="sa"
        ),
        pytest.param(
            {},
            {"template": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}},
            r"spec\.template\.env\[0\]\.valueFrom\.secretKeyRef: .* set envFrom",
            id="env-from-secret",
        ),
        pytest.param(
            {"jobOverrides": ["env", "envFrom"]},
            {"template": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}},
            None,
            id="env-from-secret-allowed",
        ),
        pytest.param(
            {},
            {"payloadFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            r"spec\.payloadFrom: JobQueue default does not let its jobs set payloadFrom",
            id="payload-from",
        ),
        pytest.param(
            {"jobOverrides": ["payloadFrom"]},
            {"payloadFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            None,
            id="payload-from-allowed",
        ),
        pytest.param(
            {"jobOverrides": []},
            {"template": {"env": [{"name": "A", "value": "1"}], "image": "x"}},
            r"spec\.template\.env: .* allows nothing\); also spec\.template\.image",
            id="empty-list",
        ),
        pytest.param(
            {"jobOverrides": ["image", "podSpecPatch"]},
            {"template": {"image": "x", "podSpecPatch": {}}},
            None,
            id="listed",
        ),
        pytest.param(
            {}, {"queue": "nowhere", "template": {"image": "x"}}, None, id="no-queue-judged-at-start"
        ),
    ],
)
def test_a_job_sets_only_what_its_queue_allows(
    queue: dict[str, Any], job: dict[str, Any], refusal: str | None
) -> None:
    rt = _active({"default": queue})
    if refusal is None:
        _create_job(rt, job)
        return
    with pytest.raises(kopf.AdmissionError, match=refusal) as err:
        _create_job(rt, job)
    assert err.value.code == 403


def test_a_pool_queues_jobs_cannot_set_a_template() -> None:
    rt = _active({"default": {"workers": {"mode": "Pool", "maxReplicas": 2}}})
    with pytest.raises(
        kopf.AdmissionError, match=r"spec\.template: queue default runs its jobs on a pool"
    ) as err:
        _create_job(rt, {"template": {"env": [{"name": "A", "value": "1"}]}})
    assert err.value.code == 422
    _create_job(rt, {"payload": {"n": 1}})  # without a template: admitted


def test_a_standby_reads_the_queue_from_the_apiserver_for_overrides() -> None:
    kube = FakeKube({"default": {"spec": {"jobOverrides": ["env"]}}}, [])
    rt = Runtime(kube=kube)  # type: ignore[arg-type]
    with pytest.raises(kopf.AdmissionError, match=r"spec\.template\.args"):
        _create_job(rt, {"template": {"args": ["x"]}})
    assert kube.asked == [("GET", "jobqueues/default", None)]


def test_payload_and_payload_from_are_exclusive() -> None:
    with pytest.raises(
        kopf.AdmissionError, match=r"spec\.payload and spec\.payloadFrom are mutually exclusive"
    ):
        _create_job(
            _active({"default": {"jobOverrides": ["payloadFrom"]}}),
            {"payload": 1, "payloadFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        )


def test_a_schedule_whose_jobs_would_be_refused_is_refused() -> None:
    spec = kopf.Body(
        {
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {"spec": {"handler": "h", "queue": "mail", "template": {"image": "x"}}},
            }
        }
    ).spec
    with pytest.raises(kopf.AdmissionError, match=r"spec\.jobTemplate\.spec\.template\.image: JobQueue mail"):
        asyncio.run(validate_jobschedule(spec, "ns", _active({"mail": {}})))


def test_an_update_is_judged_only_when_what_the_job_sets_changes() -> None:
    """A queue that narrowed its list later must not block a cancel or suspend of an admitted job."""
    rt = _active({"default": {"jobOverrides": ["env"]}})
    admitted = {"handler": "h", "template": {"labels": {"a": "b"}}}
    old = kopf.Body({"spec": admitted, "status": {}})
    update = {**admitted, "cancel": True}
    asyncio.run(
        validate_queuedjob(kopf.Body({"spec": update}).spec, "ns", "j", rt, operation="UPDATE", old=old)
    )
    changed = {**admitted, "template": {"labels": {"a": "c"}}}
    with pytest.raises(kopf.AdmissionError, match=r"spec\.template\.labels"):
        asyncio.run(
            validate_queuedjob(kopf.Body({"spec": changed}).spec, "ns", "j", rt, operation="UPDATE", old=old)
        )
