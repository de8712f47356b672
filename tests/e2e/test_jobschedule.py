"""JobSchedule end to end: the real operator fires schedules on the real control plane.

Run names are ``<schedule>-<unix seconds of the instant>`` (manual runs ``<schedule>-manual-<hash>``),
so every check below can name the exact jobs it expects.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jobline.core.cron import jitter_offset, manual_run_name, parse_schedule, run_name
from tests.conftest import ClusterHandle
from tests.e2e.operator_fixtures import GROUP, REPO, VERSION, Jobs, OperatorProcess
from tests.kube import kubectl, kubectl_json, wait_for

SCHEDULE_LABEL = "jobline.dev/schedule"
SCHEDULED_TIME = "jobline.dev/scheduled-time"
TRIGGER = "jobline.dev/trigger"
EXAMPLES = REPO / "manifests" / "examples"


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Schedules:
    """JobSchedules and the QueuedJobs they create, in one namespace."""

    def __init__(self, cluster: ClusterHandle, namespace: str) -> None:
        self.cluster = cluster
        self.ns = namespace
        self.api = cluster.custom
        self.jobs = Jobs(cluster, namespace)

    def create(
        self,
        name: str,
        schedule: str,
        handler: str = "echo",
        payload: Any = None,
        job_spec: dict[str, Any] | None = None,
        annotations: dict[str, str] | None = None,
        **spec: Any,
    ) -> dict[str, Any]:
        template = {"handler": handler, "payload": payload if payload is not None else {}, **(job_spec or {})}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JobSchedule",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": template}, **spec},
        }
        return dict(self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, "jobschedules", body))

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, "jobschedules", name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(GROUP, VERSION, self.ns, "jobschedules", name, {"spec": spec})

    def trigger(self, name: str, value: str) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, "jobschedules", name, {"metadata": {"annotations": {TRIGGER: value}}}
        )

    def ready(self, name: str) -> dict[str, Any]:
        conds = {c["type"]: c for c in self.status(name).get("conditions", [])}
        return dict(conds.get("Ready") or {})

    def runs(self, name: str) -> dict[str, dict[str, Any]]:
        """The schedule's jobs by name."""
        items = self.api.list_namespaced_custom_object(
            GROUP, VERSION, self.ns, "queuedjobs", label_selector=f"{SCHEDULE_LABEL}={name}"
        )["items"]
        return {j["metadata"]["name"]: j for j in items}

    def nominals(self, name: str) -> dict[str, dt.datetime]:
        """Scheduled runs: job name -> the instant it was created for."""
        return {
            n: _ts(j["metadata"]["annotations"][SCHEDULED_TIME])
            for n, j in self.runs(name).items()
            if SCHEDULED_TIME in j["metadata"].get("annotations", {})
        }

    def events(self, name: str, reason: str | None = None) -> list[tuple[str, str]]:
        evs = [e for e in self.jobs.events(name) if reason is None or e[0] == reason]
        return evs

    def wait_events(
        self, name: str, reason: str, count: int = 1, timeout: float = 10
    ) -> list[tuple[str, str]]:
        """Events are written after the state they announce: wait until at least `count` are there."""
        return wait_for(
            lambda: (evs := self.events(name, reason)) and len(evs) >= count and evs,
            timeout,
            f"{count} {reason} event(s) of {name}",
        )

    def suspend(self, name: str) -> dict[str, Any]:
        """Suspend and wait until the loop has seen it: no run is created after this returns."""
        self.patch(name, {"suspend": True})

        def suspended() -> dict[str, Any] | None:
            st = self.status(name)  # one read: the condition and the rest of the status agree
            ready = next((c for c in st.get("conditions", []) if c.get("type") == "Ready"), {})
            return st if ready.get("reason") == "Suspended" else None

        return wait_for(suspended, 10, f"{name} to be suspended")


@pytest.fixture
def sched(cluster: ClusterHandle, namespace: str, running_operator: OperatorProcess) -> Schedules:
    s = Schedules(cluster, namespace)
    s.jobs.queue(concurrency=20)
    return s


