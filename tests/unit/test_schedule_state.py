"""The pure planner of the schedule loop: runs, catch-up, concurrency, triggers, history, status."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobline import names
from jobline.core.cron import jitter_offset, manual_run_name, run_name
from jobline.core.schedule_state import (
    EVENT_FIRED,
    EVENT_HISTORY,
    EVENT_MISSED,
    EVENT_REPLACED,
    EVENT_SKIPPED,
    EVENT_TRIGGER_DONE,
    Plan,
    Run,
    build_job,
    owner_uid,
    plan,
    schedule_label_value,
)
from jobline.core.timefmt import fmt

UID = "uid-s"
CREATED = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return CREATED + timedelta(seconds=seconds)


def schedule(
    name: str = "tick",
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    generation: int = 1,
    **spec: Any,
) -> dict[str, Any]:
    spec.setdefault("schedule", "@every 10s")
    spec.setdefault("jobTemplate", {"spec": {"handler": "echo", "payload": {"x": 1}}})
    return {
        "apiVersion": names.API_VERSION,
        "kind": "JobSchedule",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": UID,
            "generation": generation,
            "resourceVersion": "7",
            "creationTimestamp": fmt(CREATED),
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": status or {},
    }


def job(
    name: str,
    phase: str | None = None,
    completed: datetime | None = None,
    owner: str = UID,
    created: datetime = CREATED,
) -> dict[str, Any]:
    st: dict[str, Any] = {}
    if phase:
        st["phase"] = phase
    if completed:
        st["completedAt"] = fmt(completed)
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": fmt(created),
            "ownerReferences": [
                {
                    "apiVersion": names.API_VERSION,
                    "kind": "JobSchedule",
                    "name": "tick",
                    "uid": owner,
                    "controller": True,
                }
            ],
        },
        "status": st,
    }


def apply(obj: dict[str, Any], p: Plan) -> dict[str, Any]:
    """The schedule as it is after the loop wrote the plan's status."""
    new = copy.deepcopy(obj)
    new["status"] = copy.deepcopy(p.status)
    return new


def reasons(p: Plan) -> list[str]:
    return [e.reason for e in p.events]


def ready(p: Plan) -> dict[str, Any]:
    (cond,) = [c for c in p.status["conditions"] if c["type"] == "Ready"]
    return dict(cond)


# --- firing ---------------------------------------------------------------------------------------


def test_not_due_yet_sets_next_time_and_ready() -> None:
    p = plan(schedule(), [], at(3))
    assert p.runs == [] and p.wake_at == at(10)
    assert p.status["nextScheduleTime"] == fmt(at(10)) and "lastScheduleTime" not in p.status
    assert p.status["runCount"] == 0 and p.status["missedRuns"] == 0
    assert p.status["active"] == [] and p.status["activeCount"] == 0
    assert p.status["observedGeneration"] == 1 and p.status["observedSchedule"] == "@every 10s UTC"
    assert ready(p)["status"] == "True" and ready(p)["reason"] == "Scheduled"


def test_fires_on_time_with_a_deterministic_name() -> None:
    p = plan(schedule(), [], at(10.02))
    assert [r.name for r in p.runs] == [run_name("tick", at(10))] == ["tick-1767225610"]
    assert p.runs[0].nominal == at(10) and p.runs[0].lateness == pytest.approx(0.02)
    assert not p.runs[0].exists
    st = p.status
    assert st["lastScheduleTime"] == fmt(at(10)) and st["nextScheduleTime"] == fmt(at(20))
    assert st["runCount"] == 1 and st["lastJob"] == "tick-1767225610"
    assert st["active"] == ["tick-1767225610"] and st["activeCount"] == 1
    assert p.wake_at == at(20) and p.runs[0].event().reason == EVENT_FIRED
    # Planned again with the written status (and the job seen): nothing more to do.
    again = plan(apply(schedule(), p), [job("tick-1767225610", "Pending")], at(10.5))
    assert again.runs == [] and again.status == st


