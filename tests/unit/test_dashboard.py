"""The dashboard app against fakes: auth (TokenReview/SAR), JSON shapes, paging/search, actions, errors, OpenAPI."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from jobline import names
from jobline.dashboard import create_app, openapi, routes_of
from jobline.dashboard.api import MemoSource, View
from jobline.dashboard.auth import NoAuth, TokenAuth
from jobline.kube import KubeError

QJ = names.PLURAL_QUEUEDJOBS
ADMIN, READER, OTHER = "tok-admin", "tok-reader", "tok-other"
USERS = {
    ADMIN: "system:serviceaccount:ns:admin",
    READER: "system:serviceaccount:ns:reader",
    OTHER: "system:serviceaccount:elsewhere:nobody",
}


def job(
    name: str,
    phase: str | None = "Pending",
    *,
    ns: str = "ns",
    queue: str = "default",
    handler: str = "echo",
    created: str = "2026-01-10T11:00:00Z",
    **status: Any,
) -> dict[str, Any]:
    st = dict(status)
    if phase:
        st["phase"] = phase
    return {
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "uid": f"uid-{name}"},
        "spec": {"handler": handler, "queue": queue, "payload": {"secret-ish": name}},
        "status": st,
    }


def jobs_fixture() -> list[dict[str, Any]]:
    out = [job(f"p{i:02d}", created=f"2026-01-10T10:{i:02d}:00Z") for i in range(30)]
    out += [
        job(
            "dead",
            "Failed",
            deadLettered=True,
            lastError="x" * 1000 + "\nboom",
            attempts=4,
            completedAt="2026-01-01T00:00:00Z",
            conditions=[{"type": "Failed", "status": "True", "reason": "RetriesExhausted"}],
        ),
        job("run", "Running", progress=40, attempts=1, handler="report"),
        job("done", "Succeeded", completedAt="2026-01-09T00:00:00Z", result={"ok": True}),
        job("theirs", "Failed", ns="other", deadLettered=True, completedAt="2026-01-01T00:00:00Z"),
    ]
    return out


class FakeKube:
    """Answers TokenReviews and SARs from tables; keeps objects for GET/PATCH/DELETE."""

    def __init__(
        self, objects: list[dict[str, Any]], rights: Mapping[str, set[tuple[str, str, str]]]
    ) -> None:
        self.objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}
        self.rights = rights  # username -> {(verb, resource, namespace)}; namespace "" = cluster-wide
        self.calls: list[tuple[str, str, Any]] = []
        self.reviews = 0

    def writes(self) -> list[tuple[str, str, Any]]:
        return [c for c in self.calls if c[0] in ("PATCH", "DELETE")]

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        self.calls.append((method, path, copy.deepcopy(body)))
        if path.endswith("/tokenreviews"):
            self.reviews += 1
            user = USERS.get(body["spec"]["token"])
            return {
                "status": {
                    "authenticated": True,
                    "user": {"username": user, "groups": ["system:authenticated"]},
                }
                if user
                else {"authenticated": False, "error": "invalid bearer token"}
            }
        if path.endswith("/subjectaccessreviews"):
            attrs = body["spec"]["resourceAttributes"]
            granted = self.rights.get(body["spec"]["user"], set())
            ok = any(
                v in (attrs["verb"], "*") and r == attrs["resource"] and ns in ("", attrs["namespace"])
                for v, r, ns in granted
            )
            return {"status": {"allowed": ok}}
        parts = path.split("/")  # /apis/jobline.dev/v1alpha1/namespaces/NS/PLURAL/NAME
        key = (parts[5], parts[7])
        if key not in self.objects:
            raise KubeError(404, "NotFound", "not found")
        if method == "GET":
            return copy.deepcopy(self.objects[key])
        if method == "DELETE":
            del self.objects[key]
            return {}
        return copy.deepcopy(self.objects[key])


class FakeSource:
    def __init__(
        self,
        jobs: list[dict[str, Any]],
        queues: dict[tuple[str, str], dict[str, Any]] | None = None,
        schedules: list[dict[str, Any]] | None = None,
        synced: bool = True,
    ) -> None:
        self._jobs, self._queues, self._schedules, self._synced = jobs, queues or {}, schedules or [], synced

    def synced(self) -> bool:
        return self._synced

    async def view(self) -> View:
        return View(list(self._jobs), self._queues)

    async def schedules(self, namespace: str | None) -> list[Mapping[str, Any]]:
        return [s for s in self._schedules if namespace is None or s["metadata"]["namespace"] == namespace]


READ = {("list", r, "ns") for r in (QJ, names.PLURAL_JOBQUEUES, names.PLURAL_JOBSCHEDULES)} | {
    ("get", QJ, "ns")
}
RIGHTS = {
    USERS[ADMIN]: READ | {("*", r, "ns") for r in (QJ, names.PLURAL_JOBQUEUES, names.PLURAL_JOBSCHEDULES)},
    USERS[READER]: READ,
}
SCHEDULE = {
    "metadata": {"name": "nightly", "namespace": "ns"},
    "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"handler": "report"}}},
    "status": {"runCount": 4, "lastScheduleTime": "2026-01-10T03:00:00Z", "lastJob": "nightly-1"},
}
QUEUE = {"metadata": {"name": "default", "namespace": "ns"}, "spec": {"paused": False, "concurrency": 2}}


class Harness:
    def __init__(self, *, auth: str = "token", synced: bool = True) -> None:
        objects = [*jobs_fixture(), {**SCHEDULE}, {**QUEUE}]
        self.kube = FakeKube(objects, RIGHTS)
        self.source = FakeSource(jobs_fixture(), {("ns", "default"): QUEUE}, [SCHEDULE], synced=synced)
        self.auth = TokenAuth(self.kube) if auth == "token" else NoAuth()  # one cache across calls

    def run(self, fn: Callable[[TestClient[web.Request, web.Application]], Awaitable[Any]]) -> Any:
        async def go() -> Any:  # an aiohttp app lives in one event loop: a fresh one per run
            async with TestClient(TestServer(create_app(self.auth, self.source, self.kube))) as client:
                return await fn(client)

        return asyncio.run(go())

    def call(
        self, method: str, path: str, token: str | None = ADMIN, body: Any = None, raw: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}

        async def fn(client: TestClient[web.Request, web.Application]) -> tuple[int, Any]:
            kwargs: dict[str, Any] = {"headers": headers}
            if body is not None:
                kwargs["json"] = body
            if raw is not None:
                kwargs["data"] = raw
            resp = await client.request(method, path, **kwargs)
            return resp.status, await resp.json()

        result: tuple[int, Any] = self.run(fn)
        return result


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_no_token_no_data(h: Harness) -> None:
    for method, path in [
        ("GET", "/api/jobs"),
        ("GET", "/api/stats"),
        ("GET", "/api/schedules"),
        ("GET", "/api/jobs/ns/dead"),
        ("POST", "/api/jobs/ns/dead/retry"),
        ("DELETE", "/api/jobs/ns/dead"),
        ("POST", "/api/cleanup"),
    ]:
        status, body = h.call(method, path, token=None)
        assert status == 401 and "bearer token" in body["error"], (method, path)
    status, body = h.call("GET", "/api/jobs", token="forged")
    assert status == 401 and body == {
        "error": "the token was not accepted by the Kubernetes API server",
        "status": 401,
    }
    assert h.kube.writes() == []


def test_public_endpoints(h: Harness) -> None:
    assert h.call("GET", "/api/config", token=None) == (
        200,
        {
            "auth": "token",
            "refreshSeconds": 5,
            "phases": [
                "pending",
                "waiting",
                "running",
                "succeeded",
                "failed",
                "suspended",
                "cancelled",
                "superseded",
            ],
        },
    )
    status, doc = h.call("GET", "/api/openapi.json", token=None)
    assert status == 200 and doc["openapi"].startswith("3.")


def test_token_reviews_are_cached(h: Harness) -> None:
    async def fn(client: TestClient[web.Request, web.Application]) -> None:
        for _ in range(3):
            resp = await client.get("/api/stats", headers={"Authorization": f"Bearer {READER}"})
            assert resp.status == 200

    h.run(fn)
    assert h.kube.reviews == 1


def test_reader_lists_but_may_not_act(h: Harness) -> None:
    status, stats = h.call("GET", "/api/stats", token=READER)
    assert status == 200
    assert stats["totals"] == {
        "pending": 30,
        "waiting": 0,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "suspended": 0,
        "cancelled": 0,
        "superseded": 0,
        "total": 33,
    }
    assert stats["queues"][0] | {"oldestPendingSeconds": 0} == {
        "namespace": "ns",
        "queue": "default",
        "exists": True,
        "paused": False,
        "concurrency": 2,
        "pending": 30,
        "waiting": 0,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "suspended": 0,
        "cancelled": 0,
        "superseded": 0,
        "total": 33,
        "oldestPendingSeconds": 0,
    }
    for method, path, body in [
        ("POST", "/api/jobs/ns/dead/retry", None),
        ("DELETE", "/api/jobs/ns/dead", None),
        ("POST", "/api/schedules/ns/nightly/trigger", None),
        ("POST", "/api/schedules/ns/nightly/disable", None),
        ("POST", "/api/queues/ns/default/pause", None),
        ("POST", "/api/cleanup", {"olderThan": "1d"}),
        ("POST", "/api/retry-failed", {}),
    ]:
        status, answer = h.call(method, path, token=READER, body=body)
        assert status == 403, (path, answer)
        assert answer["error"].startswith("forbidden: system:serviceaccount:ns:reader may not")
    assert h.kube.writes() == []


def test_other_namespace_user_sees_nothing(h: Harness) -> None:
    status, body = h.call("GET", "/api/jobs", token=OTHER)
    assert status == 403 and "in any namespace" in body["error"]
    status, body = h.call("GET", "/api/jobs?namespace=ns", token=OTHER)
    assert status == 403 and "may not list queuedjobs in namespace ns" in body["error"]
    status, body = h.call("GET", "/api/jobs/ns/dead", token=OTHER)
    assert status == 403
    assert h.call("GET", "/api/namespaces", token=OTHER) == (200, {"items": []})


def test_namespace_scoped_rights_filter_the_all_namespaces_view(h: Harness) -> None:
    status, page = h.call("GET", "/api/jobs?phase=Failed", token=READER)
    assert status == 200 and [(i["namespace"], i["name"]) for i in page["items"]] == [("ns", "dead")]
    assert h.call("GET", "/api/namespaces", token=READER) == (200, {"items": ["ns"]})
    status, page = h.call("GET", "/api/jobs?phase=Failed&namespace=other", token=READER)
    assert status == 403


def test_jobs_paging_search_sort_and_shapes(h: Harness) -> None:
    status, page = h.call("GET", "/api/jobs?namespace=ns&phase=Pending&limit=10&page=2&sort=oldest")
    assert status == 200
    assert (page["total"], page["page"], page["pages"], page["limit"]) == (30, 2, 3, 10)
    assert [i["name"] for i in page["items"]] == [f"p{i:02d}" for i in range(10, 20)]
    assert [i["position"] for i in page["items"]] == list(range(11, 21))
    status, page = h.call("GET", "/api/jobs?q=REPORT")
    assert [i["name"] for i in page["items"]] == ["run"]
    status, page = h.call("GET", "/api/jobs?q=boom")
    assert [i["name"] for i in page["items"]] == ["dead"]
    item = page["items"][0]
    assert set(item) == {
        "namespace",
        "name",
        "queue",
        "handler",
        "phase",
        "waitingReason",
        "failureReason",
        "priority",
        "attempts",
        "progress",
        "position",
        "deadLettered",
        "suspended",
        "createdAt",
        "startedAt",
        "completedAt",
        "nextAttemptAt",
        "lastError",
        "schedule",
    }
    assert (
        len(item["lastError"]) == 300 and item["failureReason"] == "RetriesExhausted" and item["deadLettered"]
    )
    assert "payload" not in json.dumps(page)
    status, page = h.call("GET", "/api/jobs?handler=report&phase=running,failed")
    assert [(i["name"], i["progress"]) for i in page["items"]] == [("run", 40)]
    status, page = h.call("GET", "/api/jobs?namespace=ns&sort=name&limit=1")
    assert page["items"][0]["name"] == "dead" and page["pages"] == 33


def test_job_detail(h: Harness) -> None:
    status, detail = h.call("GET", "/api/jobs/ns/dead", token=READER)
    assert status == 200
    assert detail["spec"]["payload"] == {"secret-ish": "dead"} and detail["lastError"].endswith("boom")
    assert {"attemptHistory", "result", "conditions", "labels", "annotations", "failedAttempts"} <= set(
        detail
    )
    status, detail = h.call("GET", "/api/jobs/ns/p00")
    assert detail["position"] == 1
    assert h.call("GET", "/api/jobs/ns/ghost")[0] == 404


def test_malformed_input_is_400_and_changes_nothing(h: Harness) -> None:
    cases = [
        ("GET", "/api/jobs?limit=abc", None, None, "limit must be an integer"),
        ("GET", "/api/jobs?limit=0", None, None, "between 1 and 200"),
        ("GET", "/api/jobs?phase=Done", None, None, "unknown phase 'Done'"),
        ("GET", "/api/jobs?sort=random", None, None, "sort must be one of"),
        ("GET", "/api/jobs?namespace=Bad_NS", None, None, "not a valid namespace"),
        ("POST", "/api/cleanup", None, "{not json", "not valid JSON"),
        ("POST", "/api/cleanup", [1, 2], None, "must be a JSON object"),
        ("POST", "/api/cleanup", {"olderThan": "a week"}, None, "not a duration"),
        ("POST", "/api/cleanup", {"olderThan": "1d", "dryRun": "yes"}, None, "dryRun must be"),
        (
            "POST",
            "/api/cleanup",
            {"olderThan": "1d", "phases": ["Running"]},
            None,
            "Succeeded, Failed, Cancelled, Superseded",
        ),
        ("POST", "/api/cleanup", {"older": "1d"}, None, "unknown field(s) older"),
        ("POST", "/api/retry-failed", {"queue": 3}, None, "queue must be a string"),
    ]
    for method, path, body, raw, message in cases:
        status, answer = h.call(method, path, body=body, raw=raw)
        assert status == 400 and message in answer["error"], (path, answer)
    assert h.kube.writes() == []


def test_admin_retries_deletes_triggers_and_switches(h: Harness) -> None:
    status, answer = h.call("POST", "/api/jobs/ns/dead/retry")
    assert status == 200 and answer["requeued"] is True
    method, path, body = h.kube.writes()[-1]
    assert (method, path) == ("PATCH", "/apis/jobline.dev/v1alpha1/namespaces/ns/queuedjobs/dead")
    assert body["metadata"]["annotations"][names.ANNOTATION_REQUEUE] == answer[names.ANNOTATION_REQUEUE]
    status, answer = h.call("POST", "/api/jobs/ns/p00/retry")
    assert status == 409 and "only a finished job" in answer["error"]
    assert h.call("POST", "/api/jobs/ns/ghost/retry")[0] == 404
    assert h.call("DELETE", "/api/jobs/ns/done") == (
        200,
        {"namespace": "ns", "name": "done", "deleted": True},
    )
    assert h.kube.writes()[-1][:2] == ("DELETE", "/apis/jobline.dev/v1alpha1/namespaces/ns/queuedjobs/done")
    status, answer = h.call("POST", "/api/schedules/ns/nightly/trigger")
    assert status == 200
    assert (
        h.kube.writes()[-1][2]["metadata"]["annotations"][names.ANNOTATION_TRIGGER]
        == answer[names.ANNOTATION_TRIGGER]
    )
    assert h.call("POST", "/api/schedules/ns/nightly/disable")[0] == 200
    assert h.kube.writes()[-1][2] == {"spec": {"suspend": True}}
    assert h.call("POST", "/api/queues/ns/default/pause") == (
        200,
        {"namespace": "ns", "name": "default", "paused": True},
    )
    assert h.kube.writes()[-1][2] == {"spec": {"paused": True}}
    assert h.call("POST", "/api/queues/ns/nope/resume")[0] == 404


def test_bulk_cleanup_and_retry_failed(h: Harness) -> None:
    status, answer = h.call("POST", "/api/cleanup", body={"olderThan": "1d", "dryRun": True})
    assert status == 200 and [i["name"] for i in answer["items"]] == ["dead", "done"] and answer["dryRun"]
    assert h.kube.writes() == []
    status, answer = h.call("POST", "/api/retry-failed", body={"namespace": "ns"})
    assert status == 200 and answer["items"] == [{"namespace": "ns", "name": "dead"}]
    assert [w[:2] for w in h.kube.writes()] == [
        ("PATCH", "/apis/jobline.dev/v1alpha1/namespaces/ns/queuedjobs/dead")
    ]
    status, answer = h.call("POST", "/api/cleanup", body={"olderThan": "1d", "phases": ["Failed"]})
    assert status == 200 and answer["count"] == 1
    assert h.kube.writes()[-1][:2] == ("DELETE", "/apis/jobline.dev/v1alpha1/namespaces/ns/queuedjobs/dead")


def test_admin_of_one_namespace_cannot_bulk_act_across_namespaces() -> None:
    h = Harness()
    h.kube.rights = {**RIGHTS, USERS[ADMIN]: RIGHTS[USERS[ADMIN]] | {("list", QJ, "")}}  # reads everywhere
    status, answer = h.call("POST", "/api/retry-failed", body={})
    assert status == 403 and "in namespace(s) other; nothing was changed" in answer["error"]
    assert h.kube.writes() == []


def test_schedules_shape(h: Harness) -> None:
    status, answer = h.call("GET", "/api/schedules", token=READER)
    assert status == 200
    row = answer["items"][0]
    assert row | {"nextScheduleTime": None} == {
        "namespace": "ns",
        "name": "nightly",
        "schedule": "0 3 * * *",
        "timeZone": "UTC",
        "enabled": True,
        "handler": "report",
        "queue": "default",
        "concurrencyPolicy": "Allow",
        "lastScheduleTime": "2026-01-10T03:00:00Z",
        "nextScheduleTime": None,
        "lastSuccessfulTime": None,
        "runCount": 4,
        "activeCount": 0,
        "lastJob": "nightly-1",
        "consecutiveFailures": 0,
        "missedRuns": 0,
        "message": None,
    }


def test_not_synced_is_503() -> None:
    h = Harness(synced=False)
    status, answer = h.call("GET", "/api/jobs")
    assert status == 503 and "still loading" in answer["error"]


def test_auth_none_lets_everyone_in() -> None:
    h = Harness(auth="none")
    assert h.call("GET", "/api/config", token=None)[1]["auth"] == "none"
    status, who = h.call("GET", "/api/whoami", token=None)
    assert status == 200 and "--dashboard-auth=none" in who["username"]
    assert h.call("POST", "/api/jobs/ns/dead/retry", token=None)[0] == 200


def test_static_page_and_security_headers(h: Harness) -> None:
    async def fn(client: TestClient[web.Request, web.Application]) -> None:
        resp = await client.get("/")
        assert resp.status == 200 and "<title>Jobline</title>" in await resp.text()
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        for asset in ("/static/app.js", "/static/app.css"):
            assert (await client.get(asset)).status == 200
        resp = await client.get("/api/stats", headers={"Authorization": f"Bearer {READER}"})
        assert resp.headers["Cache-Control"] == "no-store"
        assert (await client.get("/static/../auth.py")).status == 404

    h.run(fn)


def test_openapi_documents_every_route() -> None:
    app = create_app(NoAuth(), FakeSource([]), FakeKube([], {}))
    doc = openapi.document()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {r for r in routes_of(app) if r[1] != "/api/{tail}"}
    assert served == documented
    refs = {m for m in json.dumps(doc).split('"$ref": "#/components/schemas/')[1:]}
    assert {r.split('"')[0] for r in refs} <= set(doc["components"]["schemas"])


def test_memo_source_reads_memory_and_lists_the_api_on_an_ha_standby() -> None:
    from types import SimpleNamespace

    store = SimpleNamespace(jobs={("ns", "a"): job("a")}, queues={("ns", "default"): QUEUE})
    controller = SimpleNamespace(store=store, synced=True, active=True, namespaces=None)
    loop = SimpleNamespace(schedules={("ns", "nightly"): SCHEDULE}, synced=True, active=True)
    kube = FakeKube([], {})

    async def api_lists(method: str, path: str, body: Any = None, **_: Any) -> Any:
        kube.calls.append((method, path, body))
        return {"items": [job("from-api")] if path.endswith("queuedjobs") else []}

    kube.request = api_lists  # type: ignore[method-assign]
    source = MemoSource(SimpleNamespace(controller=controller, schedules=loop), kube)

    async def go() -> None:
        view = await source.view()
        assert [j["metadata"]["name"] for j in view.jobs] == ["a"] and kube.calls == []
        assert await source.schedules("ns") == [SCHEDULE] and await source.schedules("other") == []
        controller.active = loop.active = False  # a standby replica: its watches are paused
        controller.synced = False
        assert source.synced()
        view = await source.view()
        assert [j["metadata"]["name"] for j in view.jobs] == ["from-api"]
        await source.view()  # cached for a few seconds
        assert [c[1] for c in kube.calls] == [
            "/apis/jobline.dev/v1alpha1/queuedjobs",
            "/apis/jobline.dev/v1alpha1/jobqueues",
        ]
        assert await source.schedules(None) == []

    asyncio.run(go())