def _lateness(events: list[tuple[str, str]]) -> list[float]:
    return [
        float(m.group(1)) for _, msg in events if (m := re.search(r"\(([-0-9.]+)s after its time\)", msg))
    ]


def test_every_two_seconds_names_run_count_owner_and_gc(sched: Schedules, cluster: ClusterHandle) -> None:
    created = sched.create(
        "tick", "@every 2s", "echo", {"n": 1}, successfulJobsHistoryLimit=50, job_spec={"retry": {"limit": 0}}
    )
    uid = created["metadata"]["uid"]
    anchor = _ts(created["metadata"]["creationTimestamp"])
    wait_for(lambda: sched.status("tick").get("runCount", 0) >= 5, 30, "five runs")
    st = sched.suspend("tick")
    runs = sched.runs("tick")
    nominals = sched.nominals("tick")
    # Deterministic names on the @every grid (anchored at the creation time), none skipped, one per instant.
    first = anchor + dt.timedelta(seconds=2)
    expected = [first + dt.timedelta(seconds=2 * k) for k in range(len(runs))]
    assert sorted(nominals.values()) == expected
    assert all(name == run_name("tick", t) for name, t in nominals.items())
    assert st["runCount"] == len(runs) and st["missedRuns"] == 0
    assert st["lastJob"] == run_name("tick", expected[-1]) and _ts(st["lastScheduleTime"]) == expected[-1]
    for job in runs.values():
        assert job["metadata"]["labels"][SCHEDULE_LABEL] == "tick"
        (ref,) = job["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("JobSchedule", "tick", uid, True)
    # Each run fired once, within a second of its time.
    fired = sched.wait_events("tick", "Fired", len(runs))
    assert sorted(re.search(r"created job (\S+)", m).group(1) for _, m in fired) == sorted(runs)  # type: ignore[union-attr]
    late = _lateness(fired)
    assert len(late) == len(runs) and max(late) < 1.0, late
    print(f"\nfiring lateness over {len(late)} runs: max {max(late):.3f}s, mean {sum(late) / len(late):.3f}s")
    # The runs finish; the schedule follows them from the watch.
    for name in runs:
        sched.jobs.wait_phase(name, "Succeeded")
    st = wait_for(
        lambda: (s := sched.status("tick")) and s.get("activeCount") == 0 and s, 15, "no active run"
    )
    assert st["active"] == [] and st["lastSuccessfulTime"] and st["consecutiveFailures"] == 0
    # kubectl shows the columns of the issue.
    table = kubectl(cluster.kubeconfig, "get", "jobschedules", "-n", sched.ns).stdout.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == [
        "NAME",
        "SCHEDULE",
        "TIME ZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "NEXT",
        "RUNS",
        "AGE",
    ]
    assert re.split(r"\s{2,}", table[1].strip())[:5] == ["tick", "@every 2s", "UTC", "true", "0"]
    # Deleting the schedule garbage-collects its jobs.
    sched.api.delete_namespaced_custom_object(GROUP, VERSION, sched.ns, "jobschedules", "tick")
    wait_for(lambda: not sched.runs("tick"), 60, "the jobs to be garbage-collected")


def test_suspend_and_resume_does_not_replay(sched: Schedules) -> None:
    sched.create("sus", "@every 2s", missedRunPolicy="Skip")
    wait_for(lambda: sched.status("sus").get("runCount", 0) >= 2, 20, "two runs")
    st = sched.suspend("sus")
    assert "nextScheduleTime" not in st and st["observedGeneration"] == 2
    count, jobs = st["runCount"], set(sched.runs("sus"))
    time.sleep(6)  # let three fire times pass while suspended (not a synchronisation)
    assert sched.status("sus")["runCount"] == count and set(sched.runs("sus")) == jobs
    resumed_at = _now()
    sched.patch("sus", {"suspend": False})
    st = wait_for(
        lambda: (s := sched.status("sus")) and s["runCount"] > count and s, 10, "a run after resume"
    )
    assert sched.ready("sus")["reason"] == "Scheduled" and st["nextScheduleTime"]
    # No burst: of the suspended period at most the one on-time instant runs; the rest count as missed.
    replayed = [t for n, t in sched.nominals("sus").items() if n not in jobs and t < resumed_at]
    assert len(replayed) <= 1, replayed
    assert st["missedRuns"] >= 2
    sched.wait_events("sus", "Missed")


def test_manual_trigger_once_per_value_also_across_restart(
    sched: Schedules, running_operator: OperatorProcess
) -> None:
    sched.create("manual", "0 0 1 1 *", "echo", {"m": 1})  # yearly: only manual runs in this test
    sched.trigger("manual", "a")
    job_a = manual_run_name("manual", "a")
    sched.jobs.wait_phase(job_a, "Succeeded")
    st = wait_for(
        lambda: (s := sched.status("manual")) and s.get("lastTrigger") == "a" and s, 10, "trigger a"
    )
    assert st["runCount"] == 1 and st["lastJob"] == job_a
    assert sched.runs("manual")[job_a]["metadata"]["annotations"]["jobline.dev/manual-trigger"] == "a"
    # Any other change of the object does not fire it again.
    sched.api.patch_namespaced_custom_object(
        GROUP, VERSION, sched.ns, "jobschedules", "manual", {"metadata": {"annotations": {"unrelated": "x"}}}
    )
    sched.patch("manual", {"jitterSeconds": 1})
    wait_for(lambda: sched.status("manual").get("observedGeneration") == 2, 10, "the edit to be seen")
    # A new value while the operator is down fires once after the restart; restarts do not repeat it.
    running_operator.kill()
    sched.trigger("manual", "b")
    running_operator.start()
    job_b = manual_run_name("manual", "b")
    sched.jobs.wait_phase(job_b, "Succeeded")
    running_operator.kill()
    running_operator.start()
    wait_for(lambda: sched.status("manual").get("lastTrigger") == "b", 10, "trigger b")
    sched.trigger("manual", "b")  # the same value again: nothing
    # A barrier: once the restarted loop has planned this edit, it has planned the trigger too.
    sched.patch("manual", {"jitterSeconds": 2})
    wait_for(lambda: sched.status("manual").get("observedGeneration") == 3, 20, "the restarted loop to plan")
    st = sched.status("manual")
    assert set(sched.runs("manual")) == {job_a, job_b}
    assert st["runCount"] == 2 and st["lastTrigger"] == "b" and st.get("missedRuns", 0) == 0
    assert len(sched.wait_events("manual", "Triggered", 2)) == 2


def test_forbid_skips_while_a_slow_run_is_active(sched: Schedules, shared: Path) -> None:
    log = shared / "forbid.log"
    sched.create(
        "forbid", "@every 2s", "record", {"file": str(log), "seconds": 5}, concurrencyPolicy="Forbid"
    )
    wait_for(lambda: sched.status("forbid").get("runCount", 0) >= 2, 40, "two runs")
    st = sched.suspend("forbid")
    for name in sched.runs("forbid"):
        sched.jobs.wait_phase(name, "Succeeded", timeout=30)
    assert st["missedRuns"] >= 2, st  # the fire times while a run was active
    skipped = sched.wait_events("forbid", "Skipped")
    assert skipped and all("Forbid" in m for _, m in skipped)
    # The runs never overlapped.
    spans: dict[str, list[float]] = {}
    for _kind, job, t in (line.split() for line in log.read_text().splitlines()):
        spans.setdefault(job, []).append(float(t))
    intervals = sorted(spans.values())
    assert len(intervals) == st["runCount"]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals)), intervals