def test_a_run_whose_job_exists_is_counted_not_created_again() -> None:
    """The operator died after creating the job and before writing the status."""
    p = plan(schedule(), [job("tick-1767225610", "Running")], at(11))
    assert [(r.name, r.exists) for r in p.runs] == [("tick-1767225610", True)]
    assert p.status["runCount"] == 1 and p.status["active"] == ["tick-1767225610"]


def test_jitter_delays_the_fire_time_not_the_name() -> None:
    offset = jitter_offset("ns", "tick", 5)
    assert 0 < offset < 5
    obj = schedule(jitterSeconds=5)
    p = plan(obj, [], at(10 + offset - 0.01))
    assert p.runs == [] and p.wake_at == at(10 + offset)
    p = plan(obj, [], at(10 + offset + 0.01))
    assert [r.name for r in p.runs] == [run_name("tick", at(10))]
    assert p.runs[0].lateness == pytest.approx(0.01, abs=1e-4)
    assert p.status["nextScheduleTime"] == fmt(at(20))  # the nominal instant


def test_cron_in_a_time_zone_and_across_spring_forward() -> None:
    obj = schedule(schedule="30 2 * * *", timeZone="Europe/Berlin")
    p = plan(obj, [], datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    # 02:30 does not exist on 2026-03-29 in Berlin: fires at the end of the gap, 03:00 CEST = 01:00Z.
    assert p.status["nextScheduleTime"] == "2026-03-29T01:00:00Z"
    obj["status"] = p.status
    p = plan(obj, [], datetime(2026, 3, 29, 1, 0, 0, 300_000, tzinfo=UTC))
    assert [r.nominal for r in p.runs] == [datetime(2026, 3, 29, 1, 0, tzinfo=UTC)]
    assert p.status["nextScheduleTime"] == "2026-03-30T00:30:00Z"  # 02:30 CEST


def test_fall_back_repeated_time_fires_once() -> None:
    obj = schedule(
        schedule="30 1 * * *",
        timeZone="America/New_York",
        status={
            "lastScheduleTime": "2026-10-31T05:30:00Z",
            "observedSchedule": "30 1 * * * America/New_York",
        },
    )
    p = plan(obj, [], datetime(2026, 11, 1, 5, 30, 1, tzinfo=UTC))  # 01:30 EDT, first occurrence
    assert len(p.runs) == 1 and p.status["nextScheduleTime"] == "2026-11-02T06:30:00Z"  # not 06:30Z today
    obj["status"] = p.status
    assert plan(obj, [], datetime(2026, 11, 1, 6, 30, 1, tzinfo=UTC)).runs == []  # 01:30 EST: no second run


# --- downtime and catch-up --------------------------------------------------------------------------


DOWN = {"lastScheduleTime": fmt(at(10)), "observedSchedule": "@every 10s UTC", "runCount": 1}


@pytest.mark.parametrize(
    ("policy", "extra", "runs", "missed"),
    [
        ("RunLatest", {}, [50], 3),
        ("Skip", {}, [], 4),
        ("RunAll", {}, [20, 30, 40, 50], 0),
        ("RunAll", {"maxCatchUpRuns": 2}, [40, 50], 2),
        ("RunAll", {"startingDeadlineSeconds": 25}, [40, 50], 2),
        ("RunLatest", {"startingDeadlineSeconds": 5}, [], 4),
    ],
)
def test_missed_runs_after_downtime(policy: str, extra: dict[str, Any], runs: list[int], missed: int) -> None:
    """Down from 10 s to 57 s: the runs at 20, 30, 40 and 50 s were missed (50 is 7 s late, not on time)."""
    p = plan(schedule(status=dict(DOWN), missedRunPolicy=policy, **extra), [], at(57))
    assert [r.nominal for r in p.runs] == [at(s) for s in runs]
    assert p.status["missedRuns"] == missed and p.status["runCount"] == 1 + len(runs)
    assert p.status["lastScheduleTime"] == fmt(at(50))  # recorded even when nothing ran
    assert p.status["nextScheduleTime"] == fmt(at(60)) and p.wake_at == at(60)
    assert (EVENT_MISSED in reasons(p)) == (missed > 0)
    # Never counted twice: planned again with the written status, nothing more is missed or run.
    again = plan(apply(schedule(missedRunPolicy=policy, **extra), p), [], at(58))
    assert again.runs == [] and again.status["missedRuns"] == missed


def test_a_run_created_before_a_lost_status_write_is_counted_as_a_run_not_missed() -> None:
    """Found by the fault suite (apiserver SIGKILL): the run for 20 s was created, the status write after it
    failed, and the next plan (at 57 s, RunLatest) counted 20 s as missed although its job exists."""
    ran = job("tick-1767225620", "Succeeded", completed=at(21))
    ran["metadata"]["annotations"] = {names.ANNOTATION_SCHEDULED_TIME: fmt(at(20))}
    p = plan(schedule(status=dict(DOWN)), [ran], at(57))
    assert [r.nominal for r in p.runs] == [at(50)]
    assert p.status["missedRuns"] == 2 and p.status["runCount"] == 3  # 30 and 40 missed; 10, 20, 50 ran
    again = plan(apply(schedule(), p), [ran], at(58))
    assert again.runs == [] and again.status["missedRuns"] == 2 and again.status["runCount"] == 3


def test_a_run_past_last_schedule_time_whose_status_write_was_lost_is_adopted() -> None:
    """Found by the fault suite (the active replica killed): the run for 20 s exists, lastScheduleTime
    still says 10 s, and the schedule is suspended, so no catch-up would ever count it."""
    ran = job("tick-1767225620", "Running")
    ran["metadata"]["annotations"] = {names.ANNOTATION_SCHEDULED_TIME: fmt(at(20))}
    p = plan(schedule(status=dict(DOWN), suspend=True), [ran], at(25))
    assert p.runs == [] and p.status["runCount"] == 2 and p.status["missedRuns"] == 0
    assert p.status["lastScheduleTime"] == fmt(at(20)) and p.status["active"] == ["tick-1767225620"]
    again = plan(apply(schedule(suspend=True), p), [ran], at(26))
    assert again.status["runCount"] == 2 and again.status["missedRuns"] == 0


def test_an_on_time_run_runs_whatever_the_policy() -> None:
    p = plan(schedule(status=dict(DOWN), missedRunPolicy="Skip"), [], at(51))
    assert [r.nominal for r in p.runs] == [at(50)] and p.status["missedRuns"] == 3


def test_first_plan_counts_from_the_creation_time() -> None:
    p = plan(schedule(missedRunPolicy="RunAll"), [], at(35))
    assert [r.nominal for r in p.runs] == [at(10), at(20), at(30)] and p.status["missedRuns"] == 0


# --- suspend, edits -------------------------------------------------------------------------------


def test_suspended_creates_nothing_and_resume_follows_the_policy() -> None:
    obj = schedule(suspend=True, status=dict(DOWN), missedRunPolicy="Skip")
    p = plan(obj, [], at(45))
    assert p.runs == [] and p.wake_at is None and p.status["nextScheduleTime"] is None
    assert ready(p)["status"] == "False" and ready(p)["reason"] == "Suspended"
    assert p.status["lastScheduleTime"] == fmt(at(10)) and p.status["missedRuns"] == 0
    # Resumed at 57 s with Skip: the suspended period is not replayed; its instants count as missed.
    resumed = apply(obj, p)
    resumed["spec"]["suspend"] = False
    p = plan(resumed, [], at(57))
    assert p.runs == [] and p.status["missedRuns"] == 4 and p.status["nextScheduleTime"] == fmt(at(60))
    assert ready(p)["reason"] == "Scheduled"
    # With RunLatest, one run for the latest suspended instant.
    resumed["spec"]["missedRunPolicy"] = "RunLatest"
    assert [r.nominal for r in plan(resumed, [], at(57)).runs] == [at(50)]


def test_a_trigger_fires_while_suspended() -> None:
    p = plan(schedule(suspend=True, annotations={names.ANNOTATION_TRIGGER: "now"}), [], at(45))
    assert [r.name for r in p.runs] == [manual_run_name("tick", "now")]


def test_editing_the_schedule_recomputes_next_and_does_not_replay() -> None:
    obj = schedule(
        schedule="0 3 * * *",
        status={
            "lastScheduleTime": "2026-01-01T03:00:00Z",
            "observedSchedule": "0 3 * * * UTC",
            "runCount": 1,
        },
    )
    now = datetime(2026, 1, 1, 10, 2, 0, tzinfo=UTC)
    assert plan(obj, [], now).status["nextScheduleTime"] == "2026-01-02T03:00:00Z"
    obj["spec"]["schedule"] = "*/5 * * * *"
    obj["metadata"]["generation"] = 2
    p = plan(obj, [], now)
    assert p.runs == [] and p.status["missedRuns"] == 0  # 03:05 .. 10:00 are before the edit
    assert p.status["nextScheduleTime"] == "2026-01-01T10:05:00Z"
    assert p.status["observedSchedule"] == "*/5 * * * * UTC" and p.status["observedGeneration"] == 2
    assert p.status["lastScheduleTime"] == "2026-01-01T10:00:00Z"
    # The time zone too: 03:00 in New York is 08:00Z.
    obj = apply(schedule(schedule="0 3 * * *"), plan(schedule(schedule="0 3 * * *"), [], now))
    obj["spec"]["timeZone"] = "America/New_York"
    p = plan(obj, [], now)
    assert p.runs == [] and p.status["nextScheduleTime"] == "2026-01-02T08:00:00Z"


# --- invalid --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"schedule": "5-1 * * * *"}, "InvalidSchedule"),
        ({"schedule": "0 0 30 2 *"}, "InvalidSchedule"),
        ({"timeZone": "Mars/Olympus_Mons"}, "InvalidTimeZone"),
    ],
)
def test_invalid_schedule_is_not_ready_with_one_event(spec: dict[str, Any], reason: str) -> None:
    obj = schedule(**spec)
    p = plan(obj, [], at(100))
    assert p.runs == [] and p.wake_at is None and p.status["nextScheduleTime"] is None
    cond = ready(p)
    assert cond["status"] == "False" and cond["reason"] == reason and cond["message"]
    assert [(e.type, e.reason) for e in p.events] == [("Warning", reason)]
    again = plan(apply(obj, p), [], at(200))
    assert again.events == [] and ready(again) == cond  # no event storm while it stays invalid


