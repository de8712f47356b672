"""Hostile strings through the dashboard, as the fuzzed manifests send them through the apiserver.

QueuedJobs, a JobSchedule and a JobQueue carry markup, script URLs, template syntax, bidi and zero-width
characters, emoji, a control character, 10 KB and 40 levels deep in their free-text fields, and one job
fails with such a message. The page (Chromium) shows all of it as text and runs none of it; the JSON API
answers malformed, mistyped and oversized input with 400 or 413, never 500, always as JSON with the
security headers and with nothing reflected as markup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest
import requests

from jobline.dashboard import CSP
from tests.e2e.test_dashboard import (
    GROUP,
    VERSION,
    Dashboard,
    World,
    api,
    browser,
    dashboard,
    open_page,
    schedule,
    world,
)
from tests.e2e.test_fuzz_manifests import deep
from tests.kube import create_schedule, wait_for

__all__ = ["browser", "dashboard", "world"]  # fixtures of test_dashboard.py, used here

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
SVG = '"><svg onload=window.__pwned=3>'
JS_URL = "javascript:alert(1)"
TEMPLATE = "{{constructor.constructor('window.__pwned=4')()}}"
DOLLAR = "${alert(1)}"
BREAKOUT = "</pre></td></tr></table></dialog><h1 id=pwned>broken out</h1>"
RTL = "\u202etxt.exe\u202c"  # RIGHT-TO-LEFT OVERRIDE ... POP DIRECTIONAL FORMATTING
ZERO_WIDTH = "zero\u200bwidth\u200cnon\u200djoiner\u2060"
EMOJI = "😀🔥👩‍👩‍👧🏳️‍🌈"
CONTROL = "bell\x07escape\x1b[31m"  # no NUL: a worker's payload travels in an environment variable
BIG = "A" * 10 * 1024
ERROR = SCRIPT + IMG + SVG + DOLLAR  # no "'": the handler's ValueError quotes it with repr()
UNICODE_KEY = f"{RTL} {ZERO_WIDTH} {EMOJI}"
PAYLOAD: dict[str, Any] = {
    SCRIPT: IMG,
    "script": SCRIPT,
    "img": IMG,
    "svg": SVG,
    "url": JS_URL,
    "template": TEMPLATE,
    "dollar": DOLLAR,
    "breakout": BREAKOUT,
    "rtl": RTL,
    "zeroWidth": ZERO_WIDTH,
    "emoji": EMOJI,
    "control": CONTROL,
    "__proto__": {"polluted": True},  # JSON.parse makes an own key of it; a careless merge, a prototype
    "list": [SCRIPT, IMG, {SVG: TEMPLATE}],
}
ANNOTATIONS = {"example.com/note": SCRIPT + IMG, "example.com/bidi": RTL + EMOJI, "example.com/url": JS_URL}
HOSTILE_JOBS = ("xss-payload", "xss-big", "xss-result", "xss-error")
ALL_JOBS = {"ok-1", "ok-2", "dead", "held", *HOSTILE_JOBS}
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
T = 15_000  # ms for a refresh to show: the CI run next door shares the machine's two cores

# Before the page's own script: record what the Content Security Policy refused (something tried to run).
CSP_PROBE = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + (e.sample || "")));
"""
INERT = """() => ({
  pwned: typeof window.__pwned,
  polluted: typeof ({}).polluted,
  injected: document.querySelectorAll(
    "body script, body img, body svg, body iframe, body object, body embed, #pwned").length,
  csp: window.__csp,
})"""