def test_replace_stops_the_slow_run(sched: Schedules) -> None:
    sched.create("repl", "@every 3s", "sleep", {"seconds": 60}, concurrencyPolicy="Replace")
    seen: set[str] = set()

    def progressed() -> bool:
        st = sched.status("repl")
        assert st.get("activeCount", 0) <= 1, st
        seen.update(sched.runs("repl"))
        return st.get("runCount", 0) >= 3

    wait_for(progressed, 30, "three runs")
    st = sched.suspend("repl")
    alive = set(sched.runs("repl"))
    assert len(alive) == 1 and alive == set(st["active"]), (alive, st)
    replaced = {
        re.search(r"deleted active job (\S+):", m).group(1)  # type: ignore[union-attr]
        for _, m in sched.wait_events("repl", "Replaced", 2)
    }
    assert len(replaced) >= 2 and not (replaced & alive) and replaced <= seen
    assert st["missedRuns"] == 0
    # The pods of the replaced runs are stopped and collected with their jobs.
    wait_for(lambda: all(not sched.jobs.pods(n) for n in replaced), 60, "the replaced runs' pods to go")


def test_history_limits_count_manual_runs(sched: Schedules, shared: Path) -> None:
    flag = shared / "outcome"
    sched.create(
        "hist",
        "0 0 1 1 *",
        "outcome",
        {"file": str(flag)},
        job_spec={"retry": {"limit": 0}},
        successfulJobsHistoryLimit=2,
        failedJobsHistoryLimit=1,
    )
    outcomes = ["ok", "ok", "fail", "ok", "fail", "fail"]
    names = []
    for i, outcome in enumerate(outcomes):
        flag.write_text(outcome)
        sched.trigger("hist", f"t{i}")
        names.append(manual_run_name("hist", f"t{i}"))
        sched.jobs.wait_phase(names[-1], "Succeeded" if outcome == "ok" else "Failed")
    # Kept: the newest two successes (t3, t1) and the newest failure (t5).
    keep = {names[3], names[1], names[5]}
    wait_for(lambda: set(sched.runs("hist")) == keep, 20, f"exactly {sorted(keep)} to be kept")
    st = wait_for(
        lambda: (s := sched.status("hist")) and s.get("consecutiveFailures") == 2 and s,
        10,
        "two failures in a row",
    )
    assert st["runCount"] == 6 and st["active"] == [] and st["lastSuccessfulTime"] and st["lastFailureTime"]
    sched.wait_events("hist", "DeletedJobs")