def test_invalid_schedule_still_takes_manual_triggers() -> None:
    p = plan(schedule(schedule="0 0 31 4 *", annotations={names.ANNOTATION_TRIGGER: "go"}), [], at(5))
    assert [r.trigger for r in p.runs] == ["go"] and p.status["runCount"] == 1


def test_invalid_spec_is_reported() -> None:
    obj = schedule(concurrencyPolicy="Sometimes")
    p = plan(obj, [], at(100))
    assert p.runs == [] and ready(p)["reason"] == "InvalidSpec" and "concurrencyPolicy" in ready(p)["message"]


# --- concurrency ------------------------------------------------------------------------------------


def test_forbid_skips_while_a_run_is_active_and_counts_it() -> None:
    obj = schedule(concurrencyPolicy="Forbid", status=dict(DOWN))
    running = job("tick-1767225610", "Running")
    p = plan(obj, [running], at(20.1))
    assert p.runs == [] and p.status["missedRuns"] == 1 and p.status["lastScheduleTime"] == fmt(at(20))
    assert reasons(p) == [EVENT_SKIPPED] and "tick-1767225610" in p.events[0].message
    assert p.status["active"] == ["tick-1767225610"] and p.wake_at == at(30)
    # Finished: the next run goes ahead.
    done = job("tick-1767225610", "Succeeded", at(25))
    p = plan(apply(obj, p), [done], at(30.1))
    assert [r.nominal for r in p.runs] == [at(30)] and p.status["missedRuns"] == 1


