"""The read model (jobline.core.readmodel): what the CLI, the dashboard, metrics and queue status read, table by table."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobline import names
from jobline.core import readmodel as rm
from jobline.core.dispatch import Finished
from jobline.core.models import DEFAULT_PRIORITY

NOW = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)


def ts(delta: timedelta = timedelta()) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(name: str = "j", phase: str | None = "Pending", *, ns: str = "ns", queue: str | None = "default",
        handler: str | None = "echo", created: timedelta | None = timedelta(minutes=-10),
        completed: timedelta | None = None, dead: bool = False, priority: Any = None, **status: Any) -> dict[str, Any]:
    """A raw QueuedJob as the API returns it (test_cli.py builds its fake cluster from these too)."""
    spec: dict[str, Any] = {}
    if handler is not None:
        spec["handler"] = handler
    if queue is not None:
        spec["queue"] = queue
    if priority is not None:
        spec["priority"] = priority
    st: dict[str, Any] = dict(status)
    if phase:
        st["phase"] = phase
    if completed is not None:
        st["completedAt"] = ts(completed)
    if dead:
        st["deadLettered"] = True
        st["conditions"] = [{"type": "Failed", "status": "True", "reason": "RetriesExhausted"}]
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if created is not None:
        meta["creationTimestamp"] = ts(created)
    return {"apiVersion": names.API_VERSION, "kind": names.KIND_QUEUEDJOB, "metadata": meta, "spec": spec,
            "status": st}


def names_of(jobs: list[Any]) -> list[str]:
    return [j["metadata"]["name"] for j in jobs]


# --- user input ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("7d", 604800), ("12h", 43200), ("1d12h", 129600), ("30m", 1800),
                                               ("45s", 45), ("2w", 1209600), ("0s", 0), (" 5m ", 300)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert rm.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", " ", "7", "d", "7x", "1d 2h", "-1d", "7days"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        rm.parse_duration(text)


@pytest.mark.parametrize(("given", "expected"), [
    ([], []),
    (["failed", "Pending,RUNNING", "completed"], ["Failed", "Pending", "Running", "Succeeded"]),
    (["succeeded,completed", "Succeeded"], ["Succeeded"]),  # each once
    ([" waiting , ", ","], ["Waiting"]),  # blanks skipped
    (["SUSPENDED"], ["Suspended"]),
])
def test_normalize_phases(given: list[str], expected: list[str]) -> None:
    assert rm.normalize_phases(given) == expected


@pytest.mark.parametrize("given", [["Done"], ["pending,Done"]])
def test_normalize_phases_rejects(given: list[str]) -> None:
    with pytest.raises(ValueError, match="unknown phase 'Done'"):
        rm.normalize_phases(given)


# --- one object ------------------------------------------------------------------------------


@pytest.mark.parametrize(("obj", "expected"), [
    (job("a", ns="x"), ("x", "a")),
    ({"metadata": {"name": "a"}}, ("", "a")),
    ({"metadata": None}, ("", "")),
    ({}, ("", "")),
])
def test_ns_name(obj: dict[str, Any], expected: tuple[str, str]) -> None:
    assert rm.ns_name(obj) == expected


@pytest.mark.parametrize(("obj", "phase", "queue", "handler"), [
    (job(phase="Running", queue="mail", handler="send"), "Running", "mail", "send"),
    (job(phase=None, queue=None, handler=None), "Pending", "default", ""),  # not seen by the operator yet
    ({"status": None, "spec": None}, "Pending", "default", ""),
    ({}, "Pending", "default", ""),
])
def test_phase_queue_handler(obj: dict[str, Any], phase: str, queue: str, handler: str) -> None:
    assert (rm.phase_of(obj), rm.queue_of(obj), rm.handler_of(obj)) == (phase, queue, handler)


@pytest.mark.parametrize(("obj", "finished", "dead"), [
    (job(phase="Pending"), False, False),
    (job(phase="Running"), False, False),
    (job(phase="Suspended"), False, False),
    (job(phase="Succeeded"), True, False),
    (job(phase="Failed"), True, False),
    (job(phase="Failed", dead=True), True, True),
    (job(phase="Running", deadLettered=True), False, False),  # only a Failed job is dead-lettered
])
def test_is_finished_and_dead_letter(obj: dict[str, Any], finished: bool, dead: bool) -> None:
    assert (rm.is_finished(obj), rm.is_dead_letter(obj)) == (finished, dead)


@pytest.mark.parametrize(("obj", "created", "finished"), [
    (job(completed=timedelta(hours=-1)), NOW - timedelta(minutes=10), NOW - timedelta(hours=1)),
    (job(), NOW - timedelta(minutes=10), NOW - timedelta(minutes=10)),  # no completedAt: creation
    (job(created=None), None, None),
    ({}, None, None),
])
def test_created_and_finished_at(obj: dict[str, Any], created: datetime | None, finished: datetime | None) -> None:
    assert (rm.created_at(obj), rm.finished_at(obj)) == (created, finished)


@pytest.mark.parametrize(("priority", "queue", "expected"), [
    (7, {"spec": {"defaults": {"priority": 3}}}, 7),  # the job's own
    (0, {"spec": {"defaults": {"priority": 3}}}, 0),  # 0 is a priority, not "unset"
    (None, {"spec": {"defaults": {"priority": 3}}}, 3),  # the queue's default
    (None, {"spec": {"defaults": {"priority": "high"}}}, DEFAULT_PRIORITY),
    (None, {"spec": {"defaults": None}}, DEFAULT_PRIORITY),
    (None, {}, DEFAULT_PRIORITY),
    (None, None, DEFAULT_PRIORITY),  # no JobQueue object
    ("5", None, DEFAULT_PRIORITY),  # not an integer
])
def test_priority_of(priority: Any, queue: dict[str, Any] | None, expected: int) -> None:
    assert rm.priority_of(job(priority=priority), queue) == expected
    queues = {} if queue is None else {("ns", "default"): queue, ("ns", "other"): {"spec": {"defaults": {"priority": 9}}}}
    assert rm.effective_priority(job(priority=priority), queues) == expected  # the job's own queue is looked up


@pytest.mark.parametrize(("conditions", "expected"), [
    ([{"type": "Failed", "status": "True", "reason": "RetriesExhausted"}], "RetriesExhausted"),
    ([{"type": "Ready", "status": "True", "reason": "X"}, {"type": "Failed", "status": "True", "reason": "Duplicate"}],
     "Duplicate"),
    ([{"type": "Failed", "status": "False", "reason": "Old"}], None),
    ([{"type": "Failed", "status": "True", "reason": ""}], None),
    ([{"type": "Failed", "status": "True"}], None),
    (None, None),
])
def test_failure_reason(conditions: Any, expected: str | None) -> None:
    assert rm.failure_reason({"status": {"conditions": conditions}}) == expected


@pytest.mark.parametrize(("ago", "expected"), [
    (timedelta(seconds=0), "0s"), (timedelta(seconds=119), "119s"), (timedelta(minutes=2), "2m"),
    (timedelta(minutes=119), "119m"), (timedelta(hours=2), "2h"), (timedelta(hours=47), "47h"),
    (timedelta(hours=48), "2d"), (timedelta(days=30), "30d"),
    (timedelta(seconds=-30), "0s"),  # clock skew: never negative
])
def test_age(ago: timedelta, expected: str) -> None:
    assert rm.age(NOW - ago, NOW) == expected


def test_age_without_a_time() -> None:
    assert rm.age(None, NOW) == "<unknown>"


# --- selections ------------------------------------------------------------------------------


CLEANUP_JOBS = [
    job("old-ok", "Succeeded", completed=timedelta(days=-8)),
    job("old-bad", "Failed", completed=timedelta(days=-9)),
    job("new-ok", "Succeeded", completed=timedelta(days=-1)),
    job("old-running", "Running", created=timedelta(days=-30)),
    job("old-other", "Succeeded", queue="mail", completed=timedelta(days=-10)),
    job("no-time", "Succeeded", created=None),
    job("old-no-completion", "Failed", created=timedelta(days=-20)),  # finished at creation
]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, ["old-no-completion", "old-other", "old-bad", "old-ok"]),
    ({"phases": ["Failed"]}, ["old-no-completion", "old-bad"]),
    ({"phases": ["Succeeded", "Running"]}, ["old-other", "old-ok"]),  # never an unfinished job
    ({"queue": "default"}, ["old-no-completion", "old-bad", "old-ok"]),
    ({"queue": "none"}, []),
    ({"older_than": timedelta(hours=1)}, ["old-no-completion", "old-other", "old-bad", "old-ok", "new-ok"]),
])
def test_cleanup_candidates(kwargs: dict[str, Any], expected: list[str]) -> None:
    older = kwargs.pop("older_than", timedelta(days=7))
    assert names_of(rm.cleanup_candidates(CLEANUP_JOBS, older_than=older, now=NOW, **kwargs)) == expected


@pytest.mark.parametrize(("queue", "expected"), [(None, ["d1", "d2"]), ("mail", ["d2"]), ("other", [])])
def test_dead_letters(queue: str | None, expected: list[str]) -> None:
    jobs = [job("d1", "Failed", dead=True), job("f", "Failed"), job("d2", "Failed", dead=True, queue="mail"),
            job("ok", "Succeeded")]
    assert names_of(rm.dead_letters(jobs, queue)) == expected


@pytest.mark.parametrize(("jobs", "queues", "expected"), [
    pytest.param(
        [job("a", priority=1, created=timedelta(minutes=-3)), job("b", priority=5, created=timedelta(minutes=-1)),
         job("c", created=timedelta(minutes=-5)), job("d", priority=5, created=timedelta(minutes=-2)),
         job("e", "Running"), job("f", queue="other")],
        {("ns", "default"): {"spec": {"defaults": {"priority": 2}}}},
        {("ns", "d"): 1, ("ns", "b"): 2, ("ns", "c"): 3, ("ns", "a"): 4, ("ns", "f"): 1},
        id="priority-then-age-per-queue"),
    pytest.param([job("x", ns="a"), job("y", ns="b")], {},
                 {("a", "x"): 1, ("b", "y"): 1}, id="namespaces-apart"),
    pytest.param([job("x", created=timedelta(0)), job("w", created=timedelta(0))], {},
                 {("ns", "w"): 1, ("ns", "x"): 2}, id="ties-by-name"),
    pytest.param([job("r", "Running"), job("s", "Succeeded")], {}, {}, id="no-pending"),
])
def test_positions(jobs: list[dict[str, Any]], queues: dict[tuple[str, str], Any],
                   expected: dict[tuple[str, str], int]) -> None:
    assert rm.positions(jobs, queues) == expected


# --- counts ----------------------------------------------------------------------------------


ZERO = dict.fromkeys(rm.COUNT_KEYS, 0)


def test_count_keys_are_the_queue_status_keys() -> None:
    assert rm.COUNT_KEYS == (
        "pending", "waiting", "running", "succeeded", "failed", "suspended", "cancelled", "superseded"
    )


@pytest.mark.parametrize(("jobs", "counts", "total", "oldest", "oldest_s", "last", "finished"), [
    pytest.param([], {}, 0, None, None, None, (), id="empty"),
    pytest.param(
        [job("p1", created=timedelta(minutes=-5)), job("p2", None, created=timedelta(hours=-1)),
         job("w", "Waiting"), job("r", "Running"), job("s", "Suspended")],
        {"pending": 2, "waiting": 1, "running": 1, "suspended": 1}, 5, NOW - timedelta(hours=1), 3600, None, (),
        id="unfinished"),
    pytest.param(
        [job("ok", "Succeeded", completed=timedelta(minutes=-3)), job("bad", "Failed", completed=timedelta(minutes=-1)),
         job("old", "Succeeded", completed=timedelta(days=-1)), job("none", "Failed")],
        {"succeeded": 2, "failed": 2}, 4, None, None, NOW - timedelta(minutes=1),
        (Finished("ok", "Succeeded", ts(timedelta(minutes=-3))), Finished("bad", "Failed", ts(timedelta(minutes=-1))),
         Finished("old", "Succeeded", ts(timedelta(days=-1))), Finished("none", "Failed", "")),
        id="finished"),
    pytest.param([job("future", created=timedelta(minutes=5))], {"pending": 1}, 1, NOW + timedelta(minutes=5), 0,
                 None, (), id="clock-skew-never-negative"),
    pytest.param([job("untimed", created=None)], {"pending": 1}, 1, None, None, None, (), id="no-creation-time"),
    pytest.param([job("odd", "Exploded")], {}, 1, None, None, None, (), id="unknown-phase-in-total-only"),
])
def test_queue_summary(jobs: list[dict[str, Any]], counts: dict[str, int], total: int, oldest: datetime | None,
                       oldest_s: int | None, last: datetime | None, finished: tuple[Finished, ...]) -> None:
    summary = rm.queue_summary(iter(jobs), NOW)  # any iterable
    assert dict(summary.counts) == ZERO | counts
    assert (summary.total, summary.oldest_pending, summary.oldest_pending_seconds) == (total, oldest, oldest_s)
    assert (summary.last_completion, summary.finished) == (last, finished)


@pytest.mark.parametrize(("jobs", "fields"), [
    pytest.param([], {**ZERO, "oldestPendingSeconds": 0, "lastCompletionTime": None}, id="empty"),
    pytest.param([job("p", created=timedelta(seconds=-90)), job("s", "Succeeded", completed=timedelta(seconds=-5))],
                 {**ZERO, "pending": 1, "succeeded": 1, "oldestPendingSeconds": 90,
                  "lastCompletionTime": ts(timedelta(seconds=-5))}, id="both"),
])
def test_summary_status_fields(jobs: list[dict[str, Any]], fields: dict[str, Any]) -> None:
    assert rm.queue_summary(jobs, NOW).status_fields() == fields


def test_summary_is_frozen() -> None:
    summary = rm.queue_summary([job()], NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.total = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        summary.counts["pending"] = 3  # type: ignore[index]
    assert rm.QueueSummary() == rm.QueueSummary(counts=ZERO)


def test_by_queue_and_summaries() -> None:
    jobs = [job("a", ns="y"), job("b", ns="x", queue="mail"), job("c", ns="x", queue=None), job("d", "Running", ns="y")]
    assert {k: names_of(v) for k, v in rm.by_queue(jobs).items()} == {
        ("y", "default"): ["a", "d"], ("x", "mail"): ["b"], ("x", "default"): ["c"]}
    summaries = rm.queue_summaries(jobs, NOW)
    assert list(summaries) == [("x", "default"), ("x", "mail"), ("y", "default")]  # sorted
    assert (summaries[("y", "default")].counts["pending"], summaries[("y", "default")].counts["running"]) == (1, 1)


def test_queue_stats_count_jobs_and_settings() -> None:
    jobs = [job("a"), job("b", "Running"), job("c", "Failed", dead=True), job("d", None, created=timedelta(hours=-1)),
            job("e", "Succeeded", queue="mail")]
    queues: list[dict[str, Any]] = [
        {"metadata": {"name": "default", "namespace": "ns"}, "spec": {"paused": True, "concurrency": 2}},
        {"metadata": {"name": "idle", "namespace": "ns"}}]
    rows = rm.queue_stats(jobs, queues, NOW)
    assert [(r["queue"], r["exists"], r["paused"], r["concurrency"], r["pending"], r["running"], r["failed"],
             r["succeeded"], r["total"]) for r in rows] == [
        ("default", True, True, 2, 2, 1, 1, 0, 4), ("idle", True, False, None, 0, 0, 0, 0, 0),
        ("mail", False, False, None, 0, 0, 0, 1, 1)]
    assert [r["oldestPendingSeconds"] for r in rows] == [3600, None, None]
    assert set(rows[0]) == {"namespace", "queue", "exists", "paused", "concurrency", *rm.COUNT_KEYS, "total",
                            "oldestPendingSeconds"}
    assert rm.totals(rows) == {**ZERO, "pending": 2, "running": 1, "failed": 1, "succeeded": 1, "total": 5}


@pytest.mark.parametrize(("rows", "expected"), [
    ([], {**ZERO, "total": 0}),
    ([{"pending": 2, "total": 2}, {"pending": 1, "failed": None, "total": 1}], {**ZERO, "pending": 3, "total": 3}),
])
def test_totals(rows: list[dict[str, Any]], expected: dict[str, int]) -> None:
    assert rm.totals(rows) == expected


def test_positions_follow_a_round_robin_queue_like_its_dispatcher() -> None:
    def keyed(name: str, key: str, minutes: int, phase: str = "Pending") -> dict[str, Any]:
        obj = job(name, phase, created=timedelta(minutes=minutes))
        obj["spec"]["concurrencyKey"] = key
        return obj

    jobs = [keyed("a1", "A", -9), keyed("a2", "A", -8), keyed("a3", "A", -7), keyed("b1", "B", -2),
            keyed("b2", "B", -1)]
    rr = {("ns", "default"): {"spec": {"fairness": "RoundRobin"}}}
    assert rm.positions(jobs, rr) == {("ns", "a1"): 1, ("ns", "b1"): 2, ("ns", "a2"): 3, ("ns", "b2"): 4,
                                      ("ns", "a3"): 5}
    # a key with a running job goes after, as the dispatcher has it
    busy = [*jobs, keyed("a0", "A", -10, "Running")]
    assert rm.positions(busy, rr)[("ns", "b1")] == 1
    assert rm.positions(jobs, {}) == {("ns", "a1"): 1, ("ns", "a2"): 2, ("ns", "a3"): 3, ("ns", "b1"): 4,
                                      ("ns", "b2"): 5}  # FIFO without a JobQueue