def test_operator_down_across_two_fire_times_each_missed_run_policy(
    sched: Schedules, running_operator: OperatorProcess
) -> None:
    policies = {
        "latest": {"missedRunPolicy": "RunLatest"},
        "skip": {"missedRunPolicy": "Skip"},
        "all": {"missedRunPolicy": "RunAll"},
        "deadline": {"missedRunPolicy": "RunAll", "startingDeadlineSeconds": 15},
    }
    for name, spec in policies.items():
        sched.create(name, "@every 15s", successfulJobsHistoryLimit=20, **spec)
    wait_for(
        lambda: all(sched.status(n).get("runCount") == 1 for n in policies), 40, "every schedule's first run"
    )
    running_operator.kill()
    last = {n: _ts(sched.status(n)["lastScheduleTime"]) for n in policies}
    # Let two fire times (T+15 s, T+30 s) pass while the operator is down; restart at T+36.5 s, when the
    # newer one is late beyond the 5 s on-time window and the next one (T+45 s) is still ahead.
    wake = max(last.values()) + dt.timedelta(seconds=36.5)
    time.sleep(max(0.0, (wake - _now()).total_seconds()))
    running_operator.start()
    for n in policies:
        wait_for(
            lambda n=n: _ts(sched.status(n)["lastScheduleTime"]) >= last[n] + dt.timedelta(seconds=30),
            20,
            f"{n} to handle the missed runs",
        )
    expected = {"latest": ([0, 30], 1), "skip": ([0], 2), "all": ([0, 15, 30], 0), "deadline": ([0, 30], 1)}
    for n, (offsets, missed) in expected.items():
        st = sched.status(n)
        nominals = sched.nominals(n)
        before_next = sorted(t for t in nominals.values() if t <= last[n] + dt.timedelta(seconds=30))
        assert before_next == [last[n] + dt.timedelta(seconds=s) for s in offsets], (n, before_next)
        assert st["missedRuns"] == missed, (n, st)
        assert st["runCount"] == len(nominals), (n, st)
        if missed:
            sched.wait_events(n, "Missed")
        else:
            assert not sched.events(n, "Missed"), n