def test_forbid_catch_up_creates_only_the_newest() -> None:
    p = plan(schedule(concurrencyPolicy="Forbid", missedRunPolicy="RunAll", status=dict(DOWN)), [], at(41))
    assert [r.nominal for r in p.runs] == [at(40)] and p.status["missedRuns"] == 2


def test_replace_stops_the_active_run() -> None:
    obj = schedule(concurrencyPolicy="Replace", status=dict(DOWN))
    p = plan(obj, [job("tick-1767225610", "Running"), job("old", "Succeeded", at(5))], at(20.1))
    assert [j.name for j in p.stop] == ["tick-1767225610"]
    assert [r.nominal for r in p.runs] == [at(20)] and p.status["active"] == [run_name("tick", at(20))]
    assert EVENT_REPLACED in reasons(p) and p.status["missedRuns"] == 0


def test_allow_runs_both() -> None:
    p = plan(schedule(status=dict(DOWN)), [job("tick-1767225610", "Running")], at(20.1))
    assert p.stop == [] and len(p.runs) == 1
    assert (
        p.status["active"] == ["tick-1767225610", run_name("tick", at(20))] and p.status["activeCount"] == 2
    )


# --- manual triggers --------------------------------------------------------------------------------


def test_trigger_fires_once_per_value() -> None:
    obj = schedule(annotations={names.ANNOTATION_TRIGGER: "v1"}, status=dict(DOWN))
    p = plan(obj, [], at(12))
    assert [(r.name, r.nominal, r.trigger) for r in p.runs] == [(manual_run_name("tick", "v1"), None, "v1")]
    assert p.status["lastTrigger"] == "v1" and p.status["runCount"] == 2
    assert p.status["lastJob"] == manual_run_name("tick", "v1")
    assert "lastScheduleTime" in p.status and p.status["lastScheduleTime"] == fmt(at(10))  # scheduled only
    manual = job(manual_run_name("tick", "v1"), "Pending")
    assert plan(apply(obj, p), [manual], at(13)).runs == []  # same value: nothing
    # A value whose job still exists (v1 again after v2) does not run again.
    obj2 = apply(obj, p)
    obj2["status"]["lastTrigger"] = "v2"
    p = plan(obj2, [manual], at(14))
    assert p.runs == [] and reasons(p) == [EVENT_TRIGGER_DONE] and p.status["lastTrigger"] == "v1"


