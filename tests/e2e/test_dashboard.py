"""The dashboard against the real operator: its JSON API with real tokens (TokenReview, SubjectAccessReview),
and the page in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client

from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import Jobs, OperatorProcess
from tests.kube import create_schedule, wait_for

GROUP, VERSION = "jobline.dev", "v1alpha1"
RESOURCES = ["queuedjobs", "jobqueues", "jobschedules"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def operator_with(
    operator: OperatorProcess, cluster: ClusterHandle, log: Path, *extra: str
) -> Iterator[OperatorProcess]:
    """Run an operator with `extra` flags instead of the session's (two would fight over the same jobs).

    The session operator is restarted by the next test that asks for `running_operator`.
    """
    operator.stop()
    op = OperatorProcess(cluster.kubeconfig, log, list(extra))
    op.start()
    try:
        yield op
    finally:
        op.stop()
        assert "Traceback" not in log.read_text(errors="replace"), (
            f"the operator logged a traceback; see {log}"
        )


@dataclass
class Dashboard:
    url: str
    op: OperatorProcess


@pytest.fixture(scope="module")
def dashboard(
    operator: OperatorProcess, cluster: ClusterHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    from tests.cluster.procs import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("dashboard-operator") / "operator.log"
    with operator_with(operator, cluster, log, "--dashboard-port", str(port)) as op:
        wait_for(
            lambda: "serving the dashboard (auth: token)" in log.read_text(), 30, "the dashboard to listen"
        )
        yield Dashboard(f"http://127.0.0.1:{port}", op)


def grant(cluster: ClusterHandle, namespace: str, account: str, verbs: list[str]) -> str:
    """A ServiceAccount with `verbs` on the Jobline resources of `namespace`; returns a token for it."""
    core = client.CoreV1Api(cluster.api)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    if verbs:
        rbac.create_namespaced_role(
            namespace,
            {
                "metadata": {"name": account},
                "rules": [{"apiGroups": [GROUP], "resources": RESOURCES, "verbs": verbs}],
            },
        )
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": account},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            },
        )
    request = core.create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    return str(request.status.token)


@dataclass
class World:
    jobs: Jobs
    admin: str
    reader: str
    nobody: str


@pytest.fixture
def world(cluster: ClusterHandle, namespace: str, dashboard: Dashboard) -> World:
    """Succeeded, dead-lettered and pending jobs, a suspended schedule and three users."""
    jobs = Jobs(cluster, namespace)
    jobs.queue(defaults={"retry": {"limit": 0}})
    jobs.queue("parked", paused=True)
    jobs.create("ok-1", "echo", {"n": 1})
    jobs.create("ok-2", "echo", {"n": 2})
    jobs.create("dead", "fail", {"secret": "not in the log"})
    jobs.create("held", "echo", {}, queue="parked")
    create_schedule(
        jobs.api,
        namespace,
        "nightly",
        {
            "schedule": "0 3 * * *",
            "suspend": True,
            "jobTemplate": {"spec": {"handler": "echo", "payload": {"from": "nightly"}}},
        },
    )
    for name, phase in [
        ("ok-1", "Succeeded"),
        ("ok-2", "Succeeded"),
        ("dead", "Failed"),
        ("held", "Pending"),
    ]:
        jobs.wait_phase(name, phase)
    world = World(
        jobs,
        grant(cluster, namespace, "admin", ["*"]),
        grant(cluster, namespace, "reader", ["get", "list", "watch"]),
        grant(cluster, namespace, "nobody", []),
    )
    return world


def api(
    dashboard: Dashboard, method: str, path: str, token: str | None = None, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, dashboard.url + path, headers=headers, timeout=30, **kwargs)


def annotations(jobs: Jobs, name: str) -> dict[str, str]:
    return dict(jobs.get(name)["metadata"].get("annotations") or {})


def schedule(jobs: Jobs) -> dict[str, Any]:
    return dict(jobs.api.get_namespaced_custom_object(GROUP, VERSION, jobs.ns, "jobschedules", "nightly"))


# --- the API ---------------------------------------------------------------------------------


def test_api_unauthenticated_is_401(dashboard: Dashboard, world: World) -> None:
    ns = world.jobs.ns
    for method, path in [
        ("GET", "/api/jobs"),
        ("GET", f"/api/stats?namespace={ns}"),
        ("GET", "/api/schedules"),
        ("GET", f"/api/jobs/{ns}/dead"),
        ("POST", f"/api/jobs/{ns}/dead/retry"),
        ("DELETE", f"/api/jobs/{ns}/dead"),
        ("POST", f"/api/schedules/{ns}/nightly/trigger"),
    ]:
        resp = api(dashboard, method, path)
        assert resp.status_code == 401, path
        assert "bearer token" in resp.json()["error"] and "dead" not in resp.text
        assert api(dashboard, method, path, token="not-a-token").status_code == 401
    assert world.jobs.phase("dead") == "Failed" and world.jobs.exists("dead")
    assert api(dashboard, "GET", "/api/config").json()["auth"] == "token"
    assert api(dashboard, "GET", "/api/openapi.json").json()["info"]["title"] == "Jobline dashboard API"


def test_api_reader_lists_but_gets_403_on_actions(dashboard: Dashboard, world: World) -> None:
    ns, token = world.jobs.ns, world.reader
    who = api(dashboard, "GET", "/api/whoami", token).json()
    assert who["username"] == f"system:serviceaccount:{ns}:reader"
    page = wait_for(
        lambda: (p := api(dashboard, "GET", f"/api/jobs?namespace={ns}", token).json())["total"] == 4 and p,
        30,
        "the reader to see four jobs",
    )
    assert {i["name"]: i["phase"] for i in page["items"]} == {
        "ok-1": "Succeeded",
        "ok-2": "Succeeded",
        "dead": "Failed",
        "held": "Pending",
    }
    assert api(dashboard, "GET", f"/api/jobs/{ns}/dead", token).json()["spec"]["payload"] == {
        "secret": "not in the log"
    }
    assert api(dashboard, "GET", "/api/schedules", token).json()["items"][0]["name"] == "nightly"
    assert api(dashboard, "GET", "/api/namespaces", token).json()["items"] == [ns]
    for method, path in [
        ("POST", f"/api/jobs/{ns}/dead/retry"),
        ("DELETE", f"/api/jobs/{ns}/dead"),
        ("POST", f"/api/schedules/{ns}/nightly/trigger"),
        ("POST", f"/api/schedules/{ns}/nightly/enable"),
        ("POST", f"/api/queues/{ns}/parked/resume"),
    ]:
        resp = api(dashboard, method, path, token)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["error"].startswith(f"forbidden: system:serviceaccount:{ns}:reader may not ")
    resp = api(dashboard, "POST", "/api/cleanup", token, json={"namespace": ns, "olderThan": "0s"})
    assert resp.status_code == 403 and "may not delete queuedjobs" in resp.json()["error"]
    # nothing changed
    assert "jobline.dev/requeue" not in annotations(world.jobs, "dead") and world.jobs.exists("ok-1")
    assert schedule(world.jobs)["spec"]["suspend"] is True and "jobline.dev/trigger" not in (
        schedule(world.jobs)["metadata"].get("annotations") or {}
    )
    assert world.jobs.get_queue("parked")["spec"]["paused"] is True
    # a ServiceAccount without any right sees nothing of this namespace
    resp = api(dashboard, "GET", f"/api/jobs?namespace={ns}", world.nobody)
    assert resp.status_code == 403 and f"may not list queuedjobs in namespace {ns}" in resp.json()["error"]


def test_api_admin_retries_and_deletes(dashboard: Dashboard, world: World) -> None:
    ns, token, jobs = world.jobs.ns, world.admin, world.jobs
    resp = api(dashboard, "POST", f"/api/jobs/{ns}/held/retry", token)
    assert resp.status_code == 409 and "only a finished job can be retried" in resp.json()["error"]
    resp = api(dashboard, "POST", f"/api/jobs/{ns}/dead/retry", token)
    assert resp.status_code == 200, resp.text
    assert annotations(jobs, "dead")["jobline.dev/requeue"] == resp.json()["jobline.dev/requeue"]
    wait_for(
        lambda: jobs.status("dead").get("attempts") == 2 and jobs.phase("dead") == "Failed",
        60,
        "the retried job to run again",
    )
    resp = api(dashboard, "DELETE", f"/api/jobs/{ns}/ok-1", token)
    assert resp.status_code == 200 and resp.json() == {"namespace": ns, "name": "ok-1", "deleted": True}
    wait_for(lambda: not jobs.exists("ok-1"), 30, "ok-1 to be deleted")
    assert api(dashboard, "DELETE", f"/api/jobs/{ns}/ok-1", token).status_code == 404
    resp = api(dashboard, "POST", f"/api/queues/{ns}/parked/resume", token)
    assert resp.json() == {"namespace": ns, "name": "parked", "paused": False}
    assert jobs.get_queue("parked")["spec"]["paused"] is False
    resp = api(
        dashboard, "POST", "/api/cleanup", token, json={"namespace": ns, "olderThan": "0s", "dryRun": True}
    )
    assert resp.status_code == 200 and sorted(i["name"] for i in resp.json()["items"]) == ["dead", "ok-2"]
    assert jobs.exists("ok-2")


def test_api_shapes_and_malformed_input(dashboard: Dashboard, world: World) -> None:
    ns, token = world.jobs.ns, world.admin
    stats = wait_for(
        lambda: (
            (s := api(dashboard, "GET", f"/api/stats?namespace={ns}", token).json())["totals"]["total"] == 4
            and s
        ),
        30,
        "stats to count four jobs",
    )
    assert stats["totals"] == {
        "pending": 1,
        "waiting": 0,
        "running": 0,
        "succeeded": 2,
        "failed": 1,
        "suspended": 0,
        "cancelled": 0,
        "superseded": 0,
        "total": 4,
    }
    assert [(q["queue"], q["paused"], q["pending"]) for q in stats["queues"]] == [
        ("default", False, 0),
        ("parked", True, 1),
    ]
    page = api(dashboard, "GET", f"/api/jobs?namespace={ns}&phase=Failed", token).json()
    assert set(page) == {"items", "total", "page", "limit", "pages"} and page["total"] == 1
    item = page["items"][0]
    assert (item["name"], item["deadLettered"], item["failureReason"], item["attempts"]) == (
        "dead",
        True,
        "RetriesExhausted",
        1,
    )
    page = api(dashboard, "GET", f"/api/jobs?namespace={ns}&limit=1&page=2&sort=name", token).json()
    assert (page["total"], page["pages"], page["items"][0]["name"]) == (4, 4, "held")
    assert (
        api(dashboard, "GET", f"/api/jobs?namespace={ns}&q=FAIL", token).json()["items"][0]["name"] == "dead"
    )
    detail = api(dashboard, "GET", f"/api/jobs/{ns}/dead", token).json()
    assert detail["attemptHistory"][0]["reason"] == "Error" and "always fails" in detail["lastError"]
    row = api(dashboard, "GET", f"/api/schedules?namespace={ns}", token).json()["items"][0]
    assert (row["name"], row["schedule"], row["enabled"], row["handler"]) == (
        "nightly",
        "0 3 * * *",
        False,
        "echo",
    )

    for method, path, kwargs, message in [
        ("GET", f"/api/jobs?namespace={ns}&limit=many", {}, "limit must be an integer"),
        ("GET", f"/api/jobs?namespace={ns}&phase=Done", {}, "unknown phase 'Done'"),
        ("POST", "/api/cleanup", {"data": "{oops"}, "not valid JSON"),
        ("POST", "/api/cleanup", {"json": {"namespace": ns, "olderThan": "one week"}}, "not a duration"),
        (
            "POST",
            "/api/cleanup",
            {"json": {"namespace": ns, "olderThan": "0s", "dryRun": "no"}},
            "dryRun must be",
        ),
        ("POST", "/api/retry-failed", {"json": {"namespace": ns, "bogus": 1}}, "unknown field(s) bogus"),
    ]:
        resp = api(dashboard, method, path, token, **kwargs)
        assert resp.status_code == 400, (path, resp.text)
        assert message in resp.json()["error"]
    assert world.jobs.exists("ok-1") and "jobline.dev/requeue" not in annotations(world.jobs, "dead")

    doc = api(dashboard, "GET", "/api/openapi.json").json()
    assert {"/api/jobs", "/api/jobs/{namespace}/{name}/retry", "/api/cleanup"} <= set(doc["paths"])
    assert (
        "Traceback" not in dashboard.op.log.read_text()
        and "not in the log" not in dashboard.op.log.read_text()
    )


# --- the page in a browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs Playwright for Python (pip install playwright)"
    )
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def open_page(
    browser: Any,
    dashboard: Dashboard,
    token: str,
    namespace: str,
    width: int = 1366,
    height: int = 900,
    prepare: Callable[[Any], None] | None = None,
) -> Any:
    """A signed-in page showing `namespace`; `prepare` gets the page before it loads (listeners, init scripts)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    if prepare is not None:
        prepare(page)
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(dashboard.url + "/")
    page.locator("#login").wait_for(state="visible")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    page.locator("#app").wait_for(state="visible")
    page.locator(f"#namespace option[value='{namespace}']").wait_for(state="attached")
    page.select_option("#namespace", namespace)
    page.locator("#jobs tbody tr[data-job]").first.wait_for()
    return page