def test_two_operators_never_create_a_run_twice(
    sched: Schedules, cluster: ClusterHandle, running_operator: OperatorProcess, tmp_path: Path
) -> None:
    # Standalone like the session's operator: both are active. (No dashboard: its port is taken.)
    second = OperatorProcess(cluster.kubeconfig, tmp_path / "second.log", ["--dashboard-port", "0"])
    second.start()
    try:
        # Suspended jobs: only the schedule loops race here (the job controllers have nothing to run).
        sched.create("twice", "@every 1s", job_spec={"suspend": True}, successfulJobsHistoryLimit=100)
        wait_for(lambda: sched.status("twice").get("runCount", 0) >= 12, 40, "twelve runs")
        st = sched.suspend("twice")
    finally:
        second.stop()
        # The second operator pointed the shared admission webhook configuration at itself and removed it
        # on exit: restart the session's operator so that it configures its own again.
        running_operator.kill()
        running_operator.start()
    nominals = sorted(sched.nominals("twice").values())
    assert nominals == [
        nominals[0] + dt.timedelta(seconds=k) for k in range(len(nominals))
    ]  # one per instant
    assert st["runCount"] == len(nominals) and st["missedRuns"] == 0
    fired = [
        re.search(r"created job (\S+)", m).group(1)
        for _, m in sched.wait_events("twice", "Fired", len(nominals))
    ]  # type: ignore[union-attr]
    assert sorted(fired) == sorted(sched.runs("twice")), "each run created (and announced) exactly once"
    logs = running_operator.log.read_text() + (tmp_path / "second.log").read_text()
    assert "exists already" in logs or "changed meanwhile" in logs, "the two operators never raced"
    assert "Traceback" not in (tmp_path / "second.log").read_text()


def test_invalid_schedules_are_refused_at_apply_time(sched: Schedules, cluster: ClusterHandle) -> None:
    """The schema refuses what its pattern can tell; the operator's webhook what takes the cron math.
    (Stored anyway while the webhook is down, the loop flags them: tests/unit/test_schedule_state.py.)"""

    def apply(schedule: str, tz: str = "UTC") -> Any:
        manifest = (
            f"apiVersion: jobline.dev/v1alpha1\nkind: JobSchedule\nmetadata: {{name: bad, namespace: {sched.ns}}}\n"
            f'spec:\n  schedule: "{schedule}"\n  timeZone: "{tz}"\n  jobTemplate: {{spec: {{handler: echo}}}}\n'
        )
        return kubectl(cluster.kubeconfig, "apply", "-f", "-", input=manifest, check=False)

    for schedule, tz, field in [
        ("* * *", "UTC", "spec.schedule"),
        ("@every 0s", "UTC", "spec.schedule"),
        ("@fortnightly", "UTC", "spec.schedule"),
        ("61 * * * *", "UTC", "spec.schedule"),
        ("0 0 * mon *", "UTC", "spec.schedule"),
        ("0 0 * * L", "UTC", "spec.schedule"),
        ("0 3 * * *", "Not a zone", "spec.timeZone"),
    ]:
        proc = apply(schedule, tz)
        assert proc.returncode != 0 and field in proc.stderr, (schedule, tz, proc.stderr)

    def refused(schedule: str, tz: str) -> str:
        def attempt() -> str | None:
            proc = apply(schedule, tz)
            if proc.returncode == 0:  # admitted before kopf registered the webhook: try again
                kubectl(cluster.kubeconfig, "-n", sched.ns, "delete", "jobschedule", "bad", "--wait")
                return None
            return str(proc.stderr)

        return wait_for(attempt, 30, f"{schedule!r} in {tz} to be refused by the webhook")

    for schedule, tz, message in [
        ("5-1 * * * *", "UTC", "spec.schedule: minute field '5-1': range 5-1 is reversed"),
        ("0 0 30 2 *", "UTC", "spec.schedule: schedule '0 0 30 2 *' never fires"),
        ("0 3 * * *", "Mars/Olympus_Mons", "spec.timeZone: unknown time zone 'Mars/Olympus_Mons'"),
    ]:
        stderr = refused(schedule, tz)
        assert message in stderr, (schedule, tz, stderr)
    proc = kubectl(cluster.kubeconfig, "-n", sched.ns, "get", "jobschedule", "bad", check=False)
    assert proc.returncode != 0 and "NotFound" in proc.stderr