def test_manual_run_ignores_forbid_but_blocks_the_scheduled_one() -> None:
    obj = schedule(concurrencyPolicy="Forbid", annotations={names.ANNOTATION_TRIGGER: "x"}, status=dict(DOWN))
    p = plan(obj, [job("tick-1767225610", "Running")], at(20.1))
    assert [r.trigger for r in p.runs] == ["x"] and p.status["missedRuns"] == 1
    assert EVENT_SKIPPED in reasons(p)


# --- history and finished jobs ------------------------------------------------------------------------


def test_history_limits_keep_the_newest_of_each_outcome_manual_runs_included() -> None:
    jobs = [
        job("s1", "Succeeded", at(1)),
        job("s2", "Succeeded", at(2)),
        job("s3", "Succeeded", at(3)),
        job(manual_run_name("tick", "m"), "Succeeded", at(4)),
        job("f1", "Failed", at(5)),
        job("f2", "Failed", at(6)),
        job("run", "Running"),
        job("other", "Succeeded", at(0), owner="someone-else"),
    ]
    p = plan(schedule(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1), jobs, at(7))
    assert sorted(j.name for j in p.delete) == ["f1", "s1", "s2"]
    assert EVENT_HISTORY in reasons(p)
    assert p.status["active"] == ["run"]
    assert p.status["lastSuccessfulTime"] == fmt(at(4)) and p.status["lastFailureTime"] == fmt(at(6))
    assert p.status["consecutiveFailures"] == 2