@pytest.fixture
def hostile(world: World) -> World:
    """test_dashboard.py's world plus four QueuedJobs, a JobSchedule and a JobQueue annotation carrying
    the hostile strings: held (paused queue, suspended), succeeded (echo) and failed with them."""
    jobs, ns = world.jobs, world.jobs.ns

    def create(name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "QueuedJob",
            "metadata": {"name": name, "annotations": ANNOTATIONS},
            "spec": spec,
        }
        jobs.api.create_namespaced_custom_object(GROUP, VERSION, ns, "queuedjobs", body)

    create(
        "xss-payload",
        {
            "handler": "echo",
            "queue": "parked",
            "payload": PAYLOAD,
            "uniqueKey": IMG,
            "concurrencyKey": SCRIPT,
        },
    )
    create(
        "xss-big",
        {
            "handler": "echo",
            "suspend": True,
            "payload": {"big": BIG, "deep": deep(40), "note": SCRIPT},
            "uniqueKey": UNICODE_KEY,
        },
    )
    create("xss-result", {"handler": "echo", "payload": PAYLOAD})  # its result: the payload
    create("xss-error", {"handler": "flaky", "payload": {"succeedOn": ERROR}})  # int(ERROR) raises
    jobs.api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "jobqueues", "parked", {"metadata": {"annotations": ANNOTATIONS}}
    )
    create_schedule(
        jobs.api,
        ns,
        "xss-nightly",
        {
            "schedule": "0 3 * * *",
            "suspend": True,
            "jobTemplate": {
                "metadata": {"annotations": ANNOTATIONS},
                "spec": {"handler": "echo", "payload": PAYLOAD},
            },
        },
    )
    jobs.api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "jobschedules", "xss-nightly", {"metadata": {"annotations": ANNOTATIONS}}
    )
    for name, phase in [
        ("xss-payload", "Pending"),
        ("xss-big", "Suspended"),
        ("xss-result", "Succeeded"),
        ("xss-error", "Failed"),
    ]:
        jobs.wait_phase(name, phase)
    return world


def js_json(value: Any) -> str:
    """`value` as the page's JSON.stringify writes it (both escape only '"', '\\' and control characters)."""
    return json.dumps(value, ensure_ascii=False)


# --- the page --------------------------------------------------------------------------------