def test_every_grammar_form_is_accepted_by_the_apiserver(sched: Schedules, cluster: ClusterHandle) -> None:
    """The CRD's pattern runs in the apiserver's RE2, not Python's re: each form is applied for real
    (server-side dry run, so the schema's CEL rules and the operator's webhook both see it)."""
    forms = [
        "0 0 * * sat#1",
        "0 0 * * SAT#1",
        "0 0 * * 6#1",
        "0 9 * * 1-1",
        "5-5 * * * *",
        "0 0 15 * 5#2",
        "0 0 13 * L5",
        "0 0 13 * Lfri",
        "0 0 15W * 1",
        "0 0 LW * *",
        "0 0 L * *",
        "0 0 ? * mon-fri",
        "0 0 1,15 * ?",
        "*/15 9-17 * JAN-mar fri-sun",
        "0 0 * * 7",
        "*/999 * * * *",
        "00 03 * * *",
        "10-50/20,5 0-23/2 1-31/3 1-12/6 0-6/2",
        "5/15 * * * *",
        "@hourly",
        "@every 1h30m",
    ]
    for schedule in forms:
        manifest = (
            f"apiVersion: jobline.dev/v1alpha1\nkind: JobSchedule\nmetadata: {{name: form, namespace: {sched.ns}}}\n"
            f'spec:\n  schedule: "{schedule}"\n  jobTemplate: {{spec: {{handler: echo}}}}\n'
        )
        proc = kubectl(
            cluster.kubeconfig, "apply", "--dry-run=server", "-f", "-", input=manifest, check=False
        )
        assert proc.returncode == 0, (schedule, proc.stderr)
        parse_schedule(schedule)  # and the core agrees


def _first_day(after: dt.datetime, matches: Any, at: dt.time) -> dt.datetime:
    """The first UTC instant after ``after`` at time ``at`` on a day ``matches`` accepts (a reference
    written here, independent of the operator's cron code)."""
    day = after.date()
    while True:
        t = dt.datetime.combine(day, at, tzinfo=dt.UTC)
        if t > after and matches(day):
            return t
        day += dt.timedelta(days=1)


def _nth_weekday(day: dt.date) -> int:
    return (day.day - 1) // 7 + 1


def _last_of_month(day: dt.date) -> bool:
    return (day + dt.timedelta(days=7)).month != day.month