def test_zero_limits_delete_every_finished_job() -> None:
    p = plan(
        schedule(successfulJobsHistoryLimit=0, failedJobsHistoryLimit=0),
        [job("a", "Succeeded", at(1)), job("b", "Failed", at(2))],
        at(3),
    )
    assert sorted(j.name for j in p.delete) == ["a", "b"]


def test_consecutive_failures_survive_history_cleanup() -> None:
    obj = schedule(failedJobsHistoryLimit=1)
    jobs = [job("f1", "Failed", at(1))]
    p = plan(obj, jobs, at(1.5))
    assert p.status["consecutiveFailures"] == 1
    obj = apply(obj, p)
    # f1 is kept (limit 1); f2 fails: f1 is deleted, the count goes on.
    jobs.append(job("f2", "Failed", at(2)))
    p = plan(obj, jobs, at(2.5))
    assert p.status["consecutiveFailures"] == 2 and [j.name for j in p.delete] == ["f1"]
    obj = apply(obj, p)
    jobs = [job("f2", "Failed", at(2)), job("f3", "Failed", at(3))]
    p = plan(obj, jobs, at(3.5))
    assert p.status["consecutiveFailures"] == 3
    obj = apply(obj, p)
    jobs.append(job("s4", "Succeeded", at(4)))
    p = plan(obj, jobs, at(4.5))
    assert p.status["consecutiveFailures"] == 0 and p.status["lastSuccessfulTime"] == fmt(at(4))


def test_jobs_of_another_schedule_incarnation_are_ignored() -> None:
    p = plan(schedule(), [job("tick-1767225610", "Running", owner="old-uid")], at(5))
    assert p.status["active"] == [] and p.delete == []


# --- the job manifest -------------------------------------------------------------------------------


def test_build_job_from_the_template() -> None:
    obj = schedule(
        jobTemplate={
            "metadata": {"labels": {"team": "ops", names.LABEL_SCHEDULE: "spoof"}, "annotations": {"a": "b"}},
            "spec": {"handler": "cleanup", "queue": "maint", "payload": {"p": 1}},
        }
    )
    body = build_job(obj, Run("tick-1767225610", at(10)))
    meta = body["metadata"]
    assert body["kind"] == "QueuedJob" and body["apiVersion"] == names.API_VERSION
    assert meta["name"] == "tick-1767225610" and meta["namespace"] == "ns"
    assert meta["labels"] == {"team": "ops", names.LABEL_SCHEDULE: "tick"}
    assert meta["annotations"] == {"a": "b", names.ANNOTATION_SCHEDULED_TIME: fmt(at(10))}
    (ref,) = meta["ownerReferences"]
    assert ref["uid"] == UID and ref["kind"] == "JobSchedule" and ref["controller"] is True
    assert owner_uid(body) == UID
    assert body["spec"] == {"handler": "cleanup", "queue": "maint", "payload": {"p": 1}}
    manual = build_job(obj, Run("tick-manual-x", None, "v9"))
    assert manual["metadata"]["annotations"][names.ANNOTATION_MANUAL_TRIGGER] == "v9"
    assert names.ANNOTATION_SCHEDULED_TIME not in manual["metadata"]["annotations"]
    assert obj["spec"]["jobTemplate"]["metadata"]["labels"][names.LABEL_SCHEDULE] == "spoof"  # not mutated


def test_long_schedule_names_make_valid_labels() -> None:
    long = "a" * 70 + "-b"
    value = schedule_label_value(long)
    assert len(value) <= 63 and value.startswith("a" * 40) and value != schedule_label_value("a" * 71 + "-b")
    assert schedule_label_value("short") == "short"
    assert len(run_name(long, at(10))) <= 63
