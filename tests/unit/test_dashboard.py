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


# --- hostile input (regressions found by tests/e2e/test_dashboard_hostile.py) ------------------------


def send(
    h: Harness, method: str, path: str, data: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[int, str, Mapping[str, str]]:
    """One request with a raw body; (status, body text, headers)."""

    async def fn(client: TestClient[web.Request, web.Application]) -> tuple[int, str, Mapping[str, str]]:
        resp = await client.request(
            method, path, data=data, headers={"Authorization": f"Bearer {ADMIN}", **(headers or {})}
        )
        return resp.status, await resp.text(), dict(resp.headers)

    result: tuple[int, str, Mapping[str, str]] = h.run(fn)
    return result


def test_bodies_nested_too_deeply_or_in_an_unknown_charset_are_400(h: Harness) -> None:
    """json.loads raises RecursionError (not ValueError) past ~1000 levels, and aiohttp's request.json()
    a LookupError for a made-up charset: both were 500s."""
    for data, headers, message in [
        (b"[" * 5000, {}, "nested too deeply"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, {}, "nested too deeply"),
        (b'{"dryRun": 1}', {"Content-Type": "application/json; charset=klingon"}, "dryRun must be"),
        (b'{"olderThan": "\xff"}', {"Content-Type": "application/json"}, "not valid JSON"),
    ]:
        status, text, _ = send(h, "POST", "/api/cleanup", data, headers)
        assert status == 400 and message in json.loads(text)["error"], (data[:20], text)
    assert h.kube.writes() == []


def test_wrongly_typed_falsy_fields_do_not_widen_bulk_actions(h: Harness) -> None:
    """``{"namespace": 0}``, ``[]`` or ``false`` read as "not given" (``or None``): a cleanup of every
    namespace. And ``phases`` as a string or an object was iterated."""
    for path, body, message in [
        ("/api/cleanup", {"namespace": 0, "olderThan": "1d"}, "namespace must be a namespace name"),
        ("/api/cleanup", {"namespace": [], "olderThan": "1d"}, "namespace must be a namespace name"),
        ("/api/cleanup", {"queue": False, "olderThan": "1d"}, "queue must be a string"),
        ("/api/cleanup", {"phases": "Failed", "olderThan": "1d"}, "phases must be a list"),
        ("/api/cleanup", {"phases": {"Failed": 1}, "olderThan": "1d"}, "phases must be a list"),
        ("/api/cleanup", {"phases": [1], "olderThan": "1d"}, "phases must be a list"),
        ("/api/retry-failed", {"namespace": False}, "namespace must be a namespace name"),
        ("/api/retry-failed", {"queue": 0}, "queue must be a string"),
    ]:
        status, answer = h.call("POST", path, body=body)
        assert status == 400 and message in answer["error"], (body, answer)
    assert h.kube.writes() == []
    status, answer = h.call("POST", "/api/cleanup", body={"namespace": "", "olderThan": "1d", "dryRun": True})
    assert status == 200 and answer["count"] == 2  # "" and null still mean "every namespace in scope"


def test_huge_durations_and_numbers_are_400_with_a_short_message(h: Harness) -> None:
    """ "99999999999999999d" overflowed timedelta (500); 5000 digits made int() refuse with a message
    about sys.set_int_max_str_digits echoing all of them; int() also took "1_0" and Arabic digits."""
    for method, path, body, message in [
        ("POST", "/api/cleanup", {"olderThan": "99999999999999999d"}, "too long a duration"),
        ("POST", "/api/cleanup", {"olderThan": "9" * 5000 + "d"}, "is not a duration"),
        ("GET", "/api/jobs?limit=" + "9" * 5000, None, "limit must be between 1 and 200"),
        ("GET", "/api/jobs?page=99999999999999999999", None, "page must be between 1 and 1000000"),
        ("GET", "/api/jobs?page=%D9%A1", None, "page must be an integer"),
        ("GET", "/api/jobs?limit=1_0", None, "limit must be an integer"),
    ]:
        status, answer = h.call(method, path, body=body)
        assert status == 400 and message in answer["error"] and len(answer["error"]) < 200, (path, answer)
    assert h.kube.writes() == []


def test_names_with_a_trailing_newline_or_too_long_are_400() -> None:
    """``re.match`` with ``$`` accepted "dead\\n", which went on into the API server's URL."""
    h = Harness()
    for method, path in [
        ("POST", "/api/jobs/ns/dead%0A/retry"),
        ("DELETE", "/api/jobs/ns%0A/done"),
        ("GET", "/api/jobs/ns/dead%0A"),
        ("POST", "/api/schedules/ns/nightly%0A/trigger"),
        ("GET", "/api/jobs/ns/" + "a" * 254),
        ("GET", "/api/jobs/" + "a" * 64 + "/dead"),
    ]:
        status, answer = h.call(method, path)
        assert (status, answer["error"]) == (400, "invalid namespace or name"), path
    status, answer = h.call("GET", "/api/jobs?namespace=" + "a" * 64)
    assert status == 400 and "is not a valid namespace name" in answer["error"]
    status, answer = h.call("POST", "/api/retry-failed", body={"namespace": "ns\n"})
    assert status == 400 and "namespace must be a namespace name" in answer["error"]
    assert not [c for c in h.kube.calls if "\n" in c[1] or "aaaa" in c[1]]


def test_single_object_actions_refuse_body_fields(h: Harness) -> None:
    """They ignored their body: ``DELETE`` with ``{"dryRun": true}`` deleted, and a malformed or 100 KiB
    body was never read. Now: nothing or ``{}``, else 400 (413 above 64 KiB), and nothing happens."""
    for method, path in [
        ("DELETE", "/api/jobs/ns/done"),
        ("POST", "/api/jobs/ns/dead/retry"),
        ("POST", "/api/jobs/ns/p00/cancel"),
        ("POST", "/api/schedules/ns/nightly/trigger"),
        ("POST", "/api/queues/ns/default/pause"),
    ]:
        status, answer = h.call(method, path, body={"dryRun": True})
        assert status == 400 and answer["error"] == "this action takes no request body fields, got dryRun"
        assert send(h, method, path, b"{oops")[0] == 400
        assert send(h, method, path, b"[]")[0] == 400
        assert send(h, method, path, b"x" * (100 * 1024))[0] == 413
    assert h.kube.writes() == [] and ("ns", "done") in h.kube.objects
    assert h.call("DELETE", "/api/jobs/ns/done", body={})[0] == 200
    doc = openapi.document()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method in ("post", "delete"):
                assert "413" in op["responses"], (method, path)


def test_a_token_of_non_ascii_bytes_is_401_without_a_review() -> None:
    """aiohttp hands undecodable header bytes on as surrogates, which ``str.encode()`` refused: a 500."""
    from jobline.dashboard.auth import HttpError

    kube = FakeKube([], {})
    auth = TokenAuth(kube)
    for header in ("Bearer \udcff\udcfe", "Bearer tök", "Bearer a\tb"):
        with pytest.raises(HttpError) as err:
            asyncio.run(auth.authenticate(header))
        assert err.value.status == 401
    assert kube.reviews == 0


def test_json_answers_escape_markup(h: Harness) -> None:
    """A reflected ``<script>`` (an unknown field, a bad sort) leaves as ``\\u003c...``: still the same JSON."""
    status, text, headers = send(h, "POST", "/api/cleanup", json.dumps({"<script>x</script>&": 1}).encode())
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert "<" not in text and ">" not in text and "&" not in text
    assert "unknown field(s) <script>x</script>&" in json.loads(text)["error"]
    status, text, _ = send(h, "GET", "/api/jobs?sort=%3Cb%3E")
    assert status == 400 and "<b>" not in text and "'<b>'" in json.loads(text)["error"]


def test_errors_outside_the_api_carry_the_security_headers(h: Harness) -> None:
    """aiohttp's own 404 and 405 were raised past the `_headers` middleware, so they went without them."""
    from jobline.dashboard import CSP

    for method, path, code in [("GET", "/nope", 404), ("POST", "/", 405), ("GET", "/<script>", 404)]:
        status, text, headers = send(h, method, path)
        assert status == code and "<script>" not in text
        assert headers["Content-Security-Policy"] == CSP
        assert (headers["X-Content-Type-Options"], headers["X-Frame-Options"]) == ("nosniff", "DENY")


def test_an_unparseable_request_is_one_warning_without_traceback_or_its_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request line over 8 KiB is refused by aiohttp itself, which logged a traceback quoting the line
    (it may be an Authorization header): a remote client could fill the log with both."""
    from aiohttp.test_utils import unused_port

    port = unused_port()
    app = create_app(NoAuth(), FakeSource([]), FakeKube([], {}))

    async def go() -> bytes:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/jobs?q=" + b"secret" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            answer = await reader.read()
            writer.close()
            return answer
        finally:
            await runner.cleanup()

    with caplog.at_level("DEBUG", logger="jobline.dashboard.http"):
        answer = asyncio.run(go())
    assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
    records = [r for r in caplog.records if r.name == "jobline.dashboard.http"]
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("WARNING", "dashboard: refused a malformed HTTP request from 127.0.0.1 (LineTooLong, 400)")
    ]
    assert records[0].exc_info is None and "secret" not in caplog.text


class GatedSource(FakeSource):
    """A FakeSource whose reads wait while `gate` is clear: holds a page's refresh in flight."""

    def __init__(self, jobs: list[dict[str, Any]]) -> None:
        super().__init__(jobs)
        self.gate: asyncio.Event | None = None

    async def view(self) -> View:
        if self.gate is not None:
            await self.gate.wait()
        return await super().view()


def test_page_loads_a_filter_changed_during_a_refresh_and_caps_the_search() -> None:
    """The page dropped a refresh asked for while another ran (``if (state.busy) return``): a filter
    changed then showed stale rows until the next auto-refresh, or for good without it. And a search over
    8 KiB (the box, or ``#q=`` in the address) made a request line aiohttp refuses: a "Bad Request"."""
    import os
    import shutil
    import threading

    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python")
    chromium = "/usr/bin/chromium"
    if not (os.path.exists(chromium) or shutil.which("chromium")):
        pytest.skip(f"needs Debian's chromium at {chromium} (apt-get install chromium)")
    from aiohttp.test_utils import unused_port

    source = GatedSource([job("dead", "Failed"), job("done", "Succeeded")])
    port = unused_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(create_app(NoAuth(), source, FakeKube([], {})), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    runner = loop.run_until_complete(serve())
    thread = threading.Thread(target=lambda: (ready.set(), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait()

    def gate(open_: bool) -> None:
        async def flip() -> None:
            if source.gate is None:
                source.gate = asyncio.Event()
            (source.gate.set if open_ else source.gate.clear)()

        asyncio.run_coroutine_threadsafe(flip(), loop).result(10)

    expect = sync_api.expect
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            rows = page.locator("#jobs tbody tr[data-job]")
            expect(rows).to_have_count(2)
            page.uncheck("#autorefresh")  # only the page's own refreshes from here
            gate(False)
            with page.expect_request(lambda r: "phase=Failed" in r.url):
                page.select_option("#phase", "Failed")  # held in flight
            page.select_option("#phase", "Succeeded")  # asked for while the first runs
            gate(True)
            expect(rows).to_have_count(1)
            expect(rows).to_have_attribute("data-job", "ns/done")

            page.goto(f"http://127.0.0.1:{port}/#q=" + "d" * 10_000)
            page.reload()
            expect(page.locator("#search")).to_have_value("d" * 256)
            expect(page.locator("#jobs tbody td.empty")).to_have_text("No jobs match.")
            expect(page.locator("#jobs-error")).to_be_hidden()
            page.fill("#search", "e" * 10_000)
            assert len(page.input_value("#search")) == 256
            expect(page.locator("#jobs tbody td.empty")).to_have_text("No jobs match.")
            expect(page.locator("#jobs-error")).to_be_hidden()
            browser.close()
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