def test_browser_shows_hostile_text_as_text_and_runs_none_of_it(
    browser: Any, dashboard: Dashboard, hostile: World, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    ns = hostile.jobs.ns
    dialogs: list[str] = []
    refused: list[str] = []

    def prepare(page: Any) -> None:
        page.add_init_script(CSP_PROBE)

        def on_dialog(dialog: Any) -> None:  # alert(), confirm(), prompt(): recorded, then dismissed
            dialogs.append(dialog.message)
            dialog.dismiss()

        def on_console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                refused.append(message.text)

        page.on("dialog", on_dialog)
        page.on("console", on_console)

    page = open_page(browser, dashboard, hostile.admin, ns, prepare=prepare)

    def inert() -> None:
        """Nothing ran (no dialog, no __pwned, no refused inline script) and no markup got into the DOM."""
        state = page.evaluate(INERT)
        assert state == {"pwned": "undefined", "polluted": "undefined", "injected": 0, "csp": []}, state
        assert (dialogs, refused, page.errors) == ([], [], [])

    rows = page.locator("#jobs tbody tr[data-job]")

    def shown() -> set[str]:
        return {str(j).split("/", 1)[1] for j in rows.evaluate_all("rs => rs.map(r => r.dataset.job)")}

    expect(rows).to_have_count(len(ALL_JOBS), timeout=T)
    assert shown() == ALL_JOBS
    failed_row = page.locator(f"tr[data-job='{ns}/xss-error']")
    for text in (SCRIPT, IMG, SVG, DOLLAR):  # the last error's line, under the name
        expect(failed_row).to_contain_text(text)
    expect(page.locator(f"tr[data-schedule='{ns}/xss-nightly']")).to_have_count(1)
    inert()

    for text, expected in [
        (SCRIPT, {"xss-error"}),  # in its lastError
        (IMG, {"xss-payload", "xss-error"}),  # a uniqueKey, a lastError
        (SVG, {"xss-error"}),
        (UNICODE_KEY, {"xss-big"}),
        (DOLLAR, {"xss-error"}),
        ("&phase=Failed#", set()),  # a query of its own, not a filter
        (JS_URL, set()),
        (TEMPLATE, set()),
        (BIG, set()),  # the box takes 256 characters: a request line the server accepts
    ]:
        page.fill("#search", text)  # from all rows to a few: each wait sees this search's answer
        if expected:
            expect(rows).to_have_count(len(expected), timeout=T)
            assert shown() == expected, text
        else:
            expect(page.locator("#jobs tbody td.empty")).to_have_text("No jobs match.", timeout=T)
        expect(page.locator("#jobs-error")).to_be_hidden()
        assert page.input_value("#search") == text[:256]
        assert parse_qs(urlparse(page.url).fragment)["q"] == [text[:256].strip()]
        inert()
        page.fill("#search", "")
        expect(rows).to_have_count(len(ALL_JOBS), timeout=T)

    detail = page.locator("#detail")

    def open_detail(name: str) -> None:
        page.locator(f"tr[data-job='{ns}/{name}']").click()
        expect(page.locator("#detail-title")).to_have_text(f"{ns}/{name}")
        expect(detail.locator("pre.payload")).to_be_visible(timeout=T)

    def shown_json(selector: str) -> Any:
        return json.loads(detail.locator(selector).text_content() or "null")

    open_detail("xss-payload")
    for value in (SCRIPT, IMG, SVG, BREAKOUT, JS_URL, TEMPLATE, RTL, ZERO_WIDTH, EMOJI, CONTROL):
        expect(detail.locator("pre.payload")).to_contain_text(js_json(value)[1:-1])
    assert shown_json("pre.payload") == PAYLOAD  # every character, literally
    inert()
    page.click("#detail-close")

    open_detail("xss-big")
    big = shown_json("pre.payload")
    assert big == {"big": BIG, "deep": deep(40), "note": SCRIPT}
    page.click("#detail-close")

    open_detail("xss-result")
    expect(detail.locator("pre.result")).to_contain_text(SCRIPT)
    assert shown_json("pre.result") == PAYLOAD
    page.click("#detail-close")

    open_detail("xss-error")
    error = api(dashboard, "GET", f"/api/jobs/{ns}/xss-error", hostile.admin).json()
    assert ERROR in error["lastError"] and ERROR in error["attemptHistory"][0]["message"]
    expect(detail.locator("pre.last-error")).to_have_text(error["lastError"])
    expect(detail.locator("table")).to_contain_text(ERROR)  # the attempt's message
    page.screenshot(path=str(tmp_path / "hostile-detail.png"))
    inert()
    page.click("#detail-close")

    for phase, expected in [  # the page still works: the filter still updates the table
        ("Failed", {"dead", "xss-error"}),
        ("Suspended", {"xss-big"}),
        ("Pending", {"held", "xss-payload"}),
    ]:
        page.select_option("#phase", phase)
        expect(rows).to_have_count(len(expected), timeout=T)
        assert shown() == expected, phase
        page.select_option("#phase", "")
        expect(rows).to_have_count(len(ALL_JOBS), timeout=T)
    open_detail("dead")
    expect(detail.locator("pre.last-error")).to_contain_text("always fails")
    page.click("#detail-close")
    page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
    inert()
    page.close()


# --- the JSON API ----------------------------------------------------------------------------


def answer(resp: requests.Response, *allowed: int) -> Any:
    """The JSON of `resp` after checking: an allowed status, JSON with the security headers, an error
    message for an error, and no markup reflected (the API writes <, > and & as \\u escapes)."""
    where = (resp.request.method, str(resp.request.url)[:160], resp.status_code, resp.text[:300])
    assert resp.status_code in allowed, where
    assert resp.headers["Content-Type"].startswith("application/json"), where
    assert {h: resp.headers.get(h) for h in SECURITY_HEADERS} == SECURITY_HEADERS, where
    assert "<" not in resp.text and ">" not in resp.text, where
    data = resp.json()
    if resp.status_code >= 400:
        assert data["status"] == resp.status_code and isinstance(data["error"], str) and data["error"], where
    return data


def send(dashboard: Dashboard, method: str, path: str, token: str, body: bytes) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.request(method, dashboard.url + path, headers=headers, data=body, timeout=30)


def test_api_refuses_malformed_mistyped_and_oversized_input_and_never_500s(
    dashboard: Dashboard, hostile: World
) -> None:
    ns, token, jobs = hostile.jobs.ns, hostile.admin, hostile.jobs
    single = [  # the actions on one object: they take no body, or an empty object
        ("POST", f"/api/jobs/{ns}/dead/retry"),
        ("POST", f"/api/jobs/{ns}/held/cancel"),
        ("DELETE", f"/api/jobs/{ns}/ok-1"),
        ("POST", f"/api/schedules/{ns}/nightly/trigger"),
        ("POST", f"/api/schedules/{ns}/nightly/enable"),
        ("POST", f"/api/schedules/{ns}/nightly/disable"),
        ("POST", f"/api/queues/{ns}/parked/resume"),
        ("POST", f"/api/queues/{ns}/parked/pause"),
    ]
    bulk = [("POST", "/api/cleanup"), ("POST", "/api/retry-failed")]
    malformed: list[tuple[bytes, int, str]] = [
        (b"{oops", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b"42", 400, "must be a JSON object"),
        (b'"a string"', 400, "must be a JSON object"),
        (b"null", 400, "must be a JSON object"),
        (b"true", 400, "must be a JSON object"),
        (b'{"namespace": "\xff\xfe"}', 400, "not valid JSON"),  # not UTF-8
        (b"[" * 5000, 400, "nested too deeply"),
        (json.dumps({SCRIPT: IMG, "dryRun": True}).encode(), 400, "field"),
        (json.dumps({"pad": "x" * 80 * 1024, "dryRun": True}).encode(), 413, "Too Large"),
    ]
    for method, path in single + bulk:
        for body, status, message in malformed:
            data = answer(send(dashboard, method, path, token, body), status)
            assert message in data["error"], (path, body[:30], data)
    for method, path in single:  # an option where none is taken: refused, not ignored (nor acted on)
        data = answer(send(dashboard, method, path, token, json.dumps({"dryRun": True}).encode()), 400)
        assert data["error"] == "this action takes no request body fields, got dryRun"

    mistyped: list[dict[str, Any]] = [
        {"namespace": 0},
        {"namespace": []},
        {"namespace": False},
        {"namespace": {"a": 1}},
        {"namespace": SCRIPT},
        {"namespace": ns + "\n"},
        {"namespace": "a" * 64},
        {"queue": 0},
        {"queue": False},
        {"queue": [SCRIPT]},
        {"dryRun": "no"},
        {"dryRun": 1},
        {"dryRun": None},
    ]
    cleanup_only: list[dict[str, Any]] = [
        {"olderThan": 7},
        {"olderThan": ""},
        {"olderThan": SCRIPT},
        {"olderThan": "99999999999999999d"},
        {"olderThan": BIG},
        {"phases": "Failed"},
        {"phases": {"Failed": True}},
        {"phases": [1]},
        {"phases": [SCRIPT]},
        {"phases": ["Running"]},
    ]
    for path, cases in [("/api/cleanup", mistyped + cleanup_only), ("/api/retry-failed", mistyped)]:
        for case in cases:
            fields = {"dryRun": True, **case}  # were a case let through, it would change nothing
            answer(api(dashboard, "POST", path, token, json=fields), 400)
    for path, fields in [  # hostile text where any string goes: a normal answer (no such queue)
        ("/api/cleanup", {"namespace": ns, "olderThan": "0s", "queue": IMG, "dryRun": True}),
        ("/api/retry-failed", {"namespace": ns, "queue": SCRIPT, "dryRun": True}),
    ]:
        assert answer(api(dashboard, "POST", path, token, json=fields), 200)["count"] == 0

    for method, path, status in [  # hostile names in the path
        ("POST", f"/api/jobs/{ns}/dead%0A/retry", 400),
        ("DELETE", f"/api/jobs/{ns}/ok-1%0A", 400),
        ("GET", f"/api/jobs/{ns}/%3Cscript%3E", 400),
        ("POST", f"/api/jobs/{ns}/{'a' * 254}/cancel", 400),
        ("POST", f"/api/schedules/{ns}/nightly%00/trigger", 400),
        ("POST", f"/api/queues/{ns}%0A/parked/pause", 400),
        ("GET", f"/api/jobs/{ns}/xss-none", 404),
        ("GET", "/api/%3Cscript%3Ealert(1)%3C/script%3E", 404),
    ]:
        answer(api(dashboard, method, path, token), status)

    q = f"/api/jobs?namespace={ns}"
    for path in [  # hostile query strings: 400
        "/api/jobs?namespace=%3Cscript%3E",
        f"/api/jobs?namespace={'a' * 64}",
        f"{q}&phase={quote(IMG)}",
        f"{q}&sort={quote(SVG)}",
        *(f"{q}&page={v}" for v in ("-1", "0", "1e3", "99999999999999999999", "%D9%A1", "abc", "1_0")),
        *(f"{q}&limit={v}" for v in ("-5", "0", "201", "9" * 5000, "many")),
        "/api/stats?namespace=%3Cimg%3E",
        f"/api/schedules?namespace={quote(RTL)}",
    ]:
        answer(api(dashboard, "GET", path, token), 400)
    for path, expected in [  # ... or a normal answer
        (f"{q}&page=1000000", set()),
        (f"{q}&limit=200", ALL_JOBS),
        (f"{q}&q=%FF%FE", set()),
        (f"{q}&q=%00", set()),
        (f"{q}&q={quote(SCRIPT)}", {"xss-error"}),
        (f"{q}&q={quote(IMG)}", {"xss-payload", "xss-error"}),
        (f"{q}&q={quote(UNICODE_KEY)}", {"xss-big"}),
        (f"{q}&q={'a' * 6000}", set()),
        (f"{q}&queue={quote(SCRIPT)}&handler={quote(IMG)}", set()),
        (f"{q}&phase=failed,,FAILED", {"dead", "xss-error"}),
    ]:
        page = answer(api(dashboard, "GET", path, token), 200)
        assert {i["name"] for i in page["items"]} == expected, path
    assert answer(api(dashboard, "GET", f"/api/namespaces?x={quote(SCRIPT)}", token), 200)["items"] == [ns]

    # A request line over 8 KiB: aiohttp's own 400, logged as one line, no traceback and none of the line.
    assert api(dashboard, "GET", f"{q}&q={'secret' * 2000}", token).status_code == 400
    wait_for(
        lambda: "refused a malformed HTTP request" in dashboard.op.log.read_text(),
        10,
        "the refusal's log line",
    )
    for header in (b"Bearer \xff\xfe\xfd", f"Bearer {SCRIPT}".encode(), b"Basic " + IMG.encode()):
        resp = requests.get(dashboard.url + "/api/jobs", headers={"Authorization": header}, timeout=30)
        assert "token" in answer(resp, 401)["error"]

    # The hostile objects read back as they were written, as JSON.
    detail = answer(api(dashboard, "GET", f"/api/jobs/{ns}/xss-payload", token), 200)
    assert (detail["spec"]["payload"], detail["spec"]["uniqueKey"]) == (PAYLOAD, IMG)
    assert ANNOTATIONS.items() <= detail["annotations"].items()
    assert answer(api(dashboard, "GET", f"/api/jobs/{ns}/xss-result", token), 200)["result"] == PAYLOAD
    assert ERROR in answer(api(dashboard, "GET", f"/api/jobs/{ns}/xss-error", token), 200)["lastError"]

    # Nothing was changed by any of it.
    assert (
        "jobline.dev/requeue" not in (jobs.get("dead")["metadata"].get("annotations") or {})
        and jobs.status("dead")["attempts"] == 1
    )
    assert jobs.phase("held") == "Pending" and not jobs.get("held")["spec"].get("cancel")
    assert all(jobs.exists(name) for name in ALL_JOBS)
    nightly = schedule(jobs)
    assert nightly["spec"]["suspend"] is True
    assert "jobline.dev/trigger" not in (nightly["metadata"].get("annotations") or {})
    assert jobs.get_queue("parked")["spec"]["paused"] is True
    log = dashboard.op.log.read_text()
    assert "Traceback" not in log and "secret" not in log