def _next_gap_day(tz: str, after: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """The next spring-forward day of ``tz`` after ``after`` and the UTC instant of its transition."""
    zone = ZoneInfo(tz)
    t = after.replace(minute=0, second=0, microsecond=0)
    while True:
        t += dt.timedelta(hours=1)
        before, at = (t - dt.timedelta(hours=1)).astimezone(zone), t.astimezone(zone)
        if at.utcoffset() > before.utcoffset():  # type: ignore[operator]
            # the transition lies in (t - 1h, t]: find the minute
            m = t - dt.timedelta(hours=1)
            while m.astimezone(zone).utcoffset() == before.utcoffset():
                m += dt.timedelta(minutes=1)
            return m.astimezone(zone).date(), m


def test_cron_grammar_and_dst_gap_on_the_real_apiserver(sched: Schedules) -> None:
    """Issue 12: forms that were refused or misread are accepted by `kubectl apply` (the CRD's CEL
    pattern) and get the right nextScheduleTime; a fixed time inside a spring-forward gap shows the
    instant after the gap."""
    gap_day, gap_end = _next_gap_day("America/New_York", _now())
    cases: list[tuple[str, str, str, Any]] = [
        (
            "sat-first",
            "0 0 * * sat#1",
            "UTC",
            lambda c: _first_day(c, lambda d: d.weekday() == 5 and d.day <= 7, dt.time()),
        ),
        (
            "monday-range",
            "0 9 * * 1-1",
            "UTC",
            lambda c: _first_day(c, lambda d: d.weekday() == 0, dt.time(9)),
        ),
        (
            "fifteenth-or-second-friday",
            "0 0 15 * 5#2",
            "UTC",
            lambda c: _first_day(
                c, lambda d: d.day == 15 or (d.weekday() == 4 and _nth_weekday(d) == 2), dt.time()
            ),
        ),
        (
            "thirteenth-or-last-friday",
            "0 0 13 * L5",
            "UTC",
            lambda c: _first_day(
                c, lambda d: d.day == 13 or (d.weekday() == 4 and _last_of_month(d)), dt.time()
            ),
        ),
        ("gap", f"30 2 {gap_day.day} {gap_day.month} *", "America/New_York", lambda c: gap_end),
    ]
    for name, schedule, tz, _ in cases:
        sched.create(name, schedule, timeZone=tz)
    for name, schedule, tz, expected in cases:
        st = wait_for(
            lambda name=name: (st := sched.status(name)).get("nextScheduleTime") and st,
            15,
            f"{name}'s next time",
        )
        created = _ts(sched.get(name)["metadata"]["creationTimestamp"])
        assert _ts(st["nextScheduleTime"]) == expected(created), (name, schedule, tz, st)
        assert sched.ready(name).get("status") == "True", (name, sched.ready(name))
    # The gap instant is the transition itself: 03:00 EDT, the first instant after 02:30 EST would be.
    assert gap_end.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M %Z") == "03:00 EDT"


def test_editing_schedule_or_time_zone_recomputes_next_at_once(sched: Schedules) -> None:
    sched.create("edit", "0 3 * * *")

    def next_is(expr: str, tz: str) -> bool:
        st = sched.status("edit")
        want = parse_schedule(expr, tz).next_after(_now())
        return bool(st.get("nextScheduleTime")) and _ts(st["nextScheduleTime"]) == want

    wait_for(lambda: next_is("0 3 * * *", "UTC"), 10, "03:00 UTC")
    sched.patch("edit", {"timeZone": "America/New_York"})
    wait_for(lambda: next_is("0 3 * * *", "America/New_York"), 5, "03:00 in New York")
    sched.patch("edit", {"schedule": "*/5 * * * *"})
    wait_for(lambda: next_is("*/5 * * * *", "America/New_York"), 5, "the next five-minute mark")
    st = sched.status("edit")
    assert st.get("runCount", 0) + st.get("missedRuns", 0) <= 1  # the edits replay nothing
    assert st["observedSchedule"] == "*/5 * * * * America/New_York"


def test_example_cleanup_schedules_apply_cleanly(sched: Schedules, cluster: ClusterHandle) -> None:
    files = sorted(EXAMPLES.glob("schedule-*.yaml"))
    assert len(files) == 3
    before = _now()  # the operator plans at some instant between this and the check below
    for path in files:
        kubectl(cluster.kubeconfig, "apply", "--dry-run=server", "-n", sched.ns, "-f", str(path))
        kubectl(cluster.kubeconfig, "apply", "-n", sched.ns, "-f", str(path))
    items = kubectl_json(cluster.kubeconfig, "get", "jobschedules", "-n", sched.ns)["items"]
    assert {i["metadata"]["name"]: i["spec"]["schedule"] for i in items} == {
        "cleanup-temp-files": "@hourly",
        "cleanup-old-jobs": "0 3 * * *",
        "cleanup-expired-sessions": "0 */6 * * *",
    }
    for item in items:
        name, spec = item["metadata"]["name"], item["spec"]
        st = wait_for(
            lambda name=name: (s := sched.status(name)) and s.get("nextScheduleTime") and s,
            10,
            f"{name} to be scheduled",
        )
        assert sched.ready(name)["status"] == "True"
        offset = jitter_offset(sched.ns, name, spec.get("jitterSeconds", 0))
        parsed = parse_schedule(spec["schedule"], spec["timeZone"])
        # Planned before or after a fire time that passed while the test ran (an hour boundary): either is right.
        want = {parsed.next_after(t - dt.timedelta(seconds=offset)) for t in (before, _now())}
        assert _ts(st["nextScheduleTime"]) in want, (name, st["nextScheduleTime"], want)