def cluster_counts(jobs: Jobs) -> dict[str, int]:
    items = jobs.api.list_namespaced_custom_object(GROUP, VERSION, jobs.ns, "queuedjobs")["items"]
    counts = Counter((i.get("status") or {}).get("phase") or "Pending" for i in items)
    return {
        p.lower(): counts.get(p, 0)
        for p in ("Pending", "Waiting", "Running", "Succeeded", "Failed", "Suspended")
    }


def test_browser_without_a_token_shows_sign_in_only(browser: Any, dashboard: Dashboard, world: World) -> None:
    page = browser.new_page()
    page.goto(dashboard.url + "/")
    page.locator("#login").wait_for(state="visible")
    assert page.locator("#app").is_hidden() and "dead" not in page.content()
    page.fill("#token", "not-a-token")
    page.click("#login-form button[type=submit]")
    page.locator("#banner").wait_for(state="visible")
    assert "not accepted" in page.locator("#banner").inner_text()
    assert page.locator("#app").is_hidden()
    page.close()


def test_browser_admin_stats_filter_retry_and_trigger(
    browser: Any, dashboard: Dashboard, world: World, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    jobs = world.jobs
    page = open_page(browser, dashboard, world.admin, jobs.ns)
    expect(page.locator("#user")).to_have_text(f"system:serviceaccount:{jobs.ns}:admin")
    counts = cluster_counts(jobs)
    assert counts == {"pending": 1, "waiting": 0, "running": 0, "succeeded": 2, "failed": 1, "suspended": 0}
    for key, n in counts.items():  # the cards show what the cluster holds
        expect(page.locator(f"[data-count={key}]")).to_have_text(str(n))
    expect(page.locator("#queues tbody tr")).to_have_count(2)

    page.select_option("#phase", "Failed")  # the status filter
    expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(1)
    expect(page.locator("#jobs tbody tr[data-job]")).to_have_attribute("data-job", f"{jobs.ns}/dead")
    page.select_option("#phase", "Succeeded")
    expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(2)
    page.select_option("#phase", "")
    page.fill("#search", "held")
    expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(1)
    page.fill("#search", "")
    expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(4)

    page.locator(f"tr[data-job='{jobs.ns}/dead']").click()  # the detail
    expect(page.locator("#detail pre.payload")).to_contain_text('"secret": "not in the log"')
    expect(page.locator("#detail pre.last-error")).to_contain_text("always fails")
    page.screenshot(path=str(tmp_path / "detail.png"))
    page.click("#detail-close")

    row = page.locator(f"tr[data-job='{jobs.ns}/dead']")  # retry the dead letter
    row.locator("button[data-action=retry]").click()
    expect(page.locator("#banner")).to_have_text(f"Requeued {jobs.ns}/dead")
    assert "jobline.dev/requeue" in annotations(jobs, "dead")
    wait_for(lambda: jobs.status("dead").get("attempts") == 2, 60, "the dead letter to run again")

    page.locator(
        f"tr[data-schedule='{jobs.ns}/nightly'] button[data-action=trigger]"
    ).click()  # trigger a run
    expect(page.locator("#banner")).to_have_text(f"Triggered {jobs.ns}/nightly")
    trigger = schedule(jobs)["metadata"]["annotations"]["jobline.dev/trigger"]

    def run_created() -> str | None:
        items = jobs.api.list_namespaced_custom_object(
            GROUP, VERSION, jobs.ns, "queuedjobs", label_selector="jobline.dev/schedule"
        )["items"]
        return next(
            (
                i["metadata"]["name"]
                for i in items
                if i["metadata"].get("annotations", {}).get("jobline.dev/manual-trigger") == trigger
            ),
            None,
        )

    created = wait_for(run_created, 60, "the triggered run's job")
    jobs.wait_phase(created, "Succeeded")
    expect(page.locator(f"tr[data-job='{jobs.ns}/{created}']")).to_have_count(1)  # auto-refresh brings it in
    page.locator(f"tr[data-schedule='{jobs.ns}/nightly'] button[data-action=enable]").click()
    wait_for(lambda: schedule(jobs)["spec"]["suspend"] is False, 30, "the schedule to be enabled")
    expect(page.locator(f"tr[data-schedule='{jobs.ns}/nightly']")).to_contain_text("enabled")

    page.screenshot(path=str(tmp_path / "laptop.png"), full_page=True)
    target = os.environ.get("JOBLINE_DASHBOARD_SCREENSHOT")  # to refresh docs/dashboard.png
    if target:
        page.screenshot(path=target, full_page=True)
    assert page.errors == []
    page.close()


def test_browser_reader_is_told_forbidden_and_nothing_changes(
    browser: Any, dashboard: Dashboard, world: World
) -> None:
    from playwright.sync_api import expect

    jobs = world.jobs
    page = open_page(browser, dashboard, world.reader, jobs.ns, width=390, height=844)  # a phone
    expect(page.locator("[data-count=failed]")).to_have_text("1")
    page.locator(f"tr[data-job='{jobs.ns}/dead'] button[data-action=retry]").click()
    expect(page.locator("#banner")).to_contain_text(
        f"Forbidden: system:serviceaccount:{jobs.ns}:reader may not patch queuedjobs/dead in namespace {jobs.ns}"
    )
    page.once("dialog", lambda d: d.accept())  # "Delete job ...?"
    page.locator(f"tr[data-job='{jobs.ns}/ok-1'] button[data-action=delete]").click()
    expect(page.locator("#banner")).to_contain_text("may not delete queuedjobs/ok-1")
    page.locator(f"tr[data-schedule='{jobs.ns}/nightly'] button[data-action=trigger]").click()
    expect(page.locator("#banner")).to_contain_text("may not patch jobschedules/nightly")
    assert "jobline.dev/requeue" not in annotations(jobs, "dead") and jobs.status("dead")["attempts"] == 1
    assert jobs.exists("ok-1")
    assert "jobline.dev/trigger" not in (schedule(jobs)["metadata"].get("annotations") or {})
    assert page.errors == []
    page.close()
